"""Count and binary likelihoods: their densities, what the encoders see, predictions, bad input, round trips."""

import mudata as md
import numpy as np
import pytest
import scvi
import torch
from scipy import stats

import poems_mu as pm
from poems_mu.nn import BernoulliLikelihood, NegativeBinomialLikelihood

LIKELIHOOD = {"rna": "nb", "mut": "bernoulli"}


def _trained(mdata, epochs=3, **setup):
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata, **setup)
    model = pm.POEMS(mdata, n_latent=4, likelihood=LIKELIHOOD)
    model.train(max_epochs=epochs, enable_progress_bar=False)
    return model


def test_nb_and_bernoulli_densities_match_scipy():
    rng = np.random.default_rng(0)
    x = torch.as_tensor(rng.poisson(30, size=(5, 4)), dtype=torch.float64)
    eta = torch.as_tensor(rng.normal(-3, 1, size=(5, 4)))
    log_lib = torch.as_tensor(np.log(rng.uniform(100, 1000, size=5)))
    nb = NegativeBinomialLikelihood(4).double()
    with torch.no_grad():
        nb.log_theta.copy_(torch.as_tensor(np.log([0.5, 2.0, 10.0, 200.0])))
    mu = np.exp(eta.numpy() + log_lib.numpy()[:, None])
    theta = nb.theta.detach().numpy()
    expected = -stats.nbinom.logpmf(x.numpy(), theta, theta / (theta + mu))
    np.testing.assert_allclose(nb.nll(x, eta, log_lib).detach().numpy(), expected, rtol=1e-9)
    np.testing.assert_allclose(nb.variance(eta, log_lib).detach().numpy(), mu + mu**2 / theta, rtol=1e-9)
    b = torch.as_tensor(rng.random((5, 4)) < 0.3, dtype=torch.float64)
    p = 1 / (1 + np.exp(-eta.numpy()))
    expected = -stats.bernoulli.logpmf(b.numpy(), p)
    np.testing.assert_allclose(BernoulliLikelihood(4).nll(b, eta).numpy(), expected, rtol=1e-9)


def test_unknown_likelihood_names_the_modality(mixed_mudata):
    mdata = mixed_mudata(40)
    pm.POEMS.setup_mudata(mdata)
    with pytest.raises(ValueError, match=r"Modality 'rna': unknown likelihood 'poisson'.*'nb'"):
        pm.POEMS(mdata, likelihood={"rna": "poisson"})
    with pytest.raises(ValueError, match=r"not registered: \['rnaseq'\]"):
        pm.POEMS(mdata, likelihood={"rnaseq": "nb"})
    with pytest.raises(ValueError, match=r"`likelihood` takes a likelihood name .* or a mapping"):
        pm.POEMS(mdata, likelihood=["nb"])


@pytest.mark.parametrize(
    ("modality", "likelihood", "change", "match"),
    [
        ("rna", "nb", lambda x: x - x.max() - 1, r"'rna' is modelled with likelihood 'nb'.*negative or non-integer"),
        ("rna", "nb", lambda x: x + 0.5, r"'rna' is modelled with likelihood 'nb'.*non-integer values \(e.g. \["),
        ("rna", "nb", np.log1p, r"'rna'.*'nb'.*likelihood 'gaussian' for transformed data"),
        ("mut", "bernoulli", lambda x: x * 2, r"'mut' is modelled with likelihood 'bernoulli'.*other than 0 and 1"),
    ],
)
def test_data_that_do_not_suit_the_likelihood_are_refused(mixed_mudata, modality, likelihood, change, match):
    mdata = mixed_mudata(40)
    mdata[modality].X = change(mdata[modality].X)
    pm.POEMS.setup_mudata(mdata)
    with pytest.raises(ValueError, match=match):
        pm.POEMS(mdata, likelihood={modality: likelihood})
    pm.POEMS(mdata)  # all Gaussian: the same data are fine


