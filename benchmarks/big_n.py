"""Big-N inference for ScalingLawModel (issue 7 item 4): time, peak memory and accuracy.

Parts (``--part``, repeatable; default all):

* ``advi``: simulated tables (``bs.simulate_contributions``) of N = 10,000 points × m = 50 and
  N = 50,000 × m = 20 fitted with full-batch ADVI, in float64 and in float32
  (``PYTENSOR_FLAGS=floatX=float32``). Reports build+compile, optimisation and post-processing
  (sampling from the approximation + derived quantities) wall times, peak RSS, the estimate of
  :func:`bayescale._memory.estimate_fit_memory` next to the measured increase, the ELBO's
  relative change over the last 10% of the iterations, and the RMSE of the posterior-mean α
  and log|c| against the truth (with the RMSE of the population mean, i.e. the truth's sd, as
  the no-information reference).
* ``nuts``: N = 1000 × m = 20, NUTS with ``nuts_sampler`` pymc, nutpie and numpyro (2 chains):
  wall time (compile included), max r_hat and min bulk ESS over the free per-point and
  population parameters, divergences and min ESS per second, with ratios to pymc.

Every configuration runs in its own subprocess, so the peak RSS (``ru_maxrss`` of the worker
and of its own children: PyMC's chain processes) belongs to that run alone.

ADVI settings: ``ScalingLawModel.fit``'s default optimiser (PyMC's ``adagrad_window`` at
learning rate 0.001) had not converged after 10,000 iterations on 2000 × 50 (the loss still
fell ~3% per 1000 iterations, RMSE of log|c| 1.3); at learning rate 0.01 the loss flattens
within ~3000 iterations. The benchmark therefore passes
``obj_optimizer=pm.adagrad_window(learning_rate=...)`` (``--learning-rate``, default 0.01) and a
fixed number of iterations (``--advi-iters``), replacing the fit's default stopping callback with
a recorder so that every run does the same number of iterations.

float32 caveat: with ``floatX=float32`` the data and free variables are float32, but two float64
constants in the model graph upcast the log density to float64 (reported as ``log p`` dtype in
the table); see docs/benchmarks.md, "Big-N inference".

Examples
--------
    python benchmarks/big_n.py                  # everything (~30 min on 2 busy cores)
    python benchmarks/big_n.py --part nuts
    python benchmarks/big_n.py --quick          # tiny sizes, a smoke test (~3 min)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
GB = 2**30


# ============================================================================ worker side
def _rss_now() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _peak_rss() -> int:
    """Peak RSS in bytes of this process or of any of its finished children (chain processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, kids) * 1024  # Linux reports kB


def _rmse(a, b) -> float:
    return float(np.sqrt(np.mean((np.asarray(a) - np.asarray(b)) ** 2)))


def _accuracy(model, truth) -> dict:
    post = model.idata.posterior
    alpha = post["alpha"].mean(("chain", "draw")).values
    log_c = np.log(np.abs(post["c"])).mean(("chain", "draw")).values
    true_log_c = np.log(np.abs(truth["c"].to_numpy()))
    # log|ψ| at the reference size k_ref, where the data pin the law down; log|c| is its
    # extrapolation to k = 1, so its error is mostly α's error times log k_ref.
    log_kref = np.log(model.k_ref_)
    return {
        "rmse_alpha": _rmse(alpha, truth["alpha"]),
        "rmse_log_c": _rmse(log_c, true_log_c),
        "rmse_log_psi_kref": _rmse(log_c - alpha * log_kref, true_log_c - truth["alpha"].to_numpy() * log_kref),
        # Predicting every point by the population mean: what the data must beat.
        "sd_alpha": float(np.std(truth["alpha"])),
        "sd_log_c": float(np.std(true_log_c)),
    }


