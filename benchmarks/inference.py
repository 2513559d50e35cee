"""Inference benchmarks of ScalingLawModel (issue 3): NUTS backends, ADVI, big N, SBC.

Parts (``--part``, repeatable; default: all):

* ``geometry``: centred vs non-centred per block (nutpie), divergences and ESS;
* ``nuts``: N = 1000 points × m = 50, NUTS with pymc and nutpie: wall time, min bulk ESS of
  the population parameters, min ESS/s, max r_hat (all parameters), divergences;
* ``advi``: ADVI on the same data: wall time and RMSE of its per-point posterior means
  (α, log|c|, ψ at k_ref) against NUTS (nutpie) means;
* ``bigN``: N = 10,000 × m = 50 ADVI wall time and peak memory (run it alone: the peak is the
  process's);
* ``signed``: ``noise="pooled", level="signed"`` on simulated tables with right-skewed noise
  (200 points × 10, data seeds 0-2): coverage of ψ_k, the largest r_hat, the smallest bulk
  ESS of α, of the signed level and of the population, divergences (``--alpha-population
  lognormal`` for a log-normal α);
* ``tau``: does the pooled, signed fit recover the level's population sd? A population like
  the bulk of digits' points on the internal scale (level ~ Normal(0.09, 0.08), α ~
  Normal(1.4, 0.3), 55 points × 20, k log-uniform on [25, 400], noise sd e^(−1.2) at k_ref
  decaying with β = 2.8), with Normal or right-skewed noise, and one noise law for all
  points or a per-point one (log s sd 0.8, β sd 1.3, as measured on digits' truth); fitted
  with ``noise="pooled"`` and ``"pooled_scale"``, data seeds 0-2;
* ``laws``: the power law against the sign-changing two-term law on simulated points with
  and without sign changes: PSIS-LOO choice, AUC of the sign-change flags, R² of ψ_k;
* ``sbc``: simulation-based calibration, ≥ 100 small datasets drawn from a fixed prior, one
  compiled nutpie model reused with swapped data; rank histograms saved to
  docs/figures/sbc_ranks.png and a chi-square uniformity test per population parameter.

``--quick`` shrinks every size so the script runs in a minute or two (smoke test).

Examples
--------
    python benchmarks/inference.py --part nuts --part advi
    python benchmarks/inference.py --part sbc --sbc-datasets 100
    python benchmarks/inference.py --part signed
    python benchmarks/inference.py --part tau
    python benchmarks/inference.py --quick
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
import warnings
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
from scipy import stats

import bayescale as bs
from bayescale.model import _pad  # the model's dense (points × m) layout, to swap data in
from bayescale.simulate import simulate_contributions, simulate_from_priors

ROOT = Path(__file__).resolve().parents[1]


def machine() -> str:
    load = os.getloadavg()
    return (f"{platform.node()} | {platform.processor() or platform.machine()} | {os.cpu_count()} cores | "
            f"load avg {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} | python {platform.python_version()} | "
            f"bayescale {bs.__version__}")


def cpu_seconds() -> float:
    """CPU time of this process (all threads: nutpie) plus finished children (PyMC chains)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def nuts_row(label, m, idata, wall, cpu=float("nan")):
    pop = m.population_vars_
    # Unrounded: az.summary's default two decimals turn an r_hat of 1.014 into "1.01".
    s_pop = az.summary(idata, var_names=pop, kind="diagnostics", round_to="none")
    s_all = az.summary(idata, var_names=pop + ["ell", "alpha", "log_s", "beta"], kind="diagnostics",
                       round_to="none")
    div = int(idata.sample_stats["diverging"].sum())
    ess = float(s_pop["ess_bulk"].min())
    row = {"run": label, "wall_s": wall, "min_ess_bulk_pop": ess, "min_ess_per_s": ess / wall,
           "min_ess_bulk_all": float(s_all["ess_bulk"].min()), "max_rhat_all": float(s_all["r_hat"].max()),
           "divergences": div}
    worst = s_pop["ess_bulk"].idxmin()
    print(f"{label:38s} wall {wall:7.1f}s, CPU {cpu:7.1f}s | min bulk ESS pop ({worst}) {ess:6.0f} ({ess / wall:5.2f}/s) | "
          f"min bulk ESS all {row['min_ess_bulk_all']:6.0f} | max r_hat {row['max_rhat_all']:.4f} | "
          f"divergences {div}", flush=True)
    return row


