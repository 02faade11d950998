"""The README's table of other measured figures (``benchmarks/tables.py``), each with its results file and seeds."""

from __future__ import annotations

import statistics

from _tables_common import load, mean, percent, pm, rel


def new_pairs_cell(records: list[dict]) -> str:
    """The share of the refinement's new pairs that are true links, against chance (none left when every planted
    link was already a candidate)."""
    left = [r["new_base_rate"] for r in records]
    if not any(left):
        return "none to find: every planted link was already a candidate pair"
    return f"{percent(mean(r['new_precision'] for r in records), 0)} (by chance: {percent(mean(left))})"


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
