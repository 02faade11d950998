"""Staged search for the defaults of the proximal spike-and-slab POEMS (issue 11), on label-free criteria first.

Protocol (fixed before running):

* real data: rosmap and breast_tcga, each model trained on the paper's **train split** only (``subtyping.paper_split``:
  fit = 80 % of train, validation = 20 % of train); the test split is never touched here. Recorded per run:
  the held-out ELBO per sample on the validation samples (Monte Carlo, 20 posterior samples, reconstruction + KL,
  in nats; lower is better), the share of |W| > 0.01, of exact zeros and of slab links (p* > 0.5), epochs, wall
  time, and, for context only, train-split KNN accuracy and k-means NMI.
* planted data (``planted_sparse.make_planted3``: 3 modalities, 4 true factors, one near-noise modality), K = 32:
  grouped support AUROC (``planted_sparse.grouped_auroc``) and the near-noise modality's effective contribution
  relative to the next lowest.
* choice rule, label-free: among configurations whose mean density over modalities and data sets is ≤ 0.25, the
  best mean held-out ELBO (averaged over the two data sets, each relative to the base configuration), provided its
  planted grouped AUROC is ≥ 0.95; ties (within the seed spread) go to the cheaper (fewer epochs) one.

    OMP_NUM_THREADS=1 python benchmarks/search_sparse.py --stage 1 --workers 2
    python benchmarks/search_sparse.py --report         # writes benchmarks/results/search_sparse.md
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
RESULTS = HERE / "results"
LOG = RESULTS / "search_sparse.jsonl"

BASE = {"model": {}, "train": {}}
#: name -> (model overrides, train overrides). Stage 1: one or two settings at a time, seed 0, with the spike rate
#: warmed up from λ1 to λ0 (``sparsity_warmup="lambda0"``, the recipe of DESIGN.md's probe; it was the code's only
#: warm-up when stage 1 ran).
STAGE1: dict[str, tuple[dict, dict]] = {
    "base (l0=30, l1=3, w0=0.05, lr=3e-3)": ({}, {}),
    "l0=30 l1=1": ({"lambda1": 1.0}, {}),
    "l0=30 l1=0.5": ({"lambda1": 0.5}, {}),
    "l0=10 l1=3": ({"lambda0": 10.0}, {}),
    "l0=10 l1=1": ({"lambda0": 10.0, "lambda1": 1.0}, {}),
    "l0=10 l1=0.5": ({"lambda0": 10.0, "lambda1": 0.5}, {}),
    "l0=10 l1=0.5 w0=0.02": ({"lambda0": 10.0, "lambda1": 0.5, "w_init_scale": 0.02}, {}),
    "l0=10 l1=0.5 w0=0.15": ({"lambda0": 10.0, "lambda1": 0.5, "w_init_scale": 0.15}, {}),
    "l0=10 l1=0.5 lr=1e-2": ({"lambda0": 10.0, "lambda1": 0.5}, {"lr": 1e-2}),
    "l0=10 l1=0.5 no bias": ({"lambda0": 10.0, "lambda1": 0.5, "_no_bias": True}, {}),
}
_FAST = {"lr": 1e-2}
_SCALE = {"lr": 1e-2, "plan_kwargs": {"sparsity_warmup": "scale"}}
#: Stage 2 (seed 0), from stage 1's lessons (the first-layer bias is needed; lr = 1e-2 and a larger start scale of W
#: fit better): the whole penalty warmed up from 0 (``sparsity_warmup="scale"``) against the spike-rate warm-up,
#: over λ0, λ1, the start scale of W and the patience.
STAGE2: dict[str, tuple[dict, dict]] = {
    "lambda0-warmup l0=10 l1=0.5 w0=0.15 lr=1e-2": (
        {"lambda0": 10.0, "lambda1": 0.5, "w_init_scale": 0.15},
        {**_FAST, "plan_kwargs": {"sparsity_warmup": "lambda0"}},
    ),
    "scale-warmup l0=10 l1=0.5 w0=0.05 lr=1e-2": ({"lambda0": 10.0, "lambda1": 0.5}, _SCALE),
    "scale-warmup l0=10 l1=0.5 w0=0.15 lr=1e-2": ({"lambda0": 10.0, "lambda1": 0.5, "w_init_scale": 0.15}, _SCALE),
    "scale-warmup l0=10 l1=1 w0=0.15 lr=1e-2": ({"lambda0": 10.0, "lambda1": 1.0, "w_init_scale": 0.15}, _SCALE),
    "scale-warmup l0=20 l1=0.5 w0=0.15 lr=1e-2": ({"lambda0": 20.0, "lambda1": 0.5, "w_init_scale": 0.15}, _SCALE),
    "scale-warmup l0=5 l1=0.5 w0=0.15 lr=1e-2": ({"lambda0": 5.0, "lambda1": 0.5, "w_init_scale": 0.15}, _SCALE),
    "scale-warmup l0=10 l1=0.5 w0=0.15 lr=1e-2 patience=25": (
        {"lambda0": 10.0, "lambda1": 0.5, "w_init_scale": 0.15},
        {**_SCALE, "early_stopping_patience": 25},
    ),
}


_S3 = {"lr": 1e-2}
_W = {"w_init_scale": 0.15}
#: Stage 3 (seed 0), after a review of the code of stages 1-2 found two flaws that change every number: the proximal
#: threshold used ε = 1e-3 where Adam uses scvi's ε = 0.01 (so small-gradient entries got up to 10× the intended
#: threshold), and the E-step ran during the warm-up, where a fresh, small W drives θ to its floor within a few
#: steps (p* ≈ 0 everywhere after: no slab links, a plain lasso at λ0). Stage 2 was stopped for it. Now: Adam's ε,
#: E-step from the end of the warm-up, the penalty warmed up from 0 (the default), lr = 1e-2.
STAGE3: dict[str, tuple[dict, dict]] = {
    "l0=10 l1=0.5 w0=0.15": ({"lambda0": 10.0, "lambda1": 0.5, **_W}, _S3),
    "l0=10 l1=1 w0=0.15": ({"lambda0": 10.0, "lambda1": 1.0, **_W}, _S3),
    "l0=20 l1=0.5 w0=0.15": ({"lambda0": 20.0, "lambda1": 0.5, **_W}, _S3),
    "l0=20 l1=1 w0=0.15": ({"lambda0": 20.0, "lambda1": 1.0, **_W}, _S3),
    "l0=30 l1=1 w0=0.15": ({"lambda0": 30.0, "lambda1": 1.0, **_W}, _S3),
    "l0=10 l1=0.5 w0=0.15 prox_eps=1e-3": (
        {"lambda0": 10.0, "lambda1": 0.5, **_W},
        {**_S3, "plan_kwargs": {"prox_eps": 1e-3}},
    ),
    "l0=10 l1=0.5 w0=0.05": ({"lambda0": 10.0, "lambda1": 0.5}, _S3),
    "l0=10 l1=0.5 w0=0.15 patience=25": (
        {"lambda0": 10.0, "lambda1": 0.5, **_W},
        {**_S3, "early_stopping_patience": 25},
    ),
}
#: Stage 4 (seeds 1 and 2): the finalists of stage 3 under the rule (mean density ≤ 0.25, best held-out ELBO,
#: planted AUROC ≥ 0.95), a point between them, and restarts on the first.
STAGE4: dict[str, tuple[dict, dict]] = {
    "l0=20 l1=1 w0=0.15": STAGE3["l0=20 l1=1 w0=0.15"],
    "l0=10 l1=0.5 w0=0.15 prox_eps=1e-3": STAGE3["l0=10 l1=0.5 w0=0.15 prox_eps=1e-3"],
    "l0=15 l1=1 w0=0.15": ({"lambda0": 15.0, "lambda1": 1.0, **_W}, _S3),
    "l0=20 l1=1 w0=0.15 restarts=3": ({"lambda0": 20.0, "lambda1": 1.0, **_W}, {**_S3, "n_restarts": 3}),
}

#: Stage 5 (seeds 0-2): the package defaults as released (patience 25), for the comparison with 0.1.
STAGE5: dict[str, tuple[dict, dict]] = {"package defaults": ({}, {})}


def _configs(stage: int) -> dict:
    return {1: STAGE1, 2: STAGE2, 3: STAGE3, 4: STAGE4, 5: STAGE5}[stage]


def _drop_bias(model) -> None:
    """Ablation: the first-layer bias fixed at 0 (the positively homogeneous generator of 0.1)."""
    import torch

    for dec in getattr(model.module, "decoders", []):
        if hasattr(dec, "d"):
            with torch.no_grad():
                dec.d.zero_()
            dec.d.requires_grad_(False)


def heldout_elbo(model, mdata, rows, n_draws: int = 20) -> float:
    """Monte Carlo held-out ELBO per sample (reconstruction + β·KL, nats) of ``rows``, ``n_draws`` posterior draws."""
    import torch

    module = model.module.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for tensors in model._make_data_loader(adata=mdata, indices=rows, batch_size=256):
            draws = []
            for _ in range(n_draws):
                _, _, lo = module(tensors, loss_kwargs={"n_obs": len(rows)})
                draws.append(float(lo.extra_metrics["elbo_per_sample"]))
            n = len(next(iter(lo.reconstruction_loss.values())))
            total += float(np.mean(draws)) * n
            count += n
    return total / count


def run_real(name: str, model_kw: dict, train_kw: dict, seed: int) -> dict:
    import scvi
    import subtyping as sb

    import poems_mu as pm

    sb.quiet()
    mdata, label_key = sb.load_dataset(name)
    labels = mdata.obs[label_key].to_numpy()
    split = sb.paper_split(labels)
    model_kw = dict(model_kw)
    no_bias = model_kw.pop("_no_bias", False)
    train_data, fit_rows, val_rows = sb.train_split_data(mdata, split)
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(train_data)
    model = pm.POEMS(train_data, **model_kw)
    if no_bias:
        _drop_bias(model)
    start = time.perf_counter()
    model.train(
        enable_progress_bar=False,
        datasplitter_kwargs={"external_indexing": [fit_rows, val_rows, np.array([], dtype=np.int64)]},
        **train_kw,
    )
    wall = time.perf_counter() - start
    out = {"wall_s": wall, "epochs": len(model.history["elbo_train"])}
    out.update(model.training_summary_["runs"][0])
    out["heldout_elbo"] = heldout_elbo(model, train_data, val_rows)
    dens, zero, slab = [], [], []
    for mod in model.modalities:
        w = model.get_loadings(mod).to_numpy()
        p = model.get_slab_probabilities(mod).to_numpy()
        dens.append(float((np.abs(w) > 0.01).mean()))
        zero.append(float((w == 0).mean()))
        slab.append(float((p > 0.5).mean()))
    out.update(density=float(np.mean(dens)), zeros=float(np.mean(zero)), slab=float(np.mean(slab)))
    out["density_per_modality"] = dict(zip(model.modalities, dens, strict=True))
    z = model.get_latent_representation(train_data)
    metrics = sb.evaluate(z, labels[split["train"]], {"train": np.arange(len(z))}, scopes=("train",))["train"]
    out["train_knn"] = metrics["knn_accuracy"]["mean"]
    out["train_nmi"] = metrics["kmeans_nmi"]["mean"]
    return out


def run_planted(model_kw: dict, train_kw: dict, seed: int) -> dict:
    import planted_sparse as ps
    import subtyping as sb

    sb.quiet()
    model_kw = dict(model_kw)
    no_bias = model_kw.pop("_no_bias", False)
    return ps.fit_and_score(seed, model_kw, train_kw, prepare=_drop_bias if no_bias else None)


def _job(args) -> dict:
    stage, name, dataset, seed = args
    model_kw, train_kw = _configs(stage)[name]
    t0 = time.time()
    try:
        if dataset == "planted":
            res = run_planted(model_kw, train_kw, seed)
        else:
            res = run_real(dataset, model_kw, train_kw, seed)
    except Exception as err:  # noqa: BLE001 (a failed configuration is a result too)
        res = {"error": repr(err)}
    rec = {"stage": stage, "config": name, "dataset": dataset, "seed": seed, "seconds": time.time() - t0, **res}
    with open(LOG, "a") as fh:
        fh.write(json.dumps(rec, default=float) + "\n")
    print(json.dumps({k: v for k, v in rec.items() if not isinstance(v, dict)}, default=float), flush=True)
    return rec


NOTES = """\
Protocol and choice rule: see the docstring of `benchmarks/search_sparse.py` (fixed before running). Every model is
trained on the paper's train split only; `heldout_elbo` is the Monte Carlo ELBO per sample (20 posterior draws,
nats, lower is better) of the validation part of the train split; `density` = share of |W| > 0.01, `zeros` = share
of exact zeros, `slab` = share of p* > 0.5, each averaged over modalities; `train_knn` / `train_nmi` (context
only, not used to choose) on the train-split samples.

