"""Tests of the Contributions table (bayescale/data.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.data import Contributions, data_fingerprint


def _table(**cols):
    base = {"point": [0, 0, 1, 1], "k": [10, 20, 10, 20], "delta": [0.4, 0.1, -0.2, 0.0]}
    base.update(cols)
    return pd.DataFrame(base)


@pytest.mark.parametrize(
    ("column", "values", "row", "words"),
    [
        ("delta", [0.1, np.nan, 0.2, 0.3], 1, "finite"),
        ("delta", [0.1, 0.2, np.inf, 0.3], 2, "finite"),
        ("delta", [0.1, 0.2, 0.3, "x"], 3, "finite"),
        ("k", [10, 0, 10, 20], 1, "positive"),
        ("k", [10, 20, -3, 20], 2, "positive"),
        ("k", [10, 20, 10.5, 20], 2, "integers"),
        ("point", [0, 0, 1.5, 1], 2, "integers"),
        ("point", [0, -1, 1, 1], 1, "non-negative"),
        ("point", [0, 0, None, 1], 2, "integers"),
        ("count", [1, 0, 1, 1], 1, ">= 1"),
    ],
)
def test_validation_names_column_and_first_bad_row(column, values, row, words):
    with pytest.raises(ValueError, match=rf"column '{column}'.*{words}.*row {row}|column '{column}'.*row {row}"):
        Contributions(_table(**{column: values}))
    # and the message says what the column needs
    with pytest.raises(ValueError, match=words):
        Contributions(_table(**{column: values}))


def test_missing_column_and_not_a_frame():
    with pytest.raises(ValueError, match="missing column"):
        Contributions(pd.DataFrame({"point": [0], "k": [1]}))
    with pytest.raises(ValueError, match="DataFrame"):
        Contributions({"point": [0], "k": [1], "delta": [0.0]})


def test_dtypes_are_coerced_and_extra_columns_kept():
    c = Contributions(_table(point=[0.0, 0.0, 1.0, 1.0], label=["a", "a", "b", "b"]))
    assert c.data["point"].dtype == np.int64 and c.data["k"].dtype == np.int64
    assert list(c.data.columns) == ["point", "k", "delta", "label"]
    assert c.n_points == 2 and len(c) == 4 and c.k_range == (10, 20)
    assert c.points.tolist() == [0, 1]


def test_parquet_round_trip_keeps_data_and_metadata(tmp_path):
    meta = {"design": "shared", "k_range": [10, 20], "failures": {"fits_failed": 2},
            "entropy": 2**80 + 7, "np_int": np.int64(3), "arr": np.arange(3)}
    c = Contributions(_table(base=[0, 1, 0, 1], seed=[5, 6, 5, 6]), meta)
    path = c.to_parquet(tmp_path / "sub" / "c.parquet")
    back = Contributions.read_parquet(path)
    assert back == c
    pd.testing.assert_frame_equal(back.data, c.data)
    assert back.metadata["design"] == "shared" and back.metadata["k_range"] == [10, 20]
    assert back.failures == {"fits_failed": 2}
    assert back.metadata["entropy"] == 2**80 + 7  # big seeds survive JSON exactly
    assert back.metadata["np_int"] == 3 and back.metadata["arr"] == [0, 1, 2]
    # atomic write: no temporary files left next to the target
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["c.parquet"]
    with pytest.raises(FileNotFoundError):
        Contributions.read_parquet(tmp_path / "nope.parquet")


def test_from_arrays_paper_layout():
    deltas = np.array([[0.1, 0.2, np.nan], [0.3, 0.4, 0.5]])
    ks = np.array([[10, 20, 30], [11, 21, 31]])
    c = Contributions.from_arrays(deltas, ks, points=[7, 3])
    assert len(c) == 5  # the NaN cell is a missing observation
    assert c.data.query("point == 7")["k"].tolist() == [10, 20]
    assert c.data.query("point == 3")["delta"].tolist() == [0.3, 0.4, 0.5]
    shared_k = Contributions.from_arrays(np.ones((2, 3)), [5, 6, 7])
    assert shared_k.data["k"].tolist() == [5, 6, 7, 5, 6, 7]
    with pytest.raises(ValueError, match="2-D"):
        Contributions.from_arrays(np.ones(3), [1, 2, 3])
    with pytest.raises(ValueError, match="ks"):
        Contributions.from_arrays(np.ones((2, 3)), [1, 2])
    with pytest.raises(ValueError, match="repeat"):
        Contributions.from_arrays(np.ones((2, 3)), [1, 2, 3], points=[1, 1])


def test_from_sums_weights_rows_by_count():
    sums = np.array([[2.0, 0.0, 3.0], [1.0, 1.0, 0.0]])
    counts = np.array([[4, 0, 2], [1, 2, 0]])
    c = Contributions.from_sums(sums, counts, [10, 20, 30])
    assert c.data[["point", "k", "delta", "count"]].values.tolist() == [
        [0, 10, 0.5, 4], [0, 30, 1.5, 2], [1, 10, 1.0, 1], [1, 20, 0.5, 2]
    ]
    with pytest.raises(ValueError, match="counts"):
        Contributions.from_sums(sums, -counts, [10, 20, 30])
    with pytest.raises(ValueError, match="ks"):
        Contributions.from_sums(sums, counts, [10, 20])


def test_summary_per_point():
    c = Contributions(_table(delta=[1.0, 3.0, -1.0, -1.0]))
    s = c.summary()
    assert list(s.columns) == ["n_obs", "k_min", "k_max", "mean", "sd", "se", "frac_negative"]
    assert s.loc[0, "mean"] == 2.0 and s.loc[0, "sd"] == pytest.approx(np.sqrt(2))
    assert s.loc[0, "se"] == pytest.approx(1.0)
    assert s.loc[1, "frac_negative"] == 1.0 and s.loc[1, "sd"] == 0.0


def test_subset_and_concat():
    c = Contributions(_table(), {"design": "independent"})
    one = c.subset([1])
    assert one.points.tolist() == [1] and len(one) == 2
    first = c.subset(max_per_point=1)
    assert first.data["k"].tolist() == [10, 10] and first.metadata["max_per_point"] == 1
    with pytest.raises(ValueError, match="not in the table"):
        c.subset([5])
    with pytest.raises(ValueError, match="max_per_point"):
        c.subset(max_per_point=0)
    both = Contributions.concat([c, one])
    assert len(both) == 6 and both.metadata == c.metadata
    with pytest.raises(ValueError):
        Contributions.concat([])


def test_fingerprint_changes_with_data():
    X = np.arange(6.0).reshape(3, 2)
    y = np.array([0, 1, 1])
    assert data_fingerprint(X, y) == bs.data_fingerprint(X.copy(), y.copy())
    X2 = X.copy()
    X2[0, 0] = 0.5
    assert data_fingerprint(X2, y) != data_fingerprint(X, y)
    assert data_fingerprint(X, y[::-1]) != data_fingerprint(X, y)