def _memory_estimate(model, method: str, draws: int, chains: int) -> int:
    from bayescale._memory import estimate_fit_memory

    s = model._state  # the prepared table: the same keys fit uses
    n_features = 0 if s["X"] is None else s["X"].shape[1]
    return estimate_fit_memory(len(s["points"]), s["m_max"], len(s["y"]), dense=s["dense"],
                               method=method, draws=draws, chains=chains, n_features=n_features)


def worker_advi(cfg: dict) -> dict:
    import pymc as pm
    import pytensor

    import bayescale as bs

    c, truth = bs.simulate_contributions(n_points=cfg["n"], samples_per_point=cfg["m"], random_state=0)
    base = _rss_now()
    model = bs.ScalingLawModel()
    marks: dict = {}

    def record(approx, losses, i):
        # The first call comes right after the first optimisation step: everything before it
        # is model building and compilation.
        marks.setdefault("first_step", time.perf_counter())

    t0 = time.perf_counter()
    if cfg["iters"]:
        model.fit(c, method="advi", draws=cfg["draws"], n=cfg["iters"], random_seed=1, progressbar=False,
                  obj_optimizer=pm.adagrad_window(learning_rate=cfg["learning_rate"]), callbacks=[record])
    else:  # what a user gets: fit's own optimiser and stopping rule
        model.fit(c, method="advi", draws=cfg["draws"], random_seed=1, progressbar=False)
    total = time.perf_counter() - t0
    hist = np.asarray(model.advi_loss_)
    # Build + compile = fit's start → the first optimisation step (the callback's first call);
    # run_worker splits the rest with the stage timers of _install_phase_hooks.
    first = marks.get("first_step", np.nan)  # none with fit's own callbacks: not split
    steps = len(hist)
    tail = max(steps // 10, 1)
    # Medians over windows: the loss has rare spikes (an MC draw that lands far out in the
    # tails of q) that dominate a window's mean without saying anything about convergence.
    prev, last = np.median(hist[-2 * tail:-tail]), np.median(hist[-tail:])
    rel_change = float((prev - last) / abs(last)) if steps >= 2 * tail else float("nan")
    out = {
        "n": cfg["n"], "m": cfg["m"], "obs": len(c), "floatX": pytensor.config.floatX,
        "data_dtype": str(model.model_["y_scaled"].dtype), "logp_dtype": str(model.model_.logp().dtype),
        "iters": steps, "draws": cfg["draws"], "wall_total_s": total,
        "compile_s": first - t0, "loss_final": float(last), "elbo_rel_change_last10pct": rel_change,
        "loss_median_at": {str(i): float(np.median(hist[max(i - tail, 0):i])) for i in range(tail, steps + 1, tail)},
        "loss_mean_last10pct": float(hist[-tail:].mean()),
        "peak_rss": _peak_rss(), "rss_before_fit": base,
        "estimate": _memory_estimate(model, "advi", cfg["draws"], 1),
        "finite": bool(np.isfinite(hist).all()),
    }
    out.update(_accuracy(model, truth))
    return out


def worker_nuts(cfg: dict) -> dict:
    import arviz as az

    import bayescale as bs

    c, truth = bs.simulate_contributions(n_points=cfg["n"], samples_per_point=cfg["m"], random_state=0)
    base = _rss_now()
    model = bs.ScalingLawModel()
    t0 = time.perf_counter()
    if cfg["sampler"] == "advi":  # the same data through ADVI, for accuracy and time
        import pymc as pm

        model.fit(c, method="advi", draws=cfg["draws"] * cfg["chains"], n=cfg["iters"], random_seed=1,
                  progressbar=False, obj_optimizer=pm.adagrad_window(learning_rate=cfg["learning_rate"]))
    else:
        kwargs = {"cores": cfg["chains"]} if cfg["sampler"] == "pymc" else {}
        model.fit(c, method="nuts", nuts_sampler=cfg["sampler"], draws=cfg["draws"], tune=cfg["tune"],
                  chains=cfg["chains"], random_seed=1, progressbar=False, **kwargs)
    wall = time.perf_counter() - t0
    idata = model.idata
    post = idata.posterior
    max_rhat = min_ess = float("nan")
    div = -1
    if cfg["sampler"] != "advi":
        # Free parameters only: the derived c carries a sign drawn per draw, whose r_hat means nothing.
        names = [v for v in model.population_vars_ if post[v].dtype.kind == "f"]
        names += [v for v in ("ell", "alpha", "log_s", "beta") if v in post]
        rhat = az.rhat(post[names])
        ess = az.ess(post[names], method="bulk")
        max_rhat = float(np.nanmax([float(rhat[v].max()) for v in names]))
        min_ess = float(np.nanmin([float(ess[v].min()) for v in names]))
        div = int(idata.sample_stats["diverging"].sum())
    out = {
        "sampler": cfg["sampler"], "iters": cfg.get("iters"), "n": cfg["n"], "m": cfg["m"], "chains": cfg["chains"],
        "draws": cfg["draws"], "tune": cfg["tune"], "wall_s": wall, "max_rhat": max_rhat,
        "min_ess_bulk": min_ess, "ess_per_s": min_ess / wall, "divergences": div,
        "peak_rss": _peak_rss(), "rss_before_fit": base,
        "estimate": _memory_estimate(model, "advi" if cfg["sampler"] == "advi" else "nuts",
                                     cfg["draws"] * (cfg["chains"] if cfg["sampler"] == "advi" else 1),
                                     cfg["chains"]),
    }
    out.update(_accuracy(model, truth))
    return out


def _install_phase_hooks(phases: dict) -> None:
    """Time fit's stages by wrapping what it calls (benchmark instrumentation only)."""
    import pymc as pm

    import bayescale.model as bm

    def wrap(owner, name, label):
        inner = getattr(owner, name, None)
        if inner is None:  # renamed upstream: skip that stage rather than fail the benchmark
            return

        def timed(*a, **k):
            t = time.perf_counter()
            try:
                return inner(*a, **k)
            finally:
                phases[label] = phases.get(label, 0.0) + time.perf_counter() - t

        setattr(owner, name, timed)

    wrap(pm, "fit", "advi_s")  # compile + optimisation
    wrap(bm, "_derive", "derive_s")


def run_worker(cfg: dict) -> dict:
    phases: dict = {}
    _install_phase_hooks(phases)
    out = worker_advi(cfg) if cfg["kind"] == "advi" else worker_nuts(cfg)
    out.update(phases)
    if "advi_s" in out and "compile_s" in out:
        out["optimise_s"] = out["advi_s"] - out["compile_s"]
        out["postprocess_s"] = out["wall_total_s"] - out["advi_s"]
    return out


# ============================================================================ driver side
def spawn(cfg: dict, env_extra: dict | None = None, timeout: float = 3600) -> dict:
    env = dict(os.environ)
    for key, value in (env_extra or {}).items():
        env[key] = f"{env[key]},{value}" if key == "PYTENSOR_FLAGS" and env.get(key) else value
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, "--worker", json.dumps(cfg)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        return {**cfg, "error": " | ".join(err[-3:]) if err else f"exit code {proc.returncode}",
                "process_s": time.perf_counter() - t}
    res = json.loads(lines[-1][len("RESULT "):])
    res["process_s"] = time.perf_counter() - t
    return res


def machine() -> str:
    import pymc
    import pytensor

    import bayescale as bs

    cpu = platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as fh:
            mem = f"{int(next(ln for ln in fh if ln.startswith('MemTotal')).split()[1]) / 2**20:.1f} GB"
    except (OSError, StopIteration):
        pass
    load = os.getloadavg()
    return (f"{cpu}, {os.cpu_count()} logical cores, {mem} RAM; load average {load[0]:.1f}/{load[1]:.1f}/"
            f"{load[2]:.1f} (1/5/15 min) at start; Python {platform.python_version()}, PyMC {pymc.__version__}, "
            f"PyTensor {pytensor.__version__}, bayescale {bs.__version__}")


def _gb(x) -> str:
    return f"{x / GB:.2f}"


def _fmt(x, spec=".3f") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, spec)


