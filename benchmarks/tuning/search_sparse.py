"""Staged search for the defaults of the proximal spike-and-slab POEMS, on label-free criteria.

Protocol (fixed before running):

* real data: rosmap and breast_tcga, each model trained on the paper's **train split** only (``_baselines.paper_split``:
  fit = 80 % of train, validation = 20 % of train); the test split is never touched here. Recorded per run:
  the held-out ELBO per sample on the validation samples (Monte Carlo, 20 posterior samples, reconstruction + KL,
  in nats; lower is better), the share of |W| > 0.01, of exact zeros and of slab links (p* > 0.5), epochs, wall
  time, and, for context only, train-split KNN accuracy and k-means NMI.
* planted data (``make_planted3``: 3 modalities, 4 true factors, one near-noise modality), K = 32: grouped support
  AUROC and the near-noise modality's effective contribution relative to the next lowest (``_common.score_planted3``,
  as in ``accuracy/planted_sparse.py``).
* choice rule, label-free: among configurations whose mean density over modalities and data sets is ≤ 0.25, the
  best mean held-out ELBO (averaged over the two data sets, each relative to the base configuration), provided its
  planted grouped AUROC is ≥ 0.95; ties (within the seed spread) go to the cheaper (fewer epochs) one.

    OMP_NUM_THREADS=1 python benchmarks/tuning/search_sparse.py --stage 3 --workers 2              # seed 0
    OMP_NUM_THREADS=1 python benchmarks/tuning/search_sparse.py --stage 4 --seeds 1 2 --workers 2
    python benchmarks/tuning/search_sparse.py --report     # results/search_sparse.md from results/search_sparse.jsonl
    OMP_NUM_THREADS=1 python benchmarks/tuning/search_sparse.py --stage 5 --quick --workers 1      # a pipeline check

Every run is appended to ``<out>/search_sparse.jsonl`` with its provenance (``--out``, default
``benchmarks/results``); ``--quick`` trains 20 epochs per run. The 0.1 code on the same protocol:
``v01_reference.py``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np
import pandas as pd
from _baselines import evaluate, load_dataset, paper_split, train_on_split

LOG = "search_sparse.jsonl"
QUICK_TRAIN = {"max_epochs": 20, "n_epochs_kl_warmup": 5}
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


def run_real(name: str, model_kw: dict, train_kw: dict, seed: int) -> dict:
    common.quiet()
    mdata, label_key = load_dataset(name)
    labels = mdata.obs[label_key].to_numpy()
    split = paper_split(labels)
    model_kw = dict(model_kw)
    prepare = _drop_bias if model_kw.pop("_no_bias", False) else None
    model, train_data, val_rows, wall = train_on_split(mdata, split, seed, model_kw, train_kw, prepare)
    out = {"wall_s": wall, "epochs": len(model.history["elbo_train"])}
    out.update(model.training_summary_["runs"][0])
    out["heldout_elbo"] = common.heldout_elbo(model, train_data, val_rows)
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
    metrics = evaluate(z, labels[split["train"]], {"train": np.arange(len(z))}, scopes=("train",))["train"]
    out["train_knn"] = metrics["knn_accuracy"]["mean"]
    out["train_nmi"] = metrics["kmeans_nmi"]["mean"]
    return out


def run_planted(model_kw: dict, train_kw: dict, seed: int) -> dict:
    common.quiet()
    model_kw = dict(model_kw)
    prepare = _drop_bias if model_kw.pop("_no_bias", False) else None
    return common.score_planted3(seed, model_kw, train_kw, prepare=prepare)


def _job(job) -> dict:
    stage, name, dataset, seed, quick, out, prov = job
    model_kw, train_kw = _configs(stage)[name]
    train_kw = {**train_kw, **QUICK_TRAIN} if quick else train_kw
    t0 = time.time()
    try:
        if dataset == "planted":
            res = run_planted(model_kw, train_kw, seed)
        else:
            res = run_real(dataset, model_kw, train_kw, seed)
    except Exception as err:  # noqa: BLE001 (a failed configuration is a result too)
        res = {"error": repr(err)}
    rec = {"stage": stage, "config": name, "dataset": dataset, "seed": seed, "seconds": time.time() - t0, **res}
    common.write_results(out / LOG, rec, provenance=prov)
    print(json.dumps({k: v for k, v in rec.items() if not isinstance(v, dict)}, default=float), flush=True)
    return rec


NOTES = """\
Protocol and choice rule: see the docstring of `benchmarks/tuning/search_sparse.py` (fixed before running).
Every model is trained on the paper's train split only; `heldout_elbo` is the Monte Carlo ELBO per sample (20 posterior
draws, nats, lower is better) of the validation part of the train split; `density` = share of |W| > 0.01, `zeros` =
share of exact zeros, `slab` = share of p* > 0.5, each averaged over modalities; `train_knn` / `train_nmi` (context
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


def report(out: Path) -> str:
    recs = [json.loads(line) for line in (out / LOG).read_text().splitlines()]
    df = pd.DataFrame([r for r in recs if "error" not in r])
    lines = ["# Search for the proximal spike-and-slab defaults", "", f"From `{LOG}`.", "", NOTES]
    cols_real = ["heldout_elbo", "density", "zeros", "slab", "epochs", "wall_s", "train_knn", "train_nmi"]
    for stage, sdf in df.groupby("stage"):
        real = sdf[sdf.dataset != "planted"]
        lines += [f"## Stage {stage}", "", *common.table(real, ["config", "dataset"], cols_real, count=True), ""]
        pl = sdf[sdf.dataset == "planted"]
        if len(pl):
            cols = ["grouped_auroc", "noise_contribution_ratio", "density", "zeros", "epochs"]
            g = pl.groupby("config", sort=False)[cols].mean().round(3)
            g["n"] = pl.groupby("config", sort=False).size()
            lines += ["Planted (K = 32), mean over seeds:", "", g.reset_index().to_markdown(index=False), ""]
    ref = out / "search_sparse_v01_reference.json"
    if ref.exists():
        data = json.loads(ref.read_text())
        rdf = pd.DataFrame(data["records"] if isinstance(data, dict) else data)
        g = rdf.groupby("dataset")[["heldout_elbo", "density", "zeros", "epochs", "wall_s", "train_knn", "train_nmi"]]
        lines += [
            "## Reference: the 0.1 code with its defaults (λ0 = 30, λ1 = 3, penalty through Adam), same protocol",
            "",
            f"Mean over seeds {sorted(int(s) for s in rdf.seed.unique())}: "
            "`python benchmarks/tuning/v01_reference.py --src OLD/src` with",
            "OLD a checkout of 420ecff (the 0.1 defaults; early stopping after 50 epochs without improvement).",
            "",
            g.mean().round(3).reset_index().to_markdown(index=False),
            "",
        ]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=[0])
    parser.add_argument("--stage", type=int, default=1)
    parser.add_argument("--datasets", nargs="+", default=["breast_tcga", "rosmap", "planted"])
    parser.add_argument("--configs", nargs="+", default=None, help="names of the stage's configurations to run")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", action="store_true")
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    if not args.report:
        names = args.configs or list(_configs(args.stage))
        jobs = [
            (args.stage, n, d, s, args.quick, args.out, prov) for s in args.seeds for n in names for d in args.datasets
        ]
        common.map_jobs(_job, jobs, args.workers)
    common.write_report(args.out / "search_sparse.md", report(args.out), provenance=prov)


if __name__ == "__main__":
    main()
