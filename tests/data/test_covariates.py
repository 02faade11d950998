"""Batch and other covariates: registration, encoding, bad input, their place in the model."""

import numpy as np
import pandas as pd
import pytest
import scvi
import torch
from sklearn.model_selection import cross_val_score
from sklearn.neighbors import KNeighborsClassifier

import poems_mu as pm
from poems_mu.data._covariates import covariate_matrix, registered_covariates


def test_setup_registers_the_encoding_and_leaves_the_mudata_as_it_was(mixed_mudata):
    mdata = mixed_mudata(30)
    mdata.obs["site"] = pd.Categorical(np.where(np.arange(30) % 3 == 0, "x", "y"), categories=["y", "x", "unused"])
    before = {k: mdata.obs[k].copy() for k in mdata.obs.columns}
    pm.POEMS.setup_mudata(
        mdata, batch_key="batch", categorical_covariate_keys=["site"], continuous_covariate_keys="age"
    )
    assert list(mdata.obs.columns) == list(before)
    for k, col in before.items():
        pd.testing.assert_series_equal(mdata.obs[k], col)
    model = pm.POEMS(mdata, n_latent=3)
    state = registered_covariates(model.adata_manager)
    # categories in the column's own order, unused ones dropped; batch first
    assert state["categories"] == {"batch": ["A", "B"], "site": ["y", "x"]}
    assert model.summary_stats["n_covariates"] == 5
    s = covariate_matrix(mdata, state)
    np.testing.assert_array_equal(s[:, 0], (mdata.obs["batch"] == "A").to_numpy())
    np.testing.assert_array_equal(s[:, 3], (mdata.obs["site"] == "x").to_numpy())
    age = mdata.obs["age"].to_numpy()
    np.testing.assert_allclose(s[:, 4], (age - age.mean()) / age.std(), rtol=1e-5)
    # a new cohort is encoded with the training categories and the training mean and SD of age
    query = mdata[mdata.obs_names[::-1][:10]].copy()
    np.testing.assert_allclose(covariate_matrix(query, state), s[::-1][:10])


@pytest.mark.parametrize(
    ("setup", "change", "match"),
    [
        ({"batch_key": "plate"}, None, r"`batch_key`.*'plate' is not a column of mdata.obs"),
        ({"categorical_covariate_keys": ["batch", "site"]}, None, r"'site' is not a column of mdata.obs"),
        (
            {"batch_key": "batch"},
            lambda o: o.__setitem__("batch", o["batch"].where(o.index != "s4")),
            r"mdata.obs\['batch'\] has 1 missing values \(e.g. samples \['s4'\]\)",
        ),
        (
            {"continuous_covariate_keys": ["age"]},
            lambda o: o.__setitem__("age", o["age"].where(o.index != "s2")),
            r"mdata.obs\['age'\] has 1 missing values",
        ),
        ({"continuous_covariate_keys": ["batch"]}, None, r"mdata.obs\['batch'\] is not numeric.*categorical_cov"),
        ({"batch_key": "batch", "categorical_covariate_keys": ["batch"]}, None, r"\['batch'\] are given more than"),
        ({"batch_key": 3}, None, r"`batch_key` takes column names of mdata.obs"),
    ],
)
def test_bad_covariates_are_refused_at_setup(mixed_mudata, setup, change, match):
    mdata = mixed_mudata(20)
    if change is not None:
        change(mdata.obs)
    with pytest.raises(ValueError, match=match):
        pm.POEMS.setup_mudata(mdata, **setup)


def test_a_query_needs_known_categories_and_every_covariate(mixed_mudata):
    mdata = mixed_mudata(40)
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata, batch_key="batch", continuous_covariate_keys=["age"])
    model = pm.POEMS(mdata, n_latent=3)
    model.train(max_epochs=1, enable_progress_bar=False)
    query = mixed_mudata(10, seed=3)
    query.obs["batch"] = ["A", "C", "D", "A", "A", "B", "B", "A", "A", "B"]
    with pytest.raises(
        ValueError, match=r"categories the model was not trained with: \['C', 'D'\].*knows \['A', 'B'\]"
    ):
        model.get_latent_representation(query)
    with pytest.raises(ValueError, match="not trained with"):
        model.impute("prot", query)
    query.obs["batch"] = "A"
    del query.obs["age"]
    with pytest.raises(ValueError, match=r"'age' is not a column of mdata.obs"):
        model.get_latent_representation(query)
    query.obs["age"] = 50.0
    assert model.get_latent_representation(query).shape == (10, 3)


def test_covariates_shift_the_decoder_additively_and_enter_the_encoders(mixed_mudata):
    mdata = mixed_mudata(30)
    pm.POEMS.setup_mudata(mdata, batch_key="batch")
    module = pm.POEMS(mdata, n_latent=3).module
    with torch.no_grad():
        for eff in module.covariate_effects:
            eff.gamma.normal_()
    z = torch.randn(6, 3)
    a, b = torch.tensor([[1.0, 0.0]]).expand(6, 2), torch.tensor([[0.0, 1.0]]).expand(6, 2)
    for v in range(len(module.modalities)):
        shift = module.decode(v, z, b) - module.decode(v, z, a)
        gamma = module.covariate_effects[v].gamma
        torch.testing.assert_close(shift, (gamma[:, 1] - gamma[:, 0]).expand(6, -1), rtol=1e-5, atol=1e-5)
        assert module.encoders[v].body[0].in_features == mdata[module.modalities[v]].n_vars + 2
    with pytest.raises(ValueError, match="2 covariate columns: pass `covariates`"):
        module.generative(z)


def _knn(z, labels):
    return cross_val_score(KNeighborsClassifier(10), z, labels, cv=5).mean()


@pytest.mark.slow
def test_with_batch_key_the_latents_lose_a_planted_batch_shift(mixed_mudata):
    """A shift of 3 SD on every prot feature and of 3 in every rna log-mean: the batch effects learnt by Γ follow
    it, and the latents carry less of the batch than without ``batch_key``
    (benchmarks/accuracy/batch_planted.py measures it properly)."""
    mdata = mixed_mudata(200, seed=1, batch_shift=3.0)
    accuracy, gammas = {}, None
    for key in (None, "batch"):
        scvi.settings.seed = 0
        pm.POEMS.setup_mudata(mdata, batch_key=key)
        model = pm.POEMS(mdata, n_latent=4, likelihood={"rna": "nb", "mut": "bernoulli"})
        model.train(max_epochs=80, enable_progress_bar=False)
        accuracy[key] = _knn(model.get_latent_representation(), mdata.obs["batch"])
        if key:
            v = model.modalities.index("prot")
            g = model.module.covariate_effects[v].gamma.detach().numpy()
            gammas = g[:, 1] - g[:, 0]  # B − A, standardised units
    assert accuracy[None] > 0.9
    assert accuracy["batch"] < accuracy[None] - 0.2
    prot_sd = mdata["prot"].X.std(0)
    assert np.median(gammas * prot_sd) > 1.5  # most of the shift of 3 is in Γ, in data units
