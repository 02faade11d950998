"""The generated blocks of the imputation benchmark (``benchmarks/tables.py``, ``imputation.json``)."""

from __future__ import annotations

from _tables_common import kept_origin, load, mean, percent, pm, rel, seeds_text

IMPUTATION = "imputation.json"


def _imputation() -> tuple[dict, dict]:
    data = load(IMPUTATION)
    by: dict = {}
    for r in data["records"]:
        by.setdefault((r["dataset"], f"{r['target']} ← {r['inputs']}"), {}).setdefault(r["method"], []).append(r)
    return data, by


def table_imputation() -> list[str]:
    data, by = _imputation()
    folds = data["settings"]["folds"]
    seeds = sorted({r["seed"] for r in data["records"]})
    mofa = data["settings"].get("mofa")
    origin = kept_origin(data, list(dict.fromkeys(r["method"] for r in data["records"])))
    lines = [
        f"From {rel(IMPUTATION)} (`benchmarks/accuracy/imputation.py`, {folds} folds of seed "
        f"{seeds_text(seeds)}: the fold's samples stay in the cohort without the target; mean ± SD over folds; "
        "values standardised with the statistics of the samples that kept the target; **bold**: the best feature r "
        "of its data set; coverage: the share of held-out values inside POEMS's 90 % predictive interval"
        + (f"; MOFA+: {mofa['factors']} factors, `dropR2={mofa['dropR2']}`" if mofa else "")
        + ")."
        + origin,
        "",
        "| data | method | per-feature r | per-sample r | 90 % interval coverage |",
        "|---|---|---|---|---|",
    ]
    for (dataset, task), methods in by.items():
        best = max(round(mean(r["feature_r"] for r in rs), 3) for rs in methods.values())
        for method, rs in methods.items():
            fr = [r["feature_r"] for r in rs]
            fr_text = pm(fr)
            if round(mean(fr), 3) == best:
                fr_text = f"**{fr_text}**"
            cov = [r["coverage90"] for r in rs if r.get("coverage90") is not None]
            lines.append(
                f"| {dataset}: {task} | {method} | {fr_text} | {pm(r['sample_r'] for r in rs)} | "
                f"{pm(cov) if cov else '–'} |"
            )
    return lines


def value_coverage() -> str:
    """POEMS's 90 % interval coverage, one figure per cohort and training (imputation.json)."""
    _, by = _imputation()
    cover = {}
    for (dataset, _), methods in by.items():
        for method, rs in methods.items():
            cov = [r["coverage90"] for r in rs if r.get("coverage90") is not None]
            if cov:
                cover[dataset, method] = percent(mean(cov), 0)
    datasets = list(dict.fromkeys(d for d, _ in cover))
    plain = " and ".join(f"{cover[d, 'POEMS']} ({d})" for d in datasets)
    dropout = [cover[d, "POEMS, modality_dropout=0.5"] for d in datasets]
    dropout = f"{dropout[0]} on both" if len(set(dropout)) == 1 else " and ".join(dropout)
    return f"{plain} of the held-out values ({dropout} with `modality_dropout=0.5`; mean over folds, {rel(IMPUTATION)})"


def value_impute_r() -> str:
    """POEMS's per-feature r against KNN, ridge, MOFA+ and MOFA-FLEX per cohort (imputation.json)."""
    _, by = _imputation()
    parts = []
    for (dataset, task), methods in by.items():
        r = {m: f"{mean(x['feature_r'] for x in rs):.3f}" for m, rs in methods.items()}
        others = ", ".join(f"{r[m]} for {m}" for m in ("KNN", "ridge", "MOFA+", "MOFA-FLEX") if m in r)
        parts.append(f"{r['POEMS']} against {others} on {dataset} ({task})")
    return "mean per-feature r " + "; ".join(parts) + f" ({rel(IMPUTATION)})"


def value_dropout_effect() -> str:
    """What ``modality_dropout=0.5`` did to the per-feature r, per cohort (imputation.json)."""
    _, by = _imputation()
    parts = []
    for (dataset, _), methods in by.items():
        delta = mean(x["feature_r"] for x in methods["POEMS, modality_dropout=0.5"]) - mean(
            x["feature_r"] for x in methods["POEMS"]
        )
        parts.append(f"{delta:+.3f} on {dataset}".replace("-", "−"))
    return "moved the mean per-feature r by " + " and ".join(parts) + f" ({rel(IMPUTATION)})"
