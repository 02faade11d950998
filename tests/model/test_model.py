"""POEMS through the public API on the real cohorts: training, outputs, results on the MuData, save/load."""

import mudata as md
import numpy as np
import pandas as pd
import pytest
import scvi

import poems_mu as pm


def test_setup_keeps_the_missing_block_missing(breast_trained):
    mdata, model = breast_trained
    assert mdata["protein"].n_obs == 150  # never padded
    assert model.modalities == ["mrna", "mirna", "protein"]
    assert model.summary_stats["n_X_protein"] == 142


def test_training_reduces_the_loss_and_runs_the_e_step(breast_trained):
    _, model = breast_trained
    hist = model.history
    assert hist["elbo_train"].iloc[-1, 0] < hist["elbo_train"].iloc[0, 0]
    for v in range(3):
        prior = model.module.priors[v]
        assert not np.allclose(prior.p_star.numpy(), 0.5)
        assert ((prior.p_star >= 0) & (prior.p_star <= 1)).all()
    assert {"theta_mrna_train", "W_density_protein_validation", "elbo_per_sample_validation"} <= set(hist)


def test_gates_follow_the_contract(breast_trained):
    mdata, model = breast_trained
    gates = model.get_gating_weights()
    assert list(gates.columns) == ["mrna", "mirna", "protein"]
    assert gates.index.equals(mdata.obs_names)
    np.testing.assert_allclose(gates.sum(1), 1.0, rtol=1e-5)
    has_protein = np.asarray(mdata.obsmap["protein"]).ravel() > 0
    assert has_protein.sum() == 150
    assert (gates.loc[~has_protein, "protein"] == 0).all()
    assert (gates.loc[has_protein, "protein"] > 0).all()


def test_outputs_have_the_right_shapes(breast_trained):
    mdata, model = breast_trained
    z = model.get_latent_representation()
    k = model.module.n_factors  # the factors kept, at most n_latent = 8
    assert 1 <= k <= 8 and z.shape == (220, k) and np.isfinite(z).all()
    w = model.get_loadings("mirna")
    assert w.shape == (184, k) and w.index.equals(mdata["mirna"].var_names)
    assert list(w.columns) == [f"factor_{i}" for i in range(1, k + 1)]
    assert model.get_slab_probabilities("protein").shape == (142, k)
    sigma = model.get_feature_sigma("mrna")
    assert (sigma > 0).all() and len(sigma) == 200
    with pytest.raises(ValueError, match="not in this model"):
        model.get_loadings("rna")


def test_store_results_round_trips_through_h5mu(breast_trained, tmp_path):
    mdata, model = breast_trained
    target = mdata.copy()
    model.store_results(target)
    k = model.module.n_factors
    assert target.obsm["X_poems"].shape == (220, k)
    np.testing.assert_allclose(target.obsm["X_poems"], model.get_latent_representation(), rtol=1e-5, atol=1e-6)
    assert target["mrna"].varm["poems_W"].shape == (200, k)
    assert not any(c.startswith(("mrna:", "mirna:", "protein:")) for c in target.obs.columns if c.startswith("poems"))
    path = tmp_path / "res.h5mu"
    target.write(path)
    back = md.read_h5mu(path)
    np.testing.assert_array_equal(back.obsm["X_poems"], target.obsm["X_poems"])
    np.testing.assert_array_equal(back["protein"].varm["poems_pstar"], target["protein"].varm["poems_pstar"])
    np.testing.assert_array_equal(back.obs["poems_gate_protein"], target.obs["poems_gate_protein"])
    np.testing.assert_array_equal(back["mirna"].var["poems_sigma"], target["mirna"].var["poems_sigma"])
    gates = back.obsm["poems_gates"]
    gates = gates.to_numpy() if isinstance(gates, pd.DataFrame) else np.asarray(gates)
    np.testing.assert_allclose(gates.sum(1), 1.0, rtol=1e-5)
    assert list(back.uns["poems"]["modalities"]) == ["mrna", "mirna", "protein"]
    assert set(back.uns["poems"]["theta"]) == {"mrna", "mirna", "protein"}
    assert back.obs["subtype"].equals(target.obs["subtype"])


