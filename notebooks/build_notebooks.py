"""Write the tutorial notebooks from this script and execute them in place.

    python notebooks/build_notebooks.py            # write and execute every notebook
    python notebooks/build_notebooks.py 03         # only those whose name starts with 03
    python notebooks/build_notebooks.py --no-execute   # write them without outputs

Keeping the source here (not only in .ipynb JSON) makes the notebooks reviewable as code.
Each notebook records its own wall time in its last cell.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import time
_t0 = time.perf_counter()

import warnings
import arviz as az
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import bayescale as bs

warnings.filterwarnings("ignore", category=FutureWarning)
pd.set_option("display.precision", 4)
rng = np.random.default_rng(0)

# Sizes of this run. tests/test_notebooks.py overrides them (in a cell it inserts right
# after this one) to smoke-test the notebook in seconds; the stored outputs use these.
{sizes}"""

FOOTER = 'print(f"notebook ran in {time.perf_counter() - _t0:.0f} s")'


def setup(sizes: str):
    return code(SETUP.replace("{sizes}", sizes.strip()))


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str):
    return new_code_cell(text.strip("\n"))


# --------------------------------------------------------------------------- 01
def quickstart():
    return [
        md("""
# 01 · Quickstart: measure, fit, value

How much does each training point help a model, and how does that help shrink as the
training set grows? bayescale measures noisy **marginal contributions**
Δ(z, D) = U(D ∪ {z}) − U(D) of training points z on random base sets D of size k, then fits
one hierarchical Bayesian model over all points in which each point follows its own scaling
law ψ_k(z) ≈ c(z)·k^(−α(z)).

This notebook runs the whole pipeline on real data that ships with scikit-learn (the 8×8
handwritten digits as a binary task, digit ≥ 5 vs < 5; a logistic regression; log-loss on a
validation split). It is
kept small so it runs in a couple of minutes on a laptop: 60 points, 12 observations each.
"""),
        setup("N_POINTS, M, DRAWS, TUNE, CHAINS = 60, 12, 300, 300, 4"),
        md("## 1. Data and learner\nEvery bundled dataset has a fixed train / validation / test split; X is standardized with training statistics."),
        code("""
ds = bs.datasets.load_dataset("digits_binary")
print(ds)
points = np.sort(rng.choice(ds.n_train, size=N_POINTS, replace=False))
learner = LogisticRegression(max_iter=1000)
"""),
        md("""
## 2. Measure marginal contributions
The **shared** design fits one base set D and then D ∪ {z} for a batch of points, which is
several times cheaper than the paper's independent design and estimates the same ψ_k.
Each point gets 12 observations at sizes k drawn uniformly from [20, 300].
"""),
        code("""
c = bs.sample_contributions(
    learner, ds.X_train, ds.y_train, ds.X_val, ds.y_val,
    points=points, k_range=(20, 300), samples_per_point=M,
    scoring="neg_log_loss", design="shared", random_state=0, progress=False,
)
print(c)
c.summary().head()
"""),
        md("""
One observation is far noisier than its mean (compare `sd` and `mean` above): that is why
pooling strength across points pays off.

## 3. Fit the hierarchical scaling-law model
NUTS with 4 chains. We use **300 tuning and 300 kept draws per chain** to keep the notebook
fast; the diagnostics line below says whether that was enough (r_hat ≤ 1.01, bulk ESS in the
hundreds, no divergences). For a real analysis use the defaults (1000 + 1000).
"""),
        code("""
model = bs.ScalingLawModel()
idata = model.fit(c, draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=1, progressbar=False)

from bayescale.spec import diagnostics, format_diagnostics
print(format_diagnostics(diagnostics(idata)))
az.summary(idata, var_names=["alpha_mu", "alpha_tau", "ell_mu", "ell_tau"], kind="all")
"""),
        md("## 4. Values with intervals\n`bs.value` gives each point's distributional value (the mean of ψ_k over the observed k range) with a 90% HDI, P(value > 0) and a rank interval."),
        code("""
values = bs.value(model)
values.sort_values("mean", ascending=False).head(8)
"""),
        code("""
fig, ax = plt.subplots(figsize=(9, 3.5))
bs.plots.plot_values(values, ax=ax)
plt.show()
"""),
        md("## 5. Scaling curves\nBinned observations (mean ± se) of the most and least valuable points, with the posterior median of ψ_k and its 90% band."),
        code("""
order = values.sort_values("mean", ascending=False)["point"].to_numpy()
fig, ax = plt.subplots(figsize=(8, 4.5))
bs.plots.plot_scaling_curves(model, points=np.r_[order[:3], order[-2:]], ax=ax)
plt.show()
"""),
        md("""
## 6. Value depends on the dataset size
Points decay at different rates (α differs), so the ranking at small k is not the ranking
at large k. Here is the posterior of α across points, and the rank correlation between ψ at
k = 20 and ψ at k = 1000 (an extrapolation beyond the measured range, flagged by a warning).
"""),
        code("""
fig, ax = plt.subplots(figsize=(6, 3))
bs.plots.plot_parameter_hist(model, "alpha", ax=ax)
plt.show()

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # k = 1000 extrapolates; we know
    at = bs.value_at(model, [20, 1000])
print(at.head())
wide = at.pivot(index="point", columns="k", values="mean")
print("Spearman rank correlation of psi_20 and psi_1000:",
      round(wide.corr(method="spearman").iloc[0, 1], 3))
"""),
        code(FOOTER),
    ]


