"""Per-sample gating weights and modality contributions, grouped by a sample annotation."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from mudata import MuData

from poems_mu._constants import CONTRIBUTIONS_KEY, GATES_KEY
from poems_mu.tl._common import is_model

from ._utils import as_str_labels, finish, group_order, group_ticks, new_axes, palette


def _gates_frame(data, kind: str = "gate") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gating weights or effective contributions (samples × modalities) and the obs table to group them by."""
    if kind not in ("gate", "contribution"):
        raise ValueError(f"kind must be 'gate' or 'contribution', got {kind!r}.")
    key = GATES_KEY if kind == "gate" else CONTRIBUTIONS_KEY
    if is_model(data):
        g = data.get_gating_weights() if kind == "gate" else data.get_contributions()
        return g.drop(columns=["prior"], errors="ignore"), data.adata.obs
    if isinstance(data, MuData):
        if key not in data.obsm:
            raise KeyError(f"obsm[{key!r}] not found: run `model.store_results(mdata)` first, or pass the model.")
        g = data.obsm[key]
        if isinstance(g, pd.DataFrame):
            g = g.drop(columns=["prior"], errors="ignore")
        if not isinstance(g, pd.DataFrame):
            from poems_mu._constants import UNS_KEY

            mods = data.uns.get(UNS_KEY, {}).get("modalities", [f"modality_{i}" for i in range(np.shape(g)[1])])
            g = pd.DataFrame(np.asarray(g), index=data.obs_names, columns=[str(m) for m in mods])
        return g, data.obs
    raise TypeError(f"Expected a POEMS model or a MuData with stored results, got {type(data).__name__}.")


def modality_patterns(weights: np.ndarray, modalities: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Each sample's pattern of modalities (``"mrna+mirna"``: those with a non-zero weight; a missing modality's is
    exactly 0) and the patterns in display order: most modalities first, then by name.
    """
    has = weights > 0
    patterns = np.array(["+".join(m for m, h in zip(modalities, row, strict=True) if h) for row in has])
    order = sorted(set(patterns.tolist()), key=lambda p: (-(p.count("+") + 1), p))
    return patterns, order


def _pattern_labels(ax: Axes, patterns: np.ndarray, pattern_order: list[str]) -> None:
    """Under the group ticks, each pattern of modalities once, centred on its samples; solid lines between them."""
    from matplotlib.transforms import blended_transform_factory

    trans = blended_transform_factory(ax.transData, ax.transAxes)
    for i, pattern in enumerate(pattern_order):
        where = np.flatnonzero(patterns == pattern)
        ax.text((where[0] + where[-1]) / 2, -0.11, pattern, transform=trans, ha="center", va="top", fontsize=9)
        if i:
            ax.axvline(where[0] - 0.5, color="black", lw=1.6)


def gates(
    data,
    groupby: str | None = None,
    *,
    kind: str = "gate",
    sort: bool = True,
    colors: Sequence | None = None,
    legend: bool = True,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (10, 3.5),
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
):
    """Per-sample gating weights α, or effective contributions, as stacked bars grouped by the modalities each
    sample has, and by an ``obs`` column within that.

    Each bar is one sample; its segments sum to 1 over the modalities the sample has, and a missing modality has
    0. Samples are grouped first by their pattern of modalities (most complete first), because the weights of the
    modalities a sample has depend on which others it lacks: grouped by ``groupby`` alone, the missing-data
    pattern would show as a difference between groups.

    ``kind="gate"`` shows the gating weights α (the paper's Fig. 4); ``kind="contribution"`` shows each modality's
    share of the fused posterior precision, ``α_v τ_v / Σ_u α_u τ_u`` averaged over the factors
    (:meth:`~poems_mu.POEMS.get_contributions`): how much the modality actually moves the posterior, which a large
    gate on a wide (uncertain) expert does not.

    Parameters
    ----------
    data
        A trained :class:`~poems_mu.POEMS` or a MuData with ``obsm["poems_gates"]`` / ``["poems_contributions"]``
        (from ``store_results``).
    groupby
        ``obs`` column to group the samples by within each pattern of modalities (e.g. ``"subtype"``); groups are
        separated by dashed lines and labelled on the x axis (with the pattern, ``"mrna+mirna"``, when the samples
        have more than one).
    kind
        ``"gate"`` or ``"contribution"``.
    sort
        Within each group, sort samples by decreasing weight of the first modality.
    colors
        One colour per modality.
    legend
        Draw a legend of the modalities.
    ax
        Axes to draw on (default: a new figure).
    figsize
        Size of a new figure.
    show
        Show the figure (default: ``scanpy.settings.autoshow``); with ``False`` the axes are returned.
    save
        File name to save to, or ``True`` for ``{scanpy.settings.figdir}/gates.png``.

    Returns
    -------
    The :class:`~matplotlib.axes.Axes` when ``show`` is ``False``.

    """
    g, obs = _gates_frame(data, kind)
    if groupby is not None:
        if groupby not in obs.columns:
            raise KeyError(f"obs column {groupby!r} not found; available: {list(obs.columns)}.")
        labels = as_str_labels(obs[groupby].reindex(g.index))
        groups = group_order(obs[groupby].reindex(g.index))
    else:
        labels = np.array(["all"] * len(g))
        groups = ["all"]
    vals = g.to_numpy(dtype=float)
    patterns, pattern_order = modality_patterns(vals, [str(c) for c in g.columns])
    order, sizes, names = [], [], []
    for pattern in pattern_order:
        for grp in groups:
            idx = np.flatnonzero((patterns == pattern) & (labels == grp))
            if not len(idx):
                continue
            if sort:
                idx = idx[np.argsort(-vals[idx, 0], kind="stable")]
            order.append(idx)
            sizes.append(len(idx))
            names.append(pattern if groupby is None and len(pattern_order) > 1 else grp)
    order = np.concatenate(order)
    vals = vals[order]
    colors = list(colors) if colors is not None else palette(vals.shape[1])
    fig, ax = new_axes(ax, figsize)
    x = np.arange(len(order))
    bottom = np.zeros(len(order))
    for v, mod in enumerate(g.columns):
        ax.bar(x, vals[:, v], bottom=bottom, width=1.0, color=colors[v], label=str(mod), linewidth=0)
        bottom += vals[:, v]
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_ylim(0, 1)
    if groupby is not None or len(pattern_order) > 1:
        group_ticks(ax, names, sizes, axis="x")
        two_rows = groupby is not None and len(pattern_order) > 1
        if two_rows:
            _pattern_labels(ax, patterns[order], pattern_order)
        by = [] if len(pattern_order) == 1 else ["the modalities they have"]
        label = "samples grouped by " + " and ".join(by + ([groupby] if groupby is not None else []))
        ax.set_xlabel(label, labelpad=16 if two_rows else 4)
    else:
        ax.set_xticks([])
        ax.set_xlabel("samples")
    if kind == "gate":
        ax.set_ylabel("gating weight α")
        ax.set_title("Gating weights per sample")
    else:
        ax.set_ylabel("share of posterior precision")
        ax.set_title("Effective contributions per sample (α τ / Σ α τ)")
    if legend:
        ax.legend(title="modality", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    return finish(fig, ax, show, save, "gates" if kind == "gate" else "contributions")
