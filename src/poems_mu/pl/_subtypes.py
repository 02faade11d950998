"""Correlations of the input features and of the factors with known subtypes."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from mudata import MuData

from poems_mu import tl
from poems_mu.tl._subtypes import stored_subtype_correlations

from ._utils import finish


def subtype_correlations(
    data: MuData | Mapping[str, pd.DataFrame],
    label_key: str | None = None,
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
    data
        The dict of maps :func:`poems_mu.tl.subtype_correlations` returns; or a MuData: with ``label_key``, the
        maps are computed from its latent representation and data (``**kwargs`` go to the ``tl`` function),
        without it they are read from ``uns["poems"]["subtype_correlations"]``, where
        ``pm.tl.subtype_correlations(mdata, label_key, store=True)`` stored them.
    label_key
        ``obs`` column with the subtypes, to compute the maps from a MuData.
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
    if isinstance(data, MuData) and label_key is not None:
        maps = tl.subtype_correlations(data, label_key, **kwargs)
    elif kwargs or label_key is not None:
        raise TypeError(
            "`label_key` and other arguments of pm.tl.subtype_correlations only apply when computing the maps from "
            "a MuData; the maps given (or stored) are drawn as they are."
        )
    elif isinstance(data, MuData):
        maps = stored_subtype_correlations(data)
    elif isinstance(data, Mapping) and all(isinstance(v, pd.DataFrame) for v in data.values()) and "latent" in data:
        maps = dict(data)
    else:
        raise TypeError(
            "Expected a MuData or the dict of DataFrames that pm.tl.subtype_correlations returns, got "
            f"{type(data).__name__}."
        )
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
