"""Cross-modal prediction (`impute`) and queries on new cohorts that lack whole trained modalities."""

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import torch

from poems_mu._constants import mask_key


def _cohort(mdata, modalities, samples=None):
    """A new MuData holding copies of ``modalities`` of ``mdata`` (optionally only ``samples``)."""
    mods = {}
    for m in modalities:
        a = mdata[m]
        if samples is not None:
            a = a[a.obs_names.isin(samples)]
        mods[m] = a.copy()
    return md.MuData(mods)


def _has(mdata, mod):
    return np.asarray(mdata.obsmap[mod]).ravel() > 0


def test_a_cohort_without_a_modality_is_placed_as_the_training_samples_that_lacked_it(breast_trained):
    mdata, model = breast_trained
    no_protein = ~_has(mdata, "protein")
    z_train = model.get_latent_representation()  # the training MuData
    cohort = _cohort(mdata, ["mrna", "mirna"])
    z_new = model.get_latent_representation(cohort)
    assert z_new.shape == (220, model.module.n_factors)
    order = cohort.obs_names.get_indexer(mdata.obs_names)
    # the 70 tumours without protein are the same samples with the same data either way
    np.testing.assert_allclose(z_new[order][no_protein], z_train[no_protein], rtol=1e-5, atol=1e-6)
    # the others lost an expert, so they move
    assert np.abs(z_new[order][~no_protein] - z_train[~no_protein]).max() > 1e-3


