"""Choosing the scaling law: the paper's power law, a curved one, or a two-term law that can change sign.

Real points can hurt a small training set and help a large one (or the reverse), and their
log|ψ_k| bends in log k. One signed power law c·k^(−α) cannot follow either;
``ScalingLawModel(law="two_term")`` follows sign changes and ``law="curved"`` a drifting
exponent. These helpers fit the candidates, let cross-validation choose (PSIS-LOO with
ArviZ, leaving out a point's stretch of k, one observation or one point), and say which
points change sign. Examples are in each function's docstring.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .data import Contributions

__all__ = ["LOO_LEVELS", "compare_laws", "k_bin_groups", "observation_log_likelihood", "select_law",
           "sign_changes"]

LOO_LEVELS = ("observation", "k_bin", "point")


def select_law(
    contributions: Contributions,
    laws: Sequence[str] = ("power", "curved", "two_term"),
    *,
    model_kwargs: Mapping[str, Any] | None = None,
    threshold: float = 2.0,
    level: str = "k_bin",
    k_bins: int = 4,
    **fit_kwargs,
):
    """Fit one ScalingLawModel per law and choose between them by PSIS-LOO.

    By default each point's observations in one of four log-spaced size bins are left out
    together, so LOO asks which law predicts a stretch of k it has not seen (see
    :func:`compare_laws` for ``level``). The simpler law (the first in ``laws``) is kept
    unless another beats it by more than
    ``threshold`` standard errors of the elpd difference, in the pooled draws and in the same
    direction in every chain: a two-term law that only ties the power law adds parameters
    without adding predictive accuracy, and one whose chains disagree has not converged.

    Parameters
    ----------
    contributions : Contributions
    laws : sequence of {"power", "curved", "two_term"}
        Candidates, simplest first (default: all three).
    model_kwargs : dict, optional
        Passed to every ``ScalingLawModel`` (features, likelihood, priors, ...).
    threshold : float
        Number of standard errors of the elpd difference a more complex law must win by.
    level : {"observation", "k_bin", "point"}
        What LOO leaves out; see :func:`compare_laws`.
    k_bins : int
        Number of log-spaced size bins for ``level="k_bin"``.
    **fit_kwargs
        Passed to every ``fit`` (method, draws, random_seed, ...).

    Returns
    -------
    best : ScalingLawModel
        The chosen fitted model; ``best.law_comparison_`` holds the table and
        ``best.law_candidates_`` every fitted model by law.
    table : pandas.DataFrame
        ``arviz.compare`` output (index = law, ranked by elpd_loo) with a ``chosen`` column.

    Examples
    --------
    >>> import bayescale as bs
    >>> c, _ = bs.simulate_contributions(n_points=8, samples_per_point=10, random_state=0)
    >>> best, table = bs.select_law(c, method="advi", draws=100, n=800, random_seed=0,
    ...                            progressbar=False)
    >>> int(table["chosen"].sum())
    1
    """
    from .model import ScalingLawModel

    laws = list(laws)
    if len(laws) < 2 or len(set(laws)) != len(laws):
        raise ValueError(f"laws must name at least two different laws; got {laws!r}")
    model_kwargs = dict(model_kwargs or {})
    if "law" in model_kwargs:
        raise ValueError("model_kwargs must not contain 'law'; list the laws in `laws`")
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0; got {threshold!r}")
    fits = {}
    for law in laws:
        model = ScalingLawModel(law=law, **model_kwargs)
        model.fit(contributions, **fit_kwargs)
        fits[law] = model
    table = compare_laws(fits, threshold=threshold, level=level, k_bins=k_bins)
    best = fits[table.index[table["chosen"]][0]]
    best.law_comparison_ = table
    best.law_candidates_ = fits
    return best, table


def compare_laws(models: Mapping[str, Any], *, threshold: float = 2.0, level: str = "k_bin",
                 k_bins: int = 4) -> pd.DataFrame:
    """PSIS-LOO comparison of models fitted to the same table, simplest first.

    The first model is kept unless a later one beats the current choice by more than
    ``threshold`` standard errors of the paired elpd difference, and does so in every chain
    on its own (the elpd difference has the same sign in each chain). Chains that disagree
    have not converged to one posterior; the candidate is then not chosen, with a warning.

    Parameters
    ----------
    models : dict of name -> fitted ScalingLawModel
        In order of complexity, simplest first.
    threshold : float
    level : {"observation", "k_bin", "point"}
        What is left out. "k_bin" (default) leaves out all of a point's observations in one
        of ``k_bins`` log-spaced size bins at once, so each law must predict a stretch of k
        from the point's other sizes: a test of the law's shape across k. On the accuracy
        benchmark's digits tables it chose the law with the best R² of ψ_k against the
        truth at all four m, observation-level LOO at one (docs/benchmarks.md).
        "observation" asks how well each law predicts a held-out contribution of a point it
        has seen; neighbouring observations of the same point at similar k stay in, so it
        mostly rewards fitting the most precise (large-k) observations. "point" leaves a point's whole table
        out, using the models' per-point log-likelihood. Leaving a point out removes all the
        information on its own parameters, so PSIS is unreliable there (Pareto k > 0.7 for
        most points on real tables, measured in notebook 02); the observation level keeps k
        low, and the k-bin level lies between (check ``loo``'s Pareto k).
    k_bins : int
        Number of size bins (log-spaced over the observed k) for ``level="k_bin"``.

    Returns
    -------
    pandas.DataFrame
        ``arviz.compare`` output with a boolean ``chosen`` column; ``attrs["level"]``.

    Examples
    --------
    >>> import bayescale as bs
    >>> c, _ = bs.simulate_contributions(n_points=8, samples_per_point=10, random_state=0)
    >>> fits = {law: bs.ScalingLawModel(law=law) for law in ("power", "two_term")}
    >>> for m in fits.values():
    ...     _ = m.fit(c, method="advi", draws=100, n=800, random_seed=0, progressbar=False)
    >>> compare_laws(fits).attrs["level"]
    'k_bin'
    """
    import arviz as az

    names = list(models)
    if len(names) < 2:
        raise ValueError(f"compare_laws needs at least two models; got {names!r}")
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0; got {threshold!r}")
    if level not in LOO_LEVELS:
        raise ValueError(f"level must be one of {LOO_LEVELS}; got {level!r}")
    if isinstance(k_bins, bool) or not isinstance(k_bins, (int, np.integer)) or k_bins < 2:
        raise ValueError(f"k_bins must be an integer >= 2; got {k_bins!r}")
    data = {name: _loo_data(m, level, k_bins) for name, m in models.items()}
    with warnings.catch_warnings():
        # High Pareto k is reported per point by sign_changes, not hidden.
        warnings.simplefilter("ignore")
        loos = {name: az.loo(d, pointwise=True) for name, d in data.items()}
        table = az.compare(loos, ic="loo")
    elpd = {name: np.asarray(loo.loo_i) for name, loo in loos.items()}
    by_chain: dict[str, list[np.ndarray]] = {}

    def chain_elpd(name: str) -> list[np.ndarray]:
        # Per-chain LOO, computed only for the models a pooled win brings into question.
        if name not in by_chain:
            d = data[name]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                by_chain[name] = [np.asarray(az.loo(d.isel(chain=[c]), pointwise=True).loo_i)
                                  for c in range(d.posterior.sizes["chain"])]
        return by_chain[name]

    chosen = names[0]
    for name in names[1:]:
        diff = elpd[name] - elpd[chosen]  # positive: `name` predicts better
        se = float(np.sqrt(diff.size) * diff.std(ddof=1)) if diff.size > 1 else np.inf
        if not float(diff.sum()) > threshold * se:
            continue
        # Chains stuck in different modes pool into a mixture that no single fit represents,
        # and a mixture can out-predict every mode: on simulated power-law data an unmixed
        # two-term fit (r_hat 2.1) won by 2.8 se pooled while losing in one of its two chains
        # (docs/benchmarks.md, "Choosing the law"). So the win must hold in every chain.
        per_chain = [float((a - b).sum()) for a, b in zip(chain_elpd(name), chain_elpd(chosen), strict=False)]
        if len(per_chain) > 1 and min(per_chain) <= 0:
            warnings.warn(
                f"{name} beats {chosen} by {diff.sum():.1f} elpd ({diff.sum() / se:.1f} se) over all "
                f"draws but not in every chain (per chain: {', '.join(f'{d:+.1f}' for d in per_chain)}); "
                f"the chains disagree, so {chosen} is kept. Fit with more tuning and draws, then "
                "compare again.", stacklevel=2)
            continue
        chosen = name
    table = table.copy()
    table["chosen"] = table.index == chosen
    table.attrs["level"] = level
    return table


def k_bin_groups(model, k_bins: int = 4) -> np.ndarray:
    """Group id of every observation for ``level="k_bin"``: point × log-spaced size bin.

    Bins split the observed k range into ``k_bins`` equal steps of log k; ids are dense
    (0, 1, ...) in order of (point position, bin), for the observations in the order of
    ``model.idata.observed_data``.
    """
    state = model._state
    k = np.asarray(state["k"], dtype=float)
    edges = np.geomspace(k.min(), k.max(), int(k_bins) + 1)[1:-1]
    key = np.asarray(state["idx"]) * int(k_bins) + np.searchsorted(edges, k, side="right")
    return np.unique(key, return_inverse=True)[1]


def observation_log_likelihood(model) -> xr.DataArray:
    """Log-likelihood of every observation for every posterior draw, dims (chain, draw, obs).

    Each draw carries the sign of c drawn from its conditional posterior, so the sign is
    part of the draw and each observation's density is a plain Normal (or Student-t):
    ``Δ ~ Normal(ψ_k, σ² k^(−β) / count)``. Observations are in the order of
    ``model.idata.observed_data``.

    Examples
    --------
    >>> import bayescale as bs
    >>> c, _ = bs.simulate_contributions(n_points=3, samples_per_point=4, random_state=0)
    >>> m = bs.ScalingLawModel(); _ = m.fit(c, method="map", progressbar=False)
    >>> observation_log_likelihood(m).sizes["obs"]
    12
    """
    from scipy import stats

    post = model.idata.posterior
    state = model._state
    idx = state["idx"]
    k, delta, count = state["k"], state["delta"], state["count"]

    def per_obs(name):
        v = post[name].transpose("chain", "draw", "point").values
        return v[..., idx]

    mean = per_obs("c") * k ** (-per_obs("alpha"))
    if "kappa" in post:
        mean = mean * np.exp(-0.5 * per_obs("kappa") * np.log(k / model.k_ref_) ** 2)
    if "b" in post:
        mean = mean + per_obs("b") * k ** (-per_obs("gamma"))
    sd = per_obs("sigma") * k ** (-0.5 * per_obs("beta")) / np.sqrt(count)
    if "nu" in post:
        ll = stats.t.logpdf(delta, post["nu"].values[..., None], loc=mean, scale=sd)
    else:
        ll = stats.norm.logpdf(delta, loc=mean, scale=sd)
    return xr.DataArray(ll, dims=("chain", "draw", "obs"),
                        coords={"chain": post["chain"], "draw": post["draw"], "obs": np.arange(len(delta))},
                        name="delta")


def _loo_data(model, level: str, k_bins: int = 4):
    """An InferenceData whose log_likelihood is per observation, (point, k bin) or point."""
    import arviz as az

    if level == "point":
        return model.idata
    ll = observation_log_likelihood(model)
    if level == "k_bin":
        groups = k_bin_groups(model, k_bins)
        summed = np.zeros(ll.shape[:2] + (groups.max() + 1,))
        np.add.at(summed, (slice(None), slice(None), groups), ll.values)
        ll = xr.DataArray(summed, dims=("chain", "draw", "obs"),
                          coords={"chain": ll["chain"], "draw": ll["draw"]}, name="delta")
    return az.InferenceData(posterior=model.idata.posterior[["alpha"]], log_likelihood=ll.to_dataset())


def _pointwise_loo(model, level: str = "observation", k_bins: int = 4) -> tuple[pd.Series, pd.Series]:
    """Per-point LOO elpd (observations summed) and worst Pareto k of the point's terms."""
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # high Pareto k is reported by the caller, per point
        loo = az.loo(_loo_data(model, level, k_bins), pointwise=True)
    owner = model.points_ if level == "point" else np.asarray(model._state["point"])
    if level == "k_bin":
        groups = k_bin_groups(model, k_bins)
        first = np.unique(groups, return_index=True)[1]
        owner = owner[first]
    frame = pd.DataFrame({"elpd": np.asarray(loo.loo_i), "k": np.asarray(loo.pareto_k)}, index=owner)
    grouped = frame.groupby(level=0)
    return grouped["elpd"].sum(), grouped["k"].max()


def sign_changes(model, power_model=None, *, k_range=None, n_grid: int = 32) -> pd.DataFrame:
    """Which points' ψ_k changes sign across k, from a ``law="two_term"`` fit.

    Parameters
    ----------
    model : ScalingLawModel
        Fitted with ``law="two_term"``.
    power_model : ScalingLawModel, optional
        The same table fitted with the power law; adds per-point LOO columns.
    k_range : (float, float), optional
        Sizes to look at; default the observed range.
    n_grid : int
        Log-spaced sizes per draw at which the sign is checked.

    Returns
    -------
    pandas.DataFrame
        Indexed by point: ``p_sign_change`` (posterior probability that ψ_k takes both signs
        in ``k_range``), ``psi_low`` and ``psi_high`` (posterior means of ψ at the two ends);
        with ``power_model`` also ``elpd_gain`` (the point's LOO elpd under the two-term law
        minus under the power law, its observations left out one at a time and summed) and
        ``pareto_k_power`` (the largest Pareto k of the point's observations under the power
        fit: > 0.7 says one observation moves that fit a lot, a sign of misfit).

    Examples
    --------
    >>> import bayescale as bs
    >>> c, _ = bs.simulate_contributions(n_points=6, samples_per_point=8, random_state=0)
    >>> m = bs.ScalingLawModel(law="two_term")
    >>> _ = m.fit(c, method="advi", draws=100, n=800, random_seed=0, progressbar=False)
    >>> list(bs.sign_changes(m).columns)
    ['p_sign_change', 'psi_low', 'psi_high']
    """
    if getattr(model, "law", None) != "two_term":
        raise ValueError("sign_changes needs a ScalingLawModel fitted with law='two_term'")
    lo, hi = model.k_observed_ if k_range is None else (float(k_range[0]), float(k_range[1]))
    if not 0 < lo < hi:
        raise ValueError(f"k_range must be (low, high) with 0 < low < high; got {(lo, hi)}")
    ks = np.geomspace(lo, hi, int(n_grid))
    psi = model.predict(ks).stack(sample=("chain", "draw")).transpose("sample", "point", "k").values
    change = (psi.min(axis=2) < 0) & (psi.max(axis=2) > 0)
    out = pd.DataFrame(
        {"p_sign_change": change.mean(axis=0), "psi_low": psi[:, :, 0].mean(axis=0),
         "psi_high": psi[:, :, -1].mean(axis=0)},
        index=pd.Index(model.points_, name="point"),
    )
    if power_model is not None:
        two, _ = _pointwise_loo(model)
        power, pareto_k = _pointwise_loo(power_model)
        out["elpd_gain"] = (two - power).reindex(out.index)
        out["pareto_k_power"] = pareto_k.reindex(out.index)
    return out
