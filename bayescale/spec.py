"""Run specs: one TOML file that fully describes one bayescale analysis.

A spec names the data, the learner and its parameters, the utility, the sampling plan, the
Bayesian model options, the inference settings, the valuation and where to write the
results. :func:`load_spec` reads and validates it (pydantic models with ``extra="forbid"``,
so an unknown key or a wrong type is an error that names the key); :func:`run_spec` runs it::

    [data]
    dataset = "breast_cancer"

    [learner]
    name = "logistic_regression"
    params = { C = 1.0 }

    [sampling]
    k_range = [20, 200]
    samples_per_point = 10
    points = 60
    design = "shared"

    [inference]
    method = "nuts"

The run directory receives ``contributions.parquet``, ``model.nc``, ``values.csv``,
``figures/*.png``, ``spec.toml`` (a copy of the file) and ``spec.resolved.json`` (every
setting, defaults included). Measuring contributions is the slow part, so a run re-uses the
stored table when the sampling part of the spec (data, learner, utility, sampling) has not
changed; see :func:`sampling_hash`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .contributions import _STORE_LAYOUT
from .diagnostics import diagnostics, format_diagnostics  # noqa: F401 - re-exported for the CLI

__all__ = [
    "LEARNERS",
    "RunResult",
    "RunSpec",
    "SpecError",
    "load_spec",
    "make_learner",
    "packaged_spec",
    "run_spec",
    "sampling_hash",
]


class SpecError(ValueError):
    """A run spec that cannot be read, validated or run as written.

    The message is one line that names the file and the offending key, so the command line
    can print it as is.
    """


# --------------------------------------------------------------------------- learners
def _logistic_regression(task: str, params: dict) -> Any:
    from sklearn.linear_model import LogisticRegression

    # max_iter: the default 100 often stops short on small standardized subsets and floods the
    # run with ConvergenceWarnings; 1000 converges on every bundled dataset.
    return LogisticRegression(**{"max_iter": 1000, **params})


def _ridge(task: str, params: dict) -> Any:
    from sklearn.linear_model import Ridge

    return Ridge(**params)


def _linear_regression(task: str, params: dict) -> Any:
    from sklearn.linear_model import LinearRegression

    return LinearRegression(**params)


def _mlp(task: str, params: dict) -> Any:
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPClassifier if task == "classification" else MLPRegressor
    return cls(**{"hidden_layer_sizes": (32,), "max_iter": 500, **params})


def _svc(task: str, params: dict) -> Any:
    from sklearn.svm import SVC

    # probability=True so that log-loss (the default classification utility) is defined.
    return SVC(**{"probability": True, **params})


def _svr(task: str, params: dict) -> Any:
    from sklearn.svm import SVR

    return SVR(**params)


def _gradient_boosting(task: str, params: dict) -> Any:
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor

    cls = GradientBoostingClassifier if task == "classification" else GradientBoostingRegressor
    return cls(**params)


def _random_forest(task: str, params: dict) -> Any:
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor

    cls = RandomForestClassifier if task == "classification" else RandomForestRegressor
    return cls(**params)


def _knn(task: str, params: dict) -> Any:
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    cls = KNeighborsClassifier if task == "classification" else KNeighborsRegressor
    return cls(**params)


def _decision_tree(task: str, params: dict) -> Any:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    cls = DecisionTreeClassifier if task == "classification" else DecisionTreeRegressor
    return cls(**params)


def _naive_bayes(task: str, params: dict) -> Any:
    from sklearn.naive_bayes import GaussianNB

    return GaussianNB(**params)


#: Learners a spec may name: name -> (factory(task, params), tasks it supports).
#: Names that exist for both tasks pick the classifier or the regressor from the dataset.
LEARNERS: dict[str, tuple[Callable[[str, dict], Any], frozenset[str]]] = {
    "logistic_regression": (_logistic_regression, frozenset({"classification"})),
    "ridge": (_ridge, frozenset({"regression"})),
    "linear_regression": (_linear_regression, frozenset({"regression"})),
    "mlp": (_mlp, frozenset({"classification", "regression"})),
    "svc": (_svc, frozenset({"classification"})),
    "svr": (_svr, frozenset({"regression"})),
    "gradient_boosting": (_gradient_boosting, frozenset({"classification", "regression"})),
    "random_forest": (_random_forest, frozenset({"classification", "regression"})),
    "knn": (_knn, frozenset({"classification", "regression"})),
    "decision_tree": (_decision_tree, frozenset({"classification", "regression"})),
    "naive_bayes": (_naive_bayes, frozenset({"classification"})),
}

DEFAULT_SCORING = {"classification": "neg_log_loss", "regression": "neg_mean_squared_error"}


def make_learner(name: str, task: str, params: Mapping[str, Any] | None = None):
    """Build a scikit-learn estimator from a registry name and parameters.

    Parameters
    ----------
    name : str
        One of :data:`LEARNERS` (``logistic_regression``, ``ridge``, ``mlp``, ``svc``, ...).
    task : {"classification", "regression"}
        The dataset's task; ``mlp`` and friends pick the classifier or the regressor from it.
    params : mapping, optional
        Constructor arguments; they override the registry's defaults.

    Raises
    ------
    ValueError
        Unknown learner, a learner that does not fit the task, or a parameter the estimator
        does not have (the message names it).

    Examples
    --------
    >>> make_learner("logistic_regression", "classification", {"C": 0.5})
    LogisticRegression(C=0.5, max_iter=1000)
    """
    if name not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}; choose one of {sorted(LEARNERS)}")
    factory, tasks = LEARNERS[name]
    if task not in tasks:
        raise ValueError(
            f"learner {name!r} does not support {task}; it supports {sorted(tasks)}"
        )
    params = dict(params or {})
    # Lists from TOML where scikit-learn wants tuples (hidden_layer_sizes).
    params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    try:
        return factory(task, params)
    except TypeError as err:  # unexpected keyword argument 'xyz'
        raise ValueError(f"learner {name!r}: {err}") from None


# --------------------------------------------------------------------------- schema
class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Section):
    """``[data]``: which bundled dataset, and the seed of its fixed split."""

    dataset: str = Field(description="name from bayescale.datasets.available()")
    random_state: int = 0

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, v: str) -> str:
        from . import datasets

        names = datasets.available()
        if v not in names:
            raise ValueError(f"unknown dataset {v!r}; choose one of {sorted(names)}")
        return v


class LearnerSpec(_Section):
    """``[learner]``: a registry name and its constructor parameters."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _known_learner(cls, v: str) -> str:
        if v not in LEARNERS:
            raise ValueError(f"unknown learner {v!r}; choose one of {sorted(LEARNERS)}")
        return v


