"""The generated blocks on what the package defaults keep (``benchmarks/tables.py``): the factors kept and recovered
(``factors.json``), the density of W (``train_defaults.json``) and the held-out cost of the factor prior
(``factor_prior.json``)."""

from __future__ import annotations

import re

from _tables_common import load, mean, pm, rel, seeds_text

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


COUNTS = "factor_counts.json"


def table_factor_counts() -> list[str]:
    """Factors kept by POEMS and by MOFA+ given the same cap, and POEMS started at MOFA+'s count, side by side
    (``factor_counts.json``)."""
    data = load(COUNTS)
    by: dict = {}
    for r in data["records"]:
        by.setdefault(r["data"], []).append(r)
    seeds = sorted({r["seed"] for r in data["records"]})
    small, large = data["settings"]["caps"]
    lines = [
        f"From {rel(COUNTS)} (`benchmarks/accuracy/factor_counts.py`, every sample, seeds {seeds_text(seeds)}; mean "
        "(range) over seeds; no labels used). POEMS: the package defaults (cap 32); *started*: the components "
        "parallel analysis finds above noise. MOFA+: a factor dropped while training once it explains no more than "
        f"0.1 % of every view's variance, from a start of {small} factors (the subtyping benchmark's setting) and of "
        f"{large}. *POEMS at MOFA+'s count*: the same defaults with as many factors started as MOFA+ kept from "
        f"{large}. Held-out criterion: per sample, lower is better (each seed its own validation split); "
        "*paired*: the mean over seeds of the difference, at MOFA+'s count minus default (same seed, same validation "
        "split); "
        "reproducibility: of the kept factors across the seeds (the bundled cohorts).",
        "",
        f"| data | POEMS: started | POEMS: kept | MOFA+ from {small}: kept | MOFA+ from {large}: kept | "
        "POEMS at MOFA+'s count: kept | held-out criterion: default / at MOFA+'s count | "
        "reproducibility: default / at MOFA+'s count |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, records in by.items():
        match = re.match(r"planted_(\d+)", name)
        label = f"planted, {match.group(1)} factors" if match else name
        cells = []
        for key in (
            "poems_above_noise",
            "poems_kept",
            f"mofa_kept_{small}",
            f"mofa_kept_{large}",
            "poems_at_mofa_kept",
        ):
            values = [r[key] for r in records]
            spread = f" ({min(values)}–{max(values)})" if min(values) != max(values) else ""
            cells.append(f"{mean(values):.1f}{spread}")
        diff = [r["elbo_at_mofa"] - r["elbo_default"] for r in records]
        worse = sum(d > 0 for d in diff)
        cells.append(
            " / ".join(pm([r[k] for r in records], ".1f") for k in ("elbo_default", "elbo_at_mofa"))
            + f" (paired {mean(diff):+.1f}, worse on {worse} of {len(diff)})".replace("-", "−")
        )
        repro = [records[0].get(k) for k in ("repro_default", "repro_at_mofa")]
        cells.append(" / ".join(f"{v:.2f}" for v in repro) if all(v == v and v is not None for v in repro) else "–")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines
