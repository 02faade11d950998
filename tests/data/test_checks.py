"""Bad input through the public API: a clear error naming the modality, the counts and the fix, or an answer.

Every error must be raised by poems_mu itself (never a torch/scvi stack trace ending in library code).
"""

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from _bad_input import fails_clearly, set_up, small_mdata, train_briefly

import poems_mu as pm


# --- the object itself ---------------------------------------------------------------------------------------
def test_an_anndata_is_refused_with_the_wrapping_recipe():
    fails_clearly(TypeError, set_up(small_mdata()["a"]), "needs a MuData", "mudata.MuData({'rna': adata})")


def test_a_mudata_view_is_refused():
    fails_clearly(ValueError, set_up(small_mdata()[:5]), "view", ".copy()")


def test_a_modality_that_is_a_view_is_refused():
    mdata = small_mdata()
    mdata.mod["b"] = mdata["b"][:, :3]
    fails_clearly(ValueError, set_up(mdata), "modality 'b'", "view", ".copy()")


def test_duplicated_sample_names_are_refused():
    rng = np.random.default_rng(0)
    a = ad.AnnData(rng.normal(size=(6, 3)).astype(np.float32), obs=pd.DataFrame(index=list("abccde")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"a": a})
    fails_clearly(ValueError, set_up(mdata), "duplicated sample names", "['c']", "unique")


def test_duplicated_feature_names_are_refused():
    mdata = small_mdata()
    mdata["b"].var_names = ["g", "g", "h", "i"]
    fails_clearly(
        ValueError, set_up(mdata), "modality 'b'", "duplicated feature names", "['g']", "var_names_make_unique"
    )


def test_unknown_modality_and_layer_list_what_exists():
    mdata = small_mdata()
    mdata["a"].layers["counts"] = mdata["a"].X.copy()
    fails_clearly(ValueError, set_up(mdata, modalities=["a", "rna"]), "['rna'] not found", "['a', 'b']")
    fails_clearly(ValueError, set_up(mdata, modalities=["a", "a"]), "repeated")
    fails_clearly(ValueError, set_up(mdata, modalities=[]), "No modality selected")
    fails_clearly(ValueError, set_up(mdata, layers={"a": "raw"}), "Layer 'raw' not found in modality 'a'", "['counts']")
    fails_clearly(
        ValueError,
        set_up(mdata, layers={"c": "counts"}),
        "`layers` names modalities that are not registered: ['c']",
    )


def test_an_empty_modality_is_refused():
    mdata = small_mdata()
    mdata.mod["c"] = ad.AnnData(np.zeros((0, 3), np.float32), var=pd.DataFrame(index=["c0", "c1", "c2"]))
    mdata.update()
    fails_clearly(ValueError, set_up(mdata), "modality 'c' is empty (0 samples × 3 features)", "modalities=[...]")
    mdata = small_mdata()
    mdata.mod["b"] = mdata["b"][:, []].copy()
    mdata.update()
    fails_clearly(ValueError, set_up(mdata), "modality 'b' is empty (12 samples × 0 features)")


def test_a_modality_with_too_few_samples_is_refused():
    mdata = small_mdata(n_b=2)
    fails_clearly(ValueError, set_up(mdata), "Modality 'b' has 2 observed samples", "at least 3", "modalities=[...]")


def test_samples_without_any_used_modality_are_refused():
    mdata = small_mdata(n_b=8)
    fails_clearly(
        ValueError, set_up(mdata, modalities=["b"]), "4 of 12 samples have none of the modalities ['b']", "['s8'"
    )


def test_a_stale_sample_map_asks_for_update():
    mdata = small_mdata()
    mdata.mod["b"] = mdata["b"][:6].copy()  # replaced without mdata.update()
    fails_clearly(ValueError, set_up(mdata), "obsmap", "modality 'b'", "mdata.update()")


# --- the values ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_counted(bad):
    mdata = small_mdata()
    x = mdata["b"].X
    x[1, 0] = x[1, 2] = x[4, 2] = bad
    n_nan, n_inf = (3, 0) if np.isnan(bad) else (0, 3)
    fails_clearly(
        ValueError,
        set_up(mdata),
        "modality 'b'",
        f"3 non-finite values ({n_nan} NaN, {n_inf} ±inf)",
        "in 2 of 12 samples",
        "['s1', 's4']",
        "2 of 4 features",
        "nan_rows_as_missing=True",
    )


def test_non_finite_values_in_a_sparse_layer_name_the_layer():
    mdata = small_mdata()
    x = sp.csr_matrix(mdata["a"].X)
    x.data[3] = np.nan
    mdata["a"].layers["norm"] = x
    fails_clearly(ValueError, set_up(mdata, layers={"a": "norm"}), "modality 'a' (layer 'norm')", "1 non-finite")


