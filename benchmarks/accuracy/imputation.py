"""Cross-modal imputation: predict a modality that some samples of a cohort lack.

    OMP_NUM_THREADS=1 python benchmarks/accuracy/imputation.py          # both data sets, 5 folds, seed 0
    OMP_NUM_THREADS=1 python benchmarks/accuracy/imputation.py --quick  # 2 folds, short training (a smoke run)

Writes ``<out>/imputation.{json,md}`` (``--out``, default ``benchmarks/results``).

One protocol for every method, the real use case: in each of 5 folds the fold's samples stay in the data with the
target modality removed. POEMS trains (package defaults, its own 20 % validation split) on that MuData and predicts
the target of the fold's samples from the other modalities (``model.impute``), once more trained with
``modality_dropout=0.5`` (each observed modality hidden from the encoders with probability 0.5 per training step);
MOFA+ and MOFA-FLEX (``_baselines.py``'s settings: MOFA+ with 15 factors and its own dropping of inactive ones,
MOFA-FLEX with its MOFA preset) are fitted on the same data with the fold's target as missing and predict it as
``E[Z] E[W_target]ᵀ`` over the factors they keep; ridge regression (``RidgeCV``) and KNN regression (k chosen by
5-fold CV) are fitted on the samples that kept the target, from the z-scored concatenated inputs; the feature means
predict the mean profile.

* breast_tcga: protein from mRNA + miRNA, folds over the 150 samples that have protein;
* rosmap: miRNA from mRNA + methylation, folds over all 351 samples.

``--methods`` runs some methods only; the other methods' records are kept from the existing ``imputation.json``
(recorded under ``kept``, with that run's provenance), so a baseline whose settings changed is re-run without
re-training POEMS.

Scores, on values standardised with the statistics of the samples that kept the target (so the mean profile scores
0; features constant there are left out): the mean over features of the Pearson r across the fold's samples, the
mean over samples of the r across features, and for POEMS the share of held-out values inside mean ± 1.645 SD (its
90 % predictive interval). Each is averaged over the folds (± SD over folds). Nothing is fitted on held-out values.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import mudata as md
import numpy as np
import pandas as pd
import scvi
from _baselines import MOFA_MAX_ITER, MOFA_SETTINGS, fit_mofa, fit_mofaflex, zscored_views
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neighbors import KNeighborsRegressor

import poems_mu as pm

TASKS = {"breast_tcga": ("protein", ["mrna", "mirna"]), "rosmap": ("mirna", ["mrna", "methylation"])}
#: POEMS with the package defaults, and trained with modality dropout (one value, fixed before any run)
POEMS_VARIANTS = {"POEMS": {}, "POEMS, modality_dropout=0.5": {"modality_dropout": 0.5}}
METHODS = (*POEMS_VARIANTS, "MOFA+", "MOFA-FLEX", "ridge", "KNN", "feature means")
Z90 = 1.645


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def fold_mudata(mdata: md.MuData, target: str, held_out: pd.Index) -> md.MuData:
    """The cohort with the held-out samples' target removed (they keep their other modalities)."""
    mods = {m: mdata[m].copy() for m in mdata.mod}
    mods[target] = mods[target][~mods[target].obs_names.isin(held_out)].copy()
    return md.MuData(mods)


