"""Sampler health: r_hat, bulk ESS and divergences in one line, and a warning when NUTS has not converged.

``ScalingLawModel.fit`` checks every NUTS fit against the bar in the project's design (max
r_hat ≤ 1.01 and no divergences) and warns with :class:`ConvergenceWarning` when it is
missed, so a posterior that has not converged is never returned silently. The same numbers
are printed by the ``bayescale`` command and stored as ``model.diagnostics_``.

Examples
--------
>>> import warnings
>>> warnings.simplefilter("ignore", ConvergenceWarning)  # e.g. in a loop over short test fits
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["MAX_RHAT", "ConvergenceWarning", "check_convergence", "diagnostics", "format_diagnostics"]

#: r_hat above this (over ``c``, ``alpha`` and the population variables) means not converged.
MAX_RHAT = 1.01


class ConvergenceWarning(UserWarning):
    """NUTS chains that disagree (r_hat above :data:`MAX_RHAT`) or diverged."""


def diagnostics(idata) -> dict[str, Any]:
    """One line of sampler health: max r_hat, min bulk ESS and divergences.

    r_hat and ESS are taken over the per-point parameters ``c`` and ``alpha`` and every
    population variable that has no ``point`` dim; they are NaN for a single chain or a
    non-MCMC method. ``worst_rhat`` and ``worst_ess`` name the variables they come from.

    Examples
    --------
    >>> import arviz as az
    >>> idata = az.from_dict(posterior={"alpha": np.random.default_rng(0).normal(size=(2, 100))})
    >>> sorted(diagnostics(idata))
    ['divergences', 'max_rhat', 'min_ess_bulk', 'worst_ess', 'worst_rhat']
    """
    import arviz as az

    post = idata.posterior
    names = [v for v in post.data_vars if "point" not in post[v].dims or v in ("c", "alpha")]
    # p_harmful is a per-draw probability, not a parameter; its r_hat says nothing new.
    names = [v for v in names if v != "p_harmful"]
    out: dict[str, Any] = {
        "max_rhat": float("nan"), "min_ess_bulk": float("nan"), "divergences": 0,
        "worst_rhat": None, "worst_ess": None,
    }
    if post.sizes.get("chain", 1) >= 2 and names:
        rhat = az.rhat(post[names])
        ess = az.ess(post[names], method="bulk")
        r = {v: float(rhat[v].max()) for v in rhat.data_vars}
        e = {v: float(ess[v].min()) for v in ess.data_vars}
        r = {k: v for k, v in r.items() if np.isfinite(v)}
        e = {k: v for k, v in e.items() if np.isfinite(v)}
        if r:
            out["worst_rhat"] = max(r, key=r.get)
            out["max_rhat"] = r[out["worst_rhat"]]
        if e:
            out["worst_ess"] = min(e, key=e.get)
            out["min_ess_bulk"] = e[out["worst_ess"]]
    if "sample_stats" in idata.groups() and "diverging" in idata.sample_stats:
        out["divergences"] = int(idata.sample_stats["diverging"].sum())
    return out


def format_diagnostics(d: Mapping[str, Any]) -> str:
    """``max r_hat 1.004 (alpha_tau) | min ESS bulk 812 (c) | divergences 0``.

    Examples
    --------
    >>> format_diagnostics({"max_rhat": 1.0041, "min_ess_bulk": 812.3, "divergences": 0,
    ...                     "worst_rhat": "alpha_tau", "worst_ess": "c"})
    'max r_hat 1.004 (alpha_tau) | min ESS bulk 812 (c) | divergences 0'
    """
    def where(key: str) -> str:
        return f" ({d[key]})" if d.get(key) else ""

    rhat = "n/a" if np.isnan(d["max_rhat"]) else f"{d['max_rhat']:.3f}{where('worst_rhat')}"
    ess = "n/a" if np.isnan(d["min_ess_bulk"]) else f"{d['min_ess_bulk']:.0f}{where('worst_ess')}"
    return f"max r_hat {rhat} | min ESS bulk {ess} | divergences {d['divergences']}"

def check_convergence(idata, *, stacklevel: int = 2) -> dict[str, Any]:
    """:func:`diagnostics` of a NUTS fit, with a :class:`ConvergenceWarning` if it misses the bar.

    The bar is max r_hat ≤ :data:`MAX_RHAT` and no divergences; r_hat is not checked for a
    single chain (it is NaN there).

    Examples
    --------
    >>> import arviz as az
    >>> rng = np.random.default_rng(0)
    >>> stuck = az.from_dict(posterior={"alpha": rng.normal(size=(2, 200)) + [[0.0], [3.0]]})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     d = check_convergence(stuck)
    >>> caught[0].category.__name__, d["max_rhat"] > 1.5
    ('ConvergenceWarning', True)
    """
    d = diagnostics(idata)
    if d["max_rhat"] > MAX_RHAT or d["divergences"] > 0:
        warnings.warn(
            f"NUTS has not converged ({format_diagnostics(d)}; want max r_hat <= {MAX_RHAT} and no "
            "divergences). Treat the posterior with caution: run more tune and draws, or raise "
            "target_accept if there are divergences; az.summary(model.idata) shows which "
            "parameters mix slowly.",
            ConvergenceWarning, stacklevel=stacklevel + 1,
        )
    return d
