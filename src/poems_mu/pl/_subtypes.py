"""Correlations of the input features and of the factors with known subtypes."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
from mudata import MuData

from poems_mu import tl

from ._utils import finish


def subtype_correlations(
    mdata: MuData,
    label_key: str,
    *,
    spaces: Sequence[str] = ("input", "latent"),
    cmap: str = "RdBu_r",
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
    **kwargs,
):
    """Subtype correlation maps in input and latent space side by side (the paper's Fig. 3).

    Parameters
    ----------
    mdata
        MuData with the latent representation and the subtype column.
    label_key
        ``obs`` column with the subtypes.
    spaces
        Which maps of :func:`poems_mu.tl.subtype_correlations` to draw (``"input"``, ``"latent"``,
        ``"input_<modality>"``).
    cmap
        Diverging colour map (range −1 … 1).
    figsize
        Size of the figure.
    show, save
        As in :func:`gates` (default file name ``subtype_correlations.png``).
    **kwargs
        Passed to :func:`poems_mu.tl.subtype_correlations`.

    Returns
    -------
    List of Axes, one per space, when ``show`` is ``False``.

    """
    maps = tl.subtype_correlations(mdata, label_key, store=False, **kwargs)
    bad = [s for s in spaces if s not in maps]
    if bad:
        raise ValueError(f"Unknown spaces {bad}; available: {list(maps)}.")
    n_g = len(maps["latent"])
    size = max(3.2, 0.55 * n_g + 1.8)
    fig, axs = plt.subplots(
        1, len(spaces), figsize=figsize or (size * len(spaces) + 1, size), squeeze=False, constrained_layout=True
    )
    axs = list(axs.ravel())
    for a, space in zip(axs, spaces, strict=True):
        c = maps[space]
        a.grid(False)
        im = a.imshow(c.to_numpy(dtype=float), vmin=-1, vmax=1, cmap=cmap)
        a.set_xticks(np.arange(n_g))
        a.set_xticklabels(c.columns, rotation=90)
        a.set_yticks(np.arange(n_g))
        a.set_yticklabels(c.index)
        for (i, j), v in np.ndenumerate(c.to_numpy(dtype=float)):
            a.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="white" if abs(v) > 0.6 else "black")
        a.set_title(f"{space.replace('_', ': ')} space")
    fig.colorbar(im, ax=axs, label="correlation of subtype centroids", fraction=0.04, pad=0.02)
    return finish(fig, axs, show, save, "subtype_correlations")
