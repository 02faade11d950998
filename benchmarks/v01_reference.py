"""The 0.1 code (before issue 11) on the protocol of ``search_sparse.py``: the held-out ELBO to compare against.

Needs a checkout of the 0.1 code; its ``src`` goes first on ``sys.path``::

    git worktree add /tmp/old 420ecff
    OMP_NUM_THREADS=1 python benchmarks/v01_reference.py --src /tmp/old/src
    # → results/search_sparse_v01_reference.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", required=True, help="the src folder of a checkout of the 0.1 code")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    sys.path.insert(0, str(Path(args.src).resolve()))
    sys.path.insert(1, str(HERE))
    import scvi
    import subtyping as sb
    import torch

    import poems_mu as pm

    assert Path(pm.__file__).resolve().is_relative_to(Path(args.src).resolve()), pm.__file__
    sb.quiet()
    out = []
    for name in ["breast_tcga", "rosmap"]:
        for seed in args.seeds:
            mdata, key = sb.load_dataset(name)
            labels = mdata.obs[key].to_numpy()
            split = sb.paper_split(labels)
            train, fit, val = sb.train_split_data(mdata, split)
            scvi.settings.seed = seed
            pm.POEMS.setup_mudata(train)
            model = pm.POEMS(train)
            t0 = time.perf_counter()
            empty = np.array([], dtype=np.int64)
            model.train(enable_progress_bar=False, datasplitter_kwargs={"external_indexing": [fit, val, empty]})
            wall = time.perf_counter() - t0
            module = model.module.eval()
            total, count = 0.0, 0
            with torch.no_grad():  # 20 single draws: the 0.1 decoder cannot take several samples at once
                for tensors in model._make_data_loader(adata=train, indices=val, batch_size=256):
                    draws = []
                    for _ in range(20):
                        _, _, lo = module(tensors, loss_kwargs={"n_obs": len(val)})
                        draws.append(float(lo.extra_metrics["elbo_per_sample"]))
                    n = len(next(iter(lo.reconstruction_loss.values())))
                    total += float(np.mean(draws)) * n
                    count += n
            ws = [model.get_loadings(m).to_numpy() for m in model.modalities]
            z = model.get_latent_representation(train)
            met = sb.evaluate(z, labels[split["train"]], {"train": np.arange(len(z))}, scopes=("train",))["train"]
            rec = {
                "dataset": name,
                "seed": seed,
                "heldout_elbo": total / count,
                "density": float(np.mean([(np.abs(w) > 0.01).mean() for w in ws])),
                "zeros": float(np.mean([(w == 0).mean() for w in ws])),
                "epochs": len(model.history["elbo_train"]),
                "wall_s": wall,
                "train_knn": met["knn_accuracy"]["mean"],
                "train_nmi": met["kmeans_nmi"]["mean"],
            }
            print(json.dumps(rec), flush=True)
            out.append(rec)
    (HERE / "results" / "search_sparse_v01_reference.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
