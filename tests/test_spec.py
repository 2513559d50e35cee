"""Run specs: schema validation, the shipped specs, and a tiny end-to-end run."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.spec import (
    LEARNERS,
    RunSpec,
    SpecError,
    load_spec,
    make_learner,
    packaged_spec,
    point_features,
    sampling_hash,
)

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "models").glob("*.toml"))

MINIMAL = {"data": {"dataset": "wine"}, "learner": {"name": "logistic_regression"}}


def _with(**sections):
    spec = {k: dict(v) for k, v in MINIMAL.items()}
    for name, content in sections.items():
        spec[name] = content
    return spec


# --------------------------------------------------------------------------- shipped specs
def test_shipped_specs_exist():
    names = {p.stem for p in SHIPPED}
    assert {"demo", "all_options", "digits_logreg", "digits_mlp", "diabetes_ridge"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_specs_validate(path):
    spec = load_spec(path)
    assert spec.name == path.stem
    ds = bs.datasets.load_dataset(spec.data.dataset)
    # A spec that validates but cannot run (k_max >= pool) would only fail minutes in.
    assert spec.sampling.k_range[1] < ds.n_train


def test_packaged_demo_is_models_demo():
    # `bayescale demo` (packaged copy) and `bayescale run models/demo.toml` must be one analysis.
    assert packaged_spec("demo").read_text() == (ROOT / "models" / "demo.toml").read_text()


def test_all_options_spec_sets_every_key():
    """The commented spec must show every option the schema has (except optional ones that
    are commented out there because they have no sensible value for wine)."""
    import tomllib

    raw = tomllib.loads((ROOT / "models" / "all_options.toml").read_text())
    text = (ROOT / "models" / "all_options.toml").read_text()
    for section, info in RunSpec.model_fields.items():
        ann = info.annotation
        if isinstance(ann, type) and issubclass(ann, RunSpec.__base__):
            for key in ann.model_fields:
                assert key in raw.get(section, {}) or f"# {key} =" in text, f"{section}.{key}"
        else:
            assert section in raw, section


# --------------------------------------------------------------------------- validation
def test_unknown_key_names_the_key_and_the_allowed_ones():
    with pytest.raises(SpecError, match=r"unknown key 'sampling\.k_rang'.*allowed:.*k_range"):
        load_spec(_with(sampling={"k_rang": [10, 50]}))


def test_unknown_top_level_section():
    with pytest.raises(SpecError, match=r"unknown key 'sampler'"):
        load_spec(_with(sampler={"draws": 10}))


def test_wrong_type_names_the_key():
    with pytest.raises(SpecError, match=r"'sampling\.samples_per_point'.*'ten'"):
        load_spec(_with(sampling={"samples_per_point": "ten"}))
    with pytest.raises(SpecError, match=r"'inference\.draws'"):
        load_spec(_with(inference={"draws": 1.5}))
    with pytest.raises(SpecError, match=r"'inference\.method'"):
        load_spec(_with(inference={"method": "hmc"}))


def test_union_error_is_reported_once_under_its_key():
    with pytest.raises(SpecError) as err:
        load_spec(_with(sampling={"points": "ten"}))
    msg = str(err.value)
    assert "'sampling.points'" in msg and "constrained-int" not in msg
    assert "\n" not in msg


def test_missing_required_section():
    with pytest.raises(SpecError, match=r"missing key 'learner'"):
        load_spec({"data": {"dataset": "wine"}})


def test_unknown_dataset_and_learner():
    with pytest.raises(SpecError, match=r"'data\.dataset'.*unknown dataset 'wines'"):
        load_spec({"data": {"dataset": "wines"}, "learner": {"name": "ridge"}})
    with pytest.raises(SpecError, match=r"'learner\.name'.*unknown learner 'xgboost'"):
        load_spec(_with(learner={"name": "xgboost"}))


def test_learner_must_fit_the_task_and_its_params():
    with pytest.raises(SpecError, match="does not support the classification dataset"):
        load_spec(_with(learner={"name": "ridge"}))
    with pytest.raises(SpecError, match="learner.params.*Cee"):
        load_spec(_with(learner={"name": "logistic_regression", "params": {"Cee": 1.0}}))


def test_bad_priors_are_named():
    with pytest.raises(SpecError, match=r"model\.priors.*alpha_muu"):
        load_spec(_with(model={"priors": {"alpha_muu": [1.0, 1.0]}}))
    assert load_spec(_with(model={"priors": {"alpha_mu": [1.0, 0.5]}})).model.priors


def test_bad_k_range():
    with pytest.raises(SpecError, match=r"'sampling\.k_range'.*k_min <= k_max"):
        load_spec(_with(sampling={"k_range": [50, 10]}))
    with pytest.raises(SpecError, match=r"'sampling\.k_range'.*too few"):
        load_spec(_with(sampling={"k_range": [50]}))


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(SpecError, match="spec file not found"):
        load_spec(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[data\ndataset = 'wine'\n")
    with pytest.raises(SpecError, match="not valid TOML"):
        load_spec(bad)


def test_name_defaults_to_file_stem(tmp_path):
    p = tmp_path / "my_run.toml"
    p.write_text('[data]\ndataset = "wine"\n[learner]\nname = "logistic_regression"\n')
    assert load_spec(p).name == "my_run"


# --------------------------------------------------------------------------- pieces
def test_make_learner_registry():
    for name, (_, tasks) in LEARNERS.items():
        for task in tasks:
            est = make_learner(name, task)
            assert hasattr(est, "fit"), name
    mlp = make_learner("mlp", "regression", {"hidden_layer_sizes": [8, 4]})
    assert type(mlp).__name__ == "MLPRegressor" and mlp.hidden_layer_sizes == (8, 4)
    with pytest.raises(ValueError, match="does not support regression"):
        make_learner("logistic_regression", "regression")


def test_sampling_hash_tracks_only_the_sampling_part():
    base = load_spec(packaged_spec("demo"))

    def changed(section, **kw):
        part = getattr(base, section).model_copy(update=kw)
        return base.model_copy(update={section: part})

    h = sampling_hash(base, "fp")
    assert sampling_hash(changed("inference", draws=7), "fp") == h
    assert sampling_hash(changed("model", likelihood="studentt"), "fp") == h
    assert sampling_hash(changed("sampling", n_jobs=2), "fp") == h  # same table for any n_jobs
    assert sampling_hash(changed("sampling", samples_per_point=3), "fp") != h
    assert sampling_hash(changed("sampling", k_design="loguniform"), "fp") != h
    assert sampling_hash(changed("learner", params={"C": 0.1}), "fp") != h
    assert sampling_hash(base, "other data") != h


def test_point_features():
    ds = bs.datasets.load_dataset("wine")
    pts = np.array([0, 3, 5])
    assert point_features(ds, pts, "none") is None
    np.testing.assert_array_equal(point_features(ds, pts, "X"), ds.X_train[pts])
    xl = point_features(ds, pts, "X+label")
    # 3 classes -> 2 one-hot columns (the first class is the intercept's)
    assert xl.shape == (3, ds.X_train.shape[1] + 2)
    assert list(xl.index) == [0, 3, 5] and list(xl.columns[-2:]) == ["label=1", "label=2"]
    onehot = xl.to_numpy()[:, -2:]
    expected = np.stack([ds.y_train[pts] == 1, ds.y_train[pts] == 2], axis=1).astype(float)
    np.testing.assert_array_equal(onehot, expected)


def test_diagnostics_on_a_known_posterior():
    import arviz as az

    from bayescale.spec import diagnostics

    rng = np.random.default_rng(0)
    good = az.from_dict(
        posterior={"alpha": rng.normal(size=(4, 500, 3)), "mu": rng.normal(size=(4, 500))},
        sample_stats={"diverging": np.zeros((4, 500), dtype=bool)},
        dims={"alpha": ["point"]},
    )
    d = diagnostics(good)
    assert d["max_rhat"] < 1.02 and d["min_ess_bulk"] > 1000 and d["divergences"] == 0
    # Chains centred at different places: r_hat must flag it.
    shifted = rng.normal(size=(4, 500)) + np.arange(4)[:, None] * 3
    bad = az.from_dict(
        posterior={"mu": shifted},
        sample_stats={"diverging": np.ones((4, 500), dtype=bool)},
    )
    d = diagnostics(bad)
    assert d["max_rhat"] > 1.5 and d["divergences"] == 2000 and d["worst_rhat"] == "mu"


# --------------------------------------------------------------------------- end to end
TINY = {
    "name": "tiny",
    "data": {"dataset": "wine"},
    "learner": {"name": "logistic_regression"},
    "sampling": {"k_range": [12, 40], "samples_per_point": 4, "points": 8, "design": "shared",
                 "k_design": "loguniform"},
    "inference": {"method": "advi", "draws": 200, "seed": 0, "options": {"n": 3000}},
    "valuation": {"top": 3},
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One tiny run shared by the end-to-end tests (ADVI keeps it to seconds after compile)."""
    from bayescale.spec import run_spec

    out = tmp_path_factory.mktemp("run")
    spec_path = out.parent / "tiny.toml"
    spec_path.write_text(_toml(TINY))
    res = run_spec(spec_path, out=out, progress=False, verbose=False)
    return spec_path, res


