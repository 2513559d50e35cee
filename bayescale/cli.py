"""The ``bayescale`` command.

::

    bayescale demo [--out DIR]                 whole pipeline on bundled real data (~2-3 min)
    bayescale run SPEC.toml [--out DIR]        one analysis described by a run spec
    bayescale sample --dataset D --learner L   measure contributions -> parquet
    bayescale fit TABLE.parquet                contributions -> fitted model (netCDF)
    bayescale value MODEL.nc                   fitted model -> CSV value table
    bayescale --version

Usage mistakes print the usage and exit with status 2 (argparse's convention). Problems with
the input (a missing file, an unknown dataset or learner, an unwritable output directory, an
invalid spec) print one line ``bayescale: error: ...`` on stderr and exit with status 2; set
``BAYESCALE_DEBUG=1`` to see the traceback instead.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__

__all__ = ["main"]

EXIT_INPUT_ERROR = 2


class CLIError(Exception):
    """An input problem reported as one line, exit status 2."""


# --------------------------------------------------------------------------- helpers
def _parse_value(text: str) -> Any:
    """``--param C=0.5``: the value as TOML would read it, else the plain string."""
    import tomllib

    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _parse_params(items: Sequence[str] | None) -> dict[str, Any]:
    params = {}
    for item in items or []:
        if "=" not in item:
            raise CLIError(f"--param expects NAME=VALUE; got {item!r}")
        k, v = item.split("=", 1)
        params[k.strip()] = _parse_value(v.strip())
    return params


def _parse_weights(text: str):
    """``distributional``, ``shapley``, ``banzhaf`` or ``beta:A,B``."""
    if text.startswith("beta:"):
        try:
            a, b = (float(x) for x in text[5:].split(","))
        except ValueError:
            raise CLIError(f"--weights beta:A,B needs two numbers; got {text!r}") from None
        return ("beta", a, b)
    return text


def _writable_file(path: Path) -> Path:
    from .spec import SpecError, _ensure_writable

    try:
        _ensure_writable(path.parent if str(path.parent) else Path("."))
    except SpecError as err:
        raise CLIError(str(err)) from None
    return path


def _print_value_table(values, top: int, file=None) -> None:
    """The most and least valuable points, with intervals and P(harmful)."""
    if top <= 0 or len(values) == 0:
        return
    file = file or sys.stdout  # looked up now, so redirection and capture see the table
    cols = ["point", "mean", "hdi_low", "hdi_high"]
    if "p_harmful" in values:
        cols.append("p_harmful")
    ordered = values.sort_values("mean", ascending=False)
    mass = values.attrs.get("hdi_prob")
    interval = f"{mass:.0%} HDI" if mass else "HDI"
    fmt = {
        "mean": "{:+.2e}".format,
        "hdi_low": "{:+.2e}".format,
        "hdi_high": "{:+.2e}".format,
        "p_harmful": "{:.2f}".format,
    }
    top = min(top, len(values))
    print(f"\nmost valuable points (value mean, {interval}, P(harmful)):", file=file)
    print(ordered.head(top)[cols].to_string(index=False, formatters=fmt), file=file)
    print("\nleast valuable points:", file=file)
    print(ordered.tail(top)[cols].to_string(index=False, formatters=fmt), file=file)


# --------------------------------------------------------------------------- commands
def _report_diagnostics(d, advice: str) -> None:
    from .diagnostics import MAX_RHAT, format_diagnostics

    print(f"diagnostics: {format_diagnostics(d)}")
    # DESIGN.md's NUTS health bar; say so loudly rather than print values from a posterior
    # that has not converged as if they were fine. (fit's own ConvergenceWarning is silenced
    # in main: this line says the same in the command's words.)
    if d["max_rhat"] > MAX_RHAT or d["divergences"] > 0:
        print(f"warning: NUTS has not converged (want r_hat <= {MAX_RHAT} and no divergences); "
              f"treat the values with caution, or {advice}", file=sys.stderr)


def _report_run(res, started: float) -> None:
    print()
    _report_diagnostics(res.diagnostics, "raise [inference] tune / draws or options.target_accept and run again")
    _print_value_table(res.values, res.spec.valuation.top)
    print(f"\nwrote to {res.out.resolve()}/:")
    for _, path in sorted(res.files.items(), key=lambda kv: str(kv[1])):
        print(f"  {Path(path).relative_to(res.out)}")
    stages = ", ".join(f"{k} {v:.0f}s" for k, v in res.timings.items())
    print(f"done in {time.perf_counter() - started:.0f}s ({stages})")
    print(f"results: {res.out.resolve()}")


def cmd_run(args: argparse.Namespace) -> int:
    from .spec import run_spec

    started = time.perf_counter()
    res = run_spec(
        args.spec, out=args.out, resample=args.resample, progress=not args.no_progress
    )
    _report_run(res, started)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .spec import load_spec, packaged_spec, run_spec

    started = time.perf_counter()
    spec = load_spec(packaged_spec("demo"))
    n = spec.sampling.points if isinstance(spec.sampling.points, int) else "the"
    print(
        f"bayescale demo: measure how much each of {n} training points of "
        f"{spec.data.dataset} helps a {spec.learner.name.replace('_', ' ')} "
        f"(utility {spec.utility.scoring or 'default'} on a validation split), fit one "
        f"hierarchical scaling law over all points ({spec.inference.method.upper()}), and "
        "value the points with intervals.\n"
    )
    res = run_spec(
        packaged_spec("demo"), out=args.out, resample=args.resample, progress=not args.no_progress
    )
    _report_run(res, started)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import bayescale as bs

    from .spec import DEFAULT_SCORING, make_learner

    if args.dataset not in bs.datasets.available():
        raise CLIError(
            f"unknown dataset {args.dataset!r}; choose one of {sorted(bs.datasets.available())}"
        )
    out = _writable_file(Path(args.out))
    ds = bs.datasets.load_dataset(args.dataset, random_state=args.data_seed)
    estimator = make_learner(args.learner, ds.task, _parse_params(args.param))
    n_train = len(ds.y_train)
    points = None
    if args.points is not None:
        if args.points > n_train:
            raise CLIError(f"--points {args.points} exceeds the {n_train} training points")
        rng = np.random.default_rng(args.seed)
        points = np.sort(rng.choice(n_train, size=args.points, replace=False))
    c = bs.sample_contributions(
        estimator,
        ds.X_train,
        ds.y_train,
        ds.X_val,
        ds.y_val,
        points=points,
        k_range=tuple(args.k_range),
        samples_per_point=args.samples_per_point,
        scoring=args.scoring or DEFAULT_SCORING[ds.task],
        stratify=ds.task == "classification",
        design=args.design,
        k_design=args.k_design,
        n_jobs=args.n_jobs,
        random_state=args.seed,
        progress=not args.no_progress,
    )
    # The dataset name lets `bayescale fit --features X` find the points' features later.
    c.metadata.update({"dataset": args.dataset, "data_random_state": args.data_seed})
    c.to_parquet(out)
    print(c)
    print(c.summary().describe().loc[["mean", "50%"], ["n_obs", "mean", "sd"]].to_string())
    print(f"wrote {out}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    import bayescale as bs

    from .spec import point_features

    path = Path(args.contributions)
    if not path.is_file():
        raise CLIError(f"contributions file not found: {path}")
    out = _writable_file(Path(args.out))
    c = bs.Contributions.read_parquet(path)
    features = None
    if args.features != "none":
        name = c.metadata.get("dataset")
        if name is None:
            raise CLIError(
                f"--features {args.features} needs the dataset; {path} does not record one "
                "(tables written by `bayescale sample` or `bayescale run` do)"
            )
        ds = bs.datasets.load_dataset(name, random_state=c.metadata.get("data_random_state", 0))
        features = point_features(ds, np.asarray(c.points), args.features)
    model = bs.ScalingLawModel(features=features, likelihood=args.likelihood, noise=args.noise, level=args.level,
                               level_tails=args.level_tails, alpha_population=args.alpha_population,
                               feature_blocks=args.feature_blocks)
    kwargs: dict[str, Any] = dict(
        method=args.method, draws=args.draws, random_seed=args.seed,
        progressbar=not args.no_progress,
    )
    if args.method == "nuts":
        kwargs.update(nuts_sampler=args.sampler, tune=args.tune, chains=args.chains)
    model.fit(c, **kwargs)
    model.save(out)
    _report_diagnostics(model.diagnostics_, "raise --tune / --draws and fit again")
    print(f"wrote {out}")
    return 0


def cmd_value(args: argparse.Namespace) -> int:
    import bayescale as bs

    from .spec import value_table

    path = Path(args.model)
    if not path.is_file():
        raise CLIError(f"model file not found: {path}")
    out = _writable_file(Path(args.out))
    model = bs.ScalingLawModel.load(path)
    kwargs: dict[str, Any] = {"weights": _parse_weights(args.weights)}
    if args.k_range is not None:
        kwargs["k_range"] = tuple(args.k_range)
    if args.n is not None:
        kwargs["n"] = args.n
    values = value_table(model, **kwargs)
    values.to_csv(out, index=False)
    _print_value_table(values, args.top)
    print(f"wrote {out}")
    return 0


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and the tests)."""
    parser = argparse.ArgumentParser(
        prog="bayescale",
        description="Individualized data scaling laws: value each training point with a "
        "hierarchical Bayesian model of its marginal contributions.",
    )
    parser.add_argument("--version", action="version", version=f"bayescale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def progress_flag(p):
        p.add_argument("--no-progress", action="store_true", help="hide progress bars")

    p = sub.add_parser("demo", help="whole pipeline on bundled real data (about 2-3 minutes)")
    p.add_argument("--out", default="bayescale-demo", help="output directory (default: %(default)s)")
    p.add_argument("--resample", action="store_true", help="measure again even if stored")
    progress_flag(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="run the analysis a spec file describes")
    p.add_argument("spec", help="run spec (TOML), e.g. models/demo.toml")
    p.add_argument("--out", default=None, help="run directory (default: the spec's [output] dir)")
    p.add_argument("--resample", action="store_true", help="measure again even if stored")
    progress_flag(p)
    p.set_defaults(func=cmd_run)

    from .spec import LEARNERS

    p = sub.add_parser("sample", help="measure marginal contributions into a parquet table")
    p.add_argument("--dataset", required=True, help="bundled dataset, e.g. breast_cancer")
    p.add_argument("--learner", required=True, help=f"one of: {', '.join(sorted(LEARNERS))}")
    p.add_argument("--param", action="append", metavar="NAME=VALUE", help="learner parameter")
    p.add_argument("--scoring", default=None, help="scorer (default by task: neg_log_loss / neg_mean_squared_error)")
    p.add_argument("--k-range", nargs=2, type=int, default=[20, 200], metavar=("KMIN", "KMAX"))
    p.add_argument("--samples-per-point", "-m", type=int, default=10)
    p.add_argument("--points", type=int, default=None, help="number of random training points (default all)")
    p.add_argument("--design", choices=["independent", "shared"], default="shared")
    p.add_argument("--k-design", choices=["uniform", "loguniform"], default="uniform",
                   help="distribution of the sizes k on the range (loguniform: more small k)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-seed", type=int, default=0, help="random_state of the dataset split")
    p.add_argument("--n-jobs", type=int, default=1)
    p.add_argument("--out", "-o", default="contributions.parquet")
    progress_flag(p)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("fit", help="fit the scaling-law model to a contributions table")
    p.add_argument("contributions", help="parquet table from `bayescale sample`")
    p.add_argument("--out", "-o", default="model.nc")
    p.add_argument("--method", choices=["nuts", "advi", "fullrank_advi", "map"], default="nuts")
    p.add_argument("--sampler", choices=["pymc", "nutpie", "numpyro", "blackjax"], default="pymc")
    p.add_argument("--features", choices=["none", "X", "X+label"], default="none")
    p.add_argument("--likelihood", choices=["normal", "studentt"], default="normal")
    p.add_argument("--noise", choices=["per_point", "pooled", "pooled_scale"], default="per_point",
                   help="per-point noise level and decay, the population's for every point, "
                        "or the population's level with a per-point decay")
    p.add_argument("--level", choices=["log", "signed"], default="log",
                   help="log|ψ| with a marginalized sign, or a signed level with a Normal population")
    p.add_argument("--level-tails", choices=["normal", "heavy"], default="normal",
                   help="the signed level's population: one Normal, or a two-scale mixture that leaves "
                        "a few far-out points unshrunk (needs --level signed)")
    p.add_argument("--alpha-population", choices=["normal", "lognormal"], default="normal",
                   help="the exponent's population: Normal on alpha, or Normal on log alpha "
                        "(every point's value then decays with k)")
    p.add_argument("--feature-blocks", nargs="+", default=None,
                   choices=["ell", "level", "alpha", "log_alpha", "log_s", "beta"],
                   help="the blocks the features drive (default: all of the model's); e.g. "
                        "'level log_alpha' keeps them off a pooled noise law")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    progress_flag(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("value", help="value table (CSV) from a fitted model")
    p.add_argument("model", help="netCDF file from `bayescale fit`")
    p.add_argument("--out", "-o", default="values.csv")
    p.add_argument("--weights", default="distributional",
                   help="distributional, shapley, banzhaf or beta:A,B (default: %(default)s)")
    p.add_argument("--k-range", nargs=2, type=int, default=None, metavar=("KMIN", "KMAX"))
    p.add_argument("--n", type=int, default=None, help="dataset size for Shapley weights")
    p.add_argument("--top", type=int, default=5, help="rows of best / worst points to print")
    p.set_defaults(func=cmd_value)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bayescale`` command; returns the exit status.

    Examples
    --------
    >>> main(["--version"])  # doctest: +SKIP
    bayescale 0.1.0
    """
    parser = build_parser()
    args = parser.parse_args(argv)  # usage errors: argparse prints usage, exits 2
    from .diagnostics import ConvergenceWarning
    from .spec import SpecError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # reported by _report_diagnostics
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("bayescale: interrupted", file=sys.stderr)
        return 130
    except (CLIError, SpecError, FileNotFoundError, PermissionError, ValueError) as err:
        if os.environ.get("BAYESCALE_DEBUG"):
            raise
        msg = " ".join(str(err).split()) or type(err).__name__
        print(f"bayescale: error: {msg}", file=sys.stderr)
        return EXIT_INPUT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
