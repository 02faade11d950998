"""The generated blocks on how many factors there are and whether they and the clusters come back from seed to seed
(``benchmarks/tables.py``): the k-means structures of breast_tcga's embeddings, the deterministic starts of the free
factors, and when the spike-and-slab prior starts to act."""

from __future__ import annotations

from _tables_common import RESULTS, failed_conditions, load, mean, pm, rel, seeds_text, subtyping_values

STRUCTURES = "subtyping_structures.json"
START = "factor_start.json"
ABLATIONS = "factor_start_ablations.json"
SUBTYPING_START = "subtyping_factor_start.json"
METHODS = ("PCA", "MOFA+", "MOFA-FLEX", "POEMS")
#: a structure whose inertia is within this share of the best one's is "near" it
NEAR = 0.01


def _runs(method: str) -> list[dict]:
    return [r for r in load(STRUCTURES)["runs"] if r["method"] == method]


def _subtype_structure(run: dict) -> tuple[int, dict]:
    """The position and record of the structure that scores highest against the subtypes."""
    return max(enumerate(run["structures"]), key=lambda it: it[1]["nmi"])


def _cka(method: str) -> float | None:
    pairs = [p["cka"] for p in load(STRUCTURES)["pairs"] if p["method"] == method]
    return mean(pairs) if pairs else None


def _seeds() -> str:
    return seeds_text(load(STRUCTURES)["settings"]["seeds"])


