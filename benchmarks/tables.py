"""The benchmark tables and figures of the README and the docs, generated from ``benchmarks/results/*.json``.

    python benchmarks/tables.py            # rewrite every generated block in place
    python benchmarks/tables.py --check    # exit 1 and print a diff where a page differs from the results files
    python benchmarks/tables.py --show subtyping   # print one block (``--list``: the names)

A page holds a generated table between two lines::

    <!-- table: subtyping (benchmarks/tables.py) -->
    ...
    <!-- /table -->

and a generated figure inside a sentence between ``<!-- value: coverage -->`` and ``<!-- /value -->``. What lies
between the markers is replaced by what :data:`BLOCKS` renders from the results files; everything else on the page
is left as it is. The check also fails where the README's results section has a measured number written by hand
(:func:`stray_numbers`) or any page quotes the interval coverage or a training time outside its block
(:data:`QUOTES`): each of these quantities has one figure, from one results file, everywhere. The pages:
:data:`PAGES`. Each block names the results file it comes from, the split and the seeds; a page without markers is
not touched. Only the standard library is used, so the check runs anywhere (``benchmarks/tests/test_tables.py`` runs
it in ``python -m pytest``).

The numbers are rounded here, never edited: to change one, change (re-run) the benchmark and run this script.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/: the helpers and the blocks

from _tables_common import ROOT
from _tables_defaults import (
    table_factor_counts,
    table_factors,
    table_spike_rate,
    table_train_defaults,
    table_train_schedule,
    value_e_step_fixed_point,
    value_penalty_cost,
    value_spike_rate,
    value_train_schedule,
)
from _tables_factors import (
    table_factor_start,
    table_factor_start_planted,
    table_sparsity_onset,
    table_structures,
    value_factor_start,
    value_factor_start_subtyping,
    value_sparsity_onset,
    value_structures,
)
from _tables_figures import table_figures
from _tables_imputation import table_imputation, value_coverage, value_dropout_effect, value_impute_r
from _tables_seeds import (
    table_consensus,
    table_seed_sources,
    value_batch_count,
    value_consensus,
    value_consensus_kmeans,
    value_dropout,
    value_schedule_seeds,
)
from _tables_sets import table_feature_sets, table_feature_sets_breast
from _tables_speed import table_speed, value_epoch_saving, value_shape_time, value_speed_summary, value_train_time
from _tables_subtyping import (
    table_subtyping,
    value_gating,
    value_gating_vs_fixed,
    value_leaders,
    value_nmi_spread,
    value_sparse_vs_dense,
)

#: the pages whose generated blocks this script keeps (a page without markers is not touched)
PAGES = ("README.md", "benchmarks/README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md")))

TABLE = re.compile(
    r"(?P<open><!-- table: (?P<name>[a-z0-9_]+) \(benchmarks/tables\.py\) -->\n)"
    r"(?P<body>.*?)(?P<close><!-- /table -->)",
    re.S,
)
VALUE = re.compile(r"(?P<open><!-- value: (?P<name>[a-z0-9_]+) -->)(?P<body>.*?)(?P<close><!-- /value -->)", re.S)
#: in the README's results section, outside the generated blocks and code spans (settings such as ``dropR2=0.001``),
#: no measured number may be written by hand: a number with three decimals (how scores are quoted) or a ± (a spread)
#: is an error
STRAY = re.compile(r"\d\.\d{3}|±")
README_SECTION = ("## How well it works", "\n## ")
#: quantities with one figure everywhere: on every page, outside the generated blocks and code spans, a quote of them
#: is an error (the figure comes from its block: ``coverage``, ``train_time``, ``speed``, ``speed_summary``)
QUOTES = {
    "interval coverage": re.compile(r"\bcover\w*\s+(?:about\s+)?\d"),
    "training time": re.compile(
        r"\b\d+(?:\.\d+)?(?:\s*±\s*\d+(?:\.\d+)?)?\s*s\b(?= (?:on|for|against|to train)\b)"
        r"|\btook \d+(?:\.\d+)? s\b|\btrain\w* (?:in|takes) \d+(?:\.\d+)? s\b"
    ),
}


#: block name → renderer: tables (``<!-- table: NAME ... -->``) return lines, values (``<!-- value: NAME -->``) text
BLOCKS: dict[str, Callable] = {
    "subtyping": table_subtyping,
    "factors": table_factors,
    "factor_counts": table_factor_counts,
    "train_defaults": table_train_defaults,
    "imputation": table_imputation,
    "speed": table_speed,
    "figures": table_figures,
    "gating": value_gating,
    "leaders": value_leaders,
    "gating_vs_fixed": value_gating_vs_fixed,
    "sparse_vs_dense": value_sparse_vs_dense,
    "impute_r": value_impute_r,
    "dropout_effect": value_dropout_effect,
    "penalty_cost": value_penalty_cost,
    "e_step_fixed_point": value_e_step_fixed_point,
    "nmi_spread": value_nmi_spread,
    "coverage": value_coverage,
    "train_time": value_train_time,
    "speed_summary": value_speed_summary,
    "epoch_saving": value_epoch_saving,
    "shape_time": value_shape_time,
    "feature_sets": table_feature_sets,
    "feature_sets_breast": table_feature_sets_breast,
    "structures": table_structures,
    "structures_summary": value_structures,
    "factor_start": table_factor_start,
    "factor_start_planted": table_factor_start_planted,
    "factor_start_summary": value_factor_start,
    "factor_start_subtyping": value_factor_start_subtyping,
    "consensus": table_consensus,
    "consensus_summary": value_consensus,
    "consensus_kmeans": value_consensus_kmeans,
    "seed_sources": table_seed_sources,
    "batch_count": value_batch_count,
    "schedule_seeds": value_schedule_seeds,
    "sparsity_onset": table_sparsity_onset,
    "sparsity_onset_summary": value_sparsity_onset,
    "dropout_rule": value_dropout,
    "spike_rate": table_spike_rate,
    "spike_rate_summary": value_spike_rate,
    "train_schedule": table_train_schedule,
    "train_schedule_summary": value_train_schedule,
}


def render(text: str, cache: dict | None = None) -> str:
    """``text`` with every generated block replaced by what the results files give."""
    cache = {} if cache is None else cache

    def block(name: str):
        if name not in BLOCKS:
            raise KeyError(f"unknown generated block {name!r} (known: {', '.join(BLOCKS)})")
        if name not in cache:
            cache[name] = BLOCKS[name]()
        return cache[name]

    def table(m: re.Match) -> str:
        lines = block(m["name"])
        if isinstance(lines, str):
            raise ValueError(f"{m['name']!r} is a value: use <!-- value: {m['name']} -->")
        return m["open"] + "\n".join(lines) + "\n" + m["close"]

    def value(m: re.Match) -> str:
        text = block(m["name"])
        if not isinstance(text, str):
            raise ValueError(f"{m['name']!r} is a table: use <!-- table: {m['name']} (benchmarks/tables.py) -->")
        return m["open"] + text + m["close"]

    return VALUE.sub(value, TABLE.sub(table, text))


def stray_numbers(text: str) -> list[str]:
    """Lines of the README's results section with a hand-written measured number outside the generated blocks."""
    start = text.find(README_SECTION[0])
    if start < 0:
        return []
    end = text.find(README_SECTION[1], start + len(README_SECTION[0]))
    section = text[start : end if end > 0 else len(text)]
    return [line for line in _outside_blocks(section) if STRAY.search(line)]