# --------------------------------------------------------------------------- 02
def diagnostics_nb():
    return [
        md("""
# 02 · Diagnostics: is the posterior trustworthy?

Before reading values off a model, check three things:

1. **the sampler converged** (trace and rank plots, energy, r_hat, ESS, divergences);
2. **the model reproduces the data** (posterior predictive check against binned observations);
3. **which model variant predicts best** (leave-one-point-out cross-validation, LOO).

Data: 50 points of the binary digits task, 12 observations each. NUTS runs with **300 + 300 draws per
chain, 4 chains**, to keep the notebook under three minutes; the checks below are exactly
the ones that tell you whether that is enough.
"""),
        setup("N_POINTS, M, DRAWS, TUNE, CHAINS = 50, 12, 300, 300, 4"),
        code("""
ds = bs.datasets.load_dataset("digits_binary")
points = np.sort(rng.choice(ds.n_train, size=N_POINTS, replace=False))
c = bs.sample_contributions(
    LogisticRegression(max_iter=1000), ds.X_train, ds.y_train, ds.X_val, ds.y_val,
    points=points, k_range=(20, 300), samples_per_point=M, design="shared",
    random_state=0, progress=False,
)
fit_kw = dict(draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=1, progressbar=False)
model = bs.ScalingLawModel()
idata = model.fit(c, **fit_kw)
c
"""),
        md("## 1. Convergence\nTrace and rank plots of the population parameters: chains should overlap and the rank histograms be flat."),
        code("""
pop = ["alpha_mu", "alpha_tau", "ell_mu", "ell_tau", "log_s_mu", "beta_mu"]
az.plot_trace(idata, var_names=pop, compact=True, figsize=(10, 9))
plt.tight_layout(); plt.show()
"""),
        code("""
az.plot_rank(idata, var_names=["alpha_mu", "alpha_tau", "ell_tau"], figsize=(10, 5))
plt.tight_layout(); plt.show()
"""),
        md("**Energy.** The marginal energy and the energy transition distributions should overlap; a much narrower transition distribution means NUTS explores the tails poorly (E-BFMI below about 0.3)."),
        code("""
az.plot_energy(idata, figsize=(6, 3.5)); plt.show()
print("E-BFMI per chain:", np.round(az.bfmi(idata), 2))
"""),
        md("**r_hat and ESS** for every population parameter and every point's c and α; the worst values are what matter."),
        code("""
from bayescale.spec import diagnostics, format_diagnostics
summ = az.summary(idata, var_names=pop + ["c", "alpha"], kind="diagnostics")
print(format_diagnostics(diagnostics(idata)))
summ.sort_values("r_hat", ascending=False).head(6)
"""),
        md("""
## 2. Posterior predictive check against binned observations
For every observation we draw a replicate Δ from the fitted likelihood,
Δ_rep ~ Normal(c·k^(−α), σ·k^(−β/2)), using the posterior draws of each point's
(c, α, σ, β). We then group each point's observations into 3 k-bins and compare the observed
bin mean with the distribution of the replicated bin mean. If the model is right, about 90%
of observed bin means fall inside the central 90% predictive interval.
"""),
        code("""
post = idata.posterior.stack(sample=("chain", "draw"))
obs = c.data[["point", "k", "delta"]].copy()
pos = pd.Index(post["point"].values).get_indexer(obs["point"])
k = obs["k"].to_numpy()[:, None]
par = {v: post[v].values[pos] for v in ("c", "alpha", "sigma", "beta")}   # (obs, sample)
mu = par["c"] * k ** (-par["alpha"])
sd = par["sigma"] * k ** (-par["beta"] / 2)
rep = mu + sd * np.random.default_rng(2).standard_normal(mu.shape)

edges = np.geomspace(20, 301, 4)
obs["bin"] = np.digitize(obs["k"], edges[1:-1])
keys = obs.groupby(["point", "bin"]).indices
lo, hi, inside, rows = [], [], [], []
for (p, b), idx in keys.items():
    rep_mean = rep[idx].mean(axis=0)
    q05, q95 = np.quantile(rep_mean, [0.05, 0.95])
    m = obs["delta"].to_numpy()[idx].mean()
    rows.append((p, b, len(idx), m, q05, q95, q05 <= m <= q95))
ppc = pd.DataFrame(rows, columns=["point", "bin", "n", "observed_mean", "q05", "q95", "inside"])
print(f"observed bin means inside their 90% predictive interval: {ppc.inside.mean():.1%} "
      f"of {len(ppc)} (point, k-bin) cells")
"""),
        code("""
show = ppc[ppc.point.isin(points[:12])].reset_index(drop=True)
fig, ax = plt.subplots(figsize=(10, 3.5))
x = np.arange(len(show))
ax.vlines(x, show.q05, show.q95, color="0.6", lw=4, label="90% predictive interval of the bin mean")
ax.scatter(x, show.observed_mean, c=np.where(show.inside, "C0", "C3"), zorder=3, s=18,
           label="observed bin mean")
ax.set_yscale("symlog", linthresh=1e-5)
ax.set_xlabel("(point, k-bin) cell, first 12 points"); ax.set_ylabel("mean Δ")
ax.legend(loc="upper right", fontsize=8); plt.show()
"""),
        md("""
## 3. Comparing model variants with LOO
The model's `log_likelihood` is stored **per point** (each point's observations summed, the
sign marginalized), so `az.loo` leaves one whole point out. We compare:

- **no features** (intercept-only population, the default);
- **features**: the population means of (log|c|, α, log σ, β) and of P(c > 0) depend on the
  point's inputs, summarized by their first 5 principal components (64 raw pixels would
  give 64 coefficients per block for 50 points);
- **Student-t** likelihood instead of Normal (robust to occasional large Δ).
"""),
        code("""
from sklearn.decomposition import PCA
pcs = PCA(n_components=5, random_state=0).fit_transform(ds.X_train)
X_points = pd.DataFrame(pcs, columns=[f"pc{j + 1}" for j in range(5)])  # index = point id
variants = {
    "no features": idata,
    "features X": bs.ScalingLawModel(features=X_points).fit(c, **fit_kw),
    "Student-t": bs.ScalingLawModel(likelihood="studentt").fit(c, **fit_kw),
}
for name, d in variants.items():
    print(f"{name:12s} {format_diagnostics(diagnostics(d))}")
cmp = az.compare(variants, ic="loo")
cmp
"""),
        code("""
az.plot_compare(cmp, figsize=(7, 2.5)); plt.show()
best = cmp.index[0]
gap = cmp.loc[cmp.index[1], "elpd_diff"]; se = cmp.loc[cmp.index[1], "dse"]
print(f"best by LOO: {best}; the runner-up is {gap:.1f} elpd behind (se of the difference {se:.1f})")
"""),
        md("A difference smaller than about two standard errors is not a real preference; Pareto-k warnings (k > 0.7) would mean a point's LOO estimate is unreliable."),
        code("""
for name, d in variants.items():
    kk = az.loo(d, pointwise=True).pareto_k.values
    print(f"{name:12s} points with Pareto k > 0.7: {(kk > 0.7).sum()} of {kk.size}")
"""),
        code(FOOTER),
    ]


