"""Tests for the paper's per-point estimators (bayescale.baselines).

Recovery tolerances come from the estimators' own sampling error, computed from the known
truth (Fisher information for the MLE, the delta method for the log regression, the exact
variance of a mean for Monte Carlo), not from tuning: each error must lie within 4 standard
errors. With ≤ 60 points per test the chance that any honest estimate falls outside is
about 60 × 6e-5 ≈ 0.4% under the asymptotic Normal approximation, which holds here because
the simulated signal-to-noise ratio per point is high (m ≥ 400, σ ≈ 0.05).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize

import bayescale as bs
from bayescale import baselines as B

GRID = [100, 158, 251, 398, 631, 1000]
Z = 4.0  # tolerance in standard errors, see the module docstring


@pytest.fixture(scope="module")
def precise():
    """Many low-noise observations per point: the regime where every baseline is consistent."""
    return bs.simulate_contributions(
        n_points=50, samples_per_point=400, log_c=(-1.0, 0.3), log_sigma=(-3.0, 0.1),
        p_harmful=0.1, random_state=1,
    )


def _fisher_se(truth: pd.DataFrame, ks: np.ndarray) -> pd.DataFrame:
    """Asymptotic standard errors of (c, α) and β for each point at its observed sizes ``ks``.

    For a Normal model the mean parameters (c, α) and the variance parameters (log σ, β) are
    orthogonal, so each block's information can be inverted on its own.
    """
    rows = []
    for i, p in enumerate(truth.itertuples()):
        k = ks[i]
        prec = k**p.beta / p.sigma**2
        d_c = k ** (-p.alpha)
        d_a = -p.c * k ** (-p.alpha) * np.log(k)
        info = np.array([[np.sum(prec * d_c * d_c), np.sum(prec * d_c * d_a)],
                         [np.sum(prec * d_c * d_a), np.sum(prec * d_a * d_a)]])
        cov = np.linalg.inv(info)
        # log var = 2 log σ − β log k, and a Normal's information on log var is 1/2 per row.
        g = np.stack([np.full_like(k, 2.0), -np.log(k)], axis=1)
        cov_v = np.linalg.inv(0.5 * g.T @ g)
        rows.append((np.sqrt(cov[0, 0]), np.sqrt(cov[1, 1]), np.sqrt(cov_v[0, 0]),
                     np.sqrt(cov_v[1, 1])))
    return pd.DataFrame(rows, columns=["c", "alpha", "log_sigma", "beta"], index=truth.index)


def _ks_by_point(c: bs.Contributions) -> np.ndarray:
    return np.stack([g["k"].to_numpy(float) for _, g in c.data.groupby("point")])


# --------------------------------------------------------------------------- recovery
def test_mle_recovers_parameters_within_fisher_error(precise):
    c, truth = precise
    fit = B.mle(c)
    assert fit["converged"].all() and not fit["at_bound"].any()
    se = _fisher_se(truth, _ks_by_point(c))
    for name in ("alpha", "beta"):
        z = (fit[name] - truth[name]) / se[name]
        assert np.abs(z).max() < Z, (name, z.abs().max())
    # c = ψ(k_ref)·k_ref^α is far from Normal (an exponential of α's error), but log|c| is
    # linear in α, so its Normal approximation (se of log|c| = se_c / |c|) is the one to test.
    assert (np.sign(fit["c"]) == np.sign(truth["c"])).all()
    z_c = np.log(fit["c"] / truth["c"]) / (se["c"] / np.abs(truth["c"]))
    assert np.abs(z_c).max() < Z
    z_sigma = np.log(fit["sigma"] / truth["sigma"]) / se["log_sigma"]
    assert np.abs(z_sigma).max() < Z


def test_log_regression_recovers_alpha_and_c_on_a_grid():
    # The paper uses log regression with many observations per k: here 100 per size.
    c, truth = bs.simulate_contributions(
        n_points=40, samples_per_point=600, log_c=(-1.0, 0.3), log_sigma=(-4.5, 0.1),
        p_harmful=0.1, k_design=GRID, random_state=2,
    )
    fit = B.log_regression(c)
    assert fit["converged"].all() and (fit["n_k"] == len(GRID)).all()
    ks = np.asarray(GRID, float)
    x = -np.log(ks)
    n_per_k = 600 / len(GRID)
    checked = 0
    for p in truth.itertuples():
        psi = p.c * ks ** (-p.alpha)
        sd_mean = p.sigma * ks ** (-p.beta / 2) / np.sqrt(n_per_k)
        # The delta method for log|mean| needs the mean well away from zero at every size.
        if np.min(np.abs(psi) / sd_mean) < 4:
            continue
        var_y = (sd_mean / psi) ** 2  # delta method: Var log|mean| ≈ (sd / |ψ|)²
        xc = x - x.mean()
        se_alpha = np.sqrt(np.sum(xc**2 * var_y)) / np.sum(xc**2)
        got = fit.loc[p.Index]
        assert abs(got["alpha"] - p.alpha) < Z * se_alpha
        assert np.sign(got["c"]) == np.sign(p.c)
        checked += 1
    assert checked >= 30
    # c inherits α's error through k^α at the grid's centre (≈ 400): |Δlog c| ≈ log(400)·|Δα|.
    dlog_c = np.log(np.abs(fit["c"] / truth["c"]))
    assert (np.abs(dlog_c) < np.log(400) * np.abs(fit["alpha"] - truth["alpha"]) + 0.05).all()


def test_monte_carlo_estimates_the_mean_over_the_sampled_range(precise):
    c, truth = precise
    mc = B.monte_carlo(c)
    assert (mc["alpha"] == 0).all() and np.array_equal(mc["c"], mc["value"])
    # k is uniform on the integers of [100, 1000], so E[Δ] is the distributional value and
    # Var Δ = Var_k ψ_k + E_k σ² k^(−β), both exact from the truth.
    ks = np.arange(100, 1001, dtype=float)
    psi = truth["c"].to_numpy()[:, None] * ks ** (-truth["alpha"].to_numpy()[:, None])
    noise = truth["sigma"].to_numpy()[:, None] ** 2 * ks ** (-truth["beta"].to_numpy()[:, None])
    se = np.sqrt((psi.var(1) + noise.mean(1)) / 400)
    z = (mc["value"].to_numpy() - psi.mean(1)) / se
    assert np.abs(z).max() < Z
    # The reported se estimates the same quantity. Its relative error is about half the
    # relative sd of a sample variance, sqrt((κ − 1) / m) / 2, where κ is Δ's kurtosis: the
    # noise variance varies ~10× over k, so κ is well above a Normal's 3. Bound: 4 of those sds.
    d2 = (psi - psi.mean(1, keepdims=True)) ** 2
    kurt = (d2**2 + 6 * d2 * noise + 3 * noise**2).mean(1) / (d2 + noise).mean(1) ** 2
    rel_sd = np.sqrt((kurt - 1) / 400) / 2
    assert (np.abs(np.log(mc["se"].to_numpy() / se)) < Z * rel_sd).all()


# --------------------------------------------------------------------------- MLE vs direct optimisation
def _full_nll(params, k, d):
    c, log_a, log_s, log_b = params
    var = np.exp(2 * log_s) * k ** (-np.exp(log_b))
    return np.sum(0.5 * np.log(2 * np.pi * var) + 0.5 * (d - c * k ** (-np.exp(log_a))) ** 2 / var)


def test_mle_matches_direct_four_parameter_optimisation():
    c, truth = bs.simulate_contributions(
        n_points=6, samples_per_point=80, log_sigma=(-2.0, 0.2), random_state=3
    )
    fit = B.mle(c)
    for point, obs in c.data.groupby("point"):
        k, d = obs["k"].to_numpy(float), obs["delta"].to_numpy()
        best = None
        # Several starts from the truth's neighbourhood and the paper's start; keep the best.
        for a0, b0 in [(1.0, 2.0), (truth.loc[point, "alpha"], truth.loc[point, "beta"]), (2.0, 1.5)]:
            c0 = np.sum(d * k ** (b0 - a0)) / np.sum(k ** (b0 - 2 * a0))
            s0 = np.sqrt(np.mean((d - c0 * k ** (-a0)) ** 2 * k**b0))
            res = minimize(_full_nll, [c0, np.log(a0), np.log(s0), np.log(b0)], args=(k, d),
                           method="Nelder-Mead",
                           options={"maxiter": 40_000, "xatol": 1e-10, "fatol": 1e-12})
            if best is None or res.fun < best.fun:
                best = res
        got = fit.loc[point]
        if got["at_bound"]:
            continue
        # Our profile optimum must be at least as good as scipy's and at the same place.
        assert got["nll"] <= best.fun + 1e-6 * abs(best.fun)
        assert got["nll"] == pytest.approx(_full_nll(
            [got["c"], np.log(got["alpha"]), np.log(got["sigma"]), np.log(got["beta"])], k, d))
        np.testing.assert_allclose(
            [got["alpha"], got["beta"]], np.exp(best.x[[1, 3]]), rtol=2e-3)
        np.testing.assert_allclose(got["c"], best.x[0], rtol=5e-3)
    assert (~fit["at_bound"]).sum() >= 4  # the comparison above really ran on most points


def test_mle_count_weights_act_like_repeated_rows():
    c, _ = bs.simulate_contributions(n_points=5, samples_per_point=30, log_sigma=(-2.0, 0.2),
                                     random_state=4)
    df = c.data
    doubled = bs.Contributions(pd.concat([df, df], ignore_index=True))
    weighted = bs.Contributions(df.assign(count=2))
    a, b = B.mle(doubled), B.mle(weighted)
    # A row of weight 2 enters c's least squares and the residual sum exactly like two copies,
    # so (c, α, β) coincide; σ differs because a count-2 row is a mean of two observations.
    np.testing.assert_allclose(a[["c", "alpha", "beta"]], b[["c", "alpha", "beta"]], rtol=1e-5)
    np.testing.assert_allclose(b["sigma"], a["sigma"] * np.sqrt(2), rtol=1e-5)
    np.testing.assert_allclose(B.monte_carlo(doubled)["value"], B.monte_carlo(weighted)["value"])


def test_mle_small_m_is_never_nan_and_flags_failures():
    c, _ = bs.simulate_contributions(n_points=300, samples_per_point=4, random_state=5)
    zero = bs.Contributions(pd.DataFrame({"point": [999] * 4, "k": [100, 200, 300, 400],
                                          "delta": [0.0] * 4}))
    fit = B.mle(bs.Contributions.concat([c, zero]))
    assert np.isfinite(fit[["c", "alpha", "sigma", "beta", "nll"]].to_numpy()).all()
    assert fit["converged"].dtype == bool and fit["at_bound"].dtype == bool
    # An all-zero point interpolates exactly (σ → 0): reported as not converged.
    assert not fit.loc[999, "converged"]
    # With 4 observations the per-point likelihood is often unbounded; those fits sit on a bound.
    assert fit["at_bound"].any()


def test_mle_vectorized_equals_one_point_at_a_time(precise):
    c, _ = precise
    together = B.mle(c.subset(points=[0, 1, 2]))
    alone = pd.concat([B.mle(c.subset(points=[p])) for p in (0, 1, 2)])
    np.testing.assert_allclose(together[["c", "alpha", "sigma", "beta"]],
                               alone[["c", "alpha", "sigma", "beta"]], rtol=1e-6)


# --------------------------------------------------------------------------- helpers
def test_predict_psi_and_distributional_values(precise):
    c, truth = precise
    fit = B.mle(c)
    pred = B.predict_psi(fit, [100, 1000])
    assert list(pred.columns) == [100, 1000] and pred.index.equals(fit.index)
    np.testing.assert_allclose(pred[100], fit["c"] * 100.0 ** (-fit["alpha"]))
    dv = B.distributional_values(fit, (100, 1000))
    ks = np.arange(100, 1001)
    np.testing.assert_allclose(dv, B.predict_psi(fit, ks).mean(axis=1), rtol=1e-9)
    mc = B.monte_carlo(c)
    np.testing.assert_allclose(B.distributional_values(mc, (100, 1000)), mc["value"])


# --------------------------------------------------------------------------- bad input
def test_empty_table_raises():
    empty = bs.Contributions(pd.DataFrame({"point": [], "k": [], "delta": []}))
    for f in (B.monte_carlo, B.log_regression, B.mle):
        with pytest.raises(ValueError, match="empty"):
            f(empty)


def test_single_k_points():
    one_k = bs.Contributions(pd.DataFrame({"point": [0, 0, 0, 1], "k": [50, 50, 50, 70],
                                           "delta": [0.1, 0.2, 0.3, 0.5]}))
    mc = B.monte_carlo(one_k)  # Monte Carlo needs no spread in k, and one row is enough
    assert mc.loc[0, "value"] == pytest.approx(0.2) and np.isnan(mc.loc[1, "se"])
    with pytest.raises(ValueError, match="at least 2 distinct k"):
        B.log_regression(one_k)
    with pytest.raises(ValueError, match=r"at least 2 distinct k and at least 3 observations"):
        B.mle(one_k)


def test_mle_needs_three_rows():
    two = bs.Contributions(pd.DataFrame({"point": [0, 0], "k": [50, 60], "delta": [0.1, 0.2]}))
    assert B.log_regression(two).loc[0, "converged"]
    with pytest.raises(ValueError, match="3 observations"):
        B.mle(two)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"alpha_bounds": (0, 1)}, "alpha_bounds"), ({"beta_bounds": (2, 1)}, "beta_bounds"),
     ({"starts": [(-1.0, 2.0)]}, "starts"), ({"max_iter": 0}, "max_iter")],
)
def test_mle_bad_options(precise, kwargs, match):
    c, _ = precise
    with pytest.raises(ValueError, match=match):
        B.mle(c.subset(points=[0]), **kwargs)


def test_bad_frames_and_sizes():
    with pytest.raises(ValueError, match="contributions"):
        B.monte_carlo([1, 2, 3])
    with pytest.raises(ValueError, match="'c' and 'alpha'"):
        B.predict_psi(pd.DataFrame({"value": [1.0]}), 10)
    with pytest.raises(ValueError, match="k must be"):
        B.predict_psi(pd.DataFrame({"c": [1.0], "alpha": [1.0]}), [0, 10])


def test_monte_carlo_reweights_a_loguniform_design_to_the_uniform_average():
    # Noise-free ψ_k = 100/k observed at k ~ 1/k on 10..1000 (4,000 rows): the plain mean is
    # the log-uniform average (100·(1/10 − 1/1000)/log(100) ≈ 2.15) while the distributional
    # value is the uniform average (100·log(100)/990 ≈ 0.465).
    rng = np.random.default_rng(0)
    ks = np.arange(10, 1001)
    k = rng.choice(ks, size=4000, p=(1 / ks) / (1 / ks).sum())
    frame = pd.DataFrame({"point": 0, "k": k, "delta": 100.0 / k})
    uniform_avg = np.mean(100.0 / ks)
    logu = B.monte_carlo(bs.Contributions(frame, {"k_design": "loguniform"}))
    plain = B.monte_carlo(bs.Contributions(frame, {"k_design": "uniform"}))
    assert abs(logu["value"].iloc[0] / uniform_avg - 1) < 0.05
    assert plain["value"].iloc[0] > 3 * uniform_avg
    # The weighted se covers the weighted estimate's actual error over repeated designs.
    errs, ses = [], []
    for seed in range(200):
        r = np.random.default_rng(seed)
        kk = r.choice(ks, size=200, p=(1 / ks) / (1 / ks).sum())
        f = pd.DataFrame({"point": 0, "k": kk, "delta": 1.0 + r.normal(0, 1, 200)})
        out = B.monte_carlo(bs.Contributions(f, {"k_design": "loguniform"}))
        errs.append(out["value"].iloc[0] - 1.0)
        ses.append(out["se"].iloc[0])
    assert 0.85 < np.std(errs) / np.mean(ses) < 1.15