def _outside_blocks(text: str) -> list[str]:
    """The lines of ``text`` without its generated blocks and code spans."""
    text = VALUE.sub("", TABLE.sub("", text))
    return [re.sub(r"`[^`]*`", "", line) for line in text.splitlines()]


def values_at_line_start(text: str) -> list[str]:
    """The value markers that open a line: CommonMark (GitHub, MyST) reads such a line as raw HTML, not text."""
    return [m["name"] for m in VALUE.finditer(text) if not text[text.rfind("\n", 0, m.start()) + 1 : m.start()].strip()]


def hand_quotes(text: str) -> list[tuple[str, str]]:
    """``(quantity, line)`` for each quote of a :data:`QUOTES` quantity written by hand (outside the blocks)."""
    return [(q, line) for line in _outside_blocks(text) for q, pattern in QUOTES.items() if pattern.search(line)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 with a diff if a page differs")
    parser.add_argument("--show", metavar="NAME", help="print one block")
    parser.add_argument("--list", action="store_true", help="the names of the blocks and the pages that use them")
    args = parser.parse_args(argv)
    if args.show:
        out = BLOCKS[args.show]()
        print(out if isinstance(out, str) else "\n".join(out))
        return 0
    cache: dict = {}
    failed = False
    for page in PAGES:
        path = ROOT / page
        if not path.exists():
            continue
        text = path.read_text()
        if args.list:
            names = [m["name"] for m in TABLE.finditer(text)] + [m["name"] for m in VALUE.finditer(text)]
            if names:
                print(f"{page}: {', '.join(names)}")
            continue
        new = render(text, cache)
        if page == "README.md":
            for line in stray_numbers(new):
                failed = True
                print(f"{page}: a measured number outside a generated block: {line.strip()}", file=sys.stderr)
        for name in values_at_line_start(new):
            failed = True
            print(f"{page}: <!-- value: {name} --> opens a line (it would render as raw HTML)", file=sys.stderr)
        for quantity, line in hand_quotes(new):
            failed = True
            print(f"{page}: {quantity} quoted outside its generated block: {line.strip()}", file=sys.stderr)
        if new == text:
            continue
        if args.check:
            failed = True
            sys.stdout.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    new.splitlines(keepends=True),
                    f"{page} (as written)",
                    f"{page} (from benchmarks/results)",
                )
            )
        else:
            path.write_text(new)
            print(f"rewrote the generated blocks of {page}")
    if failed and args.check:
        print("\nThe pages differ from benchmarks/results: run `python benchmarks/tables.py`.", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
