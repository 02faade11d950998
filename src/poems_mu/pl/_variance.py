"""The variance each factor explains in each modality, as a heatmap."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from mudata import MuData

from poems_mu import tl
from poems_mu.tl._common import (
    is_model,
    select_factors,
)
from poems_mu.tl._variance import stored_variance_explained

from ._utils import finish


def variance_explained(
    data,
    *,
    factors=None,
    include_inactive: bool = False,
    min_r2: float | None = None,
    annotate: bool | None = None,
    cmap: str = "Purples",
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
):
    """Heatmap of the variance each factor explains per modality, with the total per modality beside it.

    The cells are leave-one-factor-out values (:func:`poems_mu.tl.variance_explained`): the drop in a modality's
    R² when the factor is set to its mean over the samples, ``R²_v,k = max(0, R²_v − R²_v(without k))``. The
    nonlinear decoder lets factors interact, so these drops need not add up to the total, which is the R² of all
    factors together (the side panel); the sum of the drops may be below or above it.

    Parameters
    ----------
    data
        The DataFrame of :func:`poems_mu.tl.variance_explained`, a MuData on which it was stored, or a trained
        model (it is then computed).
    factors
        Factor names / 0-based positions to show (default: the active factors of a model or of a MuData that
        ``store_results`` recorded them on; all factors of a DataFrame).
    include_inactive
        With ``factors=None``, show every factor.
    min_r2
        Hide factors whose leave-one-factor-out R² is below this in every modality.
    annotate
        Write the values (in % of the modality's variance) into the cells (default: with at most 20 factors).
    cmap
        Colour map.
    ax
        Axes for the heatmap; the totals then go into the modality labels instead of a side panel.
    figsize
        Size of a new figure.
    show, save
        As in :func:`gates` (default file name ``variance_explained.png``).

    Returns
    -------
    ``[heatmap_axes, totals_axes]`` (or the given ``ax``) when ``show`` is ``False``.

    """
    if isinstance(data, pd.DataFrame):
        df = data
    elif isinstance(data, MuData):
        df = stored_variance_explained(data)
    elif is_model(data):
        df = tl.variance_explained(data, store=False)
    else:
        raise TypeError(f"Expected a DataFrame, MuData or POEMS model, got {type(data).__name__}.")
    per = df[df["factor"] != "total"]
    mods = list(dict.fromkeys(per["modality"]))
    names = list(dict.fromkeys(per["factor"]))
    mat = per.pivot(index="modality", columns="factor", values="r2").loc[mods, names]
    total = df[df["factor"] == "total"].set_index("modality")["r2"].reindex(mods)
    ks = select_factors(factors, names, None if isinstance(data, pd.DataFrame) else data, include_inactive)
    mat = mat.iloc[:, ks]
    if min_r2 is not None:
        mat = mat.loc[:, (mat >= min_r2).any(axis=0)]
    if annotate is None:
        annotate = mat.shape[1] <= 20
    if ax is None:
        width = figsize[0] if figsize else max(7.5, 0.45 * mat.shape[1] + 5.0)
        height = figsize[1] if figsize else 0.5 * len(mods) + 2.4
        fig, (ax_h, ax_t) = plt.subplots(
            1,
            2,
            figsize=(width, height),
            gridspec_kw={"width_ratios": [max(mat.shape[1], 1), 3]},
            sharey=True,
            constrained_layout=True,
        )
        axes = [ax_h, ax_t]
    else:
        fig, ax_h, ax_t = ax.figure, ax, None
        axes = ax
    vals = mat.to_numpy(dtype=float)
    ax_h.grid(False)
    im = ax_h.imshow(vals, aspect="auto", interpolation="nearest", cmap=cmap, vmin=0)
    ax_h.set_xticks(np.arange(mat.shape[1]))
    ax_h.set_xticklabels(mat.columns, rotation=90)
    ax_h.set_yticks(np.arange(len(mods)))
    if ax_t is None:
        ax_h.set_yticklabels([f"{m} (total R² {t:.0%}, all factors)" for m, t in zip(mods, total, strict=True)])
    else:
        ax_h.set_yticklabels(mods)
    ax_h.set_xlabel("latent factor")
    ax_h.set_title(
        "Leave-one-factor-out R² per factor\n(R² lost without it; need not add up to the total)", fontsize=10
    )
    if annotate and vals.size:
        hi = np.nanmax(vals) if np.isfinite(vals).any() else 1.0
        for (i, j), v in np.ndenumerate(vals):
            ax_h.text(
                j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=7, color="white" if v > hi / 2 else "black"
            )
    fig.colorbar(im, ax=ax_h, label="ΔR² per factor", fraction=0.04, pad=0.01)
    if ax_t is not None:
        ax_t.barh(np.arange(len(mods)), total.to_numpy(dtype=float), color="#54278f")
        for i, t in enumerate(total):
            ax_t.text(t, i, f" {t:.0%}", va="center", fontsize=8)
        ax_t.set_xlim(0, 1)
        ax_t.set_xlabel("total R²")
        ax_t.set_title("total R²\n(all factors together)", fontsize=10)
    return finish(fig, axes, show, save, "variance_explained")
