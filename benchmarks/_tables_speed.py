"""The generated blocks on training time (``benchmarks/tables.py``): ``speed_train.json`` and ``speed_shape.json``."""

from __future__ import annotations

from _tables_common import kept_origin, load, mean, percent, rel, sd, seeds_text

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
    origin = kept_origin(data, list(dict.fromkeys(r["method"] for r in data["rows"])))
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