def test_a_cohort_without_a_modality_matches_the_model_with_that_modality_masked(breast_trained):
    mdata, model = breast_trained
    cohort = _cohort(mdata, ["mrna", "mirna"])
    # the module itself, fed the training minibatch with the protein mask set to 0
    tensors = next(iter(model._make_data_loader(adata=mdata, batch_size=mdata.n_obs)))
    tensors[mask_key("protein")] = torch.zeros_like(tensors[mask_key("protein")])
    model.module.eval()
    with torch.inference_mode():
        res = model.module.inference(**model.module._get_inference_input(tensors))
    order = cohort.obs_names.get_indexer(mdata.obs_names)
    loc, scale = model.get_latent_representation(cohort, return_dist=True)
    np.testing.assert_allclose(loc[order], res["qz"].loc.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(scale[order], res["qz"].scale.numpy(), rtol=1e-5, atol=1e-6)
    gates = model.get_gating_weights(cohort)
    assert (gates["protein"] == 0).all()
    np.testing.assert_allclose(gates.loc[mdata.obs_names].to_numpy(), res["alpha"].numpy(), rtol=1e-5, atol=1e-6)
    contrib = model.get_contributions(cohort)
    assert (contrib["protein"] == 0).all() and np.allclose(contrib[["mrna", "mirna"]].sum(1), 1.0)


def test_impute_never_looks_at_the_target(breast_trained):
    mdata, model = breast_trained
    with_target = model.impute("protein", n_samples=5)
    without = model.impute("protein", mdata=_cohort(mdata, ["mrna", "mirna"]), n_samples=5)
    pd.testing.assert_frame_equal(with_target, without.loc[with_target.index])
    assert with_target.shape == (220, 142)
    assert with_target.columns.equals(mdata["protein"].var_names)
    # conditioning on one modality equals a cohort that has only that one
    one = model.impute("mrna", from_modalities=["mirna"], n_samples=5)
    pd.testing.assert_frame_equal(one, model.impute("mrna", mdata=_cohort(mdata, ["mirna"]), n_samples=5))


def test_impute_is_in_data_units_and_predicts_held_in_values(breast_trained):
    mdata, model = breast_trained
    pred = model.impute("mrna", n_samples=10)
    x = pd.DataFrame(np.asarray(mdata["mrna"].X), index=mdata["mrna"].obs_names, columns=mdata["mrna"].var_names)
    x = x.loc[pred.index]
    # same centre as the data (standardisation undone: an error would shift a feature by its mean, several SD), and
    # far better than the mean profile; after 25 epochs a few features' decoders still sit up to half an SD off
    offset = (pred.mean() - x.mean()).abs() / float(x.std().median())
    assert offset.median() < 0.1 and offset.max() < 0.6
    # (a feature without links is predicted by a constant: r counts as 0)
    r = [np.corrcoef(pred[c], x[c])[0, 1] if pred[c].std() > 0 else 0.0 for c in x.columns if x[c].std() > 0]
    assert np.median(r) > 0.3


def test_the_predictive_sd_adds_the_posterior_spread_to_sigma(breast_trained):
    mdata, model = breast_trained
    sigma = model.get_feature_sigma("protein")
    _, sd1 = model.impute("protein", n_samples=1, return_std=True)  # one draw: no spread, σ alone
    np.testing.assert_allclose(sd1.to_numpy(), np.broadcast_to(sigma.to_numpy(), sd1.shape), rtol=1e-5)
    mean, sd = model.impute("protein", n_samples=20, return_std=True)
    assert sd.index.equals(mean.index) and sd.columns.equals(mean.columns)
    assert (sd.to_numpy() >= sigma.to_numpy() * (1 - 1e-6)).all()
    # a feature with a link moves with z, so its prediction spreads (by little where its loadings are small); a
    # feature without one is a constant: σ alone
    linked = (model.get_loadings("protein").loc[sd.columns].to_numpy() != 0).any(axis=1)
    assert linked.sum() >= 10 and (~linked).sum() >= 1
    ratio = sd.to_numpy() / sigma.loc[sd.columns].to_numpy()
    assert (ratio[:, linked] > 1 + 1e-6).mean() > 0.8 and ratio[:, linked].max() > 1.001
    np.testing.assert_allclose(ratio[:, ~linked], 1.0, rtol=1e-5)


def test_impute_is_reproducible_and_leaves_the_global_rng_alone(breast_trained):
    mdata, model = breast_trained
    state = torch.get_rng_state()
    a = model.impute("mirna", samples=mdata.obs_names[:30], n_samples=4)
    assert torch.equal(state, torch.get_rng_state())
    pd.testing.assert_frame_equal(a, model.impute("mirna", samples=mdata.obs_names[:30], n_samples=4))
    assert a.index.equals(mdata.obs_names[:30])


def test_impute_and_latents_do_not_write_into_the_query(breast_trained):
    mdata, model = breast_trained
    cohort = _cohort(mdata, ["mrna", "protein"])
    before = (dict(cohort.uns), {m: cohort[m].X.copy() for m in cohort.mod}, list(cohort.obsm), list(cohort.obs))
    model.impute("mirna", mdata=cohort, n_samples=2)
    model.get_latent_representation(cohort)
    assert dict(cohort.uns) == before[0] and list(cohort.obsm) == before[2] and list(cohort.obs) == before[3]
    for m in cohort.mod:
        np.testing.assert_array_equal(cohort[m].X, before[1][m])


def test_store_results_on_a_cohort_without_a_modality(breast_trained):
    mdata, model = breast_trained
    cohort = _cohort(mdata, ["mrna", "mirna"])
    model.store_results(cohort)
    assert cohort.obsm["X_poems"].shape == (220, model.module.n_factors)
    assert (cohort.obs["poems_gate_protein"] == 0).all()
    assert "poems_W" in cohort["mrna"].varm and "protein" not in cohort.mod


def test_latents_for_some_samples(breast_trained):
    mdata, model = breast_trained
    z = model.get_latent_representation()
    np.testing.assert_allclose(model.get_latent_representation(indices=[5, 0, 9]), z[[5, 0, 9]], rtol=1e-5, atol=1e-6)
    assert model.get_latent_representation(give_mean=False).shape == z.shape


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"modality": "rna"}, "'rna' is not in this model"),
        ({"modality": "protein", "from_modalities": ["mrna", "protein"]}, "contains 'protein', the modality to"),
        ({"modality": "protein", "from_modalities": ["rna"]}, r"does not have: \['rna'\]"),
        ({"modality": "protein", "from_modalities": []}, "`from_modalities` is empty"),
        ({"modality": "mrna", "from_modalities": "protein"}, r"70 of 220 samples have none of `from_modalities`"),
        ({"modality": "mrna", "samples": ["TCGA-nope"]}, r"not in this MuData \(e.g. \['TCGA-nope'\]\)"),
        ({"modality": "mrna", "n_samples": 0}, "`n_samples` must be a positive integer"),
    ],
)
def test_impute_bad_arguments(breast_trained, kwargs, match):
    _, model = breast_trained
    with pytest.raises(ValueError, match=match):
        model.impute(**kwargs)


