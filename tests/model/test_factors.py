"""K is a cap: factors with no link left are pruned and leave the model; the kept ones are ordered by the variance
they explain; the order and the pruning survive saving, loading, h5mu files and new cohorts."""

import warnings

import mudata as md
import numpy as np
import pytest
import scvi
import torch

import poems_mu as pm
from poems_mu.datasets._synthetic import make_planted
from poems_mu.model._factors import variance_explained_per_factor
from poems_mu.module._factors import permute_factors

SMALL = {"n_hidden_encoder": 32, "n_hidden_decoder": 16, "n_hidden_gate": 16}
TRAIN = {
    "max_epochs": 60,
    "n_epochs_kl_warmup": 10,
    "batch_size": 32,
    "early_stopping": False,
    "enable_progress_bar": False,
}


@pytest.fixture(scope="module")
def pruned():
    """3 planted factors, a cap of 8: the model keeps fewer than 8."""
    mdata, z, supports, _ = make_planted(n=150, n_factors=3, dims=(60, 40), seed=0)
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=8, **SMALL)
    model.train(**TRAIN)
    return mdata, z, model


def test_the_model_keeps_fewer_factors_than_the_cap_and_every_output_agrees(pruned):
    mdata, z, model = pruned
    k = model.module.n_factors
    assert 3 <= k < 8
    names = model.factor_names()
    assert names == [f"factor_{i + 1}" for i in range(k)]
    assert model.get_latent_representation().shape == (mdata.n_obs, k)
    for m in model.modalities:
        assert list(model.get_loadings(m).columns) == names
        assert list(model.get_slab_probabilities(m).columns) == names
        assert list(model.get_effective_loadings(m).columns) == names
    table = pm.tl.active_factors(model, with_r2=False)
    assert list(table.index) == names and table["active"].all()  # the default rule is the model's own pruning
    factors, _ = pm.tl.factor_stability([model, model])
    assert list(factors.index) == names
    # the pruned columns of W are exactly 0 and the kept ones are not
    kept = model.module.factor_kept
    assert int(kept.sum()) == k and bool(kept[:k].all())  # ordered: the kept factors first
    for dec in model.module.decoders:
        assert (dec.W[:, ~kept] == 0).all()
    reach = torch.stack([(dec.W[:, kept] != 0).any(0) for dec in model.module.decoders]).any(0)
    assert reach.all()


def test_factors_are_ordered_by_the_variance_they_explain(pruned):
    _, _, model = pruned
    r2 = variance_explained_per_factor(model)
    assert np.all(np.diff(r2) <= 1e-12)
    np.testing.assert_allclose(model.training_summary_["factor_r2"], r2, rtol=1e-6, atol=1e-9)
    table = pm.tl.variance_explained(model, store=False)
    per = table[table.factor != "total"].pivot(index="factor", columns="modality", values="r2").mean(axis=1)
    np.testing.assert_allclose(per.loc[model.factor_names()].to_numpy(), r2, rtol=1e-6, atol=1e-9)


def test_a_pruned_factor_no_longer_changes_any_output(pruned):
    mdata, _, model = pruned
    module = model.module
    k = module.n_factors
    before = (
        model.get_latent_representation(),
        model.get_gating_weights().to_numpy(),
        model.impute(model.modalities[0], n_samples=3).to_numpy(),
    )
    pruned_k = int(torch.nonzero(~module.factor_kept)[0])
    state = {n: t.clone() for n, t in module.state_dict().items()}
    with torch.no_grad():  # scramble everything that belongs to a pruned factor
        for enc in module.encoders:
            enc.mean.weight[pruned_k].normal_()
            enc.mean.bias[pruned_k] = 50.0
        for norm in module.gate.norms:
            norm.weight[pruned_k] = 30.0
        n = module.n_latent
        for v in range(len(module.gate.norms)):
            module.gate.net[0].weight[:, v * n + pruned_k].normal_()
        for dec in module.decoders:
            dec.A[pruned_k].normal_()
    after = (
        model.get_latent_representation(),
        model.get_gating_weights().to_numpy(),
        model.impute(model.modalities[0], n_samples=3).to_numpy(),
    )
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a, b)
    assert before[0].shape[1] == k
    module.load_state_dict(state)


