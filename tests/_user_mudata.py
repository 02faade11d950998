"""A MuData annotated everywhere a user might put something, the small model trained on it, and the deep comparison
that tells whether anything a user can reach changed (the tests of faults, of the user's data and of saves)."""

import copy
import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import scipy.sparse as sp
import scvi

import poems_mu as pm

#: what scvi-tools writes into the MuData it registers (documented by scvi)
SCVI_UNS_KEYS = {"_scvi_uuid", "_scvi_manager_uuid"}
SMALL = {"n_latent": 3, "n_hidden_encoder": 16, "n_hidden_decoder": 8, "n_hidden_gate": 8}
QUIET = {"enable_progress_bar": False}


def user_mudata(n=40, n_b=30, seed=0):
    """'a' dense float32 on all samples, 'b' CSR on the first n_b; annotations everywhere a user might put them."""
    rng = np.random.default_rng(seed)
    names = [f"s{i}" for i in range(n)]
    z = rng.normal(size=(n, 2))
    xa = (z @ rng.normal(size=(2, 6)) + 0.3 * rng.normal(size=(n, 6))).astype(np.float32)
    xb = np.abs(z[:n_b] @ rng.normal(size=(2, 5)) + 0.3 * rng.normal(size=(n_b, 5)))
    xb[xb < 0.3] = 0
    a = ad.AnnData(
        xa,
        obs=pd.DataFrame({"batch": pd.Categorical(rng.choice(["x", "y"], n))}, index=names),
        var=pd.DataFrame({"chrom": [f"chr{j}" for j in range(6)]}, index=[f"g{j}" for j in range(6)]),
        layers={"counts": rng.poisson(3, size=(n, 6)).astype(np.int32)},
        obsm={"X_pca": rng.normal(size=(n, 2))},
        varm={"PCs": rng.normal(size=(6, 2))},
        uns={"note": "user data"},
    )
    b = ad.AnnData(
        sp.csr_matrix(xb.astype(np.float32)),
        obs=pd.DataFrame({"depth": rng.uniform(size=n_b)}, index=names[:n_b]),
        var=pd.DataFrame(index=[f"p{j}" for j in range(5)]),
        obsp={"distances": sp.random(n_b, n_b, density=0.1, format="csr", random_state=0)},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"a": a, "b": b})
    mdata.obs["label"] = pd.Categorical(np.where(z[:, 0] > 0, "up", "down"))
    mdata.obsm["X_umap"] = rng.normal(size=(n, 2))
    mdata.uns["colors"] = np.array(["red", "blue"])
    mdata.uns["nested"] = {"k": [1, 2, 3], "v": {"deep": np.arange(3)}}
    return mdata


def _copy(x):
    if sp.issparse(x):
        return x.copy()
    if isinstance(x, pd.DataFrame | pd.Series | pd.Index):
        return x.copy(deep=True)
    if isinstance(x, np.ndarray):
        return x.copy()
    return copy.deepcopy(x)


def frozen(mdata, skip=()):
    """Deep copy of everything a user can reach on the MuData (keys in ``skip`` left out, as ``where:key``)."""

    def store(where, mapping):
        return {k: _copy(v) for k, v in mapping.items() if f"{where}:{k}" not in skip}

    state = {
        "mod_order": list(mdata.mod.keys()),
        "shape": mdata.shape,
        "obs": mdata.obs.drop(columns=[c for c in mdata.obs.columns if f"obs:{c}" in skip]).copy(),
        "var": mdata.var.copy(),
        "obsm": store("obsm", mdata.obsm),
        "varm": store("varm", mdata.varm),
        "obsp": store("obsp", mdata.obsp),
        "varp": store("varp", mdata.varp),
        "obsmap": store("obsmap", mdata.obsmap),
        "varmap": store("varmap", mdata.varmap),
        "uns": {k: _copy(v) for k, v in mdata.uns.items() if k not in SCVI_UNS_KEYS and f"uns:{k}" not in skip},
    }
    for m, a in mdata.mod.items():
        state[f"mod:{m}"] = {
            "X": _copy(a.X),
            "layers": store(f"{m}.layers", a.layers),
            "obs": a.obs.copy(),
            "var": a.var.drop(columns=[c for c in a.var.columns if f"{m}.var:{c}" in skip]).copy(),
            "obsm": store(f"{m}.obsm", a.obsm),
            "varm": store(f"{m}.varm", a.varm),
            "obsp": store(f"{m}.obsp", a.obsp),
            "varp": store(f"{m}.varp", a.varp),
            "uns": {k: _copy(v) for k, v in a.uns.items()},
            "raw": None if a.raw is None else _copy(a.raw.X),
        }
    return state


def assert_same(a, b, path="mdata"):
    assert type(a) is type(b), f"{path}: {type(a).__name__} became {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} became {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=path)
    elif sp.issparse(a):
        assert a.format == b.format and a.dtype == b.dtype and a.shape == b.shape, path
        np.testing.assert_array_equal(a.toarray(), b.toarray(), err_msg=path)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.flags["C_CONTIGUOUS"] == b.flags["C_CONTIGUOUS"], path
        np.testing.assert_array_equal(a, b, err_msg=path)
    else:
        assert a == b, f"{path}: {a!r} became {b!r}"


def train_small(mdata, seed=0, **train_kwargs):
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    kwargs = {"max_epochs": 4, "batch_size": 16, "train_size": 0.9, "early_stopping": False} | train_kwargs
    model.train(**QUIET, **kwargs)
    return model