def part_geometry(args):
    n, m_obs = (60, 10) if args.quick else (200, 20)
    c, _ = simulate_contributions(n_points=n, samples_per_point=m_obs, random_state=0)
    print(f"\n## geometry: N={n}, m={m_obs}, nutpie, chains=4, draws=tune={args.draws}")
    rows = []
    for code in ("0000", "0010", "0011", "1100", "1010", "1011"):
        centered = dict(zip(("ell", "alpha", "log_s", "beta"), (ch == "1" for ch in code), strict=True))
        model = bs.ScalingLawModel(centered=centered)
        t = time.perf_counter()
        idata = model.fit(c, nuts_sampler="nutpie", draws=args.draws, tune=args.draws, chains=4,
                          random_seed=1, progressbar=False)
        label = "centred: " + ",".join(b for b, v in centered.items() if v) if code != "0000" else "all non-centred"
        rows.append(nuts_row(label, model, idata, time.perf_counter() - t))
    return rows


def part_nuts(args, cache):
    n, m_obs = (100, 20) if args.quick else (args.n, args.m)
    c, truth = simulate_contributions(n_points=n, samples_per_point=m_obs, random_state=0)
    tune = args.draws if args.tune is None else args.tune
    print(f"\n## nuts: N={n}, m={m_obs}, chains=4, draws={args.draws}, tune={tune}, seed {args.seed}, target_accept "
          f"{args.target_accept} (fit's default 0.9), wall time includes compilation")
    rows = []
    for sampler in args.samplers:
        for accept in args.target_accept:
            model = bs.ScalingLawModel()
            t, cpu = time.perf_counter(), cpu_seconds()
            idata = model.fit(c, nuts_sampler=sampler, draws=args.draws, tune=tune, chains=4,
                              random_seed=args.seed, progressbar=False, target_accept=accept)
            wall = time.perf_counter() - t
            rows.append(nuts_row(f"NUTS {sampler}, target_accept {accept}", model, idata, wall, cpu_seconds() - cpu))
            cache["nuts"] = (c, model)
    return rows


def _point_summaries(post):
    mean = post.mean(("chain", "draw"))
    return {"alpha": mean["alpha"].values, "log|c|": np.log(np.abs(post["c"])).mean(("chain", "draw")).values,
            "ell": mean["ell"].values}


def part_advi(args, cache):
    if "nuts" not in cache:
        args_ref = argparse.Namespace(**{**vars(args), "samplers": ["nutpie"]})
        part_nuts(args_ref, cache)
    c, ref_model = cache["nuts"]
    ref = _point_summaries(ref_model.idata.posterior)
    print(f"\n## advi: same data ({c.n_points} points, {len(c)} observations); RMSE of per-point "
          "posterior means against NUTS")
    rows = []
    for method in ("advi",):
        model = bs.ScalingLawModel()
        t = time.perf_counter()
        model.fit(c, method=method, draws=1000, random_seed=1, progressbar=False, n=args.advi_iters)
        wall = time.perf_counter() - t
        got = _point_summaries(model.idata.posterior)
        rmse = {k: float(np.sqrt(np.mean((got[k] - ref[k]) ** 2))) for k in ref}
        sd_ref = {k: float(np.std(ref[k])) for k in ref}
        print(f"{method:14s} wall {wall:6.1f}s, {len(model.advi_loss_)} iterations | " + " | ".join(
            f"RMSE {k} {rmse[k]:.3f} (spread across points {sd_ref[k]:.3f})" for k in ref), flush=True)
        rows.append({"method": method, "wall_s": wall, **{f"rmse_{k}": v for k, v in rmse.items()}})
    return rows


