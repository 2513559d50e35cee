"""The two-term law (``law="two_term"``), LOO law selection and sign-change flags."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from law_checks import (  # tests/ is on sys.path
    assert_branch_sums_match_scipy,
    assert_save_load_round_trip,
    assert_valuation_follows_predict,
)
from sklearn.metrics import roc_auc_score

import bayescale as bs
from bayescale.simulate import simulate_contributions, true_psi

# Points whose law changes sign: the second term is N(0, 1.5) times the first at the middle of
# the range and decays one power of k faster. The noise is lowered (σ ≈ e^−2) so that 30
# observations per point can see the shape of the curve, not only its level.
SIGN_CHANGING = dict(n_points=80, samples_per_point=30, log_sigma=(-2.0, 0.3), second_term=(1.5, 1.0))


def _changes_sign(truth: pd.DataFrame, k_range) -> np.ndarray:
    psi = true_psi(truth, np.geomspace(*k_range, 64)).to_numpy()
    return (psi.min(axis=1) < 0) & (psi.max(axis=1) > 0)


@pytest.fixture(scope="module")
def selected():
    c, truth = simulate_contributions(**SIGN_CHANGING, random_state=1)
    best, table = bs.select_law(c, method="nuts", nuts_sampler="nutpie", draws=300, tune=400,
                                chains=2, random_seed=0, progressbar=False)
    return c, truth, best, table


def test_loo_chooses_the_two_term_law_when_points_change_sign(selected):
    # 24 of 80 points change sign inside [100, 1000] (checked below); the power law cannot
    # follow them, so leave-one-point-out prediction must prefer the two-term law by more
    # than the 2 standard errors select_law asks for.
    c, truth, best, table = selected
    assert _changes_sign(truth, (100, 1000)).sum() >= 10
    assert best.law == "two_term"
    assert table.loc["two_term", "chosen"] and not table.loc["power", "chosen"]
    assert set(best.law_candidates_) == {"power", "curved", "two_term"}


def test_sign_change_flags_find_the_points_that_change_sign(selected):
    # The posterior probability of a sign change must rank the truly sign-changing points
    # above the others (AUC 0.5 = chance; measured 0.97). The power fit's Pareto k is larger
    # for them on average, since leaving one out moves a law that cannot fit it.
    c, truth, best, _ = selected
    flags = bs.sign_changes(best, best.law_candidates_["power"])
    changes = _changes_sign(truth.loc[flags.index], best.k_observed_)
    assert roc_auc_score(changes, flags["p_sign_change"]) > 0.85
    assert flags.loc[changes, "elpd_gain"].mean() > flags.loc[~changes, "elpd_gain"].mean()
    assert list(flags.columns) == ["p_sign_change", "psi_low", "psi_high", "elpd_gain", "pareto_k_power"]


def test_two_term_fit_predicts_psi_better_than_the_power_law(selected):
    c, truth, best, _ = selected
    ks = np.geomspace(100, 1000, 8)
    t = true_psi(truth, ks).to_numpy()

    def r2(model):
        pred = model.predict(ks).mean(("chain", "draw")).values
        return 1 - np.sum((pred - t) ** 2) / np.sum((t - t.mean(axis=0)) ** 2)

    assert r2(best) > r2(best.law_candidates_["power"])


def test_valuation_uses_both_terms(selected):
    # value_at and value must agree with ψ_k computed from predict (which adds b·k^(−γ)).
    assert_valuation_follows_predict(selected[2], [150, 600])


def test_two_term_save_load_round_trip(selected, tmp_path):
    assert_save_load_round_trip(selected[2], tmp_path / "two.nc", [123, 456])


def test_two_term_log_likelihood_matches_scipy():
    # Per point: Δ ~ Normal(±|c| k^−α + b k^−γ, σ² k^−β / count), sign marginalized.
    gap = np.array([0.7])

    def means(theta, i, k, k_ref, d):
        first = np.exp(theta["ell"][i]) * d * (k / k_ref) ** (-theta["alpha"][i])
        second = theta["b"][i] * d * (k / k_ref) ** (-(theta["alpha"][i] + gap[0]))
        return second + first, second - first

    assert_branch_sums_match_scipy("two_term", ("b", 0.0), means, gap)


def test_two_term_graph_equals_numpy_log_likelihood():
    from test_model import _potential_at_map  # tests/ is on sys.path

    c, _ = simulate_contributions(n_points=10, samples_per_point=6, second_term=(1.0, 1.0), random_state=2)
    m = bs.ScalingLawModel(law="two_term")
    m.fit(c, method="map", progressbar=False, maxeval=50)
    assert {"b", "gamma", "gap", "b_tau"} <= set(m.idata.posterior.data_vars)
    assert _potential_at_map(m) == pytest.approx(float(m.idata.log_likelihood["delta"].sum()), rel=1e-8)


def test_bad_input_is_a_clear_error():
    c, _ = simulate_contributions(n_points=4, samples_per_point=4, random_state=0)
    with pytest.raises(ValueError, match="law must be one of"):
        bs.ScalingLawModel(law="three_term")
    with pytest.raises(ValueError, match="at least two different laws"):
        bs.select_law(c, laws=["power"])
    with pytest.raises(ValueError, match="must not contain 'law'"):
        bs.select_law(c, model_kwargs={"law": "power"})
    m = bs.ScalingLawModel()
    m.fit(c, method="map", progressbar=False, maxeval=20)
    with pytest.raises(ValueError, match="law='two_term'"):
        bs.sign_changes(m)
    with pytest.raises(ValueError, match="second_term"):
        simulate_contributions(n_points=4, samples_per_point=4, second_term=(1.0, 0.0))


@pytest.mark.slow
def test_loo_keeps_the_power_law_when_it_holds():
    # Same settings without a second term: the two-term law can only tie, and a tie keeps
    # the simpler law.
    kw = {k: v for k, v in SIGN_CHANGING.items() if k != "second_term"}
    c, _ = simulate_contributions(**kw, random_state=1)
    best, table = bs.select_law(c, method="nuts", nuts_sampler="nutpie", draws=300, tune=400,
                                chains=2, random_seed=0, progressbar=False)
    print(table)
    assert best.law == "power"
    # Leaving out whole stretches of k does not favour the bigger laws either.
    assert bs.laws.compare_laws(best.law_candidates_, level="k_bin").loc["power", "chosen"]


def test_observation_log_likelihood_matches_the_model_per_point(selected):
    # Summed over a point's observations with the sign fixed per draw, the observation-level
    # log-likelihood can only differ from the per-point one (sign marginalized) through the
    # sign: where the posterior is sure of the sign (P(harmful) < 1e-6 or > 1 − 1e-6 in every
    # draw) the two must agree.
    from bayescale.laws import observation_log_likelihood

    _, _, best, _ = selected
    obs = observation_log_likelihood(best)
    per_point = obs.groupby(xr.DataArray(best._state["point"], dims="obs")).sum().rename(group="point")
    ref = best.idata.log_likelihood["delta"]
    ph = best.idata.posterior["p_harmful"]
    sure = ((ph < 1e-6) | (ph > 1 - 1e-6)).all(("chain", "draw")).values
    assert sure.sum() >= 5
    # The model's per-point term lives on Δ / delta_scale (Jacobian −n_obs·log(scale)) and
    # includes the prior probability of the sign, log π or log(1 − π).
    n_obs = np.bincount(best._state["idx"])
    pi = best.idata.posterior["pi"]
    ref = ref - n_obs * np.log(best.delta_scale_) - np.log(xr.where(ph > 0.5, 1 - pi, pi))
    np.testing.assert_allclose(per_point.values[..., sure], ref.values[..., sure], rtol=1e-6, atol=1e-6)


def test_point_level_loo_is_available(selected):
    _, _, best, _ = selected
    table = bs.laws.compare_laws(best.law_candidates_, level="point")
    assert table.attrs["level"] == "point" and table["chosen"].sum() == 1
    with pytest.raises(ValueError, match="level"):
        bs.laws.compare_laws(best.law_candidates_, level="group")


def test_k_bin_loo_groups_and_choice(selected):
    # Each group is one point's observations in one of four log-spaced size bins, and the
    # group log-likelihood is the sum of its observations'. The two-term law must still win
    # when the held-out unit is a stretch of k (the sign change shows across bins).
    from bayescale.laws import _loo_data, k_bin_groups, observation_log_likelihood

    _, _, best, _ = selected
    groups = k_bin_groups(best, 4)
    point, k = np.asarray(best._state["point"]), np.asarray(best._state["k"], float)
    for g in np.unique(groups)[:20]:
        assert np.unique(point[groups == g]).size == 1
    edges = np.geomspace(k.min(), k.max(), 5)
    bins = np.clip(np.digitize(k, edges[1:-1], right=False), 0, 3)
    assert np.array_equal(pd.Series(bins).groupby(groups).nunique().to_numpy(), np.ones(groups.max() + 1))
    ll = _loo_data(best, "k_bin", 4).log_likelihood["delta"]
    obs = observation_log_likelihood(best)
    np.testing.assert_allclose(ll.values[..., 3], obs.values[..., groups == 3].sum(-1))
    table = bs.laws.compare_laws(best.law_candidates_, level="k_bin")
    print(table)
    assert table.attrs["level"] == "k_bin" and table.loc["two_term", "chosen"]
    with pytest.raises(ValueError, match="k_bins"):
        bs.laws.compare_laws(best.law_candidates_, level="k_bin", k_bins=1)


class _Stub:
    """Stands in for a fitted model at level="point", where LOO reads ``idata`` only."""

    def __init__(self, ll):
        import arviz as az

        self.idata = az.from_dict(posterior={"alpha": np.zeros(ll.shape[:2])},
                                  log_likelihood={"delta": ll}, dims={"delta": ["point"]})


def test_a_win_must_hold_in_every_chain():
    # Per-point log-likelihoods constant over draws, so PSIS-LOO gives them back exactly.
    # The candidate is 1 nat better per point in chain 1 and 0.1 worse in chain 0: pooled,
    # the two chains form a mixture that beats the simple model by about 0.49 nats per point
    # (far beyond 2 se), yet one of its chains loses. It must not be chosen, and say why.
    rng = np.random.default_rng(0)
    base = rng.normal(-1.0, 0.3, size=60)
    simple = np.broadcast_to(base, (2, 200, 60)).copy()
    shift = np.where(np.arange(2)[:, None, None] == 0, -0.1, 1.0) + rng.normal(0, 0.05, size=(1, 1, 60))
    split = simple + shift
    with pytest.warns(UserWarning, match="not in every chain"):
        table = bs.laws.compare_laws({"power": _Stub(simple), "two_term": _Stub(split)}, level="point")
    assert table.loc["power", "chosen"] and not table.loc["two_term", "chosen"]
    # The same win in both chains is taken.
    agree = simple + 0.5 + rng.normal(0, 0.05, size=(1, 1, 60))
    table = bs.laws.compare_laws({"power": _Stub(simple), "two_term": _Stub(agree)}, level="point")
    assert table.loc["two_term", "chosen"]
