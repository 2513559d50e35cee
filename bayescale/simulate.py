"""Synthetic observations from known scaling-law parameters.

Used by the tests (parameter recovery, coverage), by the calibration benchmarks and by
examples. The generative story is the paper's noise model, on the paper's scale:

    Δ_ij ~ Normal(c_i k_ij^(−α_i), σ_i² k_ij^(−β_i))

with per-point (log|c|, α, log σ, β) drawn from a population whose means may depend on
point features, and a sign of c that is negative with probability ``p_harmful``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._validation import as_generator, check_int, check_k_range
from .data import Contributions

__all__ = ["simulate_contributions", "simulate_from_priors", "true_psi"]


def simulate_contributions(
    n_points: int = 200,
    samples_per_point: int = 50,
    k_range: tuple[int, int] = (100, 1000),
    *,
    log_c: tuple[float, float] = (-1.0, 0.8),
    alpha: tuple[float, float] = (1.2, 0.2),
    log_sigma: tuple[float, float] = (0.0, 0.3),
    beta: tuple[float, float] = (2.0, 0.2),
    p_harmful: float = 0.1,
    features: np.ndarray | None = None,
    log_c_effects: Sequence[float] | None = None,
    alpha_effects: Sequence[float] | None = None,
    k_design: str | Sequence[int] = "uniform",
    likelihood: str = "normal",
    nu: float = 5.0,
    skew: float = 0.8,
    second_term: tuple[float, float] | None = None,
    curvature: tuple[float, float] | None = None,
    random_state=None,
) -> tuple[Contributions, pd.DataFrame]:
    """Draw observations for ``n_points`` points with known (c, α, σ, β).

    Parameters
    ----------
    n_points, samples_per_point : int
        Number of points and observations per point (m).
    k_range : (int, int)
        Inclusive range of base-set sizes.
    log_c, alpha, log_sigma, beta : (mean, sd)
        Population mean and standard deviation of each per-point parameter. ``alpha`` and
        ``beta`` draws are truncated below at 0.05 so the law always decays.
    p_harmful : float
        Probability that c is negative.
    features : array, shape (n_points, p), optional
        Point features. With ``log_c_effects`` / ``alpha_effects`` (length p) the population
        mean becomes ``mean + features @ effects``.
    k_design : "uniform", "loguniform" or a sequence of ints
        How k is drawn: uniform integers in ``k_range`` (the paper), log-uniform, or cycled
        through a fixed grid of sizes.
    likelihood : "normal", "studentt" or "lognormal"
        Student-t noise (``nu`` degrees of freedom) tests robustness to heavy tails.
        "lognormal" draws right-skewed noise like real contributions (mostly small, now and
        then large): a log-normal with log-scale sd ``skew``, standardized to mean 0 and
        sd 1 (skewness 3.7 at 0.8), so ψ_k is still the mean of Δ.
    second_term : (relative sd, gap), optional
        Add ``b·k^(−(α+gap))`` to every point's law (ScalingLawModel's ``law="two_term"``),
        with ``b = r·|c|·k_mid^gap``, r ~ Normal(0, relative sd) and k_mid the geometric mean
        of ``k_range``: at k_mid the second term is r times the first. Points with r < −1
        (or r > 1 for harmful ones) change sign inside the range. ``truth`` then also has
        ``b`` and ``gamma``.
    curvature : (mean, sd), optional
        Bend every point's law in log-log (ScalingLawModel's ``law="curved"``): ψ_k =
        c·k^(−α)·exp(−κ·log²(k/k_mid)/2) with κ ~ Normal(mean, sd) per point and k_mid the
        geometric mean of ``k_range``, so α is the exponent at k_mid. ``truth`` then also has
        ``kappa`` and ``k_curve`` (= k_mid).
    random_state : int, Generator or None

    Returns
    -------
    contributions : Contributions
    truth : pandas.DataFrame
        Indexed by point: ``c`` (signed), ``alpha``, ``sigma``, ``beta``, ``harmful`` and the
        features as ``x0, x1, ...`` when given.

    Examples
    --------
    >>> c, truth = simulate_contributions(n_points=5, samples_per_point=4, random_state=0)
    >>> len(c), list(truth.columns[:4])
    (20, ['c', 'alpha', 'sigma', 'beta'])
    """
    n_points = check_int(n_points, "n_points", minimum=1)
    m = check_int(samples_per_point, "samples_per_point", minimum=1)
    k_min, k_max = check_k_range(k_range)
    if not 0.0 <= p_harmful <= 1.0:
        raise ValueError(f"p_harmful must be in [0, 1]; got {p_harmful}")
    if likelihood not in ("normal", "studentt", "lognormal"):
        raise ValueError(f"likelihood must be 'normal', 'studentt' or 'lognormal'; got {likelihood!r}")
    if likelihood == "lognormal" and not skew > 0:
        raise ValueError(f"skew must be positive; got {skew!r}")
    rng = as_generator(random_state)

    mean_log_c = np.full(n_points, float(log_c[0]))
    mean_alpha = np.full(n_points, float(alpha[0]))
    if features is not None:
        features = np.asarray(features, dtype=float)
        if features.ndim == 1:
            features = features[:, None]
        if features.shape[0] != n_points:
            raise ValueError(
                f"features has {features.shape[0]} rows but n_points is {n_points}"
            )
        for effects, target, label in (
            (log_c_effects, mean_log_c, "log_c_effects"),
            (alpha_effects, mean_alpha, "alpha_effects"),
        ):
            if effects is None:
                continue
            effects = np.asarray(effects, dtype=float)
            if effects.shape != (features.shape[1],):
                raise ValueError(f"{label} must have one entry per feature ({features.shape[1]})")
            target += features @ effects
    elif log_c_effects is not None or alpha_effects is not None:
        raise ValueError("feature effects need features")

    abs_c = np.exp(rng.normal(mean_log_c, log_c[1]))
    a = np.maximum(rng.normal(mean_alpha, alpha[1]), 0.05)
    sigma = np.exp(rng.normal(log_sigma[0], log_sigma[1], n_points))
    b = np.maximum(rng.normal(beta[0], beta[1], n_points), 0.05)
    harmful = rng.random(n_points) < p_harmful
    c = np.where(harmful, -abs_c, abs_c)
    if second_term is not None:
        rel_sd, gap = (float(v) for v in second_term)
        if not (rel_sd >= 0 and gap > 0):
            raise ValueError(f"second_term must be (relative sd >= 0, gap > 0); got {second_term!r}")
        k_mid = np.sqrt(k_min * k_max)
        b_coef = rng.normal(0.0, rel_sd, n_points) * abs_c * k_mid**gap
        gamma = a + gap
    if curvature is not None:
        kappa = rng.normal(float(curvature[0]), float(curvature[1]), n_points)
        k_curve = float(np.sqrt(k_min * k_max))

    ks = _draw_ks(k_design, (k_min, k_max), (n_points, m), rng)
    mean = c[:, None] * ks ** (-a[:, None])
    if curvature is not None:
        mean = mean * np.exp(-0.5 * kappa[:, None] * np.log(ks / k_curve) ** 2)
    if second_term is not None:
        mean = mean + b_coef[:, None] * ks ** (-gamma[:, None])
    sd = sigma[:, None] * ks ** (-b[:, None] / 2.0)
    if likelihood == "studentt":
        noise = rng.standard_t(nu, size=ks.shape)
    elif likelihood == "lognormal":  # standardized with the distribution's own mean and sd
        v = skew**2
        noise = (rng.lognormal(0.0, skew, ks.shape) - np.exp(v / 2)) / np.sqrt((np.exp(v) - 1) * np.exp(v))
    else:
        noise = rng.standard_normal(ks.shape)
    deltas = mean + sd * noise

    truth = pd.DataFrame(
        {"c": c, "alpha": a, "sigma": sigma, "beta": b, "harmful": harmful},
        index=pd.Index(np.arange(n_points), name="point"),
    )
    if second_term is not None:
        truth["b"] = b_coef
        truth["gamma"] = gamma
    if curvature is not None:
        truth["kappa"] = kappa
        truth["k_curve"] = k_curve
    if features is not None:
        for j in range(features.shape[1]):
            truth[f"x{j}"] = features[:, j]
    meta = {
        "design": "simulated",
        "k_range": [k_min, k_max],
        "samples_per_point": m,
        "likelihood": likelihood,
        "random_state": None if random_state is None else repr(random_state),
    }
    return Contributions.from_arrays(deltas, ks, metadata=meta), truth


def true_psi(truth: pd.DataFrame, k) -> pd.DataFrame:
    """The exact expected contribution ψ_k = c k^(−α) (· exp(−κ log²(k/k_curve)/2)) (+ b k^(−γ)).

    Returns a DataFrame indexed by point with one column per k.

    Examples
    --------
    >>> truth = pd.DataFrame({"c": [2.0], "alpha": [1.0]})
    >>> float(true_psi(truth, [2]).iloc[0, 0])
    1.0
    """
    k = np.atleast_1d(np.asarray(k, dtype=float))
    if (k <= 0).any():
        raise ValueError("k must be positive")
    values = truth["c"].to_numpy()[:, None] * k[None, :] ** (-truth["alpha"].to_numpy()[:, None])
    if "kappa" in truth:
        values = values * np.exp(-0.5 * truth["kappa"].to_numpy()[:, None]
                                 * np.log(k[None, :] / truth["k_curve"].to_numpy()[:, None]) ** 2)
    if "b" in truth:
        values = values + truth["b"].to_numpy()[:, None] * k[None, :] ** (-truth["gamma"].to_numpy()[:, None])
    return pd.DataFrame(values, index=truth.index, columns=pd.Index(k, name="k"))


def _draw_ks(design, k_range, shape, rng) -> np.ndarray:
    k_min, k_max = k_range
    if isinstance(design, str):
        if design == "uniform":
            return rng.integers(k_min, k_max + 1, size=shape).astype(float)
        if design == "loguniform":
            return np.round(np.exp(rng.uniform(np.log(k_min), np.log(k_max), size=shape)))
        raise ValueError(f"k_design must be 'uniform', 'loguniform' or a grid of sizes; got {design!r}")
    grid = np.asarray(design, dtype=float)
    if grid.ndim != 1 or grid.size == 0 or (grid < 1).any():
        raise ValueError("a k_design grid must be a non-empty 1-D sequence of sizes >= 1")
    return np.resize(grid, shape[1])[None, :].repeat(shape[0], axis=0)


def simulate_from_priors(
    priors: dict,
    n_points: int = 20,
    samples_per_point: int = 10,
    k_range: tuple[int, int] = (100, 1000),
    *,
    k_ref: float | None = None,
    delta_scale: float = 1.0,
    random_state=None,
) -> tuple[Contributions, dict]:
    """Draw one dataset from the prior of the (feature-free, Normal) ``ScalingLawModel``.

    The generative model is the one :class:`~bayescale.model.ScalingLawModel` fits, on its
    internal scale: population parameters from ``priors``, then per point
    ``θ_ib ~ Normal(μ_b, τ_b)`` for the blocks ℓ, α, log s, β, a sign with P(+) =
    sigmoid(``pi_intercept``), and ``Δ = delta_scale · (sign·e^(ℓ − α u) + e^(log s − β u/2) ε)``
    with ``u = log(k / k_ref)``. Used for simulation-based calibration: fit the model with the
    same ``priors``, ``k_ref`` and ``delta_scale`` and the population draws' ranks are uniform.

    Parameters
    ----------
    priors : dict
        Every key of :func:`bayescale.priors.prior_keys` that the model uses (the ``*_mu``,
        ``*_tau`` and ``pi_intercept`` entries); the data-derived defaults cannot serve here
        because calibration needs a prior that does not look at the data.
    n_points, samples_per_point : int
    k_range : (int, int)
        Inclusive; k is drawn uniformly.
    k_ref : float, optional
        Default: the geometric mean of ``k_range``.
    delta_scale : float
    random_state : int, Generator or None

    Returns
    -------
    contributions : Contributions
    truth : dict
        Population values (``ell_mu``, ``ell_tau``, ..., ``pi_intercept``) as floats and the
        per-point arrays ``ell``, ``alpha``, ``log_s``, ``beta``, ``sign``.

    Examples
    --------
    >>> from bayescale.priors import default_priors
    >>> import numpy as np
    >>> pri = default_priors(np.array([1.0, -1.0]), np.array([0.0, 1.0]), np.array([0, 1]), 2)
    >>> c, truth = simulate_from_priors(pri, n_points=3, samples_per_point=4, random_state=0)
    >>> len(c), sorted(truth)[:2]
    (12, ['alpha', 'alpha_mu'])
    """
    n_points = check_int(n_points, "n_points", minimum=1)
    m = check_int(samples_per_point, "samples_per_point", minimum=1)
    k_min, k_max = check_k_range(k_range)
    rng = as_generator(random_state)
    if k_ref is None:
        k_ref = float(np.sqrt(k_min * k_max))
    missing = [f"{b}_{p}" for b in ("ell", "alpha", "log_s", "beta") for p in ("mu", "tau")
               if f"{b}_{p}" not in priors]
    if "pi_intercept" not in priors:
        missing.append("pi_intercept")
    if missing:
        raise ValueError(f"priors lacks {missing}")
    truth: dict = {}
    for b in ("ell", "alpha", "log_s", "beta"):
        loc, scale = priors[f"{b}_mu"]
        truth[f"{b}_mu"] = float(rng.normal(loc, scale))
        truth[f"{b}_tau"] = float(abs(rng.normal(0.0, priors[f"{b}_tau"])))
        truth[b] = rng.normal(truth[f"{b}_mu"], truth[f"{b}_tau"], n_points)
    loc, scale = priors["pi_intercept"]
    truth["pi_intercept"] = float(rng.normal(loc, scale))
    p_pos = 1.0 / (1.0 + np.exp(-truth["pi_intercept"]))
    truth["sign"] = np.where(rng.random(n_points) < p_pos, 1.0, -1.0)
    ks = rng.integers(k_min, k_max + 1, size=(n_points, m)).astype(float)
    u = np.log(ks / k_ref)
    mean = truth["sign"][:, None] * np.exp(truth["ell"][:, None] - truth["alpha"][:, None] * u)
    sd = np.exp(truth["log_s"][:, None] - 0.5 * truth["beta"][:, None] * u)
    deltas = delta_scale * (mean + sd * rng.standard_normal(ks.shape))
    meta = {"design": "prior", "k_range": [k_min, k_max], "samples_per_point": m}
    return Contributions.from_arrays(deltas, ks, metadata=meta), truth
