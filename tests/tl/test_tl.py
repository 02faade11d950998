"""Interpretation toolkit (pm.tl): top features, variance explained, cross-omic and covariate associations."""

import warnings

import anndata as ad
import matplotlib
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scvi
import torch
from scipy import stats

import poems_mu as pm

matplotlib.use("Agg")

N, DA, DB, K_TRUE, K = 120, 30, 20, 3, 4


def _toy_mudata(seed=0):
    """Two modalities driven by 3 sparse factors; modality b missing for the first 20 samples."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, K_TRUE))
    names = [f"s{i}" for i in range(N)]
    mods = {}
    for name, d in (("a", DA), ("b", DB)):
        support = np.zeros((d, K_TRUE), bool)
        support[np.arange(d), np.arange(d) % K_TRUE] = True
        w = support * rng.uniform(0.8, 1.5, size=support.shape) * rng.choice([-1, 1], size=support.shape)
        x = z @ w.T + 0.5 * rng.normal(size=(N, d))
        adata = ad.AnnData(x.astype(np.float32), obs=pd.DataFrame(index=names))
        adata.var_names = [f"{name}_{j}" for j in range(d)]
        mods[name] = adata
    mods["b"] = mods["b"][20:].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData(mods)
    mdata.obs["group"] = pd.Categorical(np.where(z[:, 0] > 0, "high", "low"))
    return mdata


@pytest.fixture(scope="module")
def trained():
    mdata = _toy_mudata()
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=K, prior_expert=False)
    model.train(max_epochs=80, early_stopping=False, enable_progress_bar=False)
    model.store_results()
    return mdata, model


def test_a_cap_of_4_keeps_the_3_planted_factors(trained):
    _, model = trained
    assert model.module.n_factors == K_TRUE
    assert model.factor_names() == [f"factor_{k + 1}" for k in range(K_TRUE)]
    # the factors are matched one to one with the planted ones
    z = model.get_latent_representation()
    truth = np.random.default_rng(0).normal(size=(N, K_TRUE))  # _toy_mudata's first draw
    corr = np.abs(np.corrcoef(z.T, truth.T)[:K_TRUE, K_TRUE:])
    assert (corr.max(axis=1) > 0.8).all() and sorted(corr.argmax(axis=1)) == list(range(K_TRUE))


def _observed(mdata, mod):
    rows = np.asarray(mdata.obsmap[mod]).ravel().astype(int) - 1
    pos = np.flatnonzero(rows >= 0)
    return pos, np.asarray(mdata.mod[mod].X)[rows[pos]].astype(np.float64)


# ---------------------------------------------------------------------------------------------------------------
# top_features
# ---------------------------------------------------------------------------------------------------------------
def test_top_features_ranks_by_effective_loading(trained):
    mdata, model = trained
    df = pm.tl.top_features(model, n=5)
    assert list(df.columns) == [
        "modality",
        "factor",
        "rank",
        "feature",
        "effective",
        "effective_signed",
        "direction",
        "abs_weight",
        "pstar",
        "pstar_threshold",
        "pstar_informative",
        "corr",
        "strength",
    ]
    assert len(df) == 2 * K_TRUE * 5
    differs = 0
    for (mod, fac), sub in df.groupby(["modality", "factor"]):
        W, E = model.get_loadings(mod), model.get_effective_loadings(mod)
        S = model.get_effective_loadings(mod, signed=True)
        assert sub["rank"].tolist() == [1, 2, 3, 4, 5]
        expected = E[fac].sort_values(ascending=False, kind="stable").index[:5].tolist()
        assert sub["feature"].tolist() == expected
        by_w = W[fac].abs().sort_values(ascending=False, kind="stable").index[:5].tolist()
        differs += by_w != expected
        np.testing.assert_allclose(sub["effective"], E.loc[sub["feature"], fac], rtol=1e-6)
        np.testing.assert_allclose(sub["effective_signed"], S.loc[sub["feature"], fac], rtol=1e-6)
        assert (sub["direction"].to_numpy() == np.sign(S.loc[sub["feature"], fac].to_numpy())).all()
        assert set(sub["direction"]) <= {-1, 1}  # the top loaders all have an effect
        np.testing.assert_allclose(sub["abs_weight"], W.loc[sub["feature"], fac].abs(), rtol=1e-6)
        np.testing.assert_allclose(sub["pstar"], model.get_slab_probabilities(mod).loc[sub["feature"], fac], rtol=1e-6)
        np.testing.assert_allclose(sub["strength"], E.loc[sub["feature"]].sum(1), rtol=1e-6)
        assert (sub["effective_signed"].abs() <= sub["effective"] * (1 + 1e-6)).all()
    # |W| only bounds the effect: on this model its order differs from the effective loadings' for some factors
    assert differs > 0


def test_top_features_direction_and_observed_correlation(trained):
    mdata, model = trained
    df = pm.tl.top_features(model, "b", factor="factor_2", n=4)
    assert set(df["modality"]) == {"b"} and set(df["factor"]) == {"factor_2"}
    z = model.get_latent_representation()
    pos, x = _observed(mdata, "b")
    for row in df.itertuples():
        j = list(mdata.mod["b"].var_names).index(row.feature)
        r = np.corrcoef(z[pos, 1], x[:, j])[0, 1]
        assert row.corr == pytest.approx(r, abs=1e-6)
    # the factor's strongest loaders move with it, in the direction the decoder gives them
    assert df["corr"].abs().min() > 0.5
    assert (np.sign(df["corr"]).to_numpy() == df["direction"].to_numpy()).all()
    none = pm.tl.top_features(model, "b", factor="factor_2", n=4, with_corr=False)
    assert none["corr"].isna().all()
    pd.testing.assert_frame_equal(none.drop(columns="corr"), df.drop(columns="corr"))


def test_top_features_pstar_threshold_by_hand(trained):
    mdata, model = trained
    df = pm.tl.top_features(model, n=3)
    table = model.active_factors()
    for (mod, fac), sub in df.groupby(["modality", "factor"]):
        theta = table.loc[fac, f"theta_{mod}"]
        lam0, lam1 = model.module.hparams.lambda0, model.module.hparams.lambda1
        threshold = max(np.log((1 - theta) / theta * lam0 / lam1) / (lam0 - lam1), 0.0)
        np.testing.assert_allclose(sub["pstar_threshold"], threshold, rtol=1e-5)
        aw = model.get_loadings(mod)[fac].abs()
        assert (sub["pstar_informative"] == (0 < threshold < aw.max())).all()
        # the threshold is where p* crosses 0.5
        pstar = model.get_slab_probabilities(mod)[fac]
        assert ((pstar > 0.5) == (aw > threshold)).all()
    # on this model θ_k stays well above its floor (0.13-0.18): the top links are in the slab and p* says so
    assert df["pstar_informative"].all() and (df["pstar"] > 0.5).all()


def _stored(w, eff, signed, theta=None, params=None):
    """A one-modality MuData with stored results written by hand (features × 2 factors)."""
    d = w.shape[0]
    adata = ad.AnnData(np.zeros((4, d)), obs=pd.DataFrame(index=[f"s{i}" for i in range(4)]))
    adata.var_names = [f"g{j}" for j in range(d)]
    adata.varm["poems_W"] = w
    adata.varm["poems_effective"] = eff
    adata.varm["poems_effective_signed"] = signed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"m": adata})
    mdata.uns["poems"] = {"modalities": ["m"], "factors": ["factor_1", "factor_2"]}
    if theta is not None:
        mdata.uns["poems"]["theta"] = {"m": np.asarray(theta)}
    if params is not None:
        mdata.uns["poems"]["params"] = params
    return mdata


def test_top_features_from_a_stored_mudata_by_hand():
    w = np.array([[0.9, 0.0], [0.3, -0.2], [-0.5, 0.05], [0.0, 0.0]])
    eff = np.array([[0.2, 0.0], [0.6, 0.3], [0.4, 0.1], [0.0, 0.0]])  # |W| order 0, 2, 1; effective order 1, 2, 0
    signed = np.array([[0.1, 0.0], [-0.5, 0.3], [0.4, -0.1], [0.0, 0.0]])
    theta = np.array([0.05, 1e-4])
    mdata = _stored(w, eff, signed, theta, '{"lambda0": 20.0, "lambda1": 2.0}')
    df = pm.tl.top_features(mdata, factor=0, n=4, with_corr=False)
    assert df["feature"].tolist() == ["g1", "g2", "g0", "g3"]
    assert df["direction"].tolist() == [-1, 1, 1, 0]
    np.testing.assert_allclose(df["abs_weight"], [0.3, 0.5, 0.9, 0.0])
    assert df["pstar"].isna().all() and df["corr"].isna().all()
    # p* > 0.5 iff |w| > log((1 − θ)/θ · λ0/λ1) / (λ0 − λ1)
    t1, t2 = np.log(0.95 / 0.05 * 10) / 18, np.log((1 - 1e-4) / 1e-4 * 10) / 18
    assert t1 == pytest.approx(0.2915, abs=1e-4) and t2 == pytest.approx(0.6396, abs=1e-4)
    np.testing.assert_allclose(df["pstar_threshold"], t1)
    assert df["pstar_informative"].all()  # |W| = 0.9 clears it
    second = pm.tl.top_features(mdata, factor="factor_2", n=2, with_corr=False)
    np.testing.assert_allclose(second["pstar_threshold"], t2)
    assert not second["pstar_informative"].any()  # max |W| = 0.2: p* < 0.5 for every link of factor_2
    agg = pm.tl.top_features(mdata, factor=[0, 1], n=3, aggregate=True, with_corr=False)
    assert agg["feature"].tolist() == ["g1", "g2", "g0"]  # strength = summed effective loadings 0.9, 0.5, 0.2
    np.testing.assert_allclose(agg["strength"], [0.9, 0.5, 0.2])
    assert agg["factor"].tolist() == ["factor_1"] * 3  # the dominant factor by effective loading
    # θ ≥ λ0/(λ0 + λ1): even a zero link has p* ≥ 0.5, so p* says nothing
    high = pm.tl.top_features(_stored(w, eff, signed, [0.95, 0.5], "{}"), factor=0, n=1, with_corr=False)
    assert high["pstar_threshold"].iloc[0] == 0 and not high["pstar_informative"].iloc[0]


def test_top_features_needs_the_stored_effective_loadings():
    w = np.array([[0.9, 0.0], [0.3, -0.2]])
    mdata = _stored(w, w, w)
    del mdata.mod["m"].varm["poems_effective_signed"]
    with pytest.raises(KeyError, match=r"model\.store_results\(mdata\)"):
        pm.tl.top_features(mdata, with_corr=False)


def test_top_features_factor_selection_and_aggregate(trained):
    mdata, model = trained
    by_pos = pm.tl.top_features(model, "a", factor=[0, 2], n=3)
    by_name = pm.tl.top_features(model, "a", factor=["factor_1", "factor_3"], n=3)
    pd.testing.assert_frame_equal(by_pos, by_name)
    agg = pm.tl.top_features(model, "a", factor=[0, 2], n=6, aggregate=True)
    E = model.get_effective_loadings("a")[["factor_1", "factor_3"]]
    strength = E.sum(1).sort_values(ascending=False)
    assert agg["feature"].tolist() == strength.index[:6].tolist()
    np.testing.assert_allclose(agg["strength"], strength.iloc[:6], rtol=1e-6)
    # the reported factor is the dominant one among those selected, and the link columns are its
    assert agg["factor"].tolist() == E.loc[agg["feature"]].idxmax(axis=1).tolist()
    np.testing.assert_allclose(agg["effective"], E.loc[agg["feature"]].max(axis=1), rtol=1e-6)


def test_top_features_from_stored_mudata_matches_model(trained):
    mdata, model = trained
    from_model = pm.tl.top_features(model, n=3)
    from_mdata = pm.tl.top_features(mdata, n=3)
    pd.testing.assert_frame_equal(from_model, from_mdata, check_exact=False, rtol=1e-5)


def test_top_features_bad_arguments(trained):
    _, model = trained
    with pytest.raises(ValueError, match="Unknown factor"):
        pm.tl.top_features(model, factor="factor_99")
    with pytest.raises(ValueError, match="out of range"):
        pm.tl.top_features(model, factor=K_TRUE)  # the kept factors are numbered 0..K_TRUE-1
    with pytest.raises(ValueError, match="not available"):
        pm.tl.top_features(model, "protein")
    with pytest.raises(ValueError, match="positive integer"):
        pm.tl.top_features(model, n=0)


# ---------------------------------------------------------------------------------------------------------------
# variance_explained
# ---------------------------------------------------------------------------------------------------------------
def _r2_by_hand(model, mdata):
    """Recompute R² with numpy from the model's posterior means and decoder (observed samples only)."""
    module = model.module
    z = torch.as_tensor(model.get_latent_representation(mdata), dtype=torch.float32)
    out = {}
    with torch.no_grad():
        for v, mod in enumerate(model.modalities):
            pos, x = _observed(mdata, mod)
            mean, scale = module.likelihoods[v].view_mean.numpy(), module.likelihoods[v].view_scale.numpy()
            xs = (x - mean) / scale
            sst = ((xs - xs.mean(0)) ** 2).sum()

            def r2(zz, v=v, pos=pos, xs=xs, sst=sst):
                xh = module.generative(zz)["px_means"][v].numpy()[pos]
                return 1 - ((xs - xh) ** 2).sum() / sst

            full = r2(z)
            per = []
            for k in range(z.shape[1]):
                zk = z.clone()
                zk[:, k] = z[:, k].mean()
                per.append(max(0.0, full - r2(zk)))
            out[mod] = (full, np.array(per))
    return out


