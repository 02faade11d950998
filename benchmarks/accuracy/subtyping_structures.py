"""Why breast_tcga's k-means NMI depends on the training seed: two partitions of (almost) the same quality.

    OMP_NUM_THREADS=1 python benchmarks/accuracy/subtyping_structures.py            # seeds 0-4, every method
    OMP_NUM_THREADS=1 python benchmarks/accuracy/subtyping_structures.py --quick    # one seed, few epochs

The embeddings are those of ``accuracy/subtyping.py`` (fitted on the paper's train split, every sample embedded;
PCA, MOFA+, MOFA-FLEX and POEMS at their settings there). For each embedding of all samples:

* ``N_STARTS`` runs of k-means with one start each (``n_clusters`` = the number of subtypes; ``random_state`` 0, 1,
  ...), sorted by inertia, give the structures: the best partition, then the best one that is a different structure
  from those already found (adjusted Rand index below ``SAME_STRUCTURE`` with each), up to ``MAX_STRUCTURES``. Each
  has its inertia gap to the best (``inertia / best - 1``) and its NMI against the PAM50 subtypes: the labels score
  the structures, they choose nothing.
* which structure the scored k-means of ``tl.evaluate_subtyping`` (``n_init=10``, its five evaluation seeds) returns
  (the share of its runs nearest, by ARI, to each), and its mean NMI (the number in ``subtyping.md``).
* between training seeds of one method: how much of one run's embedding the other's predicts linearly (linear CKA,
  and the R² of a least-squares map, mean of both directions), i.e. whether the runs learned the same space.

Written to ``benchmarks/results/subtyping_structures.{json,md}``.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np
from _baselines import BASELINES, fit_baseline, fit_poems, load_dataset, paper_split

from poems_mu.tl._consensus import linear_cka

#: single-start k-means runs that look for the two structures
N_STARTS = 200
#: two partitions with an adjusted Rand index at least this are the same structure (variants of one structure that
#: move a few samples agree at ARI ≈ 0.8; the two structures of breast_tcga at 0.3-0.55)
SAME_STRUCTURE = 0.6
#: structures reported per embedding
MAX_STRUCTURES = 5
METHODS = ("PCA", "MOFA+", "MOFA-FLEX", "POEMS")


def structures(z: np.ndarray, y: np.ndarray, n_clusters: int) -> dict:
    """The structures k-means finds in ``z`` and which one ``tl.evaluate_subtyping`` returns (module docstring)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    import poems_mu as pm

    fits = [KMeans(n_clusters=n_clusters, n_init=1, random_state=r).fit(z) for r in range(N_STARTS)]
    fits.sort(key=lambda f: f.inertia_)
    found = []  # the best partition of each structure, in the order of their inertia
    for f in fits:
        if len(found) < MAX_STRUCTURES and all(
            adjusted_rand_score(g.labels_, f.labels_) < SAME_STRUCTURE for g in found
        ):
            found.append(f)
    scored = pm.tl.evaluate_subtyping(z, labels=y, n_clusters=n_clusters)
    returned = [
        KMeans(n_clusters=n_clusters, n_init=10, random_state=s).fit_predict(z) for s in sorted(set(scored["seed"]))
    ]
    nearest = [int(np.argmax([adjusted_rand_score(g.labels_, r) for g in found])) for r in returned]
    best = found[0].inertia_
    return {
        "n_dims": int(z.shape[1]),
        "nmi_scored": float(scored.loc[scored["metric"] == "kmeans_nmi", "value"].mean()),
        "structures": [
            {
                "inertia": float(f.inertia_),
                "gap": float(f.inertia_ / best - 1),
                "nmi": float(normalized_mutual_info_score(y, f.labels_)),
                "ari_to_first": float(adjusted_rand_score(found[0].labels_, f.labels_)),
                "scored_share": float(np.mean([n == i for n in nearest])),
                "table": _table(y, f.labels_),
            }
            for i, f in enumerate(found)
        ],
    }


def _table(y: np.ndarray, labels: np.ndarray) -> dict:
    """Subtype counts per cluster, clusters in the order of their largest subtype."""
    classes = sorted(set(y))
    counts = {int(c): {s: int(((labels == c) & (y == s)).sum()) for s in classes} for c in np.unique(labels)}
    order = sorted(counts, key=lambda c: (classes.index(max(counts[c], key=counts[c].get)), -sum(counts[c].values())))
    return {f"cluster {i + 1}": counts[c] for i, c in enumerate(order)}


def agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """Linear CKA of two embeddings of the same samples, and the mean R² of the least-squares maps a→b and b→a."""
    cka = linear_cka(a, b)
    a, b = a - a.mean(0), b - b.mean(0)

    def r2(x, t):
        coef, *_ = np.linalg.lstsq(x, t, rcond=None)
        return 1 - ((t - x @ coef) ** 2).sum() / (t**2).sum()

    return {"cka": float(cka), "r2": float((r2(a, b) + r2(b, a)) / 2)}


def report(payload: dict) -> str:
    """The markdown of the results file."""
    st = payload["settings"]
    lines = [
        "# breast_tcga: the k-means structures of each embedding",
        "",
        f"Fitted on the paper's train split, all {payload['n_obs']} samples embedded and clustered; k-means with "
        f"{st['n_clusters']} clusters, {st['n_starts']} single starts per embedding. Structures: the best partition, "
        f"then the best partition of each other structure (ARI < {st['same_structure']} with every one before), at "
        f"most {st['max_structures']}, each as *gap: NMI (scored)*: its inertia over the best partition's, minus 1; "
        "its NMI against PAM50; how many of the 5 k-means runs of `tl.evaluate_subtyping` (n_init=10) return it. *NMI "
        "scored*: their mean NMI (as in `subtyping.md`). The labels only score; nothing is chosen with them.",
        "",
        "| method | seed | NMI scored | structures, best first |",
        "|---|---|---|---|",
    ]
    for r in payload["runs"]:
        cells = [f"{100 * t['gap']:+.2f} %: {t['nmi']:.2f} ({round(5 * t['scored_share'])})" for t in r["structures"]]
        lines.append(f"| {r['method']} | {r['train_seed']} | {r['nmi_scored']:.3f} | " + "; ".join(cells) + " |")
    lines += ["", "Between training seeds (mean over pairs of runs of one method):", ""]
    lines += ["| method | pairs | linear CKA | R² of a linear map |", "|---|---|---|---|"]
    for method in dict.fromkeys(p["method"] for p in payload["pairs"]):
        ps = [p for p in payload["pairs"] if p["method"] == method]
        cka, r2 = (np.mean([p[k] for p in ps]) for k in ("cka", "r2"))
        lines.append(f"| {method} | {len(ps)} | {cka:.2f} | {r2:.2f} |")
    first = payload["runs"][-1]
    lines += ["", f"The structures of {first['method']}, seed {first['train_seed']} (subtype counts per cluster):", ""]
    for i, t in enumerate(first["structures"]):
        counts = "; ".join(
            f"{name}: " + ", ".join(f"{s} {n}" for s, n in c.items() if n) for name, c in t["table"].items()
        )
        lines.append(f"- structure {i + 1} (NMI {t['nmi']:.2f}): {counts}")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = common.parser(__doc__, seeds=[0, 1, 2, 3, 4])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = p.parse_args(argv)
    prov = common.provenance(__file__, argv)
    common.quiet()
    mdata, label_key = load_dataset("breast_tcga")
    y = mdata.obs[label_key].to_numpy()
    split = paper_split(y)
    n_clusters = len(set(y))
    seeds = args.seeds
    train_kwargs = {"max_epochs": 20} if args.quick else None
    runs, pairs = [], []
    for method in args.methods:
        latents = {}
        for seed in seeds[:1] if method == "PCA" else seeds:
            if method in BASELINES:
                z, info = fit_baseline(method, mdata, split, seed, quick=args.quick)
            else:
                z, info = fit_poems(mdata, split, seed, train_kwargs=train_kwargs)
            latents[seed] = z
            rec = {"method": method, "train_seed": seed, **structures(z, y, n_clusters), "wall_s": info["wall_s"]}
            brief = [(round(t["gap"], 4), round(t["nmi"], 2), t["scored_share"]) for t in rec["structures"]]
            print(method, seed, round(rec["nmi_scored"], 3), brief, flush=True)
            runs.append(rec)
        for s, t in itertools.combinations(latents, 2):
            pairs.append({"method": method, "seeds": [s, t], **agreement(latents[s], latents[t])})
    settings = {
        "n_starts": N_STARTS,
        "same_structure": SAME_STRUCTURE,
        "max_structures": MAX_STRUCTURES,
        "n_clusters": n_clusters,
        "seeds": seeds,
    }
    out = args.out / "subtyping_structures.json"
    payload = {"settings": settings, "n_obs": int(mdata.n_obs), "runs": runs, "pairs": pairs}
    common.write_results(out, payload, provenance=prov, markdown=report(payload))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
