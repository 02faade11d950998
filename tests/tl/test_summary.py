"""pm.tl.summary: the command line's one-screen summary as tables a notebook can read."""

import numpy as np
import pytest

import poems_mu as pm


@pytest.mark.slow
def test_summary_tables_agree_with_the_model(breast_trained):
    mdata, model = breast_trained
    s = pm.tl.summary(model)
    # one row per modality, the sparsity columns equal to sparsity_summary's
    assert list(s.modalities.index) == model.modalities
    sparsity = model.sparsity_summary()
    for col in ("density", "density_kept", "links_per_feature", "zeros", "slab"):
        np.testing.assert_allclose(
            s.modalities[col].to_numpy(float), sparsity.loc[model.modalities, col].to_numpy(float)
        )
    # samples and gates over the samples that have each modality (protein: 150 of 220)
    assert s.modalities.loc["protein", "samples"] == 150
    assert s.modalities.loc["mrna", "samples"] == mdata.n_obs
    present = np.asarray(mdata.obsmap["protein"]).ravel() > 0
    gate = model.get_gating_weights()["protein"].to_numpy()[present].mean()
    assert s.modalities.loc["protein", "gate"] == pytest.approx(gate)
    # one row per kept factor in the model's order, with the variance that ordered them (non-increasing)
    assert list(s.factors.index) == model.factor_names()
    r2 = s.factors["r2"].to_numpy()
    assert np.isfinite(r2).all() and (np.diff(r2) <= 1e-12).all()
    w = model.get_loadings("mrna").to_numpy()
    np.testing.assert_array_equal(s.factors["links_mrna"].to_numpy(), (np.abs(w) > 0.01).sum(0))
    assert s.training["n_factors"] == len(model.factor_names()) and s.training["n_latent"] == 8
    assert s.training["epochs"] == 25 and not s.training["stopped_early"]
    # it prints as the command line's screen
    text = str(s)
    assert "protein" in text and f"{s.training['n_factors']} factors (of at most 8)" in text
    assert repr(s) == text


def test_summary_needs_a_trained_model(breast_trained):
    mdata, _ = breast_trained
    with pytest.raises(TypeError, match="trained poems_mu.POEMS"):
        pm.tl.summary(mdata)