def test_whole_nan_rows_suggest_the_opt_in_and_with_it_mean_not_measured():
    mdata = small_mdata()
    mdata["b"].X[[2, 5]] = np.nan
    fails_clearly(ValueError, set_up(mdata), "whole-row NaNs (2 samples)", "nan_rows_as_missing=True")
    model = train_briefly(mdata, nan_rows_as_missing=True)
    gates = model.get_gating_weights()
    assert (gates.loc[["s2", "s5"], "b"] == 0).all()
    assert (gates.loc[["s2", "s5"], "a"] == 1).all()
    assert np.isfinite(model.get_latent_representation()).all()
    # the feature statistics come from the measured samples only
    mean = model.module.likelihoods[1].view_mean
    measured = np.delete(mdata["b"].X, [2, 5], axis=0)
    np.testing.assert_allclose(mean.numpy(), measured.mean(0), rtol=1e-5, atol=1e-6)


def test_with_the_opt_in_partial_nan_rows_and_inf_rows_are_still_errors():
    mdata = small_mdata()
    mdata["b"].X[2] = np.nan
    mdata["b"].X[3, 1] = np.nan
    fails_clearly(
        ValueError,
        set_up(mdata, nan_rows_as_missing=True),
        "1 non-finite values (1 NaN, 0 ±inf) in 1 of 12 samples",
        "only samples whose whole row is NaN count as not measured (1 here)",
    )
    mdata = small_mdata()
    mdata["b"].X[2] = np.inf
    fails_clearly(ValueError, set_up(mdata, nan_rows_as_missing=True), "4 non-finite values (0 NaN, 4 ±inf)")


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
    mdata = small_mdata()
    mdata["a"].layers["bad"] = values
    fails_clearly(
        TypeError, set_up(mdata, layers={"a": "bad"}), "modality 'a' (layer 'bad') holds non-numeric data", "astype"
    )


def test_values_beyond_float32_are_refused():
    mdata = small_mdata(dtype=np.float64)
    mdata["a"].X[0, 0] = 1e300
    fails_clearly(ValueError, set_up(mdata), "modality 'a' has 1 values beyond", "float32", "rescale")


def test_constant_features_are_warned_about_and_left_out_of_the_likelihood():
    mdata = small_mdata()
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
    mdata = small_mdata(n_b=8)
    mdata["b"].X[:, 2] = -1.0  # 'b' has 8 samples; the other 4 are absent, not zero
    pm.POEMS.setup_mudata(mdata)
    with pytest.warns(UserWarning, match=r"Modality 'b': 1 of 4 features are constant"):
        model = pm.POEMS(mdata, n_latent=2)
    assert model.module.likelihoods[1].feature_mask.tolist() == [1, 1, 0, 1]


def test_a_modality_of_only_constant_features_is_refused():
    mdata = small_mdata()
    mdata["b"].X[:] = 2.0
    pm.POEMS.setup_mudata(mdata)
    fails_clearly(ValueError, lambda: pm.POEMS(mdata), "Modality 'b': all 4 features are constant", "modalities=[...]")


# --- accepted formats ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "convert",
    [sp.csr_matrix, sp.csc_matrix, sp.csr_array, np.asfortranarray, lambda x: x.astype(np.float64)],
    ids=["csr", "csc", "csr_array", "fortran", "float64"],
)
def test_other_storage_gives_the_same_model(convert):
    """Sparse or dense, C or Fortran order, float32 or float64: same values, same seed → identical latents."""
    dense = small_mdata()
    other = dense.copy()
    for mod in ("a", "b"):
        other[mod].X = convert(other[mod].X.copy())
    stored = {mod: type(other[mod].X) for mod in ("a", "b")}
    expected = train_briefly(dense).get_latent_representation()
    np.testing.assert_array_equal(train_briefly(other).get_latent_representation(), expected)
    assert {mod: type(other[mod].X) for mod in ("a", "b")} == stored  # never densified or converted


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_integer_and_boolean_data_are_accepted_and_exact(dtype):
    ints = small_mdata()
    rng = np.random.default_rng(1)
    for mod in ("a", "b"):
        ints[mod].X = rng.integers(0, 2 if dtype is np.bool_ else 9, size=ints[mod].shape).astype(dtype)
    floats = ints.copy()
    for mod in ("a", "b"):
        floats[mod].X = floats[mod].X.astype(np.float32)
    np.testing.assert_array_equal(
        train_briefly(ints).get_latent_representation(), train_briefly(floats).get_latent_representation()
    )
    assert ints["a"].X.dtype == dtype  # the user's data keep their type


def test_backed_mudata_fails_clearly_unless_data_come_from_a_layer(tmp_path):
    mdata = small_mdata()
    for mod in ("a", "b"):
        mdata[mod].layers["x"] = mdata[mod].X.copy()
    mdata.write(tmp_path / "m.h5mu")
    backed = md.read_h5mu(tmp_path / "m.h5mu", backed=True)
    fails_clearly(ValueError, set_up(backed), "modality 'a' is backed on disk", "read_h5mu(path)` without `backed=`")
    # layers of a backed AnnData are in memory: those work
    model = train_briefly(backed, layers="x")
    assert np.isfinite(model.get_latent_representation()).all()
