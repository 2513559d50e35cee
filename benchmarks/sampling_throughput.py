"""Sampling throughput: observations per CPU-second, independent vs shared design.

For each learner, every design is run in the same process, one after the other, with the
same points, k range and number of observations per point, so the ratios compare like with
like on the same machine state. It also reports the share of wall time spent outside learner
fits (and outside fits + scoring) and checks that the designs agree on ψ, twice:

* in the throughput runs, the mean Δ over all observations (k uniform on the range in both
  designs) with a standard error clustered by base set: points measured on one base are
  correlated in the shared design, so with ~20 bases this check is coarse (t with G − 1 df);
* a dedicated check at fixed k per learner: each point's mean Δ from both designs, the shared
  one with batch_size=1 so that points are independent, summed into a χ² over points, plus
  the sum of the per-point z scores / √P (N(0, 1) without bias).

Run:  python benchmarks/sampling_throughput.py            (about 5 minutes on 1 idle core)
      python benchmarks/sampling_throughput.py --quick    (a smoke run, ~1 minute)
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from scipy import stats
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neural_network import MLPClassifier

import bayescale as bs


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{platform.platform()}; {cpu}; {os.cpu_count()} logical cores; "
            f"load average {load:.2f} at start; Python {platform.python_version()}")


def clustered_mean(c: bs.Contributions) -> tuple[float, float]:
    """Mean Δ and its standard error, clustering observations by base set."""
    d = c.data
    n = len(d)
    mean = float(d["delta"].mean())
    if c.metadata["design"] == "independent":
        return mean, float(d["delta"].std(ddof=1) / np.sqrt(n))
    resid = (d["delta"] - mean).groupby(d["base"]).sum()
    g = resid.size
    return mean, float(np.sqrt((resid**2).sum() * g / (g - 1)) / n)


def run(name, estimator, ds, scoring, k_range, n_points, m, variants, seed):
    points = np.arange(n_points)
    rows, ref = [], None
    for label, kwargs in variants:
        c0, t0 = time.process_time(), time.perf_counter()
        c = bs.sample_contributions(
            estimator, ds.X_train, ds.y_train, ds.X_val, ds.y_val, points=points,
            k_range=k_range, samples_per_point=m, scoring=scoring, random_state=seed,
            progress=False, **kwargs,
        )
        cpu, wall = time.process_time() - c0, time.perf_counter() - t0
        t = c.metadata["timing"]
        mean, se = clustered_mean(c)
        row = {
            "learner": name, "data": ds.name, "design": label, "obs": len(c),
            "fits": int(t["n_fits"]), "obs_per_cpu_s": len(c) / cpu, "obs_per_wall_s": len(c) / wall,
            "outside_fits": 1 - t["fit_s"] / wall, "outside_fit_score": 1 - (t["fit_s"] + t["score_s"]) / wall,
            "psi": mean, "se": se, "failed": c.metadata["failures"]["observations_failed"],
        }
        if ref is None:
            ref = row
        row["ratio"] = row["obs_per_cpu_s"] / ref["obs_per_cpu_s"]
        row["z"] = (mean - ref["psi"]) / np.hypot(se, ref["se"]) if row is not ref else 0.0
        g = c.data["base"].nunique() if c.metadata["design"] == "shared" else len(c)
        row["p"] = float(2 * stats.t.sf(abs(row["z"]), df=max(g - 1, 1))) if row is not ref else 1.0
        rows.append(row)
        print(f"  {name:>22} {label:<28} {len(c):5d} obs {cpu:7.1f} CPU-s  ratio {row['ratio']:.2f}", flush=True)
    return rows


def agreement(name, estimator, ds, scoring, k, n_points, m, seed):
    """Per-point ψ_k from both designs at one fixed k; χ² and summed-z tests of equality."""
    kw = dict(points=np.arange(n_points), k_range=(k, k), samples_per_point=m, scoring=scoring,
              progress=False)
    ind = bs.sample_contributions(estimator, ds.X_train, ds.y_train, ds.X_val, ds.y_val,
                                  design="independent", random_state=seed, **kw).summary()
    sh = bs.sample_contributions(estimator, ds.X_train, ds.y_train, ds.X_val, ds.y_val,
                                 design="shared", batch_size=1, random_state=seed + 1, **kw).summary()
    z = (ind["mean"] - sh["mean"]) / np.sqrt(ind["se"] ** 2 + sh["se"] ** 2)
    chi2_p = float(stats.chi2.sf(float((z**2).sum()), df=n_points))
    zsum = float(z.sum() / np.sqrt(n_points))
    spread = float(np.ptp(ind["mean"]) / ind["se"].median())
    return (f"| {name} | {ds.name} | {k} | {n_points} × {m} | {chi2_p:.2f} | {zsum:+.2f} "
            f"| {spread:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer points and observations")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    q = args.quick
    digits = bs.datasets.load_dataset("digits_binary")
    cancer = bs.datasets.load_dataset("breast_cancer")
    diabetes = bs.datasets.load_dataset("diabetes")
    indep = ("independent", {"design": "independent"})
    sh = {"design": "shared", "batch_size": 64}
    plans = [
        ("LogisticRegression", LogisticRegression(), digits, "neg_log_loss", (100, 500),
         32 if q else 64, 3 if q else 8,
         [indep, ("shared, Newton updates (default)", sh),
          ("shared, warm-started sklearn fits", {**sh, "exact_updates": False}),
          ("shared, cold sklearn fits", {**sh, "exact_updates": False, "warm_start": False})]),
        ("Ridge", Ridge(alpha=1.0), diabetes, "neg_mean_squared_error", (20, 200),
         32 if q else 64, 10 if q else 40,
         [indep, ("shared, rank-one updates (default)", sh),
          ("shared, sklearn refits", {**sh, "exact_updates": False})]),
        ("MLP (32,)", MLPClassifier(hidden_layer_sizes=(32,), max_iter=300), cancer, "neg_log_loss",
         (50, 200), 16 if q else 32, 2 if q else 4,
         [indep, ("shared, fresh fits (default)", {"design": "shared", "batch_size": 32})]),
    ]
    print("machine:", machine())
    print("settings: n_jobs=1 (CPU-seconds = this process), one BLAS thread per fit, "
          f"random_state={args.seed}, quick={q}")
    for name, _est, ds, scoring, k_range, n_points, m, _ in plans:
        print(f"  {name}: {ds.name} (train {ds.n_train}, val {len(ds.y_val)}), scoring={scoring}, "
              f"k_range={k_range}, points={n_points}, samples_per_point={m}")
    rows = []
    for name, est, ds, scoring, k_range, n_points, m, variants in plans:
        rows += run(name, est, ds, scoring, k_range, n_points, m, variants, args.seed)

    print()
    print("| learner | data | design | obs | fits | obs / CPU-s | obs / wall-s | × independent "
          "| wall outside fits | outside fits + scoring | mean Δ ± se | z (p) vs independent |")
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['learner']} | {r['data']} | {r['design']} | {r['obs']} | {r['fits']} "
              f"| {r['obs_per_cpu_s']:.1f} | {r['obs_per_wall_s']:.1f} | {r['ratio']:.2f} "
              f"| {100 * r['outside_fits']:.1f}% | {100 * r['outside_fit_score']:.1f}% "
              f"| {r['psi']:.2e} ± {r['se']:.1e} | {r['z']:+.2f} ({r['p']:.2f}) |")
    print("\nψ_k agreement at fixed k (shared design with batch_size=1, default update path):")
    print("| learner | data | k | points × obs | χ² p (per-point) | Σz/√P | spread of ψ across points / se |")
    print("|---|---|---:|---:|---:|---:|---:|")
    checks = [
        ("LogisticRegression", LogisticRegression(), digits, "neg_log_loss", 200, 12 if q else 24, 20 if q else 40),
        ("Ridge", Ridge(alpha=1.0), diabetes, "neg_mean_squared_error", 60, 12 if q else 24, 30 if q else 80),
        ("MLP (32,)", MLPClassifier(hidden_layer_sizes=(32,), max_iter=300), cancer, "neg_log_loss", 100,
         6 if q else 8, 6 if q else 12),
    ]
    for name, est, ds, scoring, k, n_points, m in checks:
        print(agreement(name, est, ds, scoring, k, n_points, m, args.seed + 100), flush=True)
    failed = sum(r["failed"] for r in rows)
    if failed:
        print(f"\n{failed} observations failed (see metadata['failures']).")


if __name__ == "__main__":
    main()
