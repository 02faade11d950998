"""The training schedule (learning rate, warm-up, patience, minibatch size), chosen by label-free criteria.

    OMP_NUM_THREADS=1 python benchmarks/tuning/train_schedule.py --workers 2
    OMP_NUM_THREADS=1 python benchmarks/tuning/train_schedule.py --quick      # two schedules, 1 seed, 20 epochs

Each schedule of :data:`SCHEDULES` (``train`` arguments; every other argument at the package default) is run per
seed on

- the planted data of ``factor_prior.py`` (4 and 8 correlated, cluster-structured factors, a near-noise modality;
  data seed = training seed), trained on all samples with the default validation split: the factors kept and the
  grouped AUROC of |W|;
- breast_tcga and rosmap, with a split drawn by the seed and used by every schedule (not stratified, no label): a
  *test* part of 20 % of the samples that training never sees, and the rest split 80 / 20 into the fit part and the
  validation part that early stopping watches. Scored: the held-out criterion (per-sample negative ELBO at the
  posterior means, the quantity early stopping minimises; lower is better) of the test part, with the model set up
  on the training samples only, and of the validation part (which chose the stopping epoch, so it flatters
  schedules that look at more epochs); the factors kept; epochs and seconds of training; and how alike the seeds'
  embeddings of every sample are (mean linear CKA over pairs of seeds).

Rule (label-free; written after exploratory runs on the paper's split that compared the default with a smaller
learning rate, a longer warm-up and patience, full batches and parameter averaging): among the schedules that keep
between the true number of planted factors and 2 more on every seed, with a mean grouped AUROC of at least 0.95 on
both planted sets, the one with the lowest test criterion averaged over breast_tcga and rosmap (the mean over seeds
of each, then their mean). The test part, not the validation part, decides: patience and warm-up change how many
epochs the validation part chooses among.

The grid was extended twice, the rule unchanged. The first run stopped at a learning rate of 0.0025, which the rule
chose, so the grid went down to 0.00125 (and got 0.0025 at the default warm-up and patience). The second run chose
0.0025 with a warm-up of 100 epochs and patience 50; a scratch run at the default patience (25) restored the same
best states on most seeds in fewer epochs, so that schedule joined the grid.

*Constraints, added after the rule's choice became the default on a branch and every result was regenerated under
it* (the grid unchanged): that regeneration measured what the held-out fit does not see. A rate of 0.0025 left the
planted batch of ``batch_planted.py`` in the latent on two of three seeds, and annotated factors of
``feature_sets_planted.py --weak`` added 2 % of the members their sets lack (47 % at the default). Every schedule
therefore also runs, per seed (data seed = training seed),

- *batch*: ``batch_planted.py``'s data (a ±2 SD shift of 70 % of the features in one of two batches, 3 groups),
  ``batch_key="batch"``, ``n_latent=10``: the 10-NN accuracy of the batch (chance 0.5) and of the groups on the
  latent;
- *sets*: ``feature_sets_planted.py --weak``'s data and sets (30 % of the listed members wrong, 20 % of the true
  ones left out): the AUROC of the sets' factors' |W| against their true supports, and the share of left-out
  members the model adds;

and the rule keeps only schedules that (a) leave the batch out of the latent, a mean batch accuracy over the seeds
of at most 0.65 (``batch_planted.py``'s goal), (b) recover the sets' supports at least as well as the default did
(mean AUROC), and (c) make the seeds' embeddings agree at least as much as the default did on both cohorts (mean
CKA; the issue that asked for the schedule asks for one answer per data set). The default then was
:data:`PREVIOUS` (``previous default`` in the tables), which meets (b) and (c) by definition; the rule picked ``lr
0.005, warm-up 100, patience 50, full batch``, which is the package's schedule since. Every schedule is named by how
it differs from :data:`PREVIOUS` and run with all four arguments given, so the grid does not move with the package's
defaults.
"""

from __future__ import annotations

import json
import sys
import time
from itertools import combinations
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tuning/: factor_prior's planted fits
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "accuracy"))  # the constraints' data and scores

