"""Helpers of the generated tables (``benchmarks/tables.py``): the results files and how numbers are written.

Standard library only, as ``tables.py``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def load(name: str) -> dict:
    return json.loads((RESULTS / name).read_text())


def rel(name: str) -> str:
    return f"`benchmarks/results/{name}`"


def mean(values) -> float:
    return statistics.fmean(values)


def sd(values) -> float:
    return statistics.stdev(values) if len(values) > 1 else float("nan")


def pm(values, fmt: str = ".3f", sd_fmt: str | None = None) -> str:
    """``mean ± SD`` of ``values`` (the mean alone when there is one value or they are all equal)."""
    values = list(values)
    if len(values) == 1 or max(values) == min(values):
        return format(values[0], fmt)
    return f"{format(mean(values), fmt)} ± {format(sd(values), sd_fmt or fmt)}"


def percent(x: float, digits: int = 1) -> str:
    return f"{100 * x:.{digits}f} %"


def seeds_text(seeds) -> str:
    seeds = sorted(set(seeds))
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def commit_of(prov: dict) -> str:
    commit = (prov.get("commit") or "?")[:7]
    return commit + (" + uncommitted changes" if prov.get("dirty") else "")


def kept_origin(data: dict, methods: list[str]) -> str:
    """For a results file that kept some methods' rows from earlier runs (``kept``), a sentence naming each run's
    commit and the commit that re-ran the others (``methods``, in table order); empty when nothing was kept."""
    kept = data.get("kept", [])
    if not kept:
        return ""
    from_kept = {m for p in kept for m in p["methods"]}
    rerun = [m for m in methods if m not in from_kept]
    parts = [f"{' / '.join(p['methods'])} from the run at commit {commit_of(p['provenance'])}" for p in kept]
    return (
        " "
        + "; ".join(parts)
        + f"; {' / '.join(rerun)} re-run at commit {commit_of(data['provenance'])} (`--methods`)."
    )


def failed_conditions(row: dict) -> list[str]:
    """The conditions of a rule's summary row (its ``meets: <condition>`` fields) that the row does not meet."""
    return [k.removeprefix("meets: ") for k, v in row.items() if k.startswith("meets: ") and not v]


def subtyping_cell(records, scope: str, metric: str) -> list[float]:
    """Per subtyping run record: the mean over the evaluation seeds of ``metric`` in ``scope`` (``all`` or ``test``)."""
    return [r["metrics"][scope][metric]["mean"] for r in records]


def subtyping_values(name: str, dataset: str, method: str, scope: str, metric: str) -> list[float]:
    """:func:`subtyping_cell` of the runs of ``method`` on ``dataset`` in the subtyping results file ``name``."""
    runs = [r for r in load(name)["runs"] if "metrics" in r and r["dataset"] == dataset and r["method"] == method]
    return subtyping_cell(runs, scope, metric)
