"""The 0.1 code on the protocol of ``search_sparse.py``: its held-out ELBO and sparsity, to compare against.

Needs a checkout of the 0.1 code; its ``src`` goes first on ``sys.path``::

    git worktree add /tmp/old 420ecff      # or: mkdir /tmp/old && git archive 420ecff src | tar -x -C /tmp/old
    OMP_NUM_THREADS=1 python benchmarks/tuning/v01_reference.py --src /tmp/old/src
    # → results/search_sparse_v01_reference.json (read by search_sparse.py --report)

``--quick``: the first seed, breast_tcga only, 20 epochs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common  # imports no poems_mu: the checkout given by --src is the one used
import numpy as np
from _baselines import evaluate, load_dataset, paper_split, train_on_split


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=[0, 1, 2])
    parser.add_argument("--src", required=True, help="the src folder of a checkout of the 0.1 code")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(Path(args.src).resolve()))
    import poems_mu as pm

    assert Path(pm.__file__).resolve().is_relative_to(Path(args.src).resolve()), pm.__file__
    prov = common.provenance(__file__, argv)
    common.quiet()
    train_kwargs = {"max_epochs": 20, "n_epochs_kl_warmup": 5} if args.quick else None
    out = []
    for name in ["breast_tcga"] if args.quick else ["breast_tcga", "rosmap"]:
        for seed in args.seeds:
            mdata, key = load_dataset(name)
            labels = mdata.obs[key].to_numpy()
            split = paper_split(labels)
            model, train, val, wall = train_on_split(mdata, split, seed, train_kwargs=train_kwargs)
            ws = [model.get_loadings(m).to_numpy() for m in model.modalities]
            z = model.get_latent_representation(train)
            met = evaluate(z, labels[split["train"]], {"train": np.arange(len(z))}, scopes=("train",))["train"]
            rec = {
                "dataset": name,
                "seed": seed,
                "heldout_elbo": common.heldout_elbo(model, train, val),
                "density": float(np.mean([(np.abs(w) > 0.01).mean() for w in ws])),
                "zeros": float(np.mean([(w == 0).mean() for w in ws])),
                "epochs": len(model.history["elbo_train"]),
                "wall_s": wall,
                "train_knn": met["knn_accuracy"]["mean"],
                "train_nmi": met["kmeans_nmi"]["mean"],
            }
            print(json.dumps(rec), flush=True)
            out.append(rec)
    payload = {"settings": {"src": str(Path(args.src).resolve()), "quick": args.quick}, "records": out}
    common.write_results(args.out / "search_sparse_v01_reference.json", payload, provenance=prov)


if __name__ == "__main__":
    main()
