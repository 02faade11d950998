"""The loadings map: which features each factor reaches, with what sign and size, per modality (the paper's Fig. 7)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap, ListedColormap
from mudata import MuData

from poems_mu._constants import UNS_KEY
from poems_mu.module import POEMSModule
from poems_mu.tl._common import (
    available_modalities,
    effective_source,
    is_model,
    loadings_source,
    resolve_modality_list,
    select_factors,
)

from ._utils import NEG_COLOR, POS_COLOR, finish, grid, single_or_list

#: negative → white → positive, in the package's sign colours; an odd number of colours puts 0 on pure white
SIGNED_CMAP = LinearSegmentedColormap.from_list("poems_signed", [NEG_COLOR, "#ffffff", POS_COLOR], N=255)


def loadings(
    data,
    modality: str | Sequence[str] | None = None,
    *,
    threshold: float = POEMSModule.LINK_THRESHOLD,
    binary: bool = False,
    sort_features: bool = True,
    label_top: bool = True,
    factors=None,
    include_inactive: bool = False,
    mdata: MuData | None = None,
    cmap=None,
    color: str = "#d62728",
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
):
    """Loadings map per modality: factors × features, the links with ``|W| > threshold`` in colour (Fig. 7).

    Each cell of a link is coloured by the feature's signed effective loading on the factor
    (:meth:`~poems_mu.POEMS.get_effective_loadings` with ``signed=True``, or ``varm["poems_effective_signed"]``):
    red when the feature rises with the factor, blue when it falls, darker for a larger effect; the other cells are
    white. A MuData stored without effective loadings shows the signed ``W`` instead (the colour bar says which).
    ``binary=True`` draws the links on / off only.

    The title gives the modality's sparsity as :meth:`~poems_mu.POEMS.sparsity_summary` does (at the default
    threshold it is that table's row, ``uns["poems"]["sparsity"]`` on a MuData): the share of feature–factor pairs
    with ``|W| > threshold`` over the kept factors (``density_kept``) and over all K columns, pruned ones included
    (``density``), and the links per feature (``links_per_feature``). They are over all kept factors even when
    ``factors`` shows a subset, which the title then states.

    Parameters
    ----------
    data
        A trained :class:`~poems_mu.POEMS` (sparse decoder) or a MuData with ``varm["poems_W"]``.
    modality
        Modality or list of modalities (default: all); one panel each, stacked vertically.
    threshold
        A link is drawn when ``|W| > threshold`` (the paper's 0.01, that of :meth:`~poems_mu.POEMS.sparsity_summary`).
    binary
        Links on / off only, in ``color``; the default shows the signed effective loadings.
    sort_features
        Order features by their dominant factor (the largest value drawn), then by that value, so the blocks show;
        features without a link come last. ``False`` keeps the order of ``var_names``.
    label_top
        Mark each factor's top loader (the feature with the largest value drawn in its row) with a dot and write
        its name next to it.
    factors
        Factor names / 0-based positions to show (default: the active factors, see
        :meth:`~poems_mu.POEMS.active_factors`; all factors on a MuData stored without the flags).
    include_inactive
        With ``factors=None``, show every factor.
    mdata
        With a model: the MuData to average the effective loadings over (default: the training data).
    cmap
        Diverging colour map of the signed values, centred at 0 (default: blue – white – red).
    color
        Colour of the links in the binary map.
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
    if not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"`threshold` must be a finite number >= 0, got {threshold!r}.")
    mods = resolve_modality_list(available_modalities(data), modality)
    all_names = list(loadings_source(data, mods[0])[0].columns)
    ks = select_factors(factors, all_names, data, include_inactive)
    fig, axs = grid(len(mods), 1, (10, max(2.5, 0.24 * len(ks) + 1.8)), ax, figsize)
    for a, mod in zip(axs, mods, strict=True):
        W, _ = loadings_source(data, mod)
        w = W.to_numpy(dtype=np.float64)
        linked = np.abs(w) > threshold
        stats = sparsity(data, mod, w, threshold)
        if binary:
            vals = linked[:, ks].astype(np.float64)
            strength = np.where(linked, np.abs(w), 0.0)[:, ks]
            what = "links on / off"
        else:
            E = effective_source(data, mod, mdata, signed=True)
            signed = w if E is None else E.to_numpy(dtype=np.float64)
            vals = np.where(linked, signed, 0.0)[:, ks]
            strength = np.abs(vals)
            what = "W, signed (no effective loadings stored)" if E is None else "effective loading, signed"
            what = f"colour: {what}"
        features = np.asarray(W.index.astype(str))
        if sort_features and vals.size:
            has = strength.max(1) > 0
            dom = np.where(has, strength.argmax(1), len(ks))
            order = np.lexsort((-strength.max(1), dom))
            vals, strength, features = vals[order], strength[order], features[order]
        a.grid(False)  # scanpy's styles draw a grid, which would hide the cells of a heatmap
        if binary:
            cm = ListedColormap(["white", color])
            a.imshow(vals.T, aspect="auto", interpolation="nearest", cmap=cm, vmin=0, vmax=1)
        else:
            top = float(strength.max()) if strength.size and strength.max() > 0 else 1.0
            im = a.imshow(vals.T, aspect="auto", interpolation="nearest", cmap=cmap or SIGNED_CMAP, vmin=-top, vmax=top)
            a.figure.colorbar(im, ax=a, label=what.removeprefix("colour: "), fraction=0.03, pad=0.01)
        if label_top:
            _label_top(a, strength, features)
        a.set_yticks(np.arange(len(ks)))
        a.set_yticklabels([all_names[k] for k in ks], fontsize=9)
        a.set_ylabel("factor")
        n_linked = int((strength.max(1) > 0).sum()) if strength.size else 0
        a.set_xlabel(
            f"{mod} features ({len(features)}, {n_linked} with a link shown"
            + (", sorted by dominant factor)" if sort_features else ")")
        )
        a.set_xticks([])
        a.set_title(_title(mod, threshold, stats, what, len(ks), len(all_names)))
    return finish(fig, single_or_list(axs), show, save, "loadings")


