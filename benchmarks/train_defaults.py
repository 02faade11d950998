"""Train POEMS with its defaults on the bundled cohorts and report what a user sees.

Prints, per dataset: epochs run, wall time, the final validation ELBO pieces, W density per modality (share of
|W| > 0.01) and the mean gate per modality. Writes benchmarks/results/train_defaults.md.

    OMP_NUM_THREADS=1 python benchmarks/train_defaults.py [--seed 0] [--datasets breast_tcga rosmap]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import scvi
import torch

import poems_mu as pm


def run(name: str, seed: int) -> dict:
    mdata = getattr(pm.datasets, name)()
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata)
    start = time.perf_counter()
    model.train(enable_progress_bar=False)
    wall = time.perf_counter() - start
    hist = model.history
    last = {k: float(v.iloc[-1, 0]) for k, v in hist.items() if k.endswith("_validation")}
    out = {
        "dataset": name,
        "samples": mdata.n_obs,
        "epochs": len(hist["elbo_train"]),
        "wall_s": wall,
        "elbo_per_sample_validation": last["elbo_per_sample_validation"],
        "reconstruction_loss_validation": last["reconstruction_loss_validation"],
        "kl_local_validation": last["kl_local_validation"],
        "kl_global": last["kl_global_validation"],
    }
    gates = model.get_gating_weights()
    for mod in model.modalities:
        w = model.get_loadings(mod).to_numpy()
        out[f"W_density_{mod}"] = float((np.abs(w) > 0.01).mean())
        observed = np.asarray(mdata.obsmap[mod]).ravel() > 0
        out[f"gate_{mod}"] = float(gates.loc[observed, mod].mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--datasets", nargs="+", default=["breast_tcga", "rosmap"])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "train_defaults.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    lines = [f"# POEMS with default settings (seed {args.seed}, 1 CPU thread)", ""]
    for name in args.datasets:
        res = run(name, args.seed)
        print(res, flush=True)
        lines += [f"## {name}", "", "| quantity | value |", "|---|---|"]
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in res.items()]
        lines.append("")
    lines.append(
        "Gates are averaged over the samples that have the modality. Command: "
        "`OMP_NUM_THREADS=1 python benchmarks/train_defaults.py`"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
