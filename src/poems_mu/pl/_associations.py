"""Cross-omic association network: feature pairs linked through shared factors, drawn as a multipartite graph."""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.lines import Line2D
from mudata import MuData

from poems_mu import tl
from poems_mu._constants import UNS_KEY
from poems_mu.tl._associations import CROSS_OMIC_COLUMNS, UNS_KEY_CROSS_OMIC
from poems_mu.tl._common import is_model

from ._utils import NEG_COLOR, POS_COLOR, finish, new_axes, palette


def _layout(edges: pd.DataFrame, mods: list[str]) -> dict[tuple[str, str], tuple[float, float]]:
    """One column per modality; nodes ordered by the barycentre of their neighbours (fewer crossings)."""
    nodes = {m: [] for m in mods}
    for row in edges.itertuples(index=False):
        for m, f in ((row.modality_a, row.feature_a), (row.modality_b, row.feature_b)):
            if (m, f) not in nodes[m]:
                nodes[m].append((m, f))
    pos_y = {n: float(i) for m in mods for i, n in enumerate(nodes[m])}
    nbrs: dict = {}
    for row in edges.itertuples(index=False):
        a, b = (row.modality_a, row.feature_a), (row.modality_b, row.feature_b)
        nbrs.setdefault(a, []).append(b)
        nbrs.setdefault(b, []).append(a)
    for _ in range(4):  # a few barycentre sweeps
        for m in mods:
            bary = {n: np.mean([pos_y[x] for x in nbrs[n]]) for n in nodes[m]}
            nodes[m].sort(key=lambda n, bary=bary: bary[n])
            count = len(nodes[m])
            top = max(len(v) for v in nodes.values())
            for i, n in enumerate(nodes[m]):
                pos_y[n] = (i + 0.5) * top / count  # spread shorter columns over the full height
    return {n: (float(mods.index(n[0])), -pos_y[n]) for m in mods for n in nodes[m]}


