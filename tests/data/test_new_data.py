"""New data for a trained model (other samples, features, modalities): the checks of set-up again, or an answer."""

import warnings

import mudata as md
import numpy as np
import pytest
from _bad_input import fails_clearly, small_mdata, train_briefly

import poems_mu as pm


# --- new data for a trained model ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    mdata = small_mdata()
    model = train_briefly(mdata)
    path = tmp_path_factory.mktemp("saved") / "model"
    model.save(path)
    return mdata, model, path


def test_new_data_with_nan_or_strings_fail_likeset_up(trained):
    _, model, _ = trained
    other = small_mdata(seed=1)
    other["a"].X[0, 0] = np.nan
    fails_clearly(ValueError, lambda: model.get_latent_representation(other), "modality 'a'", "1 non-finite")
    other = small_mdata(seed=1)
    other["b"].X = other["b"].X.astype(str)
    fails_clearly(TypeError, lambda: model.get_gating_weights(other), "modality 'b'", "non-numeric")
    fails_clearly(TypeError, lambda: model.store_results(other), "modality 'b'", "non-numeric")
    assert "X_poems" not in other.obsm


def test_new_data_with_other_features_or_modalities_fail_clearly(trained):
    _, model, path = trained
    renamed = small_mdata(seed=1)
    renamed["a"].var_names = [f"q{j}" for j in range(5)]
    wider = small_mdata(seed=1, d_b=6)
    reordered = small_mdata(seed=1)
    reordered.mod["a"] = reordered["a"][:, ::-1].copy()
    reordered.update()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        only_a = md.MuData({"a": small_mdata(seed=1)["a"]})
    cases = [
        (renamed, "Modality 'a' has 5 features here but the model was trained on 5 (5 training features missing"),
        (wider, "Modality 'b' has 6 features here but the model was trained on 4 (0 training features missing"),
        (reordered, "(same features in another order)"),
    ]
    for other, fragment in cases:
        fails_clearly(ValueError, lambda o=other: model.get_latent_representation(o), fragment)
        fails_clearly(ValueError, lambda o=other: pm.POEMS.load(path, o), fragment)
    # a cohort without 'b' is placed from 'a' (tests/test_prediction.py); loading needs every trained modality
    assert model.get_latent_representation(only_a).shape[0] == only_a.n_obs
    lacking = "The model was trained with modality 'b', which this MuData lacks (it has ['a'])"
    fails_clearly(ValueError, lambda: pm.POEMS.load(path, only_a), lacking)


def test_new_data_with_samples_lacking_every_modality_fail_clearly():
    mdata = small_mdata()
    mdata["b"].X[0] = np.nan
    model = train_briefly(mdata, nan_rows_as_missing=True)
    other = small_mdata(seed=1)
    other["a"].X[[2, 3]] = np.nan
    other["b"].X[[1, 2, 3]] = np.nan
    fails_clearly(
        ValueError, lambda: model.get_latent_representation(other), "2 of 12 samples have none", "['s2', 's3']"
    )


def test_new_data_with_fewer_samples_in_a_modality_work(trained):
    mdata, model, path = trained
    other = small_mdata(seed=1, n_b=2)  # too few to learn from, fine to embed
    latent = model.get_latent_representation(other)
    assert latent.shape == (12, 2) and np.isfinite(latent).all()
    gates = model.get_gating_weights(other)
    assert (gates.loc[[f"s{i}" for i in range(2, 12)], "b"] == 0).all()
    loaded = pm.POEMS.load(path, small_mdata())
    np.testing.assert_array_equal(loaded.get_latent_representation(), model.get_latent_representation())