import _common as common
import numpy as np
import pandas as pd
from factor_prior import ALL_DATA, DATASETS, PLANTED
from factor_prior import run as run_planted

#: the package's factor prior, with which every schedule is run
PRIOR = (15.0, 3.0)
FULL_BATCH = 1024  # more than every training part here: one minibatch per epoch
BASE = "previous default"
#: the package's schedule before this rule chose one; the schedules below are named by how they differ from it
PREVIOUS = {"lr": 1e-2, "n_epochs_kl_warmup": 50, "early_stopping_patience": 25, "batch_size": 128}
#: name: changes to :data:`PREVIOUS`
CHANGES = {
    BASE: {},
    "lr 0.005": {"lr": 5e-3},
    "warm-up 100, patience 50": {"n_epochs_kl_warmup": 100, "early_stopping_patience": 50},
    "lr 0.005, warm-up 100": {"lr": 5e-3, "n_epochs_kl_warmup": 100},
    "lr 0.005, patience 50": {"lr": 5e-3, "early_stopping_patience": 50},
    "lr 0.005, warm-up 100, patience 50": {"lr": 5e-3, "n_epochs_kl_warmup": 100, "early_stopping_patience": 50},
    "lr 0.0025": {"lr": 2.5e-3},
    "lr 0.0025, warm-up 100": {"lr": 2.5e-3, "n_epochs_kl_warmup": 100},
    "lr 0.0025, warm-up 100, patience 50": {"lr": 2.5e-3, "n_epochs_kl_warmup": 100, "early_stopping_patience": 50},
    "lr 0.00125, warm-up 100, patience 50": {"lr": 1.25e-3, "n_epochs_kl_warmup": 100, "early_stopping_patience": 50},
    "lr 0.005, warm-up 100, patience 50, full batch": {
        "lr": 5e-3,
        "n_epochs_kl_warmup": 100,
        "early_stopping_patience": 50,
        "batch_size": FULL_BATCH,
    },
}
#: name: ``train`` arguments (every other argument at the package default)
SCHEDULES = {name: {**PREVIOUS, **changes} for name, changes in CHANGES.items()}
TEST_SHARE, VALIDATION_SHARE = 0.2, 0.2
#: the constraints' data (see the docstring), run for every schedule and seed besides ``ALL_DATA``
CONSTRAINTS = ("batch", "sets")
#: every data set an arm of the rule is run on
JOB_DATA = (*ALL_DATA, *CONSTRAINTS)
#: ``--quick``: a check that the pipeline runs, not a result
QUICK_TRAIN = {"max_epochs": 20, "n_epochs_kl_warmup": 5, "early_stopping_patience": 5}
MAX_BATCH_KNN = 0.65


def cohort_split(n_obs: int, seed: int) -> dict[str, np.ndarray]:
    """Positions of the test part (``TEST_SHARE`` of the samples) and of the fit and validation parts of the rest,
    drawn by ``seed`` alone (no label)."""
    order = np.random.default_rng(seed).permutation(n_obs)
    n_test = round(TEST_SHARE * n_obs)
    test, train = order[:n_test], order[n_test:]
    n_val = round(VALIDATION_SHARE * len(train))
    return {
        "test": np.sort(test),
        "train": np.sort(train),
        "val": np.sort(train[:n_val]),
        "fit": np.sort(train[n_val:]),
    }


def criterion_at_means(model, mdata, rows: np.ndarray) -> float:
    """Per-sample negative ELBO of ``rows`` of a registered ``mdata`` with ``z`` at the posterior means: the held-out
    criterion of early stopping, on other samples."""
    import torch

    module = model.module.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for tensors in model._make_data_loader(adata=mdata, indices=rows, batch_size=256, shuffle=False):
            _, _, lo = module(tensors, inference_kwargs={"use_mean": True}, loss_kwargs={"n_obs": len(rows)})
            n = len(next(iter(lo.reconstruction_loss.values())))
            total += float(lo.extra_metrics["elbo_per_sample"]) * n
            count += n
    return total / count