def test_store_results_refuses_to_overwrite_unless_asked(breast_trained):
    mdata, model = breast_trained
    target = mdata.copy()
    target.obsm["X_poems"] = np.zeros((220, 2))
    with pytest.raises(ValueError, match=r"X_poems.*overwrite=True"):
        model.store_results(target)
    assert "poems_gates" not in target.obsm  # nothing written
    np.testing.assert_array_equal(target.obsm["X_poems"], 0)
    model.store_results(target, overwrite=True)
    assert target.obsm["X_poems"].shape == (220, model.module.n_factors)


def test_save_load_gives_identical_latents(breast_trained, tmp_path):
    mdata, model = breast_trained
    model.save(tmp_path / "model")
    loaded = pm.POEMS.load(tmp_path / "model", mdata)
    np.testing.assert_array_equal(loaded.get_latent_representation(), model.get_latent_representation())
    pd.testing.assert_frame_equal(loaded.get_loadings("mrna"), model.get_loadings("mrna"))
    np.testing.assert_array_equal(loaded.module.priors[0].p_star.numpy(), model.module.priors[0].p_star.numpy())
    with pytest.raises(ValueError, match="already exists"):
        model.save(tmp_path / "model")


def test_load_against_other_features_fails_clearly(breast_trained, tmp_path):
    mdata, model = breast_trained
    model.save(tmp_path / "m")
    other = pm.datasets.breast_tcga()
    other.mod["mirna"] = other["mirna"][:, :100].copy()
    other.update()
    with pytest.raises(ValueError, match=r"Modality 'mirna' has 100 features here but the model was trained on 184"):
        pm.POEMS.load(tmp_path / "m", other)


def test_rosmap_trains_with_three_complete_modalities():
    mdata = pm.datasets.rosmap()
    scvi.settings.seed = 1
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=6)
    model.train(max_epochs=8, enable_progress_bar=False)
    model.store_results()
    assert mdata.obsm["X_poems"].shape == (351, 6)
    gates = mdata.obsm["poems_gates"]
    assert (np.asarray(gates) > 0).all()
    assert [c for c in mdata.obs.columns if c.startswith("poems_gate_")] == [
        "poems_gate_mrna",
        "poems_gate_methylation",
        "poems_gate_mirna",
    ]


def test_a_last_minibatch_of_one_sample_trains():
    mdata = pm.datasets.breast_tcga()
    pm.POEMS.setup_mudata(mdata, modalities=["mrna", "protein"])
    model = pm.POEMS(mdata, n_latent=4)
    # 198 training samples in minibatches of 197: the second holds a single sample
    model.train(max_epochs=2, batch_size=197, early_stopping=False, enable_progress_bar=False)
    assert np.isfinite(model.history["elbo_train"].to_numpy(dtype=float)).all()
    assert model.get_latent_representation(batch_size=1).shape == (220, 4)


def test_same_seed_same_latents():
    def run():
        mdata = pm.datasets.rosmap()
        scvi.settings.seed = 7
        pm.POEMS.setup_mudata(mdata, modalities=["mrna", "mirna"])
        model = pm.POEMS(mdata, n_latent=4)
        model.train(max_epochs=3, enable_progress_bar=False)
        return model.get_latent_representation()

    np.testing.assert_array_equal(run(), run())


def _toy_modality(rng, n: int, d: int, name: str):
    import anndata as ad

    adata = ad.AnnData(rng.normal(size=(n, d)).astype(np.float32))
    adata.obs_names = [f"s{i}" for i in range(n)]
    adata.var_names = [f"{name}{j}" for j in range(d)]
    return adata


def test_training_again_switches_dropout_back_on():
    """A trained (or loaded) model sits in eval mode; a further ``train()`` must train with dropout on."""
    import lightning.pytorch as pl

    class RecordMode(pl.Callback):
        def __init__(self):
            self.modes = []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.modes.append(pl_module.module.training)

    rng = np.random.default_rng(0)
    mdata = md.MuData({"a": _toy_modality(rng, 40, 6, "a"), "b": _toy_modality(rng, 40, 4, "b")})
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=2, dropout=0.5)
    model.train(max_epochs=1, batch_size=20, early_stopping=False, enable_progress_bar=False)
    model.get_latent_representation()  # inference leaves the module in eval mode
    assert not model.module.training
    record = RecordMode()
    model.train(max_epochs=1, batch_size=20, early_stopping=False, enable_progress_bar=False, callbacks=[record])
    assert record.modes and all(record.modes)