def test_variance_explained_matches_definition(trained):
    mdata, model = trained
    df = pm.tl.variance_explained(model, batch_size=32)
    assert list(df.columns) == ["modality", "factor", "r2"]
    assert len(df) == 2 * K_TRUE + 2
    wide = df.pivot(index="modality", columns="factor", values="r2")
    assert list(wide.columns) == sorted(model.factor_names() + ["total"])
    by_hand = _r2_by_hand(model, mdata)
    for mod, (full, per) in by_hand.items():
        assert wide.loc[mod, "total"] == pytest.approx(full, abs=1e-4)
        np.testing.assert_allclose(wide.loc[mod, model.factor_names()], per, atol=1e-4)
    assert (df["r2"] >= 0).all() and (df["r2"] <= 1).all()
    # three strong planted factors: the latent space explains a good part of both modalities
    assert (wide["total"] > 0.3).all()


def test_variance_explained_factor_cut_from_modality_explains_nothing(trained):
    mdata, model = trained
    dec = model.module.decoders[0]
    saved = dec.W.detach().clone()
    try:
        with torch.no_grad():
            dec.W[:, 1] = 0.0  # factor_2 no longer reaches modality a
        df = pm.tl.variance_explained(model, store=False)
    finally:
        with torch.no_grad():
            dec.W.copy_(saved)
    r2 = df.set_index(["modality", "factor"])["r2"]
    assert r2[("a", "factor_2")] == 0.0
    assert r2[("b", "factor_2")] > 0.0


