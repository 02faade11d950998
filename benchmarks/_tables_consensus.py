"""The generated blocks of the consensus benchmark (``benchmarks/tables.py``): its table and the sentence that the
README and the model page quote (``consensus.json``)."""

from __future__ import annotations

from _tables_common import load, rel

CONSENSUS = "consensus.json"
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
        "chosen with them.",
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
