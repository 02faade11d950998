"""The generated blocks on what the package defaults keep (``benchmarks/tables.py``): the factors kept and recovered
(``factors.json``), the density of W (``train_defaults.json``), the held-out cost of the factor prior
(``factor_prior.json``), what a larger spike rate buys and costs (``spike_rate.json``) and the training schedules
(``train_schedule.json``)."""

from __future__ import annotations

import re

from _tables_common import failed_conditions, load, mean, percent, pm, rel, seeds_text

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


def value_e_step_fixed_point() -> str:
    """Per cohort: the restored epoch, the returned θ and slab share against the E-step's fixed point on the same W
    (ranges over the modalities)."""
    data = load(TRAIN_DEFAULTS)

    def span(values, fmt) -> str:
        lo, hi = min(values), max(values)
        return fmt(lo) if fmt(lo) == fmt(hi) else f"{fmt(lo)}–{fmt(hi)}"

    def share(x: float) -> str:  # a number of percent; the unit follows the range
        return f"{100 * x:.1f}".removesuffix(".0")

    parts = []
    for r in data["records"]:
        mods = [k.split(": ")[0] for k in r if k.endswith(": slab (p* > 0.5)")]
        theta = [r[f"{m}: θ, kept factors"] for m in mods]
        theta_fixed = [r[f"{m}: θ at the E-step's fixed point"] for m in mods]
        slab = [r[f"{m}: slab (p* > 0.5)"] for m in mods]
        slab_fixed = [r[f"{m}: slab at the E-step's fixed point"] for m in mods]
        links = [r[f"{m}: |W| > 0.01"] for m in mods]
        parts.append(
            f"on {r['dataset']} (restored epoch {r['best_epoch (restored)']}) the returned θ averages "
            f"{span(theta, lambda x: f'{x:.3f}')} over the kept factors and {span(slab, share)} % of W's entries "
            f"are in the slab ({span(links, share)} % are links, |w| > 0.01), against θ "
            f"{span(theta_fixed, lambda x: f'{x:.4f}')} and {span(slab_fixed, share)} % at the fixed point"
        )
    seeds = seeds_text(sorted({r["seed"] for r in data["records"]}))
    return (
        "; ".join(parts)
        + f" (ranges over the modalities; every default, all samples, seed {seeds}, {rel(TRAIN_DEFAULTS)})"
    )


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


SPIKE = "spike_rate.json"


def table_spike_rate() -> list[str]:
    """Per data set and spike rate: factors kept, W's sparsity, planted recovery, held-out fit against the default."""
    data = load(SPIKE)
    st = data["settings"]
    base = min(st["spike_rates"])
    lines = [
        f"From {rel(SPIKE)} (`benchmarks/tuning/spike_rate.py`): λ_f = {st['lambda_factor']:g} and every other "
        f"argument at the package default, seeds {seeds_text(st['seeds'])}, means over seeds; planted data (data seed "
        "= training seed) and all samples of the bundled cohorts, each seed its own validation split, the same for "
        "every spike rate. *Links*: \\|w\\| > 0.01, per feature and as a share of the kept factors' entries (means "
        f"over the modalities). *Held-out*: per-sample criterion, lower is better; *paired*: against λ0 = {base:g} "
        "seed by seed, and on how many seeds it is worse. No label is used.",
        "",
        "| data | λ0 | factors kept | links per feature | share of links within the kept factors | grouped AUROC | "
        "held-out | paired (worse on) |",
        "|---" * 8 + "|",
    ]
    for r in data["summary"]:
        auroc = f"{r['grouped_auroc']:.3f}" if "grouped_auroc" in r else "–"
        diff = "–" if r["lambda0"] == base else f"{r['elbo_diff']:+.1f} ({r['worse_on']} of {r['paired']})"
        lo, hi = r["kept_range"]
        kept = f"{r['kept']:.1f}" + ("" if lo == hi else f" ({lo}–{hi})")
        lines.append(
            f"| {r['data']} | {r['lambda0']:g} | {kept} | {r['links_per_feature']:.1f} | {r['density_kept']:.2f} | "
            f"{auroc} | {r['elbo']:.1f} | {diff} |"
        )
    return lines


