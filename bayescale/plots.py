"""Figures for a fitted scaling-law model (matplotlib; intervals are ArviZ HDIs).

Every function takes ``ax=`` (a new figure when omitted), labels its axes and returns the
axes, so figures compose into grids and notebooks.

Negative contributions. A harmful point has ψ_k < 0, and a posterior band can straddle
zero, so |ψ| on a log axis would hide the sign. The scaling-curve plot uses a *symlog* y
axis instead: logarithmic for |ψ| above a threshold picked from the data, linear through
zero. Positive and negative curves read as straight lines of slope −α where the law holds,
and a sign change is visible rather than silently folded over.
"""

from __future__ import annotations

import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from .selection import gain_curve
from .valuation import _check_prob, _posterior, _psi_draws, _subset_points, p_harmful, value

__all__ = [
    "plot_alpha_vs_feature",
    "plot_gain_curve",
    "plot_p_harmful",
    "plot_parameter_hist",
    "plot_scaling_curves",
    "plot_values",
]


def _axes(ax: Axes | None) -> Axes:
    if ax is None:
        _, ax = plt.subplots()
    return ax


def _binned(obs: pd.DataFrame, edges: np.ndarray) -> pd.DataFrame:
    """Mean and standard error of Δ per k bin; rows that average ``count`` draws weigh more."""
    count = obs["count"].to_numpy(float) if "count" in obs else np.ones(len(obs))
    b = np.clip(np.searchsorted(edges, obs["k"].to_numpy(float), side="right") - 1, 0, edges.size - 2)
    rows = []
    for j in np.unique(b):
        sel = b == j
        d, w, k = obs["delta"].to_numpy()[sel], count[sel], obs["k"].to_numpy(float)[sel]
        mean = np.average(d, weights=w)
        # A row averaging w draws has variance σ²/w, so Σ w (d − mean)² / (n − 1) estimates σ².
        se = np.sqrt(np.sum(w * (d - mean) ** 2) / (d.size - 1) / w.sum()) if d.size > 1 else np.nan
        rows.append({"k": np.exp(np.average(np.log(k), weights=w)), "mean": mean, "se": se, "n": d.size})
    return pd.DataFrame(rows)


def plot_scaling_curves(
    model,
    points=None,
    *,
    ax: Axes | None = None,
    hdi_prob: float = 0.9,
    n_bins: int = 6,
    k_grid=None,
    max_points: int = 5,
    yscale: str = "symlog",
) -> Axes:
    """Per-point ψ_k against k: binned observations, posterior median and band.

    Parameters
    ----------
    model : ScalingLawModel or arviz.InferenceData
    points : array_like, optional
        Point ids to draw; default the first ``max_points`` points.
    hdi_prob : float
        Mass of the posterior band (an HDI at every k).
    n_bins : int
        Observations are grouped into this many log-spaced k bins; each bin shows its mean
        ± one standard error at its geometric-mean k.
    k_grid : array_like, optional
        Sizes the curve is drawn at; default 60 log-spaced sizes over the observed range.
    yscale : {"symlog", "linear"}
        ``"symlog"`` (default): log-like for |ψ| above a data-chosen threshold and linear
        through zero, so harmful points and bands that straddle zero stay visible. The x
        axis is always logarithmic.

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from bayescale.valuation import _fake_idata
    >>> ax = plot_scaling_curves(_fake_idata(n_points=3, random_state=0))
    >>> ax.get_xscale()
    'log'
    """
    hdi_prob = _check_prob(hdi_prob, "hdi_prob")
    if yscale not in ("symlog", "linear"):
        raise ValueError(f"yscale must be 'symlog' or 'linear'; got {yscale!r}")
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be >= 1; got {n_bins!r}")
    post = _posterior(model)
    points = post.points[:max_points] if points is None else pd.unique(np.atleast_1d(points))
    post = _subset_points(post, points)
    lo, hi = post.k_observed
    ks = np.geomspace(lo, max(hi, lo + 1), 60) if k_grid is None else np.asarray(k_grid, float)
    if ks.ndim != 1 or ks.size < 2 or (ks <= 0).any():
        raise ValueError("k_grid must be a 1-D sequence of at least two sizes > 0")
    ax = _axes(ax)
    draws = _psi_draws(post, ks)  # (samples, points, k)
    edges = np.geomspace(lo, max(hi, lo + 1), int(n_bins) + 1)
    magnitudes = []
    for j, point in enumerate(post.points):
        color = f"C{j % 10}"
        d = draws[:, j, :]
        median = np.median(d, axis=0)
        magnitudes.append(np.abs(median))
        band = az.hdi(d[None], hdi_prob=hdi_prob)  # (k, 2): an HDI at every size
        ax.fill_between(ks, band[:, 0], band[:, 1], color=color, alpha=0.2, linewidth=0)
        ax.plot(ks, median, color=color, label=f"point {point}")
        obs = post.observations[post.observations["point"] == point]
        if len(obs):
            b = _binned(obs, edges)
            ax.errorbar(b["k"], b["mean"], yerr=b["se"], fmt="o", color=color, ms=4, capsize=2)
            magnitudes.append(np.abs(b["mean"].to_numpy()))
    ax.set_xscale("log")
    if yscale == "symlog":
        mags = np.concatenate(magnitudes)
        mags = mags[mags > 0]
        # Below the 5% quantile of the drawn magnitudes the axis turns linear (through zero).
        linthresh = float(np.quantile(mags, 0.05)) if mags.size else 1e-6
        ax.set_yscale("symlog", linthresh=linthresh)
        ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
    ax.set_xlabel("dataset size k")
    ax.set_ylabel("ψ_k (expected marginal contribution)")
    ax.set_title(f"scaling curves: median and {hdi_prob:.0%} HDI; binned means ± se")
    ax.legend(fontsize="small")
    return ax


