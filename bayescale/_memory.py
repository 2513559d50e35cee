"""Up-front estimate of the memory a :meth:`ScalingLawModel.fit` needs, and a guard against fits
that cannot fit.

A fit on tens of thousands of points fails late and expensively when it runs out of memory: the
compile and the optimisation (minutes) come before the posterior draws, which are usually the
largest allocation. :func:`check_fit_memory` compares a conservative estimate with the memory
the system has free and warns, or refuses, before any of that work starts.

Where the bytes go (float64 throughout; measured with PyTensor's ``profile_memory`` and with
peak RSS, see docs/benchmarks.md, "Big-N inference"):

* **Observations.** ``_prepare`` keeps about a dozen length-``n_obs`` arrays (point, k, Δ,
  count, group index, position, scaled y, log k, weights, sort order, ...).
* **Padded layout.** When the table is nearly balanced the model works on (points × m_max)
  matrices: y, u, weights and the mask are held by the graph (4 matrices). The compiled
  gradient then needs more such matrices at its peak, measured at 10,000 × 50 with PyTensor's
  ``profile_memory``: 8.2 (ADVI step) and 8.8 (log p + gradient, NUTS) for the power law, 12.2
  and 12.8 for ``law="two_term"``; charged 10 and 14. A ragged table uses vectors of length
  ``n_obs`` instead, with the per-point parameters gathered to each observation (5 more).
* **Posterior draws.** ``approx.sample`` / the NUTS trace, the InferenceData conversion and the
  derived per-point quantities (c, α, σ, β, ℓ, log s, π, p_harmful, the log-likelihood, and
  their temporaries) coexist at the peak: 128 bytes per (draw × point) measured for ADVI on
  20,000 points × 1000 draws (16 float64; 19 with ``law="two_term"``); 19 and 22 are charged.
  NUTS keeps ``chains × draws`` of them.
* **Parallel chains.** Each NUTS chain evaluates its own gradient (PyMC runs chains in separate
  processes, each with a copy of the data; nutpie in threads), so the graph term is charged
  once per chain.
* **Full-rank ADVI.** The dense Cholesky factor of the covariance over all ``4·n_points``
  per-point parameters (plus population), its gradient and the optimiser's running averages:
  quadratic in the number of points, which makes it the first thing to refuse at big N.
* **Fixed.** Compilation, PyMC/PyTensor objects and ``_derive``'s chunk buffers (its chunks
  hold about 4·10⁶ observation-draw cells per array).

The estimate deliberately ignores the Python process that is already running (imports, the
``Contributions`` table): those are already taken out of ``MemAvailable``.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from ._validation import check_int

__all__ = ["MemoryWarning", "available_memory", "check_fit_memory", "estimate_fit_memory"]

_F64 = 8
#: Length-n_obs float64/int64 arrays held by the prepared state and the table's copies.
_PER_OBS = 12
#: (points × m_max) matrices held by the dense graph as data: y, u, log weights, mask.
_DENSE_DATA = 4
#: Temporaries of one gradient evaluation per law, in (points × m_max) matrices (or n_obs
#: vectors when ragged). Measured with profile_memory: 8.2 / 8.8 (power: ADVI step / log p +
#: gradient) and 12.2 / 12.8 (two_term); rounded up. "curved" (one more per-point parameter
#: and a u² term) is not measured and is charged as two_term.
_GRAPH_TEMPS = {"power": 10, "two_term": 14, "curved": 14}
#: Extra n_obs vectors in the ragged layout: the four per-point parameters gathered to each
#: observation and the int64 group index.
_RAGGED_EXTRA = 5
#: float64 values per (chain × draw × point) alive at the peak of sampling plus post-processing
#: (measured 16 for the power law and 19 for two_term: 128 and 152 bytes per draw and point).
_PER_DRAW_POINT = {"power": 19, "two_term": 22, "curved": 22}  # curved: as two_term
#: Per-point variables of the model (ℓ, α, log s, β; and b or κ): the dimension that
#: full-rank ADVI squares.
_PER_POINT_PARAMS = {"power": 4, "two_term": 5, "curved": 5}
#: Population-level parameters, an upper bound (4 means, a 4×4 covariance, π, features aside).
_POPULATION_PARAMS = 32
#: n_free² float64 buffers for full-rank ADVI: L, its gradient, the packed parameters, their
#: gradient and adagrad's window of squared gradients (packed: ~half a matrix each, 10 of them).
_FULLRANK_MATRICES = 9
#: Compile, PyMC/PyTensor objects and _derive's chunk buffers (about 4e6 cells × ~10 arrays).
_FIXED = 512 * 2**20
#: Fraction of the available memory above which a fit gets a warning.
WARN_FRACTION = 0.6

_METHODS = ("nuts", "advi", "fullrank_advi", "map")
_LAWS = tuple(_GRAPH_TEMPS)


class MemoryWarning(UserWarning):
    """A fit is estimated to need a large part of the available memory.

    A ``UserWarning`` subclass rather than ``ResourceWarning``: Python's default warning filters
    hide ``ResourceWarning`` (it reports unclosed files in development mode), and a user about
    to start a fit that may swap or be killed by the OOM killer should see it. Filter it with
    ``warnings.simplefilter("ignore", bayescale._memory.MemoryWarning)``.
    """


def estimate_fit_memory(
    n_points: int,
    m_max: int,
    n_obs: int,
    *,
    dense: bool,
    method: str,
    draws: int,
    chains: int,
    n_features: int = 0,
    law: str = "power",
) -> int:
    """Conservative estimate of the extra memory (bytes) that ``ScalingLawModel.fit`` allocates.

    Parameters
    ----------
    n_points : int
        Number of distinct points in the table.
    m_max : int
        Largest number of observations of one point (the padded width).
    n_obs : int
        Number of observations (rows of the table).
    dense : bool
        Whether the model uses the padded (points × m_max) layout (``_prepare``'s ``"dense"``).
    method : {"nuts", "advi", "fullrank_advi", "map"}
    draws, chains : int
        Posterior draws per chain and chains. ADVI gives one chain of ``draws`` draws and MAP
        one draw whatever is passed.
    n_features : int, default 0
        Number of point features.
    law : {"power", "two_term", "curved"}, default "power"
        The model's law (``ScalingLawModel(law=...)``): the two-term and curved laws have one
        more per-point parameter and a larger gradient graph.

    Returns
    -------
    int
        Bytes, on top of what the process already holds.

    Examples
    --------
    >>> gb = estimate_fit_memory(50_000, 20, 1_000_000, dense=True, method="advi",
    ...                          draws=1000, chains=1) / 2**30
    >>> 5 < gb < 10
    True
    """
    n_points = check_int(n_points, "n_points", minimum=1)
    m_max = check_int(m_max, "m_max", minimum=1)
    n_obs = check_int(n_obs, "n_obs", minimum=1)
    draws = check_int(draws, "draws", minimum=1)
    chains = check_int(chains, "chains", minimum=1)
    n_features = check_int(n_features, "n_features", minimum=0)
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}; got {method!r}")
    if law not in _LAWS:
        raise ValueError(f"law must be one of {_LAWS}; got {law!r}")
    if dense and n_obs > n_points * m_max:
        raise ValueError(f"n_obs ({n_obs}) cannot exceed n_points × m_max ({n_points * m_max})")

    if method == "map":
        draws, chains = 1, 1
    elif method in ("advi", "fullrank_advi"):
        chains = 1  # one optimisation, one chain of draws from the approximation
    parallel = chains if method == "nuts" else 1

    cells = n_points * m_max if dense else n_obs
    per_graph = (_GRAPH_TEMPS[law] + (_DENSE_DATA if dense else _RAGGED_EXTRA)) * cells
    total = _FIXED + _PER_OBS * n_obs * _F64 + parallel * per_graph * _F64
    # Features: the standardized matrix, its raw copy in constant_data and one dot product per
    # block and per parallel chain.
    total += (2 + 5 * parallel) * n_points * n_features * _F64
    total += _PER_DRAW_POINT[law] * chains * draws * n_points * _F64
    if method == "fullrank_advi":
        n_free = _PER_POINT_PARAMS[law] * n_points + _POPULATION_PARAMS + 5 * n_features
        total += _FULLRANK_MATRICES * n_free * n_free * _F64
    return int(total)


def available_memory() -> int | None:
    """Bytes of memory this process can still use, or None when the system does not say.

    ``MemAvailable`` from ``/proc/meminfo`` (what the kernel can hand out without swapping),
    capped by a cgroup (container) limit when one is set; otherwise the free physical pages
    from ``os.sysconf``.

    Examples
    --------
    >>> avail = available_memory()
    >>> avail is None or avail > 0
    True
    """
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024  # the value is in kB
                break
    except (OSError, ValueError, IndexError):
        avail = None
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, ValueError, OSError):
            avail = None
    room = _cgroup_room()
    if room is not None:
        avail = room if avail is None else min(avail, room)
    return avail


def _cgroup_room() -> int | None:
    # A container's limit is invisible in /proc/meminfo, which shows the host; the OOM killer
    # acts on the cgroup's limit, so the room left under it is what counts.
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit == "max" or int(limit) >= 2**60:  # "max" (v2) or a huge sentinel (v1): no limit
            return None
        return max(int(limit) - usage, 0)
    return None


def check_fit_memory(
    n_points: int,
    m_max: int,
    n_obs: int,
    *,
    dense: bool,
    method: str,
    draws: int,
    chains: int,
    n_features: int = 0,
    law: str = "power",
    available: int | None = None,
    stacklevel: int = 2,
) -> int:
    """Warn or refuse before a fit that will not fit in memory; return the estimate.

    Parameters
    ----------
    n_points, m_max, n_obs, dense, method, draws, chains, n_features, law
        As in :func:`estimate_fit_memory`.
    available : int, optional
        Bytes available; default :func:`available_memory`. When neither is known the check
        only returns the estimate.
    stacklevel : int, default 2
        Passed to :func:`warnings.warn` (so the warning points at the caller's line).

    Returns
    -------
    int
        The estimate in bytes.

    Raises
    ------
    MemoryError
        When the estimate exceeds the available memory; the message says what to reduce.

    Warns
    -----
    MemoryWarning
        When the estimate exceeds ``WARN_FRACTION`` (60%) of the available memory: other
        processes may take the rest, and the estimate has a margin but is not a bound.

    Examples
    --------
    >>> check_fit_memory(1000, 20, 20_000, dense=True, method="advi", draws=500, chains=1,
    ...                  available=8 * 2**30) < 2**30
    True
    """
    need = estimate_fit_memory(n_points, m_max, n_obs, dense=dense, method=method, draws=draws,
                               chains=chains, n_features=n_features, law=law)
    if available is None:
        available = available_memory()
    if available is None:
        return need
    if need <= WARN_FRACTION * available:
        return need
    advice = _advice(n_points, m_max, n_obs, dense=dense, method=method, draws=draws, chains=chains,
                     n_features=n_features, law=law, available=available)
    what = (f"ScalingLawModel.fit(method={method!r}) on {n_points} points × up to {m_max} observations "
            f"({n_obs} in all) needs about {_gb(need)} by a conservative estimate")
    if need > available:
        raise MemoryError(f"{what}, but only {_gb(available)} is available. {advice}")
    warnings.warn(f"{what}: {need / available:.0%} of the {_gb(available)} available. {advice}",
                  MemoryWarning, stacklevel=stacklevel)
    return need


def _advice(n_points, m_max, n_obs, *, dense, method, draws, chains, n_features, law, available) -> str:
    """Say what to reduce, with the estimate each change gives."""
    def est(**change):
        args = dict(dense=dense, method=method, draws=draws, chains=chains, n_features=n_features, law=law)
        args.update(change)
        return estimate_fit_memory(n_points, m_max, n_obs, **args)

    tips = []
    if method != "map" and draws > 100:
        tips.append(f"fewer draws (draws={draws // 4}: {_gb(est(draws=draws // 4))})")
    if method == "nuts" and chains > 1:
        tips.append(f"fewer chains (chains=2: {_gb(est(chains=min(chains, 2)))})" if chains > 2
                    else f"one chain (chains=1: {_gb(est(chains=1))})")
    if method in ("nuts", "fullrank_advi"):
        tips.append(f"method='advi' ({_gb(est(method='advi', chains=1))})")
    if not tips:
        tips.append("fewer points per fit (fit subsets of points separately)")
    return "Reduce the memory with " + ", or ".join(tips) + f"; the limit here is {_gb(available)}."


def _gb(nbytes: float) -> str:
    return f"{nbytes / 2**30:.2f} GB"