class UtilitySpec(_Section):
    """``[utility]``: the scorer (higher is better); default by task."""

    scoring: str | None = None


class SamplingSpec(_Section):
    """``[sampling]``: the plan for measuring marginal contributions."""

    k_range: tuple[int, int] = (20, 200)
    samples_per_point: int = Field(10, ge=1)
    points: Annotated[int, Field(ge=1)] | list[int] | None = None
    design: Literal["independent", "shared"] = "shared"
    k_design: Literal["uniform", "loguniform"] = "uniform"
    stratify: bool = True
    seed: int = 0
    n_jobs: int = 1

    @field_validator("k_range")
    @classmethod
    def _ordered(cls, v: tuple[int, int]) -> tuple[int, int]:
        if v[0] < 1 or v[0] > v[1]:
            raise ValueError(f"k_range must satisfy 1 <= k_min <= k_max; got {list(v)}")
        return v

    @field_validator("points")
    @classmethod
    def _unique(cls, v):
        if isinstance(v, list):
            if not v:
                raise ValueError("points must not be empty")
            if len(set(v)) != len(v):
                raise ValueError("points must not repeat")
            if min(v) < 0:
                raise ValueError("points must be non-negative training indices")
        return v


class ModelSpec(_Section):
    """``[model]``: ScalingLawModel options."""

    features: Literal["none", "X", "X+label"] = "none"
    likelihood: Literal["normal", "studentt"] = "normal"
    law: Literal["power", "two_term", "curved", "auto"] = "power"
    noise: Literal["per_point", "pooled", "pooled_scale"] = "per_point"
    level: Literal["log", "signed"] = "log"
    level_tails: Literal["normal", "heavy"] = "normal"
    alpha_population: Literal["normal", "lognormal"] = "normal"
    priors: dict[str, Any] | None = None
    correlated: bool = False
    centered: dict[Literal["ell", "level", "alpha", "log_alpha", "log_s", "beta"], bool] | None = None
    feature_blocks: list[Literal["ell", "level", "alpha", "log_alpha", "log_s", "beta"]] | None = None


