"""scanpy-style plots (pm.pl): they render to PNG, follow ax/show/save, and carry the expected labels."""

import warnings

import anndata as ad
import matplotlib
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scvi

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import poems_mu as pm

N, K = 90, 3


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(N, 2))
    names = [f"s{i}" for i in range(N)]
    mods = {}
    for name, d in (("rna", 16), ("prot", 8)):
        w = np.zeros((d, 2))
        w[np.arange(d), np.arange(d) % 2] = rng.uniform(1, 2, d)
        x = z @ w.T + 0.4 * rng.normal(size=(N, d))
        adata = ad.AnnData(x.astype(np.float32), obs=pd.DataFrame(index=names))
        adata.var_names = [f"{name}_{j}" for j in range(d)]
        mods[name] = adata
    mods["prot"] = mods["prot"][15:].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData(mods)
    mdata.obs["subtype"] = pd.Categorical(np.where(z[:, 0] > 0.5, "B", np.where(z[:, 0] < -0.5, "A", "C")))
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=K, prior_expert=False)
    model.train(max_epochs=25, lr=3e-3, early_stopping=False, enable_progress_bar=False)
    model.store_results()
    pm.tl.variance_explained(model, store=True)
    return mdata, model


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _is_png(path):
    return path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _ticks(labels):
    return [t.get_text() for t in labels]


def test_gates(trained, tmp_path):
    mdata, model = trained
    ax = pm.pl.gates(model, groupby="subtype", show=False, save=tmp_path / "gates.png")
    assert _is_png(tmp_path / "gates.png")
    assert ax.get_ylabel() == "gating weight α"
    assert "Gating" in ax.get_title()
    assert _ticks(ax.get_legend().get_texts()) == ["rna", "prot"]
    # the samples are grouped by the modalities they have first (complete ones first), then by subtype: the 15
    # samples without protein form groups of their own, and no subtype group mixes the two patterns
    subtype = mdata.obs["subtype"].astype(str).to_numpy()
    has_prot = np.asarray(mdata.obsmap["prot"]).ravel() > 0
    expected = [t for t in "ABC" if (has_prot & (subtype == t)).any()]
    expected += [t for t in "ABC" if (~has_prot & (subtype == t)).any()]
    assert _ticks(ax.get_xticklabels()) == expected
    assert [text.get_text() for text in ax.texts] == ["rna+prot", "rna"]  # each pattern once, under its groups
    assert ax.get_xlabel() == "samples grouped by the modalities they have and subtype"
    # one bar per sample and modality; the 15 samples without protein have a zero protein bar, and come last
    heights = np.array([p.get_height() for p in ax.patches]).reshape(2, N)
    np.testing.assert_allclose(heights.sum(0), 1.0, atol=1e-5)
    assert (heights[1] == 0).sum() == 15 and (heights[1, -15:] == 0).all()
    # the same from the stored MuData, on a given axes, without grouping: the two patterns only
    fig, ax2 = plt.subplots()
    out = pm.pl.gates(mdata, ax=ax2, show=False)
    assert out is ax2 and ax2.get_xlabel() == "samples grouped by the modalities they have"
    assert _ticks(ax2.get_xticklabels()) == ["rna+prot", "rna"]
    # with every modality for every sample there is one pattern, and the groups are the subtype's alone
    complete = mdata[has_prot].copy()
    pm.POEMS.setup_mudata(complete)
    ax3 = pm.pl.gates(model.get_gating_weights(complete).pipe(lambda g: _stored(complete, g)), "subtype", show=False)
    assert _ticks(ax3.get_xticklabels()) == [t for t in "ABC" if (subtype[has_prot] == t).any()]


def _stored(mdata, gates):
    mdata.obsm["poems_gates"] = gates
    return mdata