def part_bign(args):
    n, m_obs = (2000, 20) if args.quick else (args.big_n, args.m)
    c, truth = simulate_contributions(n_points=n, samples_per_point=m_obs, random_state=0)
    print(f"\n## bigN: N={n}, m={m_obs} ({len(c)} observations), ADVI, 1000 draws from the approximation")
    model = bs.ScalingLawModel()
    t = time.perf_counter()
    model.fit(c, method="advi", draws=1000, random_seed=1, progressbar=False, n=args.advi_iters)
    wall = time.perf_counter() - t
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    corr = np.corrcoef(model.idata.posterior["alpha"].mean(("chain", "draw")), truth["alpha"])[0, 1]
    print(f"ADVI wall {wall:.1f}s ({len(model.advi_loss_)} iterations), peak RSS {peak_gb:.2f} GB, "
          f"corr(α mean, true α) {corr:.3f}", flush=True)
    return [{"wall_s": wall, "peak_gb": peak_gb, "corr_alpha": corr}]


SBC_PRIORS = {
    "ell_mu": (-1.0, 0.5), "ell_tau": 0.5, "alpha_mu": (1.0, 0.3), "alpha_tau": 0.3,
    "log_s_mu": (0.0, 0.3), "log_s_tau": 0.3, "beta_mu": (2.0, 0.3), "beta_tau": 0.3,
    "pi_intercept": (1.5, 0.5),
}


def part_sbc(args):
    import nutpie

    n_data = 20 if args.quick else args.sbc_datasets
    n, m_obs, k_range, k_ref = 20, 10, (100, 1000), float(np.sqrt(100 * 1000))
    thin = 10
    draws = 1000
    print(f"\n## sbc: {n_data} datasets of N={n} points × m={m_obs} drawn from a fixed prior; "
          f"nutpie 2 chains × {draws // 2} draws, ranks on every {thin}th draw (L={draws // thin})")
    c0, _ = simulate_from_priors(SBC_PRIORS, n, m_obs, k_range, k_ref=k_ref, random_state=10_000)
    model = bs.ScalingLawModel(priors=SBC_PRIORS, k_ref=k_ref, delta_scale=1.0)
    pm_model = model.build_model(c0)
    compiled = nutpie.compile_pymc_model(pm_model)
    names = [f"{b}_{p}" for b in ("ell", "alpha", "log_s", "beta") for p in ("mu", "tau")] + ["pi_intercept"]
    ranks = {k: [] for k in names}
    divergent = 0
    t = time.perf_counter()
    for i in range(n_data):
        c, truth = simulate_from_priors(SBC_PRIORS, n, m_obs, k_range, k_ref=k_ref, random_state=i)
        # Same layout as c0 (N × m, rows sorted by point): only y and u change.
        df = c.data.sort_values("point", kind="stable")
        y = _pad(model._state, df["delta"].to_numpy())
        u = _pad(model._state, np.log(df["k"].to_numpy() / k_ref))
        fit = nutpie.sample(
            compiled.with_data(y_scaled=y, u=u),
            draws=draws // 2, tune=500, chains=2, seed=i, progress_bar=False, target_accept=0.9,
        )
        divergent += int(fit.sample_stats["diverging"].sum())
        for name in names:
            d = fit.posterior[name].values.reshape(-1)[::thin]
            ranks[name].append(int((d < truth[name]).sum()))
    wall = time.perf_counter() - t
    L = draws // thin
    bins = 10
    rows = []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 3, figsize=(10, 8), sharey=True)
    for ax, name in zip(axes.ravel(), names, strict=True):
        r = np.asarray(ranks[name])
        counts, edges = np.histogram(r, bins=bins, range=(0, L + 1))
        p = stats.chisquare(counts).pvalue
        rows.append({"param": name, "chi2_p": float(p)})
        ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="C0", edgecolor="white")
        expected = n_data / bins
        band = stats.binom.interval(0.99, n_data, 1 / bins)
        ax.axhspan(band[0], band[1], color="grey", alpha=0.25)
        ax.axhline(expected, color="k", lw=1)
        ax.set_title(f"{name} (χ² p={p:.2f})", fontsize=10)
    fig.suptitle(f"SBC rank histograms: {n_data} prior datasets, L={L}; band: 99% binomial interval")
    fig.tight_layout()
    out = ROOT / "docs" / "figures" / "sbc_ranks.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    # Bonferroni over the 9 parameters: reject uniformity at family-wise 5% if min p < 0.05/9.
    min_p = min(r["chi2_p"] for r in rows)
    print("\n".join(f"{r['param']:14s} chi-square p = {r['chi2_p']:.3f}" for r in rows))
    print(f"SBC wall {wall:.0f}s, divergences in all fits: {divergent}; min p {min_p:.3f} "
          f"({'uniform' if min_p >= 0.05 / len(rows) else 'NOT uniform'} at family-wise 5%, Bonferroni); "
          f"figure {out.relative_to(ROOT)}", flush=True)
    return rows


