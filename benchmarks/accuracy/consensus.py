"""Does a consensus of several runs give one answer per data set?

    OMP_NUM_THREADS=1 python benchmarks/accuracy/consensus.py --workers 2
    OMP_NUM_THREADS=1 python benchmarks/accuracy/consensus.py --quick      # breast_tcga, POEMS and MOFA+, 20 epochs

breast_tcga's k-means NMI depends on the training seed for POEMS, MOFA+ and MOFA-FLEX alike, because 3-cluster
k-means has near-tied partitions in every embedding (``subtyping_structures.py``), and choosing one of several
restarts does not remove it (``restart_choice.py``). This script measures the consensus of R runs
(``pm.tl.consensus_embedding``'s arithmetic, ``consensus_scores``: each run's embedding centred and scaled to the
same total variance, the runs concatenated, the samples placed on the concatenation's leading principal axes, as
many as the median number of factors of the runs) for every method that has a seed.

Protocol, as ``subtyping.py``: the paper's split; each method fitted on the train split (POEMS on its fit part with
early stopping on the fixed validation part) with training seeds 0 … R_max·G − 1, every sample embedded; the
consensus axes are fitted on the train samples and the test samples projected (they touch nothing). For each R in
``--sizes`` the first R·G seeds form G groups of R consecutive seeds (R = 1: single runs), one consensus per group.

Reported per data set, method and R, over the G groups:

- **label-free**: how much the consensuses of disjoint runs agree: the mean adjusted Rand index between their
  k-means partitions of all samples (as many clusters as the protocol's classes, 10 starts, fixed seed) and their
  mean linear CKA over the train samples; the seconds of the R fits (training + embedding);
- **scored with the labels** (as ``subtyping.py``: ``tl.evaluate_subtyping``, mean over its evaluation seeds):
  k-means NMI and KNN accuracy over all samples and on the test split, mean and SD over the groups; and, to tell the
  training seeds' share of that SD from k-means's own, each group's scores per evaluation seed (k-means's
  ``random_state`` on the same embedding) and their SD within a group, averaged over the groups (``sd_within``).

The rule for the documented number of runs, written after a scratch run of POEMS on breast_tcga (seeds 0–39, the
partition agreement rising from 0.51 for single runs to 0.92 for consensuses of 8) and before this script's first
run: the smallest R in ``--sizes`` at which POEMS's consensuses agree on every data set with a mean ARI ≥ 0.9.
Labels choose nothing. The first run measured R up to 8 and no R met the rule (breast_tcga 0.895 at R = 8, rosmap
0.961); R = 12 and 16 were added then, the rule unchanged.

A method's rows depend on its own runs only, so a change to POEMS needs POEMS refitted alone:
``--methods POEMS --keep benchmarks/results/consensus.json`` takes the other methods' rows (MOFA-FLEX's are most of
the time) from that earlier file, which must have used the same data sets, sizes and groups; the new file records,
per earlier run, which methods' rows came from it and its provenance (``kept``; rows the earlier file had itself kept
keep their own run).
"""

from __future__ import annotations

import sys
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np
from _baselines import evaluate, fit_baseline, fit_poems, load_dataset, paper_split

from poems_mu.tl._consensus import consensus_scores, linear_cka

DATASETS = ("breast_tcga", "rosmap")
METHODS = ("POEMS", "MOFA+", "MOFA-FLEX")
SIZES = (1, 3, 5, 8, 12, 16)
GROUPS = 5
AGREEMENT = 0.9


def fit(job) -> dict:
    """One training run: the embedding of every sample, its seconds and its number of factors."""
    dataset, method, seed, quick = job
    common.quiet()
    mdata, key = load_dataset(dataset)
    split = paper_split(mdata.obs[key].to_numpy())
    if method == "POEMS":
        train_kwargs = {"max_epochs": 20, "n_epochs_kl_warmup": 5} if quick else None
        z, info = fit_poems(mdata, split, seed, train_kwargs=train_kwargs)
    else:
        z, info = fit_baseline(method, mdata, split, seed, quick=quick)
    wall = info["wall_s"]  # set-up or z-scoring, the fit and the embedding of every sample
    print(f"{dataset} {method} seed {seed}: {z.shape[1]} factors, {wall:.1f} s", flush=True)
    return {"z": z, "wall_s": wall, "factors": int(info.get("n_factors", z.shape[1]))}


