"""Data values with posterior uncertainty, from the fitted scaling law ψ_k = c·k^(−α).

A semivalue of a point is a weighted average of its expected marginal contributions over
the size k of the set it joins, φ = Σ_k w_k ψ_k with Σ_k w_k = 1. Under the scaling law
ψ_k = c·k^(−α), so every posterior draw of (c, α) gives one draw of φ:

    φ = c · f(α),   f(α) = Σ_k w_k k^(−α).

This module turns a fitted :class:`~bayescale.ScalingLawModel` (or an ``InferenceData`` laid
out like its output) into per-point values with intervals, ranks with intervals, ψ_k
summaries at any size and P(harmful).
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from numpy.polynomial import Chebyshev
from scipy import stats
from scipy.special import logsumexp

from ._validation import check_int, check_k_range

__all__ = [
    "ExtrapolationWarning",
    "p_harmful",
    "semivalue_weights",
    "value",
    "value_at",
]

_DRAW_DIMS = ("chain", "draw", "point")


class ExtrapolationWarning(UserWarning):
    """The scaling law is used at dataset sizes outside the range it was fitted on."""


# ---------------------------------------------------------------------------------------
# one accessor for a fitted model or an InferenceData
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Posterior:
    """What valuation, selection and plots need from a fit, in one layout."""

    c: xr.DataArray  # dims (chain, draw, point), signed, paper's scale
    alpha: xr.DataArray  # dims (chain, draw, point)
    p_harmful: xr.DataArray | None  # per-draw P(c < 0), same dims, when the fit has it
    k_observed: tuple[int, int]  # inclusive (min k, max k) of the fitted observations
    observations: pd.DataFrame  # columns point, k, delta (+ count when rows average draws)
    b: xr.DataArray | None = None  # second term b·k^(−γ) of law="two_term", same dims
    gamma: xr.DataArray | None = None
    kappa: xr.DataArray | None = None  # curvature of law="curved", same dims
    k_ref: float | None = None  # the size the curvature is centred on

    @property
    def points(self) -> np.ndarray:
        return self.c["point"].to_numpy()

    def draws(self, name: str = "c") -> np.ndarray:
        """Draws as a (chain·draw, point) array."""
        da = getattr(self, name)
        return da.to_numpy().reshape(-1, da.sizes["point"])


def _posterior(model: Any) -> _Posterior:
    """Accept a fitted ``ScalingLawModel`` or an ``InferenceData``; return a :class:`_Posterior`.

    Duck-typed on ``.idata`` so that importing this module does not import PyMC.
    """
    if isinstance(model, _Posterior):
        return model
    if isinstance(model, az.InferenceData):
        idata = model
        observations = None
        k_observed = None
    elif hasattr(model, "idata"):
        idata = model.idata  # a ScalingLawModel raises "call fit first" itself
        contributions = getattr(model, "contributions_", None)
        if contributions is None:
            observations = None
        else:
            cols = [col for col in ("point", "k", "delta", "count") if col in contributions.data]
            observations = contributions.data[cols]
        k_observed = getattr(model, "k_observed_", None)
    else:
        raise ValueError(
            "model must be a fitted ScalingLawModel or an arviz.InferenceData; "
            f"got {type(model).__name__}"
        )

    post = getattr(idata, "posterior", None)
    if post is None or "c" not in post or "alpha" not in post:
        raise ValueError("model's InferenceData needs a posterior group with 'c' and 'alpha'")
    arrays = {}
    for name in ("c", "alpha", "p_harmful", "b", "gamma", "kappa"):
        if name not in post:
            continue
        da = post[name]
        if set(da.dims) != set(_DRAW_DIMS):
            raise ValueError(
                f"posterior['{name}'] must have dims {_DRAW_DIMS}; got {tuple(da.dims)}"
            )
        arrays[name] = da.transpose(*_DRAW_DIMS)

    if observations is None:
        const = getattr(idata, "constant_data", None)
        obs = getattr(idata, "observed_data", None)
        if const is None or obs is None or "k" not in const or "point" not in const or "delta" not in obs:
            raise ValueError(
                "model's InferenceData needs constant_data 'k' and 'point' and observed_data "
                "'delta' (the fitted observations)"
            )
        observations = pd.DataFrame(
            {
                "point": const["point"].to_numpy(),
                "k": const["k"].to_numpy(),
                "delta": obs["delta"].to_numpy(),
            }
        )
        if "count" in const:
            observations["count"] = const["count"].to_numpy()
    k_ref = post.attrs.get("k_ref") if "kappa" in arrays else None
    if "kappa" in arrays and k_ref is None:
        raise ValueError("posterior['kappa'] (law='curved') needs posterior.attrs['k_ref'], the size it is centred on")
    if k_observed is None:
        k = observations["k"].to_numpy()
        k_observed = (int(k.min()), int(k.max()))
    return _Posterior(
        c=arrays["c"],
        alpha=arrays["alpha"],
        p_harmful=arrays.get("p_harmful"),
        k_observed=(int(k_observed[0]), int(k_observed[1])),
        observations=observations.reset_index(drop=True),
        b=arrays.get("b") if "gamma" in arrays else None,
        gamma=arrays.get("gamma") if "b" in arrays else None,
        kappa=arrays.get("kappa"),
        k_ref=None if k_ref is None else float(k_ref),
    )


def _subset_points(post: _Posterior, points) -> _Posterior:
    if points is None:
        return post
    wanted = np.atleast_1d(np.asarray(points))
    if wanted.ndim != 1 or np.unique(wanted).size != wanted.size:
        raise ValueError("points must be a 1-D sequence of point ids without repeats")
    unknown = np.setdiff1d(wanted, post.points)
    if unknown.size:
        raise ValueError(f"points not in the model: {unknown[:10].tolist()}")
    sel = {"point": wanted}
    pick = lambda da: None if da is None else da.sel(sel)  # noqa: E731
    return _Posterior(
        c=post.c.sel(sel),
        alpha=post.alpha.sel(sel),
        p_harmful=pick(post.p_harmful),
        k_observed=post.k_observed,
        observations=post.observations[post.observations["point"].isin(wanted)],
        b=pick(post.b),
        gamma=pick(post.gamma),
        kappa=pick(post.kappa),
        k_ref=post.k_ref,
    )


def _check_prob(value: float, name: str) -> float:
    if not isinstance(value, numbers.Real) or not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must be a number in (0, 1); got {value!r}")
    return float(value)


def _warn_extrapolated(mass_outside: float, k_observed: tuple[int, int], what: str) -> None:
    if mass_outside > 0:
        warnings.warn(
            f"{what} put {mass_outside:.3g} of their weight outside the observed k range "
            f"[{k_observed[0]}, {k_observed[1]}]; the scaling law is extrapolated there.",
            ExtrapolationWarning,
            stacklevel=4,  # past this helper and _prepare_weights, to the caller of value()
        )


# ---------------------------------------------------------------------------------------
# semivalue weights over cardinalities
# ---------------------------------------------------------------------------------------
_NAMED = ("distributional", "shapley", "banzhaf", "beta")


def semivalue_weights(weights="distributional", *, n: int | None = None, k_range=None) -> pd.Series:
    """Probability weights over the size k of the set a point joins.

    A semivalue is φ = Σ_k w_k ψ_k, where ψ_k is the expected marginal contribution to a
    uniformly drawn set of size k. This returns w as a Series indexed by k that sums to one.

    Parameters
    ----------
    weights : str, tuple or array_like
        - ``"distributional"``: uniform over ``k_range`` (inclusive), the paper's
          distributional Shapley value. Needs ``k_range``.
        - ``"shapley"``: uniform over k = 0..n−1 (needs ``n``, the dataset size).
        - ``("beta", a, b)``: Beta(a, b) Shapley (Kwon & Zou, 2022) for a dataset of ``n``
          points. The size k of the set joined follows a beta-binomial distribution with
          n−1 trials and shape parameters (b, a): w_k = C(n−1, k) B(k+b, n−1−k+a) / B(a, b).
          a > b puts more weight on small sets (their Beta(16, 1) is a common choice);
          Beta(1, 1) is the Shapley value.
        - ``"banzhaf"``: every subset of the other n−1 points equally likely, so
          k ~ Binomial(n−1, 1/2).
        - A user vector: a pandas Series or a mapping indexed by k, or a 1-D array over
          k = 0..len−1 (or over ``k_range`` when it is given). Non-negative, normalized to
          sum to one.
    n : int, optional
        Number of points in the dataset; required by "shapley", "banzhaf" and "beta".
    k_range : (int, int), optional
        Inclusive size range for "distributional" and for array weights.

    Returns
    -------
    pandas.Series
        Index ``k`` (int, increasing), values summing to one. Sizes with zero weight
        (including underflowed binomial tails) are left out. k = 0 is kept when the scheme
        puts weight on it; :func:`value` decides what to do with it.

    Raises
    ------
    ValueError
        Unknown name, missing ``n``, Beta parameters ≤ 0, negative or non-finite user
        weights, or ``k_range`` with a scheme that does not use it.

    Examples
    --------
    >>> w = semivalue_weights("shapley", n=4)
    >>> w.tolist()
    [0.25, 0.25, 0.25, 0.25]
    >>> semivalue_weights(("beta", 1, 1), n=4).round(12).tolist()
    [0.25, 0.25, 0.25, 0.25]
    >>> float(semivalue_weights("distributional", k_range=(10, 19)).sum())
    1.0
    """
    if isinstance(weights, str):
        name = weights.lower()
        if name == "distributional":
            if n is not None:
                raise ValueError("n is not used by 'distributional' weights; give k_range")
            if k_range is None:
                raise ValueError("'distributional' weights need k_range=(k_min, k_max)")
            k_min, k_max = check_k_range(k_range)
            ks = np.arange(k_min, k_max + 1)
            return _as_series(ks, np.full(ks.size, 1.0 / ks.size))
        if name in ("shapley", "banzhaf"):
            n_ = _check_n(n, name, k_range)
            ks = np.arange(n_)
            if name == "shapley":
                return _as_series(ks, np.full(n_, 1.0 / n_))
            return _as_series(ks, stats.binom.pmf(ks, n_ - 1, 0.5))
        if name == "beta":
            raise ValueError("Beta Shapley weights are given as ('beta', a, b)")
        raise ValueError(
            f"weights must be one of {list(_NAMED[:3])}, ('beta', a, b) or a vector over k; "
            f"got {weights!r}"
        )
    if isinstance(weights, tuple) and len(weights) > 0 and isinstance(weights[0], str):
        if weights[0].lower() != "beta" or len(weights) != 3:
            raise ValueError(f"tuple weights must be ('beta', a, b); got {weights!r}")
        _, a, b = weights
        for label, par in (("a", a), ("b", b)):
            if not isinstance(par, numbers.Real) or not np.isfinite(par) or par <= 0:
                raise ValueError(f"Beta Shapley parameter {label} must be a finite number > 0; got {par!r}")
        n_ = _check_n(n, "beta", k_range)
        ks = np.arange(n_)
        return _as_series(ks, stats.betabinom.pmf(ks, n_ - 1, float(b), float(a)))
    return _user_weights(weights, k_range)


def _check_n(n, scheme: str, k_range) -> int:
    if n is None:
        raise ValueError(f"'{scheme}' weights need n, the number of points in the dataset")
    if k_range is not None:
        raise ValueError(f"k_range is not used by '{scheme}' weights (they cover k = 0..n-1)")
    return check_int(n, "n", minimum=1)


def _user_weights(weights, k_range) -> pd.Series:
    if isinstance(weights, Mapping):
        weights = pd.Series(dict(weights), dtype=float)
    if isinstance(weights, pd.Series):
        ks = pd.to_numeric(pd.Series(weights.index), errors="coerce").to_numpy(dtype=float)
        if k_range is not None:
            raise ValueError("k_range is not used when weights is a Series indexed by k")
        if np.isnan(ks).any() or (ks != np.round(ks)).any() or (ks < 0).any():
            raise ValueError("weights indexed by k need non-negative integer k")
        if np.unique(ks).size != ks.size:
            raise ValueError("weights indexed by k must not repeat a k")
        w = weights.to_numpy(dtype=float)
        ks = ks.astype(np.int64)
    else:
        try:
            w = np.asarray(weights, dtype=float)
        except (TypeError, ValueError):
            raise ValueError(
                f"weights must be a name, ('beta', a, b) or a vector over k; got {weights!r}"
            ) from None
        if w.ndim != 1 or w.size == 0:
            raise ValueError(f"a weights vector must be 1-D and non-empty; got shape {w.shape}")
        if k_range is None:
            ks = np.arange(w.size)
        else:
            k_min, k_max = check_k_range(k_range)
            if w.size != k_max - k_min + 1:
                raise ValueError(
                    f"weights has {w.size} entries but k_range ({k_min}, {k_max}) has "
                    f"{k_max - k_min + 1} sizes"
                )
            ks = np.arange(k_min, k_max + 1)
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and non-negative")
    if w.sum() <= 0:
        raise ValueError("weights must have a positive sum")
    order = np.argsort(ks)
    return _as_series(ks[order], w[order] / w.sum())


def _as_series(ks: np.ndarray, w: np.ndarray) -> pd.Series:
    keep = w > 0
    w = w[keep]
    return pd.Series(w / w.sum(), index=pd.Index(ks[keep].astype(np.int64), name="k"), name="weight")


# ---------------------------------------------------------------------------------------
# f(α) = Σ_k w_k k^(−α), per draw
# ---------------------------------------------------------------------------------------
_EXACT_BUDGET = 5e7  # draws × sizes below which the direct sum is cheap (a second or two)
_CHUNK = 4_000_000  # elements per block of the direct sum, to bound memory (~32 MB)
_CHEB_DEG = 96
_CHEB_TOL = 1e-11  # absolute error allowed in log f, i.e. relative error in the value
_CHEB_MAX_DEPTH = 8  # halvings of the α range before a piece is summed directly


def _log_weighted_power_sum(alpha: np.ndarray, ks: np.ndarray, w: np.ndarray,
                            *, method: str = "auto") -> np.ndarray:
    """log Σ_k w_k k^(−α) for every entry of ``alpha`` (ks ≥ 1, w > 0).

    Computed in log space (logsumexp) so huge k or α never under/overflow. The direct sum
    costs len(alpha)·len(ks); for big problems (Shapley over 10^5 points, 10^6 draws) we
    use that f is a smooth, log-convex function of the scalar α: interpolate log f with
    Chebyshev polynomials over the range of the draws, each checked against the direct sum
    at points between its nodes, halving a piece that misses the tolerance.
    """
    alpha = np.asarray(alpha, dtype=float)
    flat = alpha.ravel()
    logk = np.log(ks.astype(float))
    logw = np.log(w)

    def direct(a: np.ndarray) -> np.ndarray:
        out = np.empty(a.size)
        step = max(1, _CHUNK // max(1, logk.size))
        for start in range(0, a.size, step):
            block = a[start:start + step]
            out[start:start + step] = logsumexp(logw[None, :] - block[:, None] * logk[None, :], axis=1)
        return out

    if method not in ("auto", "direct", "chebyshev"):
        raise ValueError(f"method must be 'auto', 'direct' or 'chebyshev'; got {method!r}")
    use_cheb = method == "chebyshev" or (method == "auto" and flat.size * logk.size > _EXACT_BUDGET)
    if not use_cheb or not flat.size or not np.isfinite(flat).all():
        return direct(flat).reshape(alpha.shape)
    # Piecewise: one polynomial over the range of the draws, halved where it is not accurate
    # (a few outlying α from a wide-tailed ADVI fit stretch the range), down to pieces so
    # narrow that their draws are summed directly.
    out = np.empty(flat.size)
    todo = [(float(flat.min()), float(flat.max()), 0)]
    while todo:
        lo, hi, depth = todo.pop()
        last = hi >= flat.max()  # the top piece is closed on the right
        inside = (flat >= lo) & ((flat <= hi) if last else (flat < hi))
        if not inside.any():
            continue
        if hi > lo and inside.sum() > 2 * _CHEB_DEG:
            poly = Chebyshev.interpolate(direct, _CHEB_DEG, domain=[lo, hi])
            check = np.linspace(lo, hi, 2 * _CHEB_DEG + 1)
            if np.max(np.abs(poly(check) - direct(check))) <= _CHEB_TOL:
                out[inside] = poly(flat[inside])
                continue
            if depth < _CHEB_MAX_DEPTH:
                mid = 0.5 * (lo + hi)
                todo += [(lo, mid, depth + 1), (mid, hi, depth + 1)]
                continue
        out[inside] = direct(flat[inside])
    return out.reshape(alpha.shape)


# ---------------------------------------------------------------------------------------
# summaries
# ---------------------------------------------------------------------------------------
def _log_weighted_curved_sum(alpha: np.ndarray, kappa: np.ndarray, ks: np.ndarray, w: np.ndarray,
                             k_ref: float) -> np.ndarray:
    """log Σ_k w_k k^(−α) exp(−κ log²(k/k_ref)/2) for paired (α, κ) arrays of one shape.

    A function of two parameters per draw, so no one-dimensional interpolation: summed
    directly in blocks of ``_CHUNK`` terms (cost len(alpha)·len(ks)).
    """
    a, kap = np.asarray(alpha, dtype=float).ravel(), np.asarray(kappa, dtype=float).ravel()
    logk = np.log(ks.astype(float))
    base = np.log(w)
    sq = 0.5 * (logk - np.log(k_ref)) ** 2
    out = np.empty(a.size)
    step = max(1, _CHUNK // max(1, logk.size))
    for start in range(0, a.size, step):
        blk = slice(start, start + step)
        out[blk] = logsumexp(base[None, :] - a[blk, None] * logk[None, :] - kap[blk, None] * sq[None, :], axis=1)
    return out.reshape(np.shape(alpha))


def _summaries(draws: np.ndarray, hdi_prob: float) -> dict[str, np.ndarray]:
    """mean, sd, HDI and P(>0) over axis 0 of a (samples, items) array."""
    hdi = az.hdi(draws[None, ...], hdi_prob=hdi_prob)  # (items, 2); a leading chain axis of 1
    return {
        "mean": draws.mean(axis=0),
        "sd": draws.std(axis=0, ddof=1) if draws.shape[0] > 1 else np.zeros(draws.shape[1]),
        "hdi_low": hdi[:, 0],
        "hdi_high": hdi[:, 1],
        "p_positive": (draws > 0).mean(axis=0),
    }


def _semivalue_draws(post: _Posterior, w: pd.Series, *, method: str = "auto") -> np.ndarray:
    """(samples, points) draws of Σ_k w_k ψ_k (ψ_k of the fitted law); w must have k ≥ 1."""
    ks = w.index.to_numpy()
    if post.kappa is not None:
        log_f = _log_weighted_curved_sum(post.draws("alpha"), post.draws("kappa"), ks, w.to_numpy(), post.k_ref)
    else:
        log_f = _log_weighted_power_sum(post.draws("alpha"), ks, w.to_numpy(), method=method)
    out = post.draws("c") * np.exp(log_f)
    if post.b is not None:
        log_g = _log_weighted_power_sum(post.draws("gamma"), ks, w.to_numpy(), method=method)
        out = out + post.draws("b") * np.exp(log_g)
    return out


def _prepare_weights(weights, n, k_range, k_observed: tuple[int, int]) -> pd.Series:
    """Named or user weights, with k = 0 dropped and extrapolation flagged."""
    if k_range is None and isinstance(weights, str) and weights.lower() == "distributional":
        k_range = k_observed
    w = semivalue_weights(weights, n=n, k_range=k_range)
    if 0 in w.index:
        mass0 = float(w.loc[0])
        if mass0 >= 1.0:
            raise ValueError("weights put all their mass on k = 0, where ψ_k = c·k^(−α) is undefined")
        warnings.warn(
            f"weights put {mass0:.3g} of their mass on k = 0 (the value of a point alone), where "
            "the scaling law is undefined; that mass is dropped and the rest renormalized.",
            ExtrapolationWarning,
            stacklevel=3,
        )
        w = w.drop(index=0)
        w = w / w.sum()
    ks = w.index.to_numpy()
    outside = (ks < k_observed[0]) | (ks > k_observed[1])
    _warn_extrapolated(float(w.to_numpy()[outside].sum()), k_observed, "weights")
    return w


def value(
    model,
    weights="distributional",
    k_range=None,
    *,
    n: int | None = None,
    hdi_prob: float = 0.9,
    points=None,
) -> pd.DataFrame:
    """Semivalue of every point, with a posterior for each score and for its rank.

    For each posterior draw of (c, α) the value is φ = Σ_k w_k c k^(−α); the table
    summarizes those draws per point.

    Parameters
    ----------
    model : ScalingLawModel or arviz.InferenceData
        A fitted model, or its InferenceData (posterior ``c`` and ``alpha`` with dims
        (chain, draw, point); constant_data ``k``, ``point``; observed_data ``delta``).
    weights : str, tuple or array_like
        ``"distributional"`` (default; uniform over ``k_range``), ``"shapley"``,
        ``("beta", a, b)``, ``"banzhaf"`` or a vector over k; see :func:`semivalue_weights`.
    k_range : (int, int), optional
        Inclusive size range of distributional (or array) weights; default the observed
        k range of the fit.
    n : int, optional
        Dataset size for "shapley", "banzhaf" and "beta" weights.
    hdi_prob : float
        Mass of the highest-density intervals and of the rank intervals.
    points : array_like, optional
        Only these point ids (ranks are then among them).

    Returns
    -------
    pandas.DataFrame
        One row per point, sorted by point: ``point``, ``mean``, ``sd``, ``hdi_low``,
        ``hdi_high`` (the HDI of the value), ``p_positive`` (posterior P(φ > 0)),
        ``rank_mean``, ``rank_low``, ``rank_high``. Rank 1 is the most valuable point; the
        rank interval is the equal-tailed ``hdi_prob`` interval of the per-draw rank (ranks
        are discrete, so its ends are rounded outwards). ``df.attrs`` holds ``hdi_prob``,
        ``weights`` (the scheme) and ``k_range`` (smallest and largest k with weight).

    Warns
    -----
    ExtrapolationWarning
        When the weights put mass outside the observed k range. ψ at k = 0 (a point on its
        own) is not defined by the law: weight on k = 0 (1/n for Shapley) is dropped and
        the rest renormalized, with a warning.

    Raises
    ------
    ValueError
        Bad weights (see :func:`semivalue_weights`), ``hdi_prob`` outside (0, 1), unknown
        points, or a model that is not fitted.

    Examples
    --------
    >>> import bayescale as bs
    >>> from bayescale.valuation import _fake_idata
    >>> idata = _fake_idata(n_points=3, random_state=0)
    >>> df = bs.value(idata)
    >>> list(df.columns[:5])
    ['point', 'mean', 'sd', 'hdi_low', 'hdi_high']
    >>> df.attrs["hdi_prob"]
    0.9
    """
    hdi_prob = _check_prob(hdi_prob, "hdi_prob")
    post = _subset_points(_posterior(model), points)
    w = _prepare_weights(weights, n, k_range, post.k_observed)
    draws = _semivalue_draws(post, w)

    out = pd.DataFrame({"point": post.points, **_summaries(draws, hdi_prob)})
    # Rank 1 = highest value. Ties have probability zero for continuous draws.
    ranks = stats.rankdata(-draws, axis=1, method="average")
    tail = (1.0 - hdi_prob) / 2.0
    out["rank_mean"] = ranks.mean(axis=0)
    out["rank_low"] = np.floor(np.quantile(ranks, tail, axis=0)).astype(np.int64)
    out["rank_high"] = np.ceil(np.quantile(ranks, 1.0 - tail, axis=0)).astype(np.int64)
    out = out.sort_values("point", ignore_index=True)
    out.attrs.update(
        hdi_prob=hdi_prob,
        weights=weights if isinstance(weights, (str, tuple)) else "user",
        k_range=(int(w.index.min()), int(w.index.max())),
    )
    return out


def _check_sizes(k, name: str = "k") -> np.ndarray:
    arr = np.atleast_1d(np.asarray(k))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a positive number or a 1-D sequence of them; got {k!r}")
    try:
        arr = arr.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric; got {k!r}") from None
    if not np.isfinite(arr).all() or (arr <= 0).any():
        raise ValueError(f"{name} must be finite and > 0 (ψ_k = c·k^(−α) is undefined at k ≤ 0); got {k!r}")
    return arr


def _psi_draws(post: _Posterior, k: np.ndarray) -> np.ndarray:
    """(samples, points, len(k)) draws of ψ_k = c·k^(−α) [+ b·k^(−γ)] [· exp(−κ log²(k/k_ref)/2)]."""
    logk = np.log(k)[None, None, :]
    log_mag = -post.draws("alpha")[..., None] * logk
    if post.kappa is not None:
        log_mag = log_mag - 0.5 * post.draws("kappa")[..., None] * (logk - np.log(post.k_ref)) ** 2
    psi = post.draws("c")[..., None] * np.exp(log_mag)
    if post.b is not None:
        psi = psi + post.draws("b")[..., None] * np.exp(-post.draws("gamma")[..., None] * logk)
    return psi


def value_at(model, k, *, hdi_prob: float = 0.9, points=None) -> pd.DataFrame:
    """Posterior summaries of ψ_k = c·k^(−α), the expected contribution at size k.

    Parameters
    ----------
    model : ScalingLawModel or arviz.InferenceData
    k : float or sequence of float
        Dataset size(s) > 0. Sizes outside the observed range are extrapolated (warned).
    hdi_prob : float
        Mass of the highest-density interval.
    points : array_like, optional
        Only these point ids.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per (point, k), sorted by point then k: ``point``, ``k``,
        ``mean``, ``sd``, ``hdi_low``, ``hdi_high``, ``p_positive``;
        ``df.attrs["hdi_prob"]``.

    Examples
    --------
    >>> import bayescale as bs
    >>> from bayescale.valuation import _fake_idata
    >>> df = bs.value_at(_fake_idata(n_points=2, random_state=0), [200, 500])
    >>> df[["point", "k"]].values.tolist()
    [[0.0, 200.0], [0.0, 500.0], [1.0, 200.0], [1.0, 500.0]]
    """
    hdi_prob = _check_prob(hdi_prob, "hdi_prob")
    ks = _check_sizes(k)
    post = _subset_points(_posterior(model), points)
    lo, hi = post.k_observed
    n_out = int(((ks < lo) | (ks > hi)).sum())
    if n_out:
        warnings.warn(
            f"{n_out} of the requested sizes lie outside the observed k range [{lo}, {hi}]; "
            "the scaling law is extrapolated there.",
            ExtrapolationWarning,
            stacklevel=2,
        )
    draws = _psi_draws(post, ks)  # (S, P, K)
    n_p, n_k = draws.shape[1], draws.shape[2]
    summ = _summaries(draws.reshape(draws.shape[0], n_p * n_k), hdi_prob)
    out = pd.DataFrame(
        {"point": np.repeat(post.points, n_k), "k": np.tile(ks, n_p), **summ}
    )
    out = out.sort_values(["point", "k"], ignore_index=True)
    out.attrs["hdi_prob"] = hdi_prob
    return out


def p_harmful(model, *, points=None) -> pd.DataFrame:
    """Posterior probability that each point is harmful (c < 0).

    Parameters
    ----------
    model : ScalingLawModel or arviz.InferenceData
    points : array_like, optional
        Only these point ids.

    Returns
    -------
    pandas.DataFrame
        Sorted by point: ``point``; ``p_harmful``, the posterior mean of the per-draw
        conditional probability ``p_harmful`` (a Rao-Blackwellized estimate with less Monte
        Carlo noise than counting signs), or, when the posterior has no ``p_harmful``, the
        fraction of draws with c < 0; ``frac_negative``, the fraction of draws with c < 0
        (a check: it estimates the same probability); ``rank`` (1 = most likely harmful).
        ``df.attrs["source"]`` says which estimate ``p_harmful`` is.

    Examples
    --------
    >>> import bayescale as bs
    >>> from bayescale.valuation import _fake_idata
    >>> df = bs.valuation.p_harmful(_fake_idata(n_points=3, random_state=0))
    >>> list(df.columns)
    ['point', 'p_harmful', 'frac_negative', 'rank']
    """
    post = _subset_points(_posterior(model), points)
    frac_negative = (post.draws("c") < 0).mean(axis=0)
    if post.p_harmful is not None:
        prob, source = post.draws("p_harmful").mean(axis=0), "p_harmful"
    else:
        prob, source = frac_negative, "sign of c draws"
    out = pd.DataFrame({"point": post.points, "p_harmful": prob, "frac_negative": frac_negative})
    out["rank"] = stats.rankdata(-out["p_harmful"].to_numpy(), method="min").astype(np.int64)
    out = out.sort_values("point", ignore_index=True)
    out.attrs["source"] = source
    return out


# ---------------------------------------------------------------------------------------
# InferenceData with the fitted layout, for examples and tests
# ---------------------------------------------------------------------------------------
def _idata_from_draws(
    c_draws,
    alpha_draws,
    *,
    points=None,
    observations: pd.DataFrame | None = None,
    p_harmful_draws=None,
) -> az.InferenceData:
    """An InferenceData laid out like a fitted model's, from given (chain, draw, point) draws.

    ``observations`` (columns point, k, delta) fill constant_data/observed_data; by default
    one noise-free observation per point at k = 100 and at k = 1000 (posterior means).
    """
    c_draws = np.asarray(c_draws, dtype=float)
    alpha_draws = np.asarray(alpha_draws, dtype=float)
    if c_draws.ndim != 3 or c_draws.shape != alpha_draws.shape:
        raise ValueError("c_draws and alpha_draws must have the same (chain, draw, point) shape")
    chains, draws, n_points = c_draws.shape
    points = np.arange(n_points) if points is None else np.asarray(points)
    coords = {"chain": np.arange(chains), "draw": np.arange(draws), "point": points}
    variables = {"c": (_DRAW_DIMS, c_draws), "alpha": (_DRAW_DIMS, alpha_draws)}
    if p_harmful_draws is not None:
        variables["p_harmful"] = (_DRAW_DIMS, np.asarray(p_harmful_draws, dtype=float))
    if observations is None:
        ks = np.array([100, 1000])
        mean_c = c_draws.mean(axis=(0, 1))
        mean_a = alpha_draws.mean(axis=(0, 1))
        observations = pd.DataFrame(
            {
                "point": np.repeat(points, ks.size),
                "k": np.tile(ks, n_points),
                "delta": (mean_c[:, None] * ks[None, :] ** (-mean_a[:, None])).ravel(),
            }
        )
    return az.InferenceData(
        posterior=xr.Dataset(variables, coords=coords),
        constant_data=xr.Dataset(
            {"k": ("obs", observations["k"].to_numpy()), "point": ("obs", observations["point"].to_numpy())}
        ),
        observed_data=xr.Dataset({"delta": ("obs", observations["delta"].to_numpy(dtype=float))}),
    )


def _fake_idata(
    c=None,
    alpha=None,
    *,
    n_points: int = 5,
    chains: int = 2,
    draws: int = 100,
    spread: float = 0.1,
    k_range: tuple[int, int] = (100, 1000),
    obs_per_point: int = 10,
    random_state=None,
) -> az.InferenceData:
    """An InferenceData shaped like a fitted model's, with draws scattered around (c, α).

    Draws are log|c| + N(0, spread) and α + N(0, spread) around the given centres (random
    ones when not given); observations are noise-free ψ_k at random k spanning ``k_range``.
    For docstring examples and tests that must not depend on fitting.
    """
    rng = np.random.default_rng(random_state)
    if c is None:
        c = np.exp(rng.normal(-1.0, 0.8, n_points)) * np.where(rng.random(n_points) < 0.1, -1, 1)
    c = np.asarray(c, dtype=float)
    alpha = np.full(c.size, 1.2) if alpha is None else np.asarray(alpha, dtype=float)
    shape = (chains, draws, c.size)
    log_abs = np.log(np.abs(c)) + spread * rng.standard_normal(shape)
    a_draws = alpha + spread * rng.standard_normal(shape)
    pts = np.repeat(np.arange(c.size), obs_per_point)
    ks = rng.integers(k_range[0], k_range[1] + 1, pts.size)
    if obs_per_point >= 2:  # make the observed range exactly k_range
        ks[::obs_per_point] = k_range[0]
        ks[1::obs_per_point] = k_range[1]
    obs = pd.DataFrame({"point": pts, "k": ks, "delta": c[pts] * ks.astype(float) ** (-alpha[pts])})
    return _idata_from_draws(
        np.sign(c) * np.exp(log_abs),
        a_draws,
        observations=obs,
        p_harmful_draws=np.broadcast_to((c < 0).astype(float), shape),
    )
