import logging
import os
import warnings

import pytest
import torch

# two CI cores: one torch thread per process avoids oversubscription when BLAS and OpenMP both spin
torch.set_num_threads(int(os.environ.get("POEMS_TEST_THREADS", "1")))
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
logging.getLogger("lightning.fabric").setLevel(logging.ERROR)


@pytest.fixture(autouse=True)
def _quiet_known_warnings():
    with warnings.catch_warnings():
        # mudata 0.3 announces a future default on every update(); Lightning hints at workers/logging intervals
        warnings.filterwarnings("ignore", message=".*pull_on_update.*", category=FutureWarning)
        warnings.filterwarnings("ignore", message=".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
        yield


@pytest.fixture(scope="session")
def breast_trained():
    """breast_tcga (protein missing for 70 of 220 samples) and a briefly trained POEMS on it."""
    import scvi

    import poems_mu as pm

    mdata = pm.datasets.breast_tcga()
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=8)
    # a short warm-up, so that the E-step (which starts when the warm-up ends) runs in these 25 epochs
    model.train(max_epochs=25, n_epochs_kl_warmup=10, enable_progress_bar=False)
    return mdata, model


def make_mixed_mudata(n: int = 80, seed: int = 0, batch_shift: float = 0.0):
    """Planted toy cohort: ``rna`` NB counts (library sizes varying 4-fold), ``prot`` Gaussian, ``mut`` 0/1, all
    driven by 3 factors; ``obs["batch"]`` (A/B, alternating) adds ``batch_shift`` to the log-means and to prot;
    ``obs["age"]`` is continuous, ``obs["group"]`` the sign of factor 1.
    """
    import anndata as ad
    import mudata as md
    import numpy as np

    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    batch = np.arange(n) % 2
    w_rna = rng.normal(size=(3, 30)) * (rng.random((3, 30)) < 0.4)
    library = rng.uniform(2e5, 8e5, size=n)
    log_share = z @ w_rna * 0.6 + rng.normal(-3.5, 0.5, size=30) + batch_shift * batch[:, None]
    share = np.exp(log_share) / np.exp(log_share).sum(1, keepdims=True)
    mu = share * library[:, None]
    counts = rng.negative_binomial(10, 10 / (10 + mu)).astype(np.float32)
    prot = (z @ rng.normal(size=(3, 20)) + rng.normal(size=(n, 20)) + batch_shift * batch[:, None]).astype(np.float32)
    logits = z @ (rng.normal(size=(3, 15)) * 1.5) - 0.5
    mut = (rng.random((n, 15)) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    names = [f"s{i}" for i in range(n)]
    mods = {}
    for key, x in {"rna": counts, "prot": prot, "mut": mut}.items():
        a = ad.AnnData(x)
        a.obs_names = names
        a.var_names = [f"{key}_{j}" for j in range(x.shape[1])]
        mods[key] = a
    mdata = md.MuData(mods)
    mdata.obs["batch"] = np.where(batch == 1, "B", "A")
    mdata.obs["age"] = rng.normal(60, 10, size=n)
    mdata.obs["group"] = np.where(z[:, 0] > 0, "high", "low")
    mdata.obs["library"] = counts.sum(1)
    return mdata


@pytest.fixture
def mixed_mudata():
    """:func:`make_mixed_mudata` as a fixture (a function: call it with the size and seed you need)."""
    return make_mixed_mudata


def _load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` as module ``name`` (the benchmarks are scripts, not a package)."""
    import importlib.util
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    spec = importlib.util.spec_from_file_location(name, bench / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark():
    """:func:`_load_benchmark` as a fixture."""
    return _load_benchmark
