"""The benchmark tables and figures of the README and the docs, generated from ``benchmarks/results/*.json``.

    python benchmarks/tables.py            # rewrite every generated block in place
    python benchmarks/tables.py --check    # exit 1 and print a diff where a page differs from the results files
    python benchmarks/tables.py --show subtyping   # print one block (``--list``: the names)

A page holds a generated table between two lines::

    <!-- table: subtyping (benchmarks/tables.py) -->
    ...
    <!-- /table -->

and a generated figure inside a sentence between ``<!-- value: coverage -->`` and ``<!-- /value -->``. What lies
between the markers is replaced by what :data:`BLOCKS` renders from the results files; everything else on the page
is left as it is. The check also fails where the README's results section has a measured number written by hand
(:func:`stray_numbers`) or any page quotes the interval coverage or a training time outside its block
(:data:`QUOTES`): each of these quantities has one figure, from one results file, everywhere. The pages:
:data:`PAGES`. Each block names the results file it comes from, the split and the seeds; a page without markers is
not touched. Only the standard library is used, so the check runs anywhere (``benchmarks/tests/test_tables.py`` runs
it in ``python -m pytest``).

The numbers are rounded here, never edited: to change one, change (re-run) the benchmark and run this script.
"""

from __future__ import annotations

import argparse
import difflib
import re
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/: the helpers and the feature-set blocks

from _tables_common import (
    ROOT,
    commit_of,
    load,
    mean,
    percent,
    pm,
    rel,
    sd,
    seeds_text,
    subtyping_cell,
    subtyping_values,
)
from _tables_factors import (
    table_factor_start,
    table_factor_start_planted,
    table_structures,
    value_factor_start,
    value_factor_start_subtyping,
    value_structures,
)
from _tables_sets import table_feature_sets, table_feature_sets_breast

