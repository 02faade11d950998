"""pm.pl.weights: the top features of each factor drawn with their signed effective loadings."""

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
from matplotlib.colors import to_hex

import poems_mu as pm
from poems_mu.pl._utils import NEG_COLOR, POS_COLOR

N = 80
GAUSSIAN_LABEL = "signed effective loading\n(change of the standardised feature per SD of the factor)"


@pytest.fixture(scope="module")
def trained():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(N, 2))
    names = [f"s{i}" for i in range(N)]
    mods = {}
    for name, d in (("rna", 12), ("prot", 6)):
        w = np.zeros((d, 2))
        w[np.arange(d), np.arange(d) % 2] = rng.uniform(1, 2, d) * rng.choice([-1, 1], d)
        x = z @ w.T + 0.4 * rng.normal(size=(N, d))
        adata = ad.AnnData(x.astype(np.float32), obs=pd.DataFrame(index=names))
        adata.var_names = [f"{name}_{j}" for j in range(d)]
        mods[name] = adata
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData(mods)
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=3, prior_expert=False)
    model.train(max_epochs=20, lr=3e-3, early_stopping=False, enable_progress_bar=False)
    model.store_results()
    return mdata, model


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _drawn(ax):
    """(feature, bar width) from the top of the panel down, and the bars' colours."""
    bars = sorted(ax.patches, key=lambda p: -p.get_y())
    ticks = {t: lab.get_text() for t, lab in zip(ax.get_yticks(), ax.get_yticklabels(), strict=True)}
    pairs = [(ticks[round(p.get_y() + p.get_height() / 2)], p.get_width()) for p in bars]
    return pairs, [to_hex(p.get_facecolor()) for p in bars]


def _ticks(ax):
    return [t.get_text() for t in ax.get_yticklabels()]


def _stored():
    """A MuData with stored results written by hand: 5 features, 2 factors, known signed effective loadings."""
    adata = ad.AnnData(np.zeros((3, 5)), obs=pd.DataFrame(index=["s0", "s1", "s2"]))
    adata.var_names = ["g0", "g1", "g2", "g3", "g4"]
    adata.varm["poems_W"] = np.array([[0.9, 0.1], [0.3, -0.2], [-0.5, 0.0], [0.2, 0.4], [0.0, 0.3]])
    adata.varm["poems_effective"] = np.array([[0.2, 0.1], [0.6, 0.3], [0.4, 0.0], [0.1, 0.5], [0.0, 0.2]])
    adata.varm["poems_effective_signed"] = np.array([[0.1, 0.1], [-0.5, 0.3], [0.4, 0.0], [-0.1, -0.5], [0.0, 0.2]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"m": adata})
    mdata.uns["poems"] = {"modalities": ["m"], "factors": ["factor_1", "factor_2"], "likelihoods": {"m": "gaussian"}}
    return mdata


def test_weights_draws_the_top_features_with_their_signed_effective_loadings():
    axs = pm.pl.weights(_stored(), "m", n=3, show=False)
    assert [a.get_title() for a in axs] == ["m · factor_1", "m · factor_2"]
    pairs, colours = _drawn(axs[0])
    # ranked by the unsigned effective loading (0.6, 0.4, 0.2), drawn with the signed one
    assert pairs == [("g1", -0.5), ("g2", 0.4), ("g0", 0.1)]
    assert colours == [NEG_COLOR, POS_COLOR, POS_COLOR]
    pairs, colours = _drawn(axs[1])
    assert pairs == [("g3", -0.5), ("g1", 0.3), ("g4", 0.2)]
    assert colours == [NEG_COLOR, POS_COLOR, POS_COLOR]
    for a in axs:
        assert a.get_xlabel() == GAUSSIAN_LABEL
        left, right = a.get_xlim()
        assert left == pytest.approx(-right) and right == pytest.approx(0.5 * 1.15)  # zero in the middle
        assert any(list(line.get_xdata()) == [0, 0] for line in a.get_lines())  # the zero line


