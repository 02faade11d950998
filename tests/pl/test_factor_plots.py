"""Factor plots a MOFA+ user can read: pl.factors, factor_heatmap's scaling and order, the signed loadings map
whose numbers are sparsity_summary's, and variance_explained's leave-one-factor-out labels."""

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
from matplotlib.colors import to_rgba

import poems_mu as pm
from poems_mu.pl._utils import palette

N, K = 90, 3


@pytest.fixture(scope="module")
def trained():
    """Two modalities driven by two factors, with loadings of both signs; a briefly trained model, stored."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=(N, 2))
    names = [f"s{i}" for i in range(N)]
    mods = {}
    for name, d in (("rna", 16), ("prot", 8)):
        w = np.zeros((d, 2))
        w[np.arange(d), np.arange(d) % 2] = rng.uniform(1, 2, d) * np.where(np.arange(d) % 4 < 2, 1, -1)
        x = z @ w.T + 0.4 * rng.normal(size=(N, d))
        adata = ad.AnnData(x.astype(np.float32), obs=pd.DataFrame(index=names))
        adata.var_names = [f"{name}_{j}" for j in range(d)]
        mods[name] = adata
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


def _ticks(labels):
    return [t.get_text() for t in labels]


def _latents(z, obs, **uns):
    """A one-modality MuData carrying latents ``z`` as ``obsm["X_poems"]`` (no model needed)."""
    names = [f"s{i}" for i in range(len(z))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"rna": ad.AnnData(np.zeros((len(z), 2), dtype=np.float32), obs=pd.DataFrame(index=names))})
    for col in obs.columns:
        mdata.obs[col] = obs[col].to_numpy() if not isinstance(obs[col].dtype, pd.CategoricalDtype) else obs[col].values
    mdata.obsm["X_poems"] = z
    mdata.uns["poems"] = {"factors": [f"factor_{k + 1}" for k in range(z.shape[1])], **uns}
    return mdata


# -- pl.factors ---------------------------------------------------------------------------------------------------
def test_factors_scatter_plots_the_named_factors(trained):
    mdata, model = trained
    z = mdata.obsm["X_poems"]
    ax = pm.pl.factors(mdata, "factor_2", "factor_1", show=False)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), z[:, [1, 0]], rtol=1e-6)
    # the axis labels name the factor and the variance it explains (what ordered the factors), from uns
    r2 = np.asarray(mdata.uns["poems"]["training"]["factor_r2"])
    assert ax.get_xlabel() == f"factor_2 ({r2[1]:.1%} of variance, leave-one-out)"
    assert ax.get_ylabel().startswith("factor_1 (")
    # 0-based positions address the same factors; a model gives its own latents and labels
    ax2 = pm.pl.factors(mdata, 2, 0, show=False)
    np.testing.assert_allclose(ax2.collections[0].get_offsets(), z[:, [2, 0]], rtol=1e-6)
    ax3 = pm.pl.factors(model, "factor_1", "factor_3", color="subtype", show=False)
    lat = model.get_latent_representation()
    np.testing.assert_allclose(ax3.collections[0].get_offsets(), lat[:, [0, 2]], rtol=1e-5)
    assert ax3.get_xlabel() == ax.get_ylabel()
    # another embedding: generic names, no variance in the labels
    mdata.obsm["X_other"] = z[:, ::-1].copy()
    try:
        ax4 = pm.pl.factors(mdata, "factor_1", "factor_2", use_rep="X_other", show=False)
    finally:
        del mdata.obsm["X_other"]
    assert (ax4.get_xlabel(), ax4.get_ylabel()) == ("factor_1", "factor_2")
    np.testing.assert_allclose(ax4.collections[0].get_offsets(), z[:, [2, 1]], rtol=1e-6)


def test_factors_scatter_colours_and_legend():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 3))
    subtype = pd.Categorical(rng.choice(["LumA", "Basal", "Her2"], 40), categories=["Basal", "Her2", "LumA", "Normal"])
    subtype[[3, 7]] = np.nan
    age = rng.uniform(30, 80, 40)
    age[[1, 2, 5]] = np.nan
    mdata = _latents(z, pd.DataFrame({"subtype": subtype, "age": age}))
    ax = pm.pl.factors(mdata, "factor_1", "factor_3", color="subtype", show=False)
    # the legend lists the categories present (unused ones left out), then the missing ones
    assert _ticks(ax.get_legend().get_texts()) == ["Basal", "Her2", "LumA", "NA"]
    colours = dict(zip(["Basal", "Her2", "LumA", "Normal"], palette(4), strict=True))
    na = pd.isna(subtype)
    grey, coloured = ax.collections
    np.testing.assert_allclose(grey.get_offsets(), z[na][:, [0, 2]])
    np.testing.assert_allclose(grey.get_facecolors(), [to_rgba("lightgray")])  # one colour for all
    np.testing.assert_allclose(coloured.get_offsets(), z[~na][:, [0, 2]])
    np.testing.assert_allclose(coloured.get_facecolors(), [colours[s] for s in np.asarray(subtype)[~na]])
    assert ax.get_title() == "subtype"
    # scanpy's stored colours are used; `groups` greys out the other categories
    mdata.uns["subtype_colors"] = ["#000000", "#ff0000", "#00ff00", "#0000ff"]
    ax = pm.pl.factors(mdata, color="subtype", groups=["LumA"], show=False)
    assert _ticks(ax.get_legend().get_texts()) == ["LumA"]
    luma = np.asarray(subtype == "LumA")
    np.testing.assert_allclose(ax.collections[1].get_offsets(), z[luma][:, :2])
    np.testing.assert_allclose(ax.collections[1].get_facecolors(), [to_rgba("#00ff00")] * luma.sum())
    assert len(ax.collections[0].get_offsets()) == 40 - luma.sum()
    # numeric: a colour bar, missing values grey underneath; a list of columns gives one panel each
    axs = pm.pl.factors(mdata, color=["age", "subtype"], show=False)
    assert [a.get_title() for a in axs] == ["age", "subtype"]
    ok = np.isfinite(age)
    np.testing.assert_allclose(axs[0].collections[0].get_offsets(), z[~ok][:, :2])
    np.testing.assert_allclose(axs[0].collections[1].get_array(), age[ok])
    assert axs[0].collections[1].colorbar.ax.get_ylabel() == "age"


def test_factors_scatter_errors(trained):
    mdata, _ = trained
    with pytest.raises(ValueError, match=r"`y`: Unknown factor 'factor_9'"):
        pm.pl.factors(mdata, "factor_1", "factor_9", show=False)
    with pytest.raises(ValueError, match=r"`x`: Factor position 5 is out of range"):
        pm.pl.factors(mdata, 5, show=False)
    with pytest.raises(TypeError, match="`x` must be one factor name"):
        pm.pl.factors(mdata, ["factor_1"], show=False)
    with pytest.raises(KeyError, match="`color` 'grade' is not an obs column"):
        pm.pl.factors(mdata, color=["subtype", "grade"], show=False)
    with pytest.raises(ValueError, match=r"`groups` \['D'\] are not categories of 'subtype'"):
        pm.pl.factors(mdata, color="subtype", groups=["D"], show=False)
    with pytest.raises(ValueError, match="`groups` selects categories"):
        pm.pl.factors(mdata, groups=["A"], show=False)
    with pytest.raises(ValueError, match="panels"):
        pm.pl.factors(mdata, color=["subtype", "subtype"], ax=plt.subplots()[1], show=False)


# -- factor_heatmap -----------------------------------------------------------------------------------------------
def _heatmap_data():
    """factor_2 separates the groups best, factor_3 next, factor_1 hardly (η² by construction)."""
    rng = np.random.default_rng(3)
    groups = np.repeat(["A", "B", "C"], [20, 15, 25])
    shift = pd.Series(groups).map({"A": -1.0, "B": 0.0, "C": 1.0}).to_numpy()
    z = np.column_stack([rng.normal(size=60), 4 * shift + rng.normal(size=60), shift + rng.normal(size=60)])
    order = rng.permutation(60)  # samples not sorted by group in the MuData
    return _latents(z[order], pd.DataFrame({"grp": pd.Categorical(groups[order])}))


def _eta2(z, labels):
    df = pd.DataFrame(z)
    means = df.groupby(labels).transform("mean").to_numpy()
    return ((means - z.mean(0)) ** 2).sum(0) / ((z - z.mean(0)) ** 2).sum(0)


def test_factor_heatmap_orders_by_eta2_and_scales_like_scanpy():
    mdata = _heatmap_data()
    z, labels = mdata.obsm["X_poems"], mdata.obs["grp"].astype(str).to_numpy()
    eta = _eta2(z, labels)
    expected = np.argsort(-eta)
    assert expected.tolist() == [1, 2, 0]
    ax = pm.pl.factor_heatmap(mdata, "grp", standard_scale="var", show=False)
    assert _ticks(ax.get_xticklabels()) == [f"factor_{k + 1} (η² {eta[k]:.2f})" for k in expected]
    img = np.asarray(ax.get_images()[0].get_array())
    np.testing.assert_allclose(img.min(0), 0.0, atol=1e-12)
    np.testing.assert_allclose(img.max(0), 1.0)
    rows = np.argsort(labels, kind="stable")
    lo, hi = z.min(0), z.max(0)
    np.testing.assert_allclose(img, ((z - lo) / (hi - lo))[rows][:, expected], rtol=1e-6)
    assert ax.images[0].colorbar.ax.get_ylabel() == "scaled to 0–1 per factor"
    # "obs": each sample scaled over the factors; sort_factors=False keeps the model's order
    ax = pm.pl.factor_heatmap(mdata, "grp", standard_scale="obs", sort_factors=False, show=False)
    img = np.asarray(ax.get_images()[0].get_array())
    np.testing.assert_allclose(img.min(1), 0.0, atol=1e-12)
    np.testing.assert_allclose(img.max(1), 1.0)
    assert _ticks(ax.get_xticklabels()) == [f"factor_{k + 1} (η² {eta[k]:.2f})" for k in range(3)]
    # unscaled: the posterior means, centred colour range
    ax = pm.pl.factor_heatmap(mdata, "grp", show=False)
    np.testing.assert_allclose(np.asarray(ax.get_images()[0].get_array()), z[rows][:, expected])
    assert ax.images[0].get_clim()[0] == -ax.images[0].get_clim()[1]


def test_factor_heatmap_rejects_old_standard_scale():
    mdata = _heatmap_data()
    with pytest.raises(ValueError, match="pass standard_scale='var'"):
        pm.pl.factor_heatmap(mdata, "grp", standard_scale=True, show=False)
    with pytest.raises(ValueError, match="`standard_scale` must be 'var', 'obs' or None"):
        pm.pl.factor_heatmap(mdata, "grp", standard_scale="zscore", show=False)
    with pytest.raises(KeyError, match="`groupby` 'batch' is not an obs column"):
        pm.pl.factor_heatmap(mdata, "batch", show=False)


# -- loadings -----------------------------------------------------------------------------------------------------
def _masked_signed(model, mod, threshold=0.01):
    W = model.get_loadings(mod).to_numpy()
    E = model.get_effective_loadings(mod, signed=True).to_numpy()
    return np.where(np.abs(W) > threshold, E, 0.0)


def test_loadings_title_numbers_are_sparsity_summary(trained):
    mdata, model = trained
    summary = model.sparsity_summary()
    for data in (model, mdata):
        axs = pm.pl.loadings(data, show=False)
        for a, mod in zip(axs, ["rna", "prot"], strict=True):
            s = summary.loc[mod]
            head = a.get_title().split("\n")[0]
            assert head == (
                f"{mod}: |W| > 0.01 in {s['density_kept']:.1%} of feature–factor pairs over the {K} kept factors "
                f"({s['density']:.1%} over all K = {K}); {s['links_per_feature']:.2f} links per feature"
            )
    # a subset of factors is said so; the headline numbers stay those of every kept factor
    ax = pm.pl.loadings(model, "rna", factors=["factor_2"], show=False)
    assert ax.get_title().split("\n")[0] == axs[0].get_title().split("\n")[0]
    assert ax.get_title().endswith("showing 1 of 3 factors")
    # another threshold: the same quantities, computed from W
    W = np.abs(model.get_loadings("prot").to_numpy())
    links = (W > 0.5).sum()
    ax = pm.pl.loadings(model, "prot", threshold=0.5, show=False)
    assert f"in {links / W.size:.1%} of feature–factor pairs" in ax.get_title()
    assert f"{links / W.shape[0]:.2f} links per feature" in ax.get_title()


def test_loadings_cells_carry_sign_and_size(trained):
    mdata, model = trained
    ax = pm.pl.loadings(model, "rna", sort_features=False, show=False)
    im = ax.get_images()[0]
    expected = _masked_signed(model, "rna")
    np.testing.assert_allclose(im.get_array(), expected.T, rtol=1e-5, atol=1e-7)
    assert (expected > 0).any() and (expected < 0).any()  # both signs are drawn as such
    lo, hi = im.get_clim()
    assert lo == -hi and hi == pytest.approx(np.abs(expected).max(), rel=1e-5)
    np.testing.assert_allclose(im.cmap(im.norm(0.0)), (1, 1, 1, 1))  # no link: white
    assert im.colorbar.ax.get_ylabel() == "effective loading, signed"
    assert ax.get_title().split("\n")[1] == "colour: effective loading, signed"
    # each factor's top loader is named on its row
    names = model.get_loadings("rna").index.to_numpy()
    assert [t.get_text() for t in ax.texts] == names[np.abs(expected).argmax(0)].tolist()
    assert [t.get_position()[1] for t in ax.texts] == [0, 1, 2]
    # ... with a dot on the cell of each
    dots = [line.get_xydata()[0].tolist() for line in ax.get_lines()]
    assert dots == [[float(j), float(r)] for r, j in enumerate(np.abs(expected).argmax(0))]
    assert all(t.get_fontsize() >= 9 for t in ax.get_yticklabels())
    # sorted: features grouped by their dominant factor, unlinked ones last; the stored MuData draws the same
    ax = pm.pl.loadings(mdata, "rna", show=False)
    img = np.asarray(ax.get_images()[0].get_array()).T
    W = model.get_loadings("rna").to_numpy()
    stored = np.where(np.abs(W) > 0.01, mdata.mod["rna"].varm["poems_effective_signed"], 0.0)
    np.testing.assert_allclose(stored, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.sort(img, axis=0), np.sort(stored, axis=0), rtol=1e-6)
    has = np.abs(img).max(1) > 0
    dom = np.where(has, np.abs(img).argmax(1), K)
    assert (np.diff(dom) >= 0).all() and has.any()
    # binary map: on/off only
    ax = pm.pl.loadings(model, "rna", binary=True, sort_features=False, label_top=False, show=False)
    W = np.abs(model.get_loadings("rna").to_numpy())
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), (W > 0.01).T)
    assert len(ax.texts) == 0 and ax.get_title().split("\n")[1] == "links on / off"


def test_loadings_without_stored_effective_loadings_shows_signed_w(trained):
    mdata, model = trained
    mod = mdata.mod["prot"]
    saved = mod.varm.pop("poems_effective_signed")
    try:
        ax = pm.pl.loadings(mdata, "prot", sort_features=False, show=False)
    finally:
        mod.varm["poems_effective_signed"] = saved
    W = model.get_loadings("prot").to_numpy()
    np.testing.assert_allclose(ax.get_images()[0].get_array(), np.where(np.abs(W) > 0.01, W, 0).T, rtol=1e-6)
    assert "no effective loadings stored" in ax.images[0].colorbar.ax.get_ylabel()
    with pytest.raises(ValueError, match="`threshold` must be a finite number >= 0"):
        pm.pl.loadings(model, threshold=-1, show=False)


# -- variance_explained -------------------------------------------------------------------------------------------
def test_variance_explained_says_leave_one_factor_out(trained):
    mdata, _ = trained
    ax_h, ax_t = pm.pl.variance_explained(mdata, show=False)
    assert "need not add up to the total" in ax_h.get_title()
    assert ax_h.get_title().startswith("Leave-one-factor-out R² per factor")
    assert ax_h.images[0].colorbar.ax.get_ylabel() == "ΔR² per factor"
    assert ax_t.get_title() == "total R²\n(all factors together)"
    fig, ax = plt.subplots()
    pm.pl.variance_explained(mdata, ax=ax, show=False)
    first = _ticks(ax.get_yticklabels())[0]
    assert first.startswith("rna (total R² ") and first.endswith(", all factors)")