#: the pages whose generated blocks this script keeps (a page without markers is not touched)
PAGES = ("README.md", "benchmarks/README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))

TABLE = re.compile(
    r"(?P<open><!-- table: (?P<name>[a-z0-9_]+) \(benchmarks/tables\.py\) -->\n)"
    r"(?P<body>.*?)(?P<close><!-- /table -->)",
    re.S,
)
VALUE = re.compile(r"(?P<open><!-- value: (?P<name>[a-z0-9_]+) -->)(?P<body>.*?)(?P<close><!-- /value -->)", re.S)
#: in the README's results section, outside the generated blocks and code spans (settings such as ``dropR2=0.001``),
#: no measured number may be written by hand: a number with three decimals (how scores are quoted) or a ± (a spread)
#: is an error
STRAY = re.compile(r"\d\.\d{3}|±")
README_SECTION = ("## How well it works", "\n## ")
#: quantities with one figure everywhere: on every page, outside the generated blocks and code spans, a quote of them
#: is an error (the figure comes from its block: ``coverage``, ``train_time``, ``speed``, ``speed_summary``)
QUOTES = {
    "interval coverage": re.compile(r"\bcover\w*\s+(?:about\s+)?\d"),
    "training time": re.compile(
        r"\b\d+(?:\.\d+)?(?:\s*±\s*\d+(?:\.\d+)?)?\s*s\b(?= (?:on|for|against|to train)\b)"
        r"|\btook \d+(?:\.\d+)? s\b|\btrain\w* (?:in|takes) \d+(?:\.\d+)? s\b"
    ),
}

METHOD_ORDER = ("PCA", "MOFA+", "MOFA-FLEX", "POEMS", "POEMS (fixed gating)", "POEM (dense decoder)")
ABLATIONS = ("POEMS (fixed gating)", "POEM (dense decoder)")


# ---------------------------------------------------------------------------------------------------- subtyping
SUBTYPING = "subtyping.json"
SCOPE_TITLE = {"all": "all", "test": "test"}


def _subtyping_runs() -> tuple[dict, dict]:
    data = load(SUBTYPING)
    runs: dict = {}
    for r in data["runs"]:
        if "metrics" in r:
            runs.setdefault(r["dataset"], {}).setdefault(r["method"], []).append(r)
    return data, runs


def _factors_cell(method: str, records, settings: dict) -> str:
    ks = [r["info"]["n_factors"] for r in records if "n_factors" in r["info"]]
    if not ks:
        return str(settings.get("pca_components", "–")) if method == "PCA" else "–"
    if min(ks) == max(ks):
        return str(ks[0])
    return f"{mean(ks):.1f} ({min(ks)}–{max(ks)})"


def table_subtyping() -> list[str]:
    data, runs = _subtyping_runs()
    settings = data["settings"]
    seeds = sorted({r["train_seed"] for r in data["runs"]})
    mofa = settings.get("mofa", {})
    flex = settings.get("mofaflex", {})
    metrics = (("kmeans_nmi", "k-means NMI"), ("knn_accuracy", "KNN accuracy"))
    parts = data.get("parts", [])
    merged = ""
    if parts:
        commits = ", ".join(dict.fromkeys(commit_of(p) for p in parts))
        merged = f"; {len(parts)} runs merged with `--merge`, at commits {commits}; their commands: `subtyping.md`"
    lines = [
        f"From {rel(SUBTYPING)} (`benchmarks/accuracy/subtyping.py`{merged}). Training seeds {seeds_text(seeds)} "
        "for every method (PCA is "
        f"deterministic); a cell is the mean ± SD over training seeds of the mean over the evaluation seeds "
        f"{', '.join(map(str, settings['eval_seeds']))} of `tl.evaluate_subtyping`. Every method is fitted on the "
        "paper's train split and embeds every sample; **all**: the scores over all samples, **test**: over the "
        f"paper's test split only ({settings['split']}). **Bold**: the best mean of its column on that data set. "
        f"PCA: {settings.get('pca_components', '?')} components; MOFA+: {mofa.get('factors', '?')} factors, "
        f"inactive ones dropped while training (`dropR2={mofa.get('dropR2')}`); MOFA-FLEX: its MOFA preset, "
        f"{flex.get('n_factors', '?')} factors; POEMS: the package defaults (K = {settings['model_kwargs']['n_latent']}"
        " a cap). *factors*: those the embedding has (POEMS and MOFA+: kept), mean (range) over seeds.",
        "",
    ]
    header = ["data", "method"]
    for _, label in metrics:
        header += [f"{label}, all", f"{label}, test"]
    header += ["factors"]
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for dataset, by_method in runs.items():
        info = next(iter(by_method.values()))[0]["data"]
        best = {}
        for metric, _ in metrics:
            for scope in ("all", "test"):
                best[metric, scope] = max(
                    round(mean(subtyping_cell(rs, scope, metric)), 3) for rs in by_method.values()
                )
        methods = [m for m in METHOD_ORDER if m in by_method] + [m for m in by_method if m not in METHOD_ORDER]
        for method in methods:
            records = by_method[method]
            cells = []
            for metric, _ in metrics:
                for scope in ("all", "test"):
                    values = subtyping_cell(records, scope, metric)
                    text = pm(values)
                    cells.append(f"**{text}**" if round(mean(values), 3) == best[metric, scope] else text)
            label = f"{method}, ablation" if method in ABLATIONS else method
            data_cell = f"{dataset} ({info['n_obs']}; test {info['n_test']})"
            lines.append("| " + " | ".join([data_cell, label, *cells, _factors_cell(method, records, settings)]) + " |")
    return lines


def _sub(dataset: str, method: str, scope: str, metric: str) -> list[float]:
    return subtyping_values(SUBTYPING, dataset, method, scope, metric)


def value_gating() -> str:
    """Learned against fixed gating, all samples (subtyping.json)."""
    parts = []
    for dataset in ("breast_tcga", "rosmap"):
        learned = [pm(_sub(dataset, "POEMS", s, "kmeans_nmi")) for s in ("all", "test")]
        fixed = [pm(_sub(dataset, "POEMS (fixed gating)", s, "kmeans_nmi")) for s in ("all", "test")]
        knn_l = [pm(_sub(dataset, "POEMS", s, "knn_accuracy")) for s in ("all", "test")]
        knn_f = [pm(_sub(dataset, "POEMS (fixed gating)", s, "knn_accuracy")) for s in ("all", "test")]
        parts.append(
            f"on {dataset} k-means NMI {learned[0]} learned against {fixed[0]} fixed over all samples and "
            f"{learned[1]} against {fixed[1]} on the test split, KNN accuracy {knn_l[0]} against {knn_f[0]} and "
            f"{knn_l[1]} against {knn_f[1]}"
        )
    seeds = sorted({r["train_seed"] for r in load(SUBTYPING)["runs"]})
    return "; ".join(parts) + f" ({rel(SUBTYPING)}, training seeds {seeds_text(seeds)})"


def value_nmi_spread() -> str:
    """The training-seed SD of the all-sample k-means NMI on breast_tcga, POEMS and the baselines that vary."""
    out = [f"{sd(_sub('breast_tcga', m, 'all', 'kmeans_nmi')):.3f} for {m}" for m in ("POEMS", "MOFA-FLEX", "MOFA+")]
    seeds = sorted({r["train_seed"] for r in load(SUBTYPING)["runs"]})
    return ", ".join(out[:-1]) + f" and {out[-1]} (training seeds {seeds_text(seeds)}, {rel(SUBTYPING)})"


COLUMNS = (
    ("kmeans_nmi", "all", "NMI all"),
    ("kmeans_nmi", "test", "NMI test"),
    ("knn_accuracy", "all", "KNN all"),
    ("knn_accuracy", "test", "KNN test"),
)


def value_leaders() -> str:
    """Per data set and column of the subtyping table, the method(s) with the best mean."""
    _, runs = _subtyping_runs()
    parts = []
    for dataset, by_method in runs.items():
        cells = []
        for metric, scope, label in COLUMNS:
            means = {m: round(mean(subtyping_cell(rs, scope, metric)), 3) for m, rs in by_method.items()}
            top = max(means.values())
            cells.append(f"{label}: {' and '.join(m for m, v in means.items() if v == top)}")
        parts.append(f"{dataset} — " + ", ".join(cells))
    return "; ".join(parts)


def _versus(a: str, b: str) -> str:
    """How often method ``a`` is ahead of, level with and behind ``b`` over the subtyping table's columns, and whether
    every difference is within one training-seed SD."""
    _, runs = _subtyping_runs()
    ahead = level = behind = within = total = 0
    for by_method in runs.values():
        for metric, scope, _ in COLUMNS:
            xa, xb = subtyping_cell(by_method[a], scope, metric), subtyping_cell(by_method[b], scope, metric)
            da, db = round(mean(xa), 3), round(mean(xb), 3)
            ahead += da > db
            level += da == db
            behind += da < db
            total += 1
            within += abs(mean(xa) - mean(xb)) <= max(sd(xa), sd(xb))
    spread = (
        "every difference within one training-seed SD"
        if within == total
        else f"{within} of the {total} differences within one training-seed SD"
    )
    return (
        f"ahead in {ahead}, level in {level} and behind in {behind} of the {total} scores (k-means NMI and KNN "
        f"accuracy, over all samples and on the test split, on {len(runs)} cohorts); {spread}"
    )


def value_gating_vs_fixed() -> str:
    """The learned gate against fixed, equal gates over the subtyping table."""
    return "the learned gate is " + _versus("POEMS", "POEMS (fixed gating)") + f" ({rel(SUBTYPING)})"


def value_sparse_vs_dense() -> str:
    """The sparse decoder against the dense one (POEM) over the subtyping table."""
    return "the sparse decoder is " + _versus("POEMS", "POEM (dense decoder)") + f" ({rel(SUBTYPING)})"


# ---------------------------------------------------------------------------------------------------- factors
FACTORS = "factors.json"


def table_factors() -> list[str]:
    data = load(FACTORS)
    by: dict = {}
    for r in data["records"]:
        by.setdefault(r["data"], []).append(r)
    seeds = sorted({r["seed"] for r in data["records"]})
    lines = [
        f"From {rel(FACTORS)} (`benchmarks/accuracy/factors.py`, the package defaults with the cap K = 32, seeds "
        f"{seeds_text(seeds)}; the goals are the script's docstring).",
        "",
        "| data | factors kept (per seed) | grouped support AUROC | reproducibility across seeds | goal |",
        "|---|---|---|---|---|",
    ]
    for name, records in by.items():
        kept = [r["kept"] for r in sorted(records, key=lambda r: r["seed"])]
        repro = data["reproducibility"][name]
        auroc = [r["grouped_auroc"] for r in records if r.get("grouped_auroc") is not None]
        auroc = [a for a in auroc if a == a]  # NaN for the cohort
        match = re.match(r"planted, (\d+) factors", name)
        if match:
            true = int(match.group(1))
            checks = {
                f"kept in [{true}, {true + 2}] on every seed": all(true <= k <= true + 2 for k in kept),
                "AUROC ≥ 0.95": mean(auroc) >= 0.95,
                "reproducibility ≥ 0.8": repro >= 0.8,
            }
        else:
            checks = {f"≤ 15 on average ({mean(kept):.1f})": mean(kept) <= 15, "reproducibility ≥ 0.8": repro >= 0.8}
        if all(checks.values()):
            goal = ", ".join(checks) + ": met"
        else:
            goal = "; ".join(f"{k}: {'met' if ok else '**not met**'}" for k, ok in checks.items())
        n = f"{name} ({records[0]['samples']})" if "samples" in records[0] else name
        auroc_cell = pm(auroc) if auroc else "–"
        lines.append(f"| {n} | {', '.join(map(str, kept))} | {auroc_cell} | {repro:.2f} | {goal} |")
    return lines


# ---------------------------------------------------------------------------------------------------- loadings
TRAIN_DEFAULTS = "train_defaults.json"


def table_train_defaults() -> list[str]:
    data = load(TRAIN_DEFAULTS)
    seeds = sorted({r["seed"] for r in data["records"]})
    lines = [
        f"From {rel(TRAIN_DEFAULTS)} (`benchmarks/tuning/train_defaults.py`, every default, all samples, seed "
        f"{seeds_text(seeds)}; W's shares are means over the modalities; the held-out criterion is the per-sample "
        "negative ELBO at the posterior means on the validation samples, lower is better).",
        "",
        "| data | factors kept | \\|W\\| > 0.01 over all 32 columns | \\|W\\| > 0.01 within the kept factors | "
        "links per feature | held-out criterion |",
        "|---|---|---|---|---|---|",
    ]
    for r in data["records"]:
        lines.append(
            f"| {r['dataset']} ({r['samples']}) | {r['factors kept (of K)'].split(' of ')[0]} | "
            f"{r['mean over modalities: |W| > 0.01']:.3f} | "
            f"{r['mean over modalities: |W| > 0.01, kept factors']:.3f} | "
            f"{r['mean over modalities: links per feature']:.1f} | "
            f"{r['heldout_criterion (at posterior means)']:.1f} |"
        )
    return lines


# ---------------------------------------------------------------------------------------------------- imputation
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
    kept = data.get("kept", [])
    origin = ""
    if kept:
        from_kept = {m for p in kept for m in p["methods"]}
        rerun = list(dict.fromkeys(r["method"] for r in data["records"] if r["method"] not in from_kept))
        origin = " " + "; ".join(
            f"{' / '.join(p['methods'])} from the run at commit {commit_of(p['provenance'])}" for p in kept
        )
        origin += f"; {' / '.join(rerun)} re-run at commit {commit_of(data['provenance'])} (`--methods`)."
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


def new_pairs_cell(records: list[dict]) -> str:
    """The share of the refinement's new pairs that are true links, against chance (none left when every planted
    link was already a candidate)."""
    left = [r["new_base_rate"] for r in records]
    if not any(left):
        return "none to find: every planted link was already a candidate pair"
    return f"{percent(mean(r['new_precision'] for r in records), 0)} (by chance: {percent(mean(left))})"


def value_penalty_cost() -> str:
    """The held-out criterion before and with the factor penalty (factor_prior.json, three seeds)."""
    data = load("factor_prior.json")
    chosen = data["chosen"]
    by: dict = {}
    for r in data["records"]:
        by.setdefault((r["lambda0"], r["lambda_factor"], r["data"]), []).append(r["elbo"])
    seeds = sorted({r["seed"] for r in data["records"]})
    parts = []
    for dataset in ("breast_tcga", "rosmap"):
        before = by[15.0, 0.0, dataset]
        after = by[chosen[0], chosen[1], dataset]
        parts.append(f"from {pm(before, '.1f', '.0f')} to {pm(after, '.1f', '.0f')} on {dataset}")
    return (
        "the per-sample held-out criterion (lower is better) went "
        + " and ".join(parts)
        + f" (λ0 = 15 without the penalty against the chosen λ0 = {chosen[0]:g}, λ_f = {chosen[1]:g}; seeds "
        f"{seeds_text(seeds)}, {rel('factor_prior.json')})"
    )


# ---------------------------------------------------------------------------------------------------- speed
SPEED = "speed_train.json"
SHAPE = "speed_shape.json"


def _speed_rows(name: str) -> dict:
    by: dict = {}
    for r in load(name)["rows"]:
        by.setdefault(r["dataset"], {}).setdefault(r["method"], []).append(r)
    return by


def _seconds(values) -> str:
    """Seconds: two significant digits below 1 s, one decimal below 10 s, whole seconds above; ± the SD."""
    values = list(values)
    m = mean(values)
    fmt = ".2g" if m < 1 else ".1f" if m < 10 else ".0f"
    if len(values) == 1 or m < 1:
        return format(m, fmt)
    return f"{format(m, fmt)} ± {format(sd(values), fmt)}"


def table_speed() -> list[str]:
    data = load(SPEED)
    by = _speed_rows(SPEED)
    seeds = sorted({r["seed"] for r in data["rows"]})
    kept = data.get("kept", [])
    origin = ""
    if kept:
        from_kept = {m for p in kept for m in p["methods"]}
        rerun = list(dict.fromkeys(r["method"] for r in data["rows"] if r["method"] not in from_kept))
        origin = (
            " "
            + "; ".join(f"{', '.join(p['methods'])} from the run at commit {commit_of(p['provenance'])}" for p in kept)
            + f"; {', '.join(rerun)} re-run at commit {commit_of(data['provenance'])} (`--methods`)."
        )
    lines = [
        f"From {rel(SPEED)} (`benchmarks/performance/speed.py train`): the paper's split, seeds "
        f"{seeds_text(seeds)} (PCA once: it is deterministic), one CPU thread of a 2-core machine that other "
        "benchmarks shared (mean ± SD over seeds). POEMS: the `model.train()` call with every default; the "
        "baselines: z-scoring, fit and projection. This is the training time quoted everywhere in the README and the "
        "docs; other results files record the wall time of their own runs." + origin,
        "",
        "| data | method | seconds to a trained model | epochs | factors | s per epoch, all 32 / kept factors |",
        "|---|---|---|---|---|---|",
    ]
    for dataset, methods in by.items():
        for method in [m for m in ("POEMS", "MOFA+", "MOFA-FLEX", "PCA") if m in methods]:
            rs = methods[method]
            epochs = [r["epochs"] for r in rs if r.get("epochs") is not None]
            ks = [r["n_factors"] for r in rs if r.get("n_factors") is not None]
            per_epoch = "–"
            if rs[0].get("epoch_s_all") is not None:
                per_epoch = f"{mean(r['epoch_s_all'] for r in rs):.3f} / {mean(r['epoch_s_kept'] for r in rs):.3f}"
            k_text = "–" if not ks else (str(ks[0]) if min(ks) == max(ks) else f"{mean(ks):.1f} ({min(ks)}–{max(ks)})")
            lines.append(
                f"| {dataset} | {method} | {_seconds(r['wall_s'] for r in rs)} | "
                f"{f'{mean(epochs):.0f}' if epochs else '–'} | {k_text} | {per_epoch} |"
            )
    return lines


def value_train_time() -> str:
    """POEMS's time to a trained model per cohort (speed_train.json): the one training-time figure."""
    by = _speed_rows(SPEED)
    seeds = sorted({r["seed"] for r in load(SPEED)["rows"] if r["method"] == "POEMS"})
    parts = [f"{_seconds(r['wall_s'] for r in m['POEMS'])} s on {d}" for d, m in by.items() if "POEMS" in m]
    return " and ".join(parts) + f" ({rel(SPEED)}, {len(seeds)} seeds, one CPU thread)"


def value_shape_time() -> str:
    """Seed 003's shape (speed_shape.json): POEMS and MOFA+ seconds."""
    data = load(SHAPE)
    by = _speed_rows(SHAPE)
    (dataset,) = by
    poems = _seconds(r["wall_s"] for r in by[dataset]["POEMS"])
    mofa = _seconds(r["wall_s"] for r in by[dataset]["MOFA+"])
    kept = {m: p["provenance"] for p in data.get("kept", []) for m in p["methods"]}
    poems_prov = kept.get("POEMS", data.get("provenance", {}))
    note = (
        "" if poems_prov.get("commit") else " (an earlier run without a provenance record, before the factor penalty)"
    )
    return f"POEMS took {poems} s{note} against {mofa} s for MOFA+ ({rel(SHAPE)})"


def value_speed_summary() -> str:
    """Every method's time to a trained model per cohort (speed_train.json)."""
    by = _speed_rows(SPEED)
    datasets = list(by)
    parts = []
    for method in ("POEMS", "MOFA+", "MOFA-FLEX", "PCA"):
        times = [f"{_seconds(r['wall_s'] for r in by[d][method])} s" for d in datasets if method in by[d]]
        parts.append(f"{' and '.join(times)} for {method}")
    seeds = sorted({r["seed"] for r in load(SPEED)["rows"]})
    return (
        f"on {' and '.join(datasets)}: " + ", ".join(parts) + f" ({rel(SPEED)}, seeds {seeds_text(seeds)}, one CPU "
        "thread)"
    )


def value_epoch_saving() -> str:
    """How much shorter an epoch with the kept factors is than one with all 32 (speed_train.json)."""
    by = _speed_rows(SPEED)
    parts = []
    for dataset, methods in by.items():
        rs = methods["POEMS"]
        kept = mean(r["epoch_s_kept"] for r in rs)
        full = mean(r["epoch_s_all"] for r in rs)
        parts.append(f"{percent(1 - kept / full, 0)} on {dataset}")
    return "shorter by " + " and ".join(parts) + f" ({rel(SPEED)})"


# ---------------------------------------------------------------------------------------------------- other figures
def table_figures() -> list[str]:
    """The other measured figures the README quotes, each with its file and seeds."""
    lines = ["| what | figure | seeds | results file |", "|---|---|---|---|"]

    ps = load("planted_sparse.json")["records"]
    ratio = [r["noise_contribution_ratio"] for r in ps]
    lines += [
        f"| planted sparse structure (K = 32, 4 true factors, a near-noise third modality): grouped AUROC of \\|W\\| "
        f"against the planted links | {pm(r['grouped_auroc'] for r in ps)} | {len(ps)} | "
        f"{rel('planted_sparse.json')} |",
        f"| the near-noise modality's effective contribution, relative to the next lowest | "
        f"{pm(ratio, '.2f')} ({min(ratio):.2f}–{max(ratio):.2f}) | {len(ps)} | {rel('planted_sparse.json')} |",
    ]

    en = load("enrichment_planted.json")
    eff = [r for r in en["enrichment"] if r["loadings"] == "effective"]
    first_mod = eff[0]["modality"]
    kept = [r["n_active"] for r in eff if r["modality"] == first_mod]
    n_true = [r["n_true_with_active"] for r in eff]
    hits = round(sum(r["top1"] * t for r, t in zip(eff, n_true, strict=True)))
    right = all(r["direction"] == 1.0 for r in eff)
    fpr = [r["decoy_fpr"] for r in eff]
    br = load("enrichment_breast.json")
    br_fpr = [r["decoy_fpr"] for r in br["enrichment_decoys"]]
    repro = en["stability"]["matched_reproducibility"]
    br_repro = br["active_reproducibility"]
    stable = [k for k, v in br_repro.items() if v >= 0.8]
    lines += [
        f"| enrichment on planted data (4 true factors, K = 32): factors kept per data seed | "
        f"{', '.join(map(str, kept))} | {len(kept)} | {rel('enrichment_planted.json')} |",
        f"| true factors whose best set is one of their two planted sets (effective loadings) | {hits} of "
        f"{sum(n_true)}{', all with the right direction' if right else ''} | {len(kept)} | "
        f"{rel('enrichment_planted.json')} |",
        f"| decoy sets reaching q < 0.05 (effective loadings) | {percent(mean(fpr))} of the tests (at most "
        f"{percent(max(fpr))} in a run; breast_tcga at most {percent(max(br_fpr))}) | {len(kept)} | "
        f"{rel('enrichment_planted.json')}, "
        f"{rel('enrichment_breast.json')} |",
        f"| top loaders found in ≥ 80 % of the runs in the factors matched to true ones, and the share of them that "
        f"are planted features of that factor | {en['stability']['n_stable_features_in_matched']}, "
        f"{percent(en['stability']['stable_features_planted_share'], 0)} | {len(en['settings']['seeds'])} | "
        f"{rel('enrichment_planted.json')} |",
        f"| reproducibility of the matched factors across seeds | {min(repro):.2f}–{max(repro):.2f} | "
        f"{len(en['settings']['seeds'])} | {rel('enrichment_planted.json')} |",
        f"| breast_tcga: factors of the first run that come back at reproducibility ≥ 0.8 in the other runs | "
        f"{len(stable)} of {len(br_repro)} ({', '.join(stable)}) | {len(br['settings']['seeds'])} | "
        f"{rel('enrichment_breast.json')} |",
    ]

    rf = load("refine_planted.json")["records"]
    ahead = sum(r["auprc_refined"] > r["auprc_abs_rho"] for r in rf)
    lines += [
        f"| association graph on planted links: AUPRC of `tl.refine_associations` against raw \\|rho\\| | "
        f"{mean(r['auprc_refined'] for r in rf):.3f} against {mean(r['auprc_abs_rho'] for r in rf):.3f} (ahead on "
        f"{ahead} of {len(rf)} seeds) | {len(rf)} | {rel('refine_planted.json')} |",
        f"| new pairs it proposes that are true links | {new_pairs_cell(rf)} | {len(rf)} | "
        f"{rel('refine_planted.json')} |",
    ]

    sf = [r for r in load("scale_features.json") if r["impl"] == "poems" and r["status"] == "ok"]
    big = max(sf, key=lambda r: sum(r["dims"]))
    brca = [r for r in load("scale_brca.json") if r["status"] == "ok"]
    ratios = []
    for batch in sorted({r["batch"] for r in brca}):
        pairs = {}
        for r in brca:
            if r["batch"] == batch:
                pairs.setdefault(r["rep"], {})[r["impl"]] = r["s_per_epoch"]
        speedup = statistics.median(p["paper"] / p["poems"] for p in pairs.values())
        ratios.append(f"{speedup:.1f}× (batch {batch})")
    reps = len({r.get("rep") for r in brca})
    lines += [
        f"| peak memory (RSS) training {sum(big['dims']):,} features, CPU | {big['peak_rss_mb'] / 1000:.1f} GB | 1 | "
        f"{rel('scale_features.json')} |",
        f"| per epoch at BRCA size, POEMS's decoder against the paper's vectorised one | faster by "
        f"{' and '.join(ratios)} (median over back-to-back pairs) | {reps} repetitions | {rel('scale_brca.json')} |",
    ]
    return lines


#: block name → renderer: tables (``<!-- table: NAME ... -->``) return lines, values (``<!-- value: NAME -->``) text
BLOCKS: dict[str, Callable] = {
    "subtyping": table_subtyping,
    "factors": table_factors,
    "train_defaults": table_train_defaults,
    "imputation": table_imputation,
    "speed": table_speed,
    "figures": table_figures,
    "gating": value_gating,
    "leaders": value_leaders,
    "gating_vs_fixed": value_gating_vs_fixed,
    "sparse_vs_dense": value_sparse_vs_dense,
    "impute_r": value_impute_r,
    "dropout_effect": value_dropout_effect,
    "penalty_cost": value_penalty_cost,
    "nmi_spread": value_nmi_spread,
    "coverage": value_coverage,
    "train_time": value_train_time,
    "speed_summary": value_speed_summary,
    "epoch_saving": value_epoch_saving,
    "shape_time": value_shape_time,
    "feature_sets": table_feature_sets,
    "feature_sets_breast": table_feature_sets_breast,
    "structures": table_structures,
    "structures_summary": value_structures,
    "factor_start": table_factor_start,
    "factor_start_planted": table_factor_start_planted,
    "factor_start_summary": value_factor_start,
    "factor_start_subtyping": value_factor_start_subtyping,
}


def render(text: str, cache: dict | None = None) -> str:
    """``text`` with every generated block replaced by what the results files give."""
    cache = {} if cache is None else cache

    def block(name: str):
        if name not in BLOCKS:
            raise KeyError(f"unknown generated block {name!r} (known: {', '.join(BLOCKS)})")
        if name not in cache:
            cache[name] = BLOCKS[name]()
        return cache[name]

    def table(m: re.Match) -> str:
        lines = block(m["name"])
        if isinstance(lines, str):
            raise ValueError(f"{m['name']!r} is a value: use <!-- value: {m['name']} -->")
        return m["open"] + "\n".join(lines) + "\n" + m["close"]

    def value(m: re.Match) -> str:
        text = block(m["name"])
        if not isinstance(text, str):
            raise ValueError(f"{m['name']!r} is a table: use <!-- table: {m['name']} (benchmarks/tables.py) -->")
        return m["open"] + text + m["close"]

    return VALUE.sub(value, TABLE.sub(table, text))


def stray_numbers(text: str) -> list[str]:
    """Lines of the README's results section with a hand-written measured number outside the generated blocks."""
    start = text.find(README_SECTION[0])
    if start < 0:
        return []
    end = text.find(README_SECTION[1], start + len(README_SECTION[0]))
    section = text[start : end if end > 0 else len(text)]
    return [line for line in _outside_blocks(section) if STRAY.search(line)]


def _outside_blocks(text: str) -> list[str]:
    """The lines of ``text`` without its generated blocks and code spans."""
    text = VALUE.sub("", TABLE.sub("", text))
    return [re.sub(r"`[^`]*`", "", line) for line in text.splitlines()]


def values_at_line_start(text: str) -> list[str]:
    """The value markers that open a line: CommonMark (GitHub, MyST) reads such a line as raw HTML, not text."""
    return [m["name"] for m in VALUE.finditer(text) if not text[text.rfind("\n", 0, m.start()) + 1 : m.start()].strip()]


def hand_quotes(text: str) -> list[tuple[str, str]]:
    """``(quantity, line)`` for each quote of a :data:`QUOTES` quantity written by hand (outside the blocks)."""
    return [(q, line) for line in _outside_blocks(text) for q, pattern in QUOTES.items() if pattern.search(line)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff if a page differs")
    parser.add_argument("--show", metavar="NAME", help="print one block")
    parser.add_argument("--list", action="store_true", help="the names of the blocks and the pages that use them")
    args = parser.parse_args(argv)
    if args.show:
        out = BLOCKS[args.show]()
        print(out if isinstance(out, str) else "\n".join(out))
        return 0
    cache: dict = {}
    failed = False
    for page in PAGES:
        path = ROOT / page
        if not path.exists():
            continue
        text = path.read_text()
        if args.list:
            names = [m["name"] for m in TABLE.finditer(text)] + [m["name"] for m in VALUE.finditer(text)]
            if names:
                print(f"{page}: {', '.join(names)}")
            continue
        new = render(text, cache)
        if page == "README.md":
            for line in stray_numbers(new):
                failed = True
                print(f"{page}: a measured number outside a generated block: {line.strip()}", file=sys.stderr)
        for name in values_at_line_start(new):
            failed = True
            print(f"{page}: <!-- value: {name} --> opens a line (it would render as raw HTML)", file=sys.stderr)
        for quantity, line in hand_quotes(new):
            failed = True
            print(f"{page}: {quantity} quoted outside its generated block: {line.strip()}", file=sys.stderr)
        if new == text:
            continue
        if args.check:
            failed = True
            sys.stdout.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    new.splitlines(keepends=True),
                    f"{page} (as written)",
                    f"{page} (from benchmarks/results)",
                )
            )
        else:
            path.write_text(new)
            print(f"rewrote the generated blocks of {page}")
    if failed and args.check:
        print("\nThe pages differ from benchmarks/results: run `python benchmarks/tables.py`.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
