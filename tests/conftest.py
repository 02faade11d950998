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


@pytest.fixture
def mixed_mudata():
    """``make_mixed_mudata`` of the planted data sets as a fixture (call it with the size and seed you need)."""
    from poems_mu.datasets._synthetic import make_mixed_mudata

    return make_mixed_mudata
