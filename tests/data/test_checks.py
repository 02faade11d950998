"""Bad input through the public API: a clear error naming the modality, the counts and the fix, or an answer.

Every error must be raised by poems_mu itself (never a torch/scvi stack trace ending in library code).
"""

import os
import traceback
import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi

import poems_mu as pm


def _mdata(n=12, d_a=5, d_b=4, n_b=None, seed=0, dtype=np.float32):
    """Modality 'a' on all n samples, 'b' on the first n_b (default: all)."""
    rng = np.random.default_rng(seed)
    names = [f"s{i}" for i in range(n)]
    n_b = n if n_b is None else n_b
    a = ad.AnnData(
        rng.normal(size=(n, d_a)).astype(dtype),
        obs=pd.DataFrame(index=names),
        var=pd.DataFrame(index=[f"a{j}" for j in range(d_a)]),
    )
    b = ad.AnnData(
        rng.normal(size=(n_b, d_b)).astype(dtype),
        obs=pd.DataFrame(index=names[:n_b]),
        var=pd.DataFrame(index=[f"b{j}" for j in range(d_b)]),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return md.MuData({"a": a, "b": b})


def _fails_clearly(exc_type, fn, *fragments):
    """``fn()`` raises ``exc_type`` from poems_mu code, with every fragment in its message; returns the message."""
    with pytest.raises(exc_type) as info:
        fn()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    origin = traceback.extract_tb(info.tb)[-1].filename
    assert f"{os.sep}poems_mu{os.sep}" in origin, f"raised from {origin}, not from poems_mu: {message}"
    return message


def _setup(mdata, **kwargs):
    return lambda: pm.POEMS.setup_mudata(mdata, **kwargs)


def _train_briefly(mdata, **setup_kwargs):
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata, **setup_kwargs)
    model = pm.POEMS(mdata, n_latent=2, n_hidden_encoder=8, n_hidden_decoder=4, n_hidden_gate=4)
    model.train(max_epochs=2, batch_size=8, early_stopping=False, enable_progress_bar=False)
    return model


# --- the object itself ---------------------------------------------------------------------------------------
def test_an_anndata_is_refused_with_the_wrapping_recipe():
    _fails_clearly(TypeError, _setup(_mdata()["a"]), "needs a MuData", "mudata.MuData({'rna': adata})")


def test_a_mudata_view_is_refused():
    _fails_clearly(ValueError, _setup(_mdata()[:5]), "view", ".copy()")


def test_a_modality_that_is_a_view_is_refused():
    mdata = _mdata()
    mdata.mod["b"] = mdata["b"][:, :3]
    _fails_clearly(ValueError, _setup(mdata), "modality 'b'", "view", ".copy()")


def test_duplicated_sample_names_are_refused():
    rng = np.random.default_rng(0)
    a = ad.AnnData(rng.normal(size=(6, 3)).astype(np.float32), obs=pd.DataFrame(index=list("abccde")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"a": a})
    _fails_clearly(ValueError, _setup(mdata), "duplicated sample names", "['c']", "unique")


def test_duplicated_feature_names_are_refused():
    mdata = _mdata()
    mdata["b"].var_names = ["g", "g", "h", "i"]
    _fails_clearly(
        ValueError, _setup(mdata), "modality 'b'", "duplicated feature names", "['g']", "var_names_make_unique"
    )


def test_unknown_modality_and_layer_list_what_exists():
    mdata = _mdata()
    mdata["a"].layers["counts"] = mdata["a"].X.copy()
    _fails_clearly(ValueError, _setup(mdata, modalities=["a", "rna"]), "['rna'] not found", "['a', 'b']")
    _fails_clearly(ValueError, _setup(mdata, modalities=["a", "a"]), "repeated")
    _fails_clearly(ValueError, _setup(mdata, modalities=[]), "No modality selected")
    _fails_clearly(
        ValueError, _setup(mdata, layers={"a": "raw"}), "Layer 'raw' not found in modality 'a'", "['counts']"
    )
    _fails_clearly(
        ValueError, _setup(mdata, layers={"c": "counts"}), "`layers` names modalities that are not registered: ['c']"
    )


def test_an_empty_modality_is_refused():
    mdata = _mdata()
    mdata.mod["c"] = ad.AnnData(np.zeros((0, 3), np.float32), var=pd.DataFrame(index=["c0", "c1", "c2"]))
    mdata.update()
    _fails_clearly(ValueError, _setup(mdata), "modality 'c' is empty (0 samples × 3 features)", "modalities=[...]")
    mdata = _mdata()
    mdata.mod["b"] = mdata["b"][:, []].copy()
    mdata.update()
    _fails_clearly(ValueError, _setup(mdata), "modality 'b' is empty (12 samples × 0 features)")