def test_reordering_the_factors_changes_nothing_but_their_order(pruned):
    _, _, model = pruned
    module = model.module
    state = {n: t.clone() for n, t in module.state_dict().items()}
    z = model.get_latent_representation()
    gates = model.get_gating_weights().to_numpy()
    w = {m: model.get_loadings(m).to_numpy() for m in model.modalities}
    k = module.n_factors
    order = torch.cat([torch.arange(k - 1, -1, -1), torch.arange(k, module.n_latent)])
    permute_factors(module, order)
    np.testing.assert_allclose(model.get_latent_representation(), z[:, ::-1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(model.get_gating_weights().to_numpy(), gates, rtol=1e-5, atol=1e-6)
    for m in model.modalities:
        np.testing.assert_array_equal(model.get_loadings(m).to_numpy(), w[m][:, ::-1])
    module.load_state_dict(state)
    np.testing.assert_array_equal(model.get_latent_representation(), z)


def test_a_pruned_model_saves_loads_and_places_a_new_cohort(pruned, tmp_path):
    mdata, _, model = pruned
    model.save(tmp_path / "m", save_anndata=True)
    loaded = pm.POEMS.load(tmp_path / "m")
    assert loaded.factor_names() == model.factor_names()
    np.testing.assert_array_equal(loaded.get_latent_representation(), model.get_latent_representation())
    # a new cohort with one modality only is placed on the kept factors
    query = md.MuData({"a": mdata["a"][:20].copy()})
    z_query = loaded.get_latent_representation(query)
    assert z_query.shape == (20, model.module.n_factors)
    # results written to an h5mu file read back with the kept factors
    out = mdata.copy()
    model.store_results(out)
    out.write(tmp_path / "r.h5mu")
    back = md.read_h5mu(tmp_path / "r.h5mu")
    assert back.obsm["X_poems"].shape == (mdata.n_obs, model.module.n_factors)
    assert list(back.uns["poems"]["factors"]) == model.factor_names()
    assert int(back.uns["poems"]["n_latent"]) == 8
    assert back.mod["a"].varm["poems_W"].shape == (60, model.module.n_factors)
    np.testing.assert_allclose(back.uns["poems"]["training"]["factor_r2"], model.training_summary_["factor_r2"])


def test_the_same_seed_gives_the_same_pruned_model(pruned):
    mdata, _, model = pruned
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    again = pm.POEMS(mdata, n_latent=8, **SMALL)
    again.train(**TRAIN)
    assert again.factor_names() == model.factor_names()
    np.testing.assert_array_equal(again.get_latent_representation(), model.get_latent_representation())


def test_the_factor_prox_empties_weak_columns_in_every_modality_and_shrinks_the_others():
    from poems_mu.nn import shrink_columns

    w1 = torch.tensor([[3.0, 0.1, 0.0], [4.0, 0.0, 1.0]])
    w2 = torch.tensor([[0.0, 0.2, 0.0]])
    norms = torch.sqrt(w1.square().sum(0) + w2.square().sum(0))  # 5, sqrt(0.05), 1
    shrink_columns([w1, w2], torch.tensor([1.0, 1.0, 0.25]))
    assert (w1[:, 1] == 0).all() and (w2[:, 1] == 0).all()  # a column below its threshold leaves every modality
    after = torch.sqrt(w1.square().sum(0) + w2.square().sum(0))
    torch.testing.assert_close(after[[0, 2]], norms[[0, 2]] - torch.tensor([1.0, 0.25]))
    torch.testing.assert_close(w1[:, 0] / after[0], torch.tensor([0.6, 0.8]))  # the direction is kept


def test_a_model_whose_priors_empty_every_factor_says_so():
    """20 samples of 300 features, the random start: the factor penalty outweighs the data, every link ends at 0 and
    the user is told what to lower; with it off, the same model keeps links."""
    mdata, _, _, _ = make_planted(n=20, n_factors=2, dims=(200, 100), seed=0)
    pm.POEMS.setup_mudata(mdata)
    scvi.settings.seed = 0
    model = pm.POEMS(mdata, n_latent=4, factor_start="random", **SMALL)
    with pytest.warns(UserWarning, match="every link of W at 0.*lambda_factor"):
        model.train(**TRAIN)
    assert all((model.get_loadings(m).to_numpy() == 0).all() for m in model.modalities)
    scvi.settings.seed = 0
    model = pm.POEMS(mdata, n_latent=4, factor_start="random", lambda_factor=0, **SMALL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.train(**TRAIN)
    assert not [w for w in caught if "every link of W" in str(w.message)]
    assert any((model.get_loadings(m).to_numpy() != 0).any() for m in model.modalities)