def advi_table(rows: list[dict]) -> str:
    head = ("| N × m | floatX | iters | build+compile s | optimise s | draws+derive s | total s | "
            "−ELBO median rel. change (last 10%) | peak RSS GB | increase GB | estimate GB | "
            "RMSE α (sd) | RMSE log\\|c\\| (sd) | RMSE log\\|ψ(k_ref)\\| |")
    lines = [head, "|---|---|" + "---:|" * 12]
    for r in rows:
        size = f"{r['n']:,} × {r['m']}"
        if "error" in r:
            lines.append(f"| {size} | {r.get('floatX', '?')} | failed: {r['error'][:200]} |" + " |" * 10)
            continue
        lines.append(
            f"| {size} | {r['floatX']} (data {r['data_dtype']}, log p {r['logp_dtype']}) | {r['iters']} | {r['compile_s']:.1f} | "
            f"{_fmt(r.get('optimise_s'), '.1f')} | {_fmt(r.get('postprocess_s'), '.1f')} | {r['wall_total_s']:.1f} | "
            f"{r['elbo_rel_change_last10pct']:.1e} | {_gb(r['peak_rss'])} | {_gb(r['peak_rss'] - r['rss_before_fit'])} | "
            f"{_gb(r['estimate'])} | {r['rmse_alpha']:.3f} ({r['sd_alpha']:.3f}) | "
            f"{r['rmse_log_c']:.3f} ({r['sd_log_c']:.3f}) | {r['rmse_log_psi_kref']:.3f} |")
    return "\n".join(lines)


