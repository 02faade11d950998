"""pm.tl.cross_omic_associations, factor_associations and subtype_correlations."""

import anndata as ad
import matplotlib
import mudata as md
import numpy as np
import pandas as pd
import pytest
from _tl_toy import K_TRUE, N
from scipy import stats

import poems_mu as pm

matplotlib.use("Agg")


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