def test_variance_explained_stored_and_h5mu_roundtrip(trained, tmp_path):
    mdata, model = trained
    df = pm.tl.variance_explained(model, store=True)
    uns = mdata.uns["poems"]
    assert {"params", "modalities", "factors"} <= set(uns)  # store_results' keys are kept
    stored = uns["variance_explained"]
    assert stored["r2_per_factor"].shape == (2, K_TRUE)
    path = tmp_path / "r.h5mu"
    mdata.write(path)
    back = md.read_h5mu(path)
    from poems_mu.tl._variance import stored_variance_explained

    pd.testing.assert_frame_equal(stored_variance_explained(back), df)


# ---------------------------------------------------------------------------------------------------------------
# cross_omic_associations
# ---------------------------------------------------------------------------------------------------------------
def test_cross_omic_associations_scores_and_tests(trained):
    mdata, model = trained
    df = pm.tl.cross_omic_associations(model, n_top=5, fdr=0.05, store=True)
    assert list(df.columns) == [
        "feature_a",
        "modality_a",
        "feature_b",
        "modality_b",
        "factor",
        "score",
        "rho",
        "p",
        "q",
        "significant",
        "n_samples",
    ]
    assert 0 < len(df) <= K_TRUE * 5 * 5
    assert not df.duplicated(["feature_a", "feature_b"]).any()
    assert (np.diff(df["score"].to_numpy()) <= 0).all()
    Wa, Wb = model.get_loadings("a").abs(), model.get_loadings("b").abs()
    contrib = Wa.loc[df["feature_a"]].to_numpy() * Wb.loc[df["feature_b"]].to_numpy()
    np.testing.assert_allclose(df["score"], contrib.sum(1), rtol=1e-5)
    assert df["factor"].tolist() == [model.factor_names()[k] for k in contrib.argmax(1)]
    # every pair comes from the top-5 loaders of a shared factor
    top_a = {f: set(Wa[f].nlargest(5).index) for f in Wa.columns}
    top_b = {f: set(Wb[f].nlargest(5).index) for f in Wb.columns}
    assert all(any(r.feature_a in top_a[f] and r.feature_b in top_b[f] for f in Wa.columns) for r in df.itertuples())
    # the test statistics equal scipy's Spearman over the 100 samples with both modalities
    assert (df["n_samples"] == N - 20).all()
    both = mdata.obs_names[20:]
    for r in df.sample(5, random_state=0).itertuples():
        xa = mdata.mod["a"][both, r.feature_a].X.ravel()
        xb = mdata.mod["b"][both, r.feature_b].X.ravel()
        res = stats.spearmanr(xa, xb)
        assert r.rho == pytest.approx(res.statistic, abs=1e-8)
        assert r.p == pytest.approx(res.pvalue, rel=1e-6, abs=1e-300)
    np.testing.assert_allclose(df["q"], stats.false_discovery_control(df["p"]), rtol=1e-10)
    assert (df["significant"] == (df["q"] <= 0.05)).all()
    assert df["significant"].any()
    assert mdata.uns["poems"]["cross_omic"]["n_significant"] == int(df["significant"].sum())


