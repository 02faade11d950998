"""How sparse W gets with training length: share of |W| > 0.01 and of p* > 0.5 after every 100 epochs.

Trains POEMS with the package defaults on bundled breast_tcga without early stopping, in rounds of 100 epochs
(the KL warm-up in the first round only), and reports per modality the density of W (the paper's Fig. 7 threshold),
the share of slab probabilities above 0.5 and the median |W|.

    OMP_NUM_THREADS=1 python benchmarks/tuning/sparsity_vs_epochs.py [--rounds 4] [--seeds 0]
    OMP_NUM_THREADS=1 python benchmarks/tuning/sparsity_vs_epochs.py --quick   # one round of 10 epochs

Writes ``<out>/sparsity_vs_epochs.{json,md}`` (``--out``, default ``benchmarks/results``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np
import pandas as pd

import poems_mu as pm

COLS = ["share of abs(W) > 0.01", "share of p* > 0.5", "median abs(W)"]


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    common.quiet()
    rounds, per_round = (1, 10) if args.quick else (args.rounds, 100)
    rows = []
    for seed in args.seeds:
        first = {"max_epochs": per_round, "early_stopping": False, "n_epochs_kl_warmup": min(50, per_round)}
        model, _ = common.train_poems(pm.datasets.breast_tcga(), seed, train_kwargs=first)
        for rnd in range(rounds):
            if rnd > 0:  # the KL warm-up in the first round only
                model.train(
                    max_epochs=per_round, early_stopping=False, enable_progress_bar=False, n_epochs_kl_warmup=None
                )
            for mod in model.modalities:
                w = np.abs(model.get_loadings(mod).to_numpy())
                p = model.get_slab_probabilities(mod).to_numpy()
                cells = [(w > 0.01).mean(), (p > 0.5).mean(), np.median(w)]
                rows.append(
                    {
                        "seed": seed,
                        "epochs": (rnd + 1) * per_round,
                        "modality": mod,
                        **dict(zip(COLS, cells, strict=True)),
                    }
                )
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    text = "\n".join(
        ["# Sparsity of W against training length (breast_tcga)", "", *common.table(df, ["epochs", "modality"], COLS)]
    )
    common.write_results(args.out / "sparsity_vs_epochs.json", {"rows": rows}, provenance=prov, markdown=text)
    print(text)


if __name__ == "__main__":
    main()
