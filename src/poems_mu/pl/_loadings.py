"""Plots of the feature-to-factor matrices: sparsity maps (Fig. 7), top features (Figs. 2, 5, 6), R² heatmap."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch
from mudata import MuData

from poems_mu import tl
from poems_mu.tl._common import (
    available_modalities,
    is_model,
    loadings_source,
    resolve_modality_list,
    select_factors,
)
from poems_mu.tl._variance import stored_variance_explained

from ._utils import NEG_COLOR, POS_COLOR, finish


def _grid(n_rows: int, n_cols: int, cell: tuple[float, float], ax, figsize=None) -> tuple:
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


def _ret(axs: list):
    return axs[0] if len(axs) == 1 else axs


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
    fig, axs = _grid(len(mods), 1, (10, max(2.2, 0.13 * len(ks) + 1.0)), ax, figsize)
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
    return finish(fig, _ret(axs), show, save, "loadings")


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
    """Bar plots of the top features by ``|W|`` with their names (the paper's Figs. 2, 5 and 6).

    * ``kind="factor"`` (default when ``factor`` is given): one panel per factor and modality, the ``n``
      features with the largest ``|W_k|`` as horizontal bars coloured by their sign relative to the factor
      (red: the feature rises with the factor, blue: it falls) — Fig. 2;
    * ``kind="aggregate"`` (default when ``factor`` is None): one panel per modality, the ``n`` features with the
      largest strength ``Σ_k |W_jk|`` over the selected factors — Fig. 5;
    * ``kind="per_factor"``: one panel per modality, one bar per factor with the largest ``|W_k|`` and the name of
      that feature on the bar — Fig. 6.

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
        With a model: the MuData to take the signs from (default: the training data).
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
        tab = tl.top_features(data, mods, factor=factor, n=n, **kw)
        facs = list(dict.fromkeys(tab["factor"]))
        fig, axs = _grid(len(facs), len(mods), (4.0, 0.28 * n + 1.2), ax, figsize)
        for i, f in enumerate(facs):
            for j, mod in enumerate(mods):
                a = axs[i * len(mods) + j]
                sub = tab[(tab["factor"] == f) & (tab["modality"] == mod)].sort_values("rank")
                y = np.arange(len(sub))[::-1]
                cols = [POS_COLOR if s > 0 else NEG_COLOR if s < 0 else "grey" for s in sub["sign"]]
                a.barh(y, sub["abs_weight"], color=cols)
                a.set_yticks(y)
                a.set_yticklabels(sub["feature"], fontsize=8)
                a.set_xlabel("|W|")
                a.set_title(f"{mod} · {f}")
        handles = [Patch(color=POS_COLOR, label="rises with factor"), Patch(color=NEG_COLOR, label="falls with factor")]
        axs[-1].legend(handles=handles, loc="lower right", fontsize=7, frameon=False)
    elif kind == "aggregate":
        tab = tl.top_features(data, mods, factor=factor, n=n, aggregate=True, with_sign=False, **kw)
        fig, axs = _grid(1, len(mods), (4.0, 0.28 * n + 1.2), ax, figsize)
        for a, mod in zip(axs, mods, strict=True):
            sub = tab[tab["modality"] == mod].sort_values("rank")
            y = np.arange(len(sub))[::-1]
            a.barh(y, sub["strength"], color="#7570b3")
            a.set_yticks(y)
            a.set_yticklabels(sub["feature"], fontsize=8)
            a.set_xlabel("aggregated strength Σ_k |W|")
            a.set_title(f"{mod}: top {n} features")
    else:
        tab = tl.top_features(data, mods, factor=factor, n=1, with_sign=False, **kw)
        n_fac = tab["factor"].nunique()
        fig, axs = _grid(len(mods), 1, (max(6.0, 0.35 * n_fac + 1), 2.8), ax, figsize)
        for a, mod in zip(axs, mods, strict=True):
            sub = tab[tab["modality"] == mod]
            x = np.arange(len(sub))
            a.bar(x, sub["abs_weight"], color="#1b9e77")
            for xi, (h, name) in enumerate(zip(sub["abs_weight"], sub["feature"], strict=True)):
                a.text(xi, h, f" {name}", rotation=90, ha="center", va="bottom", fontsize=7)
            a.set_xticks(x)
            a.set_xticklabels(sub["factor"], rotation=90, fontsize=7)
            a.set_ylabel("max |W|")
            top = float(sub["abs_weight"].max()) if len(sub) else 1.0
            a.set_ylim(0, top * 2.0)
            a.set_title(f"{mod}: top feature per factor")
    return finish(fig, _ret(axs), show, save, "top_features")


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
    """Heatmap of the variance explained per modality × factor, with the total per modality.

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
        Hide factors whose R² is below this in every modality.
    annotate
        Write the values (in %) into the cells (default: when at most 20 factors are shown).
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
        width = figsize[0] if figsize else max(5.0, 0.45 * mat.shape[1] + 2.5)
        height = figsize[1] if figsize else 0.5 * len(mods) + 1.6
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
        ax_h.set_yticklabels([f"{m} (total {t:.0%})" for m, t in zip(mods, total, strict=True)])
    else:
        ax_h.set_yticklabels(mods)
    ax_h.set_xlabel("latent factor")
    ax_h.set_title("Variance explained per factor (R², leave-one-factor-out)")
    if annotate and vals.size:
        hi = np.nanmax(vals) if np.isfinite(vals).any() else 1.0
        for (i, j), v in np.ndenumerate(vals):
            ax_h.text(
                j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=7, color="white" if v > hi / 2 else "black"
            )
    fig.colorbar(im, ax=ax_h, label="R² per factor", fraction=0.04, pad=0.01)
    if ax_t is not None:
        ax_t.barh(np.arange(len(mods)), total.to_numpy(dtype=float), color="#54278f")
        for i, t in enumerate(total):
            ax_t.text(t, i, f" {t:.0%}", va="center", fontsize=8)
        ax_t.set_xlim(0, 1)
        ax_t.set_xlabel("total R²")
        ax_t.set_title("Total")
    return finish(fig, axes, show, save, "variance_explained")


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
