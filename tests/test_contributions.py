"""Tests of the measurement stage: sample_contributions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge

import bayescale as bs
from bayescale.contributions import stratified_counts


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def clf_data():
    """A small, fast classification problem (fits take ~ms)."""
    X, y = make_classification(
        n_samples=260, n_features=5, n_informative=3, n_redundant=0, flip_y=0.1,
        weights=[0.6, 0.4], random_state=3,
    )
    return X[:160], y[:160], X[160:], y[160:]


@pytest.fixture(scope="module")
def reg_data():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(200, 4))
    y = X @ np.array([1.0, -0.5, 0.2, 0.0]) + rng.normal(scale=0.5, size=200)
    return X[:120], y[:120], X[120:], y[120:]


def _sample(data, estimator=None, **kwargs):
    X, y, Xv, yv = data
    kwargs.setdefault("progress", False)
    kwargs.setdefault("random_state", 0)
    return bs.sample_contributions(estimator or LogisticRegression(), X, y, Xv, yv, **kwargs)


class _CountingEstimator(ClassifierMixin, BaseEstimator):
    """Counts fits in a class attribute, to show bad input fails before any fit."""

    n_fits = 0

    def fit(self, X, y):
        type(self).n_fits += 1
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


class _ProtocolChecker(ClassifierMixin, BaseEstimator):
    """Raises inside fit when the sampler breaks the protocol, so the fit is counted as failed.

    X's first column holds each training point's id. A repeated id means z was in D; class
    counts other than the stratified ones (D) or those plus z's class (D ∪ {z}) are wrong.
    """

    def __init__(self, class_sizes=None):
        self.class_sizes = class_sizes

    def fit(self, X, y):
        ids = X[:, 0]
        if np.unique(ids).size != ids.size:
            raise AssertionError("z is in D")
        counts = np.bincount(y, minlength=len(self.class_sizes))
        for k in (len(y), len(y) - 1):
            want = stratified_counts(k, np.asarray(self.class_sizes))
            diff = counts - want
            if (diff == 0).all() or (k == len(y) - 1 and diff.sum() == 1 and diff.max() == 1):
                break
        else:
            raise AssertionError(f"class counts {counts} are not stratified")
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])


# ---------------------------------------------------------------------------- bad input
def _bad_cases(clf_data):
    X, y, Xv, yv = clf_data
    Xnan = X.copy()
    Xnan[3, 1] = np.nan
    yv_inf = yv.astype(float)
    yv_inf[2] = np.inf
    y_small = y.copy()
    y_small[:] = 0
    y_small[:2] = 1  # class 1 has 2 of 160 points: 0 of them in a stratified D of 20
    return {
        "nan in X_train": (dict(X_train=Xnan), "X_train"),
        "inf in y_val": (dict(y_val=yv_inf), "y_val"),
        "length mismatch": (dict(y_train=y[:-1]), "same length"),
        "empty": (dict(X_train=X[:0], y_train=y[:0]), "X_train"),
        "k_min < 1": (dict(k_range=(0, 10)), "k_min"),
        "k_min > k_max": (dict(k_range=(20, 10)), "k_min <= k_max"),
        "k_max >= pool": (dict(k_range=(10, 160)), "k_max"),
        "points out of range": (dict(points=[0, 160]), "points"),
        "points negative": (dict(points=[-1]), "points"),
        "points repeated": (dict(points=[3, 3]), "repeat"),
        "points not int": (dict(points=[0.5]), "points"),
        "samples_per_point < 1": (dict(samples_per_point=0), "samples_per_point"),
        "unknown scorer": (dict(scoring="not_a_scorer"), "scoring"),
        "bad scoring type": (dict(scoring=3), "scoring"),
        "no fit": (dict(estimator=object()), "estimator"),
        "class too small": (dict(y_train=y_small), "stratify"),
        "bad design": (dict(design="paired"), "design"),
        "bad backend": (dict(backend="spark"), "backend"),
        "bad random_state": (dict(random_state="seed"), "random_state"),
        "n_jobs 0": (dict(n_jobs=0), "n_jobs"),
        "feature mismatch": (dict(X_val=Xv[:, :3]), "X_val"),
    }


@pytest.mark.parametrize(
    "case",
    ["nan in X_train", "inf in y_val", "length mismatch", "empty", "k_min < 1", "k_min > k_max",
     "k_max >= pool", "points out of range", "points negative", "points repeated",
     "points not int", "samples_per_point < 1", "unknown scorer", "bad scoring type", "no fit",
     "class too small", "bad design", "bad backend", "bad random_state", "n_jobs 0",
     "feature mismatch"],
)
def test_bad_input_raises_before_any_fit(clf_data, case):
    X, y, Xv, yv = clf_data
    override, match = _bad_cases(clf_data)[case]
    args = dict(estimator=_CountingEstimator(), X_train=X, y_train=y, X_val=Xv, y_val=yv,
                k_range=(20, 40), samples_per_point=2, scoring="accuracy")
    args.update(override)
    _CountingEstimator.n_fits = 0
    with pytest.raises(ValueError, match=match):
        bs.sample_contributions(args.pop("estimator"), args.pop("X_train"), args.pop("y_train"),
                                args.pop("X_val"), args.pop("y_val"), progress=False, **args)
    assert _CountingEstimator.n_fits == 0


def test_stratified_counts_follow_the_paper():
    # Proportions rounded; the rounding remainder goes to the largest class.
    assert stratified_counts(10, np.array([50, 30, 20])).tolist() == [5, 3, 2]
    assert stratified_counts(7, np.array([50, 30, 20])).tolist() == [4, 2, 1]  # 3.5→4, 2.1, 1.4
    assert stratified_counts(5, np.array([30, 40, 30])).tolist() == [2, 1, 2]  # 1.5,2,1.5 → 2,2,2; -1 to largest
    for k in range(1, 90):
        assert stratified_counts(k, np.array([33, 11, 56])).sum() == k


# ---------------------------------------------------------------------------- protocol
@pytest.mark.parametrize("design", ["independent", "shared"])
def test_protocol_z_never_in_base_and_stratified(clf_data, design):
    X, y, Xv, yv = clf_data
    Xid = np.column_stack([np.arange(len(X)), X])
    Xvid = np.column_stack([np.full(len(Xv), -1), Xv])
    sizes = np.bincount(y).tolist()
    c = bs.sample_contributions(
        _ProtocolChecker(class_sizes=sizes), Xid, y, Xvid, yv, k_range=(5, 150),
        samples_per_point=30, scoring="accuracy", design=design, batch_size=8,
        points=np.arange(0, 160, 10), random_state=1, progress=False,
    )
    # k up to 150 of 160: z often falls in D, so the shared design must skip it; any slip
    # (or a wrongly stratified D) raises inside fit and shows up as a failure.
    assert c.metadata["failures"]["fits_failed"] == 0, c.metadata["failures"]
    assert len(c) == 16 * 30
    assert (c.data.groupby("point").size() == 30).all()
    assert c.data["k"].between(5, 150).all()


def test_shared_design_gives_uniform_k_and_full_quota():
    # With k up to 50 of 60 points, a base of size k misses a given z with probability
    # 1 − k/60 (from 0.98 down to 0.17): without the size re-weighting small k would be
    # over-represented up to 5×. Consecutive bases' sizes are spread over the range, so the k
    # of one point's observations are not iid and a chi-square test does not apply; the bound
    # below is 3 sd of an iid bin share (sqrt(0.1·0.9/2000) = 0.0067), which spreading only
    # tightens, while the unweighted draw would put 0.26 of the observations in the first bin.
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 1)), rng.normal(size=60)
    kw = dict(k_range=(1, 50), samples_per_point=50, scoring="neg_mean_squared_error",
              design="shared", random_state=0, progress=False)
    c = bs.sample_contributions(DummyRegressor(), X, y, X[:10], y[:10], points=np.arange(40),
                                batch_size=1, **kw)
    assert (c.data.groupby("point").size() == 50).all()
    share = np.histogram(c.data["k"], bins=np.linspace(0.5, 50.5, 11))[0] / len(c)
    assert np.abs(share - 0.1).max() < 0.02, share
    # Batched points still get exactly their quota each.
    batched = bs.sample_contributions(DummyRegressor(), X, y, X[:10], y[:10],
                                      points=np.arange(30), batch_size=16, **{**kw, "samples_per_point": 7})
    assert (batched.data.groupby("point").size() == 7).all() and batched.n_points == 30


def test_shared_design_spreads_the_first_bases_over_the_range():
    # A pool of 2,000 so that skipping points barely tilts the sizes (keep ≥ 0.95). Ten
    # i.i.d. uniform sizes leave one of five equal bins empty with probability ≈ 5·0.8^10
    # = 0.54; ten golden-ratio quantiles leave gaps under 0.15 of the range, so every bin of
    # 0.2 holds one, for every seed.
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(2000, 1)), rng.normal(size=2000)
    for seed in range(5):
        c = bs.sample_contributions(DummyRegressor(), X, y, X[:10], y[:10], points=np.arange(20),
                                    k_range=(1, 100), samples_per_point=10, design="shared",
                                    scoring="neg_mean_squared_error", batch_size=20,
                                    random_state=seed, progress=False)
        first = c.data.drop_duplicates("base").sort_values("base")["k"].to_numpy()[:10]
        bins = np.histogram(first, bins=np.linspace(0.5, 100.5, 6))[0]
        assert (bins > 0).all(), (seed, first)


@pytest.mark.parametrize("design", ["independent", "shared"])
def test_loguniform_k_design(design):
    # P(k) ∝ 1/k on 2..64: each of five bins equal in log k holds a fifth of the mass (up to
    # integer rounding, computed exactly below). 1,200 observations; the bound is 4 iid sd.
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(400, 1)), rng.normal(size=400)
    c = bs.sample_contributions(DummyRegressor(), X, y, X[:10], y[:10], points=np.arange(40),
                                k_range=(2, 64), samples_per_point=30, design=design,
                                k_design="loguniform", scoring="neg_mean_squared_error",
                                batch_size=1, random_state=0, progress=False)
    assert c.metadata["k_design"] == "loguniform"
    edges = np.geomspace(2, 65, 6)
    ks = np.arange(2, 65)
    expected = np.histogram(ks, bins=edges, weights=(1 / ks) / (1 / ks).sum())[0]
    share = np.histogram(c.data["k"], bins=edges)[0] / len(c)
    assert np.abs(share - expected).max() < 4 * np.sqrt(0.2 * 0.8 / len(c)), (share, expected)
    with pytest.raises(ValueError, match="k_design"):
        bs.sample_contributions(DummyRegressor(), X, y, X[:10], y[:10], points=[0],
                                k_range=(2, 64), samples_per_point=2, k_design="log",
                                scoring="neg_mean_squared_error", progress=False)


# ---------------------------------------------------------------------------- unbiasedness
def _mean_predictor_psi(y_pool: np.ndarray, y_val: np.ndarray, z: int, k: int) -> float:
    """E[Δ(z, D)] for a mean predictor under U = −MSE on the validation set, |D| = k.

    Write μ_v, s_v² for the validation mean and variance (1/n). A predictor constant at m
    has U = −(m − μ_v)² − s_v², so with a = ȳ_D − μ_v and b = y_z − μ_v, and
    ȳ_{D∪z} − μ_v = (k a + b)/(k + 1):

        Δ = a² − (k a + b)² / (k + 1)²

    D is a uniform k-subset, without replacement, of the M = N − 1 other points (mean μ,
    variance σ² with divisor M), so E[a] = d := μ − μ_v and
    Var(a) = V := σ²/k · (M − k)/(M − 1) (finite-population correction). Hence

        E[Δ] = (V + d²)(1 − k²/(k + 1)²) − (2 k b d + b²)/(k + 1)².
    """
    others = np.delete(y_pool, z)
    M = others.size
    mu_v = y_val.mean()
    V = others.var() / k * (M - k) / (M - 1)
    d = others.mean() - mu_v
    b = y_pool[z] - mu_v
    return (V + d * d) * (1 - k**2 / (k + 1) ** 2) - (2 * k * b * d + b * b) / (k + 1) ** 2


@pytest.mark.parametrize("design", ["independent", "shared"])
def test_mean_predictor_matches_closed_form(design):
    rng = np.random.default_rng(4)
    y = rng.gamma(2.0, 1.0, size=41)
    y_val = rng.gamma(2.0, 1.0, size=30) + 0.1
    X, X_val = np.zeros((41, 1)), np.zeros((30, 1))
    k, m = 20, 400
    points = [0, int(np.argmax(y)), int(np.argmin(np.abs(y - y.mean())))]
    c = bs.sample_contributions(
        DummyRegressor(), X, y, X_val, y_val, points=points, k_range=(k, k), samples_per_point=m,
        scoring="neg_mean_squared_error", design=design, random_state=7, progress=False,
    )
    s = c.summary()
    for z in points:
        exact = _mean_predictor_psi(y, y_val, z, k)
        # One-sample z test per point at 4 standard errors (false alarm ~6e-5 each; m = 400
        # makes the mean close to normal). In the shared design a point's observations come
        # from different bases, so they are independent and the se is valid.
        assert abs(s.loc[z, "mean"] - exact) < 4 * s.loc[z, "se"], (z, s.loc[z, "mean"], exact)
    # The test has power: forgetting the finite-population correction (sampling with
    # replacement) moves the expectation of the central point by more than 4 se.
    z = points[2]
    others = np.delete(y, z)
    wrong = exact_with_replacement = (others.var() / k + (others.mean() - y_val.mean()) ** 2) * (
        1 - k**2 / (k + 1) ** 2
    ) - (2 * k * (y[z] - y_val.mean()) * (others.mean() - y_val.mean()) + (y[z] - y_val.mean()) ** 2) / (k + 1) ** 2
    assert abs(s.loc[z, "mean"] - wrong) > 4 * s.loc[z, "se"], exact_with_replacement


def test_designs_agree_on_logistic_regression(clf_data):
    # Same ψ_k from both designs at a fixed k, per point. Under H0 the sum over P points of
    # z² = (mean_ind − mean_sh)² / (se_ind² + se_sh²) is χ²_P (observations of a point are
    # independent in both designs); we reject at p < 0.001.
    points = [0, 1, 2, 3, 4, 5]
    common = dict(points=points, k_range=(25, 25), samples_per_point=80, scoring="neg_log_loss")
    ind = _sample(clf_data, design="independent", random_state=11, **common).summary()
    sh = _sample(clf_data, design="shared", random_state=12, **common).summary()
    z2 = (ind["mean"] - sh["mean"]) ** 2 / (ind["se"] ** 2 + sh["se"] ** 2)
    assert stats.chi2.sf(z2.sum(), df=len(points)) > 1e-3, (ind, sh)
    # Power: the points' ψ differ from each other by far more than the se, so a design that
    # mixed up points or returned 0s would fail above.
    assert np.ptp(ind["mean"]) > 6 * ind["se"].max()


def test_warm_start_and_exact_updates_match_cold_fits(clf_data, reg_data):
    # Same bases, three routes to U(D ∪ {z}): cold sklearn refits (tol 1e-4), warm starts
    # (stopping at a tenth of tol) and Newton solves to 1e-10. Per observation they may differ
    # by solver error only, which must stay far below the spread of Δ itself.
    common = dict(points=range(6), k_range=(30, 60), samples_per_point=5, design="shared")
    cold = _sample(clf_data, warm_start=False, exact_updates=False, **common)
    warm = _sample(clf_data, warm_start="auto", exact_updates=False, **common)
    newton = _sample(clf_data, **common)
    assert not cold.metadata["warm_start"] and not cold.metadata["exact_updates"]
    assert warm.metadata["warm_start"] and newton.metadata["exact_updates"]
    for other in (warm, newton):
        np.testing.assert_array_equal(other.data[["point", "k", "base"]], cold.data[["point", "k", "base"]])
        err = np.abs(other.data["delta"] - cold.data["delta"])
        assert err.max() < 0.1 * cold.data["delta"].std(), err.max()
    # Ridge / LinearRegression by rank-one updates equal refits (to rounding).
    for est in (Ridge(alpha=3.0), LinearRegression()):
        kw = dict(common, scoring="neg_mean_squared_error", estimator=est)
        fast = _sample(reg_data, exact_updates=True, **kw)
        slow = _sample(reg_data, exact_updates=False, **kw)
        assert fast.metadata["exact_updates"] and not slow.metadata["exact_updates"]
        np.testing.assert_allclose(fast.data["delta"], slow.data["delta"], rtol=1e-6, atol=1e-10)
    # Not eligible: an L1 penalty, or a deliberately rough fit, keeps sklearn's own fits.
    for est in (LogisticRegression(l1_ratio=1.0, solver="saga"), LogisticRegression(max_iter=5),
                LogisticRegression(tol=0.1)):
        assert not _sample(clf_data, estimator=est, **common).metadata["exact_updates"]


def test_newton_logistic_matches_sklearn_optimum(clf_data):
    from bayescale.contributions import _LogisticNewton

    X, y, _, _ = clf_data
    for C, intercept in ((1.0, True), (0.05, True), (10.0, False)):
        sk = LogisticRegression(C=C, fit_intercept=intercept, tol=1e-12, max_iter=10000).fit(X, y)
        nw = _LogisticNewton(X, y, C, intercept, np.array([0, 1]))
        w_sk = np.append(sk.coef_.ravel(), sk.intercept_) if intercept else sk.coef_.ravel()
        np.testing.assert_allclose(nw.coef(), w_sk, atol=1e-6)
        # adding a point from D's optimum reaches the optimum of D ∪ {z}
        sk2 = LogisticRegression(C=C, fit_intercept=intercept, tol=1e-12, max_iter=10000).fit(
            np.vstack([X, X[:1] * 3]), np.append(y, 1 - y[0]))
        w2 = np.append(sk2.coef_.ravel(), sk2.intercept_) if intercept else sk2.coef_.ravel()
        np.testing.assert_allclose(nw.coef_with(X[0] * 3, 1 - y[0]), w2, atol=1e-6)


def test_fast_scorers_equal_sklearn():
    from sklearn.metrics import get_scorer

    from bayescale.contributions import _NegLogLoss

    sk, fast = get_scorer("neg_log_loss"), _NegLogLoss()
    for name in ("digits_binary", "wine"):
        ds = bs.datasets.load_dataset(name)
        for n in (30, 200):
            est = LogisticRegression(C=50.0, max_iter=3000).fit(ds.X_train[:n], ds.y_train[:n])
            assert fast(est, ds.X_val, ds.y_val) == pytest.approx(sk(est, ds.X_val, ds.y_val), rel=1e-12)
    from bayescale.contributions import _NegMeanSquaredError

    reg = bs.datasets.load_dataset("diabetes")
    for n in (15, 200):
        est = Ridge().fit(reg.X_train[:n], reg.y_train[:n])
        assert _NegMeanSquaredError()(est, reg.X_val, reg.y_val) == pytest.approx(
            get_scorer("neg_mean_squared_error")(est, reg.X_val, reg.y_val), rel=1e-12)
    # a learner missing a validation class goes to sklearn's scorer, which refuses
    ds = bs.datasets.load_dataset("wine")
    keep = ds.y_train != 2
    est = LogisticRegression().fit(ds.X_train[keep], ds.y_train[keep])
    with pytest.raises(ValueError):
        fast(est, ds.X_val, ds.y_val)


# ---------------------------------------------------------------------------- failures, metadata
def test_failed_fits_are_counted_not_zeroed(clf_data):
    # Unstratified bases of 2 points often hold a single class: LogisticRegression refuses.
    c = _sample(clf_data, points=range(5), k_range=(2, 3), samples_per_point=20, stratify=False,
                scoring="accuracy")
    f = c.metadata["failures"]
    assert f["fits_failed"] > 0 and f["observations_failed"] > 0
    assert len(c) == 100 - f["observations_failed"]
    assert c.metadata["n_planned"] == 100
    assert "ValueError" in f["by_reason"] and f["examples"]
    # A base whose own fit fails loses all its points in the shared design; still counted.
    sh = _sample(clf_data, points=range(5), k_range=(2, 3), samples_per_point=20, stratify=False,
                 scoring="accuracy", design="shared")
    assert len(sh) == 100 - sh.metadata["failures"]["observations_failed"]
    assert sh.metadata["failures"]["by_reason"].get("observations lost with their base set", 0) > 0


def test_metadata_and_columns(clf_data):
    X, y, _, _ = clf_data
    c = _sample(clf_data, points=[4, 2], k_range=(10, 20), samples_per_point=3, scoring="accuracy",
                random_state=5)
    meta = c.metadata
    assert meta["design"] == "independent" and meta["k_range"] == [10, 20]
    assert meta["scorer"] == "accuracy" and meta["random_state"] == 5
    assert meta["learner"] == "LogisticRegression()"
    assert meta["bayescale_version"] == bs.__version__
    assert meta["data_fingerprint"] == bs.data_fingerprint(X, y)
    assert meta["stratify"] is True
    assert list(c.data.columns) == ["point", "k", "delta", "base", "seed"]
    # points keep the caller's order; k inclusive range respected
    assert c.data["point"].tolist() == [4, 4, 4, 2, 2, 2]
    assert c.data["k"].between(10, 20).all()


def test_callable_scorer_and_regression_is_not_stratified(reg_data):
    def neg_mae(est, X, y):
        return -float(np.mean(np.abs(est.predict(X) - y)))

    c = _sample(reg_data, estimator=Ridge(), points=[0, 1], k_range=(10, 20), samples_per_point=3,
                scoring=neg_mae)
    assert c.metadata["scorer"].endswith("neg_mae") and c.metadata["stratify"] is False
    assert len(c) == 6


def test_progress_bar_can_be_switched_off(clf_data, capsys):
    _sample(clf_data, points=[0], k_range=(10, 12), samples_per_point=2, scoring="accuracy",
            progress=True)
    assert "obs" in capsys.readouterr().err
    _sample(clf_data, points=[0], k_range=(10, 12), samples_per_point=2, scoring="accuracy",
            progress=False)
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("design", ["independent", "shared"])
def test_same_table_for_any_n_jobs(clf_data, design):
    kw = dict(points=range(8), k_range=(10, 40), samples_per_point=6, design=design, batch_size=3,
              random_state=123)
    one = _sample(clf_data, n_jobs=1, **kw)
    two = _sample(clf_data, n_jobs=2, **kw)
    threads = _sample(clf_data, n_jobs=2, backend="threading", **kw)
    assert one == two == threads
    assert not one.data.equals(_sample(clf_data, n_jobs=1, **{**kw, "random_state": 124}).data)
    # an observation does not depend on which other points are measured
    if design == "independent":
        sub = _sample(clf_data, n_jobs=1, **{**kw, "points": [5]})
        np.testing.assert_array_equal(sub.data["delta"], one.data.query("point == 5")["delta"])


# ---------------------------------------------------------------------------- store
class _InterruptingScorer:
    """accuracy, but raises KeyboardInterrupt (not caught as a fit failure) at call ``stop``."""

    calls = 0
    stop: int | None = None

    def __call__(self, est, X, y):
        type(self).calls += 1
        if type(self).stop is not None and type(self).calls >= type(self).stop:
            raise KeyboardInterrupt
        return float(np.mean(est.predict(X) == y))


@pytest.mark.parametrize("design", ["independent", "shared"])
def test_store_resumes_without_losing_or_duplicating(clf_data, tmp_path, design):
    scorer = _InterruptingScorer()
    kw = dict(points=range(6), k_range=(10, 40), samples_per_point=12, design=design, batch_size=4,
              scoring=scorer, random_state=9)
    _InterruptingScorer.stop = None
    reference = _sample(clf_data, **kw)

    store = tmp_path / "store"
    _InterruptingScorer.calls, _InterruptingScorer.stop = 0, 70
    with pytest.raises(KeyboardInterrupt):
        _sample(clf_data, store=store, **kw)
    n_done = len(list((store / "chunks").glob("task-*.parquet")))
    assert n_done > 0
    _InterruptingScorer.stop = None
    resumed = _sample(clf_data, store=store, **kw)
    assert resumed == reference
    assert resumed.metadata["timing"]["tasks_run_now"] < resumed.metadata["n_bases"] or design == "independent"
    # a third run reads everything from the store and fits nothing
    _InterruptingScorer.calls = 0
    again = _sample(clf_data, store=store, **kw)
    assert again == reference and _InterruptingScorer.calls == 0


def test_store_rejects_different_arguments(clf_data, tmp_path):
    kw = dict(points=range(3), k_range=(10, 20), samples_per_point=2, scoring="accuracy", store=tmp_path / "s")
    _sample(clf_data, **kw)
    with pytest.raises(ValueError, match=r"k_range: store has \[10, 20\], now \[10, 30\]"):
        _sample(clf_data, **{**kw, "k_range": (10, 30)})
    with pytest.raises(ValueError, match="learner"):
        _sample(clf_data, estimator=LogisticRegression(C=0.5), **kw)
    with pytest.raises(ValueError, match="entropy"):
        _sample(clf_data, **{**kw, "random_state": 1})
    # random_state=None on an existing store reuses the store's seed, so it resumes
    a = _sample(clf_data, **{**kw, "random_state": None, "store": tmp_path / "t"})
    b = _sample(clf_data, **{**kw, "random_state": None, "store": tmp_path / "t"})
    assert a == b
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "x.txt").write_text("x")
    with pytest.raises(ValueError, match="not a bayescale store"):
        _sample(clf_data, **{**kw, "store": tmp_path / "junk"})


# ---------------------------------------------------------------------------- crash safety
_CRASH_SCRIPT = """
import sys
import numpy as np
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
import bayescale as bs

