"""Train POEMS with its defaults on the bundled cohorts and report what a user sees.

Prints, per dataset: epochs run, the epoch restored (best held-out criterion), wall time, the held-out criterion
(validation samples at their posterior means) and a Monte Carlo held-out ELBO (20 posterior draws), per modality the
share of |W| > 0.01, of exact zeros and of slab links (p* > 0.5), the mean gate and the mean effective contribution.
Writes benchmarks/results/train_defaults.md.

    OMP_NUM_THREADS=1 python benchmarks/train_defaults.py [--seed 0] [--datasets breast_tcga rosmap]
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import scvi
import torch

import poems_mu as pm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search_sparse import heldout_elbo


def run(name: str, seed: int) -> dict:
    mdata = getattr(pm.datasets, name)()
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata)
    start = time.perf_counter()
    model.train(enable_progress_bar=False)
    wall = time.perf_counter() - start
    hist = model.history
    run_ = model.training_summary_["runs"][0]
    out = {
        "dataset": name,
        "samples": mdata.n_obs,
        "epochs": len(hist["elbo_train"]),
        "best_epoch (restored)": run_["best_epoch"],
        "wall_s": wall,
        "heldout_criterion (at posterior means)": run_["validation_criterion"],
        "heldout_elbo (20 draws)": heldout_elbo(model, mdata, model.validation_indices),
    }
    gates, contrib = model.get_gating_weights(), model.get_contributions()
    sparsity = model.sparsity_summary()
    for mod in model.modalities:
        observed = np.asarray(mdata.obsmap[mod]).ravel() > 0
        out[f"{mod}: |W| > 0.01"] = float(sparsity.loc[mod, "density"])
        out[f"{mod}: exact zeros"] = float(sparsity.loc[mod, "zeros"])
        out[f"{mod}: slab (p* > 0.5)"] = float(sparsity.loc[mod, "slab"])
        out[f"{mod}: mean gate"] = float(gates.loc[observed, mod].mean())
        out[f"{mod}: mean contribution"] = float(contrib.loc[observed, mod].mean())
    out["mean over modalities: |W| > 0.01"] = float(sparsity["density"].mean())
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
        cells = {k.replace("|", "\\|"): v for k, v in res.items()}  # a | inside a cell ends it in markdown
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in cells.items()]
        lines.append("")
    lines.append(
        "Gates and contributions are averaged over the samples that have the modality; the validation samples "
        "are the default 20 %. Command: "
        "`OMP_NUM_THREADS=1 python benchmarks/train_defaults.py`"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
