"""Two-process DDP training on CPU for ``tests/train/test_ddp.py``; rank 0 of Lightning's launch re-runs this script.

    python tests/_scripts/ddp_run.py OUT_DIR STRATEGY

Each rank saves the samples of its first-epoch minibatches and its final W, p* and θ (``rank<r>.pt``); the
launching process also saves the W of the model the caller gets back (``main.pt``).
"""

from __future__ import annotations

import os
import sys

import lightning.pytorch as pl
import numpy as np
import torch

N_SAMPLES, BATCH, EPOCHS = 64, 16, 3


def _mdata(n: int = N_SAMPLES, seed: int = 0):
    import anndata as ad
    import mudata as md

    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3))
    mods = {}
    for name, d in (("rna", 30), ("meth", 20)):
        x = z @ rng.standard_normal((3, d)) + 0.3 * rng.standard_normal((n, d))
        adata = ad.AnnData(x.astype(np.float32))
        adata.obs_names = [f"s{i}" for i in range(n)]
        adata.var_names = [f"{name}{j}" for j in range(d)]
        mods[name] = adata
    return md.MuData(mods)


class SaveRankState(pl.Callback):
    """Save, per rank, the samples of its first-epoch minibatches and its final W, p* and θ."""

    def __init__(self, out_dir: str):
        self.out_dir = out_dir
        self.first_epoch_samples: list[int] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.current_epoch == 0:
            self.first_epoch_samples += batch["obs_index"].tolist()

    def on_train_end(self, trainer, pl_module):
        module = pl_module.module
        state = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "steps": trainer.global_step,
            "first_epoch_samples": self.first_epoch_samples,
            "W": [dec.W.detach().clone() for dec in module.decoders],
            "p_star": [prior.p_star.clone() for prior in module.priors],
            "theta": [prior.theta.clone() for prior in module.priors],
        }
        torch.save(state, os.path.join(self.out_dir, f"rank{trainer.global_rank}.pt"))


def _train(out_dir: str, strategy: str) -> None:
    import scvi

    import poems_mu as pm

    torch.set_num_threads(1)
    mdata = _mdata()
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=4, n_hidden_encoder=16, n_hidden_decoder=8)
    model.train(
        max_epochs=EPOCHS,
        batch_size=BATCH,
        accelerator="cpu",
        devices=2,
        strategy=strategy,
        early_stopping=False,
        n_epochs_kl_warmup=1,  # the E-step starts when the sparsity warm-up (that of the KL term) ends
        plan_kwargs={"restore_best": False},  # the ranks' final W is what the caller gets
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=out_dir,
        callbacks=[SaveRankState(out_dir)],
    )
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:  # the launching process: the model the user gets back
        torch.save({"W": [dec.W.detach().clone() for dec in model.module.decoders]}, os.path.join(out_dir, "main.pt"))


if __name__ == "__main__":
    _train(sys.argv[1], sys.argv[2])