def partition(z: np.ndarray, k: int) -> np.ndarray:
    """The k-means partition of every sample (``k`` clusters, 10 starts, a fixed seed)."""
    from sklearn.cluster import KMeans

    return KMeans(k, n_init=10, random_state=0).fit_predict(z)


def score_size(runs: list[dict], size: int, groups: int, labels, split) -> dict:
    """The consensuses of ``groups`` groups of ``size`` runs: agreement between them, their time and their scores."""
    from sklearn.metrics import adjusted_rand_score

    train = split["train"]
    embeddings, seconds = [], []
    for g in range(groups):
        members = runs[g * size : (g + 1) * size]
        zs = [r["z"] for r in members]
        embeddings.append(zs[0] if size == 1 else consensus_scores(zs, fit_rows=train)[0])
        seconds.append(sum(r["wall_s"] for r in members))
    k = len(np.unique(labels))
    parts = [partition(z, k) for z in embeddings]
    pairs = list(combinations(range(groups), 2))
    scores = [evaluate(z, labels, split, scopes=("all", "test")) for z in embeddings]
    out = {
        "runs": size,
        "groups": groups,
        "ari_between": float(np.mean([adjusted_rand_score(parts[i], parts[j]) for i, j in pairs])),
        "cka_between": float(np.mean([linear_cka(embeddings[i][train], embeddings[j][train]) for i, j in pairs])),
        "seconds": float(np.mean(seconds)),
        "width": float(np.mean([z.shape[1] for z in embeddings])),
    }
    for scope in ("all", "test"):
        for metric in ("kmeans_nmi", "knn_accuracy"):
            values = [s[scope][metric]["mean"] for s in scores]
            per_seed = [s[scope][metric]["values"] for s in scores]
            out[f"{metric}_{scope}"] = {
                "mean": float(np.mean(values)),
                "sd": float(np.std(values, ddof=1)),
                "values": values,
                "per_evaluation_seed": per_seed,
                "sd_within": float(np.mean([np.std(v, ddof=1) for v in per_seed])),
            }
    return out