def test_weights_from_a_model_matches_its_table(trained, tmp_path):
    mdata, model = trained
    axs = pm.pl.weights(model, "rna", factors=[0, "factor_2"], n=4, show=False, save=tmp_path / "w")
    assert (tmp_path / "w.png").read_bytes()[:4] == b"\x89PNG"
    assert [a.get_title() for a in axs] == ["rna · factor_1", "rna · factor_2"]
    signed = model.get_effective_loadings("rna", signed=True)
    for a, fac in zip(axs, ["factor_1", "factor_2"], strict=True):
        top = model.get_effective_loadings("rna")[fac].sort_values(ascending=False, kind="stable").index[:4]
        pairs, colours = _drawn(a)
        assert [f for f, _ in pairs] == top.tolist()
        np.testing.assert_allclose([w for _, w in pairs], signed.loc[top, fac], rtol=1e-5)
        assert colours == [POS_COLOR if v > 0 else NEG_COLOR for v in signed.loc[top, fac]]
    # the stored results and the table the tool returns give the same panels, without the model
    table = pm.tl.top_features(model, "rna", factor=["factor_1", "factor_2"], n=4, with_corr=False)
    for source in (mdata, table):
        again = pm.pl.weights(source, "rna", factors=["factor_1", "factor_2"], n=4, show=False)
        for a, b in zip(axs, again, strict=True):
            assert _ticks(a) == _ticks(b)
            np.testing.assert_allclose([w for _, w in _drawn(a)[0]], [w for _, w in _drawn(b)[0]], rtol=1e-5)
    assert again[0].get_xlabel().startswith("signed effective loading\n(change of the feature on the link scale")
    # default: the active factors, one panel each
    every = pm.pl.weights(mdata, "prot", n=2, show=False)
    every = every if isinstance(every, list) else [every]
    active = model.active_factors()
    assert [a.get_title() for a in every] == [f"prot · {f}" for f in active.index[active["active"]]]


def test_weights_accepts_a_table_and_draws_only_what_it_holds():
    table = pm.tl.top_features(_stored(), "m", factor=1, n=2, with_corr=False)
    ax = pm.pl.weights(table, "m", show=False)
    assert ax.get_title() == "m · factor_2"
    assert _drawn(ax)[0] == [("g3", -0.5), ("g1", 0.3)]
    fig, own = plt.subplots()
    assert pm.pl.weights(table, "m", factors=1, n=5, ax=own, show=False) is own
    with pytest.raises(ValueError, match="compute the table with it"):
        pm.pl.weights(table, "m", factors="factor_1", show=False)
    with pytest.raises(ValueError, match="aggregate=True"):
        pm.pl.weights(pm.tl.top_features(_stored(), factor=[0, 1], n=3, aggregate=True, with_corr=False), "m")
    with pytest.raises(ValueError, match=r"without the columns \['effective_signed'\]"):
        pm.pl.weights(table.drop(columns="effective_signed"), "m")


def test_weights_bad_arguments():
    mdata = _stored()
    with pytest.raises(ValueError, match=r"`modality` 'rna' is not available; choose one of \['m'\]"):
        pm.pl.weights(mdata, "rna")
    with pytest.raises(ValueError, match=r"`modality` 'rna' is not in the table; choose one of \['m'\]"):
        pm.pl.weights(pm.tl.top_features(mdata, n=2, with_corr=False), "rna")
    with pytest.raises(TypeError, match="one modality name"):
        pm.pl.weights(mdata, ["m"])
    with pytest.raises(ValueError, match="`n` must be a positive integer"):
        pm.pl.weights(mdata, "m", n=0)
    with pytest.raises(ValueError, match="Unknown factor"):
        pm.pl.weights(mdata, "m", factors="factor_9")
    fig, own = plt.subplots()
    with pytest.raises(ValueError, match="panels"):
        pm.pl.weights(mdata, "m", ax=own)  # two factors, one axes