def _toml(d: dict) -> str:
    """Just enough TOML writing for the test specs (sections of scalars, lists, inline tables)."""

    def val(v):
        if isinstance(v, str):
            return f'"{v}"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        if isinstance(v, dict):  # an inline table
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + " }"
        return repr(v)

    lines = [f"{k} = {val(v)}" for k, v in d.items() if not isinstance(v, dict)]
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{kk} = {val(vv)}" for kk, vv in v.items()]
    return "\n".join(lines) + "\n"


def test_run_writes_every_output(tiny_run):
    spec_path, res = tiny_run
    out = res.out
    for name in ("contributions.parquet", "model.nc", "values.csv", "spec.toml",
                 "spec.resolved.json"):
        assert (out / name).is_file(), name
    for fig in ("scaling_curves", "values", "alpha_hist"):
        assert (out / "figures" / f"{fig}.png").stat().st_size > 1000, fig
    assert (out / "spec.toml").read_text() == spec_path.read_text()
    assert not res.reused_contributions
    assert not (out / ".store").exists()  # the resumable store is cleaned after success

    c = bs.Contributions.read_parquet(out / "contributions.parquet")
    assert c.n_points == 8 and c.k_range[0] >= 12 and c.k_range[1] <= 40
    assert c.metadata["dataset"] == "wine" and c.metadata["spec_sampling_hash"]
    assert c.metadata["k_design"] == "loguniform"

    values = pd.read_csv(out / "values.csv")
    assert len(values) == 8
    assert {"point", "mean", "hdi_low", "hdi_high", "p_harmful"} <= set(values.columns)
    # (The mean of a right-skewed posterior may lie above its 90% HDI, so the table is
    # checked against the saved model instead of against itself.)
    assert (values["hdi_low"] < values["hdi_high"]).all()
    assert values["p_harmful"].between(0, 1).all()
    np.testing.assert_array_equal(np.sort(values["point"]), c.points)

    model = bs.ScalingLawModel.load(out / "model.nc")
    np.testing.assert_array_equal(np.sort(model.points_), c.points)
    again = bs.value(model, weights="distributional").set_index("point").loc[values["point"]]
    np.testing.assert_allclose(values["mean"], again["mean"], rtol=1e-10)
    np.testing.assert_allclose(values["hdi_high"], again["hdi_high"], rtol=1e-10)


