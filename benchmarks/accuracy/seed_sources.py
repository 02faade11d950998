"""Where does the seed-to-seed spread of a POEMS run come from?

    OMP_NUM_THREADS=1 python benchmarks/accuracy/seed_sources.py --workers 2
    OMP_NUM_THREADS=1 python benchmarks/accuracy/seed_sources.py --quick      # breast_tcga, 3 seeds, 20 epochs

The factors issue asks why breast_tcga lands in different subtype structures from different seeds (warm-up,
learning-rate schedule, initialisation) and to remove the cause. With the same data and validation samples, a
training seed draws four things: the networks' initial weights (the free factors' links start from the joint PCA
whatever the seed), the order of the minibatches, the dropout masks and the reparameterisation noise. Each variant
below fixes one of them or changes a training setting a user would try, and everything else stays at the defaults:

- ``default``: the package defaults, the seed draws all four;
- ``fixed init``: the model is built under seed 0 and trained under the seed (only the training noise moves);
- ``fixed training noise``: the model is built under the seed and trained under seed 0 (only the initial weights
  move);
- ``no dropout``: ``dropout=0``;
- ``batch 64`` and ``batch 128`` (the default, 1024, puts every training sample of both cohorts in one minibatch);
- ``lr on plateau``: scvi's ``reduce_lr_on_plateau`` (patience 8 epochs, factor 0.5, on ``elbo_validation``);
- two schedules of ``tuning/train_schedule.py``'s grid, under their names there and with every argument given:
  ``previous default`` (lr 0.01, warm-up 50, patience 25, minibatches of 128; the package's schedule before that
  script's rule chose the current one) and ``lr 0.0025, warm-up 100, patience 50``, the best held-out fit there,
  which fails its feature-set condition.

Protocol, as ``subtyping.py``: the paper's split; POEMS trained on the fit part with early stopping on the fixed
validation part (the same validation samples for every seed and variant), every sample embedded. Reported per data
set and variant over training seeds 0 … S − 1:

- **label-free**: the mean linear CKA between the runs' embeddings of the train samples and the mean adjusted Rand
  index between their k-means partitions of all samples (as many clusters as the protocol's classes, 10 starts, a
  fixed seed), over all pairs of seeds; the factors kept; the best held-out criterion (per sample, lower is better,
  on the same validation samples throughout); epochs and seconds of training;
- **scored with the labels** (as ``subtyping.py``): the k-means NMI over all samples, mean and SD over the seeds.

Nothing is chosen here: the variants are measured side by side, in one run.
"""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tuning"))  # train_schedule's grid

import _common as common
import numpy as np
from train_schedule import SCHEDULES as GRID

DATASETS = ("breast_tcga", "rosmap")
SEEDS = 10
PLATEAU = {"reduce_lr_on_plateau": True, "lr_patience": 8, "lr_factor": 0.5, "lr_scheduler_metric": "elbo_validation"}
#: schedules of ``tuning/train_schedule.py``'s grid, by their names there (the grid holds their arguments)
SCHEDULES = {name: GRID[name] for name in ("previous default", "lr 0.0025, warm-up 100, patience 50")}
#: name: (model kwargs, train kwargs, seed the model is built under (None: the run's), seed it trains under)
VARIANTS = {
    "default": ({}, {}, None, None),
    "fixed init": ({}, {}, 0, None),
    "fixed training noise": ({}, {}, None, 0),
    "no dropout": ({"dropout": 0.0}, {}, None, None),
    "batch 64": ({}, {"batch_size": 64}, None, None),
    "batch 128": ({}, {"batch_size": 128}, None, None),
    "lr on plateau": ({}, {"plan_kwargs": PLATEAU}, None, None),
} | {name: ({}, schedule, None, None) for name, schedule in SCHEDULES.items()}


