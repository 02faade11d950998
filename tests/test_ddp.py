"""Two-process data-parallel training on CPU (Lightning DDP, gloo backend) through ``model.train(strategy=...)``.

The test runs this file as a script in a subprocess: with ``strategy="ddp"`` Lightning launches the second process by
re-running the script, which a pytest process cannot do for itself. Each rank saves what it holds at the end of
training; the test checks that the ranks trained on disjoint halves of every epoch and still hold the same W and,
from their own E-steps, the same p* and θ.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

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


def test_two_process_ddp_keeps_the_e_step_identical_across_ranks(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), str(tmp_path), "ddp"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    main = torch.load(tmp_path / "main.pt")
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world_size"] == 2 for r in ranks)

    # data parallel: in an epoch each rank trains on its own half of the training samples
    seen0, seen1 = (set(r["first_epoch_samples"]) for r in ranks)
    assert seen0 and seen1 and not seen0 & seen1
    n_train = math.ceil(0.8 * N_SAMPLES)  # scvi's split of the default train_size
    assert len(seen0 | seen1) >= n_train - 1  # the distributed sampler may drop one sample to even the halves
    steps_per_epoch = -(-len(seen0) // BATCH)
    assert ranks[0]["steps"] == ranks[1]["steps"] == EPOCHS * steps_per_epoch

    # after the gradient all-reduce both ranks hold the same W, so their own E-steps give the same p* and θ
    for v in range(2):
        torch.testing.assert_close(ranks[0]["W"][v], ranks[1]["W"][v], rtol=0, atol=0)
        torch.testing.assert_close(ranks[0]["p_star"][v], ranks[1]["p_star"][v], rtol=0, atol=0)
        torch.testing.assert_close(ranks[0]["theta"][v], ranks[1]["theta"][v], rtol=0, atol=0)
        assert not torch.allclose(ranks[0]["p_star"][v], torch.full_like(ranks[0]["p_star"][v], 0.5))  # E-step ran
        # the model returned to the caller holds the trained weights
        torch.testing.assert_close(main["W"][v], ranks[0]["W"][v], rtol=0, atol=0)


if __name__ == "__main__":
    _train(sys.argv[1], sys.argv[2])
