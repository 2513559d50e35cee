"""``Contributions``: the tidy table of marginal-contribution observations.

One row is one observation Δ(z, D) = U(D ∪ {z}) − U(D) of training point ``point`` on a base
set D of size ``k``. Everything downstream (the baselines, the Bayesian model, valuation)
reads this table, so it is validated once, here, at construction.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["Contributions", "data_fingerprint"]

REQUIRED_COLUMNS = ("point", "k", "delta")
OPTIONAL_COLUMNS = ("base", "seed", "count")
_PARQUET_META_KEY = b"bayescale"


def data_fingerprint(X, y=None) -> str:
    """A short, stable hash of the training data, stored with the observations.

    It lets a store or a saved table tell whether it was measured on the same data.

    Examples
    --------
    >>> import numpy as np
    >>> data_fingerprint(np.zeros((3, 2)), np.array([0, 1, 0])) == data_fingerprint(
    ...     np.zeros((3, 2)), np.array([0, 1, 0]))
    True
    """
    digest = hashlib.sha256()
    for arr in (X, y):
        if arr is None:
            continue
        a = np.ascontiguousarray(np.asarray(arr))
        if a.dtype == object:
            a = a.astype(str)
        digest.update(str((a.shape, a.dtype.str)).encode())
        digest.update(a.tobytes())
    return digest.hexdigest()[:16]


def _first_bad_row(mask: np.ndarray, index: pd.Index) -> Any:
    return index[np.flatnonzero(mask)[0]]


def _validate(df: pd.DataFrame) -> pd.DataFrame:
    """Coerce dtypes and check every column; raise one ValueError naming column and row."""
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"Contributions needs a pandas DataFrame; got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"Contributions is missing column(s) {missing}; it needs {list(REQUIRED_COLUMNS)}"
        )
    df = df.reset_index(drop=True)
    out = {}

    for col in ("point", "k", "base", "seed", "count"):
        if col not in df.columns:
            continue
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values) | (values != np.round(values))
        if bad.any():
            row = _first_bad_row(bad, df.index)
            raise ValueError(
                f"column '{col}' must hold integers; row {row} has {df[col].iloc[row]!r}"
            )
        out[col] = values.astype(np.int64)

    if (out["k"] < 1).any():
        row = _first_bad_row(out["k"] < 1, df.index)
        raise ValueError(f"column 'k' must be a positive integer (k >= 1); row {row} has {out['k'][row]}")
    if "count" in out and (out["count"] < 1).any():
        row = _first_bad_row(out["count"] < 1, df.index)
        raise ValueError(f"column 'count' must be >= 1; row {row} has {out['count'][row]}")
    if (out["point"] < 0).any():
        row = _first_bad_row(out["point"] < 0, df.index)
        raise ValueError(f"column 'point' must be a non-negative index; row {row} has {out['point'][row]}")

    delta = pd.to_numeric(df["delta"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(delta)
    if bad.any():
        row = _first_bad_row(bad, df.index)
        raise ValueError(f"column 'delta' must be finite; row {row} has {df['delta'].iloc[row]!r}")
    out["delta"] = delta

    ordered = [c for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS) if c in out]
    extra = [c for c in df.columns if c not in ordered]
    frame = pd.DataFrame({c: out[c] for c in ordered})
    for c in extra:  # keep user columns untouched (e.g. a label)
        frame[c] = df[c].to_numpy()
    return frame


class Contributions:
    """Observations of marginal contributions, one row per Δ(z, D).

    Parameters
    ----------
    data : pandas.DataFrame
        Columns ``point`` (training-set index, int >= 0), ``k`` (size of the base set D,
        int >= 1) and ``delta`` (U(D ∪ {z}) − U(D), finite). Optional: ``base`` (base-set id,
        shared by the points measured on one D), ``seed`` and ``count`` (how many raw
        observations a row averages, default 1).
    metadata : mapping, optional
        How the table was measured: learner, scorer, k range, design, random state,
        library version, data fingerprint, failure counts. Kept through parquet I/O.

    Raises
    ------
    ValueError
        If a column is missing, ``delta`` is not finite, ``k`` is not a positive integer or
        ``point`` is not an integer. The message names the column and the first bad row.

    Examples
    --------
    >>> import pandas as pd
    >>> c = Contributions(pd.DataFrame({"point": [0, 0, 1], "k": [10, 20, 10],
    ...                                 "delta": [0.1, 0.05, -0.02]}))
    >>> c.n_points, len(c)
    (2, 3)
    """

    def __init__(self, data: pd.DataFrame, metadata: Mapping[str, Any] | None = None):
        self._data = _validate(data)
        self.metadata: dict[str, Any] = dict(metadata or {})

    # ------------------------------------------------------------------ basic views
    @property
    def data(self) -> pd.DataFrame:
        """The observations as a DataFrame (a view: do not modify it in place)."""
        return self._data

    @property
    def points(self) -> np.ndarray:
        """Sorted unique point ids."""
        return np.unique(self._data["point"].to_numpy())

    @property
    def n_points(self) -> int:
        return int(self._data["point"].nunique())

    @property
    def k_range(self) -> tuple[int, int]:
        """Observed (min k, max k), inclusive; ``(0, 0)`` for an empty table."""
        if len(self._data) == 0:
            return (0, 0)
        k = self._data["k"]
        return int(k.min()), int(k.max())

    @property
    def failures(self) -> dict[str, Any]:
        """Counts of learner fits that failed while measuring (from the metadata)."""
        return dict(self.metadata.get("failures", {}))

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        lo, hi = self.k_range
        design = self.metadata.get("design", "unknown")
        return (
            f"Contributions({len(self)} observations, {self.n_points} points, "
            f"k in [{lo}, {hi}], design={design!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Contributions):
            return NotImplemented
        return self._data.equals(other._data)

    __hash__ = None  # mutable metadata: not hashable

    # ------------------------------------------------------------------ summaries
    def summary(self) -> pd.DataFrame:
        """Per-point summary: number of observations, k span, mean, sd and standard error of Δ.

        Examples
        --------
        >>> import pandas as pd
        >>> c = Contributions(pd.DataFrame({"point": [0, 0], "k": [10, 20], "delta": [1.0, 3.0]}))
        >>> c.summary().loc[0, "mean"]
        2.0
        """
        g = self._data.groupby("point")
        out = pd.DataFrame(
            {
                "n_obs": g.size(),
                "k_min": g["k"].min(),
                "k_max": g["k"].max(),
                "mean": g["delta"].mean(),
                "sd": g["delta"].std(ddof=1),
                "frac_negative": g["delta"].agg(lambda d: float((d < 0).mean())),
            }
        )
        out["se"] = out["sd"] / np.sqrt(out["n_obs"])
        return out[["n_obs", "k_min", "k_max", "mean", "sd", "se", "frac_negative"]]

    # ------------------------------------------------------------------ selection
    def subset(self, points=None, *, max_per_point: int | None = None) -> Contributions:
        """A new table with only ``points`` and at most the first ``max_per_point`` rows each.

        Useful to study how estimators improve with the number of observations m.

        Examples
        --------
        >>> import pandas as pd
        >>> c = Contributions(pd.DataFrame({"point": [0, 0, 1], "k": [1, 2, 1], "delta": [1., 2., 3.]}))
        >>> len(c.subset(max_per_point=1))
        2
        """
        df = self._data
        if points is not None:
            wanted = np.asarray(points)
            unknown = np.setdiff1d(wanted, self.points)
            if unknown.size:
                raise ValueError(f"points not in the table: {unknown[:10].tolist()}")
            df = df[df["point"].isin(wanted)]
        if max_per_point is not None:
            if max_per_point < 1:
                raise ValueError(f"max_per_point must be >= 1; got {max_per_point}")
            df = df[df.groupby("point").cumcount() < max_per_point]
        meta = dict(self.metadata)
        if max_per_point is not None:
            meta["max_per_point"] = int(max_per_point)
        return Contributions(df, meta)

    @classmethod
    def concat(cls, tables: list[Contributions]) -> Contributions:
        """Stack several tables; the metadata of the first is kept."""
        if not tables:
            raise ValueError("concat needs at least one Contributions table")
        frame = pd.concat([t.data for t in tables], ignore_index=True)
        return cls(frame, tables[0].metadata)

    # ------------------------------------------------------------------ adapters
    @classmethod
    def from_arrays(cls, deltas, ks, points=None, metadata=None) -> Contributions:
        """Build from the paper's n×m arrays: ``deltas[i, j]`` observed at size ``ks[i, j]``.

        Parameters
        ----------
        deltas, ks : array_like, shape (n, m)
            Marginal contributions and the base-set sizes they were measured at. ``ks`` may
            also be a length-m vector shared by all points. NaN in ``deltas`` marks a missing
            observation (ragged designs) and is dropped.
        points : array_like of int, shape (n,), optional
            The point id of each row; default ``0..n-1``.

        Examples
        --------
        >>> import numpy as np
        >>> c = Contributions.from_arrays(np.ones((2, 3)), np.array([10, 20, 30]))
        >>> c.data.shape
        (6, 3)
        """
        deltas = np.asarray(deltas, dtype=float)
        if deltas.ndim != 2:
            raise ValueError(f"deltas must be a 2-D (n points × m samples) array; got shape {deltas.shape}")
        ks = np.asarray(ks)
        if ks.ndim == 1:
            if ks.shape[0] != deltas.shape[1]:
                raise ValueError(
                    f"ks of shape {ks.shape} does not match deltas' {deltas.shape[1]} columns"
                )
            ks = np.broadcast_to(ks, deltas.shape)
        if ks.shape != deltas.shape:
            raise ValueError(f"ks has shape {ks.shape} but deltas has shape {deltas.shape}")
        n = deltas.shape[0]
        if points is None:
            points = np.arange(n)
        points = np.asarray(points)
        if points.shape != (n,):
            raise ValueError(f"points must have one entry per row of deltas ({n}); got {points.shape}")
        if np.unique(points).size != n:
            raise ValueError("points must not repeat")
        keep = ~np.isnan(deltas)
        frame = pd.DataFrame(
            {
                "point": np.repeat(points, deltas.shape[1]).reshape(deltas.shape)[keep],
                "k": ks[keep],
                "delta": deltas[keep],
            }
        )
        return cls(frame, metadata)

    @classmethod
    def from_sums(cls, sums, counts, ks, points=None, metadata=None) -> Contributions:
        """Build from an OpenDataVal-style matrix of sums and counts per (point, k).

        Each non-empty cell becomes one row whose ``delta`` is the cell mean and whose
        ``count`` says how many observations it averages; the model and the baselines weigh
        such a row by its count.

        Parameters
        ----------
        sums, counts : array_like, shape (n, K)
            Sum of Δ and number of observations of point i at size ``ks[j]``.
        ks : array_like of int, shape (K,)
            The sizes of the columns.

        Examples
        --------
        >>> import numpy as np
        >>> c = Contributions.from_sums(np.array([[2.0, 0.0]]), np.array([[4, 0]]), [10, 20])
        >>> c.data[["k", "delta", "count"]].values.tolist()
        [[10.0, 0.5, 4.0]]
        """
        sums = np.asarray(sums, dtype=float)
        counts = np.asarray(counts)
        ks = np.asarray(ks)
        if sums.ndim != 2 or sums.shape != counts.shape:
            raise ValueError(f"sums {sums.shape} and counts {counts.shape} must be equal 2-D shapes")
        if ks.shape != (sums.shape[1],):
            raise ValueError(f"ks must have one entry per column ({sums.shape[1]}); got {ks.shape}")
        if (counts < 0).any():
            raise ValueError("counts must be >= 0")
        n = sums.shape[0]
        points = np.arange(n) if points is None else np.asarray(points)
        if points.shape != (n,):
            raise ValueError(f"points must have one entry per row ({n}); got {points.shape}")
        keep = counts > 0
        rows, cols = np.nonzero(keep)
        frame = pd.DataFrame(
            {
                "point": points[rows],
                "k": ks[cols],
                "delta": sums[keep] / counts[keep],
                "count": counts[keep],
            }
        )
        return cls(frame, metadata)

    # ------------------------------------------------------------------ parquet I/O
    def to_parquet(self, path: str | os.PathLike) -> Path:
        """Write the table and its metadata to one parquet file, atomically.

        The file is written next to its target and renamed into place, so a reader never sees
        a half-written file.

        Examples
        --------
        >>> import pandas as pd, tempfile, os
        >>> c = Contributions(pd.DataFrame({"point": [0], "k": [5], "delta": [0.1]}),
        ...                   {"design": "independent"})
        >>> p = c.to_parquet(os.path.join(tempfile.mkdtemp(), "c.parquet"))
        >>> Contributions.read_parquet(p).metadata["design"]
        'independent'
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(self._data, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[_PARQUET_META_KEY] = json.dumps(self.metadata, default=_json_default).encode()
        table = table.replace_schema_metadata(meta)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            pq.write_table(table, tmp)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def read_parquet(cls, path: str | os.PathLike) -> Contributions:
        """Read a table written by :meth:`to_parquet` (metadata included)."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no contributions file at {path}")
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(_PARQUET_META_KEY)
        metadata = json.loads(raw) if raw else {}
        return cls(table.to_pandas(), metadata)


def _json_default(obj):
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    return repr(obj)