def test_size_factors_are_checked(mixed_mudata):
    mdata = mixed_mudata(40)
    with pytest.raises(ValueError, match=r"size_factor_key` of modality 'rna': 'depth' is not a column"):
        pm.POEMS.setup_mudata(mdata, size_factor_key={"rna": "depth"})
    mdata.obs.loc["s3", "library"] = 0.0
    pm.POEMS.setup_mudata(mdata, size_factor_key={"rna": "library"})
    with pytest.raises(ValueError, match=r"mdata.obs\['library'\] is missing, zero, negative.*\['s3'\]"):
        pm.POEMS(mdata, likelihood=LIKELIHOOD)
    with pytest.raises(ValueError, match=r"size_factor_key=\{'rna': 'library'\}, but no modality is modelled .*'nb'"):
        pm.POEMS(mdata, likelihood={"mut": "bernoulli"})
    mdata.obs.loc["s3", "library"] = 1000.0
    pm.POEMS.setup_mudata(mdata, size_factor_key={"rna": "library", "prot": "library"})
    with pytest.raises(ValueError, match=r"names modalities \['prot'\], which are not modelled with likelihood 'nb'"):
        pm.POEMS(mdata, likelihood=LIKELIHOOD)
    pm.POEMS.setup_mudata(mdata, size_factor_key="library")  # one column: for every count modality
    pm.POEMS(mdata, likelihood=LIKELIHOOD)


def test_a_query_with_non_counts_under_nb_is_refused(mixed_mudata):
    model = _trained(mixed_mudata(40), epochs=1)
    query = mixed_mudata(20, seed=1)
    query["rna"].X = query["rna"].X * 0.5 + 0.25
    with pytest.raises(ValueError, match=r"'rna' of this MuData is modelled with likelihood 'nb'"):
        model.get_latent_representation(query)


def test_the_count_view_does_not_depend_on_sequencing_depth(mixed_mudata):
    """With the default library (the total counts), a sample sequenced twice as deep is placed at the same z."""
    model = _trained(mixed_mudata(40), epochs=2)
    query = mixed_mudata(40)
    query["rna"].X = query["rna"].X * 2
    np.testing.assert_allclose(
        model.get_latent_representation(query), model.get_latent_representation(), rtol=1e-5, atol=1e-5
    )
    deeper = model.get_latent_representation(query)  # a change that is not a depth change does move it
    query["rna"].X[:, :5] = query["rna"].X[:, :5] * 3
    assert np.abs(model.get_latent_representation(query) - deeper).max() > 1e-3


def test_predictions_are_the_likelihood_means_in_data_units(mixed_mudata):
    model = _trained(mixed_mudata(60), epochs=3)
    module = model.module
    mean, sd = model.impute("mut", return_std=True, n_samples=5)
    assert ((mean.values >= 0) & (mean.values <= 1)).all()
    np.testing.assert_allclose(sd.values, np.sqrt(mean.values * (1 - mean.values)), rtol=1e-5, atol=1e-6)
    counts, counts_sd = model.impute("rna", return_std=True, n_samples=1)
    # one draw at the posterior sample: the mean is L0 exp(η), the SD the NB one around it
    v = model.modalities.index("rna")
    theta = module.likelihoods[v].theta.detach().numpy()
    np.testing.assert_allclose(counts_sd.values**2, counts.values + counts.values**2 / theta, rtol=1e-4)
    reference = float(np.exp(module.likelihoods[v].log_library_reference.item()))
    np.testing.assert_allclose(reference, np.median(mixed_mudata(60)["rna"].X.sum(1)), rtol=1e-5)
    assert (counts.values > 0).all() and counts.values.sum(1).mean() == pytest.approx(reference, rel=0.5)


def test_a_zero_loading_removes_the_factor_from_a_count_feature(mixed_mudata):
    model = _trained(mixed_mudata(40), epochs=1, batch_key="batch")
    module = model.module
    v = model.modalities.index("rna")
    with torch.no_grad():
        module.decoders[v].W[3, 1] = 0.0
    z = torch.randn(7, 4, requires_grad=True)
    s = torch.zeros(7, module.n_covariates)
    s[:, 0] = 1
    eta = module.decode(v, z, s)
    (grad,) = torch.autograd.grad(eta[:, 3].sum(), z)
    assert torch.all(grad[:, 1] == 0) and torch.any(grad[:, 0] != 0)