class InferenceSpec(_Section):
    """``[inference]``: how the posterior is computed."""

    method: Literal["nuts", "advi", "fullrank_advi", "map"] = "nuts"
    sampler: Literal["pymc", "nutpie", "numpyro", "blackjax"] = "pymc"
    draws: int = Field(1000, ge=1)
    tune: int = Field(1000, ge=0)
    chains: int = Field(4, ge=1)
    seed: int = 0
    options: dict[str, Any] = Field(
        default_factory=dict, description="extra keyword arguments for ScalingLawModel.fit"
    )


class ValuationSpec(_Section):
    """``[valuation]``: the value table and the report."""

    weights: Literal["distributional", "shapley", "banzhaf"] | tuple[Literal["beta"], float, float] = (
        "distributional"
    )
    k_range: tuple[int, int] | None = None
    n: int | None = Field(None, ge=2, description="dataset size for Shapley weights")
    top: int = Field(5, ge=0, description="rows of most / least valuable points to print")


class OutputSpec(_Section):
    """``[output]``: where the run directory goes and what is written."""

    dir: str | None = None
    figures: bool = True


class RunSpec(_Section):
    """A complete analysis: data → contributions → model → values → figures.

    Examples
    --------
    >>> spec = RunSpec.model_validate({"data": {"dataset": "wine"},
    ...                                "learner": {"name": "logistic_regression"}})
    >>> spec.sampling.design, spec.inference.method
    ('shared', 'nuts')
    """

    name: str | None = None
    description: str = ""
    data: DataSpec
    learner: LearnerSpec
    utility: UtilitySpec = UtilitySpec()
    sampling: SamplingSpec = SamplingSpec()
    model: ModelSpec = ModelSpec()
    inference: InferenceSpec = InferenceSpec()
    valuation: ValuationSpec = ValuationSpec()
    output: OutputSpec = OutputSpec()

    @model_validator(mode="after")
    def _learner_fits_task(self) -> RunSpec:
        from . import datasets

        task = datasets.load_dataset(self.data.dataset, random_state=self.data.random_state).task
        _, tasks = LEARNERS[self.learner.name]
        if task not in tasks:
            raise ValueError(
                f"learner {self.learner.name!r} does not support the {task} dataset "
                f"{self.data.dataset!r}"
            )
        try:  # an argument the estimator does not take fails here, not mid-run
            make_learner(self.learner.name, task, self.learner.params)
        except ValueError as err:
            raise ValueError(f"learner.params: {err}") from None
        if self.model.priors is not None:
            from .priors import resolve_priors

            try:
                resolve_priors({}, self.model.priors)
            except ValueError as err:
                raise ValueError(f"model.priors: {err}") from None
        if self.model.features == "X+label" and task != "classification":
            raise ValueError("model.features = 'X+label' needs a classification dataset")
        return self


def _field_path(loc: tuple) -> tuple[tuple, type[BaseModel] | None]:
    """Split a pydantic error location into the spec key it concerns and that key's model.

    Locations may go on past a field into union tags ('constrained-int') or tuple positions;
    the user only cares about the key, e.g. ``sampling.points``.
    """
    model: type[BaseModel] | None = RunSpec
    path = []
    for part in loc:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            break
        path.append(part)
        ann = model.model_fields[part].annotation
        model = ann if isinstance(ann, type) and issubclass(ann, BaseModel) else None
    return tuple(path), model


