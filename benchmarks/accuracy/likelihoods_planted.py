"""Count and binary likelihoods on planted data: ``"nb"`` and ``"bernoulli"`` against the Gaussian likelihood.

    OMP_NUM_THREADS=1 python benchmarks/accuracy/likelihoods_planted.py          # every part, seeds 0-2
    OMP_NUM_THREADS=1 python benchmarks/accuracy/likelihoods_planted.py --quick  # 1 seed, tiny data, 15 epochs

Writes ``<out>/likelihoods.{json,md}`` (``--out``, default ``benchmarks/results``). The generators are
``make_counts`` and ``make_binary`` of :mod:`poems_mu.datasets._synthetic`.

Every part compares its arms on the same data and seeds (data seed = training seed = ``scvi.settings.seed``), POEMS
at the package defaults except ``n_latent=10`` (for 5 planted factors), default training (500-epoch cap, early
stopping on the default 20 % validation split of the training samples).

**Planted factors** (both parts): n = 300 samples in 3 balanced groups; 5 factors ``z = N(0, I) + 1.5 e_g`` for a
sample of group g in {0, 1, 2} (group g shifts factor g), centred. **Supports**: in every modality the first 80 % of
the features are driven by factor ``j mod 5`` and, with probability 1/2, by one more factor; the last 20 % by none.
Weights ``±U(lo, hi)``. **Gaussian modalities**: ``prot`` (80 features) and ``meth`` (120), ``x = z Wᵀ + ε``,
weights ±U(0.4, 0.8), noise SD 1.

**(a) Counts at bulk depth** (``make_counts``): ``rna``, 300 genes, weights ±U(0.3, 0.8); a gene's baseline
log-abundance ``b_j ~ N(0, 2²)`` clipped to ±5, as a share ``p_j = exp(b_j) / Σ exp(b)``; library sizes
``ℓ_i`` log-uniform on [2.5e6, 1e7] (4-fold); counts ``NB(mean ℓ_i p_j exp(2 tanh(z_i W_jᵀ / 2)), dispersion
0.1)`` (gamma-Poisson; a mild saturating nonlinearity). Mean counts per gene range from about 20 to 6·10⁵. The
library the model uses, ``L_i`` = the sample's total registered counts (the default), varies 6-7-fold: the abundant
genes follow the factors, so the totals do too (and depth-normalised counts of unloaded genes follow them weakly;
both arms see the same normalisation). Arms:

* ``nb``: the raw counts, ``likelihood={"rna": "nb"}``;
* ``gaussian_log1p``: ``rna`` replaced by ``log1p(counts / L_i · L₀)``, L₀ the median ``L_i`` of the training
  samples (the nb model's reference library), Gaussian likelihood.

**(a') Counts at shallow depth** (part ``counts_shallow``, added after the first run showed no gain for ``nb`` at
bulk depth, to ask where the count likelihood matters): the same generator with libraries log-uniform on
[2e4, 8e4], so that the low-abundance genes are mostly zeros (``zero_share``: the share of zero counts).

**Modality dropout** (arms ``..., modality_dropout=0.25`` of every part, added after the first run): a
diagnosis of the first run (seed 0) found the ``nb`` arm's rna decoder as good as the Gaussian one when rna is
among the inputs (per-gene Spearman on held-out samples from all modalities 0.844 vs 0.845), while its latent from
prot + meth alone agreed much less with the joint one (R² 0.12 vs 0.79): the model is never trained to place a
sample from a subset of its modalities, which is what the held-out score asks. These arms train for that
(``POEMS(modality_dropout=0.25)``, MVAE's sub-sampled objective; 0.25 taken from that diagnosis, not searched).

**(c) Binary** (``make_binary``): ``mut``, 100 features, weights ±U(1.0, 2.0) on the logit scale, base rates
U(0.05, 0.30): ``P(x = 1) = sigmoid(logit(base_j) + z_i W_jᵀ)``. Arms: ``bernoulli`` (``likelihood={"mut":
"bernoulli"}``) and ``gaussian`` on the same 0/1 matrix.

**Protocol** (fixed before the first run). 20 % of the samples (stratified by group, ``random_state`` = seed) are
held out *before* training; ``setup_mudata`` and training see only the other 80 %. Scores:

* ``support_auroc``: the grouped AUROC (``poems_mu.datasets._synthetic.grouped_auroc``) of ``|W|`` of
  the count (binary) modality against its planted support, learned factors matched to a true one when
  |corr| > 0.3 on the training samples;
* (a) ``heldout_spearman``: for the held-out samples, ``model.impute("rna", mdata=held_out, from_modalities=
  ["prot", "meth"])`` (NB: expected counts at L₀; Gaussian arm: the log1p scale, a monotone transform, so the
  ranks are those of its expm1) against the observed depth-normalised counts ``counts / L_i · L₀``: Spearman per
  gene across the held-out samples, the median over genes;
* (c) ``heldout_auroc_pooled`` (one ROC AUC over all held-out entries) and ``heldout_auroc_median`` (per feature,
  features with both classes among the held-out samples; median) of ``model.impute("mut", ...)`` from the
  Gaussian modalities;
* ``knn_groups``: the latent of all 300 samples (the held-out ones embedded by the trained model), 5-fold
  stratified CV (shuffled, ``random_state=0``) of a k = 10 nearest-neighbour classifier of the groups, mean
  accuracy over the folds; ``knn_groups_true_z`` the same on the planted factors (what the data allow).

A gene (feature) whose prediction is constant (no factor reaches it) scores Spearman 0. Also recorded: epochs,
the restored (best held-out criterion) epoch, wall time (set-up + training) and the likelihoods the model reports
(``model.likelihoods``). Added after the first run, to explain its differences (they change no score above): how
``W`` of the count / binary modality errs (``w_diagnostics``: the matched |corr| of the factors, the density of W,
the share of planted links set to 0, their mean |W|, the share of non-links left non-zero).
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
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from poems_mu.datasets._synthetic import DEPTHS, GAUSSIAN_MODS, grouped_auroc, match_factors, matched_columns, to_mudata

SEEDS = (0, 1, 2)
N_LATENT = 10
KNN_K = 10
HELD_OUT = 0.2
#: the count parts' arms; the two with modality dropout were added after a diagnosis of the first run (see the
#: docstring)
DROPOUT_ARMS = ("nb, modality_dropout=0.25", "gaussian_log1p, modality_dropout=0.25")
ARMS = {
    "counts": ("nb", "gaussian_log1p", *DROPOUT_ARMS),
    "counts_shallow": ("nb", "gaussian_log1p", *DROPOUT_ARMS),
    "binary": ("bernoulli", "gaussian", "bernoulli, modality_dropout=0.25", "gaussian, modality_dropout=0.25"),
}
#: the --quick run: fewer samples and features, a few epochs (a pipeline check, not a measurement)
QUICK = {"n": 90, "scale": 0.25, "train": {"max_epochs": 15, "n_epochs_kl_warmup": 5}}


# --------------------------------------------------------------------------------------------------------------
# protocol
# --------------------------------------------------------------------------------------------------------------
def held_out_split(groups: np.ndarray, seed: int, frac: float = HELD_OUT) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the training and held-out samples, stratified by group."""
    idx = np.arange(len(groups))
    train, held = train_test_split(idx, test_size=frac, random_state=seed, stratify=groups)
    return np.sort(train), np.sort(held)


