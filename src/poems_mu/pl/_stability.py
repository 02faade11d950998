"""How well each factor comes back across runs (``tl.factor_stability``)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ._utils import finish, new_axes


def factor_stability(
    factors: pd.DataFrame,
    *,
    cmap: str = "viridis",
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
):
    """Heatmap of the matched absolute score correlation of every reference factor (rows, most reproducible first) in
    every other run (columns), from the first table of :func:`poems_mu.tl.factor_stability`.

    Parameters
    ----------
    factors
        The ``factors`` table returned by :func:`poems_mu.tl.factor_stability`.
    cmap
        Colour map of the correlations (0 to 1).
    ax, figsize, show, save
        scanpy's conventions (default file name ``factor_stability.png``).

    Returns
    -------
    The :class:`~matplotlib.axes.Axes` when ``show`` is ``False``.

    """
    cols = [c for c in factors.columns if c.startswith("run") and c.endswith("_corr") and "loading" not in c]
    if "reproducibility" not in factors.columns or not cols:
        raise ValueError("Pass the first table returned by pm.tl.factor_stability(models).")
    table = factors.sort_values("reproducibility", ascending=False, kind="mergesort")
    values = table[cols].to_numpy(dtype=float)
    if figsize is None:
        figsize = (1.2 + 0.45 * len(cols), 0.8 + 0.22 * len(table))
    fig, ax = new_axes(ax, figsize)
    ax.grid(False)
    im = ax.imshow(np.nan_to_num(values), aspect="auto", interpolation="nearest", cmap=cmap, vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), [c.removesuffix("_corr") for c in cols], rotation=90)
    labels = [f"{f} ({r:.2f})" for f, r in zip(table.index, table["reproducibility"], strict=True)]
    ax.set_yticks(range(len(table)), labels)
    ax.set_xlabel("other run")
    ax.set_ylabel("factor (reproducibility)")
    fig.colorbar(im, ax=ax, label="|corr| of matched sample scores")
    return finish(fig, ax, show, save, "factor_stability")