def markdown(results: dict, sizes, groups: int, kept: list[dict] | None = None) -> str:
    lines = [
        "# A consensus of several runs (the paper's split)",
        "",
        f"Groups of R runs with disjoint training seeds ({groups} groups per R; R = 1: single runs); protocol: the "
        "script's docstring. Label-free: agreement between the groups' consensuses (ARI of their k-means "
        "partitions of all samples, linear CKA over the train samples) and the seconds of the R fits. Scored with "
        "the labels: mean ± SD over the groups.",
        "",
    ]
    for dataset, methods in results.items():
        lines += [
            f"## {dataset}",
            "",
            "| method | runs | partition agreement | CKA | seconds | NMI, all | NMI, test | KNN, all | KNN, test |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for method, rows in methods.items():
            for r in rows:
                cells = [
                    f"{r[f'{m}_{s}']['mean']:.3f} ± {r[f'{m}_{s}']['sd']:.3f}"
                    for m in ("kmeans_nmi", "knn_accuracy")
                    for s in ("all", "test")
                ]
                lines.append(
                    f"| {method} | {r['runs']} | {r['ari_between']:.2f} | {r['cka_between']:.3f} | "
                    f"{r['seconds']:.1f} | " + " | ".join(cells) + " |"
                )
        lines.append("")
    lines += common.kept_lines(kept)
    return "\n".join(lines)


def chosen_size(results: dict) -> int | None:
    """The rule of the docstring: the smallest R at which POEMS's consensuses agree (ARI ≥ 0.9) on every data set."""
    poems = [rows for methods in results.values() for name, rows in methods.items() if name == "POEMS"]
    if not poems:
        return None
    for i, row in enumerate(poems[0]):
        if all(rows[i]["ari_between"] >= AGREEMENT for rows in poems):
            return row["runs"]
    return None


def keep_rows(path: Path, results: dict, factors: dict, sizes, groups: int) -> dict:
    """Add to ``results`` and ``factors`` (in place) the rows of the methods fitted in ``path`` and not here.

    Raises when the earlier run's data sets, sizes or groups differ from this one's (its rows would not compare).
    Returns where the kept rows come from (``_common.kept_parts``: rows the earlier file had itself kept keep
    their own run)."""
    import json

    earlier = json.loads(Path(path).read_text())
    settings = earlier["settings"]
    if sorted(settings["sizes"]) != list(sizes) or settings["groups"] != groups or settings["quick"]:
        raise ValueError(
            f"--keep {path}: its sizes {settings['sizes']} / groups {settings['groups']} / quick {settings['quick']} "
            f"differ from this run's {list(sizes)} / {groups} / False; run every method instead."
        )
    fitted = {m for rows in results.values() for m in rows}
    for dataset, rows in results.items():
        if dataset not in earlier["results"]:
            raise ValueError(f"--keep {path} has no rows for {dataset!r}; run every method instead.")
        for method in earlier["results"][dataset]:
            if method not in rows:
                rows[method] = earlier["results"][dataset][method]
                factors[f"{dataset} {method}"] = earlier["factors"][f"{dataset} {method}"]
    old_methods = list(dict.fromkeys(m for dataset in results for m in earlier["results"][dataset]))
    return common.kept_parts(earlier, old_methods, fitted)


def main(argv=None) -> None:
    p = common.parser(__doc__, seeds=None, workers=True)
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--sizes", nargs="+", type=int, default=list(SIZES), help="runs per consensus")
    p.add_argument("--groups", type=int, default=GROUPS, help="consensuses per size")
    p.add_argument("--keep", type=Path, help="an earlier consensus.json whose rows of the methods not fitted are kept")
    args = p.parse_args(argv)
    prov = common.provenance(__file__, argv)
    datasets, methods, sizes, groups = args.datasets, args.methods, sorted(args.sizes), args.groups
    if args.quick:
        datasets, methods, sizes, groups = ["breast_tcga"], ["POEMS", "MOFA+"], [1, 2], 2
    n_runs = max(sizes) * groups
    jobs = [(d, m, s, args.quick) for d in datasets for m in methods for s in range(n_runs)]
    fits = common.map_jobs(fit, jobs, args.workers)
    results, factors = {}, {}
    for d in datasets:
        mdata, key = load_dataset(d)
        labels = mdata.obs[key].to_numpy()
        split = paper_split(labels)
        results[d] = {}
        for m in methods:
            runs = [f for (dd, mm, _, _), f in zip(jobs, fits, strict=True) if (dd, mm) == (d, m)]
            factors[f"{d} {m}"] = [r["factors"] for r in runs]
            results[d][m] = [score_size(runs, r, groups, labels, split) for r in sizes]
    kept = keep_rows(args.keep, results, factors, sizes, groups) if args.keep else None
    choice = chosen_size(results)
    text = markdown(results, sizes, groups, kept)
    text += f"\nThe rule (smallest R with POEMS's partition agreement ≥ {AGREEMENT} on every data set) picks " + (
        f"R = {choice}." if choice else "no R of those measured."
    )
    payload = {
        "settings": {
            "datasets": datasets,
            "methods": methods,
            "sizes": sizes,
            "groups": groups,
            "agreement": AGREEMENT,
            "quick": args.quick,
        },
        "results": results,
        "factors": factors,
        "chosen_runs": choice,
    }
    if kept:
        payload["kept"] = kept
    common.write_results(args.out / "consensus.json", payload, provenance=prov, markdown=text)
    print(text)


if __name__ == "__main__":
    main()
