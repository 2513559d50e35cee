"""Why ScalingLawModel's intervals under-cover on real data: bias or width, and where.

Runs on the tables cached by ``benchmarks/accuracy.py --profile reduced`` (digits_binary,
logistic regression), so it needs that run first. It prints:

1. whether the training table and the truth agree where they overlap (pooled mean Δ of the
   training observations within a factor 1.25 of each grid size against the truth's mean),
   which separates a measurement problem from a model problem;
2. for a default fit at ``--m`` observations per point, and for a fit whose sign prior is
   pinned positive (``pi_intercept`` = (3, 0.1)), the standardized errors
   z = (posterior mean − truth) / sqrt(posterior sd² + truth se²) grouped by the posterior
   P(harmful): their mean (bias), sd (1 if the width is right) and the coverage a noisy truth
   allows (|z| ≤ 1.645).

Example
-------
    python benchmarks/coverage_diagnosis.py --m 20
"""

from __future__ import annotations

import argparse
import os
import platform
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayescale as bs

CASE = "digits_binary_logreg"
GRID = (25, 44, 76, 132, 230, 400)


def load_tables(cache: Path):
    train_files = sorted(cache.glob(f"train_{CASE}_n200_m*_s0.parquet"))
    if not train_files:
        raise SystemExit(f"no cached training table under {cache}; run benchmarks/accuracy.py --profile reduced")
    train = bs.Contributions.read_parquet(train_files[-1])
    means, ses, raw = {}, {}, {}
    for k in GRID:
        rounds = sorted(cache.glob(f"truth_{CASE}_n60_k{k}_r*_m50.parquet"))
        table = pd.concat([bs.Contributions.read_parquet(f).data for f in rounds])
        g = table.groupby("point")["delta"]
        means[k], ses[k], raw[k] = g.mean(), g.std(ddof=1) / np.sqrt(g.size()), table
    return train, pd.DataFrame(means), pd.DataFrame(ses), raw


def measurement_check(train, raw) -> None:
    print("| k | training Δ within ×1.25 (n) | pooled mean | truth pooled mean | difference / se |")
    print("|---|---|---|---|---|")
    data = train.data
    for k in GRID:
        truth = raw[k]
        near = data[data["point"].isin(truth["point"].unique()) & (data["k"] >= k / 1.25) & (data["k"] <= k * 1.25)]
        a, b = near["delta"], truth["delta"]
        se = np.sqrt(a.var() / len(a) + b.var() / len(b))
        print(f"| {k} | {len(a)} | {a.mean():+.2e} | {b.mean():+.2e} | {(a.mean() - b.mean()) / se:+.2f} |")


def error_table(label, model, truth, se) -> None:
    points = truth.index.to_numpy()
    draws = model.predict(list(GRID), points=points)
    mean = draws.mean(("chain", "draw")).values
    sd = draws.std(("chain", "draw")).values
    z = (mean - truth.to_numpy()) / np.sqrt(sd**2 + se.to_numpy() ** 2)
    harm = model.idata.posterior["p_harmful"].sel(point=points).mean(("chain", "draw")).values
    for lo, hi in ((0.0, 0.1), (0.1, 0.9), (0.9, 1.01)):
        sel = (harm >= lo) & (harm < hi)
        if sel.any():
            print(f"| {label} | [{lo:g}, {min(hi, 1):g}] | {int(sel.sum())} | {z[sel].mean():+.2f} | {z[sel].std():.2f} | "
                  f"{(np.abs(z[sel]) <= 1.645).mean():.2f} | {(truth.to_numpy()[sel] > 0).mean():.2f} |")
    print(f"| {label} | per grid size: mean z | " + " / ".join(f"{v:+.2f}" for v in z.mean(axis=0)) + " | | | | |")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=20, help="observations per point in the fit")
    parser.add_argument("--cache", type=Path, default=None, help="the reduced run's cache directory")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent / "cache" / "reduced"
    cache = args.cache or max(root.glob("sampler-*"), key=lambda p: p.stat().st_mtime)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()}; cache {cache}; m = {args.m}; nutpie 2 × 300 after 500")
    train, truth, se, raw = load_tables(cache)
    measurement_check(train, raw)
    print("\n| fit | posterior P(harmful) | points | mean z | sd z | coverage (noisy truth) | share of true ψ > 0 |")
    print("|---|---|---|---|---|---|---|")
    table = train.subset(max_per_point=args.m)
    for label, priors in (("default", None), ("sign pinned positive", {"pi_intercept": (3.0, 0.1)})):
        model = bs.ScalingLawModel(priors=priors)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(table, nuts_sampler="nutpie", draws=300, tune=500, chains=2, random_seed=0, progressbar=False)
        error_table(label, model, truth, se)


if __name__ == "__main__":
    main()