def run_cohort(schedule: str, data: str, seed: int, train_kwargs: dict, model_kwargs: dict | None = None) -> dict:
    """One cohort fit on the seed's split; the record keeps the embedding of every sample under ``"z"``."""
    from _baselines import train_on_split

    import poems_mu as pm

    mdata = getattr(pm.datasets, data)()
    split = cohort_split(mdata.n_obs, seed)
    model_kwargs = {**(model_kwargs or {}), "lambda0": PRIOR[0], "lambda_factor": PRIOR[1]}
    model, _, _, train_s = train_on_split(mdata, split, seed, model_kwargs, {**SCHEDULES[schedule], **train_kwargs})
    full = mdata.copy()
    pm.POEMS.setup_mudata(full)  # the training samples' setup, transferred: the test part touches nothing
    model._validate_anndata(full)  # registers it with the model, as scvi's own methods do
    z = model.get_latent_representation(full)
    summary = model.training_summary_
    return {
        "schedule": schedule,
        "data": data,
        "seed": seed,
        "kept": int(model.module.n_factors),
        "slab": float(model.sparsity_summary()["slab"].mean()),  # share of W's entries with p* > 0.5, modalities' mean
        "best_epoch": summary["runs"][summary["chosen_restart"]]["best_epoch"],
        "elbo": summary["runs"][summary["chosen_restart"]]["validation_criterion"],
        "test": criterion_at_means(model, full, split["test"]),
        "epochs": len(model.history["elbo_train"]),
        "train_s": train_s,
        "z": z,
    }


def run_batch(schedule: str, seed: int, train_kwargs: dict, quick: bool, model_kwargs: dict | None = None) -> dict:
    """``batch_planted.py``'s data with ``batch_key``: the batch's and the groups' 10-NN accuracy on the latent."""
    import batch_planted as bp

    size = {"n": bp.QUICK["n"], "scale": bp.QUICK["scale"]} if quick else {}
    mdata, _ = common.planted("batched", seed, **size)
    train = {**SCHEDULES[schedule], **train_kwargs}
    model, wall = common.train_poems(
        mdata, seed, {**(model_kwargs or {}), "n_latent": bp.N_LATENT}, {"batch_key": "batch"}, train
    )
    z = model.get_latent_representation()
    return {
        "knn_batch": common.knn_cv(z, mdata.obs["batch"].to_numpy()),
        "knn_groups": common.knn_cv(z, mdata.obs["group"].to_numpy()),
        **common.fit_info(model, wall),
    }


def run_sets(schedule: str, seed: int, train_kwargs: dict, model_kwargs: dict | None = None) -> dict:
    """``feature_sets_planted.py --weak``'s data with its sets: how well the sets' factors find the true supports."""
    import feature_sets_planted as fs

    d = fs.data(seed, fs.WRONG[0], weak=True)
    model, wall = common.train_poems(
        d.mdata,
        seed,
        {**(model_kwargs or {}), "feature_sets": d.net},
        train_kwargs={**SCHEDULES[schedule], **train_kwargs},
    )
    scores = fs.score_informed(model, d)
    keys = ("auroc", "added_recall", "added_precision", "dropped_precision", "dropped_recall")
    return {f"sets_{k}": scores[k] for k in keys} | common.fit_info(model, wall)


def _job(job: tuple) -> dict:
    """One fit of a schedule: ``(schedule, data, seed, train_kwargs, quick, model_kwargs)``, the last two arguments
    added to the schedule's and to the package's defaults (the prior stays :data:`PRIOR`)."""
    schedule, data, seed, train_kwargs, quick, model_kwargs = job
    common.quiet()
    if data.startswith("planted"):
        start = time.perf_counter()
        rec = run_planted(PRIOR, data, seed, {**SCHEDULES[schedule], **train_kwargs}, model_kwargs)
        rec.update(schedule=schedule, train_s=time.perf_counter() - start)
    elif data in CONSTRAINTS:
        scores = (
            run_batch(schedule, seed, train_kwargs, quick, model_kwargs)
            if data == "batch"
            else run_sets(schedule, seed, train_kwargs, model_kwargs)
        )
        rec = {"schedule": schedule, "data": data, "seed": seed, **scores}
    else:
        rec = run_cohort(schedule, data, seed, train_kwargs, model_kwargs)
    print(json.dumps({k: v for k, v in rec.items() if k != "z"}, default=float), flush=True)
    return rec


