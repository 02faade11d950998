"""pm.tl.variance_explained: the definition, factors cut from a modality, storage and the dense decoder."""

import matplotlib
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scvi
import torch
from _tl_toy import K_TRUE, observed, toy_mudata

import poems_mu as pm

matplotlib.use("Agg")


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
            pos, x = observed(mdata, mod)
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


def test_dense_decoder_variance_explained_works_and_loadings_tools_explain():
    mdata = toy_mudata(seed=1)
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
