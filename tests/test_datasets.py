"""Tests of the bundled datasets and their fixed splits."""

from __future__ import annotations

import numpy as np
import pytest

import bayescale as bs
from bayescale.datasets import available, load_dataset

# Sizes promised in the module docstring (train, val, test, features).
SIZES = {
    "breast_cancer": (300, 150, 119, 30),
    "digits": (1000, 400, 397, 64),
    "digits_binary": (1000, 400, 397, 64),
    "wine": (90, 44, 44, 13),
    "diabetes": (250, 96, 96, 10),
}


def test_available_lists_the_contract_names():
    assert available() == sorted(SIZES)
    assert bs.datasets.available() == available()


@pytest.mark.parametrize("name", sorted(SIZES))
def test_splits_sizes_and_standardization(name):
    ds = load_dataset(name)
    n_train, n_val, n_test, p = SIZES[name]
    assert ds.X_train.shape == (n_train, p) and ds.y_train.shape == (n_train,)
    assert ds.X_val.shape == (n_val, p) and ds.X_test.shape == (n_test, p)
    assert len(ds.feature_names) == p and ds.name == name and ds.description
    # Standardized with the training split only: mean 0 and sd 1 (or 0 for a constant
    # pixel) on train, but not exactly so on validation.
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-10)
    sd = ds.X_train.std(axis=0)
    assert np.all(np.isclose(sd, 1.0) | np.isclose(sd, 0.0))
    assert not np.allclose(ds.X_val.mean(axis=0), 0.0, atol=1e-6)
    for a in (ds.X_train, ds.X_val, ds.X_test):
        assert np.isfinite(a).all()
    if ds.task == "classification":
        assert ds.y_train.dtype.kind == "i"
        # stratified: every class's share in train is within one point of its share overall
        y_all = np.concatenate([ds.y_train, ds.y_val, ds.y_test])
        expected = np.bincount(y_all) * n_train / len(y_all)
        assert np.all(np.abs(np.bincount(ds.y_train) - expected) <= 1.0)
    else:
        assert ds.task == "regression" and ds.y_train.dtype.kind == "f"


def test_splits_are_fixed_by_random_state_and_disjoint():
    a, b, c = load_dataset("wine"), load_dataset("wine"), load_dataset("wine", random_state=1)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert not np.array_equal(a.y_train, c.y_train) or not np.array_equal(a.X_train, c.X_train)
    # no row appears in two splits (wine has no duplicate rows)
    rows = np.concatenate([a.X_train, a.X_val, a.X_test])
    assert np.unique(rows, axis=0).shape[0] == rows.shape[0] == 178


def test_digits_binary_relabels_digits():
    d, b = load_dataset("digits"), load_dataset("digits_binary")
    np.testing.assert_array_equal(b.X_train, d.X_train)
    np.testing.assert_array_equal(b.y_train, (d.y_train >= 5).astype(int))


def test_bad_arguments():
    with pytest.raises(ValueError, match="name must be one of"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="random_state"):
        load_dataset("wine", random_state=None)
    with pytest.raises(ValueError, match="random_state"):
        load_dataset("wine", random_state=-1)


def test_dataset_is_frozen():
    ds = load_dataset("wine")
    with pytest.raises(AttributeError):
        ds.name = "other"
    assert "wine" in repr(ds)
