"""Every figure in bayescale.plots renders with Agg, returns its axes and labels them."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

import bayescale as bs  # noqa: E402
from bayescale import plots  # noqa: E402
from bayescale.valuation import _fake_idata  # noqa: E402


@pytest.fixture(scope="module")
def idata():
    # Two harmful points (negative c) so the symlog axis has to show negative ψ; noisy
    # observations so the binned means have error bars.
    c = np.array([1.0, 0.5, -0.3, 2.0, 0.1, 0.7, -1.0, 0.2])
    data = _fake_idata(c=c, obs_per_point=40, random_state=0)
    rng = np.random.default_rng(0)
    delta = data.observed_data["delta"]
    data.observed_data["delta"] = delta * (1 + rng.normal(0, 1.0, delta.size))
    return data


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _rendered(ax) -> None:
    """Draw the figure for real and check both axes carry a label."""
    assert isinstance(ax, matplotlib.axes.Axes)
    ax.figure.savefig(io.BytesIO(), format="png")
    assert ax.get_xlabel().strip() and ax.get_ylabel().strip()


CASES = {
    "scaling_curves": lambda d, ax: plots.plot_scaling_curves(d, ax=ax),
    "scaling_curves_linear": lambda d, ax: plots.plot_scaling_curves(d, points=[2, 6], yscale="linear", ax=ax),
    "alpha_hist": lambda d, ax: plots.plot_parameter_hist(d, "alpha", ax=ax),
    "log_c_hist": lambda d, ax: plots.plot_parameter_hist(d, "log_abs_c", ax=ax),
    "alpha_vs_feature": lambda d, ax: plots.plot_alpha_vs_feature(d, np.arange(8.0), feature_name="x0", ax=ax),
    "values": lambda d, ax: plots.plot_values(bs.value(d), ax=ax),
    "values_from_model": lambda d, ax: plots.plot_values(d, ax=ax, max_points=5, hdi_prob=0.5),
    "p_harmful": lambda d, ax: plots.plot_p_harmful(d, ax=ax),
    "gain_curve": lambda d, ax: plots.plot_gain_curve(d, 500, labels=[0, 1] * 4, ax=ax),
}


@pytest.mark.parametrize("name", list(CASES))
def test_plot_renders_on_given_axes(idata, name):
    fig, ax = plt.subplots()
    out = CASES[name](idata, ax)
    assert out is ax
    _rendered(out)


def test_plots_make_their_own_axes(idata):
    _rendered(plots.plot_p_harmful(idata))
    _rendered(plots.plot_scaling_curves(idata, points=[0]))


def test_scaling_curves_show_negative_psi_on_symlog(idata):
    ax = plots.plot_scaling_curves(idata, points=[0, 2])  # point 2 is harmful
    assert ax.get_xscale() == "log" and ax.get_yscale() == "symlog"
    low, high = ax.get_ylim()
    assert low < 0 < high
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["point 0", "point 2"]


def test_values_caterpillar_orders_by_mean(idata):
    df = bs.value(idata)
    ax = plots.plot_values(df)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == [str(p) for p in df.sort_values("mean", ascending=False)["point"]]
    assert ax.get_ylabel() == "value (posterior mean, 90% HDI)"


def test_p_harmful_ranks_harmful_points_first(idata):
    ax = plots.plot_p_harmful(idata, top=3)
    ticks = sorted(zip(ax.get_yticks(), [t.get_text() for t in ax.get_yticklabels()], strict=True))
    top_two = {label for _, label in ticks[-2:]}  # the two highest bars
    assert top_two == {"2", "6"}  # the harmful points


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda d: plots.plot_scaling_curves(d, yscale="log"), "yscale"),
        (lambda d: plots.plot_scaling_curves(d, n_bins=0), "n_bins"),
        (lambda d: plots.plot_scaling_curves(d, k_grid=[0, 10]), "k_grid"),
        (lambda d: plots.plot_parameter_hist(d, "sigma"), "parameter"),
        (lambda d: plots.plot_alpha_vs_feature(d, np.arange(3.0)), "one value per point"),
        (lambda d: plots.plot_alpha_vs_feature(d, pd.Series([1.0], index=[0])), "lacks points"),
        (lambda d: plots.plot_values(pd.DataFrame({"point": [1]})), "lacks columns"),
        (lambda d: plots.plot_gain_curve(d, 0), "at_k"),
    ],
)
def test_plot_bad_input(idata, call, match):
    with pytest.raises(ValueError, match=match):
        call(idata)