def part_laws(args):
    """Power, curved and two-term laws on simulated points: sign changes, bends, neither."""
    from sklearn.metrics import roc_auc_score

    n, m_obs = (30, 15) if args.quick else (80, 30)
    draws, tune = (100, 200) if args.quick else (300, 400)
    print(f"\n## laws: N={n} × m={m_obs}, σ ≈ e^−2 (so the curve's shape is visible), nutpie "
          f"2 chains × {draws} draws after {tune}; sign-changing: second term N(0, 1.5)·first at "
          "k_mid, decaying one power of k faster; curved: κ ~ N(1, 0.2) about k_mid")
    print("| data | truly sign-changing points | LOO choice | elpd curved − power | elpd two-term − power | "
          "AUC of P(sign change) | R² of ψ_k chosen / power | κ_μ of the curved fit (90%) | "
          "two-term max r_hat / min ESS (gap, b_tau, alpha_mu) | wall s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for label, extra in (("sign-changing", {"second_term": (1.5, 1.0)}), ("curved", {"curvature": (1.0, 0.2)}),
                         ("power law", {})):
        c, truth = simulate_contributions(n_points=n, samples_per_point=m_obs, log_sigma=(-2.0, 0.3),
                                          random_state=1, **extra)
        ks = np.geomspace(c.data["k"].min(), c.data["k"].max(), 32)
        t = bs.true_psi(truth, ks).to_numpy()
        changes = (t.min(axis=1) < 0) & (t.max(axis=1) > 0)
        start = time.perf_counter()
        best, table = bs.select_law(c, method="nuts", nuts_sampler="nutpie", draws=draws, tune=tune,
                                    chains=2, random_seed=0, progressbar=False)
        wall = time.perf_counter() - start
        fits = best.law_candidates_
        flags = bs.sign_changes(fits["two_term"])["p_sign_change"].to_numpy()
        auc = roc_auc_score(changes, flags) if 0 < changes.sum() < n else float("nan")

        def r2(model, ks=ks, t=t):
            pred = model.predict(ks).mean(("chain", "draw")).values
            return 1 - np.sum((pred - t) ** 2) / np.sum((t - t.mean(axis=0)) ** 2)

        diag = az.summary(fits["two_term"].idata, var_names=["gap", "b_tau", "alpha_mu"], kind="diagnostics")
        elpd = table["elpd_loo"]
        kappa = np.quantile(fits["curved"].idata.posterior["kappa_mu"].values, [0.05, 0.5, 0.95])
        print(f"| {label} | {int(changes.sum())} of {n} | {best.law} | {elpd['curved'] - elpd['power']:+.1f} | "
              f"{elpd['two_term'] - elpd['power']:+.1f} | {auc:.3f} | {r2(best):.3f} / {r2(fits['power']):.3f} | "
              f"{kappa[1]:.2f} [{kappa[0]:.2f}, {kappa[2]:.2f}] | "
              f"{diag['r_hat'].max():.2f} / {diag['ess_bulk'].min():.0f} | {wall:.0f} |", flush=True)
        rows.append({"data": label, "choice": best.law, "auc": auc,
                     "elpd_diff": float(elpd["two_term"] - elpd["power"])})
    return rows


def skewed_table(seed: int, n_points: int = 200, m: int = 10):
    """The skewed simulated table of the fast coverage test, with its truth."""
    return simulate_contributions(n_points=n_points, samples_per_point=m, k_range=(25, 400), alpha=(1.5, 0.4),
                                  log_sigma=(0.5, 0.3), beta=(2.5, 0.4), p_harmful=0.25, k_design="loguniform",
                                  likelihood="lognormal", random_state=seed)


