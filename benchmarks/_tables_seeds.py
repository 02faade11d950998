"""The generated blocks of the benchmarks about what moves with the training seed (``benchmarks/tables.py``): what in
a seed and in training moves a run (``seed_sources.json``), the encoders' dropout under the training schedule's rule
(``dropout.json``), and the consensus of several runs (``consensus.json``: its table and the sentence that the README
and the model page quote)."""

from __future__ import annotations

from _tables_common import failed_conditions, kept_origin, load, rel, seeds_text

CONSENSUS = "consensus.json"
SOURCES = "seed_sources.json"
SCHEDULE = "train_schedule.json"  # its grid names the schedule variants of seed_sources.py
DROPOUT = "dropout.json"
COLUMNS = (
    ("kmeans_nmi", "all", "NMI, all"),
    ("kmeans_nmi", "test", "NMI, test"),
    ("knn_accuracy", "all", "KNN, all"),
    ("knn_accuracy", "test", "KNN, test"),
)


def _cell(row: dict, metric: str, scope: str) -> str:
    value = row[f"{metric}_{scope}"]
    return f"{value['mean']:.3f} ± {value['sd']:.3f}"


def _seeds(data: dict) -> str:
    st = data["settings"]
    return f"0–{max(st['sizes']) * st['groups'] - 1}"


def table_consensus() -> list[str]:
    """Per data set, method and number of runs: agreement between consensuses, time, and the scores."""
    data = load(CONSENSUS)
    st = data["settings"]
    lines = [
        f"From {rel(CONSENSUS)} (`benchmarks/accuracy/consensus.py`): the paper's split, each method fitted on the "
        f"train split with training seeds {_seeds(data)}, every sample embedded; for each number of runs R, "
        f"{st['groups']} groups of R runs with disjoint seeds, one consensus per group (R = 1: single runs). "
        "*Agreement*: the mean ARI between the groups' k-means partitions of all samples (no label); *CKA*: between "
        "the groups' embeddings of the train samples; *seconds*: the R fits on one thread (training and embedding). "
        "NMI (k-means) and KNN accuracy against the labels, mean ± SD over the groups, are reported, nothing is "
        "chosen with them."
        + kept_origin(data, list(dict.fromkeys(m for rows in data["results"].values() for m in rows))),
        "",
        "| data | method | runs | agreement | CKA | seconds | " + " | ".join(c[2] for c in COLUMNS) + " |",
        "|---" * (6 + len(COLUMNS)) + "|",
    ]
    for dataset, methods in data["results"].items():
        for method, rows in methods.items():
            for row in rows:
                cells = [_cell(row, metric, scope) for metric, scope, _ in COLUMNS]
                lines.append(
                    f"| {dataset} | {method} | {row['runs']} | {row['ari_between']:.2f} | {row['cka_between']:.3f} | "
                    f"{row['seconds']:.1f} | " + " | ".join(cells) + " |"
                )
    return lines


def value_consensus() -> str:
    """One sentence: the breast_tcga NMI spread of single POEMS runs against consensuses of the chosen size."""
    data = load(CONSENSUS)
    chosen = data["chosen_runs"]
    rows = {r["runs"]: r for r in data["results"]["breast_tcga"]["POEMS"]}
    single, best = rows[1], rows[chosen or max(rows)]
    groups = data["settings"]["groups"]
    return (
        f"the all-sample k-means NMI of POEMS on breast_tcga has SD {single['kmeans_nmi_all']['sd']:.3f} over single "
        f"runs and {best['kmeans_nmi_all']['sd']:.3f} over consensuses of {best['runs']} runs (mean "
        f"{single['kmeans_nmi_all']['mean']:.3f} and {best['kmeans_nmi_all']['mean']:.3f}), and the consensuses of "
        f"disjoint runs agree on their k-means partition with ARI {best['ari_between']:.2f} against "
        f"{single['ari_between']:.2f} between single runs ({groups} groups each, training seeds {_seeds(data)}, "
        f"{rel(CONSENSUS)})"
    )