def table_structures() -> list[str]:
    """Per method: how many structures lie near the best partition, and whether the subtype structure is the best."""
    st = load(STRUCTURES)["settings"]
    lines = [
        f"From {rel(STRUCTURES)} (`benchmarks/accuracy/subtyping_structures.py`): breast_tcga, each method fitted on "
        f"the paper's train split and all samples embedded (as for the subtyping table), training seeds {_seeds()} "
        f"(PCA once). k-means with {st['n_clusters']} clusters, {st['n_starts']} single starts per embedding; a "
        f"*structure* is a partition with ARI < {st['same_structure']} to every better one. *Near*: structures whose "
        f"inertia is within {NEAR:.0%} of the best partition's. *Subtype structure*: of the structures found, the one "
        "with the highest NMI against PAM50 (the labels name it; they choose nothing). *NMI scored*: "
        "`tl.evaluate_subtyping`'s k-means (n_init=10), per run. *CKA*: linear CKA between the embeddings of two "
        "training seeds, mean over pairs.",
        "",
        "| method | runs | near structures per run | subtype structure: NMI | its inertia gap | runs where it is the "
        "best | NMI scored | CKA between seeds |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method in METHODS:
        runs = _runs(method)
        if not runs:
            continue
        near = [sum(t["gap"] <= NEAR for t in r["structures"]) for r in runs]
        top = [_subtype_structure(r) for r in runs]
        scored = [r["nmi_scored"] for r in runs]
        cka = _cka(method)
        lines.append(
            f"| {method} | {len(runs)} | {', '.join(map(str, near))} | {pm([t['nmi'] for _, t in top], '.2f')} | "
            + ", ".join(f"{100 * t['gap']:+.2f} %" for _, t in top)
            + f" | {sum(i == 0 for i, _ in top)} of {len(runs)} | "
            + ", ".join(f"{x:.2f}" for x in scored)
            + f" | {'—' if cka is None else format(cka, '.2f')} |"
        )
    return lines


def value_structures() -> str:
    """One sentence: a second partition near the best one, how often the subtype structure wins, per method."""
    runs = [r for m in METHODS for r in _runs(m)]
    second = sum(len(r["structures"]) > 1 and r["structures"][1]["gap"] <= NEAR for r in runs)
    top = [_subtype_structure(r)[1] for r in runs]
    wins = []
    for method in METHODS[1:]:
        n = sum(_subtype_structure(r)[0] == 0 for r in _runs(method))
        wins.append(f"{n} of {len(_runs(method))} {method} runs")
    pca = "" if any(_subtype_structure(r)[0] == 0 for r in _runs("PCA")) else " and not in the PCA embedding"
    cka = ", ".join(f"{_cka(m):.2f} for {m}" for m in METHODS if _cka(m) is not None)
    return (
        f"in {second} of the {len(runs)} embeddings (every method, every training seed) 3-cluster k-means has a "
        f"second partition within {100 * NEAR:.0f} % of the lowest inertia; of the partitions found, the one "
        f"closest to the subtypes (NMI "
        f"{min(t['nmi'] for t in top):.2f}–{max(t['nmi'] for t in top):.2f}) is the lowest in {', '.join(wins)}{pca} "
        f"(up to {100 * max(t['gap'] for t in top):.1f} % above it otherwise), while the runs of one method learn "
        f"nearly the same space (linear CKA between seeds {cka}; {rel(STRUCTURES)}, training seeds {_seeds()})"
    )


def _start_files() -> list[dict]:
    files = [load(START)]
    if (RESULTS / ABLATIONS).exists():
        files.append(load(ABLATIONS))
    return files


def table_factor_start() -> list[str]:
    """The free factors' PCA start against the random one (and its ablations) on the bundled cohorts."""
    files = _start_files()
    seeds = sorted({r["seed"] for f in files for r in f["runs"] if r["data"] in ("breast_tcga", "rosmap")})
    lines = [
        f"From {rel(START)} and {rel(ABLATIONS)} (`benchmarks/tuning/factor_start.py`, with `--ablations`): every "
        f"sample, training seeds {seeds_text(seeds)}, each seed its own validation split; mean ± SD over seeds. "
        "*reproducibility*: of the kept factors over the seeds (`tl.factor_stability`); *held-out*: the per-sample "
        "criterion of the validation samples (lower is better); NMI (k-means) and KNN accuracy against the labels are "
        'reported, nothing is chosen with them. *pca*: `factor_start="pca"`, the default; *random*: '
        '`factor_start="random"`; the ablations change one of the PCA start\'s choices. *s per fit*: set-up and '
        "training on one thread, while other benchmarks used the machine's other core; the ablations ran at another "
        "time than the two starts: compare epochs rather than seconds.",
        "",
        "| data | start | factors kept | reproducibility | held-out | epochs | s per fit | k-means NMI | KNN |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for data in ("breast_tcga", "rosmap"):
        for f in files:
            repro = {(r["start"], r["data"]): r["value"] for r in f["reproducibility"]}
            for name in f["starts"]:
                b = [r for r in f["runs"] if r["start"] == name and r["data"] == data]
                if not b:
                    continue
                kept = [r["kept"] for r in b]
                cells = [
                    f"{mean(kept):.1f} ({min(kept)}–{max(kept)})",
                    f"{repro[(name, data)]:.2f}",
                    pm([r["elbo"] for r in b], ".1f"),
                    f"{mean([r['epochs'] for r in b]):.0f}",
                    f"{mean([r['wall_s'] for r in b]):.1f}",
                    pm([r["nmi"] for r in b]),
                    pm([r["knn"] for r in b]),
                ]
                lines.append(f"| {data} | {name} | " + " | ".join(cells) + " |")
    return lines


def table_factor_start_planted() -> list[str]:
    """The same starts on planted data: the counts, the supports and the small cohort with weak links."""
    files = _start_files()
    lines = [
        f"From {rel(START)} and {rel(ABLATIONS)}: the planted data of `accuracy/factors.py` (4 and 8 correlated, "
        "cluster-structured factors, a near-noise modality, 15 % of samples missing one; data seed = training seed "
        "0–4; goals: kept within [true, true + 2], grouped AUROC ≥ 0.95, reproducibility ≥ 0.8 on data seed 0) and the "
        "small cohort with weak links of `tuning/factor_penalty_small.py` (150 samples, 6 factors, data seeds 0–2). "
        "*worst \\|corr\\|*: the best |corr| of the least recovered true factor, mean over seeds; *factors*: those "
        "kept (a model that ends with every link at 0 prunes none, and warns).",
        "",
        "| start | 4 factors: kept | AUROC | worst \\|corr\\| | repr. | 8 factors: kept | AUROC | worst \\|corr\\| "
        "| repr. | small, weak: AUROC | factors |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in files:
        repro = {(r["start"], r["data"]): r["value"] for r in f["reproducibility"]}
        for name in f["starts"]:
            cells = []
            for k in (4, 8):
                p = [r for r in f["runs"] if r["start"] == name and r["data"] == f"planted, {k} factors"]
                cells += [
                    ", ".join(str(r["kept"]) for r in p),
                    f"{mean([r['grouped_auroc'] for r in p]):.3f}",
                    f"{mean([r['min_corr'] for r in p]):.2f}",
                    f"{repro[(name, f'planted, {k} factors')]:.2f}",
                ]
            small = [r for r in f["runs"] if r["start"] == name and r["data"] == "small, weak links"]
            cells += (
                [", ".join(f"{r['grouped_auroc']:.2f}" for r in small), ", ".join(str(r["factors"]) for r in small)]
                if small
                else ["—", "—"]
            )
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def value_factor_start() -> str:
    """One sentence: the PCA start (the default) against the random start, on every data set measured."""
    f = load(START)
    repro = {(r["start"], r["data"]): r["value"] for r in f["reproducibility"]}

    def runs(name, data):
        return [r for r in f["runs"] if r["start"] == name and r["data"] == data]

    parts = []
    for data in ("breast_tcga", "rosmap"):
        a, b = runs("random", data), runs("pca", data)
        parts.append(
            f"on {data} the kept factors' reproducibility is {repro[('pca', data)]:.2f} against "
            f"{repro[('random', data)]:.2f}, the held-out criterion {mean([r['elbo'] for r in b]):.1f} against "
            f"{mean([r['elbo'] for r in a]):.1f} (lower is better), the factors kept "
            f"{mean([r['kept'] for r in b]):.1f} against {mean([r['kept'] for r in a]):.1f}, and training stops after "
            f"{mean([r['epochs'] for r in b]):.0f} epochs against {mean([r['epochs'] for r in a]):.0f}"
        )
    small = {n: runs(n, "small, weak links") for n in ("random", "pca")}
    parts.append(
        "on a small cohort with weak links the grouped AUROC is "
        + " / ".join(f"{r['grouped_auroc']:.2f}" for r in small["pca"])
        + " against "
        + " / ".join(f"{r['grouped_auroc']:.2f}" for r in small["random"])
    )
    seeds = seeds_text(sorted({r["seed"] for r in f["runs"] if r["data"] == "breast_tcga"}))
    return "; ".join(parts) + f" ({rel(START)}, training seeds {seeds})"


def value_factor_start_subtyping() -> str:
    """The default POEMS (PCA start) of the subtyping table against the random start, under the same protocol."""
    parts = []
    for dataset in ("breast_tcga", "rosmap"):
        cells = []
        for metric, label in (("kmeans_nmi", "k-means NMI"), ("knn_accuracy", "KNN accuracy")):
            for scope in ("all", "test"):
                new = subtyping_values("subtyping.json", dataset, "POEMS", scope, metric)
                old = subtyping_values(SUBTYPING_START, dataset, "POEMS (random start)", scope, metric)
                cells.append(f"{label} {scope} {pm(new)} against {pm(old)}")
        parts.append(f"{dataset}: " + ", ".join(cells))
    seeds = sorted({r["train_seed"] for r in load(SUBTYPING_START)["runs"]})
    return (
        "; ".join(parts)
        + f" ({rel('subtyping.json')} against {rel(SUBTYPING_START)}, the paper's split, training seeds "
        + f"{seeds_text(seeds)})"
    )


ONSET = "sparsity_onset.json"


def table_sparsity_onset() -> list[str]:
    """Per onset of the prior and cohort: factors kept, slab share and epoch of the restored state, the test
    criterion against the default onset, the planted counts and the rule's conditions."""
    data = load(ONSET)
    st = data["settings"]
    lines = [
        f"From {rel(ONSET)} (`benchmarks/tuning/sparsity_onset.py`): the package's schedule and prior, the sparsity "
        f"warm-up shortened (the KL warm-up stays {st['schedule']['n_epochs_kl_warmup']} epochs, and with it the "
        f"first epoch the best state may come from), seeds {seeds_text(st['seeds'])}, means over seeds. *Test*: "
        "held-out criterion of the 20 % of samples that training never saw (lower is better), paired against the "
        "default seed by seed (on how many seeds it is lower); *slab*: share of W's entries with p\\* > 0.5 at the "
        "restored state; *restored*: its epoch. *Meets*: the conditions of `train_schedule.py`'s rule, with the "
        "default onset as the base. No label is used.",
        "",
        "| onset | data | factors kept | slab | restored | test (paired, lower on) | CKA | planted kept (4 / 8) | "
        "meets |",
        "|---" * 9 + "|",
    ]
    for r in data["summary"]:
        planted = " / ".join(f"{mean(r[f'planted {k}: kept']):.1f}" for k in (4, 8))
        failed = failed_conditions(r)
        meets = "all" if not failed else "not " + ", ".join(failed)
        for i, dataset in enumerate(("breast_tcga", "rosmap")):
            head = f"| {r['schedule']} |" if i == 0 else "| |"
            paired = (
                "–"
                if r["schedule"] == st["base"]
                else f"{r[f'{dataset}: test diff']:+.1f}, {r[f'{dataset}: better on']}"
            )
            tail = f"{planted} | {meets} |" if i == 0 else " | |"
            lines.append(
                f"{head} {dataset} | {r[f'{dataset}: kept']:.1f} | {r[f'{dataset}: slab']:.3f} | "
                f"{r[f'{dataset}: best epoch']:.0f} | {r[f'{dataset}: test']:.1f} ({paired}) | "
                f"{r[f'{dataset}: cka']:.3f} | {tail}"
            )
    return lines


def value_sparsity_onset() -> str:
    """One sentence: the default's restored epoch on breast_tcga, and what the earlier onsets cost and keep."""
    data = load(ONSET)
    base, *earlier = data["summary"]
    st = data["settings"]
    restored = sorted(
        {r["best_epoch"] for r in data["records"] if r["data"] == "breast_tcga" and r["onset"] == st["onsets"][0]}
    )
    onsets = " / ".join(str(o) for o in st["onsets"][1:])
    parts = [
        f"{dataset} from {base[f'{dataset}: kept']:.1f} to "
        + " / ".join(f"{r[f'{dataset}: kept']:.1f}" for r in earlier)
        + " at a test criterion "
        + " / ".join(f"{r[f'{dataset}: test diff']:+.1f}" for r in earlier)
        + " per sample (lower on "
        + " / ".join(r[f"{dataset}: better on"].split(" of ")[0] for r in earlier)
        + f" of {len(st['seeds'])} seeds)"
        for dataset in ("breast_tcga", "rosmap")
    ]
    lost = [o for o, r in zip(st["onsets"][1:], earlier, strict=True) if not r["in_range"]]
    span = str(restored[0]) if len(restored) == 1 else f"{restored[0]}–{restored[-1]}"
    return (
        f"at the default the restored state of breast_tcga is that of epoch {span}, right after the "
        f"{st['schedule']['n_epochs_kl_warmup']}-epoch warm-up, "
        f"on every seed, with {base['breast_tcga: slab']:.3f} of W's entries in the slab; starting the prior at epoch "
        f"{onsets} instead of {st['onsets'][0]} takes the factors kept on "
        + " and on ".join(parts)
        + f", breast_tcga's slab share to {max(r['breast_tcga: slab'] for r in earlier):.3f}"
        + (f", and the planted counts out of range when it starts at epoch {max(lost)} or earlier" if lost else "")
        + f" ({rel(ONSET)}, seeds {seeds_text(st['seeds'])})"
    )