def part_signed(args):
    """The signed level (integrated out) with pooled noise on right-skewed simulated tables."""
    n, m_obs, seeds = (60, 8, (0,)) if args.quick else (200, 10, (0, 1, 2))
    draws = 200 if args.quick else 1000
    ks = np.array([25.0, 60.0, 150.0, 400.0])
    print(f"\n## signed: ScalingLawModel(noise='pooled', level='signed', "
          f"alpha_population={args.alpha_population!r}), N={n} × m={m_obs}, "
          f"log-normal noise (skew 0.8), nutpie 2 chains × {draws} draws after {draws}, seed 0")
    print("| data seed | cov90 of ψ_k | max r_hat (everything) | min bulk ESS α / level | population max r_hat / "
          "min ESS | divergences | wall s |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for seed in seeds:
        c, truth = skewed_table(seed, n, m_obs)
        model = bs.ScalingLawModel(noise="pooled", level="signed", alpha_population=args.alpha_population)
        start = time.perf_counter()
        model.fit(c, nuts_sampler="nutpie", draws=draws, tune=draws, chains=2, random_seed=0, progressbar=False)
        wall = time.perf_counter() - start
        psi = model.predict(ks)
        lo = psi.quantile(0.05, ("chain", "draw")).values
        hi = psi.quantile(0.95, ("chain", "draw")).values
        true = bs.true_psi(truth, ks).to_numpy()
        post = model.idata.posterior
        ess = az.ess(post[["alpha", "level"]])
        pop = post[model.population_vars_]
        row = {"seed": seed, "coverage": float(np.mean((lo <= true) & (true <= hi))),
               "rhat": float(az.rhat(post).to_array().max()), "ess_alpha": float(ess["alpha"].min()),
               "ess_level": float(ess["level"].min()), "pop_rhat": float(az.rhat(pop).to_array().max()),
               "pop_ess": float(az.ess(pop).to_array().min()), "divergences": model.diagnostics_["divergences"]}
        print(f"| {seed} | {row['coverage']:.3f} | {row['rhat']:.3f} | {row['ess_alpha']:.0f} / {row['ess_level']:.0f} | "
              f"{row['pop_rhat']:.3f} / {row['pop_ess']:.0f} | {row['divergences']} | {wall:.0f} |", flush=True)
        rows.append(row)
    return rows


def bulk_table(seed: int, noise: str, n: int = 55, m: int = 20):
    """A table like the bulk of digits' points (see ``--part tau``) and its true levels and α."""
    rng = np.random.default_rng(seed)
    k_ref = float(np.sqrt(25 * 400))
    v, alpha = rng.normal(0.09, 0.08, n), rng.normal(1.4, 0.3, n)
    log_s, beta = np.full(n, -1.2), np.full(n, 2.8)
    if "per-point" in noise:  # the same mean noise variance, spread between points
        log_s = log_s + rng.normal(0.0, 0.8, n) - 0.5 * 0.8**2
        beta = beta + rng.normal(0.0, 1.3, n)
    point = np.repeat(np.arange(n), m)
    k = np.exp(rng.uniform(np.log(25), np.log(400), point.size)).round()
    u = np.log(k / k_ref)
    if "skewed" in noise:  # standardized log-normal, skewness 3.7
        e = (rng.lognormal(0.0, 0.8, point.size) - np.exp(0.32)) / np.sqrt((np.exp(0.64) - 1) * np.exp(0.64))
    else:
        e = rng.standard_normal(point.size)
    delta = v[point] * np.exp(-alpha[point] * u) + np.exp(log_s[point] - 0.5 * beta[point] * u) * e
    table = bs.Contributions(pd.DataFrame({"point": point, "k": k.astype(int), "delta": delta}))
    return table, v, alpha, k_ref


def part_tau(args):
    """The level's population sd under the real noise's features, pooled vs pooled_scale noise."""
    seeds = (0,) if args.quick else (0, 1, 2)
    draws = 200 if args.quick else 500
    ks = np.array([25.0, 100.0, 400.0])
    print(f"\n## tau: ScalingLawModel(level='signed'), 55 points × 20, nutpie 2 chains × {draws} after "
          f"{int(draws * 1.4)}, seed 0; level_tau with its 94% HDI")
    print("| noise in the data | noise option | data seed | true sd of the level | level_tau [94% HDI] | "
          "alpha_tau (true 0.3) | population max r_hat | cov90 of ψ_k |")
    print("|---|---|---|---:|---|---:|---:|---:|")
    rows = []
    for noise in ("Normal, one law", "skewed, one law", "Normal, per-point", "skewed, per-point"):
        for option in ("pooled", "pooled_scale"):
            for seed in seeds:
                table, v, alpha, k_ref = bulk_table(seed, noise)
                model = bs.ScalingLawModel(noise=option, level="signed", k_ref=k_ref, delta_scale=1.0)
                with warnings.catch_warnings():  # the table shows r_hat itself
                    warnings.simplefilter("ignore")
                    model.fit(table, nuts_sampler="nutpie", draws=draws, tune=int(draws * 1.4), chains=2,
                              random_seed=0, progressbar=False)
                post = model.idata.posterior
                hdi = az.hdi(post["level_tau"], hdi_prob=0.94)["level_tau"].values
                psi = model.predict(ks)
                lo = psi.quantile(0.05, ("chain", "draw")).values
                hi = psi.quantile(0.95, ("chain", "draw")).values
                true = v[:, None] * (ks / k_ref) ** -alpha[:, None]
                row = {"noise": noise, "option": option, "seed": seed, "true_sd": float(v.std()),
                       "level_tau": float(post["level_tau"].mean()), "alpha_tau": float(post["alpha_tau"].mean()),
                       "rhat": float(az.rhat(post[model.population_vars_]).to_array().max()),
                       "coverage": float(np.mean((lo <= true) & (true <= hi)))}
                print(f"| {noise} | {option} | {seed} | {row['true_sd']:.3f} | {row['level_tau']:.3f} "
                      f"[{hdi[0]:.3f}, {hdi[1]:.3f}] | {row['alpha_tau']:.2f} | {row['rhat']:.3f} | "
                      f"{row['coverage']:.2f} |", flush=True)
                rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", action="append",
                        choices=["geometry", "nuts", "advi", "bigN", "sbc", "laws", "signed", "tau"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--m", type=int, default=50)
    parser.add_argument("--big-n", type=int, default=10_000)
    parser.add_argument("--draws", type=int, default=1000, help="NUTS draws and tuning steps per chain")
    parser.add_argument("--tune", type=int, default=None, help="NUTS tuning steps for the nuts part (default: --draws)")
    parser.add_argument("--seed", type=int, default=1, help="random_seed of the nuts part's fits")
    parser.add_argument("--samplers", nargs="+", default=["pymc", "nutpie"])
    parser.add_argument("--target-accept", nargs="+", type=float, default=[0.9],
                        help="NUTS target acceptance rate(s) for the nuts part (fit's default 0.9)")
    parser.add_argument("--advi-iters", type=int, default=30000, help="maximum ADVI iterations")
    parser.add_argument("--sbc-datasets", type=int, default=100)
    parser.add_argument("--alpha-population", choices=["normal", "lognormal"], default="normal",
                        help="the signed part's population of α (ScalingLawModel's alpha_population)")
    args = parser.parse_args(argv)
    if args.quick:
        args.draws = min(args.draws, 300)
    parts = args.part or ["geometry", "nuts", "advi", "bigN", "sbc", "laws", "signed", "tau"]
    print(f"machine: {machine()}")
    print(f"settings: {vars(args)}")
    cache: dict = {}
    for part in parts:
        if part == "geometry":
            part_geometry(args)
        elif part == "nuts":
            part_nuts(args, cache)
        elif part == "advi":
            part_advi(args, cache)
        elif part == "bigN":
            part_bign(args)
        elif part == "sbc":
            part_sbc(args)
        elif part == "laws":
            part_laws(args)
        elif part == "signed":
            part_signed(args)
        elif part == "tau":
            part_tau(args)
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