def test_a_modality_with_too_few_samples_is_refused():
    mdata = _mdata(n_b=2)
    _fails_clearly(ValueError, _setup(mdata), "Modality 'b' has 2 observed samples", "at least 3", "modalities=[...]")


def test_samples_without_any_used_modality_are_refused():
    mdata = _mdata(n_b=8)
    _fails_clearly(
        ValueError, _setup(mdata, modalities=["b"]), "4 of 12 samples have none of the modalities ['b']", "['s8'"
    )


def test_a_stale_sample_map_asks_for_update():
    mdata = _mdata()
    mdata.mod["b"] = mdata["b"][:6].copy()  # replaced without mdata.update()
    _fails_clearly(ValueError, _setup(mdata), "obsmap", "modality 'b'", "mdata.update()")


# --- the values ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_counted(bad):
    mdata = _mdata()
    x = mdata["b"].X
    x[1, 0] = x[1, 2] = x[4, 2] = bad
    n_nan, n_inf = (3, 0) if np.isnan(bad) else (0, 3)
    _fails_clearly(
        ValueError,
        _setup(mdata),
        "modality 'b'",
        f"3 non-finite values ({n_nan} NaN, {n_inf} ±inf)",
        "in 2 of 12 samples",
        "['s1', 's4']",
        "2 of 4 features",
        "nan_rows_as_missing=True",
    )


def test_non_finite_values_in_a_sparse_layer_name_the_layer():
    mdata = _mdata()
    x = sp.csr_matrix(mdata["a"].X)
    x.data[3] = np.nan
    mdata["a"].layers["norm"] = x
    _fails_clearly(ValueError, _setup(mdata, layers={"a": "norm"}), "modality 'a' (layer 'norm')", "1 non-finite")


def test_whole_nan_rows_suggest_the_opt_in_and_with_it_mean_not_measured():
    mdata = _mdata()
    mdata["b"].X[[2, 5]] = np.nan
    _fails_clearly(ValueError, _setup(mdata), "whole-row NaNs (2 samples)", "nan_rows_as_missing=True")
    model = _train_briefly(mdata, nan_rows_as_missing=True)
    gates = model.get_gating_weights()
    assert (gates.loc[["s2", "s5"], "b"] == 0).all()
    assert (gates.loc[["s2", "s5"], "a"] == 1).all()
    assert np.isfinite(model.get_latent_representation()).all()
    # the feature statistics come from the measured samples only
    mean = model.module.likelihoods[1].view_mean
    measured = np.delete(mdata["b"].X, [2, 5], axis=0)
    np.testing.assert_allclose(mean.numpy(), measured.mean(0), rtol=1e-5, atol=1e-6)


def test_with_the_opt_in_partial_nan_rows_and_inf_rows_are_still_errors():
    mdata = _mdata()
    mdata["b"].X[2] = np.nan
    mdata["b"].X[3, 1] = np.nan
    _fails_clearly(
        ValueError,
        _setup(mdata, nan_rows_as_missing=True),
        "1 non-finite values (1 NaN, 0 ±inf) in 1 of 12 samples",
        "only samples whose whole row is NaN count as not measured (1 here)",
    )
    mdata = _mdata()
    mdata["b"].X[2] = np.inf
    _fails_clearly(ValueError, _setup(mdata, nan_rows_as_missing=True), "4 non-finite values (0 NaN, 4 ±inf)")


@pytest.mark.parametrize(
    "values",
    [
        np.full((12, 5), "1.5"),
        np.full((12, 5), "x", dtype=object),
        np.ones((12, 5), dtype=np.complex64),
        np.zeros((12, 5), dtype="datetime64[ns]"),
    ],
    ids=["str", "object", "complex", "datetime"],
)
def test_non_numeric_data_is_refused(values):
    mdata = _mdata()
    mdata["a"].layers["bad"] = values
    _fails_clearly(
        TypeError, _setup(mdata, layers={"a": "bad"}), "modality 'a' (layer 'bad') holds non-numeric data", "astype"
    )


def test_values_beyond_float32_are_refused():
    mdata = _mdata(dtype=np.float64)
    mdata["a"].X[0, 0] = 1e300
    _fails_clearly(ValueError, _setup(mdata), "modality 'a' has 1 values beyond", "float32", "rescale")


