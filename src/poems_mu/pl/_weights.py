"""The top features of each factor with their signed effective loadings (mofax's ``plot_weights``)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from mudata import MuData

from poems_mu import tl
from poems_mu._constants import UNS_KEY
from poems_mu.tl._common import FactorSpec, available_modalities, check_positive_int, is_model

from ._utils import NEG_COLOR, POS_COLOR, finish, grid, single_or_list

#: what one unit of the effective loading is, per likelihood (the decoder's link scale)
UNITS = {
    "gaussian": "change of the standardised feature per SD of the factor",
    "nb": "log fold change of the expected count per SD of the factor",
    "bernoulli": "change of the log odds per SD of the factor",
}
LINK_SCALE = "change of the feature on the link scale per SD of the factor"
#: the columns of a :func:`poems_mu.tl.top_features` table that the plot reads
TABLE_COLUMNS = ("modality", "factor", "rank", "feature", "effective_signed")


def _likelihood(data, modality: str) -> str | None:
    """Likelihood of ``modality`` from a model or from ``uns["poems"]["likelihoods"]``; ``None`` if unknown."""
    if is_model(data):
        return data.likelihoods.get(modality)
    uns = data.uns.get(UNS_KEY) if isinstance(data, MuData) else None
    likelihoods = uns.get("likelihoods") if isinstance(uns, Mapping) else None
    return str(likelihoods[modality]) if isinstance(likelihoods, Mapping) and modality in likelihoods else None


def _table_factors(tab: pd.DataFrame, modality: str, factors: FactorSpec) -> list[str]:
    """Factors of a top-features table to draw: all of the modality's, or those asked for (names or positions)."""
    present = list(dict.fromkeys(tab["factor"].astype(str)))
    if factors is None:
        return present
    items = [factors] if isinstance(factors, str | int | np.integer) else list(factors)
    if not items:
        raise ValueError("`factors` is an empty list; pass None for every factor of the table.")
    out = []
    for f in items:
        if isinstance(f, bool) or not isinstance(f, str | int | np.integer):
            raise TypeError(f"`factors` must hold factor names or 0-based positions, got {f!r}.")
        name = f if isinstance(f, str) else f"factor_{int(f) + 1}"
        if name not in present:
            raise ValueError(
                f"Factor {f!r} is not in the table for modality {modality!r} (it has {present}); compute the table "
                "with it: `pm.tl.top_features(data, modality, factor=...)`."
            )
        out.append(name)
    if len(set(out)) != len(out):
        raise ValueError(f"Factors are repeated in {factors!r}.")
    return out


