"""Small real datasets with fixed, documented splits, for demos, tests and benchmarks.

Every dataset ships inside scikit-learn, so nothing is downloaded at run time. Each is cut
into a training pool (the points whose contributions are measured, and the pool base sets are
drawn from), a validation split (the utility U(D) is measured there) and a test split (kept
for point-addition experiments). The cut is stratified by class for classification tasks and
reproducible: the same ``random_state`` always gives the same split. X is standardized with the
mean and standard deviation of the training split only, so no statistics leak from validation
or test data.

=============== ============== ======= ======== ===== ====== ======
name            task           classes features train val    test
=============== ============== ======= ======== ===== ====== ======
breast_cancer   classification 2       30       300   150    119
digits          classification 10      64       1000  400    397
digits_binary   classification 2       64       1000  400    397
wine            classification 3       13       90    44     44
diabetes        regression     --      10       250   96     96
=============== ============== ======= ======== ===== ====== ======
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import datasets as skdatasets
from sklearn.model_selection import train_test_split

from ._validation import check_int

__all__ = ["Dataset", "available", "load_dataset"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A bundled dataset cut into train / validation / test splits.

    Attributes
    ----------
    X_train, y_train : numpy.ndarray
        The training pool: the points that are valued and that base sets D are drawn from.
    X_val, y_val : numpy.ndarray
        The validation split on which the utility U(D) is measured.
    X_test, y_test : numpy.ndarray
        Held out, for point-addition experiments.
    feature_names : tuple of str
    task : {"classification", "regression"}
    name, description : str
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]
    task: str
    name: str
    description: str

    @property
    def n_train(self) -> int:
        """Size of the training pool."""
        return int(self.X_train.shape[0])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, task={self.task!r}, train={len(self.y_train)}, "
            f"val={len(self.y_val)}, test={len(self.y_test)}, features={self.X_train.shape[1]})"
        )


@dataclass(frozen=True)
class _Spec:
    loader: Callable[[], tuple[np.ndarray, np.ndarray, list[str]]]
    task: str
    n_train: int
    n_val: int  # the test split is what remains
    description: str
    # Applied after splitting, so a relabelled dataset keeps its parent's split.
    relabel: Callable[[np.ndarray], np.ndarray] | None = None


def _sk(loader_name: str):
    def load():
        bunch = getattr(skdatasets, loader_name)()
        X = np.asarray(bunch.data, dtype=float)
        y = np.asarray(bunch.target)
        names = [str(n) for n in getattr(bunch, "feature_names", [])] or [
            f"x{j}" for j in range(X.shape[1])
        ]
        return X, y, names

    return load


_SPECS: dict[str, _Spec] = {
    "breast_cancer": _Spec(
        _sk("load_breast_cancer"), "classification", 300, 150,
        "Wisconsin breast cancer (569 tumours, 30 features, malignant vs benign); "
        "train 300 / val 150 / test 119.",
    ),
    "digits": _Spec(
        _sk("load_digits"), "classification", 1000, 400,
        "8x8 handwritten digits (1,797 images, 64 pixel features, 10 classes); "
        "train 1000 / val 400 / test 397.",
    ),
    "digits_binary": _Spec(
        _sk("load_digits"), "classification", 1000, 400,
        "8x8 handwritten digits as a binary task, digit >= 5 (label 1) vs digit < 5 (label 0), "
        "with the same split as 'digits'; train 1000 / val 400 / test 397.",
        relabel=lambda y: (y >= 5).astype(np.int64),
    ),
    "wine": _Spec(
        _sk("load_wine"), "classification", 90, 44,
        "Wine cultivars (178 wines, 13 chemical features, 3 classes); "
        "train 90 / val 44 / test 44.",
    ),
    "diabetes": _Spec(
        _sk("load_diabetes"), "regression", 250, 96,
        "Diabetes progression (442 patients, 10 features, target one year later, unscaled); "
        "train 250 / val 96 / test 96.",
    ),
}


def available() -> list[str]:
    """Names accepted by :func:`load_dataset`.

    Examples
    --------
    >>> "digits" in available()
    True
    """
    return sorted(_SPECS)


def load_dataset(name: str, random_state: int = 0) -> Dataset:
    """Load a bundled dataset with its fixed train / validation / test split.

    Parameters
    ----------
    name : str
        One of :func:`available`: ``"breast_cancer"``, ``"digits"``, ``"digits_binary"``,
        ``"wine"`` or ``"diabetes"``. Split sizes are in the module docstring.
    random_state : int, default 0
        Seed of the split (stratified by class for classification). The same seed always
        gives the same split.

    Returns
    -------
    Dataset
        X standardized with the training split's mean and standard deviation (a constant
        feature is left centred, not divided by zero); y as integers for classification.

    Raises
    ------
    ValueError
        For an unknown ``name`` or a ``random_state`` that is not an int.

    Examples
    --------
    >>> ds = load_dataset("breast_cancer")
    >>> ds.X_train.shape, ds.X_val.shape, ds.X_test.shape
    ((300, 30), (150, 30), (119, 30))
    >>> bool(abs(ds.X_train.mean(axis=0)).max() < 1e-9)
    True
    """
    if name not in _SPECS:
        raise ValueError(f"name must be one of {available()}; got {name!r}")
    random_state = check_int(random_state, "random_state", minimum=0)
    spec = _SPECS[name]
    X, y, names = spec.loader()
    strat = y if spec.task == "classification" else None
    X_train, X_rest, y_train, y_rest = train_test_split(
        X, y, train_size=spec.n_train, random_state=random_state, stratify=strat
    )
    strat_rest = y_rest if spec.task == "classification" else None
    X_val, X_test, y_val, y_test = train_test_split(
        X_rest, y_rest, train_size=spec.n_val, random_state=random_state, stratify=strat_rest
    )
    if spec.relabel is not None:
        y_train, y_val, y_test = (spec.relabel(a) for a in (y_train, y_val, y_test))
    mean = X_train.mean(axis=0)
    scale = X_train.std(axis=0)
    # Digits has pixels that are always 0 in the training split: centre them but do not
    # divide by a zero scale (they stay 0, as in sklearn's StandardScaler).
    scale[scale == 0] = 1.0

    def standardize(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray((a - mean) / scale)

    if spec.task == "classification":
        y_train, y_val, y_test = (np.asarray(a, dtype=np.int64) for a in (y_train, y_val, y_test))
    else:
        y_train, y_val, y_test = (np.asarray(a, dtype=float) for a in (y_train, y_val, y_test))
    return Dataset(
        X_train=standardize(X_train),
        y_train=y_train,
        X_val=standardize(X_val),
        y_val=y_val,
        X_test=standardize(X_test),
        y_test=y_test,
        feature_names=tuple(names),
        task=spec.task,
        name=name,
        description=spec.description,
    )