def test_constant_features_are_warned_about_and_left_out_of_the_likelihood():
    mdata = _mdata()
    mdata["a"].X[:, 1] = 3.0
    mdata["b"].X[:, 0] = 0.0
    pm.POEMS.setup_mudata(mdata)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        model = pm.POEMS(mdata, n_latent=2)
    messages = [str(w.message) for w in record if "constant" in str(w.message)]
    assert len(messages) == 2
    assert messages[0].startswith("Modality 'a': 1 of 5 features are constant")
    assert messages[1].startswith("Modality 'b': 1 of 4 features are constant")
    lik = model.module.likelihoods[0]
    scale, weight = lik.view_scale, lik.feature_mask
    assert scale[1] == 1 and weight[1] == 0 and weight.sum() == 4
    model.train(max_epochs=2, batch_size=8, early_stopping=False, enable_progress_bar=False)
    assert np.isfinite(model.history["elbo_train"].to_numpy(dtype=float)).all()
    assert np.isfinite(model.get_feature_sigma("a").to_numpy()).all()
    assert np.isfinite(model.get_latent_representation()).all()


def test_a_feature_constant_only_where_measured_counts_as_constant():
    mdata = _mdata(n_b=8)
    mdata["b"].X[:, 2] = -1.0  # 'b' has 8 samples; the other 4 are absent, not zero
    pm.POEMS.setup_mudata(mdata)
    with pytest.warns(UserWarning, match=r"Modality 'b': 1 of 4 features are constant"):
        model = pm.POEMS(mdata, n_latent=2)
    assert model.module.likelihoods[1].feature_mask.tolist() == [1, 1, 0, 1]


def test_a_modality_of_only_constant_features_is_refused():
    mdata = _mdata()
    mdata["b"].X[:] = 2.0
    pm.POEMS.setup_mudata(mdata)
    _fails_clearly(ValueError, lambda: pm.POEMS(mdata), "Modality 'b': all 4 features are constant", "modalities=[...]")


# --- accepted formats ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "convert",
    [sp.csr_matrix, sp.csc_matrix, sp.csr_array, np.asfortranarray, lambda x: x.astype(np.float64)],
    ids=["csr", "csc", "csr_array", "fortran", "float64"],
)
def test_other_storage_gives_the_same_model(convert):
    """Sparse or dense, C or Fortran order, float32 or float64: same values, same seed → identical latents."""
    dense = _mdata()
    other = dense.copy()
    for mod in ("a", "b"):
        other[mod].X = convert(other[mod].X.copy())
    stored = {mod: type(other[mod].X) for mod in ("a", "b")}
    expected = _train_briefly(dense).get_latent_representation()
    np.testing.assert_array_equal(_train_briefly(other).get_latent_representation(), expected)
    assert {mod: type(other[mod].X) for mod in ("a", "b")} == stored  # never densified or converted


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_integer_and_boolean_data_are_accepted_and_exact(dtype):
    ints = _mdata()
    rng = np.random.default_rng(1)
    for mod in ("a", "b"):
        ints[mod].X = rng.integers(0, 2 if dtype is np.bool_ else 9, size=ints[mod].shape).astype(dtype)
    floats = ints.copy()
    for mod in ("a", "b"):
        floats[mod].X = floats[mod].X.astype(np.float32)
    np.testing.assert_array_equal(
        _train_briefly(ints).get_latent_representation(), _train_briefly(floats).get_latent_representation()
    )
    assert ints["a"].X.dtype == dtype  # the user's data keep their type


def test_backed_mudata_fails_clearly_unless_data_come_from_a_layer(tmp_path):
    mdata = _mdata()
    for mod in ("a", "b"):
        mdata[mod].layers["x"] = mdata[mod].X.copy()
    mdata.write(tmp_path / "m.h5mu")
    backed = md.read_h5mu(tmp_path / "m.h5mu", backed=True)
    _fails_clearly(ValueError, _setup(backed), "modality 'a' is backed on disk", "read_h5mu(path)` without `backed=`")
    # layers of a backed AnnData are in memory: those work
    model = _train_briefly(backed, layers="x")
    assert np.isfinite(model.get_latent_representation()).all()