def test_cross_omic_single_factor_and_graph(trained):
    _, model = trained
    df = pm.tl.cross_omic_associations(model, factor="factor_1", n_top=4, store=False)
    assert len(df) == 16 and set(df["factor"]) == {"factor_1"}
    G = pm.tl.cross_omic_associations(model, factor="factor_1", n_top=4, as_graph=True, store=False)
    import networkx as nx

    assert isinstance(G, nx.Graph)
    assert G.number_of_edges() == int(df["significant"].sum())
    assert all(G.nodes[n]["modality"] in ("a", "b") for n in G.nodes)
    strict = pm.tl.cross_omic_associations(model, factor="factor_1", n_top=4, min_abs_rho=0.6, store=False)
    assert (strict["significant"] == (df["significant"] & (df["rho"].abs() >= 0.6))).all()
    everything = pm.tl.to_networkx(df, significant_only=False)
    assert everything.number_of_edges() == 16
    with pytest.raises(ValueError, match="two modalities"):
        pm.tl.cross_omic_associations(model, modalities=["a"])


def test_cross_omic_tractable_for_20k_by_20k_features():
    """Only the top loaders are paired: 20 000 × 20 000 features with K=8 test at most 8·n_top² pairs."""
    rng = np.random.default_rng(1)
    n, d, k, n_top = 30, 20_000, 8, 20
    mods = {}
    for name in ("rna", "atac"):
        adata = ad.AnnData(
            rng.normal(size=(n, d)).astype(np.float32), obs=pd.DataFrame(index=[f"c{i}" for i in range(n)])
        )
        adata.var_names = [f"{name}{j}" for j in range(d)]
        w = rng.normal(size=(d, k)) * (rng.random((d, k)) < 0.01)
        adata.varm["poems_W"] = w.astype(np.float32)
        mods[name] = adata
    mdata = md.MuData(mods)
    df = pm.tl.cross_omic_associations(mdata, n_top=n_top)
    assert 0 < len(df) <= k * n_top**2
    assert df["rho"].notna().all()
    # pure noise data: next to nothing survives the FDR
    assert df["significant"].mean() < 0.05


