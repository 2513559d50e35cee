"""Tests of the simulators: the generative story they claim, checked by its statistics."""

from __future__ import annotations

import numpy as np
import pytest

from bayescale.priors import default_priors, prior_keys
from bayescale.simulate import simulate_contributions, simulate_from_priors, true_psi


def test_simulate_shapes_signs_and_truth():
    c, truth = simulate_contributions(n_points=400, samples_per_point=5, p_harmful=0.3, random_state=0)
    assert len(c) == 2000 and c.n_points == 400
    assert list(truth.columns) == ["c", "alpha", "sigma", "beta", "harmful"]
    # Share of negative c ~ Binomial(400, 0.3)/400: sd 0.023, so ±0.08 is > 3 sd.
    assert abs(truth["harmful"].mean() - 0.3) < 0.08
    assert ((truth["c"] < 0) == truth["harmful"]).all()
    assert (truth["alpha"] >= 0.05).all() and (truth["beta"] >= 0.05).all()
    lo, hi = c.k_range
    assert 100 <= lo and hi <= 1000


def test_simulate_mean_and_noise_follow_the_law():
    # One point observed many times at two sizes: the sample mean and sd at each k must match
    # c k^-α and σ k^-β/2 within 5 standard errors.
    c, truth = simulate_contributions(n_points=1, samples_per_point=20000, k_design=[100, 900],
                                      random_state=1)
    df = c.data
    t = truth.iloc[0]
    for k in (100, 900):
        d = df.loc[df["k"] == k, "delta"].to_numpy()
        sd = t["sigma"] * k ** (-t["beta"] / 2)
        assert abs(d.mean() - t["c"] * k ** (-t["alpha"])) < 5 * sd / np.sqrt(d.size)
        assert abs(d.std() / sd - 1) < 5 * np.sqrt(0.5 / d.size)


def test_lognormal_noise_is_right_skewed_with_the_laws_mean_and_sd():
    # Skewed noise must leave E[Δ] = ψ_k and sd σ k^(−β/2), and be right-skewed: at skew 0.8
    # the standardized log-normal has skewness 3.7 and a median below its mean.
    from scipy import stats

    c, truth = simulate_contributions(n_points=1, samples_per_point=40000, k_design=[100],
                                      likelihood="lognormal", random_state=2)
    t = truth.iloc[0]
    d = c.data["delta"].to_numpy()
    sd = t["sigma"] * 100 ** (-t["beta"] / 2)
    # The sd of a sample sd grows with the kurtosis κ (34.4 here): 5 × sqrt((κ − 1)/4n).
    assert abs(d.mean() - t["c"] * 100 ** (-t["alpha"])) < 5 * sd / np.sqrt(d.size)
    assert abs(d.std() / sd - 1) < 5 * np.sqrt(33.4 / (4 * d.size))
    assert stats.skew(d) > 2.0
    assert np.median(d) < d.mean()
    with pytest.raises(ValueError, match="skew must be positive"):
        simulate_contributions(n_points=2, samples_per_point=2, likelihood="lognormal", skew=0.0)


def test_simulate_feature_effects_and_designs():
    x = np.linspace(-2, 2, 500)[:, None]
    _, truth = simulate_contributions(n_points=500, samples_per_point=2, features=x,
                                      alpha_effects=[0.25], alpha=(1.2, 0.05), random_state=2)
    slope = np.polyfit(x[:, 0], truth["alpha"], 1)[0]
    assert slope == pytest.approx(0.25, abs=0.02)  # noise sd 0.05 over 500 points: se ≈ 0.002
    c, _ = simulate_contributions(n_points=3, samples_per_point=6, k_design="loguniform", random_state=0)
    assert c.data["k"].between(100, 1000).all()
    c, _ = simulate_contributions(n_points=2, samples_per_point=4, k_design=[10, 20], random_state=0)
    assert sorted(c.data["k"].unique()) == [10, 20]
    with pytest.raises(ValueError, match="k_design"):
        simulate_contributions(n_points=2, k_design="grid")
    with pytest.raises(ValueError, match="features"):
        simulate_contributions(n_points=2, alpha_effects=[1.0])
    with pytest.raises(ValueError, match="p_harmful"):
        simulate_contributions(n_points=2, p_harmful=2.0)


def test_true_psi():
    _, truth = simulate_contributions(n_points=3, samples_per_point=2, random_state=0)
    psi = true_psi(truth, [100, 1000])
    np.testing.assert_allclose(psi[1000.0], truth["c"] * 1000.0 ** -truth["alpha"])
    with pytest.raises(ValueError):
        true_psi(truth, [0])


def _fixed_priors():
    rng = np.random.default_rng(0)
    y = rng.normal(size=100)
    pri = default_priors(y, rng.uniform(-1, 1, 100), np.repeat(np.arange(10), 10), 10)
    assert set(pri) == set(prior_keys())
    return pri


def test_simulate_from_priors_draws_the_models_generative_story():
    pri = _fixed_priors()
    c, truth = simulate_from_priors(pri, n_points=5, samples_per_point=7, delta_scale=1e-3,
                                    random_state=0)
    assert len(c) == 35 and c.n_points == 5
    for b in ("ell", "alpha", "log_s", "beta"):
        assert truth[b].shape == (5,) and truth[f"{b}_tau"] >= 0
    assert set(np.unique(truth["sign"])) <= {-1.0, 1.0}
    # Population draws over many datasets follow their priors: mean of alpha_mu draws within
    # 4 standard errors of the prior mean.
    draws = [simulate_from_priors(pri, n_points=1, samples_per_point=1, random_state=s)[1]["alpha_mu"]
             for s in range(400)]
    loc, scale = pri["alpha_mu"]
    assert abs(np.mean(draws) - loc) < 4 * scale / np.sqrt(400)
    with pytest.raises(ValueError, match="priors lacks"):
        simulate_from_priors({"ell_mu": (0, 1)})