def sparsity(data, modality: str, w: np.ndarray, threshold: float) -> dict[str, float | int | None]:
    """``density_kept``, ``density`` (None when K is not known), ``links_per_feature``, ``n_kept`` and ``n_latent``.

    At the model's threshold these are :meth:`~poems_mu.POEMS.sparsity_summary`'s (a MuData's stored copy in
    ``uns["poems"]["sparsity"]``); otherwise they are computed the same way from ``w`` (features × kept factors;
    the pruned columns of W are 0, so they add to K but not to the links).
    """
    n_features, n_kept = w.shape
    cap, stored = None, None
    default = threshold == POEMSModule.LINK_THRESHOLD
    if is_model(data):
        cap = int(data.module.n_latent)
        if default:
            stored = data.sparsity_summary().loc[modality].to_dict()
    else:
        uns = data.uns.get(UNS_KEY)
        if isinstance(uns, Mapping):
            cap = int(uns["n_latent"]) if "n_latent" in uns else None
            table = uns.get("sparsity")
            if default and isinstance(table, Mapping) and isinstance(table.get(modality), Mapping):
                stored = table[modality]
    if stored is not None:
        return {
            "density_kept": float(stored["density_kept"]),
            "density": float(stored["density"]),
            "links_per_feature": float(stored["links_per_feature"]),
            "n_kept": n_kept,
            "n_latent": cap,
        }
    links = float((np.abs(w) > threshold).sum())
    return {
        "density_kept": links / max(n_features * n_kept, 1),
        "density": links / max(n_features * cap, 1) if cap else None,
        "links_per_feature": links / max(n_features, 1),
        "n_kept": n_kept,
        "n_latent": cap,
    }


def _title(mod: str, threshold: float, s: dict, colour: str, n_shown: int, n_kept: int) -> str:
    head = f"{mod}: |W| > {threshold:g} in {s['density_kept']:.1%} of feature–factor pairs"
    head += f" over the {n_kept} kept factors"
    if s["density"] is not None:
        cap = f" = {s['n_latent']}" if s["n_latent"] else ""
        head += f" ({s['density']:.1%} over all K{cap})"
    head += f"; {s['links_per_feature']:.2f} links per feature"
    tail = colour
    if n_shown != n_kept:
        tail += f"; showing {n_shown} of {n_kept} factors"
    return f"{head}\n{tail}"


def _label_top(a: Axes, strength: np.ndarray, features: np.ndarray) -> None:
    """A dot on each row's strongest feature, its name next to it (on the side with more room)."""
    n = strength.shape[0]
    for r in range(strength.shape[1]):
        if n == 0 or strength[:, r].max() <= 0:
            continue
        j = int(strength[:, r].argmax())
        left = j < n / 2
        a.plot([j], [r], ls="", marker="o", ms=3, color="black")
        a.text(
            j + 0.5 + 0.005 * n if left else j - 0.5 - 0.005 * n,
            r,
            str(features[j]),
            ha="left" if left else "right",
            va="center",
            fontsize=7,
            bbox={"boxstyle": "square,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.7},
        )
