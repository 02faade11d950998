"""What the data did to each feature set given to a model: members kept and dropped, features added, at a glance."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.patches import Patch

from poems_mu.tl._common import is_model
from poems_mu.tl._refined_sets import STATUSES, feature_set_summary

from ._utils import finish, new_axes

#: colour of each status, in the order of the bars
STATUS_COLORS = {"kept": "#1b7837", "dropped": "#bdbdbd", "added": "#e08214"}


def refined_sets(
    data,
    *,
    ax: Axes | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
) -> Axes | None:
    """One bar per feature set: its members the data kept and dropped, and the features the data added.

    Sets whose factor is inactive (the default rule of :func:`~poems_mu.tl.active_factors`) are marked
    "(inactive)": the data did not support them, whatever their members.

    Parameters
    ----------
    data
        A trained :class:`~poems_mu.POEMS` model with ``feature_sets``, or the table of
        :func:`~poems_mu.tl.feature_set_summary`.
    ax, show, save
        scanpy's plotting arguments.

    Returns
    -------
    The axes, unless ``show`` is True.

    """
    if is_model(data):
        table = feature_set_summary(data)
    elif isinstance(data, pd.DataFrame):
        missing = [c for c in (*STATUSES, "active") if c not in data.columns]
        if missing:
            raise ValueError(f"The table lacks the columns {missing}: pass pm.tl.feature_set_summary(model).")
        table = data
    else:
        raise TypeError(f"Expected a trained POEMS model or a DataFrame, got {type(data).__name__}.")
    n = len(table)
    fig, ax = new_axes(ax, (6.0, 0.35 * n + 1.2))
    y = np.arange(n)
    left = np.zeros(n)
    for status in STATUSES:
        counts = table[status].to_numpy(dtype=float)
        ax.barh(y, counts, left=left, color=STATUS_COLORS[status], height=0.7)
        left += counts
    labels = [name if bool(a) else f"{name} (inactive)" for name, a in zip(table.index, table["active"], strict=True)]
    ax.set_yticks(y)
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel("features")
    handles = [Patch(color=STATUS_COLORS[s], label=s) for s in STATUSES]
    ax.legend(handles=handles, loc="lower right", frameon=False, fontsize="small")
    ax.set_title("Feature sets refined by the data")
    return finish(fig, ax, show, save, "refined_sets")