# ---------------------------------------------------------------------------------------------------------------
# factor_associations and subtype_correlations
# ---------------------------------------------------------------------------------------------------------------
def test_factor_associations_finds_planted_covariates(trained):
    mdata, _ = trained
    z = mdata.obsm["X_poems"].astype(np.float64)
    rng = np.random.default_rng(0)
    mdata.obs["cat"] = pd.Categorical(np.where(z[:, 1] > np.median(z[:, 1]), "up", "down"))
    mdata.obs["num"] = z[:, 2] + 0.1 * rng.normal(size=N)
    mdata.obs.loc[mdata.obs_names[:5], "num"] = np.nan
    df = pm.tl.factor_associations(mdata, ["cat", "num"], store=True)
    assert list(df.columns) == ["key", "factor", "test", "statistic", "effect", "p", "q", "significant", "n_samples"]
    assert len(df) == 2 * K_TRUE
    top = df.groupby("key", sort=False).head(1).set_index("key")
    assert top.loc["cat", "factor"] == "factor_2" and top.loc["cat", "test"] == "kruskal"
    assert top.loc["num", "factor"] == "factor_3" and top.loc["num", "test"] == "spearman"
    assert top["significant"].all()
    cat = df[df["key"] == "cat"].set_index("factor")
    groups = [z[mdata.obs["cat"] == g, 0] for g in ("down", "up")]
    assert cat.loc["factor_1", "p"] == pytest.approx(stats.kruskal(*groups).pvalue)
    num = df[df["key"] == "num"]
    assert (num["n_samples"] == N - 5).all()
    np.testing.assert_allclose(df["q"], stats.false_discovery_control(df["p"]))
    anova = pm.tl.factor_associations(mdata, "cat", categorical_test="anova", store=False)
    assert anova.iloc[0]["factor"] == "factor_2"
    assert anova.iloc[0]["p"] == pytest.approx(
        stats.f_oneway(*[z[mdata.obs["cat"] == g, 1] for g in ("down", "up")]).pvalue
    )
    assert 0 < anova.iloc[0]["effect"] <= 1
    assert "factor_associations" in mdata.uns["poems"]
    with pytest.raises(KeyError, match="not found"):
        pm.tl.factor_associations(mdata, "nope")


