"""The loadings map: which features each factor reaches, per modality (the paper's Fig. 7)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap

from poems_mu.tl._common import (
    available_modalities,
    loadings_source,
    resolve_modality_list,
    select_factors,
)

from ._utils import finish, grid, single_or_list


def loadings(
    data,
    modality: str | Sequence[str] | None = None,
    *,
    threshold: float = 0.01,
    binary: bool = True,
    sort_features: bool = True,
    factors=None,
    include_inactive: bool = False,
    color: str = "#d62728",
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
):
    """Sparsity map of ``|W|`` per modality: factors × features (the paper's Fig. 7).

    Parameters
    ----------
    data
        A trained :class:`~poems_mu.POEMS` (sparse decoder) or a MuData with ``varm["poems_W"]``.
    modality
        Modality or list of modalities (default: all); one panel each, stacked vertically.
    threshold
        With ``binary``, a link is active when ``|W| > threshold`` (the paper uses 0.01).
    binary
        Binary activation map; ``False`` shows ``|W|`` itself.
    sort_features
        Order features by their dominant factor (then by ``|W|``) so the blocks show; ``False`` keeps the order of
        ``var_names``.
    factors
        Factor names / 0-based positions to show (default: the active factors, see
        :meth:`~poems_mu.POEMS.active_factors`; all factors on a MuData stored without the flags).
    include_inactive
        With ``factors=None``, show every factor.
    color
        Colour of active links in the binary map.
    ax
        Axes to draw on (only with one modality).
    figsize
        Size of a new figure (default: 10 wide, a height per modality that grows with the number of factors).
    show, save
        As in :func:`gates` (default file name ``loadings.png``).

    Returns
    -------
    The Axes (one modality) or a list of Axes when ``show`` is ``False``.

    """
    mods = resolve_modality_list(available_modalities(data), modality)
    all_names = list(loadings_source(data, mods[0])[0].columns)
    ks = select_factors(factors, all_names, data, include_inactive)
    fig, axs = grid(len(mods), 1, (10, max(2.2, 0.13 * len(ks) + 1.0)), ax, figsize)
    for a, mod in zip(axs, mods, strict=True):
        W, _ = loadings_source(data, mod)
        aw = np.abs(W.to_numpy()[:, ks])
        if sort_features and aw.size:
            dom = aw.argmax(1)
            order = np.lexsort((-aw.max(1), dom))
            aw = aw[order]
        active = aw > threshold
        a.grid(False)  # scanpy's styles draw a grid, which would hide the cells of a heatmap
        if binary:
            a.imshow(
                active.T, aspect="auto", interpolation="nearest", cmap=ListedColormap(["white", color]), vmin=0, vmax=1
            )
        else:
            im = a.imshow(aw.T, aspect="auto", interpolation="nearest", cmap="Reds")
            a.figure.colorbar(im, ax=a, label="|W|", fraction=0.03, pad=0.01)
        names = [W.columns[k] for k in ks]
        if len(names) <= 40:
            a.set_yticks(np.arange(len(names)))
            a.set_yticklabels(names, fontsize=6 if len(names) > 24 else 7 if len(names) > 12 else 9)
        a.set_ylabel("factor")
        a.set_xlabel(f"{mod} features ({aw.shape[0]}" + (", sorted by dominant factor)" if sort_features else ")"))
        a.set_xticks([])
        dens = active.mean() if active.size else 0.0
        zeros = (aw == 0).mean() if aw.size else 0.0
        what = f"|W| > {threshold:g}" if binary else "|W|"
        shown = "" if len(ks) == len(all_names) else f", {len(ks)} of {len(all_names)} factors"
        a.set_title(f"{mod}: {what} ({dens:.1%} of feature–factor links active, {zeros:.1%} exactly 0{shown})")
    return finish(fig, single_or_list(axs), show, save, "loadings")