def test_bad_cohorts_get_clear_errors(breast_trained):
    mdata, model = breast_trained
    renamed = md.MuData({"rna": mdata["mrna"].copy(), "mirna": mdata["mirna"].copy()})
    with pytest.raises(ValueError, match=r"not trained on: \['rna'\]"):
        model.get_latent_representation(renamed)
    fewer = md.MuData({"mrna": mdata["mrna"][:, :150].copy()})
    with pytest.raises(ValueError, match="Modality 'mrna' has 150 features here but the model was trained on 200"):
        model.impute("protein", mdata=fewer)
    none = md.MuData({"clinical": ad.AnnData(np.zeros((3, 2), dtype=np.float32))})
    with pytest.raises(ValueError, match=r"none of the model's modalities .* \(it has \['clinical'\]\)"):
        model.get_gating_weights(none)
    with pytest.raises(ValueError, match="needs every trained modality, and this MuData lacks"):
        model.get_elbo(_cohort(mdata, ["mrna", "mirna"]))
    # a protein-only cohort has nothing to predict mRNA from miRNA with
    with pytest.raises(ValueError, match=r"150 of 150 samples have none of `from_modalities` \['mirna'\]"):
        model.impute("mrna", mdata=_cohort(mdata, ["protein"]), from_modalities="mirna")


def test_drop_experts_hides_observed_modalities_but_never_all():
    from poems_mu.nn import drop_experts

    torch.manual_seed(0)
    observed = torch.rand(4000, 3) < 0.7
    observed[observed.sum(1) == 0, 0] = True
    kept = drop_experts(observed, 0.5)
    assert not (kept & ~observed).any()  # only observed modalities are kept
    assert kept.any(1).all()  # every sample keeps one
    # each modality is hidden with p = 0.5, unless every one of the sample's n was (probability 0.5^n): undone
    n = observed.sum(1).double()
    expected = float(((0.5 - 0.5**n) * n).sum() / n.sum())
    hidden = float((observed & ~kept).sum() / observed.sum())
    assert abs(hidden - expected) < 0.02
    assert torch.equal(drop_experts(observed, 0.0), observed)


def test_modality_dropout_acts_in_training_only_and_reconstructs_everything(breast_trained):
    mdata, model = breast_trained
    module = model.module
    tensors = next(iter(model._make_data_loader(adata=mdata, batch_size=64)))
    inputs = module._get_inference_input(tensors)
    module.eval()
    with torch.inference_mode():
        before = module.inference(**inputs)["qz"].loc
        module.modality_dropout = 0.9
        after = module.inference(**inputs)["qz"].loc
    try:
        torch.testing.assert_close(before, after)  # eval: no effect
        module.train()
        torch.manual_seed(0)
        with torch.inference_mode():
            res = module.inference(**inputs)
        assert torch.equal(res["observed"], inputs["observed"])  # the loss still sees every observed modality
        hidden = (res["alpha"] == 0) & inputs["observed"]
        assert hidden.any() and (res["alpha"] > 0).any(1).all()
    finally:
        module.modality_dropout = 0.0
        module.eval()


def test_modality_dropout_is_checked(breast_trained):
    mdata, _ = breast_trained
    with pytest.raises(ValueError, match=r"modality_dropout must be in \[0, 1\), got 1.0"):
        import poems_mu as pm

        pm.POEMS(mdata, modality_dropout=1.0)