def test_subtype_correlations(trained):
    mdata, _ = trained
    rng = np.random.default_rng(0)
    mdata.obs["three"] = pd.Categorical(rng.choice(["x", "y", "w"], size=N), categories=["x", "y", "w"])
    maps = pm.tl.subtype_correlations(mdata, "three", store=True)
    assert list(maps) == ["input", "latent", "input_a", "input_b"]
    for c in maps.values():
        assert list(c.index) == ["x", "y", "w"] and list(c.columns) == ["x", "y", "w"]
        np.testing.assert_allclose(np.diag(c), 1.0)
        np.testing.assert_allclose(c, c.T)
    # latent map by hand: correlation of the centred group means across factors
    z = mdata.obsm["X_poems"].astype(np.float64)
    z = z - z.mean(0)
    cent = np.stack([z[mdata.obs["three"] == g].mean(0) for g in ["x", "y", "w"]])
    np.testing.assert_allclose(maps["latent"], np.corrcoef(cent), atol=1e-10)
    # the two planted groups separate: anti-correlated centroids in both spaces
    two = pm.tl.subtype_correlations(mdata, "group", store=False)
    assert two["input"].loc["high", "low"] < -0.9 and two["latent"].loc["high", "low"] < -0.9
    assert mdata.uns["poems"]["subtype_correlations"]["latent"].shape == (3, 3)
    # without centring, the groups share the average profile: correlations go up
    raw = pm.tl.subtype_correlations(mdata, "group", center=False, store=False)
    assert raw["input"].loc["high", "low"] > two["input"].loc["high", "low"]