@pytest.mark.parametrize("covariates", [False, True])
def test_save_load_and_h5mu_round_trips_with_every_likelihood(mixed_mudata, tmp_path, covariates):
    setup = {"batch_key": "batch", "continuous_covariate_keys": ["age"]} if covariates else {}
    mdata = mixed_mudata(50)
    model = _trained(mdata, epochs=2, **setup)
    assert model.likelihoods == {"rna": "nb", "prot": "gaussian", "mut": "bernoulli"}
    z = model.get_latent_representation()
    predicted = {m: model.impute(m) for m in model.modalities}
    model.save(tmp_path / "model", save_anndata=True)
    for adata in (None, mixed_mudata(50)):
        loaded = pm.POEMS.load(tmp_path / "model", adata=adata)
        assert loaded.likelihoods == model.likelihoods
        assert loaded.summary_stats["n_covariates"] == (3 if covariates else 0)
        np.testing.assert_allclose(loaded.get_latent_representation(), z, rtol=1e-6, atol=1e-6)
        for m, df in predicted.items():
            np.testing.assert_allclose(loaded.impute(m).values, df.values, rtol=1e-5, atol=1e-6)
    model.store_results()
    mdata.write(tmp_path / "results.h5mu")
    back = md.read_h5mu(tmp_path / "results.h5mu")
    assert dict(back.uns["poems"]["likelihoods"]) == model.likelihoods
    np.testing.assert_allclose(back["rna"].var["poems_nb_theta"], model.get_nb_theta("rna"))
    np.testing.assert_allclose(back["prot"].var["poems_sigma"], model.get_feature_sigma("prot"))
    assert "poems_sigma" not in back["mut"].var and "poems_nb_theta" not in back["mut"].var
    for m in model.modalities:
        np.testing.assert_array_equal(back[m].varm["poems_W"], model.get_loadings(m).to_numpy())
    if covariates:
        assert list(back.uns["poems"]["covariates"]) == ["batch=A", "batch=B", "age"]
    with pytest.raises(ValueError, match=r"A residual SD exists only for .*'gaussian'; modality 'rna' uses 'nb'"):
        model.get_feature_sigma("rna")


def test_variance_explained_on_the_encoders_view(mixed_mudata):
    """R² of a count modality is on log1p of depth-normalised counts: a model that has learnt something explains
    a share of it, and a model with the decoder's output replaced by its mean explains none."""
    model = _trained(mixed_mudata(120), epochs=60)
    r2 = pm.tl.variance_explained(model, store=False).set_index(["modality", "factor"])["r2"]
    for m in model.modalities:
        assert 0.05 < r2[(m, "total")] < 1, m


def test_the_tools_work_on_a_model_with_every_likelihood_and_covariates(mixed_mudata):
    mdata = mixed_mudata(60)
    setup = {"batch_key": "batch", "continuous_covariate_keys": ["age"]}
    model = _trained(mdata, epochs=4, **setup)
    model.store_results()
    for m in model.modalities:  # the effective loadings (link scale) are exactly 0 where W is
        w, eff = mdata[m].varm["poems_W"], mdata[m].varm["poems_effective"]
        assert np.all(eff[w == 0] == 0) and np.isfinite(eff).all()
    r2 = pm.tl.variance_explained(model, store=False)
    assert set(r2.modality) == set(model.modalities) and np.isfinite(r2.r2).all()
    top = pm.tl.top_features(model, n=3)
    assert set(top["modality"]) <= set(model.modalities) and len(top) > 0
    assert len(pm.tl.active_factors(model)) == 4
    pairs = pm.tl.cross_omic_associations(model)
    assert {"rna", "mut"} <= set(pairs["modality_a"]) | set(pairs["modality_b"])
    cv = pm.tl.cross_validate(
        mdata,
        n_folds=2,
        model_kwargs={"n_latent": 3, "likelihood": LIKELIHOOD},
        train_kwargs={"max_epochs": 2},
    )
    assert len(cv) == 2 and np.isfinite(cv["elbo_test"]).all() and {"r2_rna", "r2_mut"} <= set(cv.columns)


