"""Same seed, same answer: repeated runs, save/load, and the order of the modalities.

What holds (CPU, same thread count):

- the same ``scvi.settings.seed`` before ``POEMS(...)`` and ``train`` gives bitwise identical latents, gates,
  loadings, slab probabilities, θ, σ and training history;
- ``save`` → ``load`` gives bitwise identical outputs, loaded against the same MuData, a rebuilt one, or the one
  saved with the model;
- the order of ``mdata.mod`` does not matter once the modality order is given explicitly
  (``setup_mudata(mdata, modalities=[...])``) and the samples are in the same order: parameters are created and
  random numbers drawn modality by modality in the registered order, and the train/validation split and the
  minibatches are drawn by sample position (as in every scvi-tools model). MuData orders the union of samples by
  modality (the first modality's samples first), so reordering ``.mod`` usually reorders the samples too:
  ``mdata = mdata[reference_order].copy()`` restores it. Otherwise the two fits are equally valid but not bitwise
  equal. Outputs are always labelled by modality and sample name, never by position.
"""

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi

import poems_mu as pm

SMALL = {"n_latent": 3, "n_hidden_encoder": 16, "n_hidden_decoder": 8, "n_hidden_gate": 8}
TRAIN = {"max_epochs": 6, "batch_size": 16, "n_epochs_kl_warmup": 2, "early_stopping_patience": 2}


def _modalities(n=40, n_b=30, seed=0, full=False):
    rng = np.random.default_rng(seed)
    names = [f"s{i}" for i in range(n)]
    z = rng.normal(size=(n, 2))
    a = ad.AnnData(
        (z @ rng.normal(size=(2, 6)) + 0.3 * rng.normal(size=(n, 6))).astype(np.float32),
        obs=pd.DataFrame(index=names),
        var=pd.DataFrame(index=[f"g{j}" for j in range(6)]),
    )
    b = ad.AnnData(
        sp.csr_matrix(np.abs(z[: n if full else n_b] @ rng.normal(size=(2, 5))).astype(np.float32)),
        obs=pd.DataFrame(index=names[: n if full else n_b]),
        var=pd.DataFrame(index=[f"p{j}" for j in range(5)]),
    )
    every = 1 if full else 2
    c = ad.AnnData(
        (z[::every] @ rng.normal(size=(2, 4))).astype(np.float64),
        obs=pd.DataFrame(index=names[::every]),
        var=pd.DataFrame(index=[f"m{j}" for j in range(4)]),
    )
    return {"a": a, "b": b, "c": c}


