"""The generated blocks of the subtyping benchmark (``benchmarks/tables.py``): its table, and the sentences that
compare methods, the gate and the decoder in it (``subtyping.json``)."""

from __future__ import annotations

from _tables_common import commit_of, load, mean, pm, rel, sd, seeds_text, subtyping_cell, subtyping_values

METHOD_ORDER = ("PCA", "MOFA+", "MOFA-FLEX", "POEMS", "POEMS (fixed gating)", "POEM (dense decoder)")
ABLATIONS = ("POEMS (fixed gating)", "POEM (dense decoder)")


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