def _train(mdata, seed: int, model_kwargs: dict, quick: bool):
    """POEMS at the package defaults with ``n_latent=N_LATENT`` (and ``model_kwargs``); the model and its wall time."""
    train_kwargs = QUICK["train"] if quick else None
    return common.train_poems(mdata, seed, {"n_latent": N_LATENT, **model_kwargs}, train_kwargs=train_kwargs)


def support_auroc(model, z_train: np.ndarray, support: np.ndarray, mod: str) -> float:
    """Grouped AUROC of ``|W|`` of ``mod`` against its planted support."""
    loadings = {mod: model.get_loadings(mod).to_numpy()}
    auroc, _ = grouped_auroc(z_train, model.get_latent_representation(), loadings, {mod: support}, (mod,))
    return float(auroc)


def w_diagnostics(model, z_train: np.ndarray, support: np.ndarray, mod: str) -> dict:
    """How ``W`` of ``mod`` errs: learned factors matched one to one to the true ones (Hungarian on |corr|,
    ``match_factors``); the mean matched |corr|, the share of |W| > 0.01, of planted links with W = 0 on
    the matched factor, their mean |W|, and the share of non-links with W ≠ 0 there."""
    cols, r = match_factors(z_train, model.get_latent_representation())
    w = model.get_loadings(mod).to_numpy()
    matched = matched_columns(w, cols)  # a planted factor without a learned one: its links count as W = 0
    return {
        "match_r": float(r.mean()),
        "w_density": float((np.abs(w) > 0.01).mean()),
        "links_zero": float((matched[support] == 0).mean()),
        "links_mean_abs_w": float(np.abs(matched[support]).mean()),
        "nonlinks_nonzero": float((matched[~support] != 0).mean()),
    }


