"""Default priors of :class:`~bayescale.model.ScalingLawModel`, scale-aware and overridable.

The model works on an internal scale: Δ is divided by one data-derived constant
(:func:`delta_scale`, the root mean square of Δ) and k by ``k_ref`` (:func:`reference_k`, the
geometric mean of the observed k). On that scale a typical observation is of order one, so
most priors can be fixed, weakly informative numbers; the few centres that do depend on the
data (the level ℓ of |ψ| at k_ref, the noise level log s and its decay β) are read off cheap
pooled summaries by :func:`default_priors`.

Prior keys and their meaning (``loc``/``scale`` of a Normal unless said otherwise):

==================  ============================================================================
``ell_mu``          (loc, scale): intercept of ℓ = log|ψ_kref| (scaled Δ); loc from the data
``ell_tau``         scale of the HalfNormal prior on the population sd of ℓ
``ell_B``           scale of the Normal(0, ·) prior on each feature effect on ℓ (all ``*_B``
                    defaults are divided by sqrt(number of features) by the model)
``level_mu``        (loc, scale): intercept of the signed level ψ at k_ref on the internal scale
                    (``level="signed"`` only); default (0, 1): Δ has unit root mean square there
``level_tau``       HalfNormal scale of the population sd of the signed level (``level="signed"``)
``level_B``         Normal(0, ·) scale of feature effects on the signed level
``level_w``         (a, b) of the Beta prior on the share of points in the wide part of a
                    two-scale level population (``level_tails="heavy"`` only); default (1, 4)
``level_log_ratio`` HalfNormal scale of log(wide sd / narrow sd) of that population; default 2
``alpha_mu``        (loc, scale): intercept of α; default (1, 1) (the paper sees α ≈ 1-1.5)
``alpha_tau``       HalfNormal scale of the population sd of α
``alpha_B``         Normal(0, ·) scale of feature effects on α
``log_alpha_mu``    (loc, scale): intercept of log α (``alpha_population="lognormal"`` only);
                    default (0.5, 1): a typical α of e^0.5 ≈ 1.6
``log_alpha_tau``   HalfNormal scale of the population sd of log α (``alpha_population="lognormal"``)
``log_alpha_B``     Normal(0, ·) scale of feature effects on log α
``log_s_mu``        (loc, scale): intercept of log s, the noise sd at k_ref; loc from the data
``log_s_tau``       HalfNormal scale of the population sd of log s
``log_s_B``         Normal(0, ·) scale of feature effects on log s
``beta_mu``         (loc, scale): intercept of β, the decay of the noise variance; loc from data
``beta_tau``        HalfNormal scale of the population sd of β
``beta_B``          Normal(0, ·) scale of feature effects on β
``pi_intercept``    (loc, scale): intercept of logit P(c > 0); loc from the share of positive means
``pi_B``            Normal(0, ·) scale of feature effects on logit P(c > 0)
``lkj_eta``         η of the LKJ prior on the (ℓ, α) correlation (``correlated=True`` only)
``nu``              (shape, rate) of the Gamma prior on ν − 1 (``likelihood="studentt"`` only)
``b_tau``           HalfNormal scale of the sd of the second term's coefficient at k_ref
                    (``law="two_term"`` only); default 2·e^(loc of ``ell_mu``), the first term's size
``gap``             (shape, rate) of the Gamma prior on the extra decay of the second term
                    (``law="two_term"`` only); default (2, 2): mean 1, little mass near 0
``kappa_mu``        (loc, scale): population mean of the curvature κ of log|ψ_k| in log k
                    (``law="curved"`` only); default (0, 0.5): no curvature a priori
``kappa_tau``       HalfNormal scale of the population sd of κ (``law="curved"`` only)
==================  ============================================================================

Examples
--------
>>> from bayescale.priors import prior_keys
>>> "alpha_mu" in prior_keys()
True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = [
    "BLOCKS",
    "SIGNED_BLOCKS",
    "blocks",
    "default_priors",
    "delta_scale",
    "prior_keys",
    "reference_k",
    "resolve_priors",
]


def blocks(level: str = "log", alpha_population: str = "normal") -> tuple[str, ...]:
    """The per-point blocks of a model with these options, in the model's order.

    ``level="signed"`` puts the signed level in place of ℓ; ``alpha_population="lognormal"``
    puts log α in place of α (α = exp(log α) is then derived, and always positive).

    Examples
    --------
    >>> blocks("signed", "lognormal")
    ('level', 'log_alpha', 'log_s', 'beta')
    """
    lead = "level" if level == "signed" else "ell"
    slope = "log_alpha" if alpha_population == "lognormal" else "alpha"
    return (lead, slope, "log_s", "beta")


#: The four per-point parameter blocks of the default model, in the order it stacks them.
BLOCKS = blocks()
#: The blocks with ``level="signed"``: the signed level ψ_kref replaces ℓ = log|ψ_kref|.
SIGNED_BLOCKS = blocks("signed")

# Fixed parts of the defaults. They hold on the internal scale, where Δ has unit root mean
# square and log(k / k_ref) spans about ±1.2 for the paper's k in [100, 1000].
_FIXED: dict[str, Any] = {
    "ell_tau": 1.0,  # |ψ| varies over about e^±2 across points in the paper's figures
    "ell_B": 1.0,
    # The signed level ψ_kref (level="signed") on the scale where Δ has unit RMS: |ψ| at k_ref
    # is at most of that order (the RMS is dominated by the small-k, noisier observations).
    "level_mu": (0.0, 1.0),
    "level_tau": 1.0,
    "level_B": 0.5,
    # level_tails="heavy": a share w ~ Beta(1, 4) (mean 0.2) of the points from a population
    # e^r times wider, r ~ HalfNormal(2) (up to about e^4). On digits the fit put 8-10% of the
    # points in a part 19-48 times wider (docs/benchmarks.md, "A heavy-tailed signed level").
    "level_w": (1.0, 4.0),
    "level_log_ratio": 2.0,
    "alpha_mu": (1.0, 1.0),  # paper: α mostly in [1, 1.5]; linear-regression theory says 2
    "alpha_tau": 0.5,
    "alpha_B": 0.5,
    # alpha_population="lognormal": log α ~ Normal. A centre of 0.5 (α ≈ 1.6) sits between the
    # paper's 1-1.5 and the 2 of linear-regression theory; a scale of 1 allows α from about
    # 0.2 to 12. A population sd of 0.5 on log α spreads α over a factor e^±1 between points.
    "log_alpha_mu": (0.5, 1.0),
    "log_alpha_tau": 0.5,
    "log_alpha_B": 0.5,
    "log_s_tau": 1.0,
    "log_s_B": 1.0,
    "beta_tau": 0.5,
    "beta_B": 0.5,
    "pi_B": 1.0,
    "lkj_eta": 2.0,  # mild shrinkage of the (ℓ, α) correlation towards 0
    "nu": (2.0, 0.1),  # Gamma(2, 0.1) on ν − 1: mean 21, still allows heavy tails (ν ≈ 3)
    # Second term decays faster by `gap`; Gamma(2, 2) keeps it away from 0, where the two
    # terms would be the same function of k and trade off freely.
    "gap": (2.0, 2.0),
    # Curvature of log|ψ| in log k (law="curved"). On the reduced accuracy benchmark's real
    # tables the fitted mean is 0.15-1.0 (breast-cancer MLP to digits logistic regression). Where κ is not identified (m = 5, all k far
    # from the smallest size asked for) the quadratic extrapolates wildly: on digits at m = 5,
    # (0, 1) / 0.5 gave R² −151 at k = 25, (0, 0.5) / 0.25 gave −15, and the same at m = 50.
    "kappa_mu": (0.0, 0.5),
    "kappa_tau": 0.25,
}

_PAIR_KEYS = ("ell_mu", "level_mu", "level_w", "alpha_mu", "log_alpha_mu", "log_s_mu", "beta_mu", "pi_intercept", "nu", "gap", "kappa_mu")
_SCALAR_KEYS = (
    "ell_tau", "ell_B", "level_tau", "level_B", "level_log_ratio", "alpha_tau", "alpha_B",
    "log_alpha_tau", "log_alpha_B", "log_s_tau", "log_s_B",
    "beta_tau", "beta_B", "pi_B", "lkj_eta", "b_tau", "kappa_tau",
)


def prior_keys() -> tuple[str, ...]:
    """All prior names that ``priors=`` accepts.

    Examples
    --------
    >>> len(prior_keys())
    28
    """
    return (*_PAIR_KEYS, *_SCALAR_KEYS)


def delta_scale(delta: np.ndarray) -> float:
    """The constant Δ is divided by inside the model: the root mean square of Δ.

    Falls back to 1 for an all-zero table, so the model is still defined.

    Examples
    --------
    >>> delta_scale(np.array([3e-7, -4e-7]))  # doctest: +ELLIPSIS
    3.5355...e-07
    """
    delta = np.asarray(delta, dtype=float)
    rms = float(np.sqrt(np.mean(delta**2))) if delta.size else 0.0
    return rms if rms > 0 and np.isfinite(rms) else 1.0


def reference_k(k: np.ndarray) -> float:
    """The reference size k_ref: the geometric mean of the observed k.

    At k_ref the level ℓ and the slope α are nearly uncorrelated a posteriori, which is what
    makes the sampler's job easy.

    Examples
    --------
    >>> round(reference_k(np.array([10, 1000])), 6)
    100.0
    """
    k = np.asarray(k, dtype=float)
    if k.size == 0 or (k <= 0).any():
        raise ValueError("k must be a non-empty array of positive sizes")
    return float(np.exp(np.mean(np.log(k))))


def default_priors(y: np.ndarray, u: np.ndarray, idx: np.ndarray, n_points: int) -> dict[str, Any]:
    """Data-derived default priors on the internal scale.

    Parameters
    ----------
    y : array, shape (n_obs,)
        Δ divided by :func:`delta_scale`.
    u : array, shape (n_obs,)
        log(k / k_ref).
    idx : array of int, shape (n_obs,)
        Position of each observation's point in ``0..n_points-1``.
    n_points : int

    Returns
    -------
    dict
        One entry per key of :func:`prior_keys`.

    Notes
    -----
    The centres are cheap pooled summaries with wide scales around them, so they locate the
    prior without letting the data in twice in any meaningful amount:

    * ``beta_mu`` and ``log_s_mu``: since one observation is mostly noise, E[log y²] ≈
      2 log s − β u + const; a least-squares line of log y² on u gives −β (slope) and
      log s (intercept, corrected by E[log χ²₁] = −1.27).
    * ``ell_mu``: log of the median |per-point mean of y|, a rough level of |ψ| at k_ref
      (biased upwards by the noise, hence the scale of 2).
    * ``pi_intercept``: logit of the share of points with a positive mean, clipped to ±3.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> u = rng.uniform(-1, 1, 400); idx = np.repeat(np.arange(20), 20)
    >>> y = rng.normal(0.3, np.exp(-u))   # noise variance decays as e^(-2u): β = 2
    >>> round(default_priors(y, u, idx, 20)["beta_mu"][0])
    2
    """
    y = np.asarray(y, dtype=float)
    u = np.asarray(u, dtype=float)
    idx = np.asarray(idx)
    priors = dict(_FIXED)

    # Pooled log-variance regression; the tiny floor keeps log finite for exact zeros.
    logy2 = np.log(np.maximum(y**2, 1e-12))
    if np.ptp(u) > 1e-8:
        slope, intercept = np.polyfit(u, logy2, 1)
    else:  # a single k: β is not identified by the data, keep the paper's β ≈ 2
        slope, intercept = -2.0, float(np.mean(logy2))
    beta_loc = float(np.clip(-slope, -1.0, 5.0))
    log_s_loc = float(np.clip(0.5 * (intercept + 1.27), -5.0, 5.0))
    priors["beta_mu"] = (beta_loc, 1.0)
    priors["log_s_mu"] = (log_s_loc, 1.0)

    sums = np.bincount(idx, weights=y, minlength=n_points)
    counts = np.maximum(np.bincount(idx, minlength=n_points), 1)
    means = sums / counts
    level = float(np.median(np.abs(means)))
    priors["ell_mu"] = (float(np.clip(np.log(max(level, 1e-6)), -8.0, 2.0)), 2.0)
    priors["b_tau"] = 2.0 * float(np.exp(priors["ell_mu"][0]))
    share = float(np.clip(np.mean(means > 0), 0.05, 0.95))
    priors["pi_intercept"] = (float(np.clip(np.log(share / (1 - share)), -3, 3)), 1.5)
    return priors


def resolve_priors(defaults: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Merge user ``overrides`` into ``defaults``, checking every key and value.

    Raises
    ------
    ValueError
        For an unknown key, a pair that is not two finite numbers with a positive second
        entry, or a scale that is not a positive finite number.

    Examples
    --------
    >>> resolve_priors({"alpha_mu": (1.0, 1.0)}, {"alpha_mu": (2, 0.5)})["alpha_mu"]
    (2.0, 0.5)
    """
    out = dict(defaults)
    if overrides is None:
        return out
    if not isinstance(overrides, Mapping):
        raise ValueError(f"priors must be a dict of prior name -> value; got {type(overrides).__name__}")
    unknown = sorted(set(overrides) - set(prior_keys()))
    if unknown:
        raise ValueError(f"priors has unknown key(s) {unknown}; known keys are {list(prior_keys())}")
    for key, value in overrides.items():
        out[key] = _check_prior_value(key, value)
    return out


def _check_prior_value(key: str, value: Any):
    if key in _PAIR_KEYS:
        try:
            a, b = (float(v) for v in value)
        except (TypeError, ValueError):
            raise ValueError(f"priors[{key!r}] must be a pair of numbers; got {value!r}") from None
        if not (np.isfinite(a) and np.isfinite(b) and b > 0):
            raise ValueError(f"priors[{key!r}] must be finite with a positive second entry; got {value!r}")
        if key in ("nu", "gap") and a <= 0:
            raise ValueError(f"priors[{key!r}] is (shape, rate) of a Gamma and needs shape > 0; got {value!r}")
        if key == "level_w" and a <= 0:
            raise ValueError(f"priors[{key!r}] is (a, b) of a Beta and needs a > 0; got {value!r}")
        return (a, b)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"priors[{key!r}] must be a positive number; got {value!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"priors[{key!r}] must be a positive number; got {value!r}")
    return v