def table_seed_sources() -> list[str]:
    """Per data set and variant: agreement between seeds, factors kept, held-out criterion, cost and NMI."""
    data = load(SOURCES)
    n = data["settings"]["seeds"]
    lines = [
        f"From {rel(SOURCES)} (`benchmarks/accuracy/seed_sources.py`): the paper's split, POEMS trained on the fit "
        f"part with early stopping on the fixed validation part, training seeds 0–{n - 1} per variant, every sample "
        "embedded. *default*: the seed draws the networks' initial weights and the training noise (minibatch order, "
        "dropout masks, reparameterisation noise); *fixed init*: built under seed 0, trained under the seed; *fixed "
        "training noise*: built under the seed, trained under seed 0; the other rows change one training setting, the "
        'last two are schedules of `train_schedule.py`\'s grid (model page, "The training schedule"). '
        "*CKA* and *agreement* (ARI of the k-means partitions of all samples): mean over pairs of seeds, no label; "
        "*held-out*: best per-sample criterion on the same validation samples throughout (lower is better); *train "
        "s*: one thread, beside whatever else ran on the machine, so compare within the table only. NMI (k-means, "
        "all samples) against the labels, mean ± SD over seeds, is reported; nothing is chosen with it.",
        "",
        "| data | variant | CKA | agreement | factors kept | held-out | epochs | train s | NMI, all |",
        "|---" * 9 + "|",
    ]
    for dataset, variants in data["results"].items():
        for name, r in variants.items():
            lines.append(
                f"| {dataset} | {name} | {r['cka']:.3f} | {r['ari']:.2f} | {r['kept']['mean']:.1f} ± "
                f"{r['kept']['sd']:.1f} | {r['criterion']['mean']:.1f} ± {r['criterion']['sd']:.1f} | "
                f"{r['epochs']['mean']:.0f} | {r['train_s']['mean']:.1f} | {r['nmi_all']['mean']:.3f} ± "
                f"{r['nmi_all']['sd']:.3f} |"
            )
    return lines


def value_batch_count() -> str:
    """One sentence: the factors kept and the held-out criterion at three minibatch sizes, on both cohorts."""
    data = load(SOURCES)
    rows = {"64": "batch 64", "128": "batch 128", "1024 (the default)": "default"}
    parts = []
    for dataset, variants in data["results"].items():
        kept = " / ".join(f"{variants[v]['kept']['mean']:.1f}" for v in rows.values())
        held = " / ".join(f"{variants[v]['criterion']['mean']:.1f}" for v in rows.values())
        parts.append(f"{dataset} {kept} factors (held-out {held})")
    return (
        f"with minibatches of {' / '.join(rows)} samples the model keeps {'; '.join(parts)} (trained on the fit part "
        f"of the paper's split, fewer samples than the factor counts above, training seeds "
        f"0–{data['settings']['seeds'] - 1}, {rel(SOURCES)})"
    )


def value_consensus_kmeans() -> str:
    """One sentence: how much of the NMI's spread over consensuses k-means's own seed makes on one embedding."""
    data = load(CONSENSUS)
    chosen = data["chosen_runs"]
    rows = {r["runs"]: r for r in data["results"]["breast_tcga"]["POEMS"]}
    single, best = rows[1]["kmeans_nmi_all"], rows[chosen or max(rows)]["kmeans_nmi_all"]
    lowest = best["per_evaluation_seed"][min(range(len(best["values"])), key=best["values"].__getitem__)]
    return (
        f"on one and the same consensus of {chosen or max(rows)} runs, the protocol's {len(lowest)} k-means seeds "
        f"(`random_state`, 10 starts each) give NMIs with SD {best['sd_within']:.3f} on average over the groups "
        f"(between the groups' means: {best['sd']:.3f}); the consensus with the lowest mean scores "
        f"{min(lowest):.2f}–{max(lowest):.2f} over its own k-means seeds. For single runs the same two SDs are "
        f"{single['sd_within']:.3f} within a run and {single['sd']:.3f} between runs ({rel(CONSENSUS)})"
    )