_PARAMS = {"alpha": "α", "log_abs_c": "log|c|"}


def plot_parameter_hist(model, parameter: str = "alpha", *, ax: Axes | None = None, bins: int = 30) -> Axes:
    """Histogram of a per-point parameter: α or log|c|.

    Bars are the per-point posterior means; the step line pools all posterior draws of all
    points, which shows how much of the spread is posterior uncertainty.

    Parameters
    ----------
    model : ScalingLawModel or arviz.InferenceData
    parameter : {"alpha", "log_abs_c"}
    bins : int

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from bayescale.valuation import _fake_idata
    >>> plot_parameter_hist(_fake_idata(random_state=0), "log_abs_c").get_xlabel()
    'log|c|'
    """
    if parameter not in _PARAMS:
        raise ValueError(f"parameter must be one of {list(_PARAMS)}; got {parameter!r}")
    post = _posterior(model)
    draws = post.draws("alpha") if parameter == "alpha" else np.log(np.abs(post.draws("c")))
    ax = _axes(ax)
    ax.hist(draws.mean(axis=0), bins=bins, density=True, alpha=0.6, label="per-point posterior mean")
    ax.hist(draws.ravel(), bins=bins, density=True, histtype="step", color="k", label="all posterior draws")
    ax.set_xlabel(_PARAMS[parameter])
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return ax


def plot_alpha_vs_feature(model, feature, *, feature_name: str = "feature", ax: Axes | None = None,
                          hdi_prob: float = 0.9) -> Axes:
    """Posterior α of each point (mean and HDI) against one feature.

    Parameters
    ----------
    model : ScalingLawModel or arviz.InferenceData
    feature : array_like or pandas.Series
        One value per model point (in the model's point order), or a Series indexed by point.
    feature_name : str
        x-axis label.

    Examples
    --------
    >>> import matplotlib, numpy as np
    >>> matplotlib.use("Agg")
    >>> from bayescale.valuation import _fake_idata
    >>> plot_alpha_vs_feature(_fake_idata(n_points=4, random_state=0), np.arange(4.0),
    ...                       feature_name="x0").get_xlabel()
    'x0'
    """
    hdi_prob = _check_prob(hdi_prob, "hdi_prob")
    post = _posterior(model)
    if isinstance(feature, pd.Series):
        missing = ~np.isin(post.points, feature.index)
        if missing.any():
            raise ValueError(f"feature lacks points {post.points[missing][:10].tolist()}")
        x = feature.loc[post.points].to_numpy(dtype=float)
    else:
        x = np.asarray(feature, dtype=float)
        if x.shape != post.points.shape:
            raise ValueError(f"feature must have one value per point ({post.points.size}); got shape {x.shape}")
    a = post.draws("alpha")
    mean = a.mean(axis=0)
    hdi = az.hdi(a[None], hdi_prob=hdi_prob)
    ax = _axes(ax)
    ax.errorbar(x, mean, yerr=[mean - hdi[:, 0], hdi[:, 1] - mean], fmt="o", ms=3, alpha=0.7,
                elinewidth=0.8)
    ax.set_xlabel(feature_name)
    ax.set_ylabel(f"α (posterior mean, {hdi_prob:.0%} HDI)")
    return ax