def value_spike_rate() -> str:
    """One sentence: links per feature and the paired held-out difference along the spike rates, both cohorts."""
    data = load(SPIKE)
    st = data["settings"]
    base, *larger = st["spike_rates"]
    parts = []
    for dataset in ("breast_tcga", "rosmap"):
        first, *rows = [r for r in data["summary"] if r["data"] == dataset]
        parts.append(
            f"{dataset}'s links per feature from {first['links_per_feature']:.1f} to "
            + " / ".join(f"{r['links_per_feature']:.1f}" for r in rows)
            + " at a held-out criterion "
            + " / ".join(f"{r['elbo_diff']:+.1f}" for r in rows)
            + " per sample (worse on "
            + " / ".join(str(r["worse_on"]) for r in rows)
            + f" of {rows[0]['paired']} seeds)"
        )
    planted = [r for r in data["summary"] if r["data"].startswith("planted")]
    exact = all(r["kept_range"] == [int(r["data"].split()[1])] * 2 for r in planted)
    auroc = min(r["grouped_auroc"] for r in planted)
    lower = all(r["elbo_diff"] < 0 for r in planted if r["lambda0"] != base)
    return (
        f"with λ_f = {st['lambda_factor']:g}, raising λ0 from {base:g} (the default) to "
        + " / ".join(f"{x:g}" for x in larger)
        + " takes "
        + " and ".join(parts)
        + f"; on the planted data the counts {'stay exact on every seed' if exact else 'are not always exact'}, the "
        f"grouped AUROC is at least {auroc:.3f} and the held-out criterion is "
        + ("lower at every larger λ0" if lower else "not lower at every larger λ0")
        + f" (seeds {seeds_text(st['seeds'])}, {rel(SPIKE)})"
    )


SCHEDULE = "train_schedule.json"


def _schedule_call(settings: dict, name: str) -> str:
    """The ``train`` call of the schedule ``name`` of ``train_schedule.json``'s settings."""
    return "train(" + ", ".join(f"{k}={v:g}" for k, v in settings["schedules"][name].items()) + ")"


def table_train_schedule() -> list[str]:
    """Per training schedule and cohort: the planted counts, the test and validation criteria, the test criterion
    paired to the default, factors kept, CKA between seeds, epochs and seconds."""
    data = load(SCHEDULE)
    st = data["settings"]
    base = f"the {st['base']}"
    lines = [
        f"From {rel(SCHEDULE)} (`benchmarks/tuning/train_schedule.py`): λ0 = {st['prior'][0]:g}, λ_f = "
        f"{st['prior'][1]:g} and every other argument at the package default, seeds {seeds_text(st['seeds'])}, means "
        "over seeds. Planted data: 4 and 8 factors, all samples; *out of range*: fewer factors kept than planted, or "
        "more than 2 extra, on some seed. Cohorts: each seed draws a *test* part (20 % of the samples, no label) "
        "that training never sees and splits the rest into fit and validation parts, the same "
        "for every schedule. *Test* / *validation*: per-sample held-out criterion at the posterior means (lower is "
        f"better); the validation part chose the stopping epoch. *Paired*: the test criterion against {base} "
        f"(`{_schedule_call(st, st['base'])}`), "
        "seed by seed, and on how many seeds it is lower. *CKA*: between the seeds' embeddings of every sample. "
        "*Train s*: one thread, both cores busy, beside whatever else ran on the machine, so a rough guide only "
        "(`benchmarks/performance/speed.py` measures training time). No label is used.",
        "",
        "| schedule | planted 4 / 8 kept | grouped AUROC | data | test | paired (lower on) | validation | factors kept "
        "| CKA | epochs | train s |",
        "|---" * 11 + "|",
    ]
    for r in data["summary"]:
        kept = " / ".join(f"{sum(r[f'planted {k}: kept']) / len(r[f'planted {k}: kept']):.1f}" for k in (4, 8))
        kept += "" if r["in_range"] else " (out of range)"
        auroc = " / ".join(f"{r[f'planted {k}: auroc']:.3f}" for k in (4, 8))
        name = f"**{r['schedule']}**" if r["schedule"] == data["chosen"] else r["schedule"]
        for i, dataset in enumerate(("breast_tcga", "rosmap")):
            head = f"| {name} | {kept} | {auroc} |" if i == 0 else "| | | |"
            paired = (
                "–"
                if r["schedule"] == st["base"]
                else f"{r[f'{dataset}: test diff']:+.1f} ({r[f'{dataset}: better on']})"
            )
            lines.append(
                f"{head} {dataset} | {r[f'{dataset}: test']:.1f} | {paired} | {r[f'{dataset}: validation']:.1f} | "
                f"{r[f'{dataset}: kept']:.1f} | {r[f'{dataset}: cka']:.3f} | {r[f'{dataset}: epochs']:.0f} | "
                f"{r[f'{dataset}: train s']:.1f} |"
            )
    lines += [
        "",
        "The rule's conditions (its constraints, the script's docstring), seeds as above, data seed = training seed. "
        "*Batch*: `batch_planted.py`'s planted batch with `batch_key`, 10-NN accuracy of the batch on the latent "
        "(chance 0.5; at most 0.65 to pass; per seed in brackets) and of the 3 groups. *Sets*: "
        "`feature_sets_planted.py --weak`'s sets (30 % of the listed members wrong, 20 % of the true ones left "
        f"out): the AUROC of the sets' factors' \\|W\\| against the true supports (at least {base}'s to pass), "
        "the share of left-out members added and the precision of the dropped calls. *Agreement*: CKA between seeds "
        f"as above, at least {base}'s on both cohorts.",
        "",
        "| schedule | batch KNN | group KNN | sets AUROC | members added | dropped precision | fails |",
        "|---" * 7 + "|",
    ]
    for r in data["summary"]:
        name = f"**{r['schedule']}**" if r["schedule"] == data["chosen"] else r["schedule"]
        seeds = ", ".join(f"{v:.2f}" for v in r["batch: knn per seed"])
        fails = ", ".join(failed_conditions(r)) or "–"
        lines.append(
            f"| {name} | {r['batch: knn']:.3f} ({seeds}) | {r['batch: knn groups']:.3f} | {r['sets: auroc']:.3f} | "
            f"{percent(r['sets: added_recall'])} | {r['sets: dropped_precision']:.2f} | {fails} |"
        )
    return lines


