"""Choosing training points for a target dataset size, and checking the choice.

:func:`select` ranks candidate points by their posterior ψ at the size the user will train
at (the paper's c/k^α at k = 500 or 5,000), optionally class-balanced and risk-aware, and
reports the expected total gain with an interval. :func:`point_addition` is the paper's
experiment that checks any such score: add the top-scored points to random start sets and
measure how test accuracy and log-loss change.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.metrics import accuracy_score, log_loss
from sklearn.utils import check_array
from sklearn.utils.multiclass import type_of_target

from ._validation import as_generator, check_int
from .valuation import (
    ExtrapolationWarning,
    _check_prob,
    _check_sizes,
    _posterior,
    _psi_draws,
    _summaries,
)

__all__ = ["Selection", "gain_curve", "point_addition", "select"]

_BALANCE = ("equal", "proportional")


# ---------------------------------------------------------------------------------------
# class-balanced top-k (shared by select and point_addition)
# ---------------------------------------------------------------------------------------
def _allocate(counts: np.ndarray, total: int, how: str, next_best: np.ndarray,
              minimum: int = 0) -> tuple[np.ndarray, int]:
    """Split ``total`` picks over classes with ``counts`` available members.

    ``how="equal"`` aims at the same number per class, ``"proportional"`` at the class
    shares. Each class first gets ``minimum`` (capped at its size), then the floor of its
    target; leftover picks go to the largest fractional parts, ties broken by the class
    whose next candidate scores best (``next_best``). Classes too small for their quota pass
    the shortfall on: returns the capped quotas and the number of picks still to place.
    """
    n_cls = counts.size
    base = np.minimum(counts, minimum)
    rest = total - int(base.sum())
    share = np.full(n_cls, 1.0 / n_cls) if how == "equal" else counts / counts.sum()
    target = rest * share
    quota = base + np.floor(target).astype(np.int64)
    leftover = total - int(quota.sum())
    frac = target - np.floor(target)
    order = np.lexsort((-next_best, -frac))  # primary: fractional part, then next score
    quota[order[:leftover]] += 1
    quota = np.minimum(quota, counts)
    short = total - int(quota.sum())
    return quota, short


def _balanced_top(scores: np.ndarray, labels: np.ndarray | None, budget: int,
                  balance: str = "equal", minimum: int = 0) -> np.ndarray:
    """Indices of the ``budget`` best scores, class-balanced when ``labels`` is given.

    Returned in decreasing score order. Within a class the best scores are taken.
    """
    if labels is None:
        return np.argsort(-scores, kind="stable")[:budget]
    classes, inverse = np.unique(labels, return_inverse=True)
    per_class = [np.flatnonzero(inverse == j) for j in range(classes.size)]
    per_class = [idx[np.argsort(-scores[idx], kind="stable")] for idx in per_class]
    counts = np.array([idx.size for idx in per_class])
    first = np.array([scores[idx[0]] for idx in per_class])
    quota, short = _allocate(counts, budget, balance, first, minimum)
    while short > 0:  # hand spare picks one at a time to the class with the best next point
        spare = np.flatnonzero(quota < counts)
        nxt = np.array([scores[per_class[j][quota[j]]] for j in spare])
        quota[spare[np.argmax(nxt)]] += 1
        short -= 1
    chosen = np.concatenate([idx[:q] for idx, q in zip(per_class, quota, strict=True)])
    return chosen[np.argsort(-scores[chosen], kind="stable")]


def _check_balance(balance: str) -> str:
    if balance not in _BALANCE:
        raise ValueError(f"balance must be one of {list(_BALANCE)}; got {balance!r}")
    return balance


# ---------------------------------------------------------------------------------------
# select
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)  # holds arrays: compare fields explicitly
class Selection:
    """The result of :func:`select`.

    Attributes
    ----------
    points : numpy.ndarray
        Chosen point ids, best score first.
    table : pandas.DataFrame
        One row per chosen point: ``point``, ``score`` (what was ranked), ``mean``, ``sd``,
        ``hdi_low``, ``hdi_high`` of ψ at ``at_k``, and ``label`` when labels were given.
    gain_mean, gain_sd, gain_low, gain_high : float
        Posterior mean, sd and HDI (mass ``hdi_prob``) of the expected total gain
        Σ ψ_{at_k} over the chosen points.
    gain_draws : numpy.ndarray
        The posterior draws of that total.
    at_k, risk, q, hdi_prob, budget : settings used.
    """

    points: np.ndarray
    table: pd.DataFrame = field(repr=False)
    gain_mean: float
    gain_sd: float
    gain_low: float
    gain_high: float
    gain_draws: np.ndarray = field(repr=False)
    at_k: float = 0.0
    risk: str = "mean"
    q: float = 0.1
    hdi_prob: float = 0.9
    budget: int = 0

    def __len__(self) -> int:
        return len(self.points)

    def to_frame(self) -> pd.DataFrame:
        """The chosen-points table, with the gain summary and the settings in ``attrs``."""
        df = self.table.copy()
        df.attrs.update(
            gain_mean=self.gain_mean, gain_sd=self.gain_sd, gain_low=self.gain_low,
            gain_high=self.gain_high, hdi_prob=self.hdi_prob, at_k=self.at_k, risk=self.risk,
            q=self.q, budget=self.budget,
        )
        return df


def _candidates_and_labels(post, candidates, labels):
    """Candidate positions (into post.points) and their labels, validated."""
    points = post.points
    if candidates is None:
        cand = points
    else:
        cand = np.atleast_1d(np.asarray(candidates))
        if cand.ndim != 1 or cand.size == 0:
            raise ValueError("candidates must be a non-empty 1-D sequence of point ids")
        if np.unique(cand).size != cand.size:
            raise ValueError("candidates must not repeat a point")
        unknown = np.setdiff1d(cand, points)
        if unknown.size:
            raise ValueError(f"candidates not in the model: {unknown[:10].tolist()}")
    pos = pd.Index(points).get_indexer(cand)

    lab = None
    if labels is not None:
        if isinstance(labels, pd.Series):
            missing = ~np.isin(cand, labels.index)
            if missing.any():
                raise ValueError(
                    f"labels (a Series indexed by point) lacks candidates {cand[missing][:10].tolist()}"
                )
            lab = labels.loc[cand].to_numpy()
        else:
            lab = np.asarray(labels)
            what = "candidates" if candidates is not None else "points in the model"
            if lab.ndim != 1 or lab.shape[0] != cand.size:
                raise ValueError(
                    f"labels must have one entry per {what} ({cand.size}); got shape {lab.shape}"
                )
    return cand, pos, lab


def _check_at_k(at_k) -> float:
    if not isinstance(at_k, numbers.Real) or isinstance(at_k, bool):
        raise ValueError(f"at_k must be a number > 0; got {at_k!r}")
    return float(_check_sizes(at_k, "at_k")[0])


def _risk_scores(draws: np.ndarray, risk: str, q: float) -> np.ndarray:
    if risk == "mean":
        return draws.mean(axis=0)
    if risk == "quantile":
        return np.quantile(draws, q, axis=0)
    raise ValueError(f"risk must be 'mean' or 'quantile'; got {risk!r}")


def _psi_at(post, at_k: float, pos: np.ndarray) -> np.ndarray:
    lo, hi = post.k_observed
    if not lo <= at_k <= hi:
        warnings.warn(
            f"at_k={at_k:g} is outside the observed k range [{lo}, {hi}]; the scaling law "
            "is extrapolated there.",
            ExtrapolationWarning,
            stacklevel=3,
        )
    return _psi_draws(post, np.array([at_k]))[:, pos, 0]  # (samples, candidates)


def select(
    model,
    budget: int,
    at_k: float,
    candidates=None,
    labels=None,
    risk: str = "mean",
    q: float = 0.1,
    *,
    balance: str = "equal",
    hdi_prob: float = 0.9,
) -> Selection:
    """Choose the ``budget`` points worth most when added to a dataset of size ``at_k``.

    Each candidate is scored by its posterior ψ_{at_k} = c·at_k^(−α): the posterior mean
    (``risk="mean"``) or, to prefer points that are valuable with high probability, its
    lower ``q`` quantile (``risk="quantile"``).

    Parameters
    ----------
    model : ScalingLawModel or arviz.InferenceData
    budget : int
        Number of points to choose, 1 ≤ budget ≤ number of candidates.
    at_k : float
        Size of the dataset the points are added to (> 0). Points ranking high at small k
        need not rank high at large k, so set it to the size you will train at.
    candidates : array_like, optional
        Point ids to choose from; default every point in the model.
    labels : array_like or pandas.Series, optional
        Class of each candidate (aligned with ``candidates``, or with the model's points
        when ``candidates`` is None), or a Series indexed by point id. When given, the
        choice is class-balanced (see ``balance``).
    risk : {"mean", "quantile"}
    q : float
        Quantile for ``risk="quantile"``, in (0, 1).
    balance : {"equal", "proportional"}
        With labels: the same number per class (default; the paper's class-balanced
        addition), or numbers proportional to the class sizes among the candidates. Leftover
        picks go to the class with the best next candidate; a class with too few candidates
        passes its shortfall on.
    hdi_prob : float
        Mass of the reported intervals.

    Returns
    -------
    Selection
        ``points`` (best first), ``table`` and the expected total gain Σ ψ_{at_k} over the
        chosen points with its posterior sd and HDI. The total is the first-order (additive)
        gain: it ignores interactions among the added points, which is accurate when
        ``budget`` is small next to ``at_k``.

    Raises
    ------
    ValueError
        ``budget`` < 1 or larger than the candidates, ``at_k`` ≤ 0, ``labels`` of the wrong
        length, unknown ``risk``/``balance``, ``q`` or ``hdi_prob`` outside (0, 1).

    Examples
    --------
    >>> import bayescale as bs
    >>> from bayescale.valuation import _fake_idata
    >>> idata = _fake_idata(n_points=6, random_state=0)
    >>> sel = bs.select(idata, budget=2, at_k=500, labels=[0, 0, 0, 1, 1, 1])
    >>> len(sel.points), sel.gain_low <= sel.gain_mean <= sel.gain_high
    (2, True)
    """
    hdi_prob = _check_prob(hdi_prob, "hdi_prob")
    q = _check_prob(q, "q")
    balance = _check_balance(balance)
    at_k = _check_at_k(at_k)
    post = _posterior(model)
    cand, pos, lab = _candidates_and_labels(post, candidates, labels)
    budget = check_int(budget, "budget", minimum=1)
    if budget > cand.size:
        raise ValueError(f"budget ({budget}) is larger than the number of candidates ({cand.size})")
    if risk not in ("mean", "quantile"):
        raise ValueError(f"risk must be 'mean' or 'quantile'; got {risk!r}")

    draws = _psi_at(post, at_k, pos)
    scores = _risk_scores(draws, risk, q)
    chosen = _balanced_top(scores, lab, budget, balance)
    summ = _summaries(draws[:, chosen], hdi_prob)
    table = pd.DataFrame({"point": cand[chosen], "score": scores[chosen], **summ})
    table = table.drop(columns="p_positive")
    if lab is not None:
        table["label"] = lab[chosen]
    gain = draws[:, chosen].sum(axis=1)
    g = _summaries(gain[:, None], hdi_prob)
    return Selection(
        points=cand[chosen],
        table=table,
        gain_mean=float(g["mean"][0]),
        gain_sd=float(g["sd"][0]),
        gain_low=float(g["hdi_low"][0]),
        gain_high=float(g["hdi_high"][0]),
        gain_draws=gain,
        at_k=at_k,
        risk=risk,
        q=q,
        hdi_prob=hdi_prob,
        budget=budget,
    )


def gain_curve(
    model,
    at_k: float,
    budgets=None,
    candidates=None,
    labels=None,
    risk: str = "mean",
    q: float = 0.1,
    *,
    balance: str = "equal",
    hdi_prob: float = 0.9,
) -> pd.DataFrame:
    """Expected total gain of :func:`select` as the budget grows.

    Same arguments as :func:`select`; ``budgets`` is a sequence of budgets (default
    1..number of candidates, at most 50 evenly spaced values). ψ draws are computed once.

    Returns
    -------
    pandas.DataFrame
        ``budget``, ``mean``, ``sd``, ``hdi_low``, ``hdi_high`` of the total gain;
        ``df.attrs`` holds ``at_k``, ``risk``, ``q`` and ``hdi_prob``.

    Examples
    --------
    >>> from bayescale.valuation import _fake_idata
    >>> df = gain_curve(_fake_idata(n_points=5, random_state=0), at_k=300, budgets=[1, 3])
    >>> df["budget"].tolist()
    [1, 3]
    """
    hdi_prob = _check_prob(hdi_prob, "hdi_prob")
    q = _check_prob(q, "q")
    balance = _check_balance(balance)
    at_k = _check_at_k(at_k)
    if risk not in ("mean", "quantile"):
        raise ValueError(f"risk must be 'mean' or 'quantile'; got {risk!r}")
    post = _posterior(model)
    cand, pos, lab = _candidates_and_labels(post, candidates, labels)
    if budgets is None:
        budgets = np.unique(np.linspace(1, cand.size, min(cand.size, 50)).round().astype(int))
    budgets = [check_int(b, "budgets", minimum=1) for b in np.atleast_1d(budgets).tolist()]
    if max(budgets) > cand.size:
        raise ValueError(f"budgets go up to {max(budgets)} but there are only {cand.size} candidates")
    draws = _psi_at(post, at_k, pos)
    scores = _risk_scores(draws, risk, q)
    totals = np.column_stack(
        [draws[:, _balanced_top(scores, lab, b, balance)].sum(axis=1) for b in budgets]
    )
    out = pd.DataFrame({"budget": budgets, **_summaries(totals, hdi_prob)}).drop(columns="p_positive")
    out.attrs.update(at_k=at_k, risk=risk, q=q, hdi_prob=hdi_prob)
    return out


# ---------------------------------------------------------------------------------------
# the point-addition experiment
# ---------------------------------------------------------------------------------------
def _metrics(est, X_test, y_test) -> dict[str, float]:
    out = {"accuracy": float(accuracy_score(y_test, est.predict(X_test)))}
    if hasattr(est, "predict_proba"):
        out["log_loss"] = float(log_loss(y_test, est.predict_proba(X_test), labels=est.classes_))
    return out


def _one_repeat(estimator, X_pool, y_pool, X_test, y_test, methods, start_size, budget,
                balance, seed) -> list[dict]:
    rng = np.random.default_rng(seed)
    # Class-stratified random start set, at least one point of every class so the learner
    # sees all classes (and log-loss is defined on the test set).
    start = _balanced_top(rng.random(y_pool.size), y_pool, start_size, "proportional", minimum=1)
    rest = np.setdiff1d(np.arange(y_pool.size), start)
    base = clone(estimator).fit(X_pool[start], y_pool[start])
    before = _metrics(base, X_test, y_test)
    rows = []
    for name, s in methods.items():
        scores = rng.random(rest.size) if isinstance(s, str) else s[rest]
        added = rest[_balanced_top(scores, y_pool[rest], budget, balance)]
        idx = np.concatenate([start, added])
        after = _metrics(clone(estimator).fit(X_pool[idx], y_pool[idx]), X_test, y_test)
        for metric, b in before.items():
            rows.append({"method": name, "metric": metric, "before": b, "after": after[metric],
                         "change": after[metric] - b})
    return rows


def point_addition(
    estimator,
    X_pool,
    y_pool,
    X_test,
    y_test,
    scores,
    start_size: int,
    budget: int,
    repeats: int = 20,
    random_state=None,
    *,
    balance: str = "equal",
    aggregate: bool = True,
    n_jobs: int | None = 1,
) -> pd.DataFrame:
    """The paper's point-addition experiment: do the top-scored points improve a model?

    For each repeat: draw a random class-stratified start set of ``start_size`` pool points
    (every class at least once), train ``estimator`` on it and score it on the test set;
    then, for each score vector, add the ``budget`` best-scored pool points not in the start
    set (class-balanced), retrain and score again. All methods share the start sets, so
    their changes can be compared pairwise.

    Parameters
    ----------
    estimator : scikit-learn classifier
        Cloned for every fit. Log-loss is reported when it has ``predict_proba``.
    X_pool, y_pool : array_like
        The pool the start sets and the added points come from; ``y_pool`` class labels.
    X_test, y_test : array_like
        Held-out data the change is measured on.
    scores : array_like, mapping or "random"
        One score per pool point (higher = add first), or a mapping from a method name to
        such a vector. The string ``"random"`` (alone or as a mapping value) draws fresh
        random scores in every repeat: the random-addition baseline.
    start_size, budget : int
        Size of the start sets and number of points added.
    repeats : int
        Number of random start sets.
    random_state : int, Generator or None
        One seed per repeat is derived from it, so results do not depend on ``n_jobs``.
    balance : {"equal", "proportional"}
        How the added points are split over classes (see :func:`select`).
    aggregate : bool
        True (default): one row per (method, metric) with the mean, sd and standard error of
        the change over repeats. False: one row per (method, repeat, metric).
    n_jobs : int or None
        Repeats run in parallel with joblib.

    Returns
    -------
    pandas.DataFrame
        Aggregated: ``method``, ``metric`` ("accuracy", "log_loss"), ``mean_change``,
        ``sd_change``, ``se_change``, ``mean_before``, ``mean_after``, ``repeats``.
        Per repeat: ``method``, ``repeat``, ``metric``, ``before``, ``after``, ``change``.
        ``change`` is after − before, so for log-loss a negative change is an improvement.

    Raises
    ------
    ValueError
        Mismatched lengths, non-class targets, a score vector of the wrong length or not
        finite, ``start_size``/``budget``/``repeats`` < 1, or ``start_size + budget`` larger
        than the pool.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.datasets import load_breast_cancer
    >>> from sklearn.naive_bayes import GaussianNB
    >>> X, y = load_breast_cancer(return_X_y=True)
    >>> df = point_addition(GaussianNB(), X[:300], y[:300], X[300:], y[300:],
    ...                     {"random": "random"}, start_size=20, budget=10, repeats=3,
    ...                     random_state=0)
    >>> sorted(df["metric"])
    ['accuracy', 'log_loss']
    """
    X_pool = check_array(X_pool, input_name="X_pool")
    X_test = check_array(X_test, input_name="X_test")
    y_pool = np.asarray(y_pool)
    y_test = np.asarray(y_test)
    n_pool = X_pool.shape[0]
    if y_pool.shape != (n_pool,):
        raise ValueError(f"y_pool must have one label per row of X_pool ({n_pool}); got shape {y_pool.shape}")
    if y_test.shape != (X_test.shape[0],):
        raise ValueError(
            f"y_test must have one label per row of X_test ({X_test.shape[0]}); got shape {y_test.shape}"
        )
    if type_of_target(y_pool) not in ("binary", "multiclass"):
        raise ValueError("y_pool must hold class labels: point_addition measures accuracy and log-loss")
    start_size = check_int(start_size, "start_size", minimum=1)
    budget = check_int(budget, "budget", minimum=1)
    repeats = check_int(repeats, "repeats", minimum=1)
    balance = _check_balance(balance)
    n_classes = np.unique(y_pool).size
    if start_size < n_classes:
        raise ValueError(f"start_size ({start_size}) must be at least the number of classes ({n_classes})")
    if start_size + budget > n_pool:
        raise ValueError(f"start_size + budget ({start_size + budget}) exceeds the pool size ({n_pool})")

    if isinstance(scores, str) or not isinstance(scores, Mapping):
        scores = {"random" if isinstance(scores, str) else "scores": scores}
    methods = {}
    for name, s in scores.items():
        if isinstance(s, str):
            if s != "random":
                raise ValueError(f"scores[{name!r}] must be a vector or 'random'; got {s!r}")
            methods[str(name)] = s
            continue
        s = np.asarray(s, dtype=float)
        if s.shape != (n_pool,) or not np.isfinite(s).all():
            raise ValueError(
                f"scores[{name!r}] must hold one finite score per pool point ({n_pool}); got shape {s.shape}"
            )
        methods[str(name)] = s
    if not methods:
        raise ValueError("scores must name at least one method")

    seeds = as_generator(random_state).spawn(repeats)
    results = Parallel(n_jobs=n_jobs)(
        delayed(_one_repeat)(estimator, X_pool, y_pool, X_test, y_test, methods, start_size,
                             budget, balance, seed)
        for seed in seeds
    )
    per_repeat = pd.DataFrame(
        [{"repeat": r, **row} for r, rows in enumerate(results) for row in rows]
    )[["method", "repeat", "metric", "before", "after", "change"]]
    settings = dict(start_size=start_size, budget=budget, repeats=repeats, balance=balance)
    if not aggregate:
        per_repeat.attrs.update(settings)
        return per_repeat
    g = per_repeat.groupby(["method", "metric"], sort=False)
    out = pd.DataFrame(
        {
            "mean_change": g["change"].mean(),
            "sd_change": g["change"].std(ddof=1),
            "mean_before": g["before"].mean(),
            "mean_after": g["after"].mean(),
            "repeats": g.size(),
        }
    ).reset_index()
    out.insert(4, "se_change", out["sd_change"] / np.sqrt(out["repeats"]))
    out.attrs.update(settings)
    return out
