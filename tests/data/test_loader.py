"""Samples held on the training device: the same minibatches, the same training, as reading from the registry."""

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi
import torch

import poems_mu as pm
from poems_mu.data import MultiModalDataset, POEMSDataLoader

QUIET = {"enable_progress_bar": False}


def _mdata(n=37, n_b=25, seed=0):
    """'a' on every sample, 'b' (CSR, with an all-zero row) on the first n_b."""
    rng = np.random.default_rng(seed)
    names = [f"s{i}" for i in range(n)]
    xa = rng.normal(size=(n, 7)).astype(np.float32)
    xb = np.abs(rng.normal(size=(n_b, 4))).astype(np.float32)
    xb[3] = 0
    a = ad.AnnData(xa, obs=pd.DataFrame(index=names), var=pd.DataFrame(index=[f"a{j}" for j in range(7)]))
    b = ad.AnnData(sp.csr_matrix(xb), obs=pd.DataFrame(index=names[:n_b]), var=pd.DataFrame(index=list("wxyz")))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"a": a, "b": b})
    pm.POEMS.setup_mudata(mdata)
    return mdata


def test_resident_dataset_serves_the_same_minibatches_as_the_registry():
    mdata = _mdata()
    manager = pm.POEMS(mdata, n_latent=2).adata_manager
    idx = np.array([5, 0, 30, 2, 26, 11])
    host, resident = MultiModalDataset(manager, idx), MultiModalDataset(manager, idx, device="cpu")
    positions = [4, 2, 0, 5]
    a, b = host[positions], resident[torch.tensor(positions)]
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=0, atol=0, msg=key)


@pytest.mark.parametrize("drop_last", [False, True])
def test_device_sampler_draws_the_permutation_of_torchs_random_sampler(drop_last):
    mdata = _mdata()
    manager = pm.POEMS(mdata, n_latent=2).adata_manager
    kwargs = {"indices": np.arange(30), "batch_size": 8, "shuffle": True, "drop_last": drop_last}
    torch.manual_seed(3)
    host = [b[pm._constants.INDEX_KEY] for b in POEMSDataLoader(manager, **kwargs)]
    torch.manual_seed(3)
    dev = [b[pm._constants.INDEX_KEY] for b in POEMSDataLoader(manager, device="cpu", **kwargs)]
    assert len(host) == len(dev) == (3 if drop_last else 4)
    for h, d in zip(host, dev, strict=True):
        torch.testing.assert_close(d.ravel(), h.ravel(), rtol=0, atol=0)


def _train(load_on_device):
    mdata = _mdata()
    scvi.settings.seed = 0
    model = pm.POEMS(mdata, n_latent=3, n_hidden_encoder=16, n_hidden_decoder=8, n_hidden_gate=8)
    model.train(max_epochs=6, batch_size=8, n_epochs_kl_warmup=2, load_on_device=load_on_device, **QUIET)
    return model


def test_training_with_the_samples_on_the_device_is_the_same_training(monkeypatch):
    devices = []
    init = MultiModalDataset.__init__

    def record(self, manager, indices, device=None):
        devices.append(device)
        init(self, manager, indices, device)

    monkeypatch.setattr(MultiModalDataset, "__init__", record)
    host = _train(False)
    assert devices and all(d is None for d in devices)
    devices.clear()
    resident = _train(True)
    # the splitter's loaders (made first) hold the samples on the device; the loaders made after training (the
    # factors' ordering reads the samples once) read from the host
    on_device = [d for d in devices if d is not None]
    assert len(on_device) >= 2 and devices[: len(on_device)] == on_device
    assert all(torch.device(d).type == "cpu" for d in on_device)
    for (name, p), q in zip(host.module.state_dict().items(), resident.module.state_dict().values(), strict=True):
        torch.testing.assert_close(q, p, rtol=0, atol=0, msg=name)
    for key in ("elbo_train", "elbo_per_sample_validation"):
        np.testing.assert_array_equal(resident.history[key].to_numpy(float), host.history[key].to_numpy(float))


def test_bad_load_on_device_is_refused_by_name():
    mdata = _mdata()
    model = pm.POEMS(mdata, n_latent=2)
    with pytest.raises(ValueError, match="load_on_device must be None, True or False"):
        model.train(max_epochs=1, load_on_device="gpu", **QUIET)