def _format_errors(err: ValidationError) -> str:
    grouped: dict[str, list[str]] = {}
    inputs: dict[str, Any] = {}
    for e in err.errors():
        loc = tuple(e["loc"])
        path, model = _field_path(loc)
        key = ".".join(path)
        if e["type"] == "extra_forbidden":
            _, parent = _field_path(loc[:-1])
            full = ".".join(str(p) for p in loc)
            allowed = sorted(parent.model_fields) if parent else None
            hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
            grouped.setdefault(f"unknown key '{full}'{hint}", [])
            continue
        if e["type"] == "missing" and len(path) == len(loc):
            grouped.setdefault(f"missing key '{key}'", [])
            continue
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":  # a tuple given too few items
            msg = "too few items"
        if not key:  # a check across sections: the message names the keys itself
            grouped.setdefault(msg, [])
            continue
        grouped.setdefault(f"'{key}'", []).append(msg)
        inputs.setdefault(f"'{key}'", e.get("input"))
    parts = []
    for head, msgs in grouped.items():
        if not msgs:
            parts.append(head)
            continue
        # A union (e.g. points: int or list) fails once per member: say it once.
        body = " or ".join(dict.fromkeys(m[0].lower() + m[1:] for m in msgs))
        parts.append(f"{head}: {body} (got {inputs[head]!r})")
    # One line: several problems are joined, so the CLI can print it as is.
    return "; ".join(parts)


def load_spec(source: str | os.PathLike | Mapping[str, Any] | RunSpec) -> RunSpec:
    """Read and validate a run spec.

    Parameters
    ----------
    source : path, mapping or RunSpec
        A TOML file, an already parsed mapping, or a RunSpec (returned as is).

    Raises
    ------
    SpecError
        Missing file, TOML syntax error, unknown key, wrong type or impossible value; the
        one-line message names the file and the key.

    Examples
    --------
    >>> spec = load_spec(packaged_spec("demo"))
    >>> spec.data.dataset
    'digits_binary'
    """
    if isinstance(source, RunSpec):
        return source
    where = "spec"
    name = None
    if isinstance(source, Mapping):
        raw = dict(source)
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise SpecError(f"spec file not found: {path}")
        try:
            raw = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise SpecError(f"{path}: not valid TOML: {err}") from None
        name = path.stem
    try:
        spec = RunSpec.model_validate(raw)
    except ValidationError as err:
        raise SpecError(f"{where}: {_format_errors(err)}") from None
    if spec.name is None and name is not None:
        spec = spec.model_copy(update={"name": name})
    return spec


def packaged_spec(name: str = "demo") -> Path:
    """Path of a spec shipped inside the package (``bayescale/specs/NAME.toml``).

    Examples
    --------
    >>> packaged_spec("demo").name
    'demo.toml'
    """
    path = Path(__file__).parent / "specs" / f"{name}.toml"
    if not path.is_file():
        raise SpecError(f"no packaged spec named {name!r}")
    return path


def sampling_hash(spec: RunSpec, fingerprint: str = "") -> str:
    """Hash of everything that determines the contributions table.

    Two specs with the same hash measure the same table, so a run can re-use a stored one.
    ``fingerprint`` is the data fingerprint, so a changed dataset loader invalidates it too.

    Examples
    --------
    >>> a = load_spec(packaged_spec("demo"))
    >>> b = a.model_copy(update={"inference": a.inference.model_copy(update={"draws": 10})})
    >>> sampling_hash(a) == sampling_hash(b)
    True
    """
    payload = {
        "data": spec.data.model_dump(mode="json"),
        "learner": spec.learner.model_dump(mode="json"),
        "utility": spec.utility.model_dump(mode="json"),
        "sampling": {
            k: v for k, v in spec.sampling.model_dump(mode="json").items() if k != "n_jobs"
        },  # n_jobs does not change the table (one derived seed per task)
        "fingerprint": fingerprint,
        # The sampler's plan version: a table planned by an older sampler is not re-used.
        "sampler_layout": _STORE_LAYOUT,
    }
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# --------------------------------------------------------------------------- running
@dataclass
class RunResult:
    """What :func:`run_spec` produced.

    Attributes
    ----------
    out : Path
        The run directory.
    contributions : Contributions
    model : ScalingLawModel
    values : pandas.DataFrame
        The value table (also in ``values.csv``), with a ``p_harmful`` column.
    diagnostics : dict
        ``max_rhat``, ``min_ess_bulk``, ``divergences`` (NaN / 0 where the method has none).
    reused_contributions : bool
        True when the stored table was re-used instead of measured again.
    files : dict
        Name -> path of everything written.
    timings : dict
        Seconds spent in each stage.
    """

    out: Path
    spec: RunSpec
    contributions: Any
    model: Any
    values: Any
    diagnostics: dict
    reused_contributions: bool
    files: dict = field(default_factory=dict)
    timings: dict = field(default_factory=dict)