def _from_table(table: pd.DataFrame, modality: str, factors: FactorSpec) -> tuple[pd.DataFrame, list[str]]:
    """The rows of ``modality`` in a :func:`poems_mu.tl.top_features` table, checked, and the factors to draw."""
    missing = [c for c in TABLE_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(
            f"`data` is a table without the columns {missing}: pass the DataFrame returned by "
            "`pm.tl.top_features`, or the model or MuData itself."
        )
    available = list(dict.fromkeys(table["modality"].astype(str)))
    if modality not in available:
        raise ValueError(f"`modality` {modality!r} is not in the table; choose one of {available}.")
    tab = table[table["modality"].astype(str) == modality]
    for f, sub in tab.groupby("factor", sort=False):
        if sorted(sub["rank"].astype(int)) != list(range(1, len(sub) + 1)):
            raise ValueError(
                f"The table's ranks for factor {f!r} are not 1, 2, …: it looks like `aggregate=True` (ranked per "
                "modality). `weights` draws the top features of each factor: use `pm.tl.top_features(..., "
                "aggregate=False)`."
            )
    return tab, _table_factors(tab, modality, factors)


def weights(
    data,
    modality: str,
    factors: FactorSpec = None,
    n: int = 10,
    *,
    mdata: MuData | None = None,
    include_inactive: bool = False,
    ncols: int = 3,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
):
    """The top features of each factor with the sign and size of their effect (like mofax's ``plot_weights``).

    One panel per factor: the ``n`` features of ``modality`` with the largest unsigned effective loading (the
    ranking of :func:`poems_mu.tl.top_features`), rank 1 at the top, each drawn as a horizontal bar of its **signed
    effective loading** (:meth:`~poems_mu.POEMS.get_effective_loadings` with ``signed=True``: the mean over samples
    of ``∂x̂_ij/∂z_ik`` times the SD of ``z_k``). Red bars to the right of the zero line: the feature rises with the
    factor; blue bars to the left: it falls. The ranking uses the unsigned loading (the mean of ``|∂x̂_ij/∂z_ik|``),
    which is at least the bar's length: a bar shorter than those below it means the sign of the effect differs
    between samples. The sign of ``W`` itself is not drawn: through the nonlinear decoder it carries no direction.

    Parameters
    ----------
    data
        A trained :class:`~poems_mu.POEMS` (sparse decoder), a MuData with stored results
        (:meth:`~poems_mu.POEMS.store_results`), or the DataFrame returned by :func:`poems_mu.tl.top_features`
        (with ``aggregate=False``; nothing is recomputed, and only the features it holds can be drawn).
    modality
        The modality whose features are drawn.
    factors
        Factor name (``"factor_3"``), 0-based position, or a list of those (default: the active factors, see
        :meth:`~poems_mu.POEMS.active_factors`; with a table, every factor it holds for ``modality``).
    n
        Number of features per factor.
    mdata
        With a model: the MuData to average the effective loadings over (default: the training data).
    include_inactive
        With ``factors=None`` and a model or MuData, every factor instead of the active ones.
    ncols
        Panels per row of the grid.
    ax
        Axes to draw on (only when one factor is drawn).
    figsize
        Size of a new figure (default: 4.6 wide per panel, a height that grows with ``n``).
    show, save
        As in :func:`gates` (default file name ``weights.png``).

    Returns
    -------
    The Axes (one factor) or a list of Axes, one per factor, when ``show`` is ``False``.

    Examples
    --------
    >>> pm.pl.weights(model, "mrna", factors=["factor_1", "factor_2"], n=15)  # doctest: +SKIP
    >>> tab = pm.tl.top_features(model, "mrna", n=15)  # doctest: +SKIP
    >>> pm.pl.weights(tab, "mrna")  # doctest: +SKIP

    """
    n = check_positive_int(n, "n")
    ncols = check_positive_int(ncols, "ncols")
    if not isinstance(modality, str):
        raise TypeError(f"`modality` must be one modality name (a str), got {modality!r}; draw one modality per call.")
    if isinstance(data, pd.DataFrame):
        tab, facs = _from_table(data, modality, factors)
        units = LINK_SCALE
    else:
        available = available_modalities(data)
        if modality not in available:
            raise ValueError(f"`modality` {modality!r} is not available; choose one of {available}.")
        kw = {"mdata": mdata} if is_model(data) else {}
        tab = tl.top_features(
            data, modality, factor=factors, n=n, with_corr=False, include_inactive=include_inactive, **kw
        )
        facs = list(dict.fromkeys(tab["factor"]))
        units = UNITS.get(_likelihood(data, modality), LINK_SCALE)
    n_cols = min(ncols, len(facs))
    n_rows = math.ceil(len(facs) / n_cols)
    fig, axs = grid(n_rows, n_cols, (4.6, 0.28 * n + 1.4), ax, figsize)
    for extra in axs[len(facs) :]:
        fig.delaxes(extra)
    axs = axs[: len(facs)]
    for a, f in zip(axs, facs, strict=True):
        sub = tab[tab["factor"].astype(str) == f].sort_values("rank").head(n)
        x = sub["effective_signed"].to_numpy(dtype=np.float64)
        y = np.arange(len(sub))[::-1]
        a.barh(y, x, height=0.6, color=[POS_COLOR if v > 0 else NEG_COLOR if v < 0 else "grey" for v in x])
        a.axvline(0.0, color="black", lw=0.8)
        a.set_yticks(y)
        a.set_yticklabels(sub["feature"].astype(str), fontsize=8)
        lim = float(np.nanmax(np.abs(x))) if len(x) else 0.0
        lim = 1.15 * lim if np.isfinite(lim) and lim > 0 else 1.0
        a.set_xlim(-lim, lim)  # the zero line in the middle: signs read at a glance
        a.set_xlabel(f"signed effective loading\n({units})", fontsize=8)
        a.set_title(f"{modality} · {f}")
    return finish(fig, single_or_list(axs), show, save, "weights")
