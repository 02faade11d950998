"""Planted-structure recovery: AUROC of |W| against a known sparse feature→factor support.

Uses ``make_planted`` of :mod:`poems_mu.datasets._synthetic` (two modalities, 120 and 80 features, 4 true factors,
each feature driven by 1-2 of them, a quarter pure noise, n = 300). For every configuration it trains POEMS, matches
learned factors to the true ones (Hungarian on |corr|) and reports:

* ``match_r``: mean matched |corr| between learned and true factors;
* ``auroc``: AUROC of |W| of the matched factors against the true support (the test's criterion);
* ``auroc_all``: the same over all K learned factors, unmatched ones counting as negatives (penalises loadings
  left on spare factors);
* ``mass``: share of Σ|W| on the matched factors;
* ``auroc_pstar``: AUROC of the slab probabilities p* (matched factors) against the true support;
* ``density``: share of |W| > 0.01 (the paper's Fig. 7 threshold); ``slab``: share of p* > 0.5.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/accuracy/planted_recovery.py                  # the default grid
    OMP_NUM_THREADS=1 python benchmarks/accuracy/planted_recovery.py --n-latent 32 --lambda0 10 --epochs 50 150 \
        --seeds 0 1 --w-init 0.5 0.1 --figure /tmp/planted_recovery.png
    OMP_NUM_THREADS=1 python benchmarks/accuracy/planted_recovery.py --quick          # first configuration, 10 epochs

Every configuration's row goes to ``<out>/planted_recovery.json`` as it finishes (``--out``, default
``benchmarks/results``), the mean over seeds to ``planted_recovery.md`` at the end. ``--w-init s`` re-initialises every
W as ``s + 0.2·s·N(0, 1)`` before training (a positive start; the decoder's own is ``N(0, w_init_scale²)``); it exists
to measure the effect of the initial scale and sign of W.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from poems_mu.datasets._synthetic import match_factors, matched_columns

METRICS = ["match_r", "auroc", "auroc_all", "auroc_pstar", "mass", "density", "slab"]
KEYS = ["noise", "n_latent", "lambda0", "lambda1", "w_init", "lr", "epochs"]


def evaluate(model, z, supports) -> dict:
    """Recovery metrics of a trained model (see the module docstring)."""
    zl = model.get_latent_representation()
    cols, r = match_factors(z, zl)
    y, s, s_p, y_all, s_all, mass, dens, slab = [], [], [], [], [], [], [], []
    for mod, support in supports.items():
        w = np.abs(model.get_loadings(mod).to_numpy())
        y.append(support.ravel())
        s.append(matched_columns(w, cols).ravel())
        s_p.append(matched_columns(model.get_slab_probabilities(mod).to_numpy(), cols).ravel())
        lab = np.zeros_like(w, dtype=bool)
        lab[:, cols[cols >= 0]] = support[:, cols >= 0]
        y_all.append(lab.ravel())
        s_all.append(w.ravel())
        mass.append(matched_columns(w, cols).sum() / w.sum())
        dens.append((w > 0.01).mean())
        slab.append((model.get_slab_probabilities(mod).to_numpy() > 0.5).mean())
    return {
        "match_r": float(r.mean()),
        "auroc": roc_auc_score(np.concatenate(y), np.concatenate(s)),
        "auroc_all": roc_auc_score(np.concatenate(y_all), np.concatenate(s_all)),
        "auroc_pstar": roc_auc_score(np.concatenate(y), np.concatenate(s_p)),
        "mass": float(np.mean(mass)),
        "density": float(np.mean(dens)),
        "slab": float(np.mean(slab)),
    }


def run_one(cfg: dict) -> tuple[dict, object, tuple]:
    """Train one configuration and evaluate it."""
    mdata, z, supports, _ = common.planted("planted", cfg["data_seed"], noise=cfg["noise"])

    def init_w(model) -> None:
        if cfg["w_init"] is not None:
            with torch.no_grad():
                for dec in model.module.decoders:
                    dec.W.copy_(cfg["w_init"] * (1 + 0.2 * torch.randn_like(dec.W)))

    model_kwargs = {k: cfg[k] for k in ("n_latent", "lambda0", "lambda1", "prior_expert")}
    train_kwargs = {"max_epochs": cfg["epochs"], "lr": cfg["lr"], "early_stopping": False}
    model, wall = common.train_poems(mdata, cfg["seed"], model_kwargs, train_kwargs=train_kwargs, prepare=init_w)
    res = {**cfg, **evaluate(model, z, supports), "seconds": round(wall, 1)}
    return res, model, (mdata, z, supports)


def draw_figure(path: str, model, data) -> None:
    """ROC curve and the matched |W| next to the true support (modality a)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import roc_curve

    mdata, z, supports = data
    cols, _ = match_factors(z, model.get_latent_representation())
    fig, axs = plt.subplots(1, 3, figsize=(13, 4), gridspec_kw={"width_ratios": [1.1, 1, 1]}, constrained_layout=True)
    y = np.concatenate([s.ravel() for s in supports.values()])
    score = np.concatenate([np.abs(matched_columns(model.get_loadings(m).to_numpy(), cols)).ravel() for m in supports])
    fpr, tpr, _ = roc_curve(y, score)
    auc = roc_auc_score(y, score)
    axs[0].plot(fpr, tpr, color="#c0392b", lw=2, label=f"|W| of matched factors (AUROC {auc:.3f})")
    axs[0].plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="chance")
    axs[0].set_xlabel("false positive rate")
    axs[0].set_ylabel("true positive rate")
    axs[0].set_title("Planted feature–factor links recovered")
    axs[0].legend(loc="lower right", fontsize=8)
    w = np.abs(matched_columns(model.get_loadings("a").to_numpy(), cols))
    order = np.lexsort((-w.max(1), supports["a"].argmax(1) + 10 * (supports["a"].sum(1) == 0)))
    axs[1].imshow(supports["a"][order].T, aspect="auto", interpolation="nearest", cmap="Greys")
    axs[1].set_title("true support (modality a)")
    axs[2].imshow(w[order].T, aspect="auto", interpolation="nearest", cmap="Reds")
    axs[2].set_title("learned |W| (matched factors)")
    for a in axs[1:]:
        a.set_xlabel("features (noise-only ones on the right)")
        a.set_yticks(range(w.shape[1]))
        a.set_yticklabels([f"true factor {k + 1}" for k in range(w.shape[1])])
    fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)