def _ensure_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".bayescale-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise SpecError(f"cannot write to output directory {out}: {err.strerror or err}") from None


def _select_points(spec: RunSpec, n_train: int) -> np.ndarray | None:
    pts = spec.sampling.points
    if pts is None:
        return None
    if isinstance(pts, int):
        if pts > n_train:
            raise SpecError(
                f"sampling.points = {pts} exceeds the {n_train} training points of "
                f"{spec.data.dataset!r}"
            )
        # A random subset (seeded by the sampling seed), not the first n, so that the points
        # are representative of the training pool.
        rng = np.random.default_rng(spec.sampling.seed)
        return np.sort(rng.choice(n_train, size=pts, replace=False))
    arr = np.asarray(pts)
    if arr.max() >= n_train:
        raise SpecError(
            f"sampling.points has index {int(arr.max())} but {spec.data.dataset!r} has "
            f"{n_train} training points"
        )
    return arr


def point_features(dataset, points: np.ndarray, kind: str) -> np.ndarray | None:
    """Per-point features for the model: none, the inputs X, or X plus a one-hot label.

    Examples
    --------
    >>> from bayescale.datasets import load_dataset
    >>> ds = load_dataset("wine")
    >>> point_features(ds, np.array([0, 1]), "X+label").shape
    (2, 15)
    """
    import pandas as pd

    if kind == "none":
        return None
    points = np.asarray(points)
    # A DataFrame indexed by point id, so the model aligns rows by id and names its effects.
    X = pd.DataFrame(
        np.asarray(dataset.X_train)[points], index=points, columns=list(dataset.feature_names)
    )
    if kind == "X":
        return X
    if kind == "X+label":
        y = np.asarray(dataset.y_train)[points]
        classes = np.unique(np.asarray(dataset.y_train))
        # Drop the first class: an intercept already carries it (avoids a collinear column).
        for cls in classes[1:]:
            X[f"label={cls}"] = (y == cls).astype(float)
        return X
    raise ValueError(f"features must be 'none', 'X' or 'X+label'; got {kind!r}")


def value_table(model, **kwargs):
    """:func:`bayescale.value` with each point's P(harmful) as an extra column.

    Examples
    --------
    >>> from bayescale.valuation import _fake_idata
    >>> list(value_table(_fake_idata(n_points=3, random_state=0)).columns)[-1]
    'p_harmful'
    """
    import bayescale as bs

    values = bs.value(model, **kwargs)
    harm = bs.valuation.p_harmful(model)[["point", "p_harmful"]]
    out = values.merge(harm, on="point", how="left", validate="one_to_one")
    out.attrs.update(values.attrs)
    return out


def _log(verbose: bool, msg: str) -> None:
    if verbose:
        print(msg, flush=True)