def test_rerun_reuses_contributions(tiny_run, monkeypatch):
    from bayescale.spec import run_spec

    spec_path, res = tiny_run
    parquet = res.out / "contributions.parquet"
    before = parquet.read_bytes()

    def must_not_sample(*args, **kwargs):
        raise AssertionError("contributions were measured again")

    # run_spec calls bs.sample_contributions; with the sampling part unchanged it must not.
    monkeypatch.setattr(bs, "sample_contributions", must_not_sample)
    changed = load_spec(spec_path)
    changed = changed.model_copy(
        update={"inference": changed.inference.model_copy(update={"draws": 50})}
    )
    res2 = run_spec(changed, out=res.out, progress=False, verbose=False)
    assert res2.reused_contributions
    assert parquet.read_bytes() == before
    assert res2.model.idata.posterior.sizes["draw"] == 50

    # A changed sampling plan must measure again (and so hit the patched sampler).
    resampled = changed.model_copy(
        update={"sampling": changed.sampling.model_copy(update={"samples_per_point": 3})}
    )
    with pytest.raises(AssertionError, match="measured again"):
        run_spec(resampled, out=res.out, progress=False, verbose=False)


def test_run_into_unwritable_dir_is_a_spec_error(tmp_path):
    from bayescale.spec import run_spec

    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SpecError, match="cannot write to output directory"):
        run_spec(TINY, out=blocker / "sub", progress=False, verbose=False)


def test_law_auto_compares_the_laws(tiny_run):
    # law = "auto" re-uses the stored table, fits the three laws and writes the LOO comparison.
    from bayescale.spec import run_spec

    spec_path, res = tiny_run
    spec = load_spec(spec_path)
    auto = spec.model_copy(update={"model": spec.model.model_copy(update={"law": "auto"})})
    res2 = run_spec(auto, out=res.out, progress=False, verbose=False)
    table = pd.read_csv(res.out / "law_comparison.csv", index_col=0)
    assert set(table.index) == {"power", "curved", "two_term"} and table["chosen"].sum() == 1
    assert res2.model.law == table.index[table["chosen"]][0]