def _spearman(pred: np.ndarray, truth: np.ndarray) -> float:
    """Spearman rho; 0 where the prediction is constant (e.g. a gene with no loading: it predicts nothing)."""
    return float(spearmanr(pred, truth)[0]) if np.ptp(pred) > 0 else 0.0


def run_counts(seed: int, quick: bool = False, part: str = "counts") -> list[dict]:
    """Part (a) (``part="counts"``, or ``"counts_shallow"`` at shallow depth) for one seed: both arms on the same
    data and split."""
    n, scale = (QUICK["n"], QUICK["scale"]) if quick else (300, 1.0)
    data, library, obs, z, supports = common.planted("counts", seed, n=n, scale=scale, depth=DEPTHS[part])
    train, held = held_out_split(obs["group"].to_numpy(), seed)
    ref = float(np.median(data["rna"][train].sum(1)))  # L0: median training library (the model's reference)
    lib_obs = data["rna"].sum(1)  # the library the model uses: total registered counts
    normalised = data["rna"] / lib_obs[:, None] * ref
    inputs = list(GAUSSIAN_MODS)
    recs = []
    for arm in ARMS[part]:
        base, _, dropout = arm.partition(", modality_dropout=")
        arm_data = dict(data)
        if base == "gaussian_log1p":
            arm_data["rna"] = np.log1p(normalised)
        full = to_mudata(arm_data, obs)
        fit, held_md = full[full.obs_names[train]].copy(), full[full.obs_names[held]].copy()
        kwargs = {"likelihood": {"rna": "nb"} if base == "nb" else "gaussian", "modality_dropout": float(dropout or 0)}
        model, wall = _train(fit, seed, kwargs, quick)
        pred = model.impute("rna", mdata=held_md, from_modalities=inputs).loc[held_md.obs_names].to_numpy()
        truth = normalised[held]
        rho = [_spearman(pred[:, j], truth[:, j]) for j in range(truth.shape[1]) if truth[:, j].std() > 0]
        latent = model.get_latent_representation(full)
        rec = {
            "part": part,
            "arm": arm,
            "seed": seed,
            "likelihoods": dict(model.likelihoods),
            "support_auroc": support_auroc(model, z[train], supports["rna"], "rna"),
            "heldout_spearman": float(np.median(rho)),
            "knn_groups": common.knn_cv(latent, obs["group"].to_numpy()),
            "knn_groups_true_z": common.knn_cv(z, obs["group"].to_numpy()),
            "n_train": len(train),
            "n_heldout": len(held),
            "library_fold_range": float(library.max() / library.min()),
            "zero_share": float((data["rna"] == 0).mean()),
            **w_diagnostics(model, z[train], supports["rna"], "rna"),
            **common.fit_info(model, wall),
        }
        print(json.dumps(rec), flush=True)
        recs.append(rec)
    return recs


def run_binary(seed: int, quick: bool = False) -> list[dict]:
    """Part (c) for one seed: every arm on the same 0/1 matrix and split."""
    n, scale = (QUICK["n"], QUICK["scale"]) if quick else (300, 1.0)
    data, obs, z, supports = common.planted("binary", seed, n=n, scale=scale)
    train, held = held_out_split(obs["group"].to_numpy(), seed)
    full = to_mudata(data, obs)
    truth = data["mut"][held]
    inputs = list(GAUSSIAN_MODS)
    recs = []
    for arm in ARMS["binary"]:
        base, _, dropout = arm.partition(", modality_dropout=")
        fit, held_md = full[full.obs_names[train]].copy(), full[full.obs_names[held]].copy()
        kwargs = {"likelihood": {"mut": "bernoulli"} if base == "bernoulli" else "gaussian"}
        kwargs["modality_dropout"] = float(dropout or 0)
        model, wall = _train(fit, seed, kwargs, quick)
        pred = model.impute("mut", mdata=held_md, from_modalities=inputs).loc[held_md.obs_names].to_numpy()
        both = [j for j in range(truth.shape[1]) if 0 < truth[:, j].sum() < len(truth)]
        latent = model.get_latent_representation(full)
        rec = {
            "part": "binary",
            "arm": arm,
            "seed": seed,
            "likelihoods": dict(model.likelihoods),
            "support_auroc": support_auroc(model, z[train], supports["mut"], "mut"),
            "heldout_auroc_pooled": float(roc_auc_score(truth.ravel(), pred.ravel())),
            "heldout_auroc_median": float(np.median([roc_auc_score(truth[:, j], pred[:, j]) for j in both])),
            "n_features_scored": len(both),
            "pred_range": [float(pred.min()), float(pred.max())],
            "knn_groups": common.knn_cv(latent, obs["group"].to_numpy()),
            "knn_groups_true_z": common.knn_cv(z, obs["group"].to_numpy()),
            "n_train": len(train),
            "n_heldout": len(held),
            "base_rate": float(data["mut"].mean()),
            **w_diagnostics(model, z[train], supports["mut"], "mut"),
            **common.fit_info(model, wall),
        }
        print(json.dumps(rec), flush=True)
        recs.append(rec)
    return recs


