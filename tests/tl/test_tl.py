"""Interpretation toolkit (pm.tl) on the toy cohort: the planted factors kept, scanpy on the stored result, whole-NaN
rows of a stored MuData."""

import warnings

import anndata as ad
import matplotlib
import mudata as md
import numpy as np
import pandas as pd
from _tl_toy import K_TRUE, N

import poems_mu as pm

matplotlib.use("Agg")


def test_a_cap_of_4_keeps_the_3_planted_factors(trained):
    _, model = trained
    assert model.module.n_factors == K_TRUE
    assert model.factor_names() == [f"factor_{k + 1}" for k in range(K_TRUE)]
    # the factors are matched one to one with the planted ones
    z = model.get_latent_representation()
    truth = np.random.default_rng(0).normal(size=(N, K_TRUE))  # _toy_mudata's first draw
    corr = np.abs(np.corrcoef(z.T, truth.T)[:K_TRUE, K_TRUE:])
    assert (corr.max(axis=1) > 0.8).all() and sorted(corr.argmax(axis=1)) == list(range(K_TRUE))


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
