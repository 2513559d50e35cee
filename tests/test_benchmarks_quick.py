"""Smoke test: ``benchmarks/accuracy.py --quick`` runs end to end and writes its outputs.

The quick profile is tiny (a few breast-cancer points, ADVI), so its numbers mean nothing;
the test checks that every stage runs (truth, training observations, the three baselines,
both Bayesian models, metrics, the regression case, table and figure) and that the outputs
are well formed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "accuracy.py"
ESTIMATORS = {"monte_carlo", "log_regression", "mle", "bayes", "bayes_features", "bayes_studentt", "bayes_curved",
              "bayes_two_term", "bayes_pooled", "bayes_pooled_features", "bayes_pooled_curved", "bayes_pooled_scale",
              "bayes_pooled_heavy", "bayes_pooled_heavy_curved", "bayes_pooled_lognormal",
              "bayes_pooled_features_lognormal", "bayes_pooled_heavy_lognormal",
              "bayes_pooled_lognormal_level_features", "bayes_pooled_lognormal_margin"}


def test_accuracy_quick_runs_end_to_end(tmp_path):
    out, cache = tmp_path / "out", tmp_path / "cache"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out-dir", str(out), "--cache-dir", str(cache)],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "split-half R²" in proc.stdout  # the truth's reliability is printed

    report = json.loads((out / "accuracy_quick.json").read_text())
    (case,) = report["cases"]
    assert len(case["grid"]) >= 6
    results = case["results"]
    assert {r["estimator"] for r in results} == ESTIMATORS
    for r in results:
        assert np.isfinite(r["r2_mean"]) and np.isfinite(r["r2_dv"]) and r["fit_s"] >= 0
        assert -1 <= r["spearman_mean"] <= 1
        if r["estimator"].startswith("bayes"):
            assert 0 <= r["coverage90"] <= 1
        if r["estimator"] == "bayes_two_term":  # LOO choice between the laws is recorded
            assert r["loo_choice"] in ("power", "curved", "two_term") and 0 <= r["flagged_true_changes"] <= r["n_flagged"]
            assert r["loo_choice_k_bin"] in ("power", "curved", "two_term")
        if r["estimator"] == "bayes_curved":
            assert np.isfinite(r["kappa_mu"])
    assert case["sign_changes"]["raw"] >= case["sign_changes"]["significant"] >= 0
    reg = report["regression"]
    assert reg["alpha_mu_q05"] <= reg["alpha_mu_mean"] <= reg["alpha_mu_q95"]

    md = (out / "accuracy.md").read_text()
    assert md.startswith("## Accuracy against the paper's estimators")
    assert "| 8 | MLE |" in md and "| target | measured | met |" in md
    assert (out / "accuracy_r2_quick.png").stat().st_size > 0
    # The cache makes a rerun skip all sampling: the truth and training tables are on disk.
    assert any(cache.rglob("truth_*.parquet")) and any(cache.rglob("train_*.parquet"))

    # A partial rerun: only the MLE is fitted again, every other row is copied from the report.
    out2 = tmp_path / "out2"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out-dir", str(out2), "--cache-dir", str(cache),
         "--estimators", "mle", "--reuse", str(out / "accuracy_quick.json")],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    again = json.loads((out2 / "accuracy_quick.json").read_text())
    assert again["reused"]["estimators"] == [e for e in report_order(results) if e != "mle"]
    old_rows = {r["estimator"]: r for r in results}
    for r in again["cases"][0]["results"]:
        if r["estimator"] == "mle":  # refitted on the same cached table: the same numbers
            assert r["r2_mean"] == pytest.approx(old_rows["mle"]["r2_mean"], rel=1e-12)
        else:
            assert r == old_rows[r["estimator"]]
    assert "are copied from an earlier run" in (out2 / "accuracy.md").read_text()


def report_order(results):
    """The estimators in the order a report lists them."""
    return list(dict.fromkeys(r["estimator"] for r in results))
