"""Checks shared by the tests of each non-default law (two-term, curved)."""

from __future__ import annotations

import numpy as np
import pandas as pd

import bayescale as bs


def assert_valuation_follows_predict(model, ks) -> None:
    """value_at and value (with weights on ``ks``) must agree with ψ_k from ``predict``."""
    ks = np.asarray(ks, dtype=float)
    direct = model.predict(ks).mean(("chain", "draw")).to_pandas()
    at = bs.value_at(model, ks).pivot(index="point", columns="k", values="mean")
    np.testing.assert_allclose(at.to_numpy(), direct.to_numpy(), rtol=1e-10)
    w = pd.Series([0.25, 0.75], index=pd.Index(ks.astype(int), name="k"))
    v = bs.value(model, weights=w).set_index("point")["mean"]
    np.testing.assert_allclose(v.to_numpy(), direct.to_numpy() @ w.to_numpy(), rtol=1e-8)


def assert_save_load_round_trip(model, path, ks) -> None:
    """A loaded model has the same law, predicts identically and can draw new points."""
    loaded = bs.ScalingLawModel.load(model.save(path))
    assert loaded.law == model.law
    np.testing.assert_array_equal(loaded.predict(ks).values, model.predict(ks).values)
    new = loaded.predict_new(3, ks, random_seed=0)
    assert new.dims == ("chain", "draw", "point", "k") and np.isfinite(new.values).all()


def assert_branch_sums_match_scipy(law: str, extra_block: tuple[str, float], means, gap=None) -> None:
    """The model's numpy per-point log-likelihood (sign marginalized) against scipy.

    A small ragged table with counts; per-point parameters drawn around typical values plus
    ``extra_block`` = (name, offset) for the law's own parameter. ``means(theta, i, k, k_ref, d)``
    returns the mean of Δ under the + and the − sign on the paper's scale.
    """
    from scipy import stats

    from bayescale import model as model_mod

    rng = np.random.default_rng(0)
    rows = [(p, int(rng.integers(10, 200)), rng.normal(0.01, 0.05), int(rng.integers(1, 4)))
            for p, m in zip([2, 4, 9], [3, 6, 1], strict=True) for _ in range(m)]
    c = bs.Contributions(pd.DataFrame(rows, columns=["point", "k", "delta", "count"]))
    s = bs.ScalingLawModel(law=law)._prepare(c)
    names, offsets = ("ell", "alpha", "log_s", "beta", extra_block[0]), (-1, 1, 0, 2, extra_block[1])
    theta = {b: rng.normal(0, 0.5, 3) + off for b, off in zip(names, offsets, strict=True)}
    pos, neg = model_mod._branch_sums_np(s, {b: v[None] for b, v in theta.items()}, None, gap)
    pi = np.array([0.8, 0.3, 0.6])
    ours = np.logaddexp(np.log(pi) + pos[0], np.log1p(-pi) + neg[0])
    k_ref, d = s["k_ref"], s["delta_scale"]
    for i, point in enumerate(s["points"]):
        sel = s["point"] == point
        y, k, count = s["delta"][sel], s["k"][sel], s["count"][sel]
        plus, minus = means(theta, i, k, k_ref, d)
        sd = np.exp(theta["log_s"][i]) * d * (k / k_ref) ** (-theta["beta"][i] / 2) / np.sqrt(count)
        ref = np.logaddexp(np.log(pi[i]) + stats.norm.logpdf(y, plus, sd).sum(),
                           np.log1p(-pi[i]) + stats.norm.logpdf(y, minus, sd).sum())
        # Ours lives on the scaled Δ: the Jacobian of y = Δ/scale is −n_obs·log(scale).
        assert abs(ours[i] - sel.sum() * np.log(d) - ref) <= 1e-9 * max(1.0, abs(ref))
