"""The user's data and saves: setting up, training, reading results, storing them and saving never change or lose
anything the user had (a crash while saving leaves the previous save)."""

import hashlib
import os

import numpy as np
import pandas as pd
import pytest
import torch
from _user_mudata import QUIET, assert_same, frozen, train_small, user_mudata

import poems_mu as pm


# --- the user's MuData ------------------------------------------------------------------------------------------
def test_setup_train_and_outputs_leave_the_mudata_exactly_as_it_was(tmp_path):
    mdata = user_mudata()
    before = frozen(mdata)
    objects = {m: (mdata.mod[m], mdata.mod[m].X) for m in mdata.mod}
    model = train_small(mdata, max_epochs=3, early_stopping=True, early_stopping_patience=1)
    model.get_latent_representation()
    model.get_gating_weights()
    model.get_contributions()
    for m in ("a", "b"):
        model.get_effective_loadings(m)
        model.get_loadings(m)
        model.get_slab_probabilities(m)
        model.get_feature_sigma(m)
    model.save(tmp_path / "m")
    pm.POEMS.load(tmp_path / "m", mdata).get_latent_representation()
    assert_same(before, frozen(mdata))
    for m, (adata, x) in objects.items():
        assert mdata.mod[m] is adata and mdata.mod[m].X is x  # never copied, padded or converted


def test_store_results_adds_only_the_documented_keys():
    mdata = user_mudata()
    before = frozen(mdata)
    model = train_small(mdata)
    model.store_results()
    documented = {
        "obsm:X_poems",
        "obsm:poems_gates",
        "obsm:poems_contributions",
        "uns:poems",
        *(f"obs:poems_gate_{m}" for m in ("a", "b")),
        *(f"{m}.var:poems_sigma" for m in ("a", "b")),
        *(
            f"{m}.varm:{k}"
            for m in ("a", "b")
            for k in ("poems_W", "poems_pstar", "poems_effective", "poems_effective_signed")
        ),
    }
    for key in documented:
        where, name = key.split(":")
        if where.endswith(".var"):
            assert name in mdata[where.split(".")[0]].var
        elif where.endswith(".varm"):
            assert name in mdata[where.split(".")[0]].varm
        else:
            assert name in getattr(mdata, where)
    assert_same(before, frozen(mdata, skip=documented))


@pytest.mark.parametrize(
    ("plant", "named"),
    [
        (lambda m: m.obsm.__setitem__("X_poems", np.zeros((40, 1))), "obsm['X_poems']"),
        (lambda m: m.obs.__setitem__("poems_gate_b", 1.0), "obs['poems_gate_b']"),
        (lambda m: m["b"].varm.__setitem__("poems_W", np.ones((5, 2))), "mod['b'].varm['poems_W']"),
        (lambda m: m["a"].var.__setitem__("poems_sigma", 2.0), "mod['a'].var['poems_sigma']"),
        (lambda m: m.uns.__setitem__("poems", {"mine": 1, "factors": ["f"]}), "uns['poems']['factors']"),
        (lambda m: m.uns.__setitem__("poems", "not a mapping"), "uns['poems']"),
    ],
)
def test_store_results_writes_nothing_when_any_key_exists(plant, named):
    mdata = user_mudata()
    model = train_small(mdata, max_epochs=1)
    plant(mdata)
    before = frozen(mdata)
    with pytest.raises(ValueError, match=r"already exist.*overwrite=True") as info:
        model.store_results()
    assert named in str(info.value)
    assert_same(before, frozen(mdata))


def test_store_results_overwrite_replaces_only_its_own_keys():
    mdata = user_mudata()
    model = train_small(mdata, max_epochs=1)
    mdata.uns["poems"] = {"variance_explained": [0.5]}
    mdata.obsm["X_poems"] = np.zeros((40, 1))
    model.store_results(overwrite=True)
    assert mdata.obsm["X_poems"].shape == (40, 3)
    assert mdata.uns["poems"]["variance_explained"] == [0.5]  # what tl functions stored survives
    assert mdata.uns["poems"]["modalities"] == ["a", "b"]
    assert mdata.uns["nested"]["v"]["deep"].tolist() == [0, 1, 2]


# --- atomic save ------------------------------------------------------------------------------------------------
def _digest(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in sorted(os.listdir(folder))}


def _outputs(model):
    return model.get_latent_representation(), model.get_loadings("a").to_numpy()


def test_a_crash_while_writing_leaves_the_previous_save_intact(tmp_path, monkeypatch):
    mdata = user_mudata()
    model = train_small(mdata, max_epochs=2)
    target = tmp_path / "model"
    model.save(target)
    saved, expected = _digest(target), _outputs(model)
    model.train(max_epochs=2, batch_size=16, train_size=0.9, early_stopping=False, **QUIET)  # the model moves on

    def torch_save_crashing(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"half a model")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", torch_save_crashing)
    with pytest.raises(OSError, match="No space left"):
        model.save(target, overwrite=True)
    monkeypatch.undo()
    assert _digest(target) == saved
    assert os.listdir(tmp_path) == ["model"]  # no temporary folder left behind
    loaded = pm.POEMS.load(target, mdata)
    for got, want in zip(_outputs(loaded), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_crash_while_swapping_folders_puts_the_previous_save_back(tmp_path, monkeypatch):
    mdata = user_mudata()
    model = train_small(mdata, max_epochs=2)
    target = tmp_path / "model"
    model.save(target)
    saved = _digest(target)
    real_replace = os.replace

    def replace_failing_on_the_new_save(src, dst):
        if ".tmp-" in os.fspath(src) and not os.fspath(src).endswith(".old"):
            raise OSError("interrupted")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_failing_on_the_new_save)
    with pytest.raises(OSError, match="interrupted"):
        model.save(target, overwrite=True)
    monkeypatch.undo()
    assert _digest(target) == saved
    assert os.listdir(tmp_path) == ["model"]


def test_a_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    mdata = user_mudata()
    model = train_small(mdata, max_epochs=1)

    def fail(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError, match="disk gone"):
        model.save(tmp_path / "new")
    assert os.listdir(tmp_path) == []


def test_returned_and_stored_results_do_not_change_when_training_goes_on():
    mdata = user_mudata()
    model = train_small(mdata, max_epochs=2)
    model.store_results()
    returned = (model.get_loadings("a"), model.get_slab_probabilities("b"), model.get_feature_sigma("a"))
    frozen_returned = [r.copy(deep=True) for r in returned]
    stored = frozen(mdata)
    model.train(max_epochs=2, batch_size=16, train_size=0.9, early_stopping=False, **QUIET)
    assert not np.array_equal(model.get_loadings("a").to_numpy(), frozen_returned[0].to_numpy())  # it did move
    for got, want in zip(returned, frozen_returned, strict=True):
        pd.testing.assert_index_equal(got.index, want.index)
        np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
    assert_same(stored, frozen(mdata))
