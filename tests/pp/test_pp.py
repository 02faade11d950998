import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import poems_mu.pp as pp
import poems_mu.pp._utils as pp_utils


def _mudata(seed=0):
    """Two modalities; 'b' has only 6 of the 10 samples, and a constant feature."""
    rng = np.random.default_rng(seed)
    names = [f"s{i}" for i in range(10)]
    a = ad.AnnData(
        rng.poisson(5, size=(10, 6)).astype(np.float64),
        obs=pd.DataFrame(index=names),
        var=pd.DataFrame(index=[f"a{j}" for j in range(6)]),
    )
    Xb = rng.gamma(2.0, size=(6, 4))
    Xb[:, 1] = 3.0
    b = ad.AnnData(Xb, obs=pd.DataFrame(index=names[2:8]), var=pd.DataFrame(index=[f"b{j}" for j in range(4)]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return md.MuData({"a": a, "b": b})


def _x_copies(mdata):
    return {m: mdata[m].X.copy() for m in mdata.mod}


def _assert_x_untouched(mdata, before):
    for m, X in before.items():
        np.testing.assert_array_equal(mdata[m].X, X)


def _zscore(X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        sd = np.nanstd(X, axis=0)
        return (X - np.nanmean(X, axis=0)) / np.where(sd == 0, 1.0, sd)


# --- log1p ---------------------------------------------------------------------------------------------


def test_log1p_mudata_values_and_x_untouched():
    mdata = _mudata()
    before = _x_copies(mdata)
    assert mdata["b"].n_obs < mdata["a"].n_obs
    pp.log1p(mdata)
    for m in ("a", "b"):
        np.testing.assert_allclose(mdata[m].layers["log1p"], np.log1p(before[m]))
    _assert_x_untouched(mdata, before)


def test_log1p_anndata_sparse_int_and_layer_input():
    X = np.array([[0, 1, 3], [2, 0, 0]], dtype=np.int64)
    adata = ad.AnnData(sp.csr_matrix(X))
    adata.layers["counts"] = X.copy()
    pp.log1p(adata)
    out = adata.layers["log1p"]
    assert sp.issparse(out) and out.dtype == np.float64
    np.testing.assert_allclose(out.toarray(), np.log1p(X))
    np.testing.assert_array_equal(adata.X.toarray(), X)
    pp.log1p(adata, layer="counts", layer_out="log_counts")
    np.testing.assert_allclose(adata.layers["log_counts"], np.log1p(X))
    np.testing.assert_array_equal(adata.layers["counts"], X)


def test_log1p_keeps_nan_and_float32():
    X = np.array([[1.0, np.nan], [0.0, 2.0]], dtype=np.float32)
    adata = ad.AnnData(X)
    pp.log1p(adata)
    out = adata.layers["log1p"]
    assert out.dtype == np.float32
    assert np.isnan(out[0, 1])
    np.testing.assert_allclose(out[[0, 1, 1], [0, 0, 1]], np.log1p([1.0, 0.0, 2.0]), rtol=1e-6)


def test_log1p_negative_values_error_is_atomic():
    mdata = _mudata()
    mdata["b"].X[0, 0] = -1.5
    with pytest.raises(ValueError, match=r"modality 'b'.*1 negative"):
        pp.log1p(mdata)
    assert "log1p" not in mdata["a"].layers  # nothing written when any modality fails


def test_log1p_overwrite_refusal():
    mdata = _mudata()
    sentinel = np.full(mdata["a"].shape, 7.0)
    mdata["a"].layers["log1p"] = sentinel.copy()
    with pytest.raises(ValueError, match="already exists in modality 'a'"):
        pp.log1p(mdata)
    np.testing.assert_array_equal(mdata["a"].layers["log1p"], sentinel)
    assert "log1p" not in mdata["b"].layers
    pp.log1p(mdata, overwrite=True)
    np.testing.assert_allclose(mdata["a"].layers["log1p"], np.log1p(mdata["a"].X))


def test_modality_selection_errors():
    mdata = _mudata()
    pp.log1p(mdata, modality="b")
    assert "log1p" in mdata["b"].layers and "log1p" not in mdata["a"].layers
    with pytest.raises(KeyError, match="Available modalities"):
        pp.log1p(mdata, modality=["a", "rna"])
    with pytest.raises(KeyError, match="Available layers"):
        pp.log1p(mdata, layer="counts", layer_out="x")
    with pytest.raises(ValueError, match="only be given for a MuData"):
        pp.log1p(mdata["a"], modality="a")
    with pytest.raises(TypeError, match="MuData or an AnnData"):
        pp.log1p(np.ones((2, 2)))


# --- scale ---------------------------------------------------------------------------------------------


def test_scale_zscore_against_numpy_and_constant_feature_warning():
    mdata = _mudata()
    before = _x_copies(mdata)
    with pytest.warns(UserWarning, match=r"modality 'b': 1 constant feature"):
        pp.scale(mdata)
    for m in ("a", "b"):
        X = before[m]
        expected = (X - X.mean(0)) / np.where(X.std(0) == 0, 1, X.std(0))
        np.testing.assert_allclose(mdata[m].layers["scaled"], expected, atol=1e-12)
    np.testing.assert_array_equal(mdata["b"].layers["scaled"][:, 1], 0.0)
    assert np.isfinite(mdata["b"].layers["scaled"]).all()
    _assert_x_untouched(mdata, before)


def test_scale_minmax_against_numpy_default_layer_name():
    mdata = _mudata()
    with pytest.warns(UserWarning, match="constant"):
        pp.scale(mdata, modality="b", method="minmax")
    X = mdata["b"].X
    rng_ = X.max(0) - X.min(0)
    expected = (X - X.min(0)) / np.where(rng_ == 0, 1, rng_)
    np.testing.assert_allclose(mdata["b"].layers["minmax"], expected, atol=1e-12)
    assert "minmax" not in mdata["a"].layers and "scaled" not in mdata["b"].layers


def test_scale_nan_ignored_and_kept():
    X = np.array([[1.0, 2.0], [np.nan, 4.0], [3.0, 9.0], [5.0, np.nan]])
    adata = ad.AnnData(X.copy())
    pp.scale(adata)
    out = adata.layers["scaled"]
    np.testing.assert_array_equal(np.isnan(out), np.isnan(X))
    np.testing.assert_allclose(out, _zscore(X), equal_nan=True)
    np.testing.assert_array_equal(adata.X, X, strict=True)


def test_scale_all_nan_feature_warns():
    X = np.array([[1.0, np.nan], [2.0, np.nan]])
    adata = ad.AnnData(X)
    with pytest.warns(UserWarning, match="1 feature.*only NaN"):
        pp.scale(adata)
    assert np.isnan(adata.layers["scaled"][:, 1]).all()


def test_scale_errors():
    adata = ad.AnnData(np.array([[1.0, np.inf], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="infinite"):
        pp.scale(adata)
    adata = ad.AnnData(np.array([[1.0, 2.0], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="method"):
        pp.scale(adata, method="robust")
    adata.layers["scaled"] = adata.X.copy()
    with pytest.raises(ValueError, match="overwrite=True"):
        pp.scale(adata)
    pp.scale(adata, overwrite=True)
    np.testing.assert_allclose(adata.layers["scaled"], [[-1, -1], [1, 1]])


def test_scale_sparse_small_densified_large_refused(monkeypatch):
    X = np.array([[0.0, 1.0, 2.0], [4.0, 0.0, 0.0], [1.0, 0.0, 5.0]])
    adata = ad.AnnData(sp.csr_matrix(X))
    with pytest.warns(UserWarning, match="densifying"):
        pp.scale(adata)
    assert isinstance(adata.layers["scaled"], np.ndarray)
    np.testing.assert_allclose(adata.layers["scaled"], _zscore(X))
    monkeypatch.setattr(pp_utils, "DENSIFY_LIMIT", 5)
    with pytest.raises(ValueError, match="dense layer|layer='dense'"):
        pp.scale(adata, layer_out="scaled2")
    assert sp.issparse(adata.X)


@settings(max_examples=30, deadline=None)
@given(
    arrays(
        np.float64,
        st.tuples(st.integers(2, 8), st.integers(1, 5)),
        elements=st.one_of(st.floats(-1e3, 1e3), st.just(np.nan)),
    )
)
def test_scale_zscore_property(X):
    adata = ad.AnnData(X.copy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pp.scale(adata)
    out = adata.layers["scaled"]
    np.testing.assert_array_equal(np.isnan(out), np.isnan(X))
    np.testing.assert_array_equal(adata.X, X)
    finite = ~np.isnan(out)
    assert np.all(np.abs(out[finite]) <= np.sqrt(X.shape[0]) + 1e-6)  # |z| <= sqrt(n) for population sd


# --- highly_variable_features --------------------------------------------------------------------------


def test_hvf_variance_ranking_against_numpy():
    mdata = _mudata()
    before = _x_copies(mdata)
    pp.highly_variable_features(mdata, n_top=2)
    for m in ("a", "b"):
        var = mdata[m].var
        expected_var = np.var(before[m], axis=0, ddof=1)
        np.testing.assert_allclose(var["variance"], expected_var)
        assert var["highly_variable"].dtype == bool
        assert var["highly_variable"].sum() == 2
        top = np.argsort(-expected_var, kind="stable")[:2]
        assert set(np.flatnonzero(var["highly_variable"])) == set(top)
    _assert_x_untouched(mdata, before)


def test_hvf_dispersion_and_n_top_mapping():
    mdata = _mudata()
    pp.highly_variable_features(mdata, modality="a", flavor="dispersion", n_top={"a": 3}, key_added="hvf")
    X = mdata["a"].X
    disp = X.var(0, ddof=1) / X.mean(0)
    np.testing.assert_allclose(mdata["a"].var["dispersion"], disp)
    assert set(np.flatnonzero(mdata["a"].var["hvf"])) == set(np.argsort(-disp)[:3])
    assert "hvf" not in mdata["b"].var
    adata = ad.AnnData(np.array([[-1.0, 2.0], [1.0, 3.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        pp.highly_variable_features(adata, flavor="dispersion", n_top=1)


def test_hvf_refuses_existing_columns():
    mdata = _mudata()
    mdata["b"].var["highly_variable"] = True
    with pytest.raises(ValueError, match=r"'highly_variable' in modality 'b'\.var"):
        pp.highly_variable_features(mdata, n_top=2)
    assert "variance" not in mdata["a"].var  # nothing written
    pp.highly_variable_features(mdata, n_top=2, overwrite=True)
    assert mdata["b"].var["highly_variable"].sum() == 2


def test_hvf_nan_and_sparse():
    X = np.array([[1.0, 0.0, np.nan, 5.0], [3.0, 0.0, np.nan, np.nan], [8.0, 2.0, np.nan, 1.0]])
    adata = ad.AnnData(X.copy())
    with pytest.warns(UserWarning, match="1 feature"):
        pp.highly_variable_features(adata, n_top=10)
    expected = np.array([np.var([1, 3, 8], ddof=1), np.var([0, 0, 2], ddof=1), np.nan, np.var([5, 1], ddof=1)])
    np.testing.assert_allclose(adata.var["variance"], expected)
    np.testing.assert_array_equal(adata.var["highly_variable"], [True, True, False, True])
    sparse = ad.AnnData(sp.csr_matrix(X))
    with pytest.warns(UserWarning, match="1 feature"):
        pp.highly_variable_features(sparse, n_top=2)
    np.testing.assert_allclose(sparse.var["variance"], expected)
    np.testing.assert_array_equal(sparse.var["highly_variable"], [True, False, False, True])


def test_hvf_subset_returns_copy():
    mdata = _mudata()
    before = _x_copies(mdata)
    out = pp.highly_variable_features(mdata, modality="a", n_top=3, subset=True)
    assert isinstance(out, md.MuData) and out is not mdata
    assert out["a"].n_vars == 3 and out["b"].n_vars == mdata["b"].n_vars
    assert out["a"].var["highly_variable"].all()
    assert out["b"].n_obs == 6 and out.n_obs == mdata.n_obs
    top = np.argsort(-np.var(before["a"], axis=0, ddof=1), kind="stable")[:3]
    np.testing.assert_array_equal(out["a"].X, before["a"][:, np.sort(top)])
    # the user's object is untouched
    assert mdata["a"].n_vars == 6 and "highly_variable" not in mdata["a"].var
    _assert_x_untouched(mdata, before)
    adata = ad.AnnData(before["a"].copy())
    sub = pp.highly_variable_features(adata, n_top=2, subset=True)
    assert sub.n_vars == 2 and adata.n_vars == 6 and "variance" not in adata.var


def test_hvf_bad_args():
    mdata = _mudata()
    with pytest.raises(ValueError, match="positive integer"):
        pp.highly_variable_features(mdata, n_top=0)
    with pytest.raises(KeyError, match="not processed"):
        pp.highly_variable_features(mdata, modality="a", n_top={"b": 2})
    with pytest.raises(ValueError, match="flavor"):
        pp.highly_variable_features(mdata, flavor="seurat")