def stability(df: pd.DataFrame) -> pd.Series:
    """Mean linear CKA between the seeds' embeddings of every sample, per schedule and cohort."""
    from poems_mu.tl._consensus import linear_cka

    out = {}
    for key, g in df[df["data"].isin(DATASETS)].groupby(["schedule", "data"], sort=False):
        zs = list(g["z"])
        out[key] = float(np.mean([linear_cka(a, b) for a, b in combinations(zs, 2)])) if len(zs) > 1 else np.nan
    return pd.Series(out, dtype=float)


def summarise(df: pd.DataFrame, base_name: str = BASE) -> pd.DataFrame:
    """One row per schedule: planted counts and AUROC, each cohort's test and validation criteria (and the test
    criterion's paired difference to ``base_name``'s), kept factors, share of W's entries in the slab, restored
    epoch, CKA, epochs and seconds (means over seeds), and whether the planted counts are in range on every seed."""
    cka = stability(df)
    base = df[df["schedule"] == base_name].set_index(["data", "seed"])["test"]
    rows = []
    for schedule, g in df.groupby("schedule", sort=False):
        row: dict = {"schedule": schedule}
        planted = g[g["data"].str.startswith("planted")]
        row["in_range"] = bool(planted["in_range"].all())
        for data, h in planted.groupby("data", sort=False):
            row[f"{data}: kept"] = list(map(int, h["kept"]))
            row[f"{data}: auroc"] = float(h["grouped_auroc"].mean())
        for data in DATASETS:
            h = g[g["data"] == data]
            diff = (h.set_index(["data", "seed"])["test"] - base).dropna()
            row.update(
                {
                    f"{data}: test": float(h["test"].mean()),
                    f"{data}: test sd": float(h["test"].std(ddof=1)) if len(h) > 1 else np.nan,
                    f"{data}: test diff": float(diff.mean()) if len(diff) else np.nan,
                    f"{data}: better on": f"{int((diff < 0).sum())} of {len(diff)}",
                    f"{data}: validation": float(h["elbo"].mean()),
                    f"{data}: kept": float(h["kept"].mean()),
                    f"{data}: slab": float(h["slab"].mean()) if "slab" in h else np.nan,
                    f"{data}: best epoch": float(h["best_epoch"].mean()) if "best_epoch" in h else np.nan,
                    f"{data}: cka": float(cka.get((schedule, data), np.nan)),
                    f"{data}: epochs": float(h["epochs"].mean()),
                    f"{data}: train s": float(h["train_s"].mean()),
                }
            )
        row["test"] = float(np.mean([row[f"{d}: test"] for d in DATASETS]))
        batch, sets = g[g["data"] == "batch"], g[g["data"] == "sets"]
        row["batch: knn"] = float(batch["knn_batch"].mean())
        row["batch: knn per seed"] = [float(v) for v in batch["knn_batch"]]
        row["batch: knn groups"] = float(batch["knn_groups"].mean())
        for key in ("auroc", "added_recall", "dropped_precision"):
            row[f"sets: {key}"] = float(sets[f"sets_{key}"].mean())
        rows.append(row)
    return pd.DataFrame(rows)


def constraints(summary: pd.DataFrame, base_name: str = BASE) -> pd.DataFrame:
    """Per schedule (rows in ``summary``'s order), whether it meets each condition of the rule (the sets and the
    agreement against ``base_name``)."""
    planted = summary[[f"planted {k}: auroc" for k in PLANTED]]
    base = summary.set_index("schedule").loc[base_name]
    cka = summary[[f"{d}: cka" for d in DATASETS]]
    base_cka = base[cka.columns].to_numpy(dtype=float)  # NaN with one seed: no agreement to compare
    return pd.DataFrame(
        {
            "planted": summary["in_range"] & (planted >= 0.95).all(axis=1),
            "batch": summary["batch: knn"] <= MAX_BATCH_KNN,
            "sets": summary["sets: auroc"] >= base["sets: auroc"],
            "agreement": ((cka >= base_cka) | np.isnan(base_cka)).all(axis=1),
        }
    )


