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

#: measured 0.98-1.00 for this configuration (n_latent=6, 150 epochs, λ0=10) over seeds; 0.9 leaves margin
AUROC_MIN = 0.9


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


def recovery_auroc(model, z_true, supports):
    """AUROC of |W| (matched factors) against the planted support, pooled over modalities."""
    cols, r = match_factors(z_true, model.get_latent_representation())
    y = np.concatenate([s.ravel() for s in supports.values()])
    score = np.concatenate([np.abs(model.get_loadings(m).to_numpy()[:, cols]).ravel() for m in supports])
    return roc_auc_score(y, score), cols, r


@pytest.fixture(scope="module")
def planted():
    mdata, z, supports, weights = make_planted()
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=6)  # the package defaults otherwise: what a user gets
    model.train(max_epochs=150, early_stopping=False, enable_progress_bar=False)
    return mdata, z, supports, weights, model


def test_planted_feature_factor_links_rank_on_top(planted):
    mdata, z, supports, _, model = planted
    auroc, cols, r = recovery_auroc(model, z, supports)
    print(f"planted recovery: AUROC {auroc:.3f}, matched |corr| {np.round(r, 3)}")
    assert r.min() > 0.8  # every true factor has a learned counterpart
    assert auroc > AUROC_MIN
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

    # testing every pair of the matched factor: the random noise pair is tested and not significant
    full = pm.tl.cross_omic_associations(model, factor=int(cols[0]), n_top=200, store=False)
    pairs = full.set_index(["feature_a", "feature_b"])
    assert bool(pairs.loc[(fa, fb), "significant"])
    null_a, null_b = noise_a[0], noise_b[-1]
    assert not bool(pairs.loc[(null_a, null_b), "significant"])
    assert pairs.loc[(fa, fb), "score"] > pairs.loc[(null_a, null_b), "score"]