def _mdata(order=("a", "b", "c"), **kwargs):
    mods = _modalities(**kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return md.MuData({m: mods[m] for m in order})


def _fit(mdata, seed=0, modalities=None, **model_kwargs):
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(mdata, modalities=modalities)
    model = pm.POEMS(mdata, **(SMALL | model_kwargs))
    model.train(enable_progress_bar=False, **TRAIN)
    return model


def _outputs(model, mdata=None):
    """Everything a user reads off a model, keyed by name (modalities by name, samples by name)."""
    latent = model.get_latent_representation(mdata)
    names = (model.adata if mdata is None else mdata).obs_names
    out = {
        "latent": pd.DataFrame(latent, index=names).sort_index(),
        "gates": model.get_gating_weights(mdata).sort_index()[sorted(model.modalities)],
    }
    for v, m in enumerate(model.modalities):
        out[f"W_{m}"] = model.get_loadings(m)
        out[f"pstar_{m}"] = model.get_slab_probabilities(m)
        out[f"sigma_{m}"] = model.get_feature_sigma(m).to_frame()
        out[f"theta_{m}"] = pd.DataFrame(model.module.priors[v].theta.numpy().copy())
    return out


def _assert_identical(x, y):
    assert sorted(x) == sorted(y)
    for key in x:
        pd.testing.assert_frame_equal(x[key], y[key], check_exact=True, obj=key)


def test_same_seed_gives_identical_outputs_and_history():
    first, second = _fit(_mdata()), _fit(_mdata())
    _assert_identical(_outputs(first), _outputs(second))
    assert set(first.history) == set(second.history)
    for key in first.history:
        pd.testing.assert_frame_equal(first.history[key], second.history[key], check_exact=True)


def test_another_seed_gives_another_fit():
    first, other = _outputs(_fit(_mdata(), seed=0)), _outputs(_fit(_mdata(), seed=1))
    assert not np.array_equal(first["latent"].to_numpy(), other["latent"].to_numpy())


def test_inference_is_deterministic_and_does_not_depend_on_the_batch_size():
    model = _fit(_mdata())
    latent = model.get_latent_representation()
    np.testing.assert_array_equal(latent, model.get_latent_representation())
    np.testing.assert_allclose(model.get_latent_representation(batch_size=1), latent, rtol=1e-5, atol=1e-6)
    gates = model.get_gating_weights(batch_size=7).to_numpy()
    np.testing.assert_allclose(gates, model.get_gating_weights().to_numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("against", ["same", "rebuilt", "saved_with_model"])
def test_save_load_gives_identical_outputs(tmp_path, against):
    mdata = _mdata()
    model = _fit(mdata)
    expected = _outputs(model)
    model.save(tmp_path / "m", save_anndata=against == "saved_with_model")
    if against == "saved_with_model":
        loaded = pm.POEMS.load(tmp_path / "m")
    else:
        loaded = pm.POEMS.load(tmp_path / "m", mdata if against == "same" else _mdata())
    assert loaded.is_trained and loaded.modalities == model.modalities
    _assert_identical(_outputs(loaded), expected)
    # and the stored results are identical too
    model.store_results()
    target = _mdata()
    loaded.store_results(target)
    np.testing.assert_array_equal(target.obsm["X_poems"], mdata.obsm["X_poems"])
    for m in model.modalities:
        np.testing.assert_array_equal(target[m].varm["poems_W"], mdata[m].varm["poems_W"])
        np.testing.assert_array_equal(target[m].var["poems_sigma"], mdata[m].var["poems_sigma"])


@pytest.mark.parametrize(
    ("order", "full"),
    [(("a", "c", "b"), False), (("c", "b", "a"), True), (("b", "a", "c"), True)],
    ids=["partial-cb", "complete-cba", "complete-bac"],
)
def test_the_order_of_mdata_mod_does_not_matter_given_the_modality_order(order, full):
    reference, permuted = _mdata(full=full), _mdata(order=order, full=full)
    assert list(permuted.mod) == list(order)
    # MuData orders the samples by modality (the first modality's samples first); these two keep the same order
    assert permuted.obs_names.equals(reference.obs_names)
    model_ref = _fit(reference, modalities=["a", "b", "c"])
    model_perm = _fit(permuted, modalities=["a", "b", "c"])
    assert model_perm.modalities == ["a", "b", "c"]
    _assert_identical(_outputs(model_ref), _outputs(model_perm))
    # a trained model reads a MuData whose .mod and samples are in another order (same values up to the last
    # bit: a row's GEMM result may depend on its position in the minibatch)
    other = _mdata(order=("c", "b", "a"), full=full)
    got, want = _outputs(model_ref, other), _outputs(model_ref, _mdata(full=full))
    for key in ("latent", "gates"):
        pd.testing.assert_frame_equal(got[key], want[key], check_exact=False, rtol=1e-5, atol=1e-6)


def test_with_the_default_order_outputs_stay_labelled_by_modality():
    permuted = _mdata(order=("c", "b", "a"))
    model = _fit(permuted)
    assert model.modalities == ["c", "b", "a"]
    gates = model.get_gating_weights()
    assert list(gates.columns) == ["c", "b", "a"]
    lacks_b = [f"s{i}" for i in range(30, 40)]
    lacks_c = [f"s{i}" for i in range(1, 40, 2)]
    assert (gates.loc[lacks_b, "b"] == 0).all() and (gates.loc[lacks_c, "c"] == 0).all()
    assert (gates.loc[lacks_b, ["a", "c"]].sum(axis=1) > 0.999).all()
    assert model.get_loadings("c").index.tolist() == [f"m{j}" for j in range(4)]
    model.store_results()
    assert [c for c in permuted.obs.columns if c.startswith("poems_gate_")] == [f"poems_gate_{m}" for m in "cba"]
    np.testing.assert_array_equal(permuted.obs["poems_gate_b"].to_numpy(), gates["b"].to_numpy())