# --------------------------------------------------------------------------- 03
def valuation_nb():
    return [
        md("""
# 03 · Valuation and selection

1. **Semivalues with intervals**: distributional, Shapley, Beta(16, 1) and Banzhaf values are
   all weighted averages of the same fitted ψ_k, so one fit gives all of them, each with a
   posterior interval.
2. **P(harmful) on deliberately corrupted data**: we flip the labels of 8 training points.
   A mislabeled point should *hurt* a classifier (c < 0). Does the model say so?
3. **Point addition**: add the top-scored points to small random training sets and measure
   test accuracy, against random picks and the Monte Carlo mean.

Data: binary digits, 70 measured points of which 8 have flipped labels; logistic regression;
12 observations per point. NUTS with 300 + 300 draws per chain (kept short for speed).
"""),
        setup("N_POINTS, N_FLIPPED, M, DRAWS, TUNE, CHAINS = 70, 8, 12, 300, 300, 4\n"
              "START, BUDGET, REPEATS = 20, 10, 40"),
        code("""
ds = bs.datasets.load_dataset("digits_binary")
points = np.sort(rng.choice(ds.n_train, size=N_POINTS, replace=False))
flipped = np.sort(rng.choice(points, size=N_FLIPPED, replace=False))
y_noisy = ds.y_train.copy()
y_noisy[flipped] = 1 - y_noisy[flipped]       # binary labels: flip 0 <-> 1

c = bs.sample_contributions(
    LogisticRegression(max_iter=1000), ds.X_train, y_noisy, ds.X_val, ds.y_val,
    points=points, k_range=(20, 300), samples_per_point=M, design="shared",
    random_state=0, progress=False,
)
model = bs.ScalingLawModel()
idata = model.fit(c, draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=1, progressbar=False)
from bayescale.spec import diagnostics, format_diagnostics
print(format_diagnostics(diagnostics(idata)))
"""),
        md("## 1. Semivalues with intervals"),
        code("""
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Shapley / Banzhaf put weight outside the measured k range
    schemes = {
        "distributional": bs.value(model, "distributional"),
        "shapley": bs.value(model, "shapley", n=ds.n_train),
        "beta(16,1)": bs.value(model, ("beta", 16, 1), n=ds.n_train),
        "banzhaf": bs.value(model, "banzhaf", n=ds.n_train),
    }
means = pd.DataFrame({k: v.set_index("point")["mean"] for k, v in schemes.items()})
print("Spearman correlation between schemes:")
means.corr(method="spearman").round(3)
"""),
        md("Shapley and Banzhaf weigh sizes far outside the measured range [20, 300] (Banzhaf is dominated by k ≈ n/2), so they extrapolate the fitted laws; bayescale warns about this. The distributional value stays inside the measured range."),
        code("""
fig, ax = plt.subplots(figsize=(9, 3.5))
bs.plots.plot_values(schemes["distributional"], ax=ax)
ax.scatter(np.flatnonzero(np.isin(schemes["distributional"].sort_values("mean", ascending=False)["point"], flipped)),
           np.zeros(len(flipped)), marker="x", color="C3", zorder=4, label="flipped label")
ax.legend(); plt.show()
"""),
        md("## 2. Are the flipped points harmful?"),
        code("""
from sklearn.metrics import roc_auc_score
harm = bs.valuation.p_harmful(model).set_index("point")
harm["flipped"] = harm.index.isin(flipped)
print(harm.groupby("flipped")["p_harmful"].describe()[["count", "mean", "min", "50%", "max"]])
auc = roc_auc_score(harm["flipped"], harm["p_harmful"])
print(f"AUC of P(harmful) for finding the flipped points: {auc:.3f}")
print(f"flipped points with P(harmful) > 0.5: {(harm.loc[flipped, 'p_harmful'] > 0.5).sum()} of {len(flipped)}")
print(f"clean points with P(harmful) > 0.5: {(harm.loc[~harm.flipped, 'p_harmful'] > 0.5).sum()} of {(~harm.flipped).sum()}")
harm.sort_values("p_harmful", ascending=False).head(10)
"""),
        code("""
mc = bs.baselines.monte_carlo(c)
mc["flipped"] = mc.index.isin(flipped)
print("AUC of a negative Monte Carlo mean (the paper's estimator), same observations:",
      round(roc_auc_score(mc["flipped"], -mc["value"]), 3))
print(f"clean points whose Monte Carlo mean is negative: {(mc.loc[~mc.flipped, 'value'] < 0).mean():.0%}")
print(f"single observations that are negative: {(c.data['delta'] < 0).mean():.0%}")
"""),
        md("""
Read these numbers together. *Harmful* means "adding this point makes validation log-loss
worse on average at these sizes", which is not the same question as "is this point
mislabelled". When a large share of clean points also has a negative mean contribution (the
learner can get worse from a correct point when it overfits small training sets), P(harmful)
flags them too, and the flipped points stand out less. The AUCs above measure how well each
estimator separates the flipped points on this data; they are not tuned.
"""),
        md("""
## 3. Point addition
Pool: the 70 measured points (flipped labels included). Each repeat draws a random
class-stratified start set of 20 pool points, then adds the 10 best-scored remaining points
(class-balanced) and measures the change in test accuracy and log-loss on the held-out test
split. Scores: the posterior mean ψ at k = 20 (the size we add to), the Monte Carlo mean, and
random picks. All methods share the start sets.
"""),
        code("""
psi20 = bs.value_at(model, START).set_index("point").loc[points, "mean"].to_numpy()
mc_score = mc.loc[points, "value"].to_numpy()
res = bs.point_addition(
    LogisticRegression(max_iter=1000), ds.X_train[points], y_noisy[points],
    ds.X_test, ds.y_test,
    {"bayes psi_start": psi20, "monte carlo": mc_score, "random": "random"},
    start_size=START, budget=BUDGET, repeats=REPEATS, random_state=0,
)
res
"""),
        md("For accuracy a larger change is better; for log-loss a more negative change is better. The standard errors (`se_change`) say whether two methods really differ."),
        code("""
sel = bs.select(model, budget=BUDGET, at_k=START, labels=pd.Series(y_noisy[points], index=points))
print(sel)
print("flipped points chosen:", np.intersect1d(sel.points, flipped).size, "of", len(sel.points))
""") ,
        code(FOOTER),
    ]


