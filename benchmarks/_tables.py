"""Markdown tables of benchmark records: mean ± SD over the rows of each group."""

from __future__ import annotations

import pandas as pd


def mean_sd_rows(df: pd.DataFrame, keys: list[str], cols: list[str], fmt: str = ".3f", sd_fmt: str = ".3f"):
    """``(group key tuple, cells)`` per group of ``df`` by ``keys``: each cell "mean ± SD" of a column (the mean
    alone where there is one row, "–" where there is none)."""
    g = df.groupby(keys, sort=False)[cols]
    mean, sd = g.mean(), g.std()
    for idx in mean.index:
        cells = []
        for c in cols:
            m, s = mean.loc[idx, c], sd.loc[idx, c]
            cells.append("–" if pd.isna(m) else (f"{m:{fmt}}" if pd.isna(s) else f"{m:{fmt}} ± {s:{sd_fmt}}"))
        yield (idx if isinstance(idx, tuple) else (idx,)), cells