def choose(summary: pd.DataFrame, base_name: str = BASE) -> str | None:
    """The rule of the docstring: the lowest test criterion among the schedules that meet every condition of
    :func:`constraints`; ``None`` if none does."""
    ok = summary[constraints(summary, base_name).all(axis=1)]
    return None if ok.empty else str(ok.sort_values("test").iloc[0]["schedule"])


def meets_text(met: pd.Series) -> str:
    """One row of :func:`constraints` as a table cell: ``all``, or the conditions not met."""
    return "all" if met.all() else "not " + ", ".join(k for k, v in met.items() if not v)


def constraint_lines(summary: pd.DataFrame, base_name: str, arm_title: str, chosen: str | None) -> list[str]:
    """The constraints' table of a rule run against ``base_name`` (one row per arm, headed ``arm_title``: the batch
    KNN, the sets' AUROC, the CKA on both cohorts and the conditions met) and the line naming the choice."""
    lines = [
        "",
        f"Constraints: *batch*: 10-NN accuracy of the planted batch (at most {MAX_BATCH_KNN:g}); *sets*: AUROC of "
        "the weak sets' factors (at least the default's); *CKA* (breast_tcga / rosmap, at least the default's).",
        "",
        f"| {arm_title} | batch KNN | sets AUROC | CKA | meets |",
        "|---|---|---|---|---|",
    ]
    met = constraints(summary, base_name)
    for (_, r), (_, m) in zip(summary.iterrows(), met.iterrows(), strict=True):
        cka = " / ".join(f"{r[f'{d}: cka']:.3f}" for d in DATASETS)
        lines.append(f"| {r['schedule']} | {r['batch: knn']:.3f} | {r['sets: auroc']:.3f} | {cka} | {meets_text(m)} |")
    return [*lines, "", f"Chosen: {chosen if chosen is not None else 'none meets every condition'}."]


def cohort_rows(r: pd.Series, tail) -> list[str]:
    """The first table's rows of one summary row ``r``, one per cohort: the schedule, its planted counts (in range
    on every seed or not) and AUROC on the first row, the cohort, its test criterion and the paired difference to the
    base, then the cells ``tail(data)`` returns."""
    planted = [f"planted {k}" for k in PLANTED]
    kept = " / ".join(f"{np.mean(r[f'{p}: kept']):.1f}" for p in planted)
    auroc = " / ".join(f"{r[f'{p}: auroc']:.3f}" for p in planted)
    in_range = "yes" if r["in_range"] else "no"
    rows = []
    for i, data in enumerate(DATASETS):
        head = f"| {r['schedule']} | {kept}, {in_range} | {auroc} |" if i == 0 else "| | | |"
        rows.append(
            f"{head} {data} | {r[f'{data}: test']:.1f} ± {r[f'{data}: test sd']:.1f} | "
            f"{r[f'{data}: test diff']:+.2f} ({r[f'{data}: better on']}) | {tail(data)} |"
        )
    return rows