def value_schedule_seeds() -> str:
    """One sentence: agreement between seeds, held-out fit and NMI spread of the variants that are schedules of
    ``train_schedule.py``'s grid, against the default, on both cohorts."""
    data = load(SOURCES)
    grid = load(SCHEDULE)["settings"]["schedules"]
    names = [v for v in data["settings"]["variants"] if v in grid and v != "default"]

    def cells(r: dict) -> str:
        return f"{r['ari']:.2f} / {r['cka']:.3f} / {r['criterion']['mean']:.1f} / {r['nmi_all']['sd']:.3f}"

    parts = []
    for dataset, variants in data["results"].items():
        runs = " and ".join(f"{cells(variants[n])} with `{n}`" for n in names)
        parts.append(f"on {dataset} {cells(variants['default'])} at the default, {runs}")
    return (
        "the ARI between the runs' k-means partitions / the CKA between their embeddings / the held-out criterion "
        f"/ the scored NMI's SD over seeds are {'; '.join(parts)} (the paper's split, training seeds "
        f"0–{data['settings']['seeds'] - 1}, {rel(SOURCES)})"
    )


def value_dropout() -> str:
    """One sentence: the test criterion, the seeds' agreement (CKA, partitions) and the scored NMI's spread at each
    dropout rate on both cohorts, the conditions the lower rates fail, and the rule's choice."""
    data = load(DROPOUT)
    st = data["settings"]
    rows = data["summary"]
    parts = {(p["schedule"], p["data"]): p for p in data["partitions"]}
    chosen = next(
        (f"{rate:g}" for rate, r in zip(st["rates"], rows, strict=True) if r["schedule"] == data["chosen"]), "none"
    )

    def seq(values, fmt: str) -> str:
        return " / ".join(format(v, fmt) for v in values)

    def per_cohort(dataset: str) -> str:
        scores = [parts[(r["schedule"], dataset)] for r in rows]
        lower = seq((r[f"{dataset}: better on"].split(" of ")[0] for r in rows[1:]), "s")
        return (
            f"{dataset}'s test criterion is {seq((r[f'{dataset}: test'] for r in rows), '.1f')} per sample (the "
            f"lower rates' below the default's on {lower} of {len(st['seeds'])} seeds), the CKA between seeds "
            f"{seq((r[f'{dataset}: cka'] for r in rows), '.3f')}, the ARI between the seeds' k-means partitions "
            f"{seq((p['agreement'] for p in scores), '.2f')} and the scored NMI's SD over seeds "
            f"{seq((p['nmi_sd'] for p in scores), '.3f')}"
        )

    failed = "; ".join(
        f"{rate:g}: {', '.join(failed_conditions(r))}"
        for rate, r in zip(st["rates"], rows, strict=True)
        if failed_conditions(r)
    )
    return (
        f"at dropout {seq(st['rates'], 'g')} "
        + "; ".join(per_cohort(d) for d in ("breast_tcga", "rosmap"))
        + (f"; the lower rates fail the rule's conditions ({failed})" if failed else "")
        + f", and the rule keeps {chosen} ({rel(DROPOUT)}, `train_schedule.py`'s protocol: a "
        f"split drawn per seed, seeds {seeds_text(st['seeds'])}){_same_schedule_elsewhere(data, rows[0])}"
    )


def _same_schedule_elsewhere(data: dict, base: dict) -> str:
    """A clause comparing ``dropout.json``'s default arm with the same schedule's row of ``train_schedule.json`` when
    the two ran on different kinds of CPU (whose arithmetic differs in the last bits)."""
    schedule = load(SCHEDULE)
    cpu, other = data["provenance"]["machine"]["cpu"], schedule["provenance"]["machine"]["cpu"]
    name = next(n for n, v in schedule["settings"]["schedules"].items() if v == data["settings"]["schedule"])
    row = next(r for r in schedule["summary"] if r["schedule"] == name)
    if cpu == other:
        return ""
    gaps = " and ".join(f"{abs(base[f'{d}: test'] - row[f'{d}: test']):.2f}" for d in ("breast_tcga", "rosmap"))
    kept = all(base[f"{d}: kept"] == row[f"{d}: kept"] for d in ("breast_tcga", "rosmap"))
    return (
        f". Its default arm is the default row of {rel(SCHEDULE)}, run on an {cpu} where that one ran on an {other}: "
        f"the test criteria differ by {gaps} per sample, the factors kept {'not at all' if kept else 'too'}; compare "
        "within one run"
    )
