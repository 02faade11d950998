"""Two factors against each other, samples coloured by an annotation (mofax's ``plot_factors``)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.lines import Line2D
from mudata import MuData

from poems_mu._constants import LATENT_KEY, UNS_KEY
from poems_mu.tl._common import is_model, latent, resolve_factors, stored_factor_names

from ._utils import finish, grid, single_or_list
from ._utils import palette as default_palette

#: colour of the samples whose annotation is missing (and of those outside ``groups``)
NA_COLOR = "lightgray"


def factors(
    data,
    x: str | int = "factor_1",
    y: str | int = "factor_2",
    color: str | Sequence[str] | None = None,
    *,
    use_rep: str = LATENT_KEY,
    groups: Sequence[str] | None = None,
    size: float | None = None,
    palette: Sequence | Mapping | str | None = None,
    cmap: str = "viridis",
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
):
    """Scatter plot of two latent factors, one point per sample (as mofax's ``plot_factors``).

    ``sc.pl.embedding(mdata, basis="X_poems")`` shows the first two columns only; here the factors are addressed by
    name. The axis labels give each factor's share of the variance when it is known: the mean over modalities of
    its leave-one-factor-out R² (the drop in R² when the factor is set to its mean; see
    :func:`poems_mu.tl.variance_explained`), the score that ordered the factors when training ended
    (``uns["poems"]["training"]["factor_r2"]``, or ``model.training_summary_["factor_r2"]``).

    Parameters
    ----------
    data
        A MuData (or AnnData) with the latents in ``obsm[use_rep]`` (factor names from ``uns["poems"]["factors"]``
        when ``use_rep="X_poems"``, else ``factor_1 … factor_K``), or a trained :class:`~poems_mu.POEMS` (its
        latents on its training data, whose ``obs`` give the colours).
    x, y
        Factor on the horizontal / vertical axis: a name such as ``"factor_3"`` or a 0-based position.
    color
        ``obs`` column to colour the samples by, or a list of columns (one panel each, four per row). Categorical
        (or string / boolean) columns get one colour per category and a legend; numeric ones a colour bar. Samples
        whose value is missing are drawn grey, under the others.
    use_rep
        Key of the latents in ``obsm`` (MuData / AnnData only).
    groups
        With a categorical ``color``: the categories to highlight; the other samples are drawn grey, as in scanpy.
    size
        Point size (default: scanpy's ``120000 / n_samples``, at most 60).
    palette
        Colours of the categories: a list (in category order), a mapping category → colour, or a colour map name.
        Default: ``uns[f"{color}_colors"]`` when scanpy stored one that fits, else tab10 / tab20.
    cmap
        Colour map of numeric columns.
    ax
        Axes to draw on (one panel only).
    figsize
        Size of a new figure (default 4.5 × 4 per panel).
    show, save
        As in :func:`gates` (default file name ``factors.png``).

    Returns
    -------
    The Axes (one panel) or a list of Axes when ``show`` is ``False``.

    Examples
    --------
    >>> pm.pl.factors(mdata, "factor_1", "factor_3", color="subtype")  # doctest: +SKIP

    """
    z, names, obs, uns, r2 = _source(data, use_rep)
    ix, iy = _position(x, names, "x"), _position(y, names, "y")
    cols = [None] if color is None else [color] if isinstance(color, str) else list(color)
    if not cols:
        raise ValueError("`color` is an empty list; pass None for no colouring.")
    for c in cols:
        if c is not None and c not in obs.columns:
            raise KeyError(f"`color` {c!r} is not an obs column; available: {list(obs.columns)}.")
    if groups is not None and any(c is None or _is_numeric(obs[c]) for c in cols):
        raise ValueError("`groups` selects categories: use it with categorical `color` columns only.")
    size = min(120000 / max(len(z), 1), 60.0) if size is None else float(size)
    n_cols = min(len(cols), 4)
    n_rows = math.ceil(len(cols) / n_cols)
    fig, axs = grid(n_rows, n_cols, (4.5, 4.0), ax, figsize)
    for a in axs[len(cols) :]:
        a.set_visible(False)
    axs = axs[: len(cols)]
    xy = z[:, [ix, iy]]
    for a, c in zip(axs, cols, strict=True):
        if c is None:
            a.scatter(xy[:, 0], xy[:, 1], s=size, color="#4c72b0", linewidths=0)
        elif _is_numeric(obs[c]):
            _numeric(a, xy, obs[c], size, cmap)
        else:
            _categorical(a, xy, obs[c], size, _colors(obs[c], c, uns, palette), groups)
        a.set_xlabel(_label(names[ix], r2, ix))
        a.set_ylabel(_label(names[iy], r2, iy))
        a.set_title("" if c is None else str(c))
    return finish(fig, single_or_list(axs), show, save, "factors")


def _position(f, names: list[str], arg: str) -> int:
    """0-based position of factor ``f`` (a name or a position), or an error naming the argument."""
    if isinstance(f, bool) or not isinstance(f, str | int | np.integer):
        raise TypeError(f"`{arg}` must be one factor name (such as 'factor_1') or a 0-based position, got {f!r}.")
    try:
        return resolve_factors(f, names)[0]
    except ValueError as err:
        raise ValueError(f"`{arg}`: {err}") from None


def _source(data, use_rep: str):
    """Latents, factor names, sample annotations, ``uns`` and the per-factor R² (or None) of a model or MuData."""
    if is_model(data):
        z = np.asarray(data.get_latent_representation(), dtype=np.float64)
        names = data.factor_names()
        summary = getattr(data, "training_summary_", None) or {}
        r2 = summary.get("factor_r2")
        return z, names, data.adata.obs, data.adata.uns, _fitting(r2, len(names))
    if not isinstance(data, MuData | AnnData):
        raise TypeError(f"Expected a MuData, AnnData or trained POEMS model, got {type(data).__name__}.")
    z = latent(data, use_rep)
    if use_rep != LATENT_KEY:
        return z, [f"factor_{k + 1}" for k in range(z.shape[1])], data.obs, data.uns, None
    names = stored_factor_names(data, z.shape[1])
    uns = data.uns.get(UNS_KEY)
    training = uns.get("training") if isinstance(uns, Mapping) else None
    r2 = training.get("factor_r2") if isinstance(training, Mapping) else None
    return z, names, data.obs, data.uns, _fitting(r2, len(names))


def _fitting(r2, n: int) -> np.ndarray | None:
    if r2 is None:
        return None
    r2 = np.asarray(r2, dtype=np.float64).ravel()
    return r2 if len(r2) == n else None


def _label(name: str, r2: np.ndarray | None, k: int) -> str:
    if r2 is None or not np.isfinite(r2[k]):
        return name
    return f"{name} ({r2[k]:.1%} of variance, leave-one-out)"


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _categories(s: pd.Series) -> list[str]:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return [str(c) for c in s.cat.categories]
    return sorted(s.dropna().astype(str).unique().tolist())


def _colors(s: pd.Series, key: str, uns: Mapping, palette) -> dict[str, tuple]:
    """Colour of each category: from ``palette``, else scanpy's ``uns[f"{key}_colors"]``, else tab10 / tab20."""
    cats = _categories(s)
    if palette is None:
        stored = uns.get(f"{key}_colors")
        if stored is not None and len(stored) == len(cats):
            return {c: to_rgba(col) for c, col in zip(cats, stored, strict=True)}
        return dict(zip(cats, default_palette(len(cats)), strict=True))
    if isinstance(palette, str):
        import matplotlib.pyplot as plt

        cm = plt.get_cmap(palette)
        return {c: cm(i % cm.N if cm.N < 256 else i / max(len(cats) - 1, 1)) for i, c in enumerate(cats)}
    if isinstance(palette, Mapping):
        missing = [c for c in cats if c not in {str(k) for k in palette}]
        if missing:
            raise ValueError(f"`palette` has no colour for the categories {missing} of {key!r}.")
        return {str(k): to_rgba(v) for k, v in palette.items()}
    palette = list(palette)
    if len(palette) < len(cats):
        raise ValueError(f"`palette` has {len(palette)} colours; {key!r} has {len(cats)} categories.")
    return {c: to_rgba(col) for c, col in zip(cats, palette, strict=False)}


def _categorical(a: Axes, xy: np.ndarray, s: pd.Series, size: float, colors: dict, groups) -> None:
    """Missing (and unselected) samples grey underneath, the others in their category's colour, with a legend."""
    labels = np.array([None if pd.isna(v) else str(v) for v in s], dtype=object)
    present = [c for c in colors if (labels == c).any()]
    if groups is not None:
        groups = [str(g) for g in ([groups] if isinstance(groups, str) else groups)]
        unknown = [g for g in groups if g not in colors]
        if unknown:
            raise ValueError(f"`groups` {unknown} are not categories of {s.name!r}; categories: {list(colors)}.")
        present = [c for c in present if c in groups]
    keep = set(present)
    shown = np.array([lab is not None and lab in keep for lab in labels], dtype=bool)
    if (~shown).any():
        a.scatter(xy[~shown, 0], xy[~shown, 1], s=size, color=NA_COLOR, linewidths=0)
    a.scatter(xy[shown, 0], xy[shown, 1], s=size, c=[colors[lab] for lab in labels[shown]], linewidths=0)
    handles = [Line2D([], [], ls="", marker="o", color=colors[c], label=c) for c in present]
    if s.isna().any() and groups is None:
        handles.append(Line2D([], [], ls="", marker="o", color=NA_COLOR, label="NA"))
    a.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)


def _numeric(a: Axes, xy: np.ndarray, s: pd.Series, size: float, cmap: str) -> None:
    """Missing samples grey underneath, the others on ``cmap`` with a colour bar."""
    v = s.to_numpy(dtype=np.float64)
    ok = np.isfinite(v)
    if (~ok).any():
        a.scatter(xy[~ok, 0], xy[~ok, 1], s=size, color=NA_COLOR, linewidths=0)
    sc = a.scatter(xy[ok, 0], xy[ok, 1], s=size, c=v[ok], cmap=cmap, linewidths=0)
    a.figure.colorbar(sc, ax=a, label=str(s.name), fraction=0.05, pad=0.02)