def ratio_lines(rows: list[dict]) -> list[str]:
    out = []
    by = {(r["n"], r["m"], r.get("floatX")): r for r in rows if "error" not in r}
    for (n, m, fx), r32 in by.items():
        r64 = by.get((n, m, "float64"))
        if fx != "float32" or r64 is None:
            continue
        out.append(f"- {n:,} × {m}, float32 / float64: total time {r32['wall_total_s'] / r64['wall_total_s']:.2f}, "
                   f"optimisation {_fmt(r32.get('optimise_s', np.nan) / r64.get('optimise_s', np.nan), '.2f')}, "
                   f"peak RSS {r32['peak_rss'] / r64['peak_rss']:.2f}, RMSE α {r32['rmse_alpha'] / r64['rmse_alpha']:.2f}, "
                   f"RMSE log|c| {r32['rmse_log_c'] / r64['rmse_log_c']:.2f}, final loss "
                   f"{r32['loss_final']:.6g} vs {r64['loss_final']:.6g}")
    return out


def nuts_table(rows: list[dict]) -> str:
    ref = next((r for r in rows if r.get("sampler") == "pymc" and "error" not in r), None)
    lines = ["| sampler | wall s | max r_hat | min bulk ESS | min ESS/s | divergences | peak RSS GB | "
             "estimate GB | RMSE α | RMSE log\\|ψ(k_ref)\\| | wall / pymc | ESS/s / pymc |",
             "|---|" + "---:|" * 11]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['sampler']} | failed: {r['error'][:200]} |" + " |" * 10)
            continue
        rw = _fmt(r["wall_s"] / ref["wall_s"], ".2f") if ref else "n/a"
        re_ = _fmt(r["ess_per_s"] / ref["ess_per_s"], ".2f") if ref else "n/a"
        label = f"ADVI ({r['iters']} its)" if r["sampler"] == "advi" else r["sampler"]
        div = "n/a" if r["divergences"] < 0 else r["divergences"]
        lines.append(f"| {label} | {r['wall_s']:.1f} | {_fmt(r['max_rhat'])} | {_fmt(r['min_ess_bulk'], '.0f')} | "
                     f"{_fmt(r['ess_per_s'], '.2f')} | {div} | {_gb(r['peak_rss'])} | {_gb(r['estimate'])} | "
                     f"{r['rmse_alpha']:.3f} | {r['rmse_log_psi_kref']:.3f} | {rw} | {re_} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", action="append", choices=["advi", "nuts"])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke test")
    parser.add_argument("--advi-iters", type=int, default=4000,
                        help="fixed ADVI iterations; 0 = ScalingLawModel.fit's defaults (its "
                             "optimiser and convergence check, at most 30,000)")
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--draws", type=int, default=1000, help="draws from the ADVI approximation")
    parser.add_argument("--no-float32", action="store_true", help="skip the float32 runs")
    parser.add_argument("--sizes", help="ADVI sizes instead of the defaults, e.g. 50000x20,10000x50")
    parser.add_argument("--samplers", default="pymc,nutpie,numpyro")
    parser.add_argument("--nuts-draws", type=int, default=500)
    parser.add_argument("--nuts-tune", type=int, default=500)
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(run_worker(json.loads(args.worker))), flush=True)
        return

    parts = args.part or ["advi", "nuts"]
    if args.quick:
        sizes, iters, draws = [(300, 10), (600, 5)], 200, 100
        nuts_size, nuts_draws, nuts_tune = (30, 10), 50, 50
    else:
        sizes, iters, draws = [(10_000, 50), (50_000, 20)], args.advi_iters, args.draws
    if args.sizes:
        sizes = [tuple(int(v) for v in item.split("x")) for item in args.sizes.split(",")]
        nuts_size, nuts_draws, nuts_tune = (1000, 20), args.nuts_draws, args.nuts_tune
    print(f"machine: {machine()}")
    print(f"command: python benchmarks/big_n.py {' '.join(argv if argv is not None else sys.argv[1:])}")
    settings = {"parts": parts, "advi_sizes": sizes, "advi_iters": iters, "learning_rate": args.learning_rate,
                "advi_draws": draws, "float32": not args.no_float32, "nuts_size": nuts_size,
                "nuts_chains": 2, "nuts_draws": nuts_draws, "nuts_tune": nuts_tune, "samplers": args.samplers}
    print(f"settings: {json.dumps(settings)}", flush=True)
    results: dict = {"machine": machine(), "settings": settings}

    if "advi" in parts:
        rows = []
        for n, m in sizes:
            for fx in ("float64",) + (() if args.no_float32 else ("float32",)):
                cfg = {"kind": "advi", "n": n, "m": m, "iters": iters, "draws": draws,
                       "learning_rate": args.learning_rate}
                env = {"PYTENSOR_FLAGS": f"floatX={fx}"}
                print(f"... ADVI {n} × {m} {fx} (load {os.getloadavg()[0]:.1f})", flush=True)
                r = spawn(cfg, env)
                r.setdefault("floatX", fx)
                rows.append(r)
                print(json.dumps(r), flush=True)
        results["advi"] = rows
        print("\n## ADVI (full batch)\n")
        print(advi_table(rows))
        for line in ratio_lines(rows):
            print(line)

    if "nuts" in parts:
        rows = []
        env = {"XLA_FLAGS": "--xla_force_host_platform_device_count=2"}  # numpyro: chains in parallel
        for sampler in args.samplers.split(",") + ["advi"]:
            cfg = {"kind": "nuts", "sampler": sampler, "n": nuts_size[0], "m": nuts_size[1], "chains": 2,
                   "draws": nuts_draws, "tune": nuts_tune, "iters": iters, "learning_rate": args.learning_rate}
            print(f"... NUTS {sampler} (load {os.getloadavg()[0]:.1f})", flush=True)
            r = spawn(cfg, env)
            rows.append(r)
            print(json.dumps(r), flush=True)
        results["nuts"] = rows
        print(f"\n## NUTS samplers, {nuts_size[0]} × {nuts_size[1]}, 2 chains, {nuts_draws} draws after "
              f"{nuts_tune} tuning steps\n")
        print(nuts_table(rows))
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
