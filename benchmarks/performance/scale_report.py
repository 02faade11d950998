"""The scale benchmark's report: ``scale.md`` from the sections' JSON files (``scale.py`` runs it after each section).

python benchmarks/performance/scale_report.py [--out benchmarks/results]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np

SECTIONS = ("decoder", "chunks", "brca", "features", "samples", "shapes", "ddp")
#: the memory a feature count must fit in
MEMORY_TARGET = 24 * 2**30


def load(out: Path, name: str):
    """The rows of ``<out>/scale_<name>.json`` (None if absent) and a note on the run that made them: when it
    finished, the load average then and the machine (files written before the provenance record: from
    ``scale_meta.json``)."""
    path = out / f"scale_{name}.json"
    if not path.exists():
        return None, None
    data = json.loads(path.read_text())
    if isinstance(data, list):
        meta_path = out / "scale_meta.json"
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        run = meta.get("runs", {}).get(name)
        note = run and {"finished": run["finished"], "load": run["load_average_1_5_15min"]}
        return data, note and {**note, "machine": meta.get("machine", "?"), "cores": os.cpu_count()}
    prov, m = data["provenance"], data["provenance"]["machine"]
    note = {"finished": prov["written"], "load": data["load_average_1_5_15min"], "cores": m["cpu_count"]}
    return data["rows"], {**note, "machine": f"{m['cpu']}, {m['cpu_count']} cores", "provenance": prov}


def _fmt(x, nd=1):
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{nd}f}"


def fit_limit(rows: list[dict], impl: str, n: int):
    """Largest feature count within 24 GiB from a straight-line fit of peak RSS on features (ok runs at ``n``)."""
    pts = [
        (sum(r["dims"]), r["peak_rss_mb"]) for r in rows if r["impl"] == impl and r["n"] == n and r["status"] == "ok"
    ]
    if len(pts) < 2:
        return None
    pts = sorted(pts)[-3:]  # the largest runs: the per-feature slope, not start-up costs, dominates there
    slope, intercept = np.polyfit([p[0] for p in pts], [p[1] for p in pts], 1)
    return {
        "mb_per_1k_features": slope * 1e3,
        "intercept_mb": intercept,
        "max_features_24gb": (MEMORY_TARGET / 2**20 - intercept) / slope,
        "largest_run": max(p[0] for p in pts),
    }


def _training_table(rows: list[dict], key: str, label: str) -> list[str]:
    lines = [
        f"| {label} | POEMS s/epoch | paper s/epoch | speed-up | POEMS peak RSS (MB) | paper peak RSS (MB) | "
        "data (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[key] if key == "n" else sum(r["dims"]), {})[r["impl"]] = r
    for x, g in sorted(groups.items()):
        ours, paper = g.get("poems", {}), g.get("paper")

        def cell(r, field):
            if r is None:
                return "not run"
            if r.get("status") != "ok":
                return r.get("status", "?")
            return _fmt(r.get(field), 2 if field == "s_per_epoch" else 0)

        ratio = "–"
        if paper and paper.get("status") == "ok" and ours.get("status") == "ok":
            ratio = f"{paper['s_per_epoch'] / ours['s_per_epoch']:.1f}x"
        dims = "+".join(str(d) for d in (ours or paper)["dims"])
        lines.append(
            f"| {x:,} ({dims}) | {cell(ours, 's_per_epoch')} | {cell(paper, 's_per_epoch')} | {ratio} | "
            f"{cell(ours, 'peak_rss_mb')} | {cell(paper, 'peak_rss_mb')} | {_fmt(ours.get('data_mb'), 0)} |"
        )
    return lines


def _run_note(note: dict | None) -> list[str]:
    if not note:
        return []
    load = note["load"]
    source = f" Written by {common.describe(note['provenance'])}." if "provenance" in note else ""
    return [
        "",
        f"_Run finished {note['finished']}; load average at the end {load[0]} / {load[1]} / {load[2]} "
        f"(1 / 5 / 15 min) on {note['cores']} cores.{source}_",
    ]


def report(out: Path) -> str:
    """``scale.md``'s text from the sections' JSON files in ``out``."""
    sections = {name: load(out, name) for name in SECTIONS}
    rows = {name: r for name, (r, _) in sections.items()}
    notes = {name: note for name, (_, note) in sections.items()}
    features, samples, shapes, brca = rows["features"], rows["samples"], rows["shapes"], rows["brca"]
    decoder, chunks, ddp = rows["decoder"], rows["chunks"], rows["ddp"]
    machine = next((note["machine"] for note in notes.values() if note), "?")
    md = ["# Scale benchmark", ""]
    md.append(
        f"Machine: {machine}. One torch thread per process (`OMP_NUM_THREADS=1`); the machine was "
        "shared with other jobs, so absolute timings are noisy and differ between sections run at different "
        "times (see the load note under each) — compare within a table: both decoders were run interleaved in one "
        "invocation. K = 32, H = 100, batch 512 unless stated. Peak RSS: the kernel's "
        "high-water mark over `model.train` (data, model, optimizer state and activations), each configuration "
        "in a fresh process. `python benchmarks/performance/scale.py <section>` reproduces each table."
    )
    if decoder:
        md += ["", "## The decoder alone (forward + backward of one minibatch, best of 5, ms)", ""]
        md += ["| variant | batch 128 | batch 512 |", "|---|---|---|"]
        names = list(dict.fromkeys(r["variant"] for r in decoder))
        by = {(r["variant"], r["batch"]): r for r in decoder}

        def cell(name, batch):
            r = by.get((name, batch))
            if r is None:
                return "–"
            return f"{r['ms']:.0f}" + (f" (chunks of {r['chunk']})" if r.get("chunk") else "")

        for name in names:
            md.append(f"| {name} | {cell(name, 128)} | {cell(name, 512)} |")
        md.append("")
        md.append(
            f"{decoder[0]['features']:,} features at K = 32, H = 100; 'paper' is "
            "`benchmarks/performance/paper_decoder.py`, 'before' the previous implementation of this package's "
            "decoder (its 8 MiB chunk formula)."
        )
        md += _run_note(notes["decoder"])
    if brca:
        md += ["", "## BRCA size: 1000 + 1000 + 503 features, 875 samples (pairs run back to back, repeated)", ""]
        md += [
            "| batch | repeat | POEMS s/epoch | paper s/epoch | speed-up | POEMS peak RSS (MB) | paper peak RSS (MB) |",
            "|---|---|---|---|---|---|---|",
        ]
        for batch in sorted({r["batch"] for r in brca}):
            ratios = []
            for rep in sorted({r["rep"] for r in brca}):
                pair = {r["impl"]: r for r in brca if r["batch"] == batch and r["rep"] == rep}
                ours, paper = pair.get("poems", {}), pair.get("paper", {})
                if ours.get("status") == "ok" and paper.get("status") == "ok":
                    ratios.append(paper["s_per_epoch"] / ours["s_per_epoch"])
                    md.append(
                        f"| {batch} | {rep} | {ours['s_per_epoch']:.2f} | {paper['s_per_epoch']:.2f} | "
                        f"{ratios[-1]:.1f}x | {ours['peak_rss_mb']:.0f} | {paper['peak_rss_mb']:.0f} |"
                    )
            if ratios:
                md.append(f"| {batch} | **median** | | | **{np.median(ratios):.1f}x** | | |")
        md += _run_note(notes["brca"])
    if features:
        md += ["", f"## Features (n = {features[0]['n']} samples, batch {features[0]['batch']})", ""]
        md += _training_table(features, "features", "features")
        md += [
            "",
            "'not run': the paper decoder was not attempted beyond the first size at which it failed (its memory grows "
            "linearly with the features).",
        ]
        fits = {impl: fit_limit(features, impl, features[0]["n"]) for impl in ("poems", "paper")}
        md += [
            "",
            "Largest feature count within 24 GB (peak RSS, straight-line fit of the largest runs; an "
            "extrapolation beyond the largest run):",
            "",
        ]
        for impl, fit in fits.items():
            if fit:
                md.append(
                    f"- {'POEMS (this package)' if impl == 'poems' else 'paper decoder'}: "
                    f"{fit['mb_per_1k_features']:.0f} MB per 1,000 features → about "
                    f"{fit['max_features_24gb']:,.0f} features (largest run: {fit['largest_run']:,})."
                )
        paper_failed = [r for r in features if r["impl"] == "paper" and r["status"] != "ok"]
        for r in paper_failed:
            md.append(
                f"- paper decoder at {sum(r['dims']):,} features: {r['status']} under a "
                f"{r.get('mem_limit_gb', '?')} GB address-space cap ({r.get('error', '')[:120]})."
            )
        md += _run_note(notes["features"])
    if samples:
        md += ["", f"## Samples ({sum(samples[0]['dims']):,} features, BRCA split, batch {samples[0]['batch']})", ""]
        md += _training_table(samples, "n", "samples")
        md += _run_note(notes["samples"])
    if shapes:
        md += ["", "## Full-dimensional shapes (this package, defaults: K = 32, H = 64, batch 128)", ""]
        md += [
            "| shape | features | samples | s/epoch | peak RSS (MB) | data (MB) | parameters |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in shapes:
            md.append(
                f"| {r['shape']} | {' + '.join(f'{d:,}' for d in r['dims'])} | {r['n']} | "
                f"{_fmt(r.get('s_per_epoch'), 2) if r['status'] == 'ok' else r['status']} | "
                f"{_fmt(r.get('peak_rss_mb'), 0)} | {_fmt(r.get('data_mb'), 0)} | {r.get('n_params', 0):,} |"
            )
        md += _run_note(notes["shapes"])
    if ddp:
        epochs = ddp[0].get("epochs", "?")
        md += [
            "",
            f"## Two-process DDP against one process (breast_tcga, defaults, {epochs} epochs, no early stopping)",
        ]
        md += [""]
        md += ["| setup | k-means ACC | NMI | ARI | KNN acc | wall s |", "|---|---|---|---|---|---|"]
        for setup in dict.fromkeys(r["setup"] for r in ddp):
            rs = [r for r in ddp if r["setup"] == setup and "kmeans_accuracy" in r]
            if not rs:
                md.append(f"| {setup} | failed | | | | |")
                continue

            def ms(key, rs=rs):
                v = np.array([r[key] for r in rs])
                return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}"

            md.append(
                f"| {setup} | {ms('kmeans_accuracy')} | {ms('kmeans_nmi')} | {ms('kmeans_ari')} | "
                f"{ms('knn_accuracy')} | {np.mean([r['wall_s'] for r in rs]):.0f} |"
            )
        md.append("")
        md.append(
            f"Mean ± sd over training seeds {sorted({r['seed'] for r in ddp})} of the mean over evaluation "
            "seeds (0, 12, 21, 42, 1234); all-sample embeddings; same effective batch (128) in both setups."
        )
        md += _run_note(notes["ddp"])
    if chunks:
        md += ["", "## Chunk size (decoder alone, 1,000 features, µs per sample, best of 4)", ""]
        batches = sorted({r["batch"] for r in chunks})
        sizes = sorted({r["chunk"] for r in chunks})
        by = {(r["batch"], r["chunk"]): r for r in chunks}
        md += ["| batch | " + " | ".join(f"chunk {c}" for c in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
        for b in batches:
            md.append(
                f"| {b} | "
                + " | ".join(
                    f"{by[(b, c)]['us_per_sample_per_1k_features']:.0f} ({by[(b, c)]['chunk_mib']:.1f} MiB)"
                    for c in sizes
                )
                + " |"
            )
        md += _run_note(notes["chunks"])
    return "\n".join(md) + "\n"


def main(argv=None) -> None:
    args = common.parser(__doc__, seeds=None, quick=False).parse_args(argv)
    common.write_report(args.out / "scale.md", report(args.out), provenance=common.provenance(__file__, argv))


if __name__ == "__main__":
    main()
