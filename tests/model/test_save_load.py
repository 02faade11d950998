"""Model folders: plain files only, so that loading a crafted or broken folder runs nothing and says what is wrong."""

import json
import os
import subprocess
import sys
import textwrap

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scvi
import torch

import poems_mu as pm
from poems_mu import InvalidModelFolder
from poems_mu._model_files import ARRAYS_FILE, JSON_FILE, STATE_FILE

SMALL = {"n_latent": 3, "n_hidden_encoder": 16, "n_hidden_decoder": 8, "n_hidden_gate": 8}


class Payload:
    """Unpickling this creates a file: the stand-in for any code a crafted pickle could run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40, 2))
    mods = {}
    for name, d in (("a", 6), ("b", 5)):
        x = (z @ rng.normal(size=(2, d)) + 0.3 * rng.normal(size=(40, d))).astype(np.float32)
        mods[name] = ad.AnnData(x, obs=pd.DataFrame(index=[f"s{i}" for i in range(40)]))
        mods[name].var_names = [f"{name}{j}" for j in range(d)]
    import mudata as md

    mdata = md.MuData(mods)
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    model.train(max_epochs=4, enable_progress_bar=False)
    path = tmp_path_factory.mktemp("models") / "m"
    model.save(path, save_anndata=True)
    return mdata, model, path


def _copy(path, tmp_path):
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(path, dst)
    return dst


def test_a_folder_holds_plain_files_and_loads_back_identically(saved):
    mdata, model, path = saved
    assert sorted(os.listdir(path)) == sorted([JSON_FILE, STATE_FILE, ARRAYS_FILE, "mdata.h5mu"])
    record = json.loads((path / JSON_FILE).read_text())
    assert record["format"] == "poems_mu.model" and record["model_class"] == "POEMS"
    loaded = pm.POEMS.load(path, mdata)
    np.testing.assert_array_equal(loaded.get_latent_representation(), model.get_latent_representation())
    for key in model.history:
        pd.testing.assert_frame_equal(loaded.history[key], model.history[key].astype(float), check_index_type=False)
    assert loaded.training_summary_ == model.training_summary_
    np.testing.assert_array_equal(loaded.train_indices_, model.train_indices_)
    np.testing.assert_array_equal(loaded.validation_indices_, model.validation_indices_)
    assert loaded.is_trained and loaded.init_params_ == model.init_params_
    # without a MuData: the one saved with the model
    again = pm.POEMS.load(path)
    np.testing.assert_array_equal(again.get_latent_representation(), model.get_latent_representation())


def test_a_crafted_state_file_is_refused_and_runs_nothing(saved, tmp_path):
    mdata, _, path = saved
    bad = _copy(path, tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"W": Payload(marker)}, bad / STATE_FILE)
    with pytest.raises(InvalidModelFolder, match=f"not a valid poems_mu model folder: {STATE_FILE} does not read"):
        pm.POEMS.load(bad, mdata)
    assert not marker.exists()


def test_a_pickle_folder_is_refused_and_runs_nothing(saved, tmp_path):
    mdata, model, _ = saved
    legacy = tmp_path / "legacy"
    scvi.model.base.BaseModelClass.save(model, str(legacy))  # scvi's format: a model.pt pickle
    with pytest.raises(InvalidModelFolder, match="it holds model.pt, a pickle .* never opens one"):
        pm.POEMS.load(legacy, mdata)
    # a crafted pickle: refused, and nothing ran
    marker = tmp_path / "pwned"
    torch.save(Payload(marker), legacy / "model.pt")
    with pytest.raises(InvalidModelFolder, match="a pickle"):
        pm.POEMS.load(legacy, mdata)
    assert not marker.exists()


def test_another_model_class_is_refused_without_unpickling(saved, tmp_path, monkeypatch):
    mdata, _, path = saved
    adata = ad.AnnData(np.random.default_rng(0).poisson(2, size=(30, 8)).astype(np.float32))
    scvi.model.SCVI.setup_anndata(adata)
    scvi.model.SCVI(adata, n_latent=2).save(str(tmp_path / "scvi_model"))
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(k.get("weights_only")) or real_load(*a, **k))
    with pytest.raises(InvalidModelFolder, match="holds model.pt, a pickle"):
        pm.POEMS.load(tmp_path / "scvi_model", mdata)
    assert loads == []  # the pickle was not even opened
    other = _copy(path, tmp_path)
    record = json.loads((other / JSON_FILE).read_text())
    record["model_class"] = "MULTIVI"
    (other / JSON_FILE).write_text(json.dumps(record))
    with pytest.raises(InvalidModelFolder, match="it holds a 'MULTIVI' model, not a 'POEMS' one"):
        pm.POEMS.load(other, mdata)


@pytest.mark.parametrize(
    ("file", "match"),
    [
        (JSON_FILE, "does not read as JSON"),
        (STATE_FILE, "does not read as tensors"),
        (ARRAYS_FILE, "does not read as arrays"),
    ],
)
def test_truncated_files_get_a_clear_error(saved, tmp_path, file, match):
    mdata, _, path = saved
    bad = _copy(path, tmp_path)
    data = (bad / file).read_bytes()
    (bad / file).write_bytes(data[: len(data) // 2])
    with pytest.raises(InvalidModelFolder, match=f"not a valid poems_mu model folder: {file} {match}"):
        pm.POEMS.load(bad, mdata)


def test_malformed_records_get_a_clear_error(saved, tmp_path):
    mdata, _, path = saved
    bad = _copy(path, tmp_path)
    record = json.loads((bad / JSON_FILE).read_text())
    names = record["registry"]["field_registries"]["X_a"]["state_registry"]["column_names"]
    names["dtype"] = "V8"  # not a dtype this codec writes
    (bad / JSON_FILE).write_text(json.dumps(record))
    with pytest.raises(InvalidModelFolder, match="malformed values"):
        pm.POEMS.load(bad, mdata)
    (bad / JSON_FILE).write_text(json.dumps({"format": "something else"}))
    with pytest.raises(InvalidModelFolder, match="not a poems_mu model record"):
        pm.POEMS.load(bad, mdata)
    os.remove(bad / JSON_FILE)
    with pytest.raises(InvalidModelFolder, match=f"{JSON_FILE} is missing"):
        pm.POEMS.load(bad, mdata)
    with pytest.raises(InvalidModelFolder, match="no such directory"):
        pm.POEMS.load(tmp_path / "nowhere", mdata)


def test_a_state_of_another_shape_is_refused(saved, tmp_path):
    mdata, model, path = saved
    bad = _copy(path, tmp_path)
    state = torch.load(bad / STATE_FILE, weights_only=True)
    state["decoders.0.W"] = torch.zeros(6, 7)
    torch.save(state, bad / STATE_FILE)
    with pytest.raises(InvalidModelFolder, match=f"{STATE_FILE} does not fit the model it describes"):
        pm.POEMS.load(bad, mdata)


@pytest.mark.subprocess
def test_store_results_reads_back_without_poems_mu(saved, tmp_path):
    mdata, model, _ = saved
    target = mdata.copy()
    model.store_results(target)
    file = tmp_path / "results.h5mu"
    target.write(file)
    expected = {
        "obsm": {k: str(np.asarray(v).dtype) for k, v in target.obsm.items()},
        "varm": {m: {k: str(np.asarray(v).dtype) for k, v in target[m].varm.items()} for m in target.mod},
        "obs": {k: str(v.dtype) for k, v in target.obs.items()},
        "var": {m: {k: str(v.dtype) for k, v in target[m].var.items()} for m in target.mod},
    }
    script = textwrap.dedent(
        f"""
        import json, sys
        import importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "poems_mu":
                    raise ImportError("poems_mu is not available here")
        sys.meta_path.insert(0, Block())
        import numpy as np, mudata
        m = mudata.read_h5mu({str(file)!r})
        assert "poems_mu" not in sys.modules

        def plain(x, path):
            if isinstance(x, dict):
                for k, v in x.items():
                    plain(v, path + "/" + k)
            elif isinstance(x, (np.ndarray, str, int, float, bool, np.generic, list)):
                pass
            else:
                raise TypeError(path + " is a " + type(x).__name__)

        plain(dict(m.uns), "uns")
        got = {{
            "obsm": {{k: str(np.asarray(v).dtype) for k, v in m.obsm.items()}},
            "varm": {{md: {{k: str(np.asarray(v).dtype) for k, v in m[md].varm.items()}} for md in m.mod}},
            "obs": {{k: str(v.dtype) for k, v in m.obs.items()}},
            "var": {{md: {{k: str(v.dtype) for k, v in m[md].var.items()}} for md in m.mod}},
        }}
        print(json.dumps(got))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == expected
    assert "params" in target.uns["poems"] and isinstance(target.uns["poems"]["params"], str)