* **Stage 1** (seed 0): the first implementation (spike rate warmed up from λ1 to λ0, E-step during the warm-up,
  proximal ε = 1e-3). Lessons: the first-layer bias is needed (without it: held-out ELBO 672 vs 621 on breast_tcga,
  planted AUROC 0.71 vs 0.99); lr = 1e-2 and a larger start scale of W fit better; λ0 = 30 is far too sparse for
  the fit (1-5 % of links left, ELBO 650-664 on breast_tcga).
* **Stage 2** was stopped after 2 of 8 configurations: a review found that the proximal threshold used ε = 1e-3
  where Adam uses scvi's ε = 0.01, and that the E-step ran during the warm-up, where a fresh, small W drives θ to
  its floor within a few steps (hence `slab` ≈ 0 in stages 1-2: p* ≈ 0 everywhere, a plain lasso at λ0).
* **Stage 3** (seed 0) and **stage 4** (seeds 1, 2): the fixed code (Adam's ε, E-step from the end of the warm-up,
  penalty warmed up from 0). `restarts=3` was stopped after seed 1 (time): it kept the same run on rosmap and the
  planted set and improved breast_tcga's held-out ELBO from 614.1 to 606.8, at three times the training time.

**Choice** (rule: mean density over modalities and data sets ≤ 0.25, then the best held-out ELBO, planted grouped
AUROC ≥ 0.95, ties to the cheaper): λ0 = 15, λ1 = 1, W ~ N(0, 0.15²), lr = 1e-2, one restart. Over seeds:
breast_tcga / rosmap held-out ELBO 606.7 / 698.7 (λ0 = 20: 612.2 / 701.2; λ0 = 10, λ1 = 0.5 with ε = 1e-3:
606.7 / 701.5 but density 0.26), mean density 0.20 (λ0 = 20: 0.13), planted AUROC 0.956 (λ0 = 20: 0.974). λ0 = 15 had
no seed-0 run. Patience 25 instead of 50 gave the same held-out ELBO (603.3 vs 602.7, 706.4 vs 706.8) in 20 % fewer
epochs, so the default patience is 25. The 0.1 code's own defaults on the same protocol are in the last table.
"""


def report() -> str:
    recs = [json.loads(line) for line in open(LOG)]
    df = pd.DataFrame([r for r in recs if "error" not in r])
    lines = ["# Search for the proximal spike-and-slab defaults (issue 11)", "", f"From `{LOG.name}`.", "", NOTES]
    cols_real = ["heldout_elbo", "density", "zeros", "slab", "epochs", "wall_s", "train_knn", "train_nmi"]
    for stage, sdf in df.groupby("stage"):
        lines += [f"## Stage {stage}", ""]
        real = sdf[sdf.dataset != "planted"]
        g = real.groupby(["config", "dataset"], sort=False)[cols_real].agg(["mean", "std", "count"])
        tab = pd.DataFrame(index=g.index)
        for c in cols_real:
            m, s = g[(c, "mean")], g[(c, "std")]
            tab[c] = [f"{a:.3f}" if pd.isna(b) else f"{a:.3f} ± {b:.3f}" for a, b in zip(m, s, strict=True)]
        tab["n"] = g[(cols_real[0], "count")]
        lines += [tab.reset_index().to_markdown(index=False), ""]
        pl = sdf[sdf.dataset == "planted"]
        if len(pl):
            cols = ["grouped_auroc", "noise_contribution_ratio", "density", "zeros", "epochs"]
            g = pl.groupby("config", sort=False)[cols].mean().round(3)
            g["n"] = pl.groupby("config", sort=False).size()
            lines += ["Planted (K = 32), mean over seeds:", "", g.reset_index().to_markdown(index=False), ""]
    ref = RESULTS / "search_sparse_v01_reference.json"
    if ref.exists():
        rdf = pd.DataFrame(json.loads(ref.read_text()))
        g = rdf.groupby("dataset")[["heldout_elbo", "density", "zeros", "epochs", "wall_s", "train_knn", "train_nmi"]]
        lines += [
            "## Reference: the 0.1 code with its defaults (λ0 = 30, λ1 = 3, penalty through Adam), same protocol",
            "",
            f"Mean over seeds {sorted(int(s) for s in rdf.seed.unique())}: "
            "`python benchmarks/v01_reference.py --src OLD/src` with",
            "OLD a checkout of 420ecff (the 0.1 defaults; early stopping after 50 epochs without improvement).",
            "",
            g.mean().round(3).reset_index().to_markdown(index=False),
            "",
        ]
    text = "\n".join(lines)
    (RESULTS / "search_sparse.md").write_text(text)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", type=int, default=1)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--datasets", nargs="+", default=["breast_tcga", "rosmap", "planted"])
    parser.add_argument("--configs", nargs="+", default=None, help="names of the stage's configurations to run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args()
    if args.report:
        print(report())
        return
    names = args.configs or list(_configs(args.stage))
    jobs = [(args.stage, n, d, s) for s in args.seeds for n in names for d in args.datasets]
    with ProcessPoolExecutor(args.workers) as pool:
        list(pool.map(_job, jobs))
    print(report())


if __name__ == "__main__":
    main()
