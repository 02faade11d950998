"""Planted sparse structure: POEMS must recover which features each factor drives, and the cross-omic links.

Two modalities are generated from 4 independent factors; each non-null feature is driven by 1 or 2 of them (a
known sparse feature→factor support), a quarter of the features are pure noise. After training, learned factors
are matched to the true ones (Hungarian assignment on |corr|) and ``|W|`` of the matched factors is scored against
the true support by AUROC. ``benchmarks/planted_recovery.py`` runs the same check over n_latent, λ0 and training
length and draws the recovery figure.
"""

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scvi
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import roc_auc_score

import poems_mu as pm

#: the issue's goal for the grouped AUROC at the package defaults (K = 32 learned factors for 4 true ones); measured
#: 0.985-1.000 over the configurations of the defaults search (``benchmarks/results/search_sparse.md``)
AUROC_MIN = 0.95
#: a learned factor belongs to a true factor when their |corr| exceeds this (several may split one true factor)
MATCH_R = 0.3


def make_planted(n=300, n_factors=4, dims=(120, 80), noise=0.5, frac_null=0.25, weight_range=(0.7, 1.5), seed=0):
    """Synthetic two-modality data with a known sparse feature→factor support.

    Feature ``j`` of a modality is driven by factor ``j mod n_factors`` and, with probability 1/2, by one more
    factor; the last ``frac_null`` of the features are noise only. ``x = z Wᵀ + noise · ε``.

    Returns
    -------
    mdata, z (n × n_factors), supports {modality: bool D × n_factors}, weights {modality: D × n_factors}
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, n_factors))
    names = [f"s{i}" for i in range(n)]
    mods, supports, weights = {}, {}, {}
    for name, d in zip(("a", "b"), dims, strict=True):
        support = np.zeros((d, n_factors), bool)
        for j in range(d - int(frac_null * d)):
            k1 = j % n_factors
            support[j, k1] = True
            if rng.random() < 0.5:
                support[j, rng.choice([k for k in range(n_factors) if k != k1])] = True
        w = support * rng.uniform(*weight_range, size=support.shape) * rng.choice([-1, 1], size=support.shape)
        x = z @ w.T + noise * rng.normal(size=(n, d))
        adata = ad.AnnData(x.astype(np.float32), obs=pd.DataFrame(index=names))
        adata.var_names = [f"{name}{j}" for j in range(d)]
        mods[name], supports[name], weights[name] = adata, support, w
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData(mods)
    return mdata, z, supports, weights


def match_factors(z_true, z_learned):
    """Learned factor matched to each true factor (Hungarian on |corr|) and the matched |corr|."""
    k = z_true.shape[1]
    c = np.abs(np.corrcoef(z_true.T, z_learned.T)[:k, k:])
    rows, cols = linear_sum_assignment(c, maximize=True)
    return cols[np.argsort(rows)], c[rows, cols][np.argsort(rows)]


def grouped_auroc(z_true, z_learned, loadings, supports, mods=None) -> tuple[float, list[float]]:
    """Recovery scored so that a true factor split over several learned factors counts.

    Learned factors with |corr| > ``MATCH_R`` to true factor f are matched to it; a feature's score for f is the
    largest |W| over them (0 if none); AUROC of that score against f's planted support over the features of
    ``mods`` (default: all), averaged over the true factors. Returns the mean and the per-factor AUROCs.
    """
    mods = list(supports) if mods is None else list(mods)
    k_true = z_true.shape[1]
    corr = np.nan_to_num(np.abs(np.corrcoef(z_true.T, z_learned.T)[:k_true, k_true:]))
    aurocs = []
    for f in range(k_true):
        matched = np.flatnonzero(corr[f] > MATCH_R)
        y = np.concatenate([supports[m][:, f] for m in mods])
        if matched.size == 0:
            score = np.zeros(len(y))
        else:
            score = np.concatenate([np.abs(loadings[m][:, matched]).max(1) for m in mods])
        aurocs.append(roc_auc_score(y, score))
    return float(np.mean(aurocs)), aurocs


@pytest.fixture(scope="module")
def planted():
    mdata, z, supports, weights = make_planted()
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata)  # the package defaults (K = 32 for 4 true factors): what a user gets
    model.train(enable_progress_bar=False)
    return mdata, z, supports, weights, model


def test_planted_feature_factor_links_rank_on_top(planted):
    mdata, z, supports, _, model = planted
    loadings = {m: model.get_loadings(m).to_numpy() for m in supports}
    auroc, per_factor = grouped_auroc(z, model.get_latent_representation(), loadings, supports)
    cols, r = match_factors(z, model.get_latent_representation())
    print(f"planted recovery: grouped AUROC {auroc:.3f} {np.round(per_factor, 3)}, best |corr| {np.round(r, 3)}")
    assert r.min() > 0.5  # every true factor has a learned counterpart
    assert auroc > AUROC_MIN and min(per_factor) > 0.9
    # the top loaders of each matched factor are planted links
    for mod, support in supports.items():
        for k_true, k in enumerate(cols):
            top = pm.tl.top_features(model, mod, factor=int(k), n=10, with_sign=False)["feature"]
            idx = [list(mdata.mod[mod].var_names).index(f) for f in top]
            assert support[idx, k_true].mean() >= 0.9


def test_planted_signs_follow_the_true_weights(planted):
    mdata, z, supports, weights, model = planted
    cols, _ = match_factors(z, model.get_latent_representation())
    zl = model.get_latent_representation()
    for k_true, k in enumerate(cols):
        flip = np.sign(np.corrcoef(z[:, k_true], zl[:, k])[0, 1])  # a learned factor may be the true one negated
        top = pm.tl.top_features(model, "a", factor=int(k), n=5)
        for row in top.itertuples():
            j = list(mdata.mod["a"].var_names).index(row.feature)
            if supports["a"][j].sum() == 1:  # single-factor features: the sign is unambiguous
                assert row.sign == np.sign(weights["a"][j, k_true]) * flip


def test_planted_cross_omic_pair_significant_and_random_pair_not(planted):
    mdata, z, supports, weights, model = planted
    cols, _ = match_factors(z, model.get_latent_representation())

    # planted pair: the most strongly driven single-factor feature of factor 0 in each modality
    def anchor(mod):
        single = (supports[mod].sum(1) == 1) & supports[mod][:, 0]
        j = np.flatnonzero(single)[np.argmax(np.abs(weights[mod][single, 0]))]
        return mdata.mod[mod].var_names[j]

    fa, fb = anchor("a"), anchor("b")

    # with the default candidate set, the model puts the planted pair among its top loaders and it is significant
    df = pm.tl.cross_omic_associations(model, fdr=0.05, store=False)
    hit = df[(df["feature_a"] == fa) & (df["feature_b"] == fb)]
    assert len(hit) == 1 and bool(hit["significant"].iloc[0])
    assert hit["factor"].iloc[0] == model.factor_names()[cols[0]]
    # pairs of two noise features are (almost) never called
    noise_a = mdata.mod["a"].var_names[supports["a"].sum(1) == 0]
    noise_b = mdata.mod["b"].var_names[supports["b"].sum(1) == 0]
    null = df["feature_a"].isin(noise_a) & df["feature_b"].isin(noise_b)
    if null.any():
        assert df.loc[null, "significant"].mean() <= 0.05

    # every candidate of the matched factor: noise features have exact zeros there, so they are never candidates
    full = pm.tl.cross_omic_associations(model, factor=int(cols[0]), n_top=200, store=False)
    pairs = full.set_index(["feature_a", "feature_b"])
    assert bool(pairs.loc[(fa, fb), "significant"])
    k = int(cols[0])
    w_noise_a = model.get_loadings("a").loc[noise_a].iloc[:, k].to_numpy()
    w_noise_b = model.get_loadings("b").loc[noise_b].iloc[:, k].to_numpy()
    assert not full["feature_a"].isin(noise_a[w_noise_a == 0]).any()
    assert not full["feature_b"].isin(noise_b[w_noise_b == 0]).any()
    assert (w_noise_a == 0).mean() > 0.5 and (w_noise_b == 0).mean() > 0.5
