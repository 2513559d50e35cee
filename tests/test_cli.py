"""The ``bayescale`` command: usage errors, one-line input errors, and the subcommands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import bayescale as bs
from bayescale.cli import build_parser, main


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    """Run the command in a fresh interpreter: checks the real exit status and streams."""
    env = {**os.environ}
    env.pop("BAYESCALE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "bayescale.cli", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=300,
    )


def call(capsys, *args: str) -> subprocess.CompletedProcess:
    """Run main() in-process (no interpreter start-up) and capture like a subprocess."""
    capsys.readouterr()
    rc = main(list(args))
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(args, rc, out, err)


def assert_one_line_error(proc: subprocess.CompletedProcess, pattern: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one clear line, no traceback
    assert lines[0].startswith("bayescale: error: ")
    assert re.search(pattern, lines[0]), lines[0]


# --------------------------------------------------------------------------- usage
def test_version():
    proc = run_cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"bayescale {bs.__version__}"


@pytest.mark.parametrize(
    "argv",
    [[], ["frobnicate"], ["run"], ["sample", "--dataset", "wine"], ["fit"],
     ["sample", "--dataset", "wine", "--learner", "ridge", "--k-range", "10"],
     ["value", "m.nc", "--top", "many"]],
    ids=["none", "unknown-command", "run-no-spec", "sample-no-learner", "fit-no-table",
         "k-range-one-int", "top-not-int"],
)
def test_usage_errors_print_usage_and_fail(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code != 0
    assert "usage: bayescale" in capsys.readouterr().err


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("demo", "run", "sample", "fit", "value"):
        assert cmd in out


def test_parser_defaults():
    args = build_parser().parse_args(["demo"])
    assert args.out == "bayescale-demo"


# --------------------------------------------------------------------------- input errors
def test_missing_spec_file(tmp_path):
    # A real process: the exit status and a stderr free of any traceback.
    proc = run_cli("run", str(tmp_path / "nope.toml"))
    assert_one_line_error(proc, r"spec file not found: .*nope\.toml")


def test_spec_with_unknown_key(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('[data]\ndataset = "wine"\n[learner]\nname = "logistic_regression"\n'
                    "[sampling]\nsamples = 3\n")
    proc = run_cli("run", str(spec))
    assert_one_line_error(proc, r"unknown key 'sampling\.samples'")


def test_spec_with_unknown_dataset_or_learner(tmp_path, capsys):
    spec = tmp_path / "s.toml"
    spec.write_text('[data]\ndataset = "mnist"\n[learner]\nname = "logistic_regression"\n')
    assert_one_line_error(call(capsys, "run", str(spec)), r"unknown dataset 'mnist'")
    spec.write_text('[data]\ndataset = "wine"\n[learner]\nname = "xgboost"\n')
    assert_one_line_error(call(capsys, "run", str(spec)), r"unknown learner 'xgboost'")


def test_unwritable_output_dir(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    # A path below a regular file can never be created, even as root.
    demo = str(Path(__file__).resolve().parents[1] / "models" / "demo.toml")
    proc = call(capsys, "run", demo, "--out", str(blocker / "out"))
    assert_one_line_error(proc, r"cannot write to output directory")
    proc = call(capsys, "demo", "--out", str(blocker / "out"))
    assert_one_line_error(proc, r"cannot write to output directory")


def test_sample_input_errors(tmp_path, capsys):
    assert_one_line_error(
        call(capsys, "sample", "--dataset", "mnist", "--learner", "ridge"),
        r"unknown dataset 'mnist'",
    )
    out = str(tmp_path / "c.parquet")
    assert_one_line_error(
        call(capsys, "sample", "--dataset", "wine", "--learner", "xgboost", "--out", out),
        r"unknown learner 'xgboost'",
    )
    assert_one_line_error(
        call(capsys, "sample", "--dataset", "wine", "--learner", "ridge", "--out", out),
        r"'ridge' does not support classification",
    )
    assert_one_line_error(
        call(capsys, "sample", "--dataset", "wine", "--learner", "logistic_regression",
             "--param", "Cee=1", "--out", out),
        r"unexpected keyword argument 'Cee'",
    )
    assert not Path(out).exists()


def test_fit_and_value_missing_files(tmp_path, capsys):
    assert_one_line_error(call(capsys, "fit", str(tmp_path / "c.parquet")),
                          "contributions file not found")
    assert_one_line_error(call(capsys, "value", str(tmp_path / "m.nc")), "model file not found")


# --------------------------------------------------------------------------- the pipeline
@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """sample -> fit -> value through main(), in-process so PyTensor compiles once."""
    d = tmp_path_factory.mktemp("cli")
    table, model, values = d / "c.parquet", d / "m.nc", d / "v.csv"
    rc = main(["sample", "--dataset", "wine", "--learner", "logistic_regression",
               "--param", "C=0.5", "--k-range", "12", "40", "-m", "4", "--points", "6",
               "--out", str(table), "--no-progress"])
    assert rc == 0
    rc = main(["fit", str(table), "--method", "advi", "--draws", "100", "--out", str(model),
               "--no-progress"])
    assert rc == 0
    rc = main(["value", str(model), "--out", str(values), "--top", "2"])
    assert rc == 0
    return table, model, values


def test_sample_writes_the_table(pipeline):
    table, _, _ = pipeline
    c = bs.Contributions.read_parquet(table)
    assert c.n_points == 6
    assert 12 <= c.k_range[0] and c.k_range[1] <= 40
    assert c.metadata["dataset"] == "wine"


def test_fit_and_value_write_outputs(pipeline, capsys):
    table, model, values = pipeline
    m = bs.ScalingLawModel.load(model)
    assert len(m.points_) == 6
    v = pd.read_csv(values)
    assert len(v) == 6 and {"mean", "hdi_low", "hdi_high", "p_harmful"} <= set(v.columns)


def test_fit_passes_the_noise_and_level_options(pipeline, tmp_path):
    table, _, _ = pipeline
    out = tmp_path / "pooled.nc"
    rc = main(["fit", str(table), "--method", "map", "--noise", "pooled", "--level", "signed",
               "--out", str(out), "--no-progress"])
    assert rc == 0
    m = bs.ScalingLawModel.load(out)
    assert (m.noise, m.level) == ("pooled", "signed")
    assert "level" in m.idata.posterior and "log_s_tau" not in m.idata.posterior
    scale = tmp_path / "pooled_scale.nc"
    rc = main(["fit", str(table), "--method", "map", "--noise", "pooled_scale", "--out", str(scale), "--no-progress"])
    assert rc == 0
    post = bs.ScalingLawModel.load(scale).idata.posterior
    assert "log_s_tau" not in post and "beta_tau" in post
    heavy = tmp_path / "heavy.nc"
    rc = main(["fit", str(table), "--method", "map", "--noise", "pooled", "--level", "signed",
               "--level-tails", "heavy", "--out", str(heavy), "--no-progress"])
    assert rc == 0
    m = bs.ScalingLawModel.load(heavy)
    assert m.level_tails == "heavy" and {"level_w", "level_log_ratio"} <= set(m.idata.posterior.data_vars)
    lognormal = tmp_path / "lognormal.nc"
    rc = main(["fit", str(table), "--method", "map", "--alpha-population", "lognormal", "--out", str(lognormal),
               "--no-progress"])
    assert rc == 0
    m = bs.ScalingLawModel.load(lognormal)
    assert m.alpha_population == "lognormal" and "log_alpha_mu" in m.idata.posterior
    # Features (the table records its dataset) on the level only: the pooled noise stays one law.
    level_only = tmp_path / "level_only.nc"
    rc = main(["fit", str(table), "--method", "map", "--noise", "pooled", "--level", "signed", "--features", "X",
               "--feature-blocks", "level", "--out", str(level_only), "--no-progress"])
    assert rc == 0
    m = bs.ScalingLawModel.load(level_only)
    assert m.feature_blocks == ("level",)
    assert "level_B" in m.idata.posterior and not {"alpha_B", "log_s_B", "beta_B"} & set(m.idata.posterior.data_vars)


def test_value_with_beta_weights(pipeline, tmp_path, capsys):
    _, model, _ = pipeline
    out = tmp_path / "beta.csv"
    from bayescale.valuation import ExtrapolationWarning

    # Beta(4, 1) over n = 80 weighs sizes far outside the measured [12, 40]: it must say so.
    with pytest.warns(ExtrapolationWarning):
        rc = main(["value", str(model), "--weights", "beta:4,1", "--n", "80", "--out", str(out)])
    assert rc == 0
    assert len(pd.read_csv(out)) == 6
    assert main(["value", str(model), "--weights", "beta:4", "--out", str(out)]) == 2
    assert "beta:A,B" in capsys.readouterr().err


def test_report_warns_when_nuts_has_not_converged(tmp_path, capsys):
    import time
    from types import SimpleNamespace

    from bayescale.cli import _report_run
    from bayescale.spec import load_spec, packaged_spec, value_table
    from bayescale.valuation import _fake_idata

    values = value_table(_fake_idata(n_points=6, random_state=0))
    res = SimpleNamespace(
        diagnostics={"max_rhat": 1.2, "min_ess_bulk": 30.0, "divergences": 5,
                     "worst_rhat": "alpha_tau", "worst_ess": "c"},
        values=values, spec=load_spec(packaged_spec("demo")), out=tmp_path,
        files={"values": tmp_path / "values.csv"}, timings={"inference": 1.0},
    )
    _report_run(res, time.perf_counter())
    out, err = capsys.readouterr()
    assert "max r_hat 1.200 (alpha_tau)" in out and "divergences 5" in out
    assert "most valuable points" in out and "least valuable points" in out
    assert "has not converged" in err
    res.diagnostics.update(max_rhat=1.004, divergences=0)
    _report_run(res, time.perf_counter())
    assert "has not converged" not in capsys.readouterr().err