def fit(job) -> dict:
    """One run (``_baselines.fit_poems``): the embedding of every sample, the held-out criterion, the factors kept,
    epochs and seconds of training."""
    import scvi
    from _baselines import fit_poems, load_dataset, paper_split

    dataset, variant, seed, quick = job
    common.quiet()
    model_kwargs, train_kwargs, build_seed, train_seed = VARIANTS[variant]
    train_kwargs = {**train_kwargs, **({"max_epochs": 20, "n_epochs_kl_warmup": 5} if quick else {})}
    mdata, key = load_dataset(dataset)
    split = paper_split(mdata.obs[key].to_numpy())

    def reseed(model):
        if train_seed is not None:
            scvi.settings.seed = train_seed
        elif build_seed is not None:
            scvi.settings.seed = seed

    z, info = fit_poems(
        mdata, split, seed if build_seed is None else build_seed, model_kwargs, train_kwargs, prepare=reseed
    )
    record = {
        "seed": seed,
        "criterion": info["best_elbo_per_sample_validation"],
        "kept": info["n_factors"],
        "epochs": info["epochs"],
        "train_s": info["train_s"],
    }
    print(f"{dataset} {variant} seed {seed}: {record}", flush=True)
    return {**record, "z": z}


def score(runs: list[dict], labels: np.ndarray, split: dict) -> dict:
    """Agreement between the runs (label-free), their means, and the NMI scored with the labels."""
    from _baselines import evaluate
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from poems_mu.tl._consensus import linear_cka

    k = len(np.unique(labels))
    parts = [KMeans(k, n_init=10, random_state=0).fit_predict(r["z"]) for r in runs]
    train = split["train"]
    pairs = list(combinations(range(len(runs)), 2))
    nmi = [evaluate(r["z"], labels, split, scopes=("all",))["all"]["kmeans_nmi"]["mean"] for r in runs]
    out = {
        "cka": float(np.mean([linear_cka(runs[i]["z"][train], runs[j]["z"][train]) for i, j in pairs])),
        "ari": float(np.mean([adjusted_rand_score(parts[i], parts[j]) for i, j in pairs])),
        "nmi_all": {"mean": float(np.mean(nmi)), "sd": float(np.std(nmi, ddof=1)), "values": nmi},
    }
    for name in ("kept", "criterion", "epochs", "train_s"):
        values = [r[name] for r in runs]
        out[name] = {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1)), "values": values}
    return out


def markdown(results: dict, seeds: int) -> str:
    lines = [
        "# Where the seed-to-seed spread comes from (the paper's split)",
        "",
        f"Training seeds 0–{seeds - 1} per variant; protocol and variants: the script's docstring. Label-free: mean "
        "CKA and k-means ARI over pairs of seeds, factors kept, best held-out criterion (the same validation samples "
        "throughout; lower is better), epochs, seconds of training. NMI: scored with the labels, mean ± SD over "
        "seeds.",
        "",
    ]
    for dataset, variants in results.items():
        lines += [
            f"## {dataset}",
            "",
            "| variant | CKA | partition agreement | kept | held-out | epochs | train s | NMI, all |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, r in variants.items():
            lines.append(
                f"| {name} | {r['cka']:.3f} | {r['ari']:.2f} | {r['kept']['mean']:.1f} ± {r['kept']['sd']:.1f} | "
                f"{r['criterion']['mean']:.1f} ± {r['criterion']['sd']:.1f} | {r['epochs']['mean']:.0f} | "
                f"{r['train_s']['mean']:.1f} | {r['nmi_all']['mean']:.3f} ± {r['nmi_all']['sd']:.3f} |"
            )
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> None:
    from _baselines import load_dataset, paper_split

    p = common.parser(__doc__, seeds=None, workers=True)
    p.add_argument("--n-seeds", type=int, default=SEEDS, help="S: training seeds per variant")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    args = p.parse_args(argv)
    prov = common.provenance(__file__, argv)
    datasets, seeds = (DATASETS[:1], 3) if args.quick else (DATASETS, args.n_seeds)
    jobs = [(d, v, s, args.quick) for d in datasets for v in args.variants for s in range(seeds)]
    runs = common.map_jobs(fit, jobs, args.workers)
    results = {}
    for dataset in datasets:
        mdata, key = load_dataset(dataset)
        labels = mdata.obs[key].to_numpy()
        split = paper_split(labels)
        results[dataset] = {
            v: score([r for job, r in zip(jobs, runs, strict=True) if job[:2] == (dataset, v)], labels, split)
            for v in args.variants
        }
    text = markdown(results, seeds)
    payload = {"settings": {"seeds": seeds, "variants": args.variants, "quick": args.quick}, "results": results}
    common.write_results(args.out / "seed_sources.json", payload, provenance=prov, markdown=text)
    print(text)


if __name__ == "__main__":
    main()
