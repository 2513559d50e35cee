"""bayescale: individualized data scaling laws with a hierarchical Bayesian model.

A training point's expected marginal contribution shrinks with the dataset size k roughly as
ψ_k(z) ≈ c(z)·k^(−α(z)). bayescale measures noisy contributions with scikit-learn learners,
fits one PyMC model over all points, and reports values, P(harmful) and selections with
posterior uncertainty.

Examples
--------
>>> import bayescale as bs
>>> c, truth = bs.simulate_contributions(n_points=20, samples_per_point=10, random_state=0)
>>> c.n_points
20
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

# Public name -> module. Imported on first use so that `import bayescale` stays fast:
# PyMC and its compiler are only loaded when a model is actually needed.
_LAZY = {
    "Contributions": "data",
    "data_fingerprint": "data",
    "simulate_contributions": "simulate",
    "true_psi": "simulate",
    "sample_contributions": "contributions",
    "ScalingLawModel": "model",
    "select_law": "laws",
    "sign_changes": "laws",
    "value": "valuation",
    "value_at": "valuation",
    "p_harmful": "valuation",
    "semivalue_weights": "valuation",
    "ExtrapolationWarning": "valuation",
    "MemoryWarning": "_memory",
    "ConvergenceWarning": "diagnostics",
    "Selection": "selection",
    "gain_curve": "selection",
    "select": "selection",
    "point_addition": "selection",
    "run_spec": "spec",
    "load_spec": "spec",
    "baselines": None,
    "datasets": None,
    "diagnostics": None,
    "laws": None,
    "plots": None,
    "priors": None,
    "simulate": None,
    "spec": None,
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'bayescale' has no attribute {name!r}")
    module_name = _LAZY[name]
    if module_name is None:
        value = importlib.import_module(f".{name}", __name__)
    else:
        value = getattr(importlib.import_module(f".{module_name}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    # ruff: noqa: F401
    from . import baselines, datasets, diagnostics, laws, plots, priors, simulate, spec
    from ._memory import MemoryWarning
    from .contributions import sample_contributions
    from .data import Contributions, data_fingerprint
    from .diagnostics import ConvergenceWarning
    from .laws import select_law, sign_changes
    from .model import ScalingLawModel
    from .selection import Selection, gain_curve, point_addition, select
    from .simulate import simulate_contributions, true_psi
    from .spec import load_spec, run_spec
    from .valuation import ExtrapolationWarning, p_harmful, semivalue_weights, value, value_at
