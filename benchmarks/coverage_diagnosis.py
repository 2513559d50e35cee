"""Why ScalingLawModel's intervals under-cover on real data: bias or width, and where.

Runs on the tables cached by ``benchmarks/accuracy.py --profile reduced`` (digits_binary with
logistic regression, or ``--case breast_cancer_mlp``), so it needs that run first. It prints:

1. whether the training table and the truth agree where they overlap (pooled mean Δ of the
   training observations within a factor 1.25 of each grid size against the truth's mean),
   which separates a measurement problem from a model problem;
2. for a default fit at ``--m`` observations per point, and for a fit whose sign prior is
   pinned positive (``pi_intercept`` = (3, 0.1)), the standardized errors
   z = (posterior mean − truth) / sqrt(posterior sd² + truth se²) grouped by the posterior
   P(harmful): their mean (bias), sd (1 if the width is right) and the coverage a noisy truth
   allows (|z| ≤ 1.645).

``--part shape`` describes the truth itself: the local exponent of the median |ψ_k| and of
the median noise sd between grid sizes, the signal-to-noise ratio of one observation, how
often a point's sign at the smallest size agrees with its sign at each size, and the shape of
one point's Δ at one size (skewness, excess kurtosis, how far the median lies below the mean).

``--part noise`` compares the noise and level options of ScalingLawModel (per-point or pooled
noise, log or signed level; see "Pooled noise and a signed level" in docs/benchmarks.md) at
m = 10, 20 and 50 with the accuracy benchmark's fit (nutpie 2 × 1000 after 1500, seed 0):
coverage of the 90% intervals overall and by the truth's sign, how often the truth lies above
the interval, mean z at the ends of the grid, R² per size and the population's max r̂.

``--part laws`` fits the power, curved and two-term laws on the training table at m = 10, 20
and 50 and on a table with the truth's design (10 draws per point at each grid size, a
log-spaced design), and prints per fit: the population α (and κ), the mean P(harmful), mean z
and coverage per grid size, R² per grid size and, for the power law, the AUC of P(harmful)
against the truth's sign at the smallest and the largest size (which end decides the sign).

``--part tails`` compares the pooled, signed fit with one Normal level population against
``level_tails="heavy"`` (a two-scale mixture) at m = 10, 20 and 50: R² per size, coverage
overall and by the truth's sign at the middle grid size (helpful / near 0 / harmful), the
median width of the heavy fit's intervals relative to the Normal fit's, and the fitted
population scales. It then fits the Normal population at m = 20 on the truth points alone,
with and without the points whose true level at k_ref is far below the bulk, and compares
the fitted level_tau with the true sd of the level (the truth interpolated to k_ref); on the
bulk alone it also fits the curved law and ``noise="pooled_scale"``.

``--part noise_level`` asks whether a point's noise goes with its level: per grid size, the
Spearman correlation between each truth point's |mean Δ| and the sd of its Δ (all points, and
without the 5 largest |mean|), and the spread of those sds; then, for the pooled, signed fit
with a log-normal α at ``--m``, the model's one noise sd at each grid size against the
points' own (10% / median / 90%, and the share of points whose noise is below the model's).

Example
-------
    python benchmarks/coverage_diagnosis.py --m 20
    python benchmarks/coverage_diagnosis.py --part shape --part laws
    python benchmarks/coverage_diagnosis.py --part noise --case breast_cancer_mlp
    python benchmarks/coverage_diagnosis.py --part tails
    python benchmarks/coverage_diagnosis.py --part noise_level --case breast_cancer_mlp
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
from scipy import stats

import bayescale as bs

# The reduced profile's cases: cache slug -> (pool size, truth points, truth grid).
CASES = {
    "digits_binary_logreg": (200, 60, (25, 44, 76, 132, 230, 400)),
    "breast_cancer_mlp": (120, 30, (20, 32, 50, 80, 126, 200)),
}
CASE = "digits_binary_logreg"
GRID = CASES[CASE][2]


def load_tables(cache: Path):
    n_pool, n_truth, _ = CASES[CASE]
    # Names as benchmarks/accuracy.py writes them: case, learner hash, then (training tables)
    # the k design and batch size, the pool size, m and the seed. The log-uniform design in
    # batches is the one the reduced profile uses since session 4.
    train_files = sorted(cache.glob(f"train_{CASE}_*_loguniform_b*_n{n_pool}_m*_s0.parquet"))
    if not train_files:
        raise SystemExit(f"no cached training table under {cache}; run benchmarks/accuracy.py --profile reduced")
    train = bs.Contributions.read_parquet(train_files[-1])
    means, ses, raw = {}, {}, {}
    for k in GRID:
        rounds = sorted(cache.glob(f"truth_{CASE}_*_n{n_truth}_k{k}_r*_m50.parquet"))
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


def shape_table(truth, se, raw) -> None:
    ks = np.array(GRID, dtype=float)
    med = truth.median().to_numpy()
    sd = np.array([raw[k].groupby("point")["delta"].std().median() for k in GRID])
    snr = [float((raw[k].groupby("point")["delta"].mean() / raw[k].groupby("point")["delta"].std()).median())
           for k in GRID]
    slope = lambda v: -np.diff(np.log(v)) / np.diff(np.log(ks))  # noqa: E731
    print("| sizes | local exponent of median ψ | local exponent of median noise sd |")
    print("|---|---|---|")
    for (a, b), e_psi, e_sd in zip(zip(GRID[:-1], GRID[1:], strict=True), slope(med), slope(sd), strict=True):
        print(f"| {a}-{b} | {e_psi:.2f} | {e_sd:.2f} |")
    T = truth.to_numpy()
    print("\n| k | median ψ | median mean/sd of one Δ | share ψ > 0 | share > 2 se | share < −2 se | "
          f"same sign as at k = {GRID[0]} |")
    print("|---|---|---|---|---|---|---|")
    for j, k in enumerate(GRID):
        z = T[:, j] / se.to_numpy()[:, j]
        print(f"| {k} | {med[j]:.2e} | {snr[j]:.2f} | {(T[:, j] > 0).mean():.2f} | {(z > 2).mean():.2f} | "
              f"{(z < -2).mean():.2f} | {(np.sign(T[:, j]) == np.sign(T[:, 0])).mean():.2f} |")
    # The shape of one point's Δ at one size: a Normal likelihood assumes it is symmetric.
    print("\n| k | median skewness of Δ (ψ > 0 / ψ < 0) | median excess kurtosis | "
          "median (mean − median) / sd | share with mean > 0 > median |")
    print("|---|---|---|---|---|")
    for k in GRID:
        g = raw[k].groupby("point")["delta"]
        skew, kurt = g.apply(stats.skew), g.apply(stats.kurtosis)
        mean, median, sd = g.mean(), g.median(), g.std()
        print(f"| {k} | {skew.median():.2f} ({skew[mean > 0].median():.2f} / {skew[mean < 0].median():.2f}) | "
              f"{kurt.median():.1f} | {((mean - median) / sd).median():.2f} | "
              f"{((mean > 0) & (median < 0)).mean():.2f} |")
    # Where the between-point signal lives: in the body of each point's Δ (its median) plus
    # an offset that grows with its spread, or in how often each point hits the tail.
    print("\n| k | R² across points of the mean on the median | on median and sd | corr(mean, sd) | "
          "between-point sd of log sd |")
    print("|---|---|---|---|---|")
    for k in GRID:
        g = raw[k].groupby("point")["delta"]
        mean, median, sd = g.mean().to_numpy(), g.median().to_numpy(), g.std().to_numpy()
        print(f"| {k} | {_r2_of_fit(mean, median):.3f} | {_r2_of_fit(mean, median, sd):.3f} | {np.corrcoef(mean, sd)[0, 1]:+.2f} | "
              f"{np.log(sd).std():.2f} |")


def laws_table(train, truth, se, raw) -> None:
    from sklearn.metrics import r2_score, roc_auc_score

    points = truth.index.to_numpy()
    T, S = truth.to_numpy(), se.to_numpy()
    designs = {}
    for m in (10, 20, 50):
        designs[f"m = {m}"] = table = train.subset(max_per_point=m)
        k = table.data["k"]
        print(f"m = {m}: {table.data['base'].nunique()} base sets, {k.nunique()} distinct k, "
              f"smallest {k.min()}; share of observations with k < {GRID[2]}: {(k < GRID[2]).mean():.2f}")
    designs["truth design"] = bs.Contributions(pd.concat([raw[k].groupby("point").head(10) for k in GRID]))
    print("| table | law | α_μ | κ_μ | mean P(harmful) | mean z per size | coverage per size (all) | "
          f"R² per size | AUC of P(harmful) vs ψ < 0 at k = {GRID[0]} / {GRID[-1]} |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, table in designs.items():
        for law in ("power", "curved", "two_term"):
            model = bs.ScalingLawModel(law=law)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(table, nuts_sampler="nutpie", draws=300, tune=500, chains=2, random_seed=0,
                          progressbar=False)
            post = model.idata.posterior
            draws = model.predict(list(GRID), points=points)
            mean, sd = draws.mean(("chain", "draw")).values, draws.std(("chain", "draw")).values
            z = (mean - T) / np.sqrt(sd**2 + S**2)
            cover = np.abs(z) <= 1.645
            harm = post["p_harmful"].sel(point=points).mean(("chain", "draw")).values
            kappa = (f"{float(post['kappa_mu'].mean()):.2f} ± {float(post['kappa_mu'].std()):.2f}"
                     if "kappa_mu" in post else "–")
            auc = (f"{roc_auc_score(T[:, 0] < 0, harm):.2f} / {roc_auc_score(T[:, -1] < 0, harm):.2f}"
                   if law == "power" else "–")
            join = lambda v: " / ".join(f"{x:+.2f}" if x < 0 else f"{x:.2f}" for x in v)  # noqa: E731
            print(f"| {label} | {law} | {float(post['alpha_mu'].mean()):.2f} | {kappa} | "
                  f"{float(post['p_harmful'].mean()):.2f} | {join(z.mean(axis=0))} | "
                  f"{join(cover.mean(axis=0))} ({cover.mean():.2f}) | "
                  f"{join([r2_score(T[:, j], mean[:, j]) for j in range(len(GRID))])} | {auc} |", flush=True)


def _r2_of_fit(y, *columns) -> float:
    """R² of the least-squares fit of y on an intercept and ``columns``."""
    A = np.column_stack([np.ones_like(y), *columns])
    resid = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
    return 1.0 - resid.var() / y.var()


#: The noise and level options compared by ``--part noise`` (ScalingLawModel keyword arguments).
NOISE_VARIANTS = {
    "default (log level, per-point noise)": {},
    "log level, pooled noise": {"noise": "pooled"},
    "signed level, per-point noise": {"level": "signed"},
    "signed level, pooled noise": {"level": "signed", "noise": "pooled"},
    "signed level, pooled noise, curved": {"level": "signed", "noise": "pooled", "law": "curved"},
    "signed level, pooled noise scale, per-point decay": {"level": "signed", "noise": "pooled_scale"},
}


def noise_table(train, truth, se, ms) -> None:
    """Coverage and accuracy of each noise / level option, with the accuracy benchmark's fit."""
    from sklearn.metrics import r2_score

    points = truth.index.to_numpy()
    T, S = truth.to_numpy(), se.to_numpy()
    print(f"| m | model | cov90 | allowing for the truth's noise | coverage where ψ > 0 / ψ < 0 | "
          f"truth above the interval | mean z at k = {GRID[0]} / {GRID[-1]} | R² mean | "
          f"R² at k = {GRID[0]} / {GRID[-1]} | max r̂ (population) | fit s |")
    print("|---|---|---:|---:|---|---:|---|---:|---|---:|---:|")
    for m in ms:
        table = train.subset(max_per_point=m)
        for label, options in NOISE_VARIANTS.items():
            model = bs.ScalingLawModel(**options)
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.fit(table, nuts_sampler="nutpie", draws=1000, tune=1500, chains=2, random_seed=0,
                          progressbar=False)
            wall = time.perf_counter() - t0
            draws = model.predict(list(GRID), points=points)
            mean, sd = draws.mean(("chain", "draw")).values, draws.std(("chain", "draw")).values
            lo = draws.quantile(0.05, ("chain", "draw")).values
            hi = draws.quantile(0.95, ("chain", "draw")).values
            inside = (lo <= T) & (T <= hi)
            z = (mean - T) / np.sqrt(sd**2 + S**2)
            r2 = [r2_score(T[:, j], mean[:, j]) for j in range(len(GRID))]
            rhat = float(az.rhat(model.idata.posterior[model.population_vars_]).to_array().max())
            print(f"| {m} | {label} | {inside.mean():.2f} | {(np.abs(z) <= 1.645).mean():.2f} | "
                  f"{inside[T > 0].mean():.2f} / {inside[T < 0].mean():.2f} | {(T > hi).mean():.2f} | "
                  f"{z[:, 0].mean():+.2f} / {z[:, -1].mean():+.2f} | {np.mean(r2):.3f} | "
                  f"{r2[0]:.2f} / {r2[-1]:.2f} | {rhat:.3f} | {wall:.0f} |", flush=True)


