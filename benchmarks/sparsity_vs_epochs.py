"""How sparse W gets with training length: share of |W| > 0.01 and of p* > 0.5 after every 100 epochs.

Trains POEMS with the package defaults on bundled breast_tcga without early stopping, in rounds of 100 epochs
(the KL warm-up in the first round only), and prints per modality the density of W (the paper's Fig. 7 threshold),
the share of slab probabilities above 0.5 and the median |W|.

    OMP_NUM_THREADS=1 python benchmarks/sparsity_vs_epochs.py [--rounds 4] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import warnings

import numpy as np
import scvi
import torch

import poems_mu as pm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    mdata = pm.datasets.breast_tcga()
    scvi.settings.seed = args.seed
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata)
    print("| epochs | modality | share of abs(W) > 0.01 | share of p* > 0.5 | median abs(W) |\n|---|---|---|---|---|")
    for rnd in range(args.rounds):
        warmup = 50 if rnd == 0 else None
        model.train(max_epochs=100, early_stopping=False, enable_progress_bar=False, n_epochs_kl_warmup=warmup)
        for mod in model.modalities:
            w = np.abs(model.get_loadings(mod).to_numpy())
            p = model.get_slab_probabilities(mod).to_numpy()
            cells = [(w > 0.01).mean(), (p > 0.5).mean(), np.median(w)]
            print(f"| {(rnd + 1) * 100} | {mod} | " + " | ".join(f"{c:.3f}" for c in cells) + " |", flush=True)


if __name__ == "__main__":
    main()