# --------------------------------------------------------------------------- 04
def features_nb():
    return [
        md("""
# 04 · Features and new points

When the population means of the per-point parameters depend on the point's features, the
model learns *which kinds of points* are valuable, and can predict the scaling law of a
point **that was never measured** (`predict_new`), the Bayesian form of the paper's
amortized estimator.

Data: the diabetes regression set (10 features), a ridge regression, negative MSE on the
validation split. We measure 100 training points, fit the model on 75 of them, and check
`predict_new` on the other 25 against their measured contributions.
NUTS with 300 + 300 draws per chain (kept short for speed).
"""),
        setup("N_POINTS, N_HELD_OUT, M, DRAWS, TUNE, CHAINS = 100, 25, 12, 300, 300, 4"),
        code("""
from sklearn.linear_model import Ridge
ds = bs.datasets.load_dataset("diabetes")
print(ds.description)
points = np.sort(rng.choice(ds.n_train, size=N_POINTS, replace=False))
c_all = bs.sample_contributions(
    Ridge(alpha=1.0), ds.X_train, ds.y_train, ds.X_val, ds.y_val,
    points=points, k_range=(20, 200), samples_per_point=M,
    scoring="neg_mean_squared_error", design="shared", random_state=0, progress=False,
)
held_out = np.sort(rng.choice(points, size=N_HELD_OUT, replace=False))
fit_points = np.setdiff1d(points, held_out)
c_fit = c_all.subset(fit_points)
X = pd.DataFrame(ds.X_train, columns=ds.feature_names)   # index = training id = point id
print(c_fit, "| held out:", len(held_out), "points")
"""),
        code("""
model = bs.ScalingLawModel(features=X)          # aligned by point id
idata = model.fit(c_fit, draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=1, progressbar=False)
from bayescale.spec import diagnostics, format_diagnostics
print(format_diagnostics(diagnostics(idata)))
"""),
        md("""
## 1. Which features drive α and |c|?
`alpha_B` and `ell_B` are the effects of each (standardized) feature on the population mean
of α and of ℓ = log|ψ| at the reference size. An interval that excludes 0 is a feature that
really moves the parameter.
"""),
        code("""
az.plot_forest(idata, var_names=["ell_B", "alpha_B"], combined=True, hdi_prob=0.9,
               figsize=(8, 6))
plt.axvline(0, color="0.5", lw=0.8); plt.show()
eff = az.summary(idata, var_names=["ell_B", "alpha_B"], hdi_prob=0.9, kind="stats")
eff["excludes_0"] = (eff["hdi_5%"] > 0) | (eff["hdi_95%"] < 0)
eff.sort_values("mean", key=abs, ascending=False).head(8)
"""),
        code("""
top_feature = eff.loc[eff.index.str.startswith("alpha_B")].sort_values("mean", key=abs).index[-1]
name = top_feature.split("[")[1].rstrip("]")
fig, ax = plt.subplots(figsize=(5, 3.5))
bs.plots.plot_alpha_vs_feature(model, X.loc[model.points_, name].to_numpy(), feature_name=name, ax=ax)
plt.show()
"""),
        md("""
## 2. `predict_new` on points never measured
For each held-out point we predict ψ_k from its features alone at the sizes where it was
measured, average over its observations (the quantity its Monte Carlo mean estimates), and
compare with its measured mean. As a reference, the same check with a model **without**
features, which can only predict the population average for every new point.
"""),
        code("""
obs = c_all.data[c_all.data.point.isin(held_out)]
mc_ho = bs.baselines.monte_carlo(c_all.subset(held_out))

def predicted_mean(m, feats):
    ks = np.arange(20, 201)
    psi = m.predict_new(feats, ks, random_seed=0)            # (chain, draw, point, k)
    draws = psi.stack(sample=("chain", "draw")).transpose("point", "k", "sample").values
    out = []
    for i, p in enumerate(held_out):
        kk = obs.loc[obs.point == p, "k"].to_numpy() - 20   # this point's measured sizes
        out.append(draws[i, kk].mean(axis=0))                # mean over its observations
    return np.array(out)                                     # (point, sample)

pred = predicted_mean(model, X.loc[held_out])
base = bs.ScalingLawModel()
base.fit(c_fit, draws=DRAWS, tune=TUNE, chains=CHAINS, random_seed=1, progressbar=False)
pred0 = predicted_mean(base, len(held_out))

from scipy import stats
measured = mc_ho.loc[held_out, "value"].to_numpy()
rows = []
for label, p in [("features X", pred), ("no features", pred0)]:
    m = np.median(p, axis=1)
    lo, hi = np.quantile(p, [0.05, 0.95], axis=1)
    rows.append({
        "model": label,
        "spearman": stats.spearmanr(m, measured).statistic if np.ptp(m) > 0 else np.nan,
        "pearson": stats.pearsonr(m, measured).statistic if np.ptp(m) > 0 else np.nan,
        "coverage of 90% interval": np.mean((lo <= measured) & (measured <= hi)),
        "median interval width": np.median(hi - lo),
    })
pd.DataFrame(rows)
"""),
        code("""
fig, ax = plt.subplots(figsize=(5, 4))
m = np.median(pred, axis=1); lo, hi = np.quantile(pred, [0.05, 0.95], axis=1)
ax.errorbar(measured, m, yerr=[m - lo, hi - m], fmt="o", ms=4, alpha=0.7, label="features X")
lim = [min(measured.min(), lo.min()), max(measured.max(), hi.max())]
ax.plot(lim, lim, color="0.5", lw=0.8)
ax.set_xscale("symlog", linthresh=1); ax.set_yscale("symlog", linthresh=1)
ax.set_xlabel("measured mean Δ (Monte Carlo, held-out point)")
ax.set_ylabel("predicted from features (median, 90%)")
ax.legend(); plt.show()
"""),
        md("""
The measured means are themselves noisy (12 observations each), so perfect agreement is not
expected. Two questions matter: does the features-based prediction track the measured means
better than the no-features reference (compare the correlations), and do its 90% intervals
cover them? They carry the uncertainty of ψ only, not the noise of a 12-observation mean, so
coverage somewhat below 90% is expected; much lower coverage means the population model is
too confident about new points.
"""),
        code(FOOTER),
    ]


