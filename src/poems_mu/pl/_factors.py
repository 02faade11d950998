"""Factor scores of the samples, grouped by a sample annotation, as a heatmap."""

from __future__ import annotations

import os

import numpy as np
from matplotlib.axes import Axes
from mudata import MuData

from poems_mu._constants import LATENT_KEY
from poems_mu.tl._common import latent, select_factors, stored_factor_names

from ._utils import as_str_labels, finish, group_order, group_ticks, new_axes


def factor_heatmap(
    mdata: MuData,
    groupby: str,
    *,
    use_rep: str = LATENT_KEY,
    factors=None,
    include_inactive: bool = False,
    standard_scale: bool = False,
    cmap: str = "RdBu_r",
    vmax: float | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (8, 6),
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
):
    """Heatmap of the latent factors, samples sorted by group (the paper's Fig. 8).

    Rows are samples (sorted by ``groupby``, dashed lines between groups), columns are factors.

    Parameters
    ----------
    mdata
        MuData with the latent representation in ``obsm[use_rep]``.
    groupby
        ``obs`` column to sort and label the samples by.
    use_rep
        Key of the latent representation.
    factors
        Factor names / 0-based positions to show (default: with ``use_rep="X_poems"``, the active factors that
        ``store_results`` recorded; otherwise all).
    include_inactive
        With ``factors=None``, show every factor.
    standard_scale
        Z-score each factor over the samples first.
    cmap
        Diverging colour map.
    vmax
        Colour range ``[-vmax, vmax]`` (default: the 99th percentile of ``|value|``).
    ax, figsize, show, save
        As in :func:`gates` (default file name ``factor_heatmap.png``).

    Returns
    -------
    The :class:`~matplotlib.axes.Axes` when ``show`` is ``False``.

    """
    z = latent(mdata, use_rep)
    if use_rep == LATENT_KEY:
        names = stored_factor_names(mdata, z.shape[1])
    else:
        names = [f"factor_{k + 1}" for k in range(z.shape[1])]
    ks = select_factors(factors, names, mdata if use_rep == LATENT_KEY else None, include_inactive)
    z = z[:, ks]
    if standard_scale:
        sd = z.std(0)
        z = (z - z.mean(0)) / np.where(sd > 0, sd, 1.0)
    if groupby not in mdata.obs.columns:
        raise KeyError(f"obs column {groupby!r} not found; available: {list(mdata.obs.columns)}.")
    labels = as_str_labels(mdata.obs[groupby])
    groups = group_order(mdata.obs[groupby])
    order = np.concatenate([np.flatnonzero(labels == grp) for grp in groups])
    sizes = [int((labels == grp).sum()) for grp in groups]
    vmax = float(np.nanpercentile(np.abs(z), 99)) if vmax is None else float(vmax)
    fig, ax = new_axes(ax, figsize)
    ax.grid(False)  # scanpy's styles draw a grid over heatmaps otherwise
    im = ax.imshow(z[order], aspect="auto", interpolation="nearest", cmap=cmap, vmin=-vmax, vmax=vmax)
    group_ticks(ax, groups, sizes, axis="y")
    ax.set_xticks(np.arange(len(ks)))
    ax.set_xticklabels([names[k] for k in ks], rotation=90)
    ax.set_xlabel("latent factor")
    ax.set_ylabel(f"samples sorted by {groupby}")
    ax.set_title(f"Latent factors ({use_rep}) by {groupby}")
    fig.colorbar(im, ax=ax, label="z-score" if standard_scale else "posterior mean", fraction=0.04, pad=0.02)
    return finish(fig, ax, show, save, "factor_heatmap")
