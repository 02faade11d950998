"""What the bad-input tests share: a small two-modality MuData, the check that an error is clear and raised by
poems_mu itself, and a briefly trained model."""

import os
import traceback
import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scvi

import poems_mu as pm


def small_mdata(n=12, d_a=5, d_b=4, n_b=None, seed=0, dtype=np.float32):
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


def fails_clearly(exc_type, fn, *fragments):
    """``fn()`` raises ``exc_type`` from poems_mu code, with every fragment in its message; returns the message."""
    with pytest.raises(exc_type) as info:
        fn()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    origin = traceback.extract_tb(info.tb)[-1].filename
    assert f"{os.sep}poems_mu{os.sep}" in origin, f"raised from {origin}, not from poems_mu: {message}"
    return message


def set_up(mdata, **kwargs):
    return lambda: pm.POEMS.setup_mudata(mdata, **kwargs)


def train_briefly(mdata, **setup_kwargs):
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata, **setup_kwargs)
    model = pm.POEMS(mdata, n_latent=2, n_hidden_encoder=8, n_hidden_decoder=4, n_hidden_gate=4)
    model.train(max_epochs=2, batch_size=8, early_stopping=False, enable_progress_bar=False)
    return model
