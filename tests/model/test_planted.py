"""Planted sparse structure: POEMS must recover which features each factor drives, and the cross-omic links.

Two modalities are generated from 4 independent factors; each non-null feature is driven by 1 or 2 of them (a
known sparse feature→factor support), a quarter of the features are pure noise. After training, learned factors
are matched to the true ones (Hungarian assignment on |corr|) and ``|W|`` of the matched factors is scored against
the true support by AUROC (the generator and the scores are in :mod:`poems_mu.datasets._synthetic`).
"""

import numpy as np
import pytest
import scvi

import poems_mu as pm
from poems_mu.datasets._synthetic import grouped_auroc, make_planted, match_factors

#: the issue's goal for the grouped AUROC at the package defaults (K = 32 learned factors for 4 true ones); measured
#: 0.985-1.000 over the configurations of the defaults search (``benchmarks/results/search_sparse.md``)
AUROC_MIN = 0.95

pytestmark = [pytest.mark.slow]


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
            top = pm.tl.top_features(model, mod, factor=int(k), n=10, with_corr=False)["feature"]
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
                assert row.direction == np.sign(weights["a"][j, k_true]) * flip


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