def test_size_factors_are_used_as_given_even_below_one(mixed_mudata):
    """DESeq-style size factors (library / median, half of them < 1) give the same encoder view as the totals."""
    mdata = mixed_mudata(40)
    mdata.obs["sf"] = mdata.obs["library"] / mdata.obs["library"].median()
    modules = {}
    for key in (None, "sf"):
        pm.POEMS.setup_mudata(mdata, size_factor_key=key)
        model = pm.POEMS(mdata, n_latent=3, likelihood={"rna": "nb"})
        tensors = next(iter(model._make_data_loader(adata=mdata, batch_size=40)))
        modules[key] = model.module.eval(), tensors
    (plain, t0), (scaled, t1) = modules[None], modules["sf"]
    view0 = plain.inference(**plain._get_inference_input(t0))
    view1 = scaled.inference(**scaled._get_inference_input(t1))
    torch.testing.assert_close(view0["xs_std"][0], view1["xs_std"][0], rtol=1e-4, atol=1e-4)
    shift = view0["log_libraries"][0] - view1["log_libraries"][0]
    torch.testing.assert_close(shift, torch.full_like(shift, float(np.log(mdata.obs["library"].median()))))
    assert (view1["log_libraries"][0] < 0).sum() >= 15  # below 1, not clamped


def test_new_cohorts_are_checked_on_every_path(mixed_mudata):
    mdata = mixed_mudata(40)
    pm.POEMS.setup_mudata(mdata, size_factor_key="library", batch_key="batch")
    scvi.settings.seed = 0
    model = pm.POEMS(mdata, n_latent=3, likelihood=LIKELIHOOD)
    model.train(max_epochs=1, enable_progress_bar=False)
    query = mixed_mudata(20, seed=2)
    query.obs.loc["s1", "library"] = np.nan
    with pytest.raises(ValueError, match=r"mdata.obs\['library'\] is missing, zero.*\['s1'\]"):
        pm.tl.variance_explained(model, query, store=False)  # scvi's loader path
    with pytest.raises(ValueError, match=r"mdata.obs\['library'\] is missing"):
        model.get_latent_representation(query)  # the query path
    query.obs.loc["s1", "library"] = 1000.0
    query["mut"].X[0, 0] = 3
    with pytest.raises(ValueError, match=r"'mut' of this MuData is modelled with likelihood 'bernoulli'"):
        model.get_elbo(query)
    # a cohort without the count modality needs no library sizes
    no_counts = md.MuData({m: query[m].copy() for m in ("prot",)})
    no_counts.obs["batch"] = query.obs["batch"].to_numpy()
    assert model.get_latent_representation(no_counts).shape == (20, 3)
    # and one whose batch is stored as floats (after a merge, say) matches integer training labels
    mdata.obs["plate"] = np.arange(40) % 2
    pm.POEMS.setup_mudata(mdata, batch_key="plate")
    model = pm.POEMS(mdata, n_latent=3)
    model.train(max_epochs=1, enable_progress_bar=False)
    query.obs["plate"] = (np.arange(20) % 2).astype(float)
    assert model.get_latent_representation(query).shape == (20, 3)


def test_enrichment_stability_and_refinement_on_a_model_with_counts(mixed_mudata):
    """The interpretation tools read W and the link-scale effective loadings of count and binary modalities too."""
    import pandas as pd

    mdata = mixed_mudata(60)
    models = []
    for seed in (0, 1):
        scvi.settings.seed = seed
        pm.POEMS.setup_mudata(mdata, batch_key="batch")
        model = pm.POEMS(mdata, n_latent=4, likelihood=LIKELIHOOD)
        model.train(max_epochs=4, enable_progress_bar=False)
        models.append(model)
    factors, features = pm.tl.factor_stability(models)
    assert len(factors) == 4 and np.isfinite(factors.select_dtypes("number").to_numpy()).all()
    net = pd.DataFrame({"source": ["s1"] * 10 + ["s2"] * 10, "target": [f"rna_{j}" for j in range(20)]})
    scores = pm.tl.enrichment(models[0], net, "rna", tmin=3)
    assert set(scores["source"]) == {"s1", "s2"} and np.isfinite(scores.select_dtypes("number").to_numpy()).all()
    pairs = pm.tl.cross_omic_associations(models[0])
    pairs = pairs[(pairs.modality_a == "rna") & (pairs.modality_b == "prot")].head(60)
    assert len(pairs) > 0
    refined = pm.tl.refine_associations(pairs, models[0], epochs=5)
    assert len(refined) == len(pairs) and refined["refined_score"].between(0, 1).all()
