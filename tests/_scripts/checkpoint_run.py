"""A small POEMS training run for tests/train/test_checkpoint.py, in its own process (so that it can be SIGKILLed).

    python tests/_scripts/checkpoint_run.py MODE CHECKPOINT_DIR OUT.npz KILL_AFTER N_RESTARTS [DATA]

MODE: ``plain`` (no checkpoints), ``kill`` (checkpoints every 2 epochs; SIGKILL at the start of epoch KILL_AFTER + 1
of the whole call, restarts included) or ``resume``. Writes the final state dict and the held-out history to OUT.
"""

import logging
import os
import signal
import sys
import warnings

import anndata as ad
import lightning.pytorch as pl
import mudata as md
import numpy as np
import scvi
import torch

import poems_mu as pm

warnings.filterwarnings("ignore")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
torch.set_num_threads(1)


def toy_mdata() -> md.MuData:
    """'a' on 60 samples, 'b' on the first 45: two factors plus noise."""
    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 2))
    mods = {}
    for name, d, n in (("a", 7, 60), ("b", 5, 45)):
        x = (z[:n] @ rng.normal(size=(2, d)) + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
        a = ad.AnnData(x)
        a.obs_names = [f"s{i}" for i in range(n)]
        a.var_names = [f"{name}{j}" for j in range(d)]
        mods[name] = a
    return md.MuData(mods)


MODEL = {"n_latent": 3, "n_hidden_encoder": 16, "n_hidden_decoder": 8, "n_hidden_gate": 8}
TRAIN = {"max_epochs": 40, "n_epochs_kl_warmup": 4, "early_stopping_patience": 4, "batch_size": 16}
#: DATA "planted": 3 planted factors under a cap of 8, trained long enough for factors to be pruned mid-run
PLANTED_MODEL = {"n_latent": 8, "n_hidden_encoder": 32, "n_hidden_decoder": 16, "n_hidden_gate": 16}
PLANTED_TRAIN = {"max_epochs": 45, "n_epochs_kl_warmup": 10, "early_stopping_patience": 10, "batch_size": 32}


def planted_mdata() -> md.MuData:
    """The planted cohort of the pruning check (3 factors, modalities of 60 and 40 features, 150 samples)."""
    from poems_mu.datasets._synthetic import make_planted

    return make_planted(n=150, n_factors=3, dims=(60, 40), seed=0)[0]


class Kill(pl.Callback):
    """SIGKILL this process at the start of epoch ``after + 1`` of the whole ``train`` call."""

    def __init__(self, after: int):
        self.after, self.starts = after, 0

    def on_train_epoch_start(self, trainer, plan):
        self.starts += 1
        if self.starts == self.after + 1:
            os.kill(os.getpid(), signal.SIGKILL)


def main(mode: str, ckdir: str, out: str, kill_after: int, n_restarts: int, data: str = "toy") -> None:
    mdata = planted_mdata() if data == "planted" else toy_mdata()
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **(PLANTED_MODEL if data == "planted" else MODEL))
    kwargs = {**(PLANTED_TRAIN if data == "planted" else TRAIN), "n_restarts": n_restarts, "enable_progress_bar": False}
    if mode == "kill":
        model.train(checkpoint_dir=ckdir, checkpoint_every=2, callbacks=[Kill(kill_after)], **kwargs)
    elif mode == "resume":
        model.train(checkpoint_dir=ckdir, checkpoint_every=2, resume=True, **kwargs)
    else:
        model.train(**kwargs)
    hist = model.history["elbo_per_sample_validation"].to_numpy(dtype=float).ravel()
    np.savez(out, history=hist, **{k: v.numpy() for k, v in model.module.state_dict().items()})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), *sys.argv[6:])