def value_train_schedule() -> str:
    """One sentence: the schedule that fits the held-out samples best against the default, which of the rule's
    conditions it fails, and what the rule picks."""
    data = load(SCHEDULE)
    st = data["settings"]
    rows = {r["schedule"]: r for r in data["summary"]}
    base_name = st["base"]
    base = rows[base_name]
    in_range = [r for r in data["summary"] if r["meets: planted"] and r["schedule"] != base_name]
    best = min(in_range, key=lambda r: r["test"])
    cohorts = ("breast_tcga", "rosmap")

    def pair(key: str, fmt: str) -> str:
        return " and ".join(f"{best[f'{d}: {key}']:{fmt}} against {base[f'{d}: {key}']:{fmt}}" for d in cohorts)

    def effect(r: dict) -> str:
        """The test criterion, CKA, factors kept and epochs trained of ``r`` against the default."""
        lower = " and ".join(
            f"{-r[f'{d}: test diff']:.1f} per sample on {d} (on {r[f'{d}: better on']} seeds)" for d in cohorts
        )
        both = " and ".join
        cka = both(f"{r[f'{d}: cka']:.3f} against {base[f'{d}: cka']:.3f}" for d in cohorts)
        kept = both(f"{r[f'{d}: kept']:.1f} against {base[f'{d}: kept']:.1f}" for d in cohorts)
        epochs = both(f"{r[f'{d}: epochs']:.0f} against {base[f'{d}: epochs']:.0f}" for d in cohorts)
        return f"{lower}, with CKA between seeds {cka} and the factors kept {kept}, after {epochs} epochs"

    fails = {
        "batch": f"leaves the planted batch in the latent (batch KNN {best['batch: knn']:.2f} against "
        f"{base['batch: knn']:.2f})",
        "sets": f"finds the feature sets' true supports less well (AUROC {best['sets: auroc']:.3f} against "
        f"{base['sets: auroc']:.3f}, adding {percent(best['sets: added_recall'])} of the members the sets lack against "
        f"{percent(base['sets: added_recall'])})",
        "agreement": f"makes seeds agree less (CKA {pair('cka', '.3f')})",
    }
    failed = [text for c, text in fails.items() if not best[f"meets: {c}"]]
    verdict = "it meets every condition" if not failed else "but it " + " and ".join(failed)
    chosen = data["chosen"]
    picks = (
        "the rule keeps that default"
        if chosen == base_name
        else f"the rule picks `{_schedule_call(st, chosen)}`"
        if chosen
        else "no schedule meets every condition"
    )
    text = (
        f"the schedule that fits best, `{_schedule_call(st, best['schedule'])}`, lowers the held-out criterion of the "
        f"samples training never saw by {effect(best)}; {verdict}, so {picks}"
    )
    if chosen and chosen not in (base_name, best["schedule"]):
        c = rows[chosen]
        per_seed = ", ".join(f"{v:.2f}" for v in c["batch: knn per seed"])
        text += (
            f", which lowers it by {effect(c)}, leaves batch KNN at {c['batch: knn']:.3f} (per seed {per_seed}) and "
            f"finds the sets' supports with AUROC {c['sets: auroc']:.3f}, adding "
            f"{percent(c['sets: added_recall'])} of the members they lack"
        )
    return text + f" (seeds {seeds_text(st['seeds'])}, {rel(SCHEDULE)})"
