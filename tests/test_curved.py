"""The curved law (``law="curved"``): ψ_k = c·k^(−α)·exp(−κ·log²(k/k_ref)/2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from law_checks import (  # tests/ is on sys.path
    assert_branch_sums_match_scipy,
    assert_save_load_round_trip,
    assert_valuation_follows_predict,
)

import bayescale as bs
from bayescale.simulate import simulate_contributions, true_psi

# Every point bends like the real tables of the accuracy benchmark (κ about 1: the local
# exponent grows by one per e-fold of k). Low noise (σ ≈ e^−2) and k from 20 to 1000 so that
# 30 observations per point show the bend.
CURVED = dict(n_points=60, samples_per_point=30, k_range=(20, 1000), log_sigma=(-2.0, 0.3),
              alpha=(1.5, 0.2), curvature=(1.0, 0.2), k_design="loguniform", p_harmful=0.0)


@pytest.fixture(scope="module")
def selected():
    c, truth = simulate_contributions(**CURVED, random_state=3)
    best, table = bs.select_law(c, laws=("power", "curved"), method="nuts", nuts_sampler="nutpie",
                                draws=300, tune=400, chains=2, random_seed=0, progressbar=False)
    return c, truth, best, table


def test_loo_chooses_the_curved_law_on_bending_curves(selected):
    _, _, best, table = selected
    print(table)
    assert best.law == "curved"
    k_bin = bs.laws.compare_laws(best.law_candidates_, level="k_bin")
    print(k_bin)
    assert k_bin.loc["curved", "chosen"]


def test_population_curvature_is_recovered(selected):
    _, truth, best, _ = selected
    kappa_mu = best.idata.posterior["kappa_mu"].values.ravel()
    low, high = np.quantile(kappa_mu, [0.05, 0.95])
    assert low > 0.5 and high < 1.5  # the truth is 1.0; 0 (the power law) is far outside
    per_point = best.idata.posterior["kappa"].mean(("chain", "draw")).to_numpy()
    assert np.mean(np.abs(per_point - truth["kappa"].to_numpy())) < 0.3


def test_curved_fit_predicts_the_ends_of_the_range_better_than_the_power_law(selected):
    _, truth, best, _ = selected
    ks = np.array([20.0, 1000.0])
    t = true_psi(truth, ks).to_numpy()

    def rmse(model):
        return np.sqrt(np.mean((model.predict(ks).mean(("chain", "draw")).values - t) ** 2))

    assert rmse(best) < 0.7 * rmse(best.law_candidates_["power"])


def test_predict_value_and_value_at_follow_the_curved_law(selected):
    _, _, best, _ = selected
    post = best.idata.posterior
    ks = np.array([30.0, 300.0])
    by_hand = (post["c"] * np.exp(-post["alpha"] * np.log(ks[1]) - 0.5 * post["kappa"]
                                  * np.log(ks[1] / post.attrs["k_ref"]) ** 2))
    np.testing.assert_allclose(best.predict(ks).isel(k=1).values, by_hand.values, rtol=1e-10)
    assert_valuation_follows_predict(best, ks)


def test_curved_save_load_round_trip(selected, tmp_path):
    _, _, best, _ = selected
    assert_save_load_round_trip(best, tmp_path / "curved.nc", [25, 800])
    loaded = bs.ScalingLawModel.load(tmp_path / "curved.nc")
    pd.testing.assert_frame_equal(bs.value(loaded), bs.value(best))


def test_curved_log_likelihood_matches_scipy():
    # Per point: Δ ~ Normal(±|c| k^−α exp(−κ u²/2), σ² k^−β / count), sign marginalized.
    def means(theta, i, k, k_ref, d):
        u = np.log(k / k_ref)
        mag = np.exp(theta["ell"][i] - theta["alpha"][i] * u - 0.5 * theta["kappa"][i] * u**2) * d
        return mag, -mag

    assert_branch_sums_match_scipy("curved", ("kappa", 0.8), means)


def test_curved_graph_equals_numpy_log_likelihood():
    from test_model import _potential_at_map  # tests/ is on sys.path

    c, _ = simulate_contributions(n_points=10, samples_per_point=6, curvature=(1.0, 0.3), random_state=2)
    m = bs.ScalingLawModel(law="curved")
    m.fit(c, method="map", progressbar=False, maxeval=50)
    assert {"kappa", "kappa_mu", "kappa_tau"} <= set(m.idata.posterior.data_vars)
    assert _potential_at_map(m) == pytest.approx(float(m.idata.log_likelihood["delta"].sum()), rel=1e-8)


def test_simulated_curvature_is_in_the_truth():
    c, truth = simulate_contributions(n_points=5, samples_per_point=4, k_range=(10, 1000),
                                      curvature=(2.0, 0.0), random_state=0)
    assert {"kappa", "k_curve"} <= set(truth.columns)
    assert truth["k_curve"].iloc[0] == pytest.approx(100.0)
    psi = true_psi(truth, [10, 100, 1000]).to_numpy()
    # At k_curve the bend is 1; a factor e^−κ·log²(10)/2 at both ends.
    straight = (truth["c"].to_numpy()[:, None] * np.array([10.0, 100.0, 1000.0]) ** -truth["alpha"].to_numpy()[:, None])
    np.testing.assert_allclose(psi / straight, np.exp(-np.log(10) ** 2 * np.array([1, 0, 1])) * np.ones((5, 1)))


def test_valuation_refuses_kappa_without_its_centre(selected):
    _, _, best, _ = selected
    idata = best.idata.copy()
    del idata.posterior.attrs["k_ref"]
    with pytest.raises(ValueError, match="k_ref"):
        bs.value(idata)