# --- model and training arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_latent": 0}, "n_latent must be an integer between 1 and 1024, got 0"),
        ({"n_latent": 5000}, "got 5000"),
        ({"n_latent": 2.5}, "got 2.5"),
        ({"n_latent": True}, "got True"),
        ({"n_latent": "8"}, "got '8'"),
        ({"n_hidden_encoder": 0}, "n_hidden_encoder must be a positive integer"),
        ({"n_layers_encoder": 0}, "n_layers_encoder must be a positive integer"),
        ({"dropout": 1.0}, "dropout must be in [0, 1)"),
        ({"kl_weight": -1.0}, "kl_weight must be a finite number ≥ 0"),
        ({"sigma_prior_df": 0}, "sigma_prior_df must be a finite number > 0"),
        ({"ssl_b": -2}, "ssl_b must be a finite number > 0"),
        ({"chunk_size": 0}, "chunk_size must be a positive integer or None"),
        ({"lambda0": 1.0, "lambda1": 2.0}, "lambda0 > lambda1 > 0"),
        ({"gating": "soft"}, "gating must be 'learned' or 'fixed'"),
        ({"decoder": "linear"}, "decoder must be 'sparse' or 'dense'"),
    ],
)
def test_model_arguments_out_of_range(kwargs, fragment):
    mdata = _mdata()
    pm.POEMS.setup_mudata(mdata)
    _fails_clearly(ValueError, lambda: pm.POEMS(mdata, **kwargs), fragment)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"lr": -1e-3}, "lr (learning rate) must be a finite number > 0"),
        ({"lr": float("nan")}, "got nan"),
        ({"max_epochs": 0}, "max_epochs must be a positive integer"),
        ({"batch_size": 0}, "batch_size must be a positive integer"),
        ({"train_size": 1.5}, "train_size must be in (0, 1]"),
        ({"train_size": 1.0}, "early_stopping needs a validation set"),
    ],
)
def test_training_arguments_out_of_range(kwargs, fragment):
    mdata = _mdata()
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=2)
    _fails_clearly(ValueError, lambda: model.train(enable_progress_bar=False, **kwargs), fragment)
    assert not model.is_trained


# --- new data for a trained model ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    mdata = _mdata()
    model = _train_briefly(mdata)
    path = tmp_path_factory.mktemp("saved") / "model"
    model.save(path)
    return mdata, model, path


def test_new_data_with_nan_or_strings_fail_like_setup(trained):
    _, model, _ = trained
    other = _mdata(seed=1)
    other["a"].X[0, 0] = np.nan
    _fails_clearly(ValueError, lambda: model.get_latent_representation(other), "modality 'a'", "1 non-finite")
    other = _mdata(seed=1)
    other["b"].X = other["b"].X.astype(str)
    _fails_clearly(TypeError, lambda: model.get_gating_weights(other), "modality 'b'", "non-numeric")
    _fails_clearly(TypeError, lambda: model.store_results(other), "modality 'b'", "non-numeric")
    assert "X_poems" not in other.obsm


def test_new_data_with_other_features_or_modalities_fail_clearly(trained):
    _, model, path = trained
    renamed = _mdata(seed=1)
    renamed["a"].var_names = [f"q{j}" for j in range(5)]
    wider = _mdata(seed=1, d_b=6)
    reordered = _mdata(seed=1)
    reordered.mod["a"] = reordered["a"][:, ::-1].copy()
    reordered.update()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        only_a = md.MuData({"a": _mdata(seed=1)["a"]})
    cases = [
        (renamed, "Modality 'a' has 5 features here but the model was trained on 5 (5 training features missing"),
        (wider, "Modality 'b' has 6 features here but the model was trained on 4 (0 training features missing"),
        (reordered, "(same features in another order)"),
    ]
    for other, fragment in cases:
        _fails_clearly(ValueError, lambda o=other: model.get_latent_representation(o), fragment)
        _fails_clearly(ValueError, lambda o=other: pm.POEMS.load(path, o), fragment)
    # a cohort without 'b' is placed from 'a' (tests/test_prediction.py); loading needs every trained modality
    assert model.get_latent_representation(only_a).shape[0] == only_a.n_obs
    lacking = "The model was trained with modality 'b', which this MuData lacks (it has ['a'])"
    _fails_clearly(ValueError, lambda: pm.POEMS.load(path, only_a), lacking)


def test_new_data_with_samples_lacking_every_modality_fail_clearly():
    mdata = _mdata()
    mdata["b"].X[0] = np.nan
    model = _train_briefly(mdata, nan_rows_as_missing=True)
    other = _mdata(seed=1)
    other["a"].X[[2, 3]] = np.nan
    other["b"].X[[1, 2, 3]] = np.nan
    _fails_clearly(
        ValueError, lambda: model.get_latent_representation(other), "2 of 12 samples have none", "['s2', 's3']"
    )


def test_new_data_with_fewer_samples_in_a_modality_work(trained):
    mdata, model, path = trained
    other = _mdata(seed=1, n_b=2)  # too few to learn from, fine to embed
    latent = model.get_latent_representation(other)
    assert latent.shape == (12, 2) and np.isfinite(latent).all()
    gates = model.get_gating_weights(other)
    assert (gates.loc[[f"s{i}" for i in range(2, 12)], "b"] == 0).all()
    loaded = pm.POEMS.load(path, _mdata())
    np.testing.assert_array_equal(loaded.get_latent_representation(), model.get_latent_representation())
