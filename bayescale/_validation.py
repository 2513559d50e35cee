"""Small input checks shared by the public functions.

Kept in one place so every entry point words its errors the same way.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["as_generator", "check_int", "check_k_range"]


def as_generator(random_state: int | np.random.Generator | np.random.SeedSequence | None):
    """Turn ``random_state`` into a :class:`numpy.random.Generator`, once.

    Accepts ``None`` (fresh entropy), an int, a ``SeedSequence`` or a ``Generator``
    (returned as is, so the caller's stream advances).
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(random_state, (numbers.Integral, np.random.SeedSequence)):
        return np.random.default_rng(random_state)
    raise ValueError(
        f"random_state must be None, an int, a SeedSequence or a numpy Generator; got {random_state!r}"
    )


def check_int(value, name: str, *, minimum: int | None = None) -> int:
    """Return ``value`` as a Python int, or raise a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer; got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")
    return value


def check_k_range(k_range, name: str = "k_range") -> tuple[int, int]:
    """Validate an inclusive ``(k_min, k_max)`` pair of dataset sizes."""
    try:
        k_min, k_max = k_range
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (k_min, k_max); got {k_range!r}") from None
    k_min = check_int(k_min, f"{name}[0] (k_min)", minimum=1)
    k_max = check_int(k_max, f"{name}[1] (k_max)", minimum=1)
    if k_min > k_max:
        raise ValueError(f"{name} must have k_min <= k_max; got ({k_min}, {k_max})")
    return k_min, k_max