def cross_omic_network(
    data,
    *,
    n_edges: int = 30,
    significant_only: bool = True,
    label_nodes: bool = True,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    **kwargs,
):
    """Top cross-omic associations as a bipartite (multipartite) graph.

    One column of nodes per modality (feature names as labels); an edge per associated feature pair, red for a
    positive and blue for a negative Spearman ρ, its width proportional to ``|ρ|``. The ``n_edges`` pairs with the
    highest loading score are drawn. The layout is computed here (columns, nodes ordered by their neighbours'
    positions), so networkx is not needed; use :func:`poems_mu.tl.to_networkx` for graph analyses.

    Parameters
    ----------
    data
        The DataFrame of :func:`poems_mu.tl.cross_omic_associations`; a MuData on which it stored its significant
        pairs (``store=True``: ``uns["poems"]["cross_omic"]["significant_pairs"]``); or a trained model (the table
        is then computed with ``**kwargs``).
    n_edges
        Number of pairs to draw (highest score first).
    significant_only
        Draw only the pairs with ``significant`` True (a MuData holds only those: ``False`` needs the table).
    label_nodes
        Write the feature names next to the nodes.
    ax
        Axes to draw on.
    figsize
        Size of a new figure (default grows with the number of nodes).
    show, save
        As in :func:`gates` (default file name ``cross_omic_network.png``).
    **kwargs
        Passed to :func:`poems_mu.tl.cross_omic_associations` when ``data`` is a model.

    Returns
    -------
    The :class:`~matplotlib.axes.Axes` when ``show`` is ``False``.

    """
    if kwargs and not is_model(data):
        raise TypeError(
            f"Arguments {sorted(kwargs)} are passed to pm.tl.cross_omic_associations, which runs only when `data` is "
            "a model; compute the table with them and pass it instead."
        )
    if is_model(data):
        df = tl.cross_omic_associations(data, **kwargs)
    elif isinstance(data, pd.DataFrame):
        df = data
    elif isinstance(data, MuData):
        if not significant_only:
            raise ValueError(
                "A MuData holds only the significant pairs; pass the table of pm.tl.cross_omic_associations to draw "
                "the others, or use significant_only=True."
            )
        df = stored_cross_omic(data)
    else:
        raise TypeError(
            "Expected the DataFrame of cross_omic_associations, a MuData on which it was stored or a POEMS model, "
            f"got {type(data).__name__}."
        )
    missing = [c for c in ("feature_a", "modality_a", "feature_b", "modality_b", "score", "rho") if c not in df]
    if missing:
        raise ValueError(f"The table lacks columns {missing}; pass the DataFrame of pm.tl.cross_omic_associations.")
    if significant_only and "significant" in df.columns:
        df = df[df["significant"].astype(bool)]
    edges = df.sort_values("score", ascending=False, kind="stable").head(int(n_edges))
    mods = list(dict.fromkeys(list(edges["modality_a"]) + list(edges["modality_b"])))
    pos = _layout(edges, mods) if len(edges) else {}
    n_rows = max((sum(1 for n in pos if n[0] == m) for m in mods), default=1)
    fig, ax = new_axes(ax, figsize or (3.2 * max(len(mods), 2) + 1, max(3.0, 0.28 * n_rows + 1.2)))
    if not len(edges):
        ax.text(0.5, 0.5, "no associations to draw", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        ax.set_title("Cross-omic associations")
        return finish(fig, ax, show, save, "cross_omic_network")
    rho = edges["rho"].to_numpy(dtype=float)
    segs = [[pos[(r.modality_a, r.feature_a)], pos[(r.modality_b, r.feature_b)]] for r in edges.itertuples(index=False)]
    colors = [POS_COLOR if r > 0 else NEG_COLOR for r in np.nan_to_num(rho)]
    widths = 0.5 + 3.0 * np.abs(np.nan_to_num(rho))
    ax.add_collection(LineCollection(segs, colors=colors, linewidths=widths, alpha=0.6, zorder=1))
    cols = palette(len(mods))
    for i, m in enumerate(mods):
        pts = [(n, xy) for n, xy in pos.items() if n[0] == m]
        xy = np.array([p[1] for p in pts])
        ax.scatter(xy[:, 0], xy[:, 1], s=40, color=cols[i], edgecolor="black", linewidth=0.5, zorder=2, label=m)
        if label_nodes:
            left = i < len(mods) / 2
            for (_, feat), (x, y) in pts:
                ax.text(x + (-0.04 if left else 0.04), y, feat, ha="right" if left else "left", va="center", fontsize=7)
        ax.text(float(i), 0.6, m, ha="center", va="bottom", fontsize=10, fontweight="bold")
    ys = [xy[1] for xy in pos.values()]
    ax.set_xlim(-0.8, len(mods) - 0.2)
    ax.set_ylim(min(ys) - 0.8, 1.4)
    ax.set_axis_off()
    handles = [
        Line2D([0], [0], color=POS_COLOR, lw=2, label="ρ > 0"),
        Line2D([0], [0], color=NEG_COLOR, lw=2, label="ρ < 0"),
    ]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False, fontsize=8)
    what = "significant " if significant_only else ""
    ax.set_title(f"Cross-omic associations: top {len(edges)} {what}pairs by shared loadings")
    return finish(fig, ax, show, save, "cross_omic_network")


def stored_cross_omic(mdata: MuData) -> pd.DataFrame:
    """The significant pairs :func:`poems_mu.tl.cross_omic_associations` stored with ``store=True``."""
    uns = mdata.uns.get(UNS_KEY, {})
    entry = uns.get(UNS_KEY_CROSS_OMIC) if isinstance(uns, Mapping) else None
    if not isinstance(entry, Mapping) or "significant_pairs" not in entry:
        raise KeyError(
            f'mdata.uns["{UNS_KEY}"]["{UNS_KEY_CROSS_OMIC}"] not found: run `pm.tl.cross_omic_associations(model, '
            "mdata, store=True)` first, or pass the table it returns."
        )
    pairs = entry["significant_pairs"]
    df = pd.DataFrame({c: np.asarray(pairs[c]) for c in CROSS_OMIC_COLUMNS if c in pairs})
    if "significant" in df.columns:
        df["significant"] = df["significant"].astype(bool)
    return df
