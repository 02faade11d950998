"""The top features of each factor, per modality (the paper's Figs. 2, 5, 6)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.patches import Patch
from mudata import MuData

from poems_mu import tl
from poems_mu.tl._common import (
    available_modalities,
    is_model,
    resolve_modality_list,
)

from ._utils import NEG_COLOR, POS_COLOR, finish, grid, single_or_list


def top_features(
    data,
    modality: str | Sequence[str] | None = None,
    factor=None,
    n: int = 10,
    *,
    kind: str | None = None,
    mdata: MuData | None = None,
    include_inactive: bool = False,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
):
    """Bar plots of the top features by effective loading, with their names (the paper's Figs. 2, 5 and 6).

    The bars are the effective loadings of :func:`poems_mu.tl.top_features` (the change of the feature per SD of
    the factor on the decoder's link scale, averaged over samples), not ``|W|``, which only bounds them.

    * ``kind="factor"`` (default when ``factor`` is given): one panel per factor and modality, the ``n``
      features with the largest effective loading as horizontal bars coloured by their ``direction`` (the sign of
      the signed effective loading; red: the feature rises with the factor, blue: it falls, grey: no effect) —
      Fig. 2. :func:`weights` draws the signed effective loadings themselves;
    * ``kind="aggregate"`` (default when ``factor`` is None): one panel per modality, the ``n`` features with the
      largest strength ``Σ_k effective_jk`` over the selected factors — Fig. 5;
    * ``kind="per_factor"``: one panel per modality, one bar per factor: its largest effective loading, with the
      name of that feature on the bar — Fig. 6.

    Parameters
    ----------
    data
        A trained :class:`~poems_mu.POEMS` (sparse decoder) or a MuData with stored results.
    modality
        Modality or list of modalities (default: all).
    factor
        Factor name, 0-based position, or a list of those (default: the active factors, as in
        :func:`poems_mu.tl.top_features`).
    n
        Number of features per panel.
    kind
        ``"factor"``, ``"aggregate"`` or ``"per_factor"`` (see above).
    mdata
        With a model: the MuData to average the effective loadings over (default: the training data).
    include_inactive
        With ``factor=None``, every factor instead of the active ones.
    ax
        Axes to draw on (only when there is a single panel).
    figsize
        Size of a new figure.
    show, save
        As in :func:`gates` (default file name ``top_features.png``).

    Returns
    -------
    The Axes (one panel) or a list of Axes when ``show`` is ``False``.

    """
    if kind is None:
        kind = "aggregate" if factor is None else "factor"
    if kind not in ("factor", "aggregate", "per_factor"):
        raise ValueError(f"`kind` must be 'factor', 'aggregate' or 'per_factor', got {kind!r}.")
    mods = resolve_modality_list(available_modalities(data), modality)
    kw = {"mdata": mdata} if is_model(data) else {}
    kw["include_inactive"] = include_inactive
    if kind == "factor":
        tab = tl.top_features(data, mods, factor=factor, n=n, with_corr=False, **kw)
        facs = list(dict.fromkeys(tab["factor"]))
        fig, axs = grid(len(facs), len(mods), (4.0, 0.28 * n + 1.2), ax, figsize)
        for i, f in enumerate(facs):
            for j, mod in enumerate(mods):
                a = axs[i * len(mods) + j]
                sub = tab[(tab["factor"] == f) & (tab["modality"] == mod)].sort_values("rank")
                y = np.arange(len(sub))[::-1]
                cols = [POS_COLOR if s > 0 else NEG_COLOR if s < 0 else "grey" for s in sub["direction"]]
                a.barh(y, sub["effective"], color=cols)
                a.set_yticks(y)
                a.set_yticklabels(sub["feature"], fontsize=8)
                a.set_xlabel("effective loading (per SD of the factor)")
                a.set_title(f"{mod} · {f}")
        handles = [Patch(color=POS_COLOR, label="rises with factor"), Patch(color=NEG_COLOR, label="falls with factor")]
        axs[-1].legend(handles=handles, loc="lower right", fontsize=7, frameon=False)
    elif kind == "aggregate":
        tab = tl.top_features(data, mods, factor=factor, n=n, aggregate=True, with_corr=False, **kw)
        fig, axs = grid(1, len(mods), (4.0, 0.28 * n + 1.2), ax, figsize)
        for a, mod in zip(axs, mods, strict=True):
            sub = tab[tab["modality"] == mod].sort_values("rank")
            y = np.arange(len(sub))[::-1]
            a.barh(y, sub["strength"], color="#7570b3")
            a.set_yticks(y)
            a.set_yticklabels(sub["feature"], fontsize=8)
            a.set_xlabel("strength (Σ_k effective loading)")
            a.set_title(f"{mod}: top {n} features")
    else:
        tab = tl.top_features(data, mods, factor=factor, n=1, with_corr=False, **kw)
        n_fac = tab["factor"].nunique()
        fig, axs = grid(len(mods), 1, (max(6.0, 0.35 * n_fac + 1), 2.8), ax, figsize)
        for a, mod in zip(axs, mods, strict=True):
            sub = tab[tab["modality"] == mod]
            x = np.arange(len(sub))
            a.bar(x, sub["effective"], color="#1b9e77")
            for xi, (h, name) in enumerate(zip(sub["effective"], sub["feature"], strict=True)):
                a.text(xi, h, f" {name}", rotation=90, ha="center", va="bottom", fontsize=7)
            a.set_xticks(x)
            a.set_xticklabels(sub["factor"], rotation=90, fontsize=7)
            a.set_ylabel("largest effective loading")
            top = float(sub["effective"].max()) if len(sub) else 0.0
            a.set_ylim(0, top * 2.0 if top > 0 else 1.0)
            a.set_title(f"{mod}: top feature per factor")
    return finish(fig, single_or_list(axs), show, save, "top_features")