def _fit_signed(table, noise: str = "pooled", **options):
    """A signed-level fit with the accuracy benchmark's NUTS settings (nutpie 2 × 1000 after 1500)."""
    model = bs.ScalingLawModel(noise=noise, level="signed", **options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(table, nuts_sampler="nutpie", draws=1000, tune=1500, chains=2, random_seed=0, progressbar=False)
    return model


def _interval(model, points):
    draws = model.predict(list(GRID), points=points)
    return (draws.mean(("chain", "draw")).values, draws.quantile(0.05, ("chain", "draw")).values,
            draws.quantile(0.95, ("chain", "draw")).values)


def tails_table(train, truth, ms) -> None:
    """One Normal level population against a two-scale one (level_tails="heavy")."""
    from sklearn.metrics import r2_score

    points = truth.index.to_numpy()
    T = truth.to_numpy()
    mid = T[:, len(GRID) // 2]
    groups = {"helpful": mid > 0.001, "near 0": np.abs(mid) <= 0.001, "harmful": mid < -0.001}
    # The truth at k_ref on the internal scale of an m = 20 fit, and the points far below the
    # rest (> 5 robust sds under the median level). Used below to ask whether the Normal
    # population's scale is right for the bulk alone.
    table20 = train.subset(max_per_point=20)
    d_scale = bs.priors.delta_scale(table20.data["delta"].to_numpy())
    k_ref = bs.priors.reference_k(table20.data["k"].to_numpy(dtype=float))
    grid = np.log(np.asarray(GRID, dtype=float))
    j = int(np.searchsorted(grid, np.log(k_ref)))
    t = (np.log(k_ref) - grid[j - 1]) / (grid[j] - grid[j - 1])
    v = ((1 - t) * T[:, j - 1] + t * T[:, j]) / d_scale
    far = v < np.median(v) - 5 * 1.4826 * np.median(np.abs(v - np.median(v)))  # > 5 robust sds below
    print(f"\ngroups by the truth at k = {GRID[len(GRID) // 2]}: " + ", ".join(f"{g} {int(sel.sum())}" for g, sel in groups.items()))
    print("| m | level population | R² per size | cov90 | helpful / near 0 / harmful | "
          "width vs Normal (median) | level_tau | w / e^r | mean P(wide part): far out / others |")
    print("|---|---|---|---:|---|---:|---:|---|---|")
    for m in ms:
        table = train.subset(max_per_point=m)
        widths = {}
        for tails in ("normal", "heavy"):
            model = _fit_signed(table, level_tails=tails)
            mean, lo, hi = _interval(model, points)
            inside = (lo <= T) & (T <= hi)
            widths[tails] = hi - lo
            post = model.idata.posterior
            mix, flag = "–", "–"
            if tails == "heavy":
                mix = f"{float(post['level_w'].mean()):.3f} / {float(np.exp(post['level_log_ratio']).mean()):.1f}"
                p_wide = post["p_level_wide"].mean(("chain", "draw")).sel(point=points).values
                flag = f"{p_wide[far].mean():.2f} / {p_wide[~far].mean():.2f}"
            ratio = np.median(widths[tails] / widths["normal"])
            print(f"| {m} | {tails} | {' '.join(f'{r2_score(T[:, j], mean[:, j]):.3f}' for j in range(len(GRID)))} | "
                  f"{inside.mean():.2f} | {' / '.join(f'{inside[g].mean():.2f}' for g in groups.values())} | "
                  f"{ratio:.2f} | {float(post['level_tau'].mean()):.3f} | {mix} | {flag} |", flush=True)
    print(f"\nm = 20, Normal population, fitted on the truth points only (internal scale; "
          f"k_ref {k_ref:.0f}; far out: > 5 robust sds below the median level, {int(far.sum())} points)")
    print("| points | noise, law | n | true level mean / sd | fitted level_mu / level_tau (94% HDI) | alpha_tau | cov90 |")
    print("|---|---|---:|---|---|---:|---:|")
    fits = [("all truth points", np.ones_like(far), "pooled", "power")]
    fits += [("without the far-out ones", ~far, noise, law) for noise in ("pooled", "pooled_scale")
             for law in ("power", "curved")]
    for label, keep, noise, law in fits:
        sub = bs.Contributions(table20.data[table20.data["point"].isin(points[keep])])
        model = _fit_signed(sub, noise=noise, law=law, delta_scale=d_scale, k_ref=k_ref)
        _, lo, hi = _interval(model, points[keep])
        post = model.idata.posterior
        hdi = az.hdi(post["level_tau"], hdi_prob=0.94)["level_tau"].values
        print(f"| {label} | {noise}, {law} | {int(keep.sum())} | {v[keep].mean():.3f} / {v[keep].std():.3f} | "
              f"{float(post['level_mu'].mean()):.3f} / {float(post['level_tau'].mean()):.3f} "
              f"[{hdi[0]:.3f}, {hdi[1]:.3f}] | {float(post['alpha_tau'].mean()):.2f} | "
              f"{((lo <= T[keep]) & (T[keep] <= hi)).mean():.2f} |", flush=True)


def noise_level_table(train, raw, m_obs: int) -> None:
    """Does the noise go with the level, and what does one pooled noise law make of it?"""
    print("\n| k | Spearman(|mean Δ|, sd Δ) | without the 5 largest |mean| | sd Δ: max / median |")
    print("|---|---|---|---|")
    sds = {}
    for k in GRID:
        g = raw[k].groupby("point")["delta"]
        mean, sds[k] = g.mean().abs(), g.std()
        bulk = mean.rank(ascending=False) > 5
        print(f"| {k} | {stats.spearmanr(mean, sds[k])[0]:+.2f} | {stats.spearmanr(mean[bulk], sds[k][bulk])[0]:+.2f} "
              f"| {sds[k].max() / sds[k].median():.1f} |")
    model = _fit_signed(train.subset(max_per_point=m_obs), alpha_population="lognormal")
    post = model.idata.posterior
    # Pooled noise: every point has the same σ and β, so any one point's draws give them.
    sigma, beta = (float(post[v].isel(point=0).mean()) for v in ("sigma", "beta"))
    print(f"\npooled, signed fit with log-normal α at m = {m_obs}: σ {sigma:.3g}, β {beta:.2f} "
          f"(max r̂ {model.diagnostics_['max_rhat']:.3f})")
    print("\n| k | model sd | points' sd: 10% / median / 90% | share of points below the model |")
    print("|---|---|---|---|")
    for k in GRID:
        model_sd = sigma * k ** (-beta / 2)
        sd = sds[k]
        print(f"| {k} | {model_sd:.4f} | {sd.quantile(0.1):.4f} / {sd.median():.4f} / {sd.quantile(0.9):.4f} "
              f"| {(sd < model_sd).mean():.2f} |")


def main(argv=None) -> None:
    global CASE, GRID  # the table helpers read the chosen case's grid
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--m", type=int, default=20, help="observations per point in the fit")
    parser.add_argument("--cache", type=Path, default=None, help="the reduced run's cache directory")
    parser.add_argument("--case", choices=sorted(CASES), default="digits_binary_logreg")
    parser.add_argument("--part", action="append", choices=["errors", "shape", "laws", "noise", "tails", "noise_level"],
                        help="what to print (repeatable; default: errors)")
    args = parser.parse_args(argv)
    CASE, GRID = args.case, CASES[args.case][2]
    root = Path(__file__).resolve().parent / "cache" / "reduced"
    cache = args.cache or max(root.glob("sampler-*"), key=lambda p: p.stat().st_mtime)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
          f"Python {platform.python_version()}; cache {cache}; case {CASE}; errors and laws: m = {args.m}, "
          "nutpie 2 × 300 after 500; noise: nutpie 2 × 1000 after 1500")
    train, truth, se, raw = load_tables(cache)
    parts = args.part or ["errors"]
    if "shape" in parts:
        shape_table(truth, se, raw)
    if "laws" in parts:
        laws_table(train, truth, se, raw)
    if "noise" in parts:
        noise_table(train, truth, se, (10, 20, 50))
    if "tails" in parts:
        tails_table(train, truth, (10, 20, 50))
    if "noise_level" in parts:
        noise_level_table(train, raw, args.m)
    if "errors" not in parts:
        return
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