# --------------------------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------------------------
TABLES = {
    "counts": (
        "(a) Counts at bulk depth: `rna` (300 genes, NB, libraries 2.5e6-1e7) + `prot`, `meth` (Gaussian)",
        ["support_auroc", "heldout_spearman", "knn_groups", "knn_groups_true_z", "epochs", "wall_s"],
    ),
    "counts_shallow": (
        "(a') Counts at shallow depth: the same, libraries 2e4-8e4 (added after the first run; see the docstring)",
        ["support_auroc", "heldout_spearman", "knn_groups", "knn_groups_true_z", "zero_share", "epochs", "wall_s"],
    ),
    "binary": (
        "(c) Binary: `mut` (100 features, base rates 5-30 %) + `prot`, `meth` (Gaussian)",
        [
            "support_auroc",
            "heldout_auroc_pooled",
            "heldout_auroc_median",
            "knn_groups",
            "knn_groups_true_z",
            "epochs",
            "wall_s",
        ],
    ),
}
#: the second table of each part: how W errs (``w_diagnostics``) and the restored epoch
W_COLS = ["match_r", "w_density", "links_zero", "links_mean_abs_w", "nonlinks_nonzero", "best_epoch"]


def markdown(records: list[dict], total_wall: float) -> str:
    df = pd.DataFrame(records)
    seeds = sorted(df["seed"].unique())
    lines = [
        "# Count and binary likelihoods against the Gaussian one, on planted data",
        "",
        f"{total_wall / 60:.1f} min wall in all. Protocol and generators: the script's docstring. POEMS at the package "
        f"defaults with `n_latent={N_LATENT}` (5 planted factors), default training. Mean ± SD over seeds "
        f"{', '.join(str(s) for s in seeds)} (data seed = training seed); each seed's arms share the data and the "
        "80/20 split. `support_auroc`: grouped AUROC of |W| against the planted support of the count / binary "
        "modality; held-out scores: that modality predicted from `prot` + `meth` for the 20 % of samples never seen "
        "in training; `knn_groups`: 5-fold CV accuracy of a 10-NN classifier of the 3 planted groups on the latent "
        "(chance 0.33; `knn_groups_true_z`: the same on the planted factors, a ceiling); `wall_s`: set-up + training.",
    ]
    for part, (title, cols) in TABLES.items():
        sub = df[df["part"] == part]
        if sub.empty:
            continue
        lines += ["", f"## {title}", "", *common.table(sub, ["arm"], cols)]
        mod = "mut" if part == "binary" else "rna"
        lines += [
            "",
            f"W of `{mod}` (`match_r`: mean |corr| of the learned factors matched one to one to the true ones; "
            f"`w_density`: share of |W| > 0.01; `links_zero`: share of planted links with W = 0 on the matched factor, "
            "`links_mean_abs_w` their mean |W|; "
            f"`nonlinks_nonzero`: share of the other entries with W ≠ 0 there; `best_epoch`: the restored state)"
            + (f"; realised share of 1s {sub['base_rate'].mean():.2f}:" if part == "binary" else ":"),
            "",
            *common.table(sub, ["arm"], W_COLS),
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=SEEDS)
    parser.add_argument("--parts", nargs="+", choices=list(ARMS), default=list(ARMS))
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    common.quiet()
    start = time.perf_counter()
    runners = {
        "counts": run_counts,
        "counts_shallow": lambda s, q: run_counts(s, q, "counts_shallow"),
        "binary": run_binary,
    }
    records = [rec for part in args.parts for seed in args.seeds for rec in runners[part](seed, args.quick)]
    total = time.perf_counter() - start
    settings = {"n_latent": N_LATENT, "knn_k": KNN_K, "held_out": HELD_OUT, "quick": args.quick}
    payload = {"wall_s": total, "settings": settings, "records": records}
    text = markdown(records, total)
    common.write_results(args.out / "likelihoods.json", payload, provenance=prov, markdown=text)
    print(text)


if __name__ == "__main__":
    main()
