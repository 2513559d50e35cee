"""Memory estimate and guard of ScalingLawModel.fit (bayescale/_memory.py)."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings

import pytest

from bayescale._memory import (
    MemoryWarning,
    available_memory,
    check_fit_memory,
    estimate_fit_memory,
)

GB = 2**30
BIG = dict(n_points=50_000, m_max=20, n_obs=1_000_000, dense=True)


def est(**kw):
    args = dict(BIG, method="advi", draws=1000, chains=1)
    args.update(kw)
    return estimate_fit_memory(**args)


def test_estimate_grows_with_what_costs_memory():
    assert est(draws=2000) > est(draws=1000)
    assert est(method="nuts", chains=4) > est(method="nuts", chains=1)
    assert est(n_features=10) > est()
    assert est(law="two_term") > est()  # one more per-point parameter, a larger gradient graph
    # ADVI gives one chain of draws and MAP a single draw, whatever is passed.
    assert est(chains=4) == est(chains=1)
    assert est(method="map", draws=5000) == est(method="map", draws=1)
    # Ragged layout: the graph scales with the observations, not the padded cells.
    assert est(dense=False, n_obs=200_000) < est(dense=True, n_obs=200_000)


def test_fullrank_advi_is_quadratic_in_points():
    # The dense covariance factor over 4 parameters per point dominates at big N.
    small = est(method="fullrank_advi", n_points=5_000, n_obs=100_000) - est(n_points=5_000, n_obs=100_000)
    big = est(method="fullrank_advi", n_points=10_000, n_obs=200_000) - est(n_points=10_000, n_obs=200_000)
    assert 3.5 < big / small < 4.5
    assert est(method="fullrank_advi") > 100 * GB  # refused on any ordinary machine


@pytest.mark.parametrize(
    "kw, match",
    [
        (dict(method="slice"), "method"),
        (dict(draws=0), "draws"),
        (dict(chains=1.5), "chains"),
        (dict(n_points=-1), "n_points"),
        (dict(n_obs=2_000_000), "n_obs"),
        (dict(n_features=True), "n_features"),
        (dict(law="cubic"), "law"),
    ],
)
def test_bad_arguments_name_the_argument(kw, match):
    with pytest.raises(ValueError, match=match):
        est(**kw)


def test_available_memory_reads_the_system():
    avail = available_memory()
    # Linux always has /proc/meminfo; elsewhere the sysconf fallback may be missing (None).
    if sys.platform.startswith("linux"):
        assert isinstance(avail, int) and avail > 64 * 2**20
    else:
        assert avail is None or avail > 0


def test_check_passes_quietly_warns_then_refuses():
    need = est()
    args = dict(BIG, method="advi", draws=1000, chains=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning at all below 60% of the memory
        assert check_fit_memory(**args, available=2 * need) == need
    with pytest.warns(MemoryWarning, match=r"% of the"):
        check_fit_memory(**args, available=int(1.2 * need))
    with pytest.raises(MemoryError) as err:
        check_fit_memory(**args, available=need // 2)
    msg = str(err.value)
    # The message gives the estimate, what is available and what to reduce.
    assert f"{need / GB:.2f} GB" in msg and f"{need / 2 / GB:.2f} GB" in msg
    assert "draws=250" in msg


def test_refusal_of_nuts_suggests_chains_and_advi():
    args = dict(BIG, method="nuts", draws=1000, chains=4)
    with pytest.raises(MemoryError, match=r"chains=2.*method='advi'"):
        check_fit_memory(**args, available=GB)


def test_memory_warning_is_shown_by_default():
    # Why a UserWarning subclass: Python's default filters hide ResourceWarning.
    assert issubclass(MemoryWarning, UserWarning)
    assert not issubclass(MemoryWarning, ResourceWarning)


_PROBE = r"""
import json, os, resource
import bayescale as bs
from bayescale._memory import estimate_fit_memory
c, _ = bs.simulate_contributions(n_points={n}, samples_per_point={m}, random_state=0)
import pymc  # imported before the baseline: the estimate excludes what is already loaded
rss = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
model = bs.ScalingLawModel()
model.fit(c, method="advi", draws={draws}, n=30, random_seed=0, progressbar=False)
s = model._state
est = estimate_fit_memory(len(s["points"]), s["m_max"], len(s["y"]), dense=s["dense"],
                          method="advi", draws={draws}, chains=1)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(dict(increase=peak - rss, estimate=est)))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_estimate_bounds_a_measured_fit():
    # A real ADVI fit in a fresh process where the posterior draws dominate (3000 points ×
    # 1500 draws, ~0.5 GB measured): the estimate must cover the measured peak increase (it
    # is meant to be conservative) without overstating it by more than the fixed allowance
    # plus a factor 2 (an estimate that refuses fits that would run is useless too).
    code = _PROBE.format(n=3000, m=10, draws=1500)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["increase"] <= res["estimate"], res
    assert res["estimate"] <= 2 * res["increase"] + 512 * 2**20, res
