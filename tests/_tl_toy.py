"""The toy cohort of the interpretation-toolkit tests (``tests/tl``): two modalities driven by 3 sparse factors, and the
model trained on it."""

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scvi

import poems_mu as pm

N, DA, DB, K_TRUE, K = 120, 30, 20, 3, 4


def toy_mudata(seed=0):
    """Two modalities driven by 3 sparse factors; modality b missing for the first 20 samples."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(N, K_TRUE))
    names = [f"s{i}" for i in range(N)]
    mods = {}
    for name, d in (("a", DA), ("b", DB)):
        support = np.zeros((d, K_TRUE), bool)
        support[np.arange(d), np.arange(d) % K_TRUE] = True
        w = support * rng.uniform(0.8, 1.5, size=support.shape) * rng.choice([-1, 1], size=support.shape)
        x = z @ w.T + 0.5 * rng.normal(size=(N, d))
        adata = ad.AnnData(x.astype(np.float32), obs=pd.DataFrame(index=names))
        adata.var_names = [f"{name}_{j}" for j in range(d)]
        mods[name] = adata
    mods["b"] = mods["b"][20:].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData(mods)
    mdata.obs["group"] = pd.Categorical(np.where(z[:, 0] > 0, "high", "low"))
    return mdata


def trained_toy():
    """The toy cohort and a model with the cap K = 4 trained on it (80 epochs, 30 of them after a 50-epoch warm-up,
    so that the E-step has run; results stored on the MuData)."""
    mdata = toy_mudata()
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=K, prior_expert=False)
    model.train(max_epochs=80, n_epochs_kl_warmup=50, early_stopping=False, enable_progress_bar=False)
    model.store_results()
    return mdata, model


def observed(mdata, mod):
    """The positions of the samples that have ``mod`` and their values (float64)."""
    rows = np.asarray(mdata.obsmap[mod]).ravel().astype(int) - 1
    pos = np.flatnonzero(rows >= 0)
    return pos, np.asarray(mdata.mod[mod].X)[rows[pos]].astype(np.float64)