def test_contributions_plot(trained, tmp_path):
    mdata, model = trained
    ax = pm.pl.gates(model, groupby="subtype", kind="contribution", show=False, save=tmp_path / "c.png")
    assert _is_png(tmp_path / "c.png") and ax.get_ylabel() == "share of posterior precision"
    heights = np.array([p.get_height() for p in ax.patches]).reshape(2, N)
    np.testing.assert_allclose(heights.sum(0), 1.0, atol=1e-5)
    assert (heights[1] == 0).sum() == 15
    # from the stored MuData: the same bars as from the model
    ax2 = pm.pl.gates(mdata, groupby="subtype", kind="contribution", show=False)
    np.testing.assert_allclose([p.get_height() for p in ax2.patches], heights.ravel(), rtol=1e-5)
    with pytest.raises(ValueError, match="kind must be 'gate' or 'contribution'"):
        pm.pl.gates(model, kind="precision", show=False)


def test_loadings_binary_map(trained, tmp_path):
    _, model = trained
    axs = pm.pl.loadings(model, binary=True, show=False, save=str(tmp_path / "loadings"))
    assert _is_png(tmp_path / "loadings.png")  # extension added
    assert len(axs) == 2
    assert axs[0].get_title().startswith("rna: |W| > 0.01") and axs[1].get_title().startswith("prot:")
    assert _ticks(axs[0].get_yticklabels()) == model.factor_names()
    img = axs[0].get_images()[0].get_array()
    W = model.get_loadings("rna").abs().to_numpy()
    assert img.shape == (K, 16)
    assert int(np.asarray(img).sum()) == int((W > 0.01).sum())
    # the default map: the signed effective loadings of the links
    ax = pm.pl.loadings(model, "prot", sort_features=False, show=False)
    W = model.get_loadings("prot").to_numpy()
    signed = np.where(np.abs(W) > 0.01, model.get_effective_loadings("prot", signed=True).to_numpy(), 0.0)
    np.testing.assert_allclose(ax.get_images()[0].get_array(), signed.T, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="panels"):
        pm.pl.loadings(model, ax=ax, show=False)


def test_top_features_plots(trained, tmp_path):
    mdata, model = trained
    axs = pm.pl.top_features(model, factor=["factor_1", "factor_2"], n=4, show=False, save=tmp_path / "top.png")
    assert _is_png(tmp_path / "top.png")
    assert [a.get_title() for a in axs] == ["rna · factor_1", "prot · factor_1", "rna · factor_2", "prot · factor_2"]
    tab = pm.tl.top_features(model, "rna", factor="factor_1", n=4)
    assert _ticks(axs[0].get_yticklabels()) == tab["feature"].tolist()  # rank 1 at the top
    assert axs[0].get_xlabel() == "effective loading (per SD of the factor)"
    widths = [p.get_width() for p in axs[0].patches]
    np.testing.assert_allclose(widths, tab["effective"], rtol=1e-6)
    # coloured by direction: red rises with the factor, blue falls
    colours = [matplotlib.colors.to_hex(p.get_facecolor()) for p in axs[0].patches]
    expected = [pm.pl._utils.POS_COLOR if d > 0 else pm.pl._utils.NEG_COLOR for d in tab["direction"]]
    assert colours == expected

    agg = pm.pl.top_features(mdata, n=5, show=False)
    assert [a.get_title() for a in agg] == ["rna: top 5 features", "prot: top 5 features"]
    strongest = pm.tl.top_features(mdata, "prot", n=5, aggregate=True, with_corr=False)
    assert _ticks(agg[1].get_yticklabels()) == strongest["feature"].tolist()
    np.testing.assert_allclose([p.get_width() for p in agg[1].patches], strongest["strength"], rtol=1e-6)
    assert agg[1].get_xlabel() == "strength (Σ_k effective loading)"

    ax = pm.pl.top_features(model, "rna", kind="per_factor", show=False)
    assert _ticks(ax.get_xticklabels()) == model.factor_names()
    top1 = pm.tl.top_features(model, "rna", n=1, with_corr=False)
    assert [t.get_text().strip() for t in ax.texts] == top1["feature"].tolist()
    np.testing.assert_allclose([p.get_height() for p in ax.patches], top1["effective"], rtol=1e-6)
    assert ax.get_ylabel() == "largest effective loading"


