"""scanpy-style plumbing shared by the plots: ``ax``/``show``/``save`` handling, group ordering, colours."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: colours of positive / negative signs and correlations
POS_COLOR = "#c0392b"
NEG_COLOR = "#2166ac"


def finish(fig: Figure, axes, show: bool | None, save: bool | str | os.PathLike | None, name: str):
    """Save and/or show a figure the way scanpy does; return ``axes`` unless it was shown.

    ``save`` is a file name (``.png`` appended when it has no extension) or ``True`` for
    ``{scanpy.settings.figdir}/{name}.png``. ``show=None`` follows ``scanpy.settings.autoshow``.
    """
    if save:
        if save is True:
            from scanpy import settings

            path = os.path.join(str(settings.figdir), f"{name}.png")
        else:
            path = os.fspath(save)
            if not os.path.splitext(path)[1]:
                path += ".png"
        folder = os.path.dirname(path)
        if folder:
            os.makedirs(folder, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    if show is None:
        from scanpy import settings

        show = bool(settings.autoshow)
    if show:
        plt.show()
        return None
    return axes


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure with one axes."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize)
    return fig, ax


def group_order(labels: pd.Series) -> list[str]:
    """Groups in categorical order (used categories only), else sorted; missing labels become ``"NA"``."""
    if isinstance(labels.dtype, pd.CategoricalDtype):
        cats = [str(c) for c in labels.cat.categories if (labels == c).any()]
    else:
        cats = sorted(labels.dropna().astype(str).unique().tolist())
    if labels.isna().any():
        cats.append("NA")
    return cats


def as_str_labels(labels: pd.Series) -> np.ndarray:
    """Labels as strings with ``"NA"`` for missing values."""
    return labels.astype(object).where(labels.notna(), "NA").astype(str).to_numpy()


def group_ticks(ax: Axes, groups: Sequence[str], sizes: Sequence[int], axis: str = "x", lines: bool = True) -> None:
    """Tick labels at the centre of consecutive groups, with dashed separators between them."""
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    centres = (bounds[:-1] + bounds[1:]) / 2 - 0.5
    if axis == "x":
        ax.set_xticks(centres)
        ax.set_xticklabels(groups)
        if lines:
            for b in bounds[1:-1]:
                ax.axvline(b - 0.5, color="black", lw=0.8, ls="--")
    else:
        ax.set_yticks(centres)
        ax.set_yticklabels(groups)
        if lines:
            for b in bounds[1:-1]:
                ax.axhline(b - 0.5, color="black", lw=0.8, ls="--")


def palette(n: int) -> list:
    """``n`` distinct colours (tab10, then tab20)."""
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def grid(n_rows: int, n_cols: int, cell: tuple[float, float], ax, figsize=None) -> tuple:
    """A figure of ``n_rows × n_cols`` panels of size ``cell`` each (or ``ax``, for one panel) and its axes."""
    if ax is not None:
        if n_rows * n_cols != 1:
            raise ValueError(
                f"This plot has {n_rows * n_cols} panels; `ax` works only for one (select one modality/factor)."
            )
        return ax.figure, [ax]
    fig, axs = plt.subplots(
        n_rows,
        n_cols,
        figsize=figsize or (cell[0] * n_cols, cell[1] * n_rows),
        squeeze=False,
        constrained_layout=True,
    )
    return fig, list(axs.ravel())


def single_or_list(axs: list):
    """One axes as itself, several as a list (what a plot with ``show=False`` returns)."""
    return axs[0] if len(axs) == 1 else axs
