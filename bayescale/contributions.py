"""Measuring marginal contributions Δ(z, D) = U(D ∪ {z}) − U(D) with scikit-learn learners.

Two designs produce the same expected contribution ψ_k(z) = E[Δ(z, D) | |D| = k]:

``"independent"`` (the paper's protocol)
    Every observation draws its own size k ~ U{k_min, ..., k_max} and its own base set D of
    size k from the training pool without z, and fits the learner twice.

``"shared"``
    One base set D (drawn from the whole pool) serves a batch of points: D is fitted once,
    then D ∪ {z} for every point of the batch that is not in D. Conditional on z ∉ D, D is a
    uniform (class-stratified) subset of the pool without z, exactly as in the independent
    design, so ψ_k is unchanged. Ridge / LinearRegression get D ∪ {z} by an exact rank-one
    (Sherman-Morrison) update of D's normal equations and binary logistic regression by a few
    Newton steps from D's optimum, instead of a fit; other convex learners with
    ``warm_start`` start their fit of D ∪ {z} from D's solution.

Work is cut into tasks whose definition does not depend on ``n_jobs`` or the backend, and
every observation (independent) or base set (shared) gets its own seed derived from
``random_state`` with :class:`numpy.random.SeedSequence`, so the table is the same however
it is run. Finished tasks can be written to a ``store`` directory, one parquet file each,
so that an interrupted run resumes where it stopped.

Running on a Dask cluster
-------------------------
Start a scheduler and workers wherever they should run (``dask scheduler`` on one machine,
``dask worker tcp://HOST:8786 --nthreads 1`` on each core you want to use; bayescale and the
learner's package must be importable there), then point the sampler at the scheduler::

    c = bs.sample_contributions(est, X, y, X_val, y_val, backend="dask",
                                dask_client="tcp://HOST:8786", random_state=0, store="run/")

``dask_client`` may also be a ``distributed.Client`` you already hold (or pass the client as
``backend``); with neither, the current default client is used. The data are scattered once
to every worker. Results come back to the calling process, which alone writes the store, so a
worker that dies mid-run only makes the scheduler rerun its tasks: nothing is lost or written
twice, and the table equals a local run's with the same ``random_state``.
"""

from __future__ import annotations

import copy
import json
import numbers
import os
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import clone, is_regressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.metrics import get_scorer
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_array
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ._validation import check_int, check_k_range
from .data import Contributions, data_fingerprint

__all__ = ["sample_contributions"]

DESIGNS = ("independent", "shared")
K_DESIGNS = ("uniform", "loguniform")
JOBLIB_BACKENDS = ("loky", "threading", "multiprocessing", "sequential")
# Observations of one point per independent-design task. Part of the task layout (and of a
# store's manifest): results do not depend on it, since every observation has its own seed.
_INDEPENDENT_BLOCK = 10
_STORE_LAYOUT = 2  # 2: shared-design sizes spread over the range; k_design
_SEED_INDEPENDENT, _SEED_SHARED = 0, 1
# Shared design: base j of a batch takes the size at quantile frac(u_0 + j·φ) of the size
# distribution (u_0 uniform per batch). Each base's size keeps its distribution, but any run
# of consecutive bases spreads over the whole range: with the golden ratio's conjugate φ the
# first j quantiles leave no gap wider than about 2.6/j. Measured on the reduced accuracy
# benchmark (digits, i.i.d. sizes): the 19 bases behind the m = 10 table had no size below
# 45 of a range starting at 25, so no point was seen where its contributions are largest.
_GOLDEN = 0.6180339887498949
# Warm-started fits stop at this fraction of the learner's ``tol``. At the learner's own tol a
# fit of D ∪ {z} started at D's solution can stop at once (the gradient z adds is below tol),
# which shrinks small contributions to exactly 0. Measured on digits_binary with
# LogisticRegression(lbfgs), k = 200: the solver error of Δ has sd 1.9e-4 for cold fits at
# tol=1e-4 and about 1e-6 at tol=1e-6, against an sd of Δ itself of 1.5e-3; a tenth of tol
# keeps the warm fits' error well under the cold fits' (which the independent design has).
_WARM_TOL_FACTOR = 0.1
# Convex learners whose warm start reaches the same optimum as a cold fit. Others (MLP, SGD)
# would turn "fit D ∪ {z}" into "keep training D's model", a different quantity, so
# warm_start="auto" leaves them cold.
_CONVEX_WARM = (
    "LogisticRegression", "ElasticNet", "Lasso", "PoissonRegressor", "GammaRegressor",
    "TweedieRegressor", "HuberRegressor",
)


# ---------------------------------------------------------------------------- context
@dataclass
class _Context:
    """Everything a worker needs; scattered once per Dask worker."""

    estimator: Any
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    scorer: Callable
    k_min: int
    k_max: int
    entropy: int
    class_members: list[np.ndarray] | None  # training indices per class (stratified)
    class_of: np.ndarray | None  # class position of each training point
    class_counts: np.ndarray | None  # (k_max - k_min + 1, n_classes) counts in D per k
    k_design: str  # "uniform" or "loguniform"
    k_pmf: np.ndarray  # target probability of each size k_min..k_max of a point's observations
    warm_start: bool  # resolved: warm-start the D ∪ {z} fits of the shared design
    seed_learner: bool  # set the learner's random_state per observation / base
    exact_update: bool


@dataclass
class _TaskResult:
    task_id: int
    frame: pd.DataFrame
    failures: dict[str, Any] = field(default_factory=dict)
    timing: dict[str, float] = field(default_factory=dict)


def _observation_seed(entropy: int, *key: int) -> int:
    """A 63-bit seed for one observation or base set, independent of how work is split."""
    ss = np.random.SeedSequence(entropy, spawn_key=tuple(int(k) for k in key))
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def stratified_counts(k: int, class_sizes: np.ndarray) -> np.ndarray:
    """How many points of each class a class-stratified base set of size ``k`` holds.

    Each class gets its pool proportion of ``k``, rounded; what rounding leaves over (or
    takes too much) goes to the largest class, as in the paper.

    Examples
    --------
    >>> stratified_counts(10, np.array([50, 30, 20])).tolist()
    [5, 3, 2]
    >>> stratified_counts(7, np.array([50, 30, 20])).tolist()
    [4, 2, 1]
    """
    sizes = np.asarray(class_sizes, dtype=float)
    counts = np.rint(k * sizes / sizes.sum()).astype(np.int64)
    counts[int(np.argmax(sizes))] += k - int(counts.sum())
    return counts