def test_variance_explained_heatmap(trained, tmp_path):
    mdata, model = trained
    axs = pm.pl.variance_explained(mdata, show=False, save=tmp_path / "r2.png")
    assert _is_png(tmp_path / "r2.png")
    ax_h, ax_t = axs
    df = pm.tl.variance_explained(model, store=False)
    wide = df.pivot(index="modality", columns="factor", values="r2").loc[["rna", "prot"]]
    np.testing.assert_allclose(ax_h.get_images()[0].get_array(), wide[model.factor_names()].to_numpy(), atol=1e-6)
    assert _ticks(ax_h.get_yticklabels()) == ["rna", "prot"]
    assert _ticks(ax_h.get_xticklabels()) == model.factor_names()
    assert ax_t.get_xlabel() == "total R²"
    np.testing.assert_allclose([p.get_width() for p in ax_t.patches], wide["total"], atol=1e-6)
    # on a given axes, the totals go into the row labels
    fig, ax = plt.subplots()
    out = pm.pl.variance_explained(df, ax=ax, show=False)
    assert out is ax
    assert _ticks(ax.get_yticklabels())[0].startswith("rna (total ")


def test_factor_heatmap(trained, tmp_path):
    mdata, _ = trained
    ax = pm.pl.factor_heatmap(mdata, "subtype", sort_factors=False, show=False, save=tmp_path / "fh.png")
    assert _is_png(tmp_path / "fh.png")
    assert _ticks(ax.get_yticklabels()) == ["A", "B", "C"]
    assert [t.split(" (η² ")[0] for t in _ticks(ax.get_xticklabels())] == ["factor_1", "factor_2", "factor_3"]
    img = np.asarray(ax.get_images()[0].get_array())
    order = np.argsort(mdata.obs["subtype"].cat.codes.to_numpy(), kind="stable")
    np.testing.assert_allclose(img, mdata.obsm["X_poems"][order], rtol=1e-6)
    # dashed separators between the 3 groups
    assert sum(1 for line in ax.get_lines() if line.get_linestyle() == "--") == 2
    # by default the factors are ordered by η² with the groups, largest first
    eta = [float(t.split("η² ")[1].rstrip(")")) for t in _ticks(ax.get_xticklabels())]
    ax = pm.pl.factor_heatmap(mdata, "subtype", show=False)
    assert [float(t.split("η² ")[1].rstrip(")")) for t in _ticks(ax.get_xticklabels())] == sorted(eta, reverse=True)


def test_cross_omic_network(trained, tmp_path):
    _, model = trained
    df = pm.tl.cross_omic_associations(model, n_top=5, store=False)
    ax = pm.pl.cross_omic_network(df, n_edges=6, show=False, save=tmp_path / "net.png")
    assert _is_png(tmp_path / "net.png")
    top = df[df["significant"]].head(6)
    assert len(ax.collections[0].get_segments()) == len(top)
    texts = {t.get_text() for t in ax.texts}
    assert set(top["feature_a"]) | set(top["feature_b"]) <= texts
    assert {"rna", "prot"} <= texts
    assert "Cross-omic" in ax.get_title()
    # from the model directly, and with nothing to draw
    assert pm.pl.cross_omic_network(model, n_top=3, show=False).get_title().startswith("Cross-omic")
    empty = pm.pl.cross_omic_network(df.iloc[:0], show=False)
    assert any("no associations" in t.get_text() for t in empty.texts)


def test_subtype_correlation_maps(trained, tmp_path):
    mdata, _ = trained
    axs = pm.pl.subtype_correlations(mdata, "subtype", show=False, save=tmp_path / "sc.png")
    assert _is_png(tmp_path / "sc.png")
    assert [a.get_title() for a in axs] == ["input space", "latent space"]
    assert _ticks(axs[0].get_xticklabels()) == ["A", "B", "C"]


def test_save_true_uses_scanpy_figdir_and_show_returns_none(trained, tmp_path):
    import scanpy as sc

    mdata, _ = trained
    old = sc.settings.figdir
    sc.settings.figdir = tmp_path
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Agg cannot show
            assert pm.pl.factor_heatmap(mdata, "subtype", save=True, show=True) is None
    finally:
        sc.settings.figdir = old
    assert _is_png(tmp_path / "factor_heatmap.png")