def main(argv=None) -> None:
    p = common.parser(__doc__)
    p.add_argument("--n-latent", type=int, nargs="+", default=[4, 8, 32])
    p.add_argument("--lambda0", type=float, nargs="+", default=[10, 30, 100])
    p.add_argument("--lambda1", type=float, nargs="+", default=[1.0])
    p.add_argument("--epochs", type=int, nargs="+", default=[50, 150, 400])
    p.add_argument("--lr", type=float, nargs="+", default=[3e-3])
    p.add_argument("--noise", type=float, nargs="+", default=[0.5])
    p.add_argument("--w-init", type=float, nargs="+", default=[None])
    p.add_argument("--prior-expert", action="store_true", help="include the N(0, I) prior expert")
    p.add_argument("--figure", default=None, help="draw the recovery figure of the first configuration here")
    args = p.parse_args(argv)
    prov = common.provenance(__file__, argv)
    common.quiet()
    rows = []
    grid = itertools.product(
        args.seeds, args.noise, args.n_latent, args.lambda0, args.lambda1, args.w_init, args.lr, args.epochs
    )
    for i, (seed, noise, k, l0, l1, w_init, lr, ep) in enumerate(itertools.islice(grid, 1 if args.quick else None)):
        cfg = {"seed": seed, "data_seed": seed, "noise": noise, "n_latent": k, "lambda0": l0, "lambda1": l1}
        cfg |= {"w_init": w_init, "lr": lr, "epochs": 10 if args.quick else ep, "prior_expert": args.prior_expert}
        res, model, data = run_one(cfg)
        rows.append(res)
        print(json.dumps(res, default=float), flush=True)
        common.write_results(args.out / "planted_recovery.json", {"records": rows}, provenance=prov)
        if i == 0 and args.figure:
            draw_figure(args.figure, model, data)
    df = pd.DataFrame(rows).astype({"w_init": str})
    text = "\n".join(["# Planted recovery over a grid", "", "Mean over seeds.", "", *common.table(df, KEYS, METRICS)])
    common.write_results(args.out / "planted_recovery.json", {"records": rows}, provenance=prov, markdown=text)
    print(text)


if __name__ == "__main__":
    main()