def markdown(summary: pd.DataFrame, chosen: str | None, seeds) -> str:
    lines = [
        "# The training schedule (label-free)",
        "",
        f"λ0 = {PRIOR[0]:g}, λ_f = {PRIOR[1]:g}, every other argument at the package default; seeds "
        f"{', '.join(map(str, seeds))}; means over seeds; the protocol and the rule: the script's docstring. *Test*: "
        "held-out criterion of the 20 % of samples that training never saw (lower is better); *validation*: that of "
        "the samples early stopping watched; *paired*: the test criterion's difference to the previous default, seed "
        "by seed (same split), and on how many seeds it is lower; *CKA*: between the seeds' embeddings.",
        "",
        "| schedule | planted kept (4 / 8), in range | AUROC (4 / 8) | data | test | "
        "paired to previous default (better on) | validation | kept | CKA | epochs | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        lines += cohort_rows(
            r,
            lambda data, r=r: (
                f"{r[f'{data}: validation']:.1f} | {r[f'{data}: kept']:.1f} | "
                f"{r[f'{data}: cka']:.3f} | {r[f'{data}: epochs']:.0f} | {r[f'{data}: train s']:.1f}"
            ),
        )
    lines += [
        "",
        "Constraints (the rule's conditions, the docstring): *batch*: 10-NN accuracy of the planted batch on the "
        f"latent with `batch_key` (chance 0.5, at most {MAX_BATCH_KNN:g}; per seed in brackets) and of the groups; "
        "*sets*: AUROC of the sets' factors against their true supports (at least the previous default's), the share "
        "of the left-out members added and the precision of the dropped calls; *agreement*: CKA between seeds' "
        "embeddings (breast_tcga / rosmap, at least the previous default's on both).",
        "",
        "| schedule | batch KNN | group KNN | sets AUROC | added | dropped precision | CKA | meets |",
        "|---|---|---|---|---|---|---|---|",
    ]
    met = constraints(summary)
    for (_, r), (_, m) in zip(summary.iterrows(), met.iterrows(), strict=True):
        per_seed = ", ".join(f"{v:.2f}" for v in r["batch: knn per seed"])
        cka = " / ".join(f"{r[f'{d}: cka']:.3f}" for d in DATASETS)
        lines.append(
            f"| {r['schedule']} | {r['batch: knn']:.3f} ({per_seed}) | {r['batch: knn groups']:.3f} | "
            f"{r['sets: auroc']:.3f} | {r['sets: added_recall']:.2f} | {r['sets: dropped_precision']:.2f} | {cka} | "
            f"{meets_text(m)} |"
        )
    lines += ["", f"Chosen: {chosen if chosen is not None else 'none meets every condition'}."]
    return "\n".join(lines)


def run_rule(job_fn, jobs: list, workers: int, base_name: str = BASE) -> tuple[pd.DataFrame, pd.DataFrame, str | None]:
    """Run ``jobs`` through ``job_fn`` (records as :func:`_job`'s, ``"schedule"`` naming the arm), then
    :func:`summarise` and :func:`choose` against ``base_name``: the records, the summary and the choice."""
    df = pd.DataFrame(common.map_jobs(job_fn, jobs, workers))
    summary = summarise(df, base_name)
    return df, summary, choose(summary, base_name)


def payload(df: pd.DataFrame, summary: pd.DataFrame, chosen: str | None, settings: dict, base_name: str = BASE) -> dict:
    """The results file's content: the settings, the records (without the embeddings), the summary with the
    conditions met, and the choice."""
    meets = constraints(summary, base_name).rename(columns=lambda c: f"meets: {c}")
    return {
        "settings": settings,
        "records": df.drop(columns="z").replace({np.nan: None}).to_dict("records"),
        "summary": pd.concat([summary, meets], axis=1).replace({np.nan: None}).to_dict("records"),
        "chosen": chosen,
    }


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=[0, 1, 2, 3, 4], workers=True)
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    names, train_kwargs = (list(SCHEDULES)[:2], QUICK_TRAIN) if args.quick else (list(SCHEDULES), {})
    jobs = [
        (name, data, seed, train_kwargs, args.quick, {}) for name in names for data in JOB_DATA for seed in args.seeds
    ]
    df, summary, chosen = run_rule(_job, jobs, args.workers)
    text = markdown(summary, chosen, args.seeds)
    settings = {"schedules": {k: SCHEDULES[k] for k in names}, "base": BASE, "prior": PRIOR, "seeds": args.seeds}
    common.write_results(
        args.out / "train_schedule.json", payload(df, summary, chosen, settings), provenance=prov, markdown=text
    )
    print(text)


if __name__ == "__main__":
    main()
