"""Does a deterministic start of the free factors (``factor_start="pca"``) make the factors come back from seed to seed?

    OMP_NUM_THREADS=1 python benchmarks/tuning/factor_start.py                          # random and pca, seeds 0-4
    OMP_NUM_THREADS=1 python benchmarks/tuning/factor_start.py --ablations --name factor_start_ablations
    OMP_NUM_THREADS=1 python benchmarks/tuning/factor_start.py --quick                  # 1 seed, 20 epochs

``pca`` is the package default, ``POEMS(factor_start="pca")`` (:mod:`poems_mu.data._factor_start`: the
varimax-rotated components of a joint PCA of the views, as many as parallel analysis keeps; links and encoder
units); ``random`` is ``factor_start="random"``. ``--ablations`` runs instead the two choices inside it, applied
through the benchmarks' ``prepare`` hook with the package's functions to a randomly started model: every free factor
started (K components, not parallel analysis's count), the components unrotated, and the varimax components rotated
further by promax (an oblique rotation: the started factors may correlate, as the planted ones do).

Measured per start, package defaults otherwise: on breast_tcga and rosmap (every sample, each training seed its own
validation split, as ``accuracy/factors.py``) the factors kept, the reproducibility of the kept factors over the seeds
(``tl.factor_stability``), the held-out criterion (lower is better), epochs, seconds per fit and, reported only
(nothing is chosen with labels), the k-means NMI and KNN accuracy against the labels (``tl.evaluate_subtyping``); on
the planted data of ``accuracy/factors.py`` (4 and 8 true factors, data seed = training seed) the factors kept, the
grouped AUROC, the worst true factor's best |corr| and the reproducibility on data seed 0; and on the small cohort
with weak links of ``tuning/factor_penalty_small.py`` (150 samples, data seeds 0-2) the grouped AUROC and the factors
kept (``--ablations``: breast_tcga and the planted data only).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "accuracy"))  # factors.planted_run

import _common as common

#: name → (model arguments over the defaults, or the ablation's arguments of ``pca_start``)
STARTS = {"random": {"factor_start": "random"}, "pca": {"factor_start": "pca"}}
ABLATIONS = {
    "pca, all K started": {"n": "K"},
    "pca, unrotated": {"rotate": False},
    "pca, promax (oblique)": {"oblique": True},
}
LABELS = {"breast_tcga": "subtype", "rosmap": "label"}


def promax(links, scores, power: int = 4):
    """The promax rotation (Hendrickson & White 1964, as R's ``stats::promax``) of varimax-rotated ``links``
    (features × factors) and their ``scores``: the links move towards their ``power``-th powers (sign kept) by an
    oblique transform, normalised so that the scores keep unit variance; the scores become correlated and their
    product with the links is unchanged."""
    import numpy as np

    target = links * np.abs(links) ** (power - 1)
    u, *_ = np.linalg.lstsq(links, target, rcond=None)
    u = u * np.sqrt(np.diag(np.linalg.inv(u.T @ u)))[None, :]
    return links @ u, scores @ np.linalg.inv(u).T


def ablation_start(model, rotate: bool = True, n=None, oblique: bool = False, fewer: int = 0) -> None:
    """The model's start of the free factors (``model._starts.free_start``) with other choices: ``rotate`` and ``n``
    (``"K"``: every free factor) of ``pca_start``; ``fewer``: that many components fewer than parallel analysis
    finds; ``oblique``: the varimax start rotated further by :func:`promax`, its largest link at the package's start
    scale again."""
    import numpy as np

    from poems_mu.data._factor_start import START_SCALE, FactorStart
    from poems_mu.model._starts import free_start, start_factors, views_of

    views = views_of(model, range(len(model.modalities)))
    if n == "K":
        n = model.module.n_latent - model.module.n_annotated
    elif fewer:
        n = free_start(model, views).n_above_noise - fewer
    start = free_start(model, views, rotate=rotate, n=n)
    if oblique and start.scores.shape[1] > 1:
        bounds = np.cumsum([0] + [w.shape[0] for w in start.links])
        links, scores = promax(np.concatenate(start.links), start.scores)
        links = links * (START_SCALE / np.abs(links).max())
        per_view = [links[bounds[i] : bounds[i + 1]] for i in range(len(start.links))]
        start = FactorStart(per_view, scores, start.n_above_noise)
    model._free_start = start
    start_factors(model, views)


def config(name: str):
    """The model arguments and the ``prepare`` hook of a start."""
    if name in STARTS:
        return STARTS[name], None
    return STARTS["random"], lambda model: ablation_start(model, **ABLATIONS[name])


def real_runs(name: str, data: str, seeds, train_kwargs: dict) -> tuple[list[dict], float]:
    """A bundled cohort, every sample, one model per training seed; the records and the reproducibility."""
    import factors as bench

    import poems_mu as pm

    kwargs, prepare = config(name)
    recs, models = [], []
    for seed in seeds:
        mdata = getattr(pm.datasets, data)()
        model, wall = common.train_poems(mdata, seed, kwargs, train_kwargs=train_kwargs, prepare=prepare)
        labels = mdata.obs[LABELS[data]].to_numpy()
        scores = pm.tl.evaluate_subtyping(model.get_latent_representation(), labels=labels)
        summary = model.training_summary_
        recs.append(
            {
                "start": name,
                "data": data,
                "seed": seed,
                "kept": int(model.module.n_factors),
                "elbo": summary["runs"][summary["chosen_restart"]]["validation_criterion"],
                "nmi": float(scores.loc[scores["metric"] == "kmeans_nmi", "value"].mean()),
                "knn": float(scores.loc[scores["metric"] == "knn_accuracy", "value"].mean()),
                **common.fit_info(model, wall),
            }
        )
        print(json.dumps(recs[-1], default=float), flush=True)
        models.append(model)
    return recs, bench.reproducibility(models) if len(models) > 1 else float("nan")


def planted_runs(name: str, k: int, seeds, train_kwargs: dict) -> tuple[list[dict], float]:
    """``accuracy/factors.py``'s planted data with ``k`` factors; the records and the reproducibility."""
    import factors as bench

    kwargs, prepare = config(name)
    recs = []
    for seed in seeds:
        rec, _ = bench.planted_run(k, seed, seed, kwargs, train_kwargs, prepare=prepare)
        recs.append({"start": name, **rec})
        print(json.dumps(recs[-1], default=float), flush=True)
    models = [bench.planted_run(k, 0, s, kwargs, train_kwargs, prepare=prepare)[1] for s in seeds]
    return recs, bench.reproducibility(models) if len(models) > 1 else float("nan")


def small_runs(name: str, seeds, train_kwargs: dict) -> list[dict]:
    """The small cohort with weak links of ``tuning/factor_penalty_small.py`` (``seeds``: None for its seeds)."""
    import factor_penalty_small as small

    seeds = small.SEEDS if seeds is None else seeds
    kwargs, prepare = config(name)
    recs = []
    for seed in seeds:
        rec = small.fit(small.WEAK, seed, kwargs, train_kwargs, prepare=prepare)
        recs.append({"start": name, "data": "small, weak links", "seed": seed, **rec})
        print(json.dumps(recs[-1], default=float), flush=True)
    return recs


def main(argv=None) -> None:
    p = common.parser(__doc__, seeds=[0, 1, 2, 3, 4])
    p.add_argument("--ablations", action="store_true", help="the ablations of the pca start instead")
    p.add_argument("--name", default="factor_start", help="results file name (default: %(default)s)")
    args = p.parse_args(argv)
    prov = common.provenance(__file__, argv)
    common.quiet()
    train_kwargs = {"max_epochs": 20, "n_epochs_kl_warmup": 5} if args.quick else {}
    starts = list(ABLATIONS) if args.ablations else list(STARTS)
    datasets = ("breast_tcga",) if args.ablations else ("breast_tcga", "rosmap")
    recs, repro = [], []
    for name in starts:
        for data in datasets:
            runs, value = real_runs(name, data, args.seeds, train_kwargs)
            recs += runs
            repro.append({"start": name, "data": data, "value": value})
        for k in (4, 8):
            runs, value = planted_runs(name, k, args.seeds, train_kwargs)
            recs += runs
            repro.append({"start": name, "data": f"planted, {k} factors", "value": value})
        if not args.ablations:
            recs += small_runs(name, args.seeds[:1] if args.quick else None, train_kwargs)
    payload = {
        "starts": {n: STARTS.get(n, ABLATIONS.get(n)) for n in starts},
        "runs": recs,
        "reproducibility": repro,
    }
    common.write_results(args.out / f"{args.name}.json", payload, provenance=prov)
    print(f"wrote {args.out / args.name}.json")


if __name__ == "__main__":
    main()
