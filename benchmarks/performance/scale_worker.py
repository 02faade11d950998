"""The scale benchmark's worker: one training configuration in a fresh process, so its peak memory is its own.

``scale.py`` starts it; run by hand it prints one ``RESULT {json}`` line::

    python benchmarks/performance/scale_worker.py train '{"impl": "poems", "dims": [1000, 1000, 503], "n": 875,
        "batch": 512, "n_latent": 32, "n_hidden": 100, "epochs": 3, "device": "cpu"}'
    python benchmarks/performance/scale_worker.py ddp STRATEGY DEVICES BATCH SEED EPOCHS OUT.npz

``train``: synthetic data of the configuration's shape, POEMS (``impl="poems"``) or POEMS with the paper's decoder
(``impl="paper"``, ``paper_decoder.py``), trained without early stopping; measured: seconds per epoch (the first
epoch left out: it carries one-off costs), peak RSS over ``model.train`` (the kernel's high-water mark ``VmHWM``,
reset just before training, so data and model are included), on GPU ``torch.cuda.max_memory_allocated``.
``mem_limit_gb`` caps the process's address space; an out-of-memory failure is reported, not raised.

``ddp``: POEMS on breast_tcga with the package defaults (Lightning starts the second DDP process by re-running this
command); rank 0 saves the latent, the labels and the training time to ``OUT.npz``.
"""

from __future__ import annotations

import json
import os
import re
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np

GIB = 2**30


def _status_mb(field: str) -> float:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) / 1024 if match else float("nan")


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def _epoch_timer():
    import lightning.pytorch as pl

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.starts: list[float] = []
            self.end = None

        def on_train_epoch_start(self, trainer, pl_module):
            self.starts.append(time.perf_counter())

        def on_train_end(self, trainer, pl_module):
            self.end = time.perf_counter()

        def durations(self) -> list[float]:
            return list(np.diff([*self.starts, self.end]))

    return EpochTimer()


def _is_oom(err: BaseException) -> bool:
    msg = str(err).lower()
    return isinstance(err, MemoryError) or any(s in msg for s in ("can't allocate", "out of memory", "not enough"))


def run_training_config(cfg: dict) -> dict:
    """Train one configuration and measure it."""
    if cfg.get("mem_limit_gb"):
        limit = int(cfg["mem_limit_gb"] * GIB)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    common.quiet()
    import scvi
    import torch
    from paper_decoder import use_paper_decoder

    import poems_mu as pm

    out = {"status": "ok"}
    try:
        mdata = common.synthetic_mdata(cfg["dims"], cfg["n"])
        out["data_mb"] = cfg["n"] * sum(cfg["dims"]) * 4 / 2**20
        pm.POEMS.setup_mudata(mdata)
        scvi.settings.seed = 0
        model = pm.POEMS(mdata, n_latent=cfg["n_latent"], n_hidden_decoder=cfg["n_hidden"])
        if cfg["impl"] == "paper":
            use_paper_decoder(model, n_hidden=cfg["n_hidden"], dropout=cfg.get("paper_dropout", 0.2))
        out["n_params"] = sum(p.numel() for p in model.module.parameters())
        cuda = cfg.get("device") == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        out["rss_before_train_mb"] = _status_mb("VmRSS")
        out["peak_reset"] = _reset_peak_rss()
        timer = _epoch_timer()
        start = time.perf_counter()
        model.train(
            max_epochs=cfg["epochs"],
            batch_size=cfg["batch"],
            early_stopping=False,
            accelerator="gpu" if cuda else "cpu",
            devices=1,
            callbacks=[timer],
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        out["train_s"] = time.perf_counter() - start
        epochs = timer.durations()
        out["epoch_s"] = epochs
        # the first epoch includes one-off costs (allocator warm-up, Lightning setup): time the others
        out["s_per_epoch"] = float(np.mean(epochs[1:] if len(epochs) > 1 else epochs))
        out["peak_rss_mb"] = _status_mb("VmHWM")
        out["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if cuda:
            out["gpu_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    except Exception as err:  # noqa: BLE001 - report any failure of the configuration, OOM in particular
        out["status"] = "oom" if _is_oom(err) else "error"
        out["error"] = f"{type(err).__name__}: {str(err)[:300]}"
        out["peak_rss_mb"] = _status_mb("VmHWM")
    return out


def ddp_train(strategy: str, devices: int, batch: int, seed: int, epochs: int, out_path: str) -> None:
    """Train on breast_tcga (re-run by Lightning in the second DDP process); rank 0 saves the latent."""
    common.quiet()
    import scvi

    import poems_mu as pm

    mdata = pm.datasets.breast_tcga()
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata)
    start = time.perf_counter()
    kwargs = {"strategy": strategy} if devices > 1 else {}
    model.train(
        max_epochs=epochs,
        batch_size=batch,
        early_stopping=False,  # scvi turns early stopping off under DDP; off for the single process too
        accelerator="cpu",
        devices=devices,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(Path(out_path).parent),
        **kwargs,
    )
    wall = time.perf_counter() - start
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        latent = model.get_latent_representation()
        np.savez(out_path, latent=latent, labels=mdata.obs["subtype"].to_numpy().astype(str), wall=wall)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        print("RESULT " + json.dumps(run_training_config(json.loads(argv[1]))), flush=True)
    elif argv[:1] == ["ddp"]:
        strategy, devices, batch, seed, epochs, path = argv[1:7]
        ddp_train(strategy, int(devices), int(batch), int(seed), int(epochs), path)
    else:
        print(__doc__)
        sys.exit(0 if argv[:1] in (["-h"], ["--help"]) else 2)


if __name__ == "__main__":
    main()
