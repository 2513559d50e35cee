"""The paper's per-point estimators, used as baselines for the hierarchical model.

Covert et al. (ICML 2024) estimate each point's scaling law ψ_k ≈ c·k^(−α) on its own:

* :func:`monte_carlo`: the mean of the point's observations (a constant law, α = 0);
* :func:`log_regression`: a straight line through log|mean Δ at each k| against log k, then c
  by least squares;
* :func:`mle`: Normal maximum likelihood over (c, α, σ, β) with the noise model
  Δ ~ Normal(c k^(−α), σ² k^(−β)).

All three read the same :class:`~bayescale.data.Contributions` table as
:class:`~bayescale.model.ScalingLawModel`, weigh a row by its ``count`` when the column is
present, and return a DataFrame indexed by point. :func:`predict_psi` and
:func:`distributional_values` turn any of those frames into ψ_k predictions and
distributional-Shapley values, so the baselines can be scored exactly like the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._validation import check_int
from .data import Contributions

__all__ = ["distributional_values", "log_regression", "mle", "monte_carlo", "predict_psi"]


# --------------------------------------------------------------------------- input handling
def _observations(contributions) -> pd.DataFrame:
    """The validated observation frame with a float ``w`` (count) column; never empty."""
    if isinstance(contributions, pd.DataFrame):
        contributions = Contributions(contributions)
    if not isinstance(contributions, Contributions):
        raise ValueError(
            "contributions must be a bayescale.Contributions (or a DataFrame with columns "
            f"point, k, delta); got {type(contributions).__name__}"
        )
    df = contributions.data
    if len(df) == 0:
        raise ValueError("contributions is empty: the baselines need at least one observation")
    w = df["count"].to_numpy(float) if "count" in df.columns else np.ones(len(df))
    return pd.DataFrame(
        {
            "point": df["point"].to_numpy(),
            "k": df["k"].to_numpy(float),
            "delta": df["delta"].to_numpy(float),
            "w": w,
        }
    )


def _require_two_sizes(obs: pd.DataFrame, estimator: str, *, min_rows: int = 2) -> None:
    """Raise if a point has fewer than two distinct k (or fewer than ``min_rows`` rows).

    A slope in k cannot be identified from one size, so these estimators refuse such points
    instead of returning an arbitrary α.
    """
    g = obs.groupby("point")
    n_k = g["k"].nunique()
    n_rows = g.size()
    bad = n_k.index[(n_k < 2) | (n_rows < min_rows)]
    if len(bad):
        need = "at least 2 distinct k"
        if min_rows > 2:
            need += f" and at least {min_rows} observations (rows)"
        raise ValueError(
            f"contributions: {estimator} needs {need} per point; {len(bad)} point(s) have fewer, "
            f"e.g. points {bad[:10].tolist()}. Drop them (Contributions.subset) or use "
            "monte_carlo, which accepts single-k points."
        )


# --------------------------------------------------------------------------- Monte Carlo
def monte_carlo(contributions) -> pd.DataFrame:
    """Monte Carlo value: each point's (count-weighted) mean contribution.

    The mean estimates ψ averaged uniformly over the sampled k range (the distributional
    value) and says nothing about how ψ changes with k. A table measured with
    ``k_design="loguniform"`` (``metadata["k_design"]``) over-samples small k, so its rows are
    weighted by k (the inverse of the design's density ∝ 1/k) to keep that meaning. To be scored like the other estimators it is written as the constant
    law ψ_k = c·k^0: ``c`` equals ``value`` and ``alpha`` is 0, so :func:`predict_psi` gives
    the same number at every k.

    Parameters
    ----------
    contributions : Contributions
        Any table; single-k points and single observations are accepted.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``point``: ``value`` (the mean), ``c`` (= value), ``alpha`` (= 0),
        ``se`` (standard error of the mean; NaN for a point with a single row), ``n_obs``
        (observations, counts included), ``k_min``, ``k_max``.

    Raises
    ------
    ValueError
        If the table is empty.

    Examples
    --------
    >>> import bayescale as bs
    >>> c, _ = bs.simulate_contributions(n_points=3, samples_per_point=5, random_state=0)
    >>> mc = monte_carlo(c)
    >>> list(mc.columns[:3]), bool((mc["alpha"] == 0).all())
    (['value', 'c', 'alpha'], True)
    """
    obs = _observations(contributions)
    meta = getattr(contributions, "metadata", None) or {}
    # Importance weight of a row towards the uniform-k average (1 for uniform designs).
    obs["v"] = obs["k"] if meta.get("k_design") == "loguniform" else 1.0
    obs["wv"] = obs["w"] * obs["v"]
    obs["wvd"] = obs["wv"] * obs["delta"]
    obs["wv2"] = obs["wv"] * obs["v"]
    g = obs.groupby("point")
    sw = g["w"].sum()
    swv = g["wv"].sum()
    mean = g["wvd"].sum() / swv
    obs["wr2"] = obs["w"] * (obs["delta"] - obs["point"].map(mean)) ** 2
    rows = g.size()
    # A row that averages `count` raw observations has variance σ²/count, so the pooled σ²
    # is Σ w (Δ − mean)² / (rows − 1) and the weighted mean's variance σ² Σ w v² / (Σ w v)²
    # (σ² / Σ w when every v is 1).
    with np.errstate(invalid="ignore", divide="ignore"):
        var = obs.groupby("point")["wr2"].sum() / (rows - 1)
        se = np.sqrt(var * g["wv2"].sum() / swv**2).where(rows > 1)
    out = pd.DataFrame(
        {
            "value": mean,
            "c": mean,
            "alpha": 0.0,
            "se": se,
            "n_obs": sw,
            "k_min": g["k"].min(),
            "k_max": g["k"].max(),
        }
    )
    out.index.name = "point"
    return out


# --------------------------------------------------------------------------- log regression
def log_regression(contributions) -> pd.DataFrame:
    """The paper's log-space regression, one point at a time.

    For each point: average Δ at each distinct k; regress log|mean| on −log k by ordinary
    least squares (one row per distinct k), whose slope is α; then fit c by least squares
    without intercept on the observations, Δ ≈ c·k^(−α) (rows weighted by ``count``).

    It needs at least 2 distinct k per point and is only reliable with many observations per
    k (the paper builds its ground truth with it). With a single noisy observation per k the
    means change sign and |mean| is dominated by noise, so α is poorly determined; the fit is
    still returned (it is the baseline), and α may even be negative.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``point``: ``c``, ``alpha``, ``n_k`` (distinct sizes used) and
        ``converged`` (False where fewer than two sizes had a non-zero mean, in which case
        α is set to 0 and c is the least-squares constant).

    Raises
    ------
    ValueError
        If the table is empty or a point has fewer than 2 distinct k.

    Examples
    --------
    >>> import bayescale as bs
    >>> c, truth = bs.simulate_contributions(n_points=3, samples_per_point=400,
    ...     log_sigma=(-4.0, 0.1), k_design=[100, 200, 400, 800], random_state=0)
    >>> fit = log_regression(c)  # 100 low-noise observations at each of 4 sizes
    >>> bool(abs(fit["alpha"] - truth["alpha"]).max() < 0.2)
    True
    """
    obs = _observations(contributions)
    _require_two_sizes(obs, "log_regression")
    obs["wd"] = obs["w"] * obs["delta"]
    per_k = obs.groupby(["point", "k"], sort=True)[["wd", "w"]].sum().reset_index()
    per_k["mean"] = per_k["wd"] / per_k["w"]
    # log|0| is −inf: a size whose mean is exactly zero carries no information on the slope.
    per_k = per_k[per_k["mean"] != 0].copy()
    per_k["x"] = -np.log(per_k["k"])
    per_k["y"] = np.log(np.abs(per_k["mean"]))
    g = per_k.groupby("point")
    n_k = g.size().reindex(obs["point"].unique(), fill_value=0).sort_index()
    x_c = per_k["x"] - g["x"].transform("mean")
    y_c = per_k["y"] - g["y"].transform("mean")
    sxy = (x_c * y_c).groupby(per_k["point"]).sum()
    sxx = (x_c**2).groupby(per_k["point"]).sum()
    ok = (n_k >= 2) & (sxx.reindex(n_k.index, fill_value=0.0) > 0)
    alpha = (sxy / sxx).reindex(n_k.index).where(ok, 0.0)

    # c = Σ w Δ x / Σ w x² with x = k^(−α): least squares without intercept.
    xk = np.exp(-obs["point"].map(alpha).to_numpy() * np.log(obs["k"].to_numpy()))
    num = pd.Series(obs["w"].to_numpy() * obs["delta"].to_numpy() * xk).groupby(obs["point"].to_numpy()).sum()
    den = pd.Series(obs["w"].to_numpy() * xk**2).groupby(obs["point"].to_numpy()).sum()
    out = pd.DataFrame(
        {"c": num / den, "alpha": alpha, "n_k": n_k.astype(int), "converged": ok.to_numpy()}
    )
    out.index.name = "point"
    return out


# --------------------------------------------------------------------------- maximum likelihood
class _Padded:
    """Observations of all points packed in (n_points, max_rows) arrays, zero-weight padded.

    Each point is put on its own scale: k divided by the geometric mean of its k and Δ by
    its root mean square. α and β are scale-free, so the optimum is unchanged, and k^β stays
    near 1 instead of 1000^β, which keeps the profile likelihood well conditioned.
    """

    def __init__(self, obs: pd.DataFrame):
        obs = obs.sort_values("point", kind="stable")
        points, start, rows = np.unique(obs["point"].to_numpy(), return_index=True, return_counts=True)
        n, width = len(points), int(rows.max())
        col = np.arange(len(obs)) - np.repeat(start, rows)
        row = np.repeat(np.arange(n), rows)
        self.points = points
        self.rows = rows.astype(float)
        self.k = np.ones((n, width))
        self.delta = np.zeros((n, width))
        self.w = np.zeros((n, width))
        self.k[row, col] = obs["k"].to_numpy()
        self.delta[row, col] = obs["delta"].to_numpy()
        self.w[row, col] = obs["w"].to_numpy()
        self.mask = self.w > 0
        logk = np.log(self.k)
        self.k_ref = np.exp((logk * self.mask).sum(1) / rows)
        rms = np.sqrt((self.w * self.delta**2).sum(1) / self.w.sum(1))
        self.d_scale = np.where(rms > 0, rms, 1.0)
        self.logk = np.where(self.mask, logk - np.log(self.k_ref)[:, None], 0.0)
        self.d = self.delta / self.d_scale[:, None]
        self.sum_logk = self.logk.sum(1)


def _profile(theta: np.ndarray, data: _Padded, idx: np.ndarray):
    """Profile objective over (log α, log β) with c and σ at their closed forms.

    Returns ``f`` (the negative log-likelihood up to a per-point constant), its gradient in
    (log α, log β), c* and S = Σ w k^β r² (so σ*² = S / rows), all on the point's own scale.
    """
    a = np.exp(theta[:, 0])[:, None]
    b = np.exp(theta[:, 1])[:, None]
    lk, d, w = data.logk[idx], data.d[idx], data.w[idx]
    ka = np.exp(-a * lk)
    wkb = w * np.exp(b * lk)
    c = (wkb * d * ka).sum(1) / (wkb * ka**2).sum(1)
    r = d - c[:, None] * ka
    wkbr = wkb * r
    # S can reach 0 only if the law interpolates every row; floor it so log S stays finite.
    s_raw = (wkbr * r).sum(1)
    s = np.maximum(s_raw, 1e-300 + 1e-14 * (wkb * d**2).sum(1))
    rows = data.rows[idx]
    f = 0.5 * rows * np.log(s) - 0.5 * b[:, 0] * data.sum_logk[idx]
    # Envelope theorem: c* minimizes S, so its own derivative drops out of the gradient.
    ds_da = (2.0 * wkbr * c[:, None] * ka * lk).sum(1)
    ds_db = (wkbr * r * lk).sum(1)
    grad = np.stack(
        [
            a[:, 0] * 0.5 * rows * ds_da / s,
            b[:, 0] * (0.5 * rows * ds_db / s - 0.5 * data.sum_logk[idx]),
        ],
        axis=1,
    )
    return f, grad, c, s, s_raw <= 0.0


def _newton(theta, data, idx, lower, upper, max_iter, gtol):
    """Batched Levenberg-damped Newton on the 2-D profile, with box bounds.

    Every problem (point × start) keeps its own damping λ; a step is kept only if it lowers
    f, otherwise λ grows, so f never increases. The Hessian is a forward difference of the
    analytic gradient (two extra gradient evaluations per iteration, all problems at once).
    """
    n = theta.shape[0]
    f, g, _, _, _ = _profile(theta, data, idx)
    lam = np.full(n, 1e-3)
    active = np.ones(n, dtype=bool)
    n_iter = np.zeros(n, dtype=int)
    h = 1e-5
    for _ in range(max_iter):
        # Projected gradient: a coordinate at a bound whose gradient pushes outward is done.
        pg = np.where(((theta <= lower) & (g > 0)) | ((theta >= upper) & (g < 0)), 0.0, g)
        active &= np.abs(pg).max(1) > gtol
        if not active.any():
            break
        ia = np.flatnonzero(active)
        th, ga = theta[ia], g[ia]
        hess = np.empty((ia.size, 2, 2))
        for j in range(2):
            step = th.copy()
            step[:, j] += h
            hess[:, :, j] = (_profile(step, data, idx[ia])[1] - ga) / h
        hess = 0.5 * (hess + hess.transpose(0, 2, 1))
        # A coordinate held at a bound is left out of the Newton system (zero coupling, zero
        # gradient), so the other one gets its own 1-D Newton step instead of a coupled step
        # that the bound would then cut.
        fixed = ((th <= lower) & (ga > 0)) | ((th >= upper) & (ga < 0))
        coupled = ~fixed.any(1)
        hess[:, 0, 1] *= coupled
        hess[:, 1, 0] *= coupled
        ga = np.where(fixed, 0.0, ga)
        # Saddle-free Newton: use |eigenvalues| of the Hessian so a direction of negative
        # curvature (the profile in α is often flat and multimodal at small m) is descended
        # instead of climbed, plus a Levenberg term scaled by the curvature's size.
        evals, evecs = np.linalg.eigh(hess)
        scale = np.abs(evals).max(1) + 1e-8
        inv = 1.0 / (np.maximum(np.abs(evals), 1e-6 * scale[:, None]) + (lam[ia] * scale)[:, None])
        step = -np.einsum("nij,nj,nkj,nk->ni", evecs, inv, evecs, ga)
        step = np.where(fixed, 0.0, np.clip(step, -1.0, 1.0))  # at most a factor e per iteration
        trial = np.clip(th + step, lower, upper)
        f_new, g_new, _, _, _ = _profile(trial, data, idx[ia])
        better = np.isfinite(f_new) & (f_new < f[ia])
        acc = ia[better]
        theta[acc], f[acc], g[acc] = trial[better], f_new[better], g_new[better]
        lam[acc] = np.maximum(lam[acc] / 3.0, 1e-9)
        rej = ia[~better]
        lam[rej] *= 4.0
        n_iter[ia] += 1
        # Rejections with a huge λ mean no descent is left at this resolution: stop there.
        stalled = ia[~better & (lam[ia] > 1e8)]
        active[stalled] = False
    f, g, c, s, degenerate = _profile(theta, data, idx)
    pg = np.where(((theta <= lower) & (g > 0)) | ((theta >= upper) & (g < 0)), 0.0, g)
    converged = (np.abs(pg).max(1) <= max(gtol, 1e-4)) & ~degenerate
    return theta, f, c, s, converged, n_iter


def mle(
    contributions,
    *,
    starts: Sequence[tuple[float, float]] = ((1.0, 2.0),),
    alpha_bounds: tuple[float, float] = (1e-3, 10.0),
    beta_bounds: tuple[float, float] = (1e-3, 10.0),
    max_iter: int = 200,
    gtol: float = 1e-7,
) -> pd.DataFrame:
    """The paper's per-point Normal maximum likelihood, all points at once.

    Each point is fitted on its own with Δ ~ Normal(c k^(−α), σ² k^(−β) / count). For fixed
    (α, β), c and σ have closed forms (weighted least squares for c, the mean weighted squared
    residual for σ²), so only the 2-D profile likelihood over (log α, log β) is optimized,
    from α = 1, β = 2 as in the paper. The optimizer is a damped Newton method run on every
    point (and start) simultaneously with numpy arrays, so the cost grows with the number of
    observations, not with a Python loop over points.

    The per-point likelihood is unbounded for small m: when a few large-k rows are
    interpolated, σ² k^(−β) can shrink without limit as β grows. α and β are therefore kept
    in ``alpha_bounds`` / ``beta_bounds``; a fit that ends on a bound is reported in
    ``at_bound``. Nothing is ever NaN: a point whose fit did not converge keeps the best
    parameters found and is flagged with ``converged=False``.

    Parameters
    ----------
    contributions : Contributions
        Every point needs at least 3 observations (rows) and 2 distinct k: with two rows the
        law interpolates them and σ → 0.
    starts : sequence of (alpha, beta)
        Starting values. With several, each point keeps the start with the highest
        likelihood (a cheap guard against local optima).
    alpha_bounds, beta_bounds : (float, float)
        Positive bounds for α and β.
    max_iter : int
        Newton iterations per start.
    gtol : float
        Convergence tolerance on the projected gradient of the profile negative
        log-likelihood with respect to (log α, log β).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``point``: ``c``, ``alpha``, ``sigma``, ``beta`` (the paper's scale),
        ``nll`` (the full negative log-likelihood at the estimate), ``n_iter``,
        ``converged`` and ``at_bound``.

    Raises
    ------
    ValueError
        If the table is empty, a point has fewer than 3 rows or fewer than 2 distinct k, or
        a bound or start is not positive.

    Examples
    --------
    >>> import bayescale as bs
    >>> c, truth = bs.simulate_contributions(n_points=4, samples_per_point=500, random_state=0)
    >>> fit = mle(c)
    >>> list(fit.columns[:4]), bool(fit["converged"].all())
    (['c', 'alpha', 'sigma', 'beta'], True)
    """
    obs = _observations(contributions)
    _require_two_sizes(obs, "mle", min_rows=3)
    max_iter = check_int(max_iter, "max_iter", minimum=1)
    bounds = []
    for name, bnd in (("alpha_bounds", alpha_bounds), ("beta_bounds", beta_bounds)):
        lo, hi = (float(v) for v in bnd)
        if not 0 < lo < hi:
            raise ValueError(f"{name} must satisfy 0 < low < high; got {bnd!r}")
        bounds.append((np.log(lo), np.log(hi)))
    lower = np.array([bounds[0][0], bounds[1][0]])
    upper = np.array([bounds[0][1], bounds[1][1]])
    starts = np.asarray(starts, dtype=float).reshape(-1, 2)
    if starts.size == 0 or not (starts > 0).all():
        raise ValueError(f"starts must be positive (alpha, beta) pairs; got {starts.tolist()}")

    data = _Padded(obs)
    n = len(data.points)
    best = None
    for a0, b0 in starts:
        theta = np.clip(np.tile(np.log([a0, b0]), (n, 1)), lower, upper)
        res = _newton(theta, data, np.arange(n), lower, upper, max_iter, gtol)
        if best is None:
            best = list(res)
            continue
        better = res[1] < best[1]
        for i, arr in enumerate(res):
            best[i] = np.where(better[:, None] if arr.ndim == 2 else better, arr, best[i])
    theta, _, c_s, s, converged, n_iter = best

    alpha, beta = np.exp(theta[:, 0]), np.exp(theta[:, 1])
    # Back to the paper's scale: Δ = d_scale·D and k = k_ref·K.
    c = c_s * data.d_scale * data.k_ref**alpha
    sigma = np.sqrt(s / data.rows) * data.d_scale * data.k_ref ** (beta / 2)
    resid = data.delta - c[:, None] * data.k ** (-alpha[:, None])
    var = sigma[:, None] ** 2 * data.k ** (-beta[:, None]) / np.where(data.mask, data.w, 1.0)
    nll = np.where(data.mask, 0.5 * np.log(2 * np.pi * var) + 0.5 * resid**2 / var, 0.0).sum(1)
    tol = 1e-6
    at_bound = (theta <= lower + tol).any(1) | (theta >= upper - tol).any(1)
    out = pd.DataFrame(
        {
            "c": c,
            "alpha": alpha,
            "sigma": sigma,
            "beta": beta,
            "nll": nll,
            "n_iter": n_iter,
            "converged": converged,
            "at_bound": at_bound,
        },
        index=pd.Index(data.points, name="point"),
    )
    return out


# --------------------------------------------------------------------------- scoring helpers
def _check_frame(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(frame, pd.DataFrame) or not {"c", "alpha"} <= set(frame.columns):
        raise ValueError("frame must be a DataFrame with columns 'c' and 'alpha' (a baseline fit)")
    return frame["c"].to_numpy(float), frame["alpha"].to_numpy(float)


def predict_psi(frame: pd.DataFrame, k) -> pd.DataFrame:
    """ψ_k = c·k^(−α) for every point of a baseline fit, at the sizes ``k``.

    Parameters
    ----------
    frame : pandas.DataFrame
        Output of :func:`monte_carlo`, :func:`log_regression` or :func:`mle` (any frame with
        ``c`` and ``alpha`` indexed by point).
    k : int or array_like of int
        Dataset sizes, all ≥ 1.

    Returns
    -------
    pandas.DataFrame
        Indexed by point, one column per k.

    Examples
    --------
    >>> import pandas as pd
    >>> fit = pd.DataFrame({"c": [2.0, -1.0], "alpha": [1.0, 0.0]})
    >>> predict_psi(fit, [1, 2]).to_numpy().tolist()
    [[2.0, 1.0], [-1.0, -1.0]]
    """
    c, alpha = _check_frame(frame)
    ks = np.atleast_1d(np.asarray(k, dtype=float))
    if ks.ndim != 1 or not (np.isfinite(ks).all() and (ks >= 1).all()):
        raise ValueError(f"k must be sizes >= 1; got {k!r}")
    values = c[:, None] * np.exp(-alpha[:, None] * np.log(ks)[None, :])
    return pd.DataFrame(values, index=frame.index, columns=pd.Index(ks.astype(int), name="k"))


def distributional_values(frame: pd.DataFrame, k_range: tuple[int, int]) -> pd.Series:
    """Distributional-Shapley value of each point: the mean of c·k^(−α) over k in ``k_range``.

    ``k_range`` is inclusive at both ends and every integer k in it has equal weight, as in
    the paper. For a Monte Carlo frame (α = 0) this is the point's mean contribution. The
    weights and the sum over k are those of :func:`bayescale.valuation.value`, so a baseline
    and the Bayesian model are valued by the same formula.

    Examples
    --------
    >>> import pandas as pd
    >>> float(distributional_values(pd.DataFrame({"c": [3.0], "alpha": [0.0]}), (1, 5)).iloc[0])
    3.0
    """
    from .valuation import _log_weighted_power_sum, semivalue_weights

    c, alpha = _check_frame(frame)
    w = semivalue_weights("distributional", k_range=k_range)
    log_f = _log_weighted_power_sum(alpha, w.index.to_numpy(), w.to_numpy())
    return pd.Series(c * np.exp(log_f), index=frame.index, name="value")
