"""``ScalingLawModel``: one hierarchical PyMC model of every point's scaling law.

For point i and its observations j (internal scale: ``y = Δ / Δ_scale``, ``u = log(k / k_ref)``)::

    sign_i ∈ {+1, −1},  P(+1) = π_i = sigmoid(γ₀ + γ·x_i)          (marginalized)
    ψ_ij  = sign_i · exp(ℓ_i − α_i u_ij)   [+ b_i · exp(−(α_i + g) u_ij)  with law="two_term"]
                                           [· exp(−κ_i u_ij² / 2)            with law="curved"]
    y_ij  ~ Normal(ψ_ij, s_i · exp(−β_i u_ij / 2) / sqrt(count_ij))    (or Student-t)
    θ_i = (ℓ_i, α_i, log s_i, β_i),   θ_ib ~ Normal(μ_b + B_b·x_i, τ_b)  per block b

Two options change this (docs/benchmarks.md, "Pooled noise and a signed level"):
``level="signed"`` replaces sign_i·exp(ℓ_i) by a signed level v_i ~ Normal(μ_v + B_v·x_i, τ_v)
(no sign to marginalize), and ``noise="pooled"`` gives every point the population's log s
and β (μ_b + B_b·x_i, no per-point deviation); ``noise="pooled_scale"`` pools log s only.
``level_tails="heavy"`` makes v_i's population a two-scale mixture,
(1 − w)·Normal(m_i, τ_v²) + w·Normal(m_i, (e^r·τ_v)²). ``alpha_population="lognormal"`` draws
log α_i instead of α_i from the Normal population, so every point's ψ decays (α_i > 0).

On the paper's scale (Δ ~ N(c k^−α, σ² k^−β)) this is ``c = sign·exp(ℓ)·k_ref^α·Δ_scale`` and
``σ = s·k_ref^(β/2)·Δ_scale``; α and β are the same on both scales.

Why this form
-------------
* **ℓ at k_ref.** log c and α are almost perfectly correlated a posteriori when k is far from 1
  (the law is pinned down near the observed k, not at k = 1). Centring k at its geometric mean
  removes that correlation, which NUTS and ADVI both need.
* **A second, signed term for sign changes.** Real points can be harmful at small k and
  helpful at large k (or the reverse), which one signed power law cannot express.
  ``law="two_term"`` adds ``b_i·(k/k_ref)^−(α_i+g)``: a coefficient b_i ~ Normal(0, τ_b) of
  either sign (linear in the likelihood, so it adds no second sign to marginalize) and a
  shared extra decay g > 0, so the second term dominates at small k and the first at large k.
  b_i = 0 gives the power law back; LOO decides between the two (:func:`bayescale.laws.select_law`).
* **A curved law for bending log-log curves.** On real learners log|ψ_k| is not a straight line
  in log k: the reduced accuracy benchmark's ground truth steepens with k (digits/logistic
  regression: local exponent about 1.7 at k = 25-76 and 3-4 at k = 230-400), so one exponent
  fitted where the observations are dense misses the ends. ``law="curved"`` gives each point a
  curvature κ_i ~ Normal(κ_μ, κ_τ) of log|ψ| in log k about k_ref; α_i is then the exponent
  at k_ref and α_i + κ_i·log(k/k_ref) the local one at k. κ = 0 is the power law again.
* **Sign marginalized.** With a Normal likelihood the two branches share every term but one:
  ``log N(y | +ψ) − log N(y | −ψ) = 2yψ/sd²``. So per point, with ``A = Σ_j y ψ / sd²`` and
  ``C = Σ_j log N(y | 0-mean terms)``, the marginal is ``C + logaddexp(log π + A, log(1−π) − A)``:
  one pass over the observations and no −inf branch unless A itself overflows, which the
  clipping below prevents. The logaddexp is guarded anyway (two −inf inputs give −inf, not NaN).
* **Clipped exponents.** ψ and the noise sd are exponentials of linear predictors; clipping the
  exponents to ±50 / ±30 keeps every log-density finite wherever ADVI or an early NUTS step
  wanders, so the optimizer never sees NaN (Δ is rescaled first, so the clip is never active
  near the posterior). A log-normal α is bounded by the table's k span so that α·|log(k/k_ref)|
  stays below half that clip (:func:`_log_alpha_max`): otherwise a huge α can use the clip
  to turn the law into a step at k_ref.
* **Centred or not, per block, from the data.** α and β are only weakly identified by one
  point's noisy observations, so their population funnels are always sampled non-centred;
  ℓ and log s are centred when cheap per-point estimates say each point's data pin them down
  better than the population spread does (:func:`auto_centering`). ``centered=`` overrides
  it; docs/benchmarks.md has the measurements.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtr

from . import __version__
from . import priors as _priors
from ._memory import check_fit_memory
from .data import Contributions
from .diagnostics import check_convergence, diagnostics

__all__ = ["ScalingLawModel"]

#: Version of the layout written by :meth:`ScalingLawModel.save`; bump on incompatible change.
FORMAT_VERSION = 1
_CONFIG_ATTR = "bayescale_config"
_METHODS = ("nuts", "advi", "fullrank_advi", "map")
_NUTS_SAMPLERS = {"pymc": None, "nutpie": "nutpie", "numpyro": "numpyro", "blackjax": "blackjax"}
_LIKELIHOODS = ("normal", "studentt")
_LAWS = ("power", "two_term", "curved")
_LEVELS = ("log", "signed")
_LEVEL_TAILS = ("normal", "heavy")
_ALPHA_POPULATIONS = ("normal", "lognormal")
#: The blocks each ``noise`` option gives no per-point deviation.
POOLED_NOISE_BLOCKS = {"per_point": (), "pooled": ("log_s", "beta"), "pooled_scale": ("log_s",)}
_NOISES = tuple(POOLED_NOISE_BLOCKS)
#: Blocks that are always non-centred by default: one point's slope α and noise decay β are
#: weakly identified by its own observations (a slope over a factor-10 range of k).
ALWAYS_NONCENTERED = ("alpha", "log_alpha", "beta")
#: Fewer points than this: the population scales τ are poorly determined and reach down to 0,
#: where a centred block funnels whatever the per-point information (measured: 12 points).
MIN_POINTS_CENTERED = 30
_CLIP_MEAN = 50.0  # bound on |ℓ − α u|: e^50 is far beyond any Δ on the unit-RMS scale
_CLIP_LOGSD = 30.0  # bound on |log sd|
_CLIP_LOG_ALPHA = 10.0  # bound on |log α| (alpha_population="lognormal"); the table's k span may lower the top


class ScalingLawModel:
    """Hierarchical Bayesian model of individualized data scaling laws.

    Parameters
    ----------
    features : array_like or pandas.DataFrame, shape (n_points, p), optional
        One row per point, **in the order of the table's sorted point ids** (``np.unique`` of
        the ``point`` column). A DataFrame whose index holds every point id is aligned by
        index instead (so a feature table for a whole training set works). Standardized
        internally and clipped to ±3 sd (an outlying point must not get an extrapolated
        α); drives the population means of all four blocks and of logit π, with default
        effect priors scaled by 1/sqrt(p). Without features the population is intercept-only.
    likelihood : {"normal", "studentt"}
        Noise model; "normal" is the paper's. Student-t has one shared ν. Caution: Student-t
        estimates the *centre* of each point's Δ, which equals ψ_k = E[Δ] only when Δ is
        symmetric. Real Δ are often skewed (mostly small, sometimes large): on the demo's
        digits table a Student-t fit found ν ≈ 1 and called nearly every point harmful while
        the Normal fit and the Monte Carlo means agreed on the most valuable points.
    priors : dict, optional
        Overrides of the defaults; keys in :func:`bayescale.priors.prior_keys`.
    law : {"power", "two_term", "curved"}, keyword-only
        "power" is the paper's ψ_k = c·k^(−α). "two_term" adds b·k^(−γ) with a signed b per
        point and γ = α + g (g > 0 shared), so ψ_k can change sign across k; the posterior
        then also holds per-point ``b`` and ``gamma``. "curved" is
        ψ_k = c·k^(−α)·exp(−κ·log²(k/k_ref)/2), a power law whose exponent drifts with k
        (α + κ·log(k/k_ref) at k); the posterior then holds per-point ``kappa`` and
        ``attrs["k_ref"]``. Compare the laws by LOO with :func:`bayescale.laws.select_law`.
    correlated : bool, keyword-only
        Give (ℓ, α) a correlated population with an LKJ(η) prior on the correlation (for two
        dimensions LKJ(η) is ``2·Beta(η, η) − 1``, which is how it is coded).
    centered : dict, keyword-only
        Block name (``"ell"``, ``"alpha"``, ``"log_s"``, ``"beta"``) → True for a centred
        parametrisation. Blocks not given are chosen from the data by :func:`auto_centering`;
        correlated (ℓ, α) are always non-centred. The choice used is ``centered_``. A
        signed level under the Normal likelihood is integrated out, so its entry has no
        effect there.
    noise : {"per_point", "pooled", "pooled_scale"}, keyword-only
        "per_point" (the paper's) gives each point its own noise level s_i and decay β_i.
        "pooled" gives every point the population's (μ + B·x with features, so the noise can
        still depend on them): no per-point ``log_s_z``/``beta_z`` and no ``log_s_tau``/
        ``beta_tau``. "pooled_scale" pools the level s_i (at k_ref) only and keeps a
        per-point decay β_i, for tables whose points' noise spreads apart as k grows (on
        digits at m ≤ 10 far more accurate than "pooled", at lower coverage from m = 20).
        Real Δ are right-skewed, so a few observations of one point usually miss
        its rare large values and make it look both less helpful and less noisy than it is;
        per-point noise then turns that miss into a confident one. On the accuracy benchmark's
        real tables (digits and an MLP, m = 5-50 observations per point) pooled noise with
        ``level="signed"`` covered 0.79-0.92 with its 90% intervals, against 0.14-0.83 for
        the fits with per-point noise; the price is wider intervals and, where the points'
        noise truly differs most, worse point estimates (docs/benchmarks.md, "Pooled noise
        and a signed level"). Where the points' noise laws truly differ, "pooled" can also
        shrink the level's population sd: on simulated tables with digits' spread of noise
        laws it did so on one of three, while "pooled_scale" recovered it on all three
        (``benchmarks/inference.py --part tau``).
    level : {"log", "signed"}, keyword-only
        "log" (the paper's form) models ℓ = log|ψ_kref| with a sign per point marginalized
        under P(+1) = π. "signed" models the signed level v = ψ_kref itself, drawn from a
        Normal population (posterior ``level``, ``level_mu``, ``level_tau``, ``level_B``; no
        ``pi``). Where a point's data say little, a log-level population lets |ψ| collapse
        towards 0 with narrow intervals around it (both signs at once); a Normal population on
        v shrinks the point towards the typical *signed* value instead. P(harmful) is then the
        posterior share of draws with v < 0. With the Normal likelihood, v is linear-Gaussian
        given everything else, so the sampled model integrates it out exactly and each draw's
        v is drawn afterwards from its conditional (P(harmful) is then the mean over draws of
        P(v < 0 | the draw's other parameters)); sampling v directly mixed badly (per-point α
        bulk ESS 7 on simulated tables where the integrated form gives 95-628). With
        Student-t noise v is sampled. Use it with ``noise="pooled"``: with per-point
        noise the levels collapsed towards 0 on the same tables (digits: mean R² of ψ_k
        0.02-0.20 at m = 10-50). Not combinable with ``correlated=True``.
    level_tails : {"normal", "heavy"}, keyword-only
        The signed level's population (``level="signed"`` with the Normal likelihood only).
        "normal" is one Normal. "heavy" is a scale mixture: a share w of the points
        (posterior ``level_w``) comes from a Normal e^r times wider (``level_log_ratio`` = r)
        with the same centre, so that a few points far from the bulk are not shrunk into it.
        The level is still integrated out exactly, one component at a time, and each draw
        picks a point's component by its posterior weight; ``p_level_wide`` (per point and
        draw) is that weight, so its posterior mean flags the far-out points. On digits,
        where three harmful points of 60 carry 89% of the truth's spread at k = 76, it
        raised the pooled fit's R² of ψ_k at k = 76 / 132 from 0.77 / 0.76 to 0.89 / 0.87
        (m = 20), but its 90% intervals covered 0.70 instead of 0.87: the narrow part comes
        out narrower than the bulk truly is, and it was worse at the largest k and on an MLP
        table without such points (docs/benchmarks.md, "A heavy-tailed signed level"). An
        option for point estimates on tables with a few extreme points, not for intervals.
    alpha_population : {"normal", "lognormal"}, keyword-only
        The population of the exponent α. "normal" (the default) draws α_i itself from
        Normal(μ + B·x_i, τ), so a point whose few observations happen to rise with k can
        get α_i < 0: a ψ_k that grows without bound as k grows. "lognormal" draws log α_i
        (posterior ``log_alpha``, with ``log_alpha_mu``, ``log_alpha_tau``, ``log_alpha_B``)
        and keeps every α_i > 0, as the paper's own estimators do (they fit log α). With
        ``correlated=True`` the correlation is then between ℓ and log α. With
        ``noise="pooled", level="signed"`` on the accuracy benchmark's real tables it raised
        the mean R² of ψ_k at m = 5 / 10 from −0.83 / 0.23 to 0.07 / 0.53 on digits (one
        point with α < 0 had dominated the error at the largest size) and from 0.71 / 0.72 to
        0.79 / 0.78 on an MLP, with the same coverage (0.81-0.93) and equal accuracy at
        m = 20 and 50 (docs/benchmarks.md, "A positive exponent").
    feature_blocks : sequence of str, keyword-only
        The blocks whose population means depend on the features (``B_b·x_i``); the others
        are intercept-only. Default (None): all of them, as in the paper's model. Names are
        this model's blocks (``"ell"`` or ``"level"``, ``"alpha"`` or ``"log_alpha"``,
        ``"log_s"``, ``"beta"``; see :func:`bayescale.priors.blocks`). Ignored without
        features. With ``noise="pooled"`` the features fix each point's noise law outright
        (there is no per-point deviation); on the accuracy benchmark's MLP table that cut
        the mean R² of ψ_k at m = 5 from 0.73 to 0.25, and keeping the features to the level
        and the exponent (``feature_blocks=("level", "log_alpha")``) avoided it
        (docs/benchmarks.md, "Features and the noise").
    harmful_features : bool, keyword-only
        Let π depend on the features (default True when features are given).
    delta_scale, k_ref : float, keyword-only
        Fix the internal scaling constants instead of deriving them from the data (the RMS of
        Δ and the geometric mean of k). Useful to compare fits or for calibration studies.

    Attributes
    ----------
    idata : arviz.InferenceData
        After :meth:`fit`. Posterior per-point ``c``, ``alpha``, ``sigma``, ``beta``,
        (``b``, ``gamma`` with ``law="two_term"``; ``kappa`` with ``law="curved"``),
        ``p_harmful`` (dims chain, draw, point; also ``p_level_wide`` with
        ``level_tails="heavy"``) and the internal ``ell``, ``log_s``, ``pi``;
        population ``{block}_mu``, ``{block}_tau``, ``{block}_B`` (dim feature),
        ``pi_intercept``, ``pi_B``, ``ell_alpha_corr`` and ``nu`` where they apply.
    points_ : numpy.ndarray
        Point ids, in the order of the ``point`` coordinate.
    k_observed_ : (int, int)
        Observed (min k, max k), inclusive.
    contributions_ : Contributions
        The fitted table.
    k_ref_, delta_scale_ : float
        The internal scaling constants used.
    priors_ : dict
        The priors used (defaults merged with ``priors``).
    centered_ : dict
        The parametrisation used per block (True = centred).
    population_vars_ : list of str
        Names of the population-level posterior variables (for diagnostics).
    advi_loss_ : numpy.ndarray
        The negative ELBO per iteration, after an ADVI fit.
    diagnostics_ : dict
        Max r_hat, min bulk ESS and divergences (:func:`bayescale.diagnostics.diagnostics`;
        NaN where the method has none). A NUTS fit that misses max r_hat ≤ 1.01 or has
        divergences also warns with :class:`bayescale.diagnostics.ConvergenceWarning`.

    Notes
    -----
    A MAP fit is a point estimate: hierarchical scales τ can shrink towards 0 at the mode, so
    use it for smoke tests and starting points, and NUTS (or ADVI) for inference.

    Examples
    --------
    >>> import bayescale as bs
    >>> c, truth = bs.simulate_contributions(n_points=8, samples_per_point=10, random_state=0)
    >>> m = bs.ScalingLawModel()
    >>> idata = m.fit(c, method="map", progressbar=False)
    >>> m.predict([100, 1000]).dims
    ('chain', 'draw', 'point', 'k')
    """

    def __init__(
        self,
        features=None,
        likelihood: str = "normal",
        priors: Mapping[str, Any] | None = None,
        *,
        law: str = "power",
        noise: str = "per_point",
        level: str = "log",
        level_tails: str = "normal",
        alpha_population: str = "normal",
        correlated: bool = False,
        centered: Mapping[str, bool] | None = None,
        feature_blocks: Sequence[str] | None = None,
        harmful_features: bool = True,
        delta_scale: float | None = None,
        k_ref: float | None = None,
    ):
        self.features = features
        self.likelihood = likelihood
        self.law = law
        self.noise = noise
        self.level = level
        self.level_tails = level_tails
        self.alpha_population = alpha_population
        self.priors = priors
        self.correlated = correlated
        self.centered = centered
        # A bare string would split into letters; it is kept whole so that the check names it.
        self.feature_blocks = (feature_blocks if feature_blocks is None or isinstance(feature_blocks, str)
                               else tuple(feature_blocks))
        self.harmful_features = harmful_features
        self.delta_scale = delta_scale
        self.k_ref = k_ref
        # Fail early on arguments that do not depend on data; data checks happen in fit.
        self._check_options()
        self._idata: az.InferenceData | None = None
        self.model_ = None

    # ------------------------------------------------------------------ options
    def _check_options(self) -> None:
        if self.likelihood not in _LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {_LIKELIHOODS}; got {self.likelihood!r}")
        if self.law not in _LAWS:
            raise ValueError(f"law must be one of {_LAWS}; got {self.law!r}")
        if self.noise not in _NOISES:
            raise ValueError(f"noise must be one of {_NOISES}; got {self.noise!r}")
        if self.level not in _LEVELS:
            raise ValueError(f"level must be one of {_LEVELS}; got {self.level!r}")
        if self.level_tails not in _LEVEL_TAILS:
            raise ValueError(f"level_tails must be one of {_LEVEL_TAILS}; got {self.level_tails!r}")
        if self.level_tails == "heavy" and not (self.level == "signed" and self.likelihood == "normal"):
            raise ValueError("level_tails='heavy' needs level='signed' and likelihood='normal' "
                             "(the level is then integrated out under a two-scale population)")
        if self.alpha_population not in _ALPHA_POPULATIONS:
            raise ValueError(f"alpha_population must be one of {_ALPHA_POPULATIONS}; got {self.alpha_population!r}")
        if self.level == "signed" and self.correlated:
            raise ValueError("correlated=True correlates (ℓ, α) and needs level='log'")
        if self.priors is not None:
            _priors.resolve_priors({}, self.priors)  # raises on unknown keys / bad values
        self._centered_map()
        self._feature_blocks()
        for name in ("delta_scale", "k_ref"):
            v = getattr(self, name)
            if v is not None and not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite number; got {v!r}")

    def _centered_map(self) -> dict[str, bool]:
        """Centred (True) or not per block: the user's choice, else :func:`auto_centering`."""
        state = getattr(self, "_state", None)
        if state is not None and "centered_" in state:
            out = dict(state["centered_"])
        else:
            out = {b: b not in ALWAYS_NONCENTERED for b in self._blocks}
        if self.centered is not None:
            if not isinstance(self.centered, Mapping):
                raise ValueError(f"centered must be a dict block -> bool; got {self.centered!r}")
            unknown = sorted(set(self.centered) - set(self._blocks))
            if unknown:
                raise ValueError(f"centered has unknown block(s) {unknown}; blocks are {list(self._blocks)}")
            out.update({k: bool(v) for k, v in self.centered.items()})
        return out

    def _feature_blocks(self) -> tuple[str, ...]:
        """The blocks whose population means depend on the features (all by default)."""
        if self.feature_blocks is None:
            return self._blocks
        if isinstance(self.feature_blocks, str) or not all(isinstance(b, str) for b in self.feature_blocks):
            raise ValueError(f"feature_blocks must be a sequence of block names; got {self.feature_blocks!r}")
        unknown = sorted(set(self.feature_blocks) - set(self._blocks))
        if unknown:
            raise ValueError(f"feature_blocks has unknown block(s) {unknown}; this model's blocks are "
                             f"{list(self._blocks)} (level={self.level!r}, alpha_population={self.alpha_population!r})")
        return tuple(b for b in self._blocks if b in self.feature_blocks)

    @property
    def _blocks(self) -> tuple[str, ...]:
        """The per-point parameter blocks: ℓ (or the signed level), α (or log α), log s, β."""
        return _priors.blocks(self.level, self.alpha_population)

    def get_config(self) -> dict[str, Any]:
        """The constructor options (features excluded), as stored by :meth:`save`."""
        return {
            "likelihood": self.likelihood,
            "law": self.law,
            "noise": self.noise,
            "level": self.level,
            "level_tails": self.level_tails,
            "alpha_population": self.alpha_population,
            "priors": _jsonable(self.priors),
            "correlated": bool(self.correlated),
            "centered": _jsonable(self.centered),
            "feature_blocks": None if self.feature_blocks is None else list(self.feature_blocks),
            "harmful_features": bool(self.harmful_features),
            "delta_scale": self.delta_scale,
            "k_ref": self.k_ref,
        }

    def __repr__(self) -> str:
        feats = "None" if self.features is None else f"<{np.shape(self.features)} features>"
        return (
            f"ScalingLawModel(features={feats}, likelihood={self.likelihood!r}, law={self.law!r}, noise={self.noise!r}, level={self.level!r}, "
            f"level_tails={self.level_tails!r}, alpha_population={self.alpha_population!r}, "
            f"feature_blocks={self.feature_blocks!r}, correlated={self.correlated}, fitted={self._idata is not None})"
        )

    # ------------------------------------------------------------------ fitted state
    @property
    def idata(self) -> az.InferenceData:
        """The InferenceData of the last :meth:`fit` (or of :meth:`load`)."""
        if self._idata is None:
            raise ValueError("this ScalingLawModel is not fitted yet; call fit(contributions) first")
        return self._idata

    @property
    def population_vars_(self) -> list[str]:
        """Names of the population-level variables in ``idata.posterior``."""
        post = self.idata.posterior
        return [v for v in post.data_vars if "point" not in post[v].dims]

    # ------------------------------------------------------------------ data preparation
    def _prepare(self, contributions: Contributions) -> dict[str, Any]:
        if not isinstance(contributions, Contributions):
            raise ValueError(
                f"contributions must be a bayescale Contributions table; got {type(contributions).__name__}"
            )
        if len(contributions) == 0:
            raise ValueError("contributions is empty: there is nothing to fit")
        df = contributions.data
        order = np.argsort(df["point"].to_numpy(), kind="stable")  # rows grouped by point
        point = df["point"].to_numpy()[order]
        k = df["k"].to_numpy(dtype=float)[order]
        delta = df["delta"].to_numpy(dtype=float)[order]
        count = df["count"].to_numpy(dtype=float)[order] if "count" in df else np.ones_like(k)
        points, idx, n_per = np.unique(point, return_inverse=True, return_counts=True)
        d_scale = float(self.delta_scale) if self.delta_scale is not None else _priors.delta_scale(delta)
        k_ref = float(self.k_ref) if self.k_ref is not None else _priors.reference_k(k)
        y = delta / d_scale
        u = np.log(k / k_ref)
        X, names, x_mean, x_sd = self._prepare_features(points)
        defaults = _priors.default_priors(y, u, idx, len(points))
        if X is not None:
            # Per-feature effect scales shrink with the number of features, so that the
            # prior spread of a point's population mean stays the same whatever p is.
            for key in [f"{b}_B" for b in (*_priors.BLOCKS, "level", "log_alpha")] + ["pi_B"]:
                defaults[key] = defaults[key] / np.sqrt(X.shape[1])
        state = {
            "point": point, "k": k, "delta": delta, "count": count, "points": points,
            "idx": idx, "starts": np.r_[0, np.cumsum(n_per)[:-1]], "y": y, "u": u,
            "log_w": 0.5 * np.log(count), "X": X, "feature_names": names,
            "log_alpha_max": _log_alpha_max(u),
            "x_mean": x_mean, "x_sd": x_sd, "delta_scale": d_scale, "k_ref": k_ref,
            "priors": _priors.resolve_priors(defaults, self.priors),
        }
        state["pos"] = np.arange(len(point)) - np.repeat(state["starts"], n_per)
        state["m_max"] = int(n_per.max())
        # Padding costs n_points·m_max cells; worth it unless the table is very ragged.
        state["dense"] = len(point) >= 0.5 * len(points) * state["m_max"]
        state["centered_"] = auto_centering(state, self._blocks)
        return state

    def _prepare_features(self, points: np.ndarray):
        if self.features is None:
            return None, [], None, None
        f = self.features
        if isinstance(f, pd.DataFrame):
            names = [str(c) for c in f.columns]
            # Align by index when the index names the points (all of them, maybe more);
            # otherwise the rows are taken in the order of the sorted point ids.
            if f.index.is_unique and pd.Index(points).isin(f.index).all():
                f = f.loc[points]
            X = f.to_numpy()
        else:
            X = np.asarray(f)
            if X.ndim == 1:
                X = X[:, None]
            names = [f"x{j}" for j in range(X.shape[1])] if X.ndim == 2 else ["x0"]
        try:
            X = np.asarray(X, dtype=float)
        except (TypeError, ValueError):
            raise ValueError("features must be numeric") from None
        if X.ndim != 2 or X.shape[1] == 0:
            raise ValueError(f"features must be a 2-D array (n_points, p) with p >= 1; got shape {X.shape}")
        if X.shape[0] != len(points):
            raise ValueError(
                f"features has {X.shape[0]} rows but the contributions have {len(points)} points; "
                "give one row per point, in the order of the sorted point ids"
            )
        if not np.isfinite(X).all():
            r, c = np.argwhere(~np.isfinite(X))[0]
            raise ValueError(f"features must be finite; row {r}, column {names[c]!r} has {X[r, c]}")
        x_mean = X.mean(axis=0)
        x_sd = X.std(axis=0)
        x_sd = np.where(x_sd > 0, x_sd, 1.0)  # a constant column standardizes to zeros
        return _standardize(X, x_mean, x_sd), names, x_mean, x_sd

    def _standardize_new(self, features_new) -> np.ndarray:
        names = self._state["feature_names"]
        if isinstance(features_new, pd.DataFrame):
            missing = [n for n in names if n not in map(str, features_new.columns)]
            if missing:
                raise ValueError(f"features_new lacks column(s) {missing}")
            features_new = features_new.rename(columns=str)[names].to_numpy()
        X = np.asarray(features_new, dtype=float)
        if X.ndim == 1:
            X = X[None, :] if len(names) > 1 else X[:, None]
        if X.ndim != 2 or X.shape[1] != len(names):
            raise ValueError(f"features_new must have {len(names)} columns; got shape {X.shape}")
        if not np.isfinite(X).all():
            raise ValueError("features_new must be finite (no NaN or inf)")
        return _standardize(X, self._state["x_mean"], self._state["x_sd"])

    # ------------------------------------------------------------------ the PyMC model
    def build_model(self, contributions: Contributions):
        """Build (without fitting) the PyMC model for ``contributions``; returns ``pm.Model``.

        Examples
        --------
        >>> import bayescale as bs
        >>> c, _ = bs.simulate_contributions(n_points=3, samples_per_point=4, random_state=0)
        >>> "alpha_mu" in bs.ScalingLawModel().build_model(c).named_vars
        True
        """
        self._state = self._prepare(contributions)
        self.model_ = _build_pymc_model(self._state, self.likelihood, self.correlated,
                                        self._centered_map(), self.harmful_features, self.law,
                                        POOLED_NOISE_BLOCKS[self.noise], self.level, self.level_tails,
                                        self.alpha_population, self._feature_blocks())
        return self.model_

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        contributions: Contributions,
        method: str = "nuts",
        nuts_sampler: str = "pymc",
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        random_seed: int | None = None,
        progressbar: bool = True,
        *,
        floatX: str | None = None,
        **kwargs,
    ) -> az.InferenceData:
        """Fit the model to ``contributions`` and return the InferenceData.

        Parameters
        ----------
        contributions : Contributions
        method : {"nuts", "advi", "fullrank_advi", "map"}
        nuts_sampler : {"pymc", "nutpie", "numpyro", "blackjax"}
            Backend for ``method="nuts"``. nutpie, numpyro and blackjax come with the
            ``bayescale[fast]`` extra. PyMC's own sampler counts half the reported CPUs
            as cores, so on a 2-vCPU machine it runs the chains one after another unless
            you pass ``cores=2``.
        draws, tune, chains : int
            NUTS settings. ADVI draws ``draws`` samples from the fitted approximation (one
            chain); MAP gives one chain with one draw.
        random_seed : int, optional
        progressbar : bool
        floatX : {"float64", "float32"}, optional
            Float type in which the model is built, compiled and fitted (default: PyTensor's
            ``config.floatX``, normally float64). float32 suits ADVI on large tables: on
            10,000 points × 50 it fitted in 0.65x the time of float64 (86 s against 133 s)
            with the same posterior means (docs/benchmarks.md, "Full-batch ADVI at
            N = 10,000 × 50"). Draws are returned, and derived quantities computed, in
            float64 either way.
        **kwargs
            Passed on: to ``pm.sample`` for NUTS (e.g. ``target_accept``, 0.9 by default;
            0.8 mixed 1.8x faster on a simulated 1000-point table, ``cores``), to
            ``pm.fit`` for ADVI (e.g. ``n`` iterations, at most 30000 by default,
            ``obj_optimizer``, ``callbacks``), to ``pm.find_MAP`` for MAP. ADVI stops early
            when the median loss of the last 500 iterations is less than 0.001 nats per
            observation below that of the 500 before (:class:`LossPlateau`; pass
            ``callbacks=[]`` to run all ``n``).

        Returns
        -------
        arviz.InferenceData
            Groups posterior, sample_stats (NUTS), observed_data (``delta``, dim obs),
            constant_data (``k``, ``point``, ``count``; features as ``features``) and
            log_likelihood (``delta``, dims chain, draw, point: each point's observations
            summed with the sign marginalized, so ``az.loo`` leaves one point out).

        Examples
        --------
        >>> import bayescale as bs
        >>> c, _ = bs.simulate_contributions(n_points=6, samples_per_point=8, random_state=1)
        >>> idata = bs.ScalingLawModel().fit(c, method="advi", draws=50, n=500,
        ...                                  random_seed=0, progressbar=False)
        >>> idata.posterior["c"].dims
        ('chain', 'draw', 'point')
        """
        import pymc as pm

        if method not in _METHODS:
            raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
        if method == "nuts":
            if nuts_sampler not in _NUTS_SAMPLERS:
                raise ValueError(f"nuts_sampler must be one of {tuple(_NUTS_SAMPLERS)}; got {nuts_sampler!r}")
            package = _NUTS_SAMPLERS[nuts_sampler]
            if package is not None and find_spec(package) is None:
                raise ImportError(
                    f"nuts_sampler={nuts_sampler!r} needs the {package!r} package; install it with "
                    "`pip install 'bayescale[fast]'`"
                )
        draws = int(draws)
        if draws < 1:
            raise ValueError(f"draws must be >= 1; got {draws}")
        if floatX not in (None, "float32", "float64"):
            raise ValueError(f"floatX must be 'float32' or 'float64'; got {floatX!r}")
        import pytensor

        # PyTensor builds and compiles in config.floatX; switching it here, not through
        # PYTENSOR_FLAGS, lets one session fit in float32 without a restart.
        with pytensor.config.change_flags(floatX=floatX or pytensor.config.floatX):
            model = self.build_model(contributions)
            s = self._state
            # Refuse (or warn) before compiling and optimising, not when the draws no longer fit.
            check_fit_memory(len(s["points"]), s["m_max"], len(s["y"]), dense=s["dense"], method=method,
                             draws=draws, chains=int(chains), n_features=0 if s["X"] is None else s["X"].shape[1],
                             law=self.law, stacklevel=3)
            rng = np.random.default_rng(random_seed)
            seed = int(rng.integers(2**31 - 1))

            sample_stats = None
            if method == "nuts":
                if "nuts" not in kwargs:
                    # Hierarchical funnels: a smaller step than PyMC's 0.8 default avoids the
                    # occasional divergence on small tables. It costs mixing on large ones: on
                    # 1000 × 50 simulated, 0.8 gave 1.8x the ESS in 0.8x the time, with no
                    # divergences either way (docs/benchmarks.md, "NUTS on N = 1000 × m = 50").
                    kwargs.setdefault("target_accept", 0.9)
                idata = pm.sample(
                    draws=draws, tune=int(tune), chains=int(chains), random_seed=seed,
                    progressbar=progressbar, nuts_sampler=nuts_sampler, model=model,
                    compute_convergence_checks=False, **kwargs,
                )
                posterior = idata.posterior
                sample_stats = idata.get("sample_stats")
            elif method in ("advi", "fullrank_advi"):
                kwargs.setdefault("n", 30000)
                if "obj_optimizer" not in kwargs:
                    # 30x PyMC's default step. At 0.001 the loss on 2000 × 50 was still falling
                    # > 10% per 1000 iterations after 6000; 0.01 reached the plateau rule below
                    # after 4500 iterations on 1000 × 50, 0.03 after 2000, with posterior means
                    # as close to NUTS's (docs/benchmarks.md, "ADVI's step size").
                    kwargs["obj_optimizer"] = pm.adagrad_window(learning_rate=0.03)
                if "callbacks" not in kwargs:
                    kwargs["callbacks"] = [LossPlateau(scale=len(self._state["y"]))]
                approx = pm.fit(method=method, model=model, random_seed=seed,
                                progressbar=progressbar, **kwargs)
                if not np.isfinite(approx.hist).all() or not all(
                    np.isfinite(p.get_value()).all() for p in approx.params
                ):
                    raise RuntimeError("ADVI diverged to non-finite values; try a smaller learning rate")
                posterior = _approx_draws(approx, model, draws, seed + 1)
                self.advi_loss_ = np.asarray(approx.hist)
            else:
                point = pm.find_MAP(model=model, progressbar=progressbar, seed=seed, **kwargs)
                posterior = _dataset_from_point(model, point)

        if any(v.dtype != np.float64 for v in posterior.data_vars.values()):
            posterior = posterior.astype(np.float64)  # derived quantities in double precision
        free = [v.name for v in model.free_RVs]
        posterior = posterior[[v for v in posterior.data_vars if v in free]]
        derived, log_lik = _derive(posterior, self._state, self.likelihood, self.correlated,
                                   self._centered_map(), rng, point_estimate=method == "map")
        self._method = method
        self._idata = self._assemble(derived, log_lik, sample_stats)
        self._set_fitted_state(contributions)
        # Never hand back an unconverged NUTS posterior silently (DESIGN's bar: r_hat <= 1.01,
        # no divergences); the numbers stay on the model for later checks.
        self.diagnostics_ = (check_convergence(self._idata, stacklevel=2) if method == "nuts"
                             else diagnostics(self._idata))
        return self._idata

    def _assemble(self, posterior: xr.Dataset, log_lik: xr.DataArray, sample_stats) -> az.InferenceData:
        s = self._state
        obs = np.arange(len(s["delta"]))
        observed = xr.Dataset({"delta": ("obs", s["delta"])}, coords={"obs": obs})
        const = {"k": ("obs", s["k"].astype(np.int64)), "point": ("obs", s["point"]),
                 "count": ("obs", s["count"].astype(np.int64))}
        coords = {"obs": obs}
        if s["X"] is not None:
            raw = s["X"] * s["x_sd"] + s["x_mean"]
            const["features"] = (("feature_row", "feature"), raw)
            coords["feature"] = s["feature_names"]
        constant = xr.Dataset(const, coords=coords)
        config = self.get_config()
        config.update(
            format_version=FORMAT_VERSION, bayescale_version=__version__,
            centered_=self._centered_map(),
            delta_scale_=s["delta_scale"], k_ref_=s["k_ref"], priors_=_jsonable(s["priors"]),
            feature_names=s["feature_names"],
            x_mean=None if s["x_mean"] is None else s["x_mean"].tolist(),
            x_sd=None if s["x_sd"] is None else s["x_sd"].tolist(),
            method=self._method,
        )
        constant.attrs[_CONFIG_ATTR] = json.dumps(config)
        groups = {"posterior": posterior, "log_likelihood": log_lik.to_dataset(name="delta"),
                  "observed_data": observed, "constant_data": constant}
        if sample_stats is not None:
            groups["sample_stats"] = sample_stats
        return az.InferenceData(**groups)

    def _set_fitted_state(self, contributions: Contributions | None = None) -> None:
        s = self._state
        self.points_ = np.asarray(s["points"])
        self.k_observed_ = (int(s["k"].min()), int(s["k"].max()))
        if contributions is None:  # after load: rebuild the table from the stored groups
            data = {"point": s["point"], "k": s["k"].astype(np.int64), "delta": s["delta"]}
            if (s["count"] != 1).any():
                data["count"] = s["count"].astype(np.int64)
            contributions = Contributions(pd.DataFrame(data))
        self.contributions_ = contributions
        self.k_ref_ = s["k_ref"]
        self.delta_scale_ = s["delta_scale"]
        self.priors_ = s["priors"]
        self.centered_ = self._centered_map()

    # ------------------------------------------------------------------ predict
    def predict(self, k, points=None) -> xr.DataArray:
        """Posterior draws of ψ_k = c·k^(−α) for fitted points.

        Parameters
        ----------
        k : float or array_like of float
            Dataset sizes, all > 0 (any size, not only the observed range).
        points : array_like of int, optional
            Point ids; default all fitted points.

        Returns
        -------
        xarray.DataArray
            Named ``psi``, dims (chain, draw, point, k).

        Examples
        --------
        >>> import bayescale as bs
        >>> c, _ = bs.simulate_contributions(n_points=4, samples_per_point=6, random_state=0)
        >>> m = bs.ScalingLawModel(); _ = m.fit(c, method="map", progressbar=False)
        >>> m.predict(500, points=[0, 2]).shape
        (1, 1, 2, 1)
        """
        post = self.idata.posterior
        k = _check_k(k)
        c = post["c"]
        alpha = post["alpha"]
        if points is not None:
            points = np.atleast_1d(np.asarray(points))
            unknown = np.setdiff1d(points, post["point"].values)
            if unknown.size:
                raise ValueError(f"points not in the fitted model: {unknown[:10].tolist()}")
            c = c.sel(point=points)
            alpha = alpha.sel(point=points)
        kk = xr.DataArray(k, dims="k", coords={"k": k})
        psi = c * kk ** (-alpha)
        sel = {} if points is None else {"point": points}
        if "kappa" in post:  # law="curved"
            psi = psi * np.exp(-0.5 * post["kappa"].sel(sel) * np.log(kk / self.k_ref_) ** 2)
        if "b" in post:  # law="two_term"
            psi = psi + post["b"].sel(sel) * kk ** (-post["gamma"].sel(sel))
        return psi.transpose("chain", "draw", "point", "k").rename("psi")

    def predict_new(self, features_new, k, *, random_seed: int | None = None) -> xr.DataArray:
        """Posterior predictive draws of ψ_k for points never measured.

        Each draw of the population (means, feature effects, scales, correlation, π) yields
        one new point's (ℓ, α, sign); this is the Bayesian form of the paper's amortized
        estimator.

        Parameters
        ----------
        features_new : array_like or DataFrame of shape (n_new, p), or int
            Features of the new points (same columns as at fit). For a model without
            features pass the number of new points (or an (n_new, 0) array).
        k : float or array_like of float
            Dataset sizes, all > 0.
        random_seed : int, optional, keyword-only

        Returns
        -------
        xarray.DataArray
            Named ``psi``, dims (chain, draw, point, k); point = 0..n_new−1.

        Examples
        --------
        >>> import bayescale as bs
        >>> c, _ = bs.simulate_contributions(n_points=5, samples_per_point=6, random_state=0)
        >>> m = bs.ScalingLawModel(); _ = m.fit(c, method="map", progressbar=False)
        >>> m.predict_new(3, [100, 1000]).sizes["point"]
        3
        """
        post = self.idata.posterior
        k = _check_k(k)
        s = self._state
        if s["feature_names"]:
            if features_new is None or np.isscalar(features_new):
                raise ValueError("this model has features: features_new must be an (n_new, p) array")
            X = self._standardize_new(features_new)
        else:
            if features_new is not None and np.isscalar(features_new):
                n_new = int(features_new)
            elif features_new is not None:
                n_new = int(np.asarray(features_new).reshape(len(features_new), -1).shape[0])
            else:
                raise ValueError("features_new must be the number of new points for a model without features")
            if n_new < 1:
                raise ValueError(f"features_new must ask for at least one point; got {n_new}")
            X = np.zeros((n_new, 0))
        rng = np.random.default_rng(random_seed)
        n_new = X.shape[0]
        shape = (post.sizes["chain"], post.sizes["draw"], n_new)
        theta = {}
        lead, slope = self._blocks[:2]
        z = {b: rng.standard_normal(shape) for b in (lead, slope)}
        for b in (lead, slope):
            theta[b] = _pop_mean(post, b, X) + post[f"{b}_tau"].values[..., None] * _mix(post, b, z, self.correlated)
        if slope == "log_alpha":
            theta["alpha"] = _alpha_from_log(np, theta["log_alpha"], self._state["log_alpha_max"])
        if "level_w" in post:  # level_tails="heavy": a share w of new points from the wide part
            wide = rng.random(shape) < post["level_w"].values[..., None]
            stretch = np.where(wide, np.exp(post["level_log_ratio"].values[..., None]), 1.0)
            centre = _pop_mean(post, "level", X)
            theta["level"] = centre + (theta["level"] - centre) * stretch
        if lead == "level":
            harmful = theta["level"] < 0
            theta["ell"] = np.log(np.abs(theta["level"]))
        else:
            harmful = rng.random(shape) < np.exp(_log_pi(post, X)[1])
        u = np.log(np.asarray(k) / s["k_ref"])
        log_mag = theta["ell"][..., None] - theta["alpha"][..., None] * u
        if "kappa_mu" in post:  # a new point's curvature from the population
            kappa = post["kappa_mu"].values[..., None] + post["kappa_tau"].values[..., None] * rng.standard_normal(shape)
            log_mag = log_mag - 0.5 * kappa[..., None] * u**2
        mag = np.exp(log_mag)
        psi = np.where(harmful[..., None], -mag, mag)
        if "b" in post:  # a new point's second term: b ~ Normal(0, τ_b), decaying g faster
            b_new = post["b_tau"].values[..., None] * rng.standard_normal(shape)
            psi = psi + b_new[..., None] * np.exp(
                -(theta["alpha"][..., None] + post["gap"].values[..., None, None]) * u)
        psi = psi * s["delta_scale"]
        return xr.DataArray(
            psi, dims=("chain", "draw", "point", "k"),
            coords={"chain": post["chain"].values, "draw": post["draw"].values,
                    "point": np.arange(n_new), "k": k},
            name="psi",
        )

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted model (InferenceData + configuration in attrs) to a netCDF file.

        Examples
        --------
        >>> import bayescale as bs, tempfile, os
        >>> c, _ = bs.simulate_contributions(n_points=4, samples_per_point=6, random_state=0)
        >>> m = bs.ScalingLawModel(); _ = m.fit(c, method="map", progressbar=False)
        >>> p = m.save(os.path.join(tempfile.mkdtemp(), "m.nc"))
        >>> bs.ScalingLawModel.load(p).points_.tolist() == m.points_.tolist()
        True
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.idata.to_netcdf(str(path))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> ScalingLawModel:
        """Read a model written by :meth:`save`; it predicts exactly as the saved one did.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file was not written by ``ScalingLawModel.save`` or by a bayescale with an
            incompatible file format.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no saved model at {path}")
        idata = az.from_netcdf(str(path))
        const = idata.get("constant_data")
        raw = None if const is None else const.attrs.get(_CONFIG_ATTR)
        if raw is None:
            raise ValueError(f"{path} was not written by ScalingLawModel.save (no {_CONFIG_ATTR!r} attribute)")
        config = json.loads(raw)
        fmt = config.get("format_version")
        if fmt != FORMAT_VERSION:
            raise ValueError(
                f"{path} was saved by bayescale {config.get('bayescale_version', '?')} in model format "
                f"{fmt}; this bayescale {__version__} reads format {FORMAT_VERSION}. Refit the model "
                "with this version (or load it with the version that wrote it)."
            )
        features = None
        if "features" in const:
            features = const["features"].values
        model = cls(
            features=features, likelihood=config["likelihood"], priors=config["priors"],
            law=config.get("law", "power"), noise=config.get("noise", "per_point"),
            level=config.get("level", "log"), level_tails=config.get("level_tails", "normal"),
            alpha_population=config.get("alpha_population", "normal"),
            correlated=config["correlated"], centered=config["centered"],
            feature_blocks=config.get("feature_blocks"), harmful_features=config["harmful_features"], delta_scale=config["delta_scale"],
            k_ref=config["k_ref"],
        )
        point = const["point"].values
        k = const["k"].values.astype(float)
        delta = idata.observed_data["delta"].values
        count = const["count"].values.astype(float) if "count" in const else np.ones_like(k)
        points, idx = np.unique(point, return_inverse=True)
        x_mean = None if config["x_mean"] is None else np.asarray(config["x_mean"])
        x_sd = None if config["x_sd"] is None else np.asarray(config["x_sd"])
        model._state = {
            "point": point, "k": k, "delta": delta, "count": count, "points": points, "idx": idx,
            "delta_scale": config["delta_scale_"], "k_ref": config["k_ref_"],
            "priors": {key: tuple(v) if isinstance(v, list) else v for key, v in config["priors_"].items()},
            "feature_names": config["feature_names"], "x_mean": x_mean, "x_sd": x_sd,
            "centered_": config["centered_"],
            "X": None if features is None else _standardize(features, x_mean, x_sd),
            "log_alpha_max": _log_alpha_max(np.log(k / config["k_ref_"])),
        }
        model._idata = idata
        model._method = config.get("method")
        model._set_fitted_state()
        model.diagnostics_ = diagnostics(idata)
        return model


class LossPlateau:
    """ADVI callback: stop when the loss has stopped falling.

    Every ``window`` iterations the median loss of the last window is compared with the
    median of the window before; the fit stops when it fell by less than ``tolerance`` ×
    ``scale`` (``fit`` passes the number of observations as ``scale``, so the default asks
    for a gain of at least 0.001 nats per observation per 500 iterations). An absolute
    rather than a relative test, because the loss (−ELBO) carries an arbitrary constant and
    can sit near zero. Medians, because the loss has rare spikes (a Monte Carlo draw far out
    in the tails of the approximation). PyMC's ``CheckParametersConvergence`` (relative
    change of the parameters < 1e-3 between checks) never fired on these models: ADVI's
    noisy gradients keep the parameters moving, and a 1000 × 50 fit ran its full 30,000
    iterations (docs/benchmarks.md, "ADVI's stopping rule").

    Examples
    --------
    >>> import numpy as np
    >>> stop = LossPlateau(window=2, tolerance=0.5)
    >>> stop(None, np.array([9.0, 8.0, 5.0, 4.0]), 4)  # fell by 4 > 0.5: goes on
    >>> try:
    ...     stop(None, np.array([5.0, 4.0, 4.0, 4.1]), 4)
    ... except StopIteration as e:
    ...     print(e)
    ADVI loss plateau at iteration 4
    """

    def __init__(self, window: int = 500, tolerance: float = 1e-3, scale: float = 1.0):
        self.window = int(window)
        self.tolerance = float(tolerance)
        self.scale = float(scale)

    def __call__(self, approx, losses, i: int) -> None:
        w = self.window
        if losses is None or i % w or len(losses) < 2 * w:
            return
        previous, last = np.median(losses[-2 * w:-w]), np.median(losses[-w:])
        if previous - last < self.tolerance * self.scale:
            raise StopIteration(f"ADVI loss plateau at iteration {i}")


def auto_centering(state: dict, blocks: tuple[str, ...] = _priors.BLOCKS) -> dict[str, bool]:
    """Choose a centred (True) or non-centred parametrisation per block from the data.

    A centred block samples well when each point's own data pin its value down better than
    the population spread does; otherwise the non-centred form avoids the funnel. The check is
    a variance decomposition of cheap per-point estimates: the between-point variance of the
    estimates (their variance minus the mean sampling variance) against the mean sampling
    variance. ℓ uses the amplitude mean(y·e^u) (α ≈ 1), log s uses ½·log mean(y²·e^(β̂u))
    (sampling variance 1/(2m)). A block is centred when the ratio exceeds 1 and there are at
    least ``MIN_POINTS_CENTERED`` points; α (or log α) and β are always non-centred. ``blocks``
    names the model's blocks (:func:`bayescale.priors.blocks`); the amplitude check serves
    ℓ and the signed level alike.

    Measured (docs/benchmarks.md): 12 points × m = 10 → all non-centred had the fewest
    divergences (10 in 2000 draws against 37-531); 200 points × m = 20 → ℓ and log s centred
    raised the smallest population ESS from 35-152 to 453, with no divergences.

    Examples
    --------
    >>> import bayescale as bs
    >>> c, _ = bs.simulate_contributions(n_points=200, samples_per_point=20, random_state=0)
    >>> auto_centering(bs.ScalingLawModel()._prepare(c))
    {'ell': True, 'alpha': False, 'log_s': True, 'beta': False}
    """
    y, u, idx = state["y"], state["u"], state["idx"]
    n = len(state["points"])
    m = np.bincount(idx, minlength=n).astype(float)
    out = {b: False for b in blocks}
    if n < MIN_POINTS_CENTERED:
        return out
    beta_hat = state["priors"]["beta_mu"][0]
    log_s_hat = 0.5 * np.log(np.bincount(idx, y**2 * np.exp(beta_hat * u) * state["count"], n) / m)
    within = np.mean(1.0 / (2.0 * m))
    out["log_s"] = bool(log_s_hat.var() - within > within)
    a = y * np.exp(u)
    a_mean = np.bincount(idx, a, n) / m
    a_var = (np.bincount(idx, a**2, n) / m - a_mean**2) / np.maximum(m - 1, 1)
    within = float(np.mean(a_var))
    out[blocks[0]] = bool(a_mean.var() - within > within)
    return out


# ====================================================================== model graph
def _build_pymc_model(s: dict, likelihood: str, correlated: bool, centered: dict, harmful_features: bool,
                      law: str = "power", pooled: tuple[str, ...] = (), level: str = "log",
                      level_tails: str = "normal", alpha_population: str = "normal",
                      feature_blocks: tuple[str, ...] | None = None):
    import pymc as pm
    import pytensor.tensor as pt

    pr = s["priors"]
    X = s["X"]
    n = len(s["points"])
    coords = {"point": s["points"]}
    if X is not None:
        coords["feature"] = s["feature_names"]
    idx = s["idx"]
    with pm.Model(coords=coords) as model:
        theta = {}
        taus = {}
        means = {}
        blocks = _priors.blocks(level, alpha_population)
        slope = blocks[1]  # "alpha", or "log_alpha" under a log-normal population
        # A Normal likelihood is linear-Gaussian in a signed level: the level is integrated
        # out exactly (see _collapsed_level) and drawn afterwards from its conditional.
        collapse = level == "signed" and likelihood == "normal"
        for b in blocks:
            mu = pm.Normal(f"{b}_mu", *pr[f"{b}_mu"])
            if b not in pooled:
                taus[b] = pm.HalfNormal(f"{b}_tau", pr[f"{b}_tau"])
            means[b] = mu
            if X is not None and (feature_blocks is None or b in feature_blocks):
                B = pm.Normal(f"{b}_B", 0.0, pr[f"{b}_B"], dims="feature")
                means[b] = mu + pt.dot(X, B)
        if correlated:
            r = pm.Beta("ell_alpha_r", pr["lkj_eta"], pr["lkj_eta"])
            rho = 2.0 * r - 1.0
            z_ell = pm.Normal("ell_z", 0.0, 1.0, dims="point")
            z_alpha = pm.Normal(f"{slope}_z", 0.0, 1.0, dims="point")
            theta["ell"] = means["ell"] + taus["ell"] * z_ell
            theta[slope] = means[slope] + taus[slope] * (rho * z_ell + pt.sqrt(1.0 - rho**2) * z_alpha)
        for b in blocks:
            if b in theta or (collapse and b == "level"):
                continue
            if b in pooled:  # no per-point deviation: every point has the population's value
                theta[b] = means[b] * pt.ones(n)
            elif centered[b]:
                theta[b] = pm.Normal(b, means[b], taus[b], dims="point")
            else:
                theta[b] = means[b] + taus[b] * pm.Normal(f"{b}_z", 0.0, 1.0, dims="point")
        if slope == "log_alpha":
            theta["alpha"] = _alpha_from_log(pt, theta["log_alpha"], s["log_alpha_max"])
        if level == "log":  # the sign's prior; a signed level carries its sign itself
            logit = pm.Normal("pi_intercept", *pr["pi_intercept"])
            if X is not None and harmful_features:
                logit = logit + pt.dot(X, pm.Normal("pi_B", 0.0, pr["pi_B"], dims="feature"))
            log_pi = -pt.softplus(-logit) * pt.ones(n)
            log_1mpi = -pt.softplus(logit) * pt.ones(n)
        nu = None
        if likelihood == "studentt":
            nu = 1.0 + pm.Gamma("nu_minus_1", alpha=pr["nu"][0], beta=pr["nu"][1])
        gap = None
        if law == "two_term":
            theta["b"] = pm.HalfNormal("b_tau", pr["b_tau"]) * pm.Normal("b_z", 0.0, 1.0, dims="point")
            gap = pm.Gamma("gap", alpha=pr["gap"][0], beta=pr["gap"][1])
        if law == "curved":  # non-centred: κ is weakly identified by a few points' tables
            theta["kappa"] = (pm.Normal("kappa_mu", *pr["kappa_mu"])
                              + pm.HalfNormal("kappa_tau", pr["kappa_tau"])
                              * pm.Normal("kappa_z", 0.0, 1.0, dims="point"))
        # y and u as shared variables: a compiled model (e.g. nutpie's) can swap datasets of
        # the same layout without recompiling, which simulation-based calibration relies on.
        # Dense layout (points × m_max, padded and masked) when the table is nearly balanced:
        # broadcasting and row sums are far cheaper than gathers and scatter-adds
        # (measured: one gradient on 10,000 × 50 observations went from ~300 ms to ~20 ms).
        if s["dense"]:
            y = pm.Data("y_scaled", _pad(s, s["y"]))
            u = pm.Data("u", _pad(s, s["u"]))
            log_w = _pad(s, s["log_w"])
            mask = _pad(s, np.ones_like(s["y"]))
            rows = {b: v[:, None] for b, v in theta.items()}

            def segsum(v):
                return (v * mask).sum(axis=1)

            def expand(v):
                return v[:, None]
        else:
            y = pm.Data("y_scaled", s["y"])
            u = pm.Data("u", s["u"])
            log_w = s["log_w"]
            rows = {b: v[idx] for b, v in theta.items()}

            def segsum(v):
                return _segment_sum(pt, v, idx, n)

            def expand(v):
                return v[idx]
        if gap is not None:  # the second term is linear: move it to the left-hand side
            y = y - rows["b"] * pt.exp(pt.clip(-(rows["alpha"] + gap) * u, -_CLIP_MEAN, _CLIP_MEAN))
        eta = rows.get("ell", 0.0) - rows["alpha"] * u
        if "kappa" in rows:
            eta = eta - 0.5 * rows["kappa"] * u**2
        mu = pt.exp(pt.clip(eta, -_CLIP_MEAN, _CLIP_MEAN))
        log_sd = pt.clip(rows["log_s"] - 0.5 * rows["beta"] * u - log_w, -_CLIP_LOGSD, _CLIP_LOGSD)
        if collapse:
            scales = [(0.0, taus["level"])]
            if level_tails == "heavy":  # a share w of the points from a population ρ times wider
                w = pm.Beta("level_w", *pr["level_w"])
                ratio = pt.exp(pm.HalfNormal("level_log_ratio", pr["level_log_ratio"]))
                scales = [(pt.log1p(-w), taus["level"]), (pt.log(w), taus["level"] * ratio)]
            ll = _level_mixture(pt, mu, y, log_sd, segsum, expand, means["level"], scales)[0]
        elif level == "signed":
            ll, _ = _branch_sums(pt, y, rows["level"] * mu, log_sd, segsum, nu)
        else:
            branch_pos, branch_neg = _branch_sums(pt, y, mu, log_sd, segsum, nu)
            ll = _guarded_logaddexp(pt, log_pi + branch_pos, log_1mpi + branch_neg)
        pm.Potential("loglik", ll.sum())
    return model


def _pad(s: dict, values: np.ndarray) -> np.ndarray:
    """Observation-ordered values as a (points × m_max) matrix, zeros in the padding."""
    import pytensor

    # In the model's float type: a float64 constant would upcast a float32 graph.
    out = np.zeros((len(s["points"]), s["m_max"]), dtype=pytensor.config.floatX)
    out[s["idx"], s["pos"]] = values
    return out


def _segment_sum(pt, values, idx, n):
    # Per-point sums over the ragged table; the gradient is a gather, so this stays cheap.
    return pt.inc_subtensor(pt.zeros(n)[idx], values)


def _branch_sums(pt, y, mu, log_sd, segsum, nu):
    """Per-point log-likelihood of the +mu and −mu branches (symbolic)."""
    if nu is None:
        inv_var = pt.exp(-2.0 * log_sd)
        common = -0.5 * (y**2 + mu**2) * inv_var - log_sd - float(0.5 * np.log(2 * np.pi))
        cross = y * mu * inv_var  # log N(y|+ψ) − log N(y|−ψ) = 2·cross
        C = segsum(common)
        A = segsum(cross)
        return C + A, C - A
    from pytensor.tensor.special import gammaln  # noqa: PLC0415 - only for Student-t

    const = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * pt.log(nu * np.pi) - log_sd
    inv_sd = pt.exp(-log_sd)
    pos = const - 0.5 * (nu + 1) * pt.log1p(((y - mu) * inv_sd) ** 2 / nu)
    neg = const - 0.5 * (nu + 1) * pt.log1p(((y + mu) * inv_sd) ** 2 / nu)
    return segsum(pos), segsum(neg)


def _collapsed_level(lib, g, y, log_sd, segsum, expand, prior_mean, prior_sd):
    """The signed level v integrated out of y = v·g + ε, ε ~ Normal(0, sd²), v ~ Normal(m, τ²).

    Per observation g, y and log sd; ``segsum`` sums them per point and ``expand`` spreads a
    per-point value back over its observations; ``lib`` is numpy or pytensor.tensor. Returns
    each point's marginal log-likelihood and the mean and sd of v | y. The joint Normal has
    covariance τ²·g·gᵀ + diag(sd²); its quadratic form is evaluated as the penalized
    residual sum at the conditional mean v̄, Σ (y − v̄·g)²/sd² + (v̄ − m)²/τ², a sum of
    non-negative terms. The textbook expansion in Σg²/sd², Σg·y/sd² and Σy²/sd² cancels
    catastrophically when Σg²/sd² is huge (a steep α at small k): on digits at m = 5 one
    chain's step size fell to 1e-15 there.

    Sampling v itself couples a small v to a free α along a curved ridge (v·(k/k_ref)^(−α)
    stays the same) that NUTS crossed slowly: per-point α had bulk ESS 7 on two of three
    simulated tables (docs/benchmarks.md, "The signed level integrated out").
    """
    inv_var = lib.exp(-2.0 * log_sd)
    gw = g * inv_var
    t2 = prior_sd**2
    precision = t2 * segsum(g * gw)  # the data's precision about v, relative to the prior's
    v_bar = (prior_mean + t2 * segsum(y * gw)) / (1.0 + precision)
    resid = y - expand(v_bar) * g
    quad = segsum(resid * resid * inv_var) + (v_bar - prior_mean) ** 2 / t2
    ll = -segsum(log_sd + float(0.5 * np.log(2 * np.pi))) - 0.5 * lib.log1p(precision) - 0.5 * quad
    return ll, v_bar, prior_sd / lib.sqrt(1.0 + precision)


def _level_mixture(lib, g, y, log_sd, segsum, expand, prior_mean, scales):
    """The signed level integrated out under a scale mixture of Normal populations.

    ``scales`` lists (log weight, sd) per component, all centred on ``prior_mean``. Returns
    each point's marginal log-likelihood and, per component, the posterior log weight of
    the component given the point's data and the mean and sd of v | y within it. One
    component is :func:`_collapsed_level` itself. With two, a few points far from the bulk
    (on digits, a few very harmful points) fall in the wide component and are not pulled
    into the bulk.
    """
    parts = [(lw, *_collapsed_level(lib, g, y, log_sd, segsum, expand, prior_mean, sd)) for lw, sd in scales]
    if len(parts) == 1:
        _, ll, v_bar, v_sd = parts[0]
        return ll, [(0.0 * ll, v_bar, v_sd)]
    a, b = (lw + ll for lw, ll, _, _ in parts)
    ll = np.logaddexp(a, b) if lib is np else _guarded_logaddexp(lib, a, b)
    return ll, [(joint - ll, v_bar, v_sd) for joint, (_, _, v_bar, v_sd) in zip((a, b), parts, strict=True)]


def _alpha_from_log(lib, log_alpha, upper: float = _CLIP_LOG_ALPHA):
    """α = exp(log α), its exponent clipped to [−_CLIP_LOG_ALPHA, upper] (see _log_alpha_max)."""
    return lib.exp(lib.clip(log_alpha, -_CLIP_LOG_ALPHA, upper))


def _log_alpha_max(u: np.ndarray) -> float:
    """The largest log α a log-normal population may reach on a table with these log(k / k_ref).

    α·|u| then stays below half the clip on the law's exponent (_CLIP_MEAN), so that clip
    never acts inside the observed range. Where it did act, a huge α turned the law into a
    step at k_ref (flat below, zero above), which fits a curve that bends in log k: on the
    accuracy benchmark's digits table at m = 50 one chain put a point at α ≈ 2,500 there
    (r̂ 2.23) and its c = ψ·k_ref^α overflowed (docs/benchmarks.md, "Features and the noise").
    """
    span = float(np.max(np.abs(u), initial=0.0))
    if span == 0.0:  # one size only: α is not identified by the data and nothing overflows
        return _CLIP_LOG_ALPHA
    return float(min(_CLIP_LOG_ALPHA, np.log(0.5 * _CLIP_MEAN / span)))


def _guarded_logaddexp(pt, a, b):
    # log(e^a + e^b) shifted by the max; when the max is ±inf (both branches −inf, or an
    # overflow) the shift is replaced by 0 so the result is −inf/+inf instead of NaN.
    m = pt.maximum(a, b)
    m = pt.switch(pt.isinf(m), 0.0, m)
    return m + pt.log(pt.exp(a - m) + pt.exp(b - m))


# ====================================================================== post-processing (numpy)
def _dataset_from_point(model, point: dict) -> xr.Dataset:
    """A one-chain, one-draw posterior from a MAP point."""
    data = {}
    for rv in model.free_RVs:
        dims = model.named_vars_to_dims.get(rv.name, ())
        value = np.asarray(point[rv.name])
        data[rv.name] = (("chain", "draw", *dims), value[None, None, ...])
    coords = {k: np.asarray(v) for k, v in model.coords.items()}
    coords.update(chain=[0], draw=[0])
    return xr.Dataset(data, coords=coords)


def _approx_draws(approx, model, draws: int, seed: int) -> xr.Dataset:
    """``draws`` draws of the free variables from a fitted ADVI approximation, as one chain.

    The same draws as ``approx.sample(draws, random_seed=seed)``, which records them into a
    trace one at a time (4.9 s for 1000 draws at 10,000 points); here they come from one call
    of the approximation's vectorised sampler and each transform is undone on the whole array
    (0.9 s; docs/benchmarks.md, "ADVI's step size and the derived quantities").
    """
    import pytensor.tensor as pt

    values = approx.sample_dict_fn(draws, random_seed=seed)
    data = {}
    for rv in model.free_RVs:
        value = values[model.rvs_to_values[rv].name]
        transform = model.rvs_to_transforms.get(rv)
        if transform is not None:
            value = transform.backward(pt.as_tensor_variable(value), *rv.owner.inputs).eval()
        dims = model.named_vars_to_dims.get(rv.name, ())
        data[rv.name] = (("chain", "draw", *dims), np.asarray(value)[None])
    coords = {k: np.asarray(v) for k, v in model.coords.items()}
    coords.update(chain=[0], draw=np.arange(draws))
    return xr.Dataset(data, coords=coords)


def _pop_mean(post: xr.Dataset, b: str, X: np.ndarray) -> np.ndarray:
    """μ_b + B_b·x for every draw: shape (chain, draw, n_rows of X)."""
    mean = post[f"{b}_mu"].values[..., None]
    if X.shape[1] and f"{b}_B" in post:
        mean = mean + np.einsum("cdf,nf->cdn", post[f"{b}_B"].values, X)
    return np.broadcast_to(mean, (*mean.shape[:2], X.shape[0]))


def _mix(post: xr.Dataset, b: str, z: dict, correlated: bool) -> np.ndarray:
    """The standardized deviation of block b; mixes z_ell into α under the LKJ option."""
    if not correlated or b not in ("alpha", "log_alpha"):
        return z[b]
    rho = post["ell_alpha_corr"].values[..., None]
    return rho * z["ell"] + np.sqrt(1.0 - rho**2) * z[b]


def _log_pi(post: xr.Dataset, X: np.ndarray):
    logit = post["pi_intercept"].values[..., None]
    if X.shape[1] and "pi_B" in post:
        logit = logit + np.einsum("cdf,nf->cdn", post["pi_B"].values, X)
    logit = np.broadcast_to(logit, (*logit.shape[:2], X.shape[0]))
    return -np.logaddexp(0.0, -logit), -np.logaddexp(0.0, logit)


def _derive(posterior: xr.Dataset, s: dict, likelihood: str, correlated: bool, centered: dict, rng,
            point_estimate: bool = False):
    """Add per-point and paper-scale quantities; compute the per-point log-likelihood.

    Vectorized over draws, in chunks so that memory stays at a few tens of MB whatever the
    number of draws and observations. ``point_estimate`` (MAP) gives an integrated-out
    signed level its conditional mean instead of a random draw.
    """
    post = posterior.copy()
    X = s["X"] if s["X"] is not None else np.zeros((len(s["points"]), 0))
    if correlated:
        post["ell_alpha_corr"] = 2.0 * post["ell_alpha_r"] - 1.0
    blocks = _priors.blocks("signed" if "level_mu" in post else "log",
                            "lognormal" if "log_alpha_mu" in post else "normal")
    signed = "level" in blocks
    z = {b: post[f"{b}_z"].values for b in blocks if f"{b}_z" in post}
    # The signed level was integrated out (Normal likelihood): no level, no level_z.
    collapsed = signed and "level" not in post and "level_z" not in post
    theta = {}
    for b in blocks:
        if collapsed and b == "level":
            continue
        if b in post:
            theta[b] = post[b].values
        elif f"{b}_tau" not in post:  # a pooled block (noise="pooled" or "pooled_scale")
            theta[b] = _pop_mean(post, b, X)
        else:
            theta[b] = _pop_mean(post, b, X) + post[f"{b}_tau"].values[..., None] * _mix(post, b, z, correlated)
    if "log_alpha" in theta:
        theta["alpha"] = _alpha_from_log(np, theta["log_alpha"], s["log_alpha_max"])
    gap = None
    if "gap" in post:  # law="two_term"
        theta["b"] = post["b_tau"].values[..., None] * post["b_z"].values
        gap = post["gap"].values.reshape(-1)
    if "kappa_mu" in post:  # law="curved"
        theta["kappa"] = post["kappa_mu"].values[..., None] + post["kappa_tau"].values[..., None] * post["kappa_z"].values
    if not signed:
        log_pi, log_1mpi = _log_pi(post, X)
    nu = 1.0 + post["nu_minus_1"].values if likelihood == "studentt" else None
    if nu is not None:
        post["nu"] = post["nu_minus_1"] + 1.0

    n_chain, n_draw, n_pt = theta["alpha"].shape
    flat = {b: v.reshape(n_chain * n_draw, n_pt) for b, v in theta.items()}
    nu_f = None if nu is None else nu.reshape(-1)
    layout = _np_layout(s)
    # About half a million cells per chunk: large enough that numpy's per-call overhead is
    # small, small enough that the temporaries stay in cache (4e6 cells was 3x slower).
    chunk = max(1, int(5e5 // layout["cells"]))
    ll = np.empty((n_chain * n_draw, n_pt))
    p_harm = np.empty_like(ll)
    p_wide = np.empty_like(ll) if collapsed and "level_w" in post else None
    if collapsed:
        level_mean = _pop_mean(post, "level", X).reshape(-1, n_pt)
        level_tau = post["level_tau"].values.reshape(-1, 1)
        scales = [(np.zeros_like(level_tau), level_tau)]
        if "level_w" in post:  # level_tails="heavy": a two-scale population
            w = post["level_w"].values.reshape(-1, 1)
            ratio = np.exp(post["level_log_ratio"].values.reshape(-1, 1))
            scales = [(np.log1p(-w), level_tau), (np.log(w), level_tau * ratio)]
        flat["level"] = np.empty_like(ll)
    for lo in range(0, n_chain * n_draw, chunk):
        sl = slice(lo, lo + chunk)
        if collapsed:
            ll[sl], comps = _collapsed_level_np(s, {b: v[sl] for b, v in flat.items() if b != "level"},
                                                level_mean[sl], [(lw[sl], sd[sl]) for lw, sd in scales],
                                                None if gap is None else gap[sl], layout)
            flat["level"][sl], p_harm[sl] = _draw_level(comps, rng, point_estimate)
            if p_wide is not None:  # P(the point is in the wide part | the draw)
                p_wide[sl] = np.exp(comps[1][0])
            continue
        pos, neg = _branch_sums_np(s, {b: v[sl] for b, v in flat.items()},
                                   None if nu_f is None else nu_f[sl], None if gap is None else gap[sl], layout)
        if signed:  # the draw's level carries the sign: no latent to marginalize
            ll[sl] = pos
            p_harm[sl] = flat["level"][sl] < 0
            continue
        a = log_pi.reshape(-1, n_pt)[sl] + pos
        bneg = log_1mpi.reshape(-1, n_pt)[sl] + neg
        ll[sl] = np.logaddexp(a, bneg)
        # P(sign = −1 | θ, data): the conditional posterior of the marginalized latent.
        p_harm[sl] = np.exp(bneg - ll[sl])
    p_harm = p_harm.reshape(n_chain, n_draw, n_pt)
    if collapsed:
        theta["level"] = flat["level"].reshape(n_chain, n_draw, n_pt)
    if signed:
        sign = np.where(theta["level"] < 0, -1.0, 1.0)
        magnitude = np.abs(theta["level"])
    else:
        sign = np.where(rng.random(p_harm.shape) < p_harm, -1.0, 1.0)
        magnitude = np.exp(theta["ell"])

    dims = ("chain", "draw", "point")
    k_ref, d = s["k_ref"], s["delta_scale"]
    for b in (*blocks, "alpha"):
        if b not in post:
            post[b] = (dims, theta[b])
    if not signed:
        post["pi"] = (dims, np.exp(log_pi))
    post["c"] = (dims, sign * magnitude * k_ref ** theta["alpha"] * d)
    post["sigma"] = (dims, np.exp(theta["log_s"]) * k_ref ** (0.5 * theta["beta"]) * d)
    post["p_harmful"] = (dims, p_harm)
    if p_wide is not None:
        post["p_level_wide"] = (dims, p_wide.reshape(n_chain, n_draw, n_pt))
    if "kappa" in theta:  # κ is the same on both scales; its centre k_ref travels in attrs
        post["kappa"] = (dims, theta["kappa"])
        post.attrs["k_ref"] = float(k_ref)
    if gap is not None:  # the second term on the paper's scale: b·k^(−γ)
        gamma = theta["alpha"] + post["gap"].values[..., None]
        post["gamma"] = (dims, gamma)
        post["b"] = (dims, theta["b"] * k_ref**gamma * d)
    log_lik = xr.DataArray(ll.reshape(n_chain, n_draw, n_pt), dims=dims,
                           coords={"chain": post["chain"], "draw": post["draw"], "point": post["point"]})
    return post, log_lik


def _np_layout(s: dict) -> dict:
    """The observations laid out for :func:`_branch_sums_np`, built once per derive.

    Dense tables use the model's own (points × m_max) padding, so a draw's per-point values
    broadcast along rows instead of being gathered into every observation (measured on
    10,000 × 50: about 8 ms per draw against 19-24 ms for the gathers, docs/benchmarks.md).
    """
    n_obs = np.bincount(s["idx"], minlength=len(s["points"]))
    if s["dense"]:
        def pad(v):  # float64 here whatever floatX the model was built in
            return _pad(s, v).astype(float)

        mask = pad(np.ones_like(s["y"]))
        return {"y": pad(s["y"]), "u": pad(s["u"]), "log_w": pad(s["log_w"]), "cells": mask.size, "n_obs": n_obs,
                "rows": lambda v: v[:, :, None],
                "segsum": lambda v: np.einsum("dnm,nm->dn", v, mask)}
    idx, starts = s["idx"], s["starts"]
    return {"y": s["y"], "u": s["u"], "log_w": s["log_w"], "cells": len(idx), "n_obs": n_obs,
            "rows": lambda v: v[:, idx],
            "segsum": lambda v: np.add.reduceat(v, starts, axis=1)}


def _observation_terms_np(theta: dict, gap, lay: dict):
    """y (less a two-term law's second term), the law's mean and log sd per observation."""
    rows, y, u = lay["rows"], lay["y"], lay["u"]
    if gap is not None:
        gap = gap.reshape((-1,) + (1,) * y.ndim)  # one value per draw
        y = y - rows(theta["b"]) * np.exp(np.clip(-(rows(theta["alpha"]) + gap) * u, -_CLIP_MEAN, _CLIP_MEAN))
    eta = rows(theta["alpha"]) * (-u)
    if "ell" in theta:
        eta += rows(theta["ell"])
    if "kappa" in theta:
        eta -= 0.5 * rows(theta["kappa"]) * u**2
    mu = np.exp(np.clip(eta, -_CLIP_MEAN, _CLIP_MEAN, out=eta), out=eta)
    if "level" in theta:  # level="signed": only the + branch is used
        mu *= rows(theta["level"])
    log_sd = rows(theta["beta"]) * (-0.5 * u)
    log_sd += rows(theta["log_s"])
    log_sd -= lay["log_w"]
    np.clip(log_sd, -_CLIP_LOGSD, _CLIP_LOGSD, out=log_sd)
    return y, mu, log_sd


def _collapsed_level_np(s: dict, theta: dict, prior_mean, scales, gap=None, layout: dict | None = None):
    """numpy twin of the integrated-out signed level (:func:`_level_mixture`), arrays (draws, points)."""
    lay = _np_layout(s) if layout is None else layout
    y, g, log_sd = _observation_terms_np(theta, gap, lay)
    return _level_mixture(np, g, y, log_sd, lay["segsum"], lay["rows"], prior_mean, scales)


def _draw_level(comps, rng, point_estimate: bool):
    """One draw of v per (draw, point) from its exact conditional, and P(v < 0 | draw).

    ``comps`` is :func:`_level_mixture`'s per-component (log weight, mean, sd). P(harmful)
    is the conditional P(v < 0), which averages to the share of negative draws with less
    Monte Carlo noise. A point estimate (MAP) takes the conditional mean.
    """
    p_harm = sum(np.exp(lw) * ndtr(-mean / sd) for lw, mean, sd in comps)
    if point_estimate:
        return sum(np.exp(lw) * mean for lw, mean, _ in comps), p_harm
    mean, sd = comps[0][1], comps[0][2]
    if len(comps) == 2:  # the component first, then v within it
        wide = rng.random(mean.shape) < np.exp(comps[1][0])
        mean, sd = np.where(wide, comps[1][1], mean), np.where(wide, comps[1][2], sd)
    return mean + sd * rng.standard_normal(mean.shape), p_harm


def _branch_sums_np(s: dict, theta: dict, nu, gap=None, layout: dict | None = None):
    """numpy twin of :func:`_branch_sums` for a chunk of draws: arrays (draws, points)."""
    lay = _np_layout(s) if layout is None else layout
    segsum = lay["segsum"]
    y, mu, log_sd = _observation_terms_np(theta, gap, lay)
    if nu is None:
        inv_var = np.exp(-2.0 * log_sd)
        A = segsum(y * mu * inv_var)
        common = np.multiply(mu, mu, out=mu)
        common += y**2
        common *= -0.5 * inv_var
        common -= log_sd
        C = segsum(common) - 0.5 * np.log(2 * np.pi) * lay["n_obs"]
        return C + A, C - A
    from scipy.special import gammaln

    nu = nu.reshape((-1,) + (1,) * lay["y"].ndim)  # y itself may have a draw axis (two_term)
    const = gammaln((nu + 1) / 2) - gammaln(nu / 2) - 0.5 * np.log(nu * np.pi) - log_sd
    inv_sd = np.exp(-log_sd)
    pos = const - 0.5 * (nu + 1) * np.log1p(((y - mu) * inv_sd) ** 2 / nu)
    neg = const - 0.5 * (nu + 1) * np.log1p(((y + mu) * inv_sd) ** 2 / nu)
    return segsum(pos), segsum(neg)


# ====================================================================== small helpers
#: Standardized features are clipped to ±this many sd (see _standardize).
FEATURE_CLIP = 3.0


def _standardize(X: np.ndarray, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
    """(X − mean) / sd, clipped to ±FEATURE_CLIP.

    The features enter linear predictors of exponents (α, the log level): one point whose
    feature lies 8 sd out (measured on a PCA embedding of digits) would otherwise get an
    extrapolated α of 5 or −1.4 and a ψ at small k thousands of times the typical one.
    """
    return np.clip((X - mean) / sd, -FEATURE_CLIP, FEATURE_CLIP)


def _check_k(k) -> np.ndarray:
    try:
        k = np.atleast_1d(np.asarray(k, dtype=float))
    except (TypeError, ValueError):
        raise ValueError(f"k must be a number or an array of numbers; got {k!r}") from None
    if k.ndim != 1 or k.size == 0:
        raise ValueError(f"k must be a number or a 1-D array of sizes; got shape {k.shape}")
    if not np.isfinite(k).all() or (k <= 0).any():
        raise ValueError(f"k must be positive and finite; got {k[~(np.isfinite(k) & (k > 0))][:5].tolist()}")
    return k


def _jsonable(obj):
    if obj is None:
        return None
    return json.loads(json.dumps(obj, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o)))