def plot_values(values, *, ax: Axes | None = None, max_points: int | None = None, **value_kwargs) -> Axes:
    """Caterpillar plot: points ordered by posterior mean value, with their HDIs.

    Parameters
    ----------
    values : pandas.DataFrame, ScalingLawModel or arviz.InferenceData
        The output of :func:`bayescale.value`, or a model (then ``value(model,
        **value_kwargs)`` is computed).
    max_points : int, optional
        Show only the top ``max_points`` points.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from bayescale.valuation import _fake_idata
    >>> plot_values(_fake_idata(n_points=4, random_state=0)).get_ylabel()
    'value (posterior mean, 90% HDI)'
    """
    df = values if isinstance(values, pd.DataFrame) else value(values, **value_kwargs)
    missing = {"point", "mean", "hdi_low", "hdi_high"} - set(df.columns)
    if missing:
        raise ValueError(f"values must be a value() table; it lacks columns {sorted(missing)}")
    df = df.sort_values("mean", ascending=False, ignore_index=True)
    if max_points is not None:
        df = df.head(max_points)
    pos = np.arange(1, len(df) + 1)
    ax = _axes(ax)
    ax.vlines(pos, df["hdi_low"], df["hdi_high"], color="0.5", lw=1)
    ax.plot(pos, df["mean"], "o", ms=3)
    ax.axhline(0.0, color="k", lw=0.8)
    if len(df) <= 30:
        ax.set_xticks(pos, [str(p) for p in df["point"]], rotation=90, fontsize="small")
        ax.set_xlabel("point (ordered by posterior mean value)")
    else:
        ax.set_xlabel("rank by posterior mean value")
    prob = df.attrs.get("hdi_prob", 0.9)
    ax.set_ylabel(f"value (posterior mean, {prob:.0%} HDI)")
    return ax


def plot_p_harmful(model, *, ax: Axes | None = None, top: int = 20) -> Axes:
    """The ``top`` points most likely to be harmful (c < 0), as horizontal bars.

    Parameters
    ----------
    model : ScalingLawModel, arviz.InferenceData, or the DataFrame of
        :func:`bayescale.valuation.p_harmful`.
    top : int

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from bayescale.valuation import _fake_idata
    >>> plot_p_harmful(_fake_idata(n_points=4, random_state=0)).get_xlabel()
    'P(harmful) = P(c < 0)'
    """
    df = model if isinstance(model, pd.DataFrame) else p_harmful(model)
    df = df.sort_values("p_harmful", ascending=False, ignore_index=True).head(int(top))
    pos = np.arange(len(df))[::-1]
    ax = _axes(ax)
    ax.barh(pos, df["p_harmful"], color="C3", alpha=0.7, label="P(harmful)")
    if "frac_negative" in df:
        ax.plot(df["frac_negative"], pos, "k|", ms=10, label="fraction of draws with c < 0")
    ax.set_yticks(pos, [str(p) for p in df["point"]], fontsize="small")
    ax.set_xlim(0, 1)
    ax.set_xlabel("P(harmful) = P(c < 0)")
    ax.set_ylabel("point")
    ax.legend(fontsize="small", loc="lower right")
    return ax


def plot_gain_curve(model, at_k: float, budgets=None, *, ax: Axes | None = None, **select_kwargs) -> Axes:
    """Expected total gain of :func:`bayescale.select` against the budget, with its HDI.

    ``select_kwargs`` (candidates, labels, risk, q, balance, hdi_prob) are passed to
    :func:`bayescale.selection.gain_curve`.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from bayescale.valuation import _fake_idata
    >>> plot_gain_curve(_fake_idata(n_points=6, random_state=0), at_k=500).get_xlabel()
    'budget (points added)'
    """
    df = gain_curve(model, at_k, budgets, **select_kwargs)
    ax = _axes(ax)
    ax.fill_between(df["budget"], df["hdi_low"], df["hdi_high"], alpha=0.25,
                    label=f"{df.attrs['hdi_prob']:.0%} HDI")
    ax.plot(df["budget"], df["mean"], "o-", ms=3, label="posterior mean")
    ax.set_xlabel("budget (points added)")
    ax.set_ylabel(f"expected total gain Σψ at k = {df.attrs['at_k']:g}")
    ax.legend(fontsize="small")
    return ax