def run_spec(
    source: str | os.PathLike | Mapping[str, Any] | RunSpec,
    out: str | os.PathLike | None = None,
    *,
    resample: bool = False,
    progress: bool = True,
    verbose: bool = True,
) -> RunResult:
    """Run one analysis described by a spec and write everything to a run directory.

    Steps: load the dataset; measure contributions (or re-use the stored table when the
    sampling part of the spec is unchanged); fit :class:`~bayescale.ScalingLawModel`; value
    the points; draw the figures.

    Parameters
    ----------
    source : path, mapping or RunSpec
        The spec (see :func:`load_spec`).
    out : path, optional
        Run directory; default the spec's ``[output] dir``, else ``runs/<name>``.
    resample : bool
        Measure again even if a matching table is stored.
    progress : bool
        Progress bars for sampling and inference.
    verbose : bool
        Print what each stage does.

    Returns
    -------
    RunResult

    Raises
    ------
    SpecError
        Invalid spec, or an output directory that cannot be written.

    Examples
    --------
    >>> spec = {"data": {"dataset": "wine"}, "learner": {"name": "logistic_regression"},
    ...         "sampling": {"k_range": [20, 60], "samples_per_point": 3, "points": 4},
    ...         "inference": {"method": "map"}, "output": {"figures": False}}
    >>> import tempfile
    >>> res = run_spec(spec, tempfile.mkdtemp(), progress=False, verbose=False)  # doctest: +SKIP
    >>> sorted(res.files)  # doctest: +SKIP
    ['contributions', 'model', 'spec', 'values']
    """
    import bayescale as bs

    spec = load_spec(source)
    name = spec.name or "run"
    out = Path(out if out is not None else (spec.output.dir or Path("runs") / name))
    _ensure_writable(out)
    files: dict[str, Path] = {}
    timings: dict[str, float] = {}

    # A copy of the spec: the original text when it came from a file, and every resolved
    # setting (defaults included) so the run can be reproduced without guessing.
    if not isinstance(source, (Mapping, RunSpec)):
        src = Path(source)
        if src.resolve() != (out / "spec.toml").resolve():
            shutil.copyfile(src, out / "spec.toml")
        files["spec"] = out / "spec.toml"
    resolved = out / "spec.resolved.json"
    resolved.write_text(spec.model_dump_json(indent=2) + "\n")
    files.setdefault("spec", resolved)

    ds = bs.datasets.load_dataset(spec.data.dataset, random_state=spec.data.random_state)
    fingerprint = bs.data_fingerprint(ds.X_train, ds.y_train) + bs.data_fingerprint(
        ds.X_val, ds.y_val
    )
    key = sampling_hash(spec, fingerprint)
    n_train = len(ds.y_train)
    points = _select_points(spec, n_train)
    if spec.sampling.k_range[1] >= n_train:
        raise SpecError(
            f"sampling.k_range max {spec.sampling.k_range[1]} must be below the "
            f"{n_train} training points of {spec.data.dataset!r}"
        )

    # ---- contributions: re-use when the sampling part is unchanged
    contrib_path = out / "contributions.parquet"
    contributions = None
    if contrib_path.exists() and not resample:
        stored = bs.Contributions.read_parquet(contrib_path)
        if stored.metadata.get("spec_sampling_hash") == key:
            contributions = stored
            _log(verbose, f"re-using {len(stored)} stored observations from {contrib_path}")
        else:
            _log(verbose, "sampling settings changed: measuring contributions again")
    reused = contributions is not None
    t0 = time.perf_counter()
    if contributions is None:
        scoring = spec.utility.scoring or DEFAULT_SCORING[ds.task]
        estimator = make_learner(spec.learner.name, ds.task, spec.learner.params)
        _log(
            verbose,
            f"measuring contributions: {spec.learner.name} on {spec.data.dataset}, "
            f"{len(points) if points is not None else n_train} points x "
            f"{spec.sampling.samples_per_point} samples, k in {list(spec.sampling.k_range)}, "
            f"{spec.sampling.design} design",
        )
        # The sampler's own store makes an interrupted run resume; it is keyed by the hash so
        # that a changed spec never meets a store written with other arguments.
        store = out / ".store" / key
        contributions = bs.sample_contributions(
            estimator,
            ds.X_train,
            ds.y_train,
            ds.X_val,
            ds.y_val,
            points=points,
            k_range=tuple(spec.sampling.k_range),
            samples_per_point=spec.sampling.samples_per_point,
            scoring=scoring,
            stratify=spec.sampling.stratify and ds.task == "classification",
            design=spec.sampling.design,
            k_design=spec.sampling.k_design,
            n_jobs=spec.sampling.n_jobs,
            random_state=spec.sampling.seed,
            store=store,
            progress=progress,
        )
        contributions.metadata.update(
            {"dataset": spec.data.dataset, "spec_sampling_hash": key, "spec_name": name}
        )
        contributions.to_parquet(contrib_path)
        shutil.rmtree(out / ".store", ignore_errors=True)
    files["contributions"] = contrib_path
    timings["sampling"] = time.perf_counter() - t0

    # ---- model
    t0 = time.perf_counter()
    fitted_points = np.asarray(contributions.points)
    features = point_features(ds, fitted_points, spec.model.features)
    model_kwargs = dict(
        features=features,
        likelihood=spec.model.likelihood,
        noise=spec.model.noise,
        level=spec.model.level,
        level_tails=spec.model.level_tails,
        alpha_population=spec.model.alpha_population,
        priors=spec.model.priors,
        correlated=spec.model.correlated,
        centered=spec.model.centered,
        feature_blocks=spec.model.feature_blocks,
    )
    inf = spec.inference
    _log(verbose, f"fitting ScalingLawModel ({inf.method}" + (
        f", {inf.sampler}, {inf.chains} chains x {inf.draws} draws)" if inf.method == "nuts" else ")"
    ))
    fit_kwargs: dict[str, Any] = dict(
        method=inf.method,
        random_seed=inf.seed,
        progressbar=progress,
        **inf.options,
    )
    if inf.method == "nuts":
        fit_kwargs.update(nuts_sampler=inf.sampler, draws=inf.draws, tune=inf.tune, chains=inf.chains)
    else:
        fit_kwargs.update(draws=inf.draws)
    if spec.model.law == "auto":
        _log(verbose, "law = auto: fitting the power, curved and two-term laws, choosing by PSIS-LOO")
        model, table = bs.select_law(contributions, model_kwargs=model_kwargs, **fit_kwargs)
        table.to_csv(out / "law_comparison.csv")
        files["law_comparison"] = out / "law_comparison.csv"
        _log(verbose, f"chosen law: {model.law}")
    else:
        model = bs.ScalingLawModel(law=spec.model.law, **model_kwargs)
        model.fit(contributions, **fit_kwargs)
    timings["inference"] = time.perf_counter() - t0
    diag = model.diagnostics_  # computed by fit
    model_path = out / "model.nc"
    model.save(model_path)
    files["model"] = model_path

    # ---- values
    val = spec.valuation
    weights = val.weights if isinstance(val.weights, str) else tuple(val.weights)
    value_kwargs: dict[str, Any] = {"weights": weights, "k_range": val.k_range}
    if val.n is not None:
        value_kwargs["n"] = val.n
    values = value_table(model, **value_kwargs)
    values_path = out / "values.csv"
    values.to_csv(values_path, index=False)
    files["values"] = values_path

    # ---- figures
    if spec.output.figures:
        t0 = time.perf_counter()
        files.update(_figures(model, values, out / "figures"))
        timings["figures"] = time.perf_counter() - t0

    return RunResult(
        out=out,
        spec=spec,
        contributions=contributions,
        model=model,
        values=values,
        diagnostics=diag,
        reused_contributions=reused,
        files=files,
        timings=timings,
    )


def _figures(model, values, figdir: Path) -> dict[str, Path]:
    """Scaling curves, value caterpillar and α histogram, one PNG each."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from . import plots

    figdir.mkdir(parents=True, exist_ok=True)
    written = {}
    # Curves of the most and the least valuable points: the contrast is the point of the plot.
    ordered = values.sort_values("mean", ascending=False)["point"].to_numpy()
    shown = ordered if len(ordered) <= 5 else np.r_[ordered[:3], ordered[-2:]]
    makers = {
        "scaling_curves": lambda: plots.plot_scaling_curves(model, points=shown),
        "values": lambda: plots.plot_values(values),
        "alpha_hist": lambda: plots.plot_parameter_hist(model, "alpha"),
    }
    for name, make in makers.items():
        obj = make()
        fig = obj.figure if hasattr(obj, "figure") else obj
        path = figdir / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written[f"figure_{name}"] = path
    return written
