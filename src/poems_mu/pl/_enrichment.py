"""Dot plot of feature-set enrichment per factor (``tl.enrichment``)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm

from ._utils import finish, new_axes

REQUIRED = ("factor", "source", "score", "qvalue")


def enrichment(
    table: pd.DataFrame,
    *,
    modality: str | Sequence[str] | None = None,
    max_q: float | None = None,
    n_sources: int | None = None,
    cmap: str = "RdBu_r",
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
):
    """Dot plot of :func:`poems_mu.tl.enrichment`: factors (x) × feature sets (y).

    Dot area grows with ``-log10 q``; colour is the signed score (red: the set's features rise with the factor, blue:
    they fall). Sets that pass ``max_q`` in some factor get a black edge on those dots. Sets are ordered by their best
    q-value, factors as they come in the table. When the table holds several modalities, each set is labelled
    ``"<modality>: <set>"`` (the same set name tested in two modalities gives two rows); the q-values are those of
    the table (:func:`poems_mu.tl.enrichment` corrects over all its modalities at once), not recomputed.

    Parameters
    ----------
    table
        The DataFrame returned by :func:`poems_mu.tl.enrichment` (``tl.enrichment`` stores nothing on the MuData).
    modality
        Show only the sets of this modality (or these modalities); default every modality of the table.
    max_q
        Keep only sets with ``qvalue <= max_q`` in at least one factor, and outline those dots (default: keep every
        set, outline at q <= 0.05).
    n_sources
        Show at most this many sets (the best by their lowest q-value).
    cmap
        Diverging colour map of the score, centred at 0.
    ax, figsize, show, save
        scanpy's conventions (default file name ``enrichment.png``).

    Returns
    -------
    The :class:`~matplotlib.axes.Axes` when ``show`` is ``False``.

    """
    if not isinstance(table, pd.DataFrame) or not set(REQUIRED) <= set(table.columns):
        raise ValueError("Pass the DataFrame of pm.tl.enrichment(...) (columns factor, source, score, qvalue).")
    if max_q is not None and not (0 < max_q <= 1):
        raise ValueError(f"`max_q` must be in (0, 1], got {max_q!r}.")
    if n_sources is not None and (not isinstance(n_sources, int | np.integer) or n_sources < 1):
        raise ValueError(f"`n_sources` must be a positive integer, got {n_sources!r}.")
    if table.empty:
        raise ValueError("The enrichment table is empty: no set was tested.")
    table = _select_modalities(table, modality)
    outline = 0.05 if max_q is None else max_q
    several = "modality" in table.columns and table["modality"].nunique() > 1
    label = table["modality"].astype(str) + ": " + table["source"].astype(str) if several else table["source"]
    table = table.assign(source=label)  # a copy: the caller's table is not modified
    best = table.groupby("source", sort=False)["qvalue"].min().sort_values(kind="mergesort")
    if max_q is not None:
        best = best[best <= max_q]
        if best.empty:
            raise ValueError(f"No set has qvalue <= {max_q} in any factor; raise `max_q` or leave it None.")
    if n_sources is not None:
        best = best.iloc[:n_sources]
    sources = list(best.index)
    factors = list(dict.fromkeys(table["factor"]))
    sub = table[table["source"].isin(sources)]
    x = sub["factor"].map({f: i for i, f in enumerate(factors)}).to_numpy()
    y = sub["source"].map({s: i for i, s in enumerate(sources)}).to_numpy()
    logq = -np.log10(np.clip(sub["qvalue"].to_numpy(dtype=float), 1e-300, 1.0))
    scale = max(float(np.nanmax(logq)), 1.0)
    sizes = 10 + 190 * logq / scale
    score = sub["score"].to_numpy(dtype=float)
    vmax = max(float(np.nanmax(np.abs(score))), 1e-12)
    if figsize is None:
        figsize = (1.8 + 0.42 * len(factors), 1.0 + 0.3 * len(sources))
    fig, ax = new_axes(ax, figsize)
    passed = sub["qvalue"].to_numpy(dtype=float) <= outline
    sc = ax.scatter(
        x,
        y,
        s=sizes,
        c=score,
        cmap=cmap,
        norm=TwoSlopeNorm(0.0, -vmax, vmax),
        edgecolors=np.where(passed, "black", "none").tolist(),
        linewidths=0.8,
    )
    ax.set_xticks(range(len(factors)), factors, rotation=90)
    ax.set_yticks(range(len(sources)), sources)
    ax.set_xlim(-0.6, len(factors) - 0.4)
    ax.set_ylim(len(sources) - 0.4, -0.6)
    ax.set_xlabel("factor")
    if several:
        ax.set_ylabel("modality: feature set")
    ax.set_title(f"Enrichment (dot area: -log10 q; outlined: q <= {outline:g})")
    fig.colorbar(sc, ax=ax, label="score (t of ULM; + rises with factor)", fraction=0.05, pad=0.02)
    return finish(fig, ax, show, save, "enrichment")


def _select_modalities(table: pd.DataFrame, modality: str | Sequence[str] | None) -> pd.DataFrame:
    """The rows of the chosen modalities (all rows for ``None``)."""
    if modality is None:
        return table
    if "modality" not in table.columns:
        raise ValueError(
            "`modality` needs a table with a `modality` column, as pm.tl.enrichment returns; this one has "
            f"{list(table.columns)}."
        )
    mods = [modality] if isinstance(modality, str) else list(modality)
    present = list(dict.fromkeys(table["modality"].astype(str)))
    bad = [m for m in mods if m not in present]
    if not mods or bad:
        raise ValueError(f"Modality {bad or mods} is not in the enrichment table; choose from {present}.")
    return table[table["modality"].astype(str).isin(mods)]