def _r_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r of each row of ``a`` with the same row of ``b`` (0 where either is constant)."""
    a = a - a.mean(1, keepdims=True)
    b = b - b.mean(1, keepdims=True)
    den = np.sqrt((a**2).sum(1) * (b**2).sum(1))
    return np.divide((a * b).sum(1), den, out=np.zeros(len(a)), where=den > 1e-12)


def scores(truth: np.ndarray, pred: np.ndarray, sd: np.ndarray | None) -> dict:
    """Per-feature and per-sample r (standardised values), and the coverage of pred ± 1.645 sd."""
    out = {"feature_r": float(_r_rows(truth.T, pred.T).mean()), "sample_r": float(_r_rows(truth, pred).mean())}
    if sd is not None:
        out["coverage90"] = float((np.abs(truth - pred) <= Z90 * sd).mean())
        out["interval_width"] = float((2 * Z90 * sd).mean())
    return out


def run_fold(mdata, target, inputs, held_out, seed, quick, methods=METHODS) -> list[dict]:
    data = fold_mudata(mdata, target, held_out)
    held = data.obs_names.get_indexer(held_out)  # positions, in the order of held_out
    have_target = np.asarray(data.obsmap[target]).ravel() > 0
    # statistics of the samples that kept the target: the scale every method is scored on
    x_t = _dense(data[target].X)
    mu, sd = x_t.mean(0), x_t.std(0)
    keep = sd > 1e-8 * (1 + np.abs(mu))
    truth_raw = _dense(mdata[target][held_out].X)
    truth = ((truth_raw - mu) / np.where(keep, sd, 1))[:, keep]
    rows = []

    def record(method, pred_std, sd_std=None, wall=0.0):
        rows.append({"method": method, "wall_s": wall, **scores(truth, pred_std, sd_std)})

    scale = np.where(keep, sd, 1)
    for method, model_kwargs in POEMS_VARIANTS.items():
        if method not in methods:
            continue
        start = time.perf_counter()
        scvi.settings.seed = seed
        pm.POEMS.setup_mudata(data)
        model = pm.POEMS(data, **model_kwargs)
        model.train(enable_progress_bar=False, **({"max_epochs": 20} if quick else {}))
        mean, psd = model.impute(target, samples=held_out, return_std=True)
        wall = time.perf_counter() - start
        pred_std = ((mean.loc[held_out].to_numpy() - mu) / scale)[:, keep]
        record(method, pred_std, (psd.loc[held_out].to_numpy() / scale)[:, keep], wall)

    # MOFA+ (_baselines.MOFA_SETTINGS: 15 factors, inactive ones dropped): the fold's target as missing, predicted
    # from the fitted factors and the target's weights (of the factors it kept)
    views = zscored_views(data, np.ones(data.n_obs, dtype=bool), [*inputs, target])
    if "MOFA+" in methods:
        start = time.perf_counter()
        mofa = fit_mofa(views, np.ones(data.n_obs, dtype=bool), seed=seed, max_iter=50 if quick else MOFA_MAX_ITER)
        z = np.asarray(mofa.nodes["Z"].getExpectation())
        w_t = np.asarray(mofa.nodes["W"].getExpectation()[-1])
        pred = (z @ w_t.T)[held]
        record("MOFA+", pred, wall=time.perf_counter() - start)
        rows[-1]["n_factors"] = int(z.shape[1])

    # MOFA-FLEX (its MOFA preset): the same, from its fitted factors and the target's weights
    if "MOFA-FLEX" in methods:
        start = time.perf_counter()
        flex = fit_mofaflex(views, np.ones(data.n_obs, dtype=bool), seed=seed, max_epochs=50 if quick else 10_000)
        factors = next(iter(flex.get_factors(return_type="pandas").values()))
        z = factors.loc[[f"s{i}" for i in held]].to_numpy(dtype=np.float64)
        w_t = np.asarray(flex.get_weights(return_type="numpy")[target], dtype=np.float64)  # (K, D)
        record("MOFA-FLEX", z @ w_t, wall=time.perf_counter() - start)

    # regressions from the z-scored concatenated inputs, fitted on the samples that kept the target
    inp = zscored_views(data, have_target, inputs)
    x_in = np.concatenate([np.nan_to_num(v, nan=0.0) for v in inp.values()], axis=1)
    t_rows = np.asarray(data.obsmap[target]).ravel()[have_target] - 1
    y = ((x_t[t_rows] - mu) / np.where(keep, sd, 1))[:, keep]
    if "ridge" in methods:
        start = time.perf_counter()
        ridge = RidgeCV(alphas=np.logspace(-1, 5, 13)).fit(x_in[have_target], y)
        record("ridge", ridge.predict(x_in[held]), wall=time.perf_counter() - start)
    if "KNN" in methods:
        start = time.perf_counter()
        knn = GridSearchCV(KNeighborsRegressor(), {"n_neighbors": [3, 5, 10, 20, 40]}, cv=5)
        knn.fit(x_in[have_target], y)
        record("KNN", knn.predict(x_in[held]), wall=time.perf_counter() - start)
    if "feature means" in methods:
        record("feature means", np.zeros_like(truth))
    return rows


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=[0])
    parser.add_argument("--datasets", nargs="+", default=list(TASKS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        choices=METHODS,
        help="run these methods only; the other methods' records are kept from the existing imputation.json",
    )
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    common.quiet()
    records = []
    for name in args.datasets:
        mdata = getattr(pm.datasets, name)()
        target, inputs = TASKS[name]
        mdata = md.MuData({m: mdata[m].copy() for m in [*inputs, target]})
        candidates = mdata[target].obs_names
        for seed in args.seeds:
            folds = KFold(2 if args.quick else args.folds, shuffle=True, random_state=seed).split(candidates)
            for f, (_, test) in enumerate(folds):
                for row in run_fold(mdata, target, inputs, candidates[test], seed, args.quick, args.methods):
                    row.update({"dataset": name, "target": target, "inputs": "+".join(inputs), "seed": seed, "fold": f})
                    print(json.dumps(row), flush=True)
                    records.append(row)
    payload = {"settings": {"folds": args.folds, "quick": args.quick, "mofa": MOFA_SETTINGS}, "records": records}
    path = args.out / "imputation.json"
    if set(args.methods) != set(METHODS) and path.exists():
        payload = keep_other_methods(json.loads(path.read_text()), payload, args.methods)
    text = markdown(payload["records"], payload.get("kept"))
    common.write_results(path, payload, provenance=prov, markdown=text)
    print(text)


def keep_other_methods(old: dict, new: dict, methods) -> dict:
    """``new`` (a run of ``methods``) with the records of the other methods kept from ``old`` (an earlier
    ``imputation.json``), in :data:`METHODS` order per data set and fold; ``kept`` lists, per earlier run, the methods
    whose records came from it, its provenance and settings."""
    kept_records = [r for r in old["records"] if r["method"] not in methods]
    datasets = list(dict.fromkeys(r["dataset"] for r in old["records"] + new["records"]))
    records = sorted(
        kept_records + new["records"],
        key=lambda r: (datasets.index(r["dataset"]), r["seed"], r["fold"], METHODS.index(r["method"])),
    )
    own = [m for m in METHODS if any(r["method"] == m for r in old["records"])]
    parts = common.kept_parts(old, own, methods)
    return {**new, "records": records, "kept": parts}


def markdown(records: list[dict], kept: list[dict] | None = None) -> str:
    df = pd.DataFrame(records)
    df["target ← inputs"] = df["target"] + " ← " + df["inputs"]
    cols = [c for c in ("feature_r", "sample_r", "coverage90", "interval_width", "wall_s") if c in df]
    lines = [
        "# Cross-modal imputation",
        "",
        "Mean ± SD over the folds; values standardised with the statistics of the samples that kept the target; "
        "coverage: share of held-out values inside mean ± 1.645 SD (POEMS only).",
        "",
        *common.table(df.rename(columns={"dataset": "data set"}), ["data set", "target ← inputs", "method"], cols),
    ]
    lines += common.kept_lines(kept)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