# ---------------------------------------------------------------------------------------------------------------
# scanpy on the stored result
# ---------------------------------------------------------------------------------------------------------------
def test_scanpy_neighbors_and_embedding_on_mudata(trained, tmp_path):
    import scanpy as sc

    mdata, _ = trained
    m = mdata.copy()
    # the exact kNN + Gaussian kernel skip pynndescent/umap's ~25 s numba compilation; the MuData handling
    # (use_rep read from mdata.obsm, graphs written to mdata.obsp/uns) is the same as with the defaults
    sc.pp.neighbors(m, use_rep="X_poems", n_neighbors=10, transformer="sklearn", method="gauss")
    assert m.obsp["connectivities"].shape == (N, N)
    assert m.uns["neighbors"]["params"]["use_rep"] == "X_poems"
    # (sc.tl.umap works too, but its numba compilation takes ~40 s: not in the unit tests)
    ax = sc.pl.embedding(m, basis="X_poems", color="group", show=False)
    assert ax.get_title() == "group"
    labels = {t.get_text() for t in ax.get_legend().get_texts()} if ax.get_legend() else set()
    assert labels == {"high", "low"}
    axs = sc.pl.embedding(m, basis="X_poems", components="2,3", color=["group", "poems_gate_a"], show=False)
    assert [a.get_title() for a in axs] == ["group", "poems_gate_a"]
    ax.figure.savefig(tmp_path / "emb.png")
    assert (tmp_path / "emb.png").read_bytes()[:4] == b"\x89PNG"


def test_dense_decoder_variance_explained_works_and_loadings_tools_explain():
    mdata = _toy_mudata(seed=1)
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=3, decoder="dense", factor_start="random")
    model.train(max_epochs=3, early_stopping=False, enable_progress_bar=False)
    df = pm.tl.variance_explained(model, store=False)
    assert len(df) == 2 * 3 + 2 and df["r2"].notna().all()
    with pytest.raises(ValueError, match="decoder='sparse'"):
        pm.tl.top_features(model)
    with pytest.raises(ValueError, match="decoder='sparse'"):
        pm.tl.cross_omic_associations(model)


def test_stored_mudata_whole_nan_rows_count_as_missing():
    """A MuData of a model set up with nan_rows_as_missing: its whole-NaN rows are unmeasured samples, not data."""
    rng = np.random.default_rng(3)
    n, names = 60, [f"s{i}" for i in range(60)]
    z = rng.normal(size=(n, 2))
    mods = {}
    for name, d in (("a", 6), ("b", 5)):
        w = rng.normal(size=(d, 2))
        adata = ad.AnnData(z @ w.T + 0.3 * rng.normal(size=(n, d)), obs=pd.DataFrame(index=names))
        adata.var_names = [f"{name}{j}" for j in range(d)]
        adata.varm["poems_W"] = w
        adata.varm["poems_effective"] = np.abs(w)
        adata.varm["poems_effective_signed"] = w
        mods[name] = adata

    def build(b):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = md.MuData({"a": mods["a"].copy(), "b": b})
        m.obsm["X_poems"] = z
        m.obs["g"] = pd.Categorical(np.where(z[:, 0] > 0, "hi", "lo"))
        return m

    b_nan = mods["b"].copy()
    b_nan.X[:10] = np.nan
    with_nan, absent = build(b_nan), build(mods["b"][10:].copy())
    top = pm.tl.top_features(with_nan, n=2)
    assert top["corr"].notna().all()
    pd.testing.assert_frame_equal(top, pm.tl.top_features(absent, n=2))
    cross = pm.tl.cross_omic_associations(with_nan, n_top=2, store=False)
    assert (cross["n_samples"] == n - 10).all() and cross["rho"].notna().all()
    pd.testing.assert_frame_equal(cross, pm.tl.cross_omic_associations(absent, n_top=2, store=False))
    maps = pm.tl.subtype_correlations(with_nan, "g", store=False)
    assert maps["input_b"].notna().all().all()
    pd.testing.assert_frame_equal(maps["input_b"], pm.tl.subtype_correlations(absent, "g", store=False)["input_b"])