def _draw_base(ctx: _Context, rng: np.random.Generator, k: int, exclude: int | None) -> np.ndarray:
    """Indices of a base set of size k (class-stratified when ctx says so), never ``exclude``."""
    n = ctx.X_train.shape[0]
    if ctx.class_members is None:
        if exclude is None:
            return rng.choice(n, size=k, replace=False)
        # Draw from 0..n-2 and shift the indices at or above z: uniform over the pool without z.
        d = rng.choice(n - 1, size=k, replace=False)
        return d + (d >= exclude)
    counts = ctx.class_counts[k - ctx.k_min]
    parts = []
    for c, members in enumerate(ctx.class_members):
        if exclude is not None and ctx.class_of[exclude] == c:
            members = members[members != exclude]
        parts.append(rng.choice(members, size=counts[c], replace=False))
    return np.concatenate(parts)


# ---------------------------------------------------------------------------- fitting
class _FitError(Exception):
    """A learner fit (or its scoring) that did not give a finite utility."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class _Meter:
    """Accumulates fit / score time and failure counts within one task."""

    def __init__(self):
        self.fit_s = 0.0
        self.score_s = 0.0
        self.n_fits = 0
        self.not_converged = 0
        self.reasons: Counter[str] = Counter()
        self.examples: list[str] = []

    def fail(self, err: _FitError) -> None:
        self.reasons[err.reason] += 1
        if len(self.examples) < 3:
            self.examples.append(f"{err.reason}: {err}"[:300])

    def fit(self, est, X, y):
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", ConvergenceWarning)
                est.fit(X, y)
        except Exception as exc:  # any learner error is a counted failure, never a number
            raise _FitError(type(exc).__name__, str(exc)) from None
        finally:
            self.fit_s += time.perf_counter() - t0
            self.n_fits += 1
        if any(issubclass(w.category, ConvergenceWarning) for w in caught):
            self.not_converged += 1
        return est

    def score(self, ctx: _Context, est) -> float:
        t0 = time.perf_counter()
        try:
            value = float(ctx.scorer(est, ctx.X_val, ctx.y_val))
        except Exception as exc:
            raise _FitError(f"score:{type(exc).__name__}", str(exc)) from None
        finally:
            self.score_s += time.perf_counter() - t0
        if not np.isfinite(value):
            raise _FitError("non-finite score", f"the scorer returned {value}")
        return value


def _learner(ctx: _Context, learner_seed: int, *, tight: bool = False):
    """A fresh, unfitted copy of the learner for one fit.

    It is a deep copy of one clone made per process: the same fresh estimator ``clone`` gives,
    at a tenth of the cost (sklearn's clone and set_params inspect signatures every call,
    ~150 µs, a measurable share of a sub-millisecond Ridge fit). The parameters below are
    top-level constructor parameters (checked in sample_contributions), so setting the
    attribute is what set_params would do.
    """
    template = ctx.__dict__.get("_template")
    if template is None:
        template = ctx.__dict__["_template"] = clone(ctx.estimator)
    est = copy.deepcopy(template)
    if ctx.seed_learner:
        # Both fits of an observation (all fits of a base) share the learner's seed: common
        # random numbers make Δ less noisy, and the table reproducible.
        est.random_state = learner_seed
    if tight:
        est.tol = template.tol * _WARM_TOL_FACTOR
    return est


def _utility(ctx, meter, est, idx) -> tuple[Any, float]:
    est = meter.fit(est, ctx.X_train[idx], ctx.y_train[idx])
    return est, meter.score(ctx, est)


# ------------------------------------------------------------ exact rank-one updates
def _supports_exact_update(est, k_min: int, n_features: int, y) -> bool:
    """Ridge / LinearRegression / binary L2 LogisticRegression: exact updates apply."""
    p = est.get_params()
    if type(est) is LogisticRegression:
        return (
            np.unique(y).size == 2
            and p["penalty"] in ("deprecated", "l2")
            and p["l1_ratio"] in (None, 0, 0.0)
            and p["solver"] in ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga")
            and p["class_weight"] is None
            and not p["dual"]
            and np.isfinite(p["C"]) and p["C"] > 0
            # A loose tol or a small max_iter asks for a deliberately rough fit, which the
            # exact optimum would not honour: keep sklearn's fits then.
            and p["tol"] <= 1e-3 and p["max_iter"] >= 100
        )
    if type(est) not in (Ridge, LinearRegression):
        return False
    if p.get("positive", False):
        return False
    if isinstance(est, Ridge):
        alpha = np.asarray(p["alpha"])
        return alpha.ndim == 0 and p["solver"] in ("auto", "cholesky") and float(alpha) > 0
    # Plain least squares is only unique with more points than coefficients; below that
    # sklearn's minimum-norm answer (with a centred intercept) is not what pinv would give.
    return k_min > n_features + 1


class _NormalEquations:
    """Least squares with an unpenalized intercept, kept as (A⁻¹, b) so a point can be added
    by Sherman-Morrison in O(p²) instead of refitting in O(k p²).

    With features augmented by a column of ones, A = XᵀX + λ·diag(1, …, 1, 0) and b = Xᵀy;
    this is exactly the problem Ridge(fit_intercept=True) solves by centring.
    """

    def __init__(self, X, y, alpha: float, fit_intercept: bool):
        self.fit_intercept = fit_intercept
        Xa = np.hstack([X, np.ones((X.shape[0], 1))]) if fit_intercept else X
        A = Xa.T @ Xa
        pen = np.full(Xa.shape[1], alpha)
        if fit_intercept:
            pen[-1] = 0.0
        A[np.diag_indices_from(A)] += pen
        # pinv, not inv: plain least squares on k < p points is singular; pinv then gives the
        # minimum-norm solution. Ridge's A is positive definite and pinv equals the inverse.
        self.A_inv = np.linalg.pinv(A, hermitian=True)
        self.b = Xa.T @ y

    def coef_with(self, x, y_z):
        xa = np.append(x, 1.0) if self.fit_intercept else x
        Ax = self.A_inv @ xa
        A_inv = self.A_inv - np.outer(Ax, Ax) / (1.0 + xa @ Ax)
        return A_inv @ (self.b + y_z * xa)

    def coef(self):
        return self.A_inv @ self.b

    def as_estimator(self, est, w):
        est.coef_ = w[:-1] if self.fit_intercept else w
        est.intercept_ = float(w[-1]) if self.fit_intercept else 0.0
        est.n_features_in_ = est.coef_.shape[0]
        return est


class _LogisticNewton:
    """Binary L2 logistic regression solved by Newton's method to near machine precision.

    It minimizes exactly sklearn's objective, C·Σ log(1 + exp(−s_i (x_iᵀw + b))) + ½‖w‖²
    (intercept unpenalized), so its answer is the optimum sklearn's solvers approach. D is
    solved from zero; D ∪ {z} starts from D's optimum, one point away, and typically needs 2-3
    Newton steps (each O(k p²)) instead of a full quasi-Newton run plus sklearn's per-fit
    overhead.
    """

    # Stop when the largest gradient entry of the mean-scaled objective (sklearn's scale for
    # tol) is below this: 1e-4 is sklearn's default tol, so these solutions are far tighter.
    _TOL = 1e-10
    _MAX_ITER = 100

    def __init__(self, X, y, C: float, fit_intercept: bool, classes: np.ndarray):
        self.C = C
        self.fit_intercept = fit_intercept
        self.classes = classes
        self.X = self._augment(X)
        self.t = (y == classes[1]).astype(float)
        self.w = self._solve(self.X, self.t, np.zeros(self.X.shape[1]))

    def _augment(self, X):
        return np.hstack([X, np.ones((X.shape[0], 1))]) if self.fit_intercept else np.asarray(X, float)

    def _penalty(self, w):
        pen = w.copy()
        if self.fit_intercept:
            pen[-1] = 0.0
        return pen

    def _objective(self, X, t, w):
        z = X @ w
        return self.C * float(np.sum(np.logaddexp(0.0, z) - t * z)) + 0.5 * float(self._penalty(w) @ w)

    def _solve(self, X, t, w):
        reg = np.full(X.shape[1], 1.0 / self.C)
        if self.fit_intercept:
            reg[-1] = 0.0
        f = self._objective(X, t, w)
        for _ in range(self._MAX_ITER):
            p = expit(X @ w)
            grad = X.T @ (p - t) + self._penalty(w) / self.C
            if np.max(np.abs(grad)) / X.shape[0] < self._TOL:
                return w
            H = (X.T * (p * (1 - p))) @ X
            H[np.diag_indices_from(H)] += reg
            step = np.linalg.solve(H, grad)
            # Backtracking keeps Newton monotone far from the optimum (it rarely triggers).
            lr = 1.0
            while lr > 1e-8:
                w_new = w - lr * step
                f_new = self._objective(X, t, w_new)
                if f_new <= f:
                    break
                lr *= 0.5
            else:
                return w  # no decrease possible: at the optimum to rounding
            w, f = w_new, f_new
        raise _FitError("not converged", f"Newton did not converge in {self._MAX_ITER} steps")

    def coef(self):
        return self.w

    def coef_with(self, x, y_z):
        X = np.vstack([self.X, self._augment(x[None, :])])
        t = np.append(self.t, float(y_z == self.classes[1]))
        return self._solve(X, t, self.w.copy())

    def as_estimator(self, est, w):
        est.coef_ = (w[:-1] if self.fit_intercept else w)[None, :]
        est.intercept_ = np.array([w[-1] if self.fit_intercept else 0.0])
        est.classes_ = self.classes
        est.n_features_in_ = est.coef_.shape[1]
        est.n_iter_ = np.array([0], dtype=np.int32)
        return est


def _timed_exact(meter: _Meter, fn, *args):
    """Run an exact-update computation as a counted, timed "fit"; errors become failures."""
    t0 = time.perf_counter()
    try:
        return fn(*args)
    except _FitError:
        raise
    except Exception as exc:  # e.g. a singular system
        raise _FitError(type(exc).__name__, str(exc)) from None
    finally:
        meter.fit_s += time.perf_counter() - t0
        meter.n_fits += 1


def _exact_solver(ctx: _Context, base: np.ndarray):
    p = ctx.estimator.get_params()
    X, y = ctx.X_train[base], ctx.y_train[base]
    if type(ctx.estimator) is LogisticRegression:
        classes = np.unique(ctx.y_train)
        if np.unique(y).size < 2:
            raise _FitError("ValueError", "the base set holds a single class")
        return _LogisticNewton(X, y, float(p["C"]), p["fit_intercept"], classes)
    return _NormalEquations(X, y, float(p.get("alpha", 0.0)), p["fit_intercept"])


# ---------------------------------------------------------------------------- tasks
def _run_independent(ctx: _Context, task: dict, meter: _Meter) -> list[dict]:
    rows = []
    for point, j in task["obs"]:
        seed = _observation_seed(ctx.entropy, _SEED_INDEPENDENT, point, j)
        rng = np.random.default_rng(seed)
        if ctx.k_design == "uniform":
            k = int(rng.integers(ctx.k_min, ctx.k_max + 1))
        else:
            k = int(rng.choice(np.arange(ctx.k_min, ctx.k_max + 1), p=ctx.k_pmf))
        base = _draw_base(ctx, rng, k, exclude=point)
        learner_seed = int(rng.integers(2**31 - 1))
        try:
            _, u_d = _utility(ctx, meter, _learner(ctx, learner_seed), base)
            _, u_dz = _utility(ctx, meter, _learner(ctx, learner_seed), np.append(base, point))
        except _FitError as err:
            meter.fail(err)
            continue
        rows.append({"point": point, "k": k, "delta": u_dz - u_d, "base": -1, "seed": seed})
    return rows


def _run_shared(ctx: _Context, task: dict, meter: _Meter) -> list[dict]:
    base, k, seed = task["base_set"], task["k"], task["seed"]
    points = task["points"]
    exact = None
    try:
        if ctx.exact_update:
            # D's solution from the same normal equations that the updates start from, so
            # both utilities of Δ come from one numerical route.
            exact = _timed_exact(meter, _exact_solver, ctx, base)
            est_d = exact.as_estimator(clone(ctx.estimator), exact.coef())
            u_d = meter.score(ctx, est_d)
        else:
            learner = _learner(ctx, task["learner_seed"], tight=ctx.warm_start)
            est_d, u_d = _utility(ctx, meter, learner, base)
    except _FitError as err:
        meter.fail(err)
        meter.reasons["observations lost with their base set"] += len(points)
        return []
    rows = []
    for point in points:
        try:
            if exact is not None:
                w = _timed_exact(meter, exact.coef_with, ctx.X_train[point], ctx.y_train[point])
                # One estimator object serves every point of the base: only its solution
                # changes, and cloning per point cost more than the update itself.
                est = exact.as_estimator(est_d, w)
                u_dz = meter.score(ctx, est)
            else:
                if ctx.warm_start:
                    # A copy of D's fitted learner continues from D's solution.
                    est = copy.deepcopy(est_d).set_params(warm_start=True)
                else:
                    est = _learner(ctx, task["learner_seed"])
                _, u_dz = _utility(ctx, meter, est, np.append(base, point))
        except _FitError as err:
            meter.fail(err)
            continue
        rows.append({"point": point, "k": k, "delta": u_dz - u_d, "base": task["base"], "seed": seed})
    if exact is not None:
        exact.as_estimator(est_d, exact.coef())  # leave D's solution in place (tidiness)
    return rows


def _run_task(task: dict, ctx: _Context) -> _TaskResult:
    """Run one task (in a worker); returns its rows, failures and timings."""
    t0, c0 = time.perf_counter(), time.process_time()
    meter = _Meter()
    runner = _run_shared if task["kind"] == "shared" else _run_independent
    rows = runner(ctx, task, meter)
    frame = pd.DataFrame(rows, columns=["point", "k", "delta", "base", "seed"])
    failures = {
        "fits_failed": int(sum(v for r, v in meter.reasons.items() if not r.startswith("observations lost"))),
        "observations_failed": int(task["n_obs"] - len(frame)),
        "not_converged": meter.not_converged,
        "by_reason": dict(meter.reasons),
        "examples": meter.examples,
    }
    timing = {
        "fit_s": meter.fit_s,
        "score_s": meter.score_s,
        "task_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "n_fits": meter.n_fits,
    }
    return _TaskResult(task["id"], frame, failures, timing)


def _k_pmf(k_design: str, k_min: int, k_max: int) -> np.ndarray:
    """Target probabilities of the sizes k_min..k_max: flat, or ∝ 1/k for log-uniform."""
    ks = np.arange(k_min, k_max + 1, dtype=float)
    w = np.ones_like(ks) if k_design == "uniform" else 1.0 / ks
    return w / w.sum()


def _plan_independent(points: np.ndarray, m: int) -> list[dict]:
    tasks = []
    for point in points:
        for start in range(0, m, _INDEPENDENT_BLOCK):
            obs = [(int(point), j) for j in range(start, min(start + _INDEPENDENT_BLOCK, m))]
            tasks.append({"id": len(tasks), "kind": "independent", "obs": obs, "n_obs": len(obs)})
    return tasks


def _shared_size_weights(ctx: _Context, points: np.ndarray) -> np.ndarray:
    """Probabilities of base-set sizes so that a point's observations have the target k law.

    A point is measured on a base only when it is not in D, which happens with probability
    1 − (its class's count in D)/(class size): larger bases skip more points. Drawing a base's
    size with weight target(k) / P(z ∉ D | k), averaged over the measured points, undoes that
    tilt, so the k of each point's observations follows ``ctx.k_pmf`` as in the independent
    design (exactly without stratification; up to class-count rounding, < 1/(2·class size),
    with it).
    """
    ks = np.arange(ctx.k_min, ctx.k_max + 1)
    n = ctx.X_train.shape[0]
    if ctx.class_members is None:
        keep = 1.0 - ks / n
    else:
        sizes = np.array([len(m) for m in ctx.class_members], dtype=float)
        share = np.bincount(ctx.class_of[points], minlength=len(sizes)) / len(points)
        keep = (1.0 - ctx.class_counts / sizes) @ share
    w = ctx.k_pmf / keep
    return w / w.sum()


def _plan_shared(ctx: _Context, points: np.ndarray, m: int, batch_size: int) -> list[dict]:
    """Draw base sets until every point has ``m`` observations (cheap: no fits here).

    Points are cut into batches of ``batch_size`` in the given order; batch g draws bases
    g.0, g.1, ... each with its own seed, and a base serves every point of the batch that
    still needs observations and is not in it. Base sizes are spread over the range (see
    ``_GOLDEN``). The plan depends only on the arguments.
    """
    ks = np.arange(ctx.k_min, ctx.k_max + 1)
    cdf = np.cumsum(_shared_size_weights(ctx, points))
    cdf /= cdf[-1]
    tasks = []
    for g, start in enumerate(range(0, len(points), batch_size)):
        batch = points[start : start + batch_size]
        need = np.full(len(batch), m)
        j = 0
        while need.any():
            seed = _observation_seed(ctx.entropy, _SEED_SHARED, g, j)
            rng = np.random.default_rng(seed)
            # One uniform per base, as Generator.choice(ks, p=...) would draw: base 0's size
            # (and every base of a one-size range) is what i.i.d. sizes would give.
            u = rng.random()
            if j == 0:
                u_first = u
            else:
                u = (u_first + j * _GOLDEN) % 1.0
            k = int(ks[min(np.searchsorted(cdf, u, side="right"), ks.size - 1)])
            base = _draw_base(ctx, rng, k, exclude=None)
            learner_seed = int(rng.integers(2**31 - 1))
            take = (need > 0) & ~np.isin(batch, base)
            j += 1
            if not take.any():
                continue
            need[take] -= 1
            tasks.append({
                "id": len(tasks), "kind": "shared", "base": len(tasks), "seed": seed, "k": k,
                "base_set": base.astype(np.int64), "learner_seed": learner_seed,
                "points": batch[take].astype(np.int64).tolist(), "n_obs": int(take.sum()),
            })
    return tasks


# ---------------------------------------------------------------------------- input checks
def _check_data(X, y, xname: str, yname: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        X = check_array(X, dtype="numeric", ensure_all_finite=True, input_name=xname)
    except ValueError as exc:
        raise ValueError(f"{xname}: {exc}") from None
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{yname} must be 1-D; got shape {y.shape}")
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        row = int(np.flatnonzero(~np.isfinite(y))[0])
        raise ValueError(f"{yname} must be finite; row {row} has {y[row]!r}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{xname} and {yname} must have the same length; got {X.shape[0]} and {y.shape[0]}"
        )
    return X, y


def _check_points(points, n: int) -> np.ndarray:
    if points is None:
        return np.arange(n)
    arr = np.asarray(points)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"points must be a non-empty 1-D sequence of training indices; got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise ValueError(f"points must be integers; got dtype {arr.dtype}")
    bad = (arr < 0) | (arr >= n)
    if bad.any():
        raise ValueError(
            f"points must lie in [0, {n - 1}] (the training pool); position {int(np.flatnonzero(bad)[0])} "
            f"has {int(arr[bad][0])}"
        )
    uniq, counts = np.unique(arr, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"points must not repeat; {int(uniq[counts > 1][0])} appears {int(counts.max())} times")
    return arr.astype(np.int64)


class _NegLogLoss:
    """sklearn's "neg_log_loss" scorer, without its per-call input checks.

    sklearn's scorer re-derives the target type and one-hot encodes y on every call, which
    took as long as the learner fit itself here (6-13 ms of a ~15 ms LogisticRegression fit,
    profiled on digits_binary). When the learner knows exactly the validation labels, this
    computes the same number (probabilities clipped to [eps, 1 − eps], mean log-likelihood of
    the true class); otherwise it defers to sklearn's scorer, which raises or copes as usual.
    """

    def __init__(self):
        self.fallback = get_scorer("neg_log_loss")

    def __call__(self, est, X, y) -> float:
        classes = getattr(est, "classes_", None)
        labels = np.unique(y)
        if classes is None or len(classes) != len(labels) or not np.array_equal(classes, labels):
            return self.fallback(est, X, y)
        proba = est.predict_proba(X)
        eps = np.finfo(proba.dtype).eps
        p_true = np.clip(proba[np.arange(len(y)), np.searchsorted(classes, y)], eps, 1 - eps)
        return float(np.mean(np.log(p_true)))


class _NegMeanSquaredError:
    """sklearn's "neg_mean_squared_error" for a 1-D target, without per-call input checks
    (they cost more than a Ridge rank-one update); the same number, −mean((y − ŷ)²)."""

    def __init__(self):
        self.fallback = get_scorer("neg_mean_squared_error")

    def __call__(self, est, X, y) -> float:
        pred = est.predict(X)
        if pred.shape != y.shape:
            return self.fallback(est, X, y)
        return -float(np.average((y - pred) ** 2))


def _scorer(scoring) -> tuple[Callable, str]:
    if scoring == "neg_log_loss":
        return _NegLogLoss(), scoring
    if scoring == "neg_mean_squared_error":
        return _NegMeanSquaredError(), scoring
    if isinstance(scoring, str):
        try:
            return get_scorer(scoring), scoring
        except ValueError:
            raise ValueError(
                f"scoring={scoring!r} is not a scikit-learn scorer name; see "
                "sklearn.metrics.get_scorer_names(), or pass a callable (estimator, X, y) -> float"
            ) from None
    if callable(scoring):
        name = getattr(scoring, "__qualname__", None) or type(scoring).__qualname__
        return scoring, f"{getattr(scoring, '__module__', '')}.{name}"
    raise ValueError(f"scoring must be a scorer name or a callable (estimator, X, y) -> float; got {scoring!r}")


def _entropy(random_state) -> int | None:
    if random_state is None:
        return None
    if isinstance(random_state, np.random.SeedSequence):
        ent = random_state.entropy
        if random_state.spawn_key:
            # Fold the spawn key in so children of one SeedSequence give different tables.
            ent = int(random_state.generate_state(4, np.uint64).astype(object).dot([1, 2**64, 2**128, 2**192]))
        return int(ent)
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0; got {random_state}")
        return int(random_state)
    raise ValueError(
        f"random_state must be None, an int, a SeedSequence or a numpy Generator; got {random_state!r}"
    )


def _resolve_warm_start(warm_start, estimator, design: str) -> bool:
    if warm_start not in ("auto", True, False):
        raise ValueError(f"warm_start must be 'auto', True or False; got {warm_start!r}")
    if design != "shared" or warm_start is False:
        return False
    params = estimator.get_params()
    if "warm_start" not in params:
        if warm_start is True:
            raise ValueError(f"warm_start=True but {type(estimator).__name__} has no warm_start parameter")
        return False
    if warm_start == "auto" and type(estimator).__name__ not in _CONVEX_WARM:
        return False
    if not isinstance(params.get("tol"), numbers.Real):
        # Without a tol to tighten, a warm start could stop at D's solution: refit instead.
        return False
    return True


def _learner_description(estimator) -> str:
    """A stable, complete description of the learner (a store compares it between runs)."""
    params = estimator.get_params(deep=True)
    shown = {k: (repr(v) if not isinstance(v, (int, float, str, bool, type(None))) else v)
             for k, v in sorted(params.items())}
    return f"{type(estimator).__module__}.{type(estimator).__qualname__}({json.dumps(shown, sort_keys=True)})"


# ---------------------------------------------------------------------------- store
class _Store:
    """A directory of finished task chunks plus a manifest of the arguments."""

    def __init__(self, path, manifest: dict):
        self.path = Path(path)
        self.chunks = self.path / "chunks"
        manifest_path = self.path / "manifest.json"
        if manifest_path.exists():
            stored = json.loads(manifest_path.read_text())
            self._compare(stored, manifest)
            self.manifest = stored
        else:
            if self.path.exists() and any(self.path.iterdir()):
                raise ValueError(
                    f"store={str(self.path)!r} exists, is not empty and has no manifest.json: "
                    "it is not a bayescale store; pick an empty or new directory"
                )
            self.chunks.mkdir(parents=True, exist_ok=True)
            _atomic_write(manifest_path, json.dumps(manifest, indent=1, sort_keys=True))
            self.manifest = manifest
        self.chunks.mkdir(parents=True, exist_ok=True)

    def _compare(self, stored: dict, current: dict) -> None:
        diffs = []
        for key in sorted(set(stored) | set(current)):
            if key == "entropy" and current.get("random_state") is None:
                continue  # random_state=None resumes with the store's own entropy
            if stored.get(key) != current.get(key):
                diffs.append(f"{key}: store has {_short(stored.get(key))}, now {_short(current.get(key))}")
        if diffs:
            raise ValueError(
                f"store={str(self.path)!r} holds a run with different arguments; use a new "
                "directory or the same arguments. Differences: " + "; ".join(diffs)
            )

    def chunk_path(self, task_id: int) -> Path:
        return self.chunks / f"task-{task_id:07d}.parquet"

    def done(self) -> set[int]:
        return {int(p.stem.split("-")[1]) for p in self.chunks.glob("task-*.parquet")}

    def write(self, result: _TaskResult) -> None:
        meta = {"task": result.task_id, "failures": result.failures, "timing": result.timing}
        Contributions(result.frame, meta).to_parquet(self.chunk_path(result.task_id))

    def read(self, task_id: int) -> _TaskResult:
        c = Contributions.read_parquet(self.chunk_path(task_id))
        return _TaskResult(task_id, c.data, c.metadata.get("failures", {}), c.metadata.get("timing", {}))


def _short(value) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) < 120 else text[:117] + "..."


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# ---------------------------------------------------------------------------- execution
def _execute(tasks: list[dict], ctx: _Context, n_jobs: int, backend, dask_client) -> Iterator[_TaskResult]:
    """Yield task results in completion order on the chosen backend."""
    if backend == "dask" or _is_dask_client(backend):
        yield from _execute_dask(tasks, ctx, backend if _is_dask_client(backend) else dask_client)
        return
    if n_jobs == 1 and backend in (None, "sequential"):
        for task in tasks:
            yield _run_task(task, ctx)
        return
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_jobs, backend=backend, return_as="generator_unordered")
    yield from parallel(delayed(_run_task)(task, ctx) for task in tasks)


def _is_dask_client(obj) -> bool:
    if obj is None or isinstance(obj, str):
        return False  # without importing distributed, which is slow to import
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - dask is an optional extra
        return False
    return isinstance(obj, Client)


def _execute_dask(tasks, ctx, client) -> Iterator[_TaskResult]:
    try:
        from distributed import Client, as_completed, get_client
    except ImportError:  # pragma: no cover
        raise ValueError("backend='dask' needs dask.distributed: pip install 'bayescale[dask]'") from None
    own = False
    if client is None:
        try:
            client = get_client()
        except ValueError:
            raise ValueError(
                "backend='dask' needs a cluster: pass dask_client=Client(...) or a scheduler "
                "address such as 'tcp://10.0.0.5:8786', or create a Client first"
            ) from None
    elif isinstance(client, str):
        client, own = Client(client), True
    try:
        # The data travel to each worker once; every task then refers to that copy.
        ctx_future = client.scatter(ctx, broadcast=True, hash=False)
        futures = [client.submit(_run_task, task, ctx_future, pure=False) for task in tasks]
        for future in as_completed(futures):
            yield future.result()
            future.release()
    finally:
        if own:
            client.close()


def _merge_failures(results: list[_TaskResult]) -> dict[str, Any]:
    total: dict[str, Any] = {"fits_failed": 0, "observations_failed": 0, "not_converged": 0,
                             "by_reason": Counter(), "examples": []}
    for r in results:
        f = r.failures
        for key in ("fits_failed", "observations_failed", "not_converged"):
            total[key] += int(f.get(key, 0))
        total["by_reason"].update(f.get("by_reason", {}))
        total["examples"].extend(f.get("examples", [])[: max(0, 5 - len(total["examples"]))])
    total["by_reason"] = dict(total["by_reason"])
    return total


# ---------------------------------------------------------------------------- public API
def sample_contributions(
    estimator,
    X_train,
    y_train,
    X_val,
    y_val,
    *,
    points=None,
    k_range: tuple[int, int] = (100, 1000),
    samples_per_point: int = 50,
    k_design: str = "uniform",
    scoring: str | Callable = "neg_log_loss",
    stratify: bool = True,
    design: str = "independent",
    n_jobs: int | None = 1,
    backend=None,
    random_state=None,
    store: str | os.PathLike | None = None,
    progress: bool = True,
    batch_size: int = 64,
    warm_start: bool | str = "auto",
    exact_updates: bool = True,
    dask_client=None,
) -> Contributions:
    """Measure noisy marginal contributions Δ(z, D) = U(D ∪ {z}) − U(D) of training points.

    Parameters
    ----------
    estimator : scikit-learn estimator
        Any object with ``fit``; it is cloned for every fit. When it has a ``random_state``
        parameter left at ``None``, each observation (independent) or base set (shared) gets
        its own derived seed, shared by the fits being differenced.
    X_train, y_train : array_like
        The training pool. Base sets D are drawn from it and ``points`` index into it.
    X_val, y_val : array_like
        The validation split on which the utility U is computed.
    points : sequence of int, optional
        Training indices to measure (default: all), without repeats.
    k_range : (int, int), default (100, 1000)
        Inclusive range of base-set sizes; needs ``1 <= k_min <= k_max < len(X_train)``.
    samples_per_point : int, default 50
        Observations per point (m), for both designs.
    k_design : {"uniform", "loguniform"}, default "uniform"
        Distribution of the sizes k of each point's observations on ``k_range``: uniform (the
        paper's protocol) or log-uniform (P(k) ∝ 1/k), which spends more observations at
        small k, where contributions are largest and the law's curvature shows. The model
        conditions on k, so either gives the same ψ_k; :func:`bayescale.baselines.monte_carlo`
        reweights log-uniform observations to the uniform average.
    scoring : str or callable, default "neg_log_loss"
        A :func:`sklearn.metrics.get_scorer` name or a callable ``(estimator, X, y) -> float``,
        higher is better.
    stratify : bool, default True
        Draw D class-stratified (each class in its pool proportion, rounded, the remainder to
        the largest class). Applies to classification targets; a continuous ``y_train`` is
        sampled uniformly (the metadata records ``stratify: False``).
    design : {"independent", "shared"}, default "independent"
        The paper's protocol (two fits per observation) or one base set per batch of points
        (see the module docstring). Both estimate the same ψ_k, and both give exactly
        ``samples_per_point`` observations per point (minus failed fits): the shared design
        keeps drawing base sets until every point has its quota, draws their sizes so that
        each point's k follows ``k_design``, and spreads consecutive bases' sizes over the
        range (quantiles frac(u + j·0.618...)) so that the first few bases do not all miss
        one end of it.
    n_jobs : int, default 1
        Parallel workers for the joblib backends (-1: all cores). The table does not depend
        on it.
    backend : None, "loky", "threading", "multiprocessing", "dask" or a dask Client
        Where tasks run. ``"dask"`` uses ``dask_client`` (a ``distributed.Client`` or a
        scheduler address) or else the current default client.
    random_state : None, int, SeedSequence or Generator
        Seeds everything; the same value gives the same table for any ``n_jobs`` / backend.
    store : path, optional
        Directory to save finished tasks in (one parquet file each, written atomically). A
        rerun with the same arguments resumes; different arguments raise a ValueError naming
        them. With ``random_state=None`` a rerun reuses the store's recorded seed.
    progress : bool, default True
        Show a tqdm progress bar of observations.
    batch_size : int, default 64
        Shared design: points per batch (bases are drawn per batch). Larger batches spread
        D's fit over more observations.
    warm_start : "auto", True or False, default "auto"
        Shared design: fit D ∪ {z} starting from a copy of D's fitted learner. ``"auto"``
        does so for convex learners with a ``warm_start`` parameter (LogisticRegression,
        ElasticNet, Lasso, the GLM regressors, HuberRegressor), which reach the same optimum
        faster; both D's fit and the warm fits then stop at a tenth of the learner's ``tol``
        so that a warm fit cannot stop at D's own solution. ``True`` forces it for any learner
        with ``warm_start`` (for an MLP or SGD that means fine-tuning D's model: a different,
        biased quantity); ``False`` refits from scratch.
    exact_updates : bool, default True
        Shared design: skip sklearn's fit of D ∪ {z} where its optimum can be computed
        directly from D's. ``Ridge`` (solver "auto"/"cholesky") and ``LinearRegression``: a
        rank-one update of D's normal equations (exact up to rounding). Binary L2
        ``LogisticRegression`` (lbfgs / newton / sag solvers, ``tol <= 1e-3``,
        ``max_iter >= 100``): Newton steps on sklearn's objective from D's optimum, to a
        gradient of 1e-10, so D and D ∪ {z} are both solved more tightly than sklearn's
        default tol. Other learners are fitted as usual.
    dask_client : distributed.Client or str, optional
        The cluster for ``backend="dask"``.

    Returns
    -------
    Contributions
        Columns ``point``, ``k``, ``delta``, ``base`` (base-set id; -1 for the independent
        design, where every observation has its own D) and ``seed`` (the observation's or
        base's seed). The metadata holds the learner, scorer, k range, design, random state
        and entropy, the library version, data fingerprints, ``failures`` (failed fits are
        counted there and their observations left out, never set to 0) and timings.

    Raises
    ------
    ValueError
        On bad input, before any learner is fitted: non-finite or empty data, mismatched
        lengths, a bad ``k_range`` / ``points`` / ``samples_per_point``, an unknown scorer,
        an estimator without ``fit``, a class too small to stratify, or a store holding a
        run with different arguments.

    Examples
    --------
    >>> import bayescale as bs
    >>> from sklearn.linear_model import LogisticRegression
    >>> ds = bs.datasets.load_dataset("breast_cancer")
    >>> c = bs.sample_contributions(LogisticRegression(), ds.X_train, ds.y_train,
    ...         ds.X_val, ds.y_val, points=[0, 1], k_range=(20, 40), samples_per_point=3,
    ...         design="shared", random_state=0, progress=False)
    >>> len(c), c.metadata["design"]
    (6, 'shared')
    """
    t_start = time.perf_counter()
    from . import __version__

    if not hasattr(estimator, "fit") or not hasattr(estimator, "get_params"):
        raise ValueError(
            f"estimator must be a scikit-learn estimator with fit and get_params; got {type(estimator).__name__}"
        )
    X_train, y_train = _check_data(X_train, y_train, "X_train", "y_train")
    X_val, y_val = _check_data(X_val, y_val, "X_val", "y_val")
    if X_val.shape[1] != X_train.shape[1]:
        raise ValueError(
            f"X_val has {X_val.shape[1]} features but X_train has {X_train.shape[1]}"
        )
    n = X_train.shape[0]
    k_min, k_max = check_k_range(k_range)
    if k_max >= n:
        raise ValueError(
            f"k_range[1] (k_max) must be < the training pool size {n} (D never holds the point "
            f"itself); got {k_max}"
        )
    idx = _check_points(points, n)
    m = check_int(samples_per_point, "samples_per_point", minimum=1)
    scorer, scorer_name = _scorer(scoring)
    if design not in DESIGNS:
        raise ValueError(f"design must be one of {DESIGNS}; got {design!r}")
    if k_design not in K_DESIGNS:
        raise ValueError(f"k_design must be one of {K_DESIGNS}; got {k_design!r}")
    if not (backend is None or backend in (*JOBLIB_BACKENDS, "dask") or _is_dask_client(backend)):
        raise ValueError(
            f"backend must be None, one of {(*JOBLIB_BACKENDS, 'dask')} or a dask Client; got {backend!r}"
        )
    if n_jobs is None:
        n_jobs = 1
    n_jobs = check_int(n_jobs, "n_jobs")
    if n_jobs == 0:
        raise ValueError("n_jobs must be a positive number of workers or negative (joblib style: -1 = all cores); got 0")
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    if not isinstance(stratify, (bool, np.bool_)):
        raise ValueError(f"stratify must be True or False; got {stratify!r}")
    entropy = _entropy(random_state)

    # Class-stratified base sets: check every class can be represented at every size.
    class_members = class_of = class_counts = None
    # A regressor's integer-valued y (diabetes) looks "multiclass" to type_of_target: only
    # stratify targets that a classifier (or an untyped learner) treats as classes.
    target = type_of_target(y_train)
    stratified = bool(stratify) and not is_regressor(estimator) and target in ("binary", "multiclass")
    if stratified:
        classes, class_of = np.unique(y_train, return_inverse=True)
        class_members = [np.flatnonzero(class_of == c) for c in range(len(classes))]
        sizes = np.array([len(mm) for mm in class_members])
        class_counts = np.stack([stratified_counts(k, sizes) for k in range(k_min, k_max + 1)])
        short = np.flatnonzero(class_counts[0] < 1)
        if short.size:
            c = short[0]
            raise ValueError(
                f"stratify=True: class {classes[c]!r} has {sizes[c]} of {n} training points, too "
                f"few to appear in a base set of k_min={k_min} (it would get 0); raise k_min or "
                "use stratify=False"
            )
        over = np.argwhere(class_counts > sizes - 1)
        if over.size:
            ki, c = over[0]
            raise ValueError(
                f"stratify=True: class {classes[c]!r} has only {sizes[c]} training points but a "
                f"base set of k={k_min + ki} needs {class_counts[ki, c]} of them besides the "
                "measured point; lower k_range[1] (k_max)"
            )

    est_params = estimator.get_params()
    ctx = _Context(
        estimator=estimator, X_train=X_train, y_train=y_train, X_val=X_val, y_val=y_val,
        scorer=scorer, k_min=k_min, k_max=k_max, entropy=0,
        class_members=class_members, class_of=class_of, class_counts=class_counts,
        k_design=k_design, k_pmf=_k_pmf(k_design, k_min, k_max),
        warm_start=_resolve_warm_start(warm_start, estimator, design),
        seed_learner="random_state" in est_params and est_params["random_state"] is None,
        exact_update=bool(exact_updates) and design == "shared"
        and _supports_exact_update(estimator, k_min, X_train.shape[1], y_train),
    )
    manifest = {
        "layout": _STORE_LAYOUT,
        "learner": _learner_description(estimator),
        "scorer": scorer_name,
        "k_range": [k_min, k_max],
        "samples_per_point": m,
        "design": design,
        "k_design": k_design,
        "stratify": stratified,
        "batch_size": batch_size if design == "shared" else None,
        "warm_start": ctx.warm_start if design == "shared" else None,
        "exact_updates": ctx.exact_update,
        "points": data_fingerprint(idx),
        "n_points": int(idx.size),
        "data_fingerprint": data_fingerprint(X_train, y_train),
        "val_fingerprint": data_fingerprint(X_val, y_val),
        "random_state": None if random_state is None else (
            int(random_state) if isinstance(random_state, numbers.Integral) else entropy
        ),
        "entropy": entropy,
    }
    st = None
    if store is not None:
        if entropy is None:
            entropy = int(np.random.SeedSequence().entropy)
            manifest["entropy"] = entropy
        st = _Store(store, manifest)
        entropy = int(st.manifest["entropy"])
    elif entropy is None:
        entropy = int(np.random.SeedSequence().entropy)
    ctx.entropy = entropy

    tasks = _plan_shared(ctx, idx, m, batch_size) if design == "shared" else _plan_independent(idx, m)
    results: dict[int, _TaskResult] = {}
    if st is not None:
        for task_id in st.done():
            if task_id < len(tasks):
                results[task_id] = st.read(task_id)
    pending = [t for t in tasks if t["id"] not in results]
    n_planned = sum(t["n_obs"] for t in tasks)
    bar = tqdm(total=n_planned, initial=n_planned - sum(t["n_obs"] for t in pending),
               disable=not progress, unit="obs", desc=f"sampling ({design})")
    sizes_by_id = {t["id"]: t["n_obs"] for t in pending}
    # One BLAS thread per fit: parallelism comes from n_jobs / workers, and these fits are
    # small. Measured on the 2-core dev machine under load: a LogisticRegression fit on 26
    # points took 146 ms with the default thread pool and 14 ms with one thread. This covers
    # the in-process and threading backends; loky limits its workers' threads itself and a
    # dask nanny starts workers with OMP/MKL/OPENBLAS_NUM_THREADS=1. (Set once per call: the
    # limiter costs ~4 ms, too much to pay per task.)
    with threadpool_limits(limits=1):
        try:
            for result in _execute(pending, ctx, n_jobs, backend, dask_client):
                if st is not None:
                    st.write(result)
                results[result.task_id] = result
                bar.update(sizes_by_id[result.task_id])
        finally:
            bar.close()

    ordered = [results[t["id"]] for t in tasks]
    frames = [r.frame for r in ordered if len(r.frame)]
    frame = (pd.concat(frames, ignore_index=True) if frames
             else pd.DataFrame(columns=["point", "k", "delta", "base", "seed"]))
    timing = {key: float(sum(r.timing.get(key, 0.0) for r in ordered))
              for key in ("fit_s", "score_s", "task_s", "cpu_s", "n_fits")}
    timing["wall_s"] = time.perf_counter() - t_start
    timing["tasks_run_now"] = len(pending)
    metadata = {
        "learner": repr(estimator),
        "scorer": scorer_name,
        "k_range": [k_min, k_max],
        "design": design,
        "k_design": k_design,
        "samples_per_point": m,
        "stratify": stratified,
        "batch_size": manifest["batch_size"],
        "warm_start": manifest["warm_start"],
        "exact_updates": ctx.exact_update,
        "random_state": manifest["random_state"],
        "entropy": entropy,
        "bayescale_version": __version__,
        "data_fingerprint": manifest["data_fingerprint"],
        "val_fingerprint": manifest["val_fingerprint"],
        "n_planned": n_planned,
        "n_bases": len(tasks) if design == "shared" else n_planned,
        "failures": _merge_failures(ordered),
        "timing": timing,
    }
    return Contributions(frame, metadata)