X, y = make_classification(n_samples=260, n_features=5, n_informative=3, n_redundant=0,
                           flip_y=0.1, weights=[0.6, 0.4], random_state=3)
c = bs.sample_contributions(LogisticRegression(), X[:160], y[:160], X[160:], y[160:],
        points=range(12), k_range=(10, 60), samples_per_point=20, design=sys.argv[2],
        batch_size=3, scoring="neg_log_loss", random_state=5, store=sys.argv[1], progress=False)
"""


@pytest.mark.parametrize(
    "design", [pytest.param("independent", marks=pytest.mark.slow), "shared"]
)
def test_sigkill_at_a_random_moment_then_rerun_gives_the_uninterrupted_table(clf_data, tmp_path, design):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "run.py"
    script.write_text(_CRASH_SCRIPT)
    kw = dict(points=range(12), k_range=(10, 60), samples_per_point=20, design=design,
              batch_size=3, scoring="neg_log_loss", random_state=5)
    t0 = time.perf_counter()
    reference = _sample(clf_data, **kw)
    duration = time.perf_counter() - t0  # the subprocess runs at about this pace
    n_tasks = reference.metadata["n_bases"] if design == "shared" else 24
    # Unseeded on purpose: the kill lands at a different moment on every run. The delay after
    # the first chunk is a random share of the run's length; should the run still finish
    # first (a very fast machine), try again with a fresh store and a shorter delay.
    rng = np.random.default_rng()
    for attempt in range(5):
        store = tmp_path / f"store{attempt}"
        delay = rng.uniform(0.0, 0.8) * duration / 2**attempt
        proc = subprocess.Popen([sys.executable, str(script), str(store), design])
        try:
            deadline = time.monotonic() + 120
            while not list(store.glob("chunks/task-*.parquet")) and time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                time.sleep(0.005)
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
        finally:
            proc.wait()
        n_done = len(list(store.glob("chunks/task-*.parquet")))
        if 0 < n_done < n_tasks:
            break
    assert 0 < n_done < n_tasks, f"the kill never landed mid-run ({n_done}/{n_tasks} chunks)"
    resumed = _sample(clf_data, store=store, **kw)
    assert resumed == reference
    assert resumed.metadata["timing"]["tasks_run_now"] == n_tasks - n_done


# ---------------------------------------------------------------------------- dask
@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.mark.parametrize("design", ["independent", "shared"])
def test_dask_backend_gives_the_local_table(clf_data, dask_cluster, design, tmp_path):
    kw = dict(points=range(8), k_range=(10, 40), samples_per_point=6, design=design,
              batch_size=3, scoring="neg_log_loss", random_state=21)
    local = _sample(clf_data, **kw)
    assert _sample(clf_data, backend="dask", dask_client=dask_cluster, **kw) == local
    assert _sample(clf_data, backend=dask_cluster, store=tmp_path / "s", **kw) == local
    # a scheduler address works too (the function opens and closes its own client)
    address = dask_cluster.scheduler.address
    assert _sample(clf_data, backend="dask", dask_client=address, **kw) == local


@pytest.mark.slow
def test_dask_losing_a_worker_mid_run_loses_and_duplicates_nothing(clf_data, tmp_path):
    import os
    import signal
    import threading
    import time

    distributed = pytest.importorskip("distributed")
    kw = dict(points=range(16), k_range=(10, 60), samples_per_point=20, design="independent",
              scoring="neg_log_loss", random_state=33)
    local = _sample(clf_data, **kw)
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        out = {}
        store = tmp_path / "store"
        runner = threading.Thread(target=lambda: out.setdefault(
            "c", _sample(clf_data, backend=client, store=store, **kw)))
        runner.start()
        deadline = time.monotonic() + 120
        while not list(store.glob("chunks/task-*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.05)
        victim = sorted(client.scheduler_info()["workers"])[0]
        # The worker process dies abruptly; its nanny restarts it and the scheduler reruns
        # the tasks it held.
        pid = client.run(os.getpid, workers=[victim])[victim]
        n_at_kill = len(list(store.glob("chunks/task-*.parquet")))
        os.kill(pid, signal.SIGKILL)
        runner.join(timeout=300)
        assert not runner.is_alive()
    n_done = len(list(store.glob("chunks/task-*.parquet")))
    assert n_at_kill < 32, "the worker was killed after the run had finished"
    assert out["c"] == local and n_done == 32
