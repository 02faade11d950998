"""Does a deterministic start of the free factors (a joint PCA of the views) make breast_tcga's factors come back?

    OMP_NUM_THREADS=1 python benchmarks/tuning/factor_start.py            # every start, seeds 0-4
    OMP_NUM_THREADS=1 python benchmarks/tuning/factor_start.py --quick    # 2 starts, 1 seed, 20 epochs

A prototype, not a package option: each start below is applied to a model after it is built and before it trains
(the ``prepare`` hook of the benchmarks), to free factors only. The package's own start is ``random``.

* ``random``: the package default (decoders' links and encoders at their random initialisation).
* ``pca``: the joint PCA of the encoders' standardised views (each modality's block divided by √D_v, the samples
  without a modality at its mean), its first ``n`` components: component k's loadings become factor k's links in
  each modality (scaled by its singular value over the first one's, the largest link of the first component 1), and
  the unit of factor k in each encoder starts at a ridge fit of the component's standardised scores (the fit the
  feature sets' start uses, ``module/_set_start.py``). ``n``: all K free factors, or (``+PA``) the components that
  Horn's parallel analysis keeps (singular value above the 95th percentile of those of 20 column-permuted copies,
  a fixed random stream); the other factors keep the random start.
* ``varimax`` / ``promax``: the same, with the retained loadings (times their singular values) rotated by varimax,
  or by promax (power 4, oblique: factors may correlate) before they start; the scores rotate with them. The
  largest link over all started factors is 1.

Measured per start: on breast_tcga (every sample, each training seed its own validation split, as
``accuracy/factors.py``) the factors kept, the reproducibility of the kept factors over the seeds
(``tl.factor_stability``), the held-out criterion (lower is better), epochs, seconds per fit and, reported only
(nothing is chosen with labels), the k-means NMI and KNN accuracy against PAM50 (``tl.evaluate_subtyping``); on
the planted data of ``accuracy/factors.py`` (4 and 8 true factors, data seed = training seed) the factors kept, the
grouped AUROC, the worst true factor's best |corr|, and the reproducibility on data seed 0.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "accuracy"))  # factors.planted_run

import _common as common
import numpy as np
import pandas as pd

#: name → (rotation, parallel analysis, model arguments over the defaults)
STARTS = {
    "random": (None, False, {}),
    "pca": ("none", False, {}),
    "pca+PA": ("none", True, {}),
    "varimax": ("varimax", False, {}),
    "varimax+PA": ("varimax", True, {}),
    "promax+PA": ("promax", True, {}),
    "varimax+PA, λ_f = 5": ("varimax", True, {"lambda_factor": 5.0}),
    "random, λ_f = 5": (None, False, {"lambda_factor": 5.0}),
}
PERMUTATIONS = 20
LEVEL = 0.95


def varimax(loadings: np.ndarray, n_iter: int = 100, tol: float = 1e-8) -> np.ndarray:
    """The orthogonal rotation R that maximises the varimax criterion of ``loadings @ R``."""
    p, k = loadings.shape
    rot, value = np.eye(k), 0.0
    for _ in range(n_iter):
        lam = loadings @ rot
        u, s, vt = np.linalg.svd(loadings.T @ (lam**3 - lam * (lam**2).sum(0) / p))
        rot, previous, value = u @ vt, value, s.sum()
        if previous and value / previous < 1 + tol:
            break
    return rot


def parallel_analysis(x: np.ndarray, s: np.ndarray) -> int:
    """How many leading singular values of the centred ``x`` exceed the ``LEVEL`` quantile of column-permuted
    copies' (``s``: x's own singular values)."""
    rng = np.random.default_rng(0)
    null = []
    for _ in range(PERMUTATIONS):
        xp = np.column_stack([rng.permutation(c) for c in x.T])
        null.append(np.linalg.svd(xp - xp.mean(0), compute_uv=False))
    above = s > np.quantile(np.array(null), LEVEL, axis=0)
    return int(np.argmin(above)) if not above.all() else len(s)


def start_from_pca(model, rotation: str, use_pa: bool) -> int:
    """Start the free factors of ``model`` (before training) from the joint PCA of its views; returns how many."""
    import torch

    from poems_mu.data._registry import observed_rows
    from poems_mu.data._statistics import encoder_views
    from poems_mu.module._set_start import start_set_encoders

    inputs = model._module_inputs
    views = encoder_views(
        model.adata_manager, model.modalities, inputs["likelihoods"], observed_rows(model.adata_manager),
        inputs["statistics"],
    )  # fmt: skip
    x = np.concatenate([np.nan_to_num(v, nan=0.0) / np.sqrt(v.shape[1]) for v in views], axis=1)
    x = x - x.mean(0)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    module = model.module
    first = module.n_annotated
    n = min(module.n_latent - first, len(s))
    if use_pa:
        n = min(n, parallel_analysis(x, s))
    scores = u[:, :n] * np.sqrt(len(u))  # unit variance
    links = vt[:n].T * (s[:n] / s[0])
    if rotation != "none":
        rot = varimax(links)
        links, scores = links @ rot, scores @ rot
        if rotation == "promax":
            target = links * np.abs(links) ** 3
            t, *_ = np.linalg.lstsq(links, target, rcond=None)
            t /= np.sqrt((t**2).sum(0))
            links, scores = links @ t, scores @ np.linalg.inv(t).T
            sd = scores.std(0)
            links, scores = links * sd, scores / sd
    links = links / np.abs(links).max()
    bounds = np.cumsum([0] + [v.shape[1] for v in views])
    with torch.no_grad():
        for v, dec in enumerate(module.decoders):
            dec.W[:, first : first + n] = torch.as_tensor(links[bounds[v] : bounds[v + 1]], dtype=dec.W.dtype)
    for v, view in enumerate(views):
        present = ~np.isnan(view[:, 0])
        target = np.full((int(present.sum()), module.n_latent), np.nan)
        target[:, first : first + n] = scores[present]
        start_set_encoders(module, v, view[present], target)
    return n


def prepare_for(name: str):
    rotation, use_pa, _ = STARTS[name]
    return None if rotation is None else (lambda model: start_from_pca(model, rotation, use_pa))


def breast_runs(name: str, seeds, train_kwargs: dict) -> tuple[list[dict], float]:
    import poems_mu as pm

    recs, models = [], []
    for seed in seeds:
        mdata = pm.datasets.breast_tcga()
        model, wall = common.train_poems(
            mdata, seed, STARTS[name][2], train_kwargs=train_kwargs, prepare=prepare_for(name)
        )
        scores = pm.tl.evaluate_subtyping(model.get_latent_representation(), labels=mdata.obs["subtype"].to_numpy())
        summary = model.training_summary_
        recs.append(
            {
                "start": name,
                "data": "breast_tcga",
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
    if len(models) < 2:
        return recs, float("nan")
    factors, _ = pm.tl.factor_stability(models)
    return recs, float(factors["reproducibility"].mean())


def planted_runs(name: str, k: int, seeds, train_kwargs: dict) -> tuple[list[dict], float]:
    import factors as bench

    recs = []
    for seed in seeds:
        rec, _ = bench.planted_run(k, seed, seed, STARTS[name][2], train_kwargs, prepare=prepare_for(name))
        recs.append({"start": name, **rec})
        print(json.dumps(recs[-1], default=float), flush=True)
    models = [bench.planted_run(k, 0, s, STARTS[name][2], train_kwargs, prepare=prepare_for(name))[1] for s in seeds]
    return recs, bench.reproducibility(models) if len(models) > 1 else float("nan")


def report(df: pd.DataFrame, repro: dict, seeds) -> str:
    lines = [
        "# A deterministic start of the free factors",
        "",
        f"Training seeds {', '.join(map(str, seeds))}; mean ± SD over seeds; the starts and scores: the script's "
        "docstring. breast_tcga: every sample, each seed its own validation split; NMI and KNN are reported, not "
        "used. Planted: data seed = training seed; reproducibility on data seed 0.",
        "",
        "| start | breast: kept | reproducibility | held-out criterion | k-means NMI | KNN | epochs | s per fit "
        "| planted 4: kept | AUROC | worst \\|corr\\| | repr. | planted 8: kept | AUROC | worst \\|corr\\| | repr. |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, g in df.groupby("start", sort=False):
        b = g[g["data"] == "breast_tcga"]
        cells = [
            f"{b['kept'].mean():.1f} ({b['kept'].min()}–{b['kept'].max()})",
            f"{repro[(name, 'breast_tcga')]:.2f}",
            common.mean_sd(b["elbo"], ".1f"),
            common.mean_sd(b["nmi"]),
            common.mean_sd(b["knn"]),
            f"{b['epochs'].mean():.0f}",
            f"{b['wall_s'].mean():.1f}",
        ]
        for k in (4, 8):
            p = g[g["data"] == f"planted, {k} factors"]
            cells += [
                ", ".join(map(str, p["kept"])),
                f"{p['grouped_auroc'].mean():.3f}",
                f"{p['min_corr'].mean():.2f}",
                f"{repro[(name, f'planted, {k} factors')]:.2f}",
            ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    p = common.parser(__doc__, seeds=[0, 1, 2, 3, 4])
    p.add_argument("--starts", nargs="+", default=list(STARTS), choices=list(STARTS))
    args = p.parse_args(argv)
    prov = common.provenance(__file__, argv)
    common.quiet()
    train_kwargs, starts = {}, args.starts
    if args.quick:
        train_kwargs, starts = {"max_epochs": 20, "n_epochs_kl_warmup": 5}, starts[:2]
    recs, repro = [], {}
    for name in starts:
        runs, repro[(name, "breast_tcga")] = breast_runs(name, args.seeds, train_kwargs)
        recs += runs
        for k in (4, 8):
            runs, repro[(name, f"planted, {k} factors")] = planted_runs(name, k, args.seeds, train_kwargs)
            recs += runs
    df = pd.DataFrame(recs)
    payload = {
        "starts": {
            n: {"rotation": STARTS[n][0], "parallel_analysis": STARTS[n][1], "model": STARTS[n][2]} for n in starts
        },
        "runs": recs,
        "reproducibility": [{"start": n, "data": d, "value": v} for (n, d), v in repro.items()],
    }
    common.write_results(
        args.out / "factor_start.json", payload, provenance=prov, markdown=report(df, repro, args.seeds)
    )
    print(report(df, repro, args.seeds))


if __name__ == "__main__":
    main()