NOTEBOOKS = {
    "01_quickstart": quickstart,
    "02_diagnostics": diagnostics_nb,
    "03_valuation_and_selection": valuation_nb,
    "04_features_and_new_points": features_nb,
}


def build(name: str, execute: bool = True) -> float:
    nb = new_notebook(cells=NOTEBOOKS[name]())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    path = HERE / f"{name}.ipynb"
    elapsed = 0.0
    if execute:
        from nbclient import NotebookClient

        t0 = time.perf_counter()
        try:
            NotebookClient(nb, timeout=1800, kernel_name="python3",
                           resources={"metadata": {"path": str(HERE)}}).execute()
        finally:  # on an error, keep what ran so the failing cell can be read
            elapsed = time.perf_counter() - t0
            nbformat.write(nb, path)
    else:
        nbformat.write(nb, path)
    return elapsed


if __name__ == "__main__":
    args = sys.argv[1:]
    execute = "--no-execute" not in args
    wanted = [a for a in args if not a.startswith("--")]
    for name in NOTEBOOKS:
        if wanted and not any(name.startswith(w) for w in wanted):
            continue
        try:
            t = build(name, execute=execute)
        except Exception as err:  # report and go on with the next notebook
            print(f"{name}: FAILED: {type(err).__name__}: {str(err)[-500:]}", flush=True)
            continue
        print(f"{name}: " + (f"executed in {t:.0f} s" if execute else "written"), flush=True)
