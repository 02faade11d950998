"""Factor scores of the samples, grouped by a sample annotation, as a heatmap."""

from __future__ import annotations

import os
from typing import Literal

import numpy as np
from matplotlib.axes import Axes
from mudata import MuData

from poems_mu._constants import LATENT_KEY
from poems_mu.tl._common import latent, select_factors, stored_factor_names

from ._utils import as_str_labels, finish, group_order, group_ticks, new_axes


def factor_heatmap(
    mdata: MuData,
    groupby: str,
    *,
    use_rep: str = LATENT_KEY,
    factors=None,
    include_inactive: bool = False,
    standard_scale: Literal["var", "obs"] | None = None,
    sort_factors: bool = True,
    cmap: str | None = None,
    vmax: float | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: bool | str | os.PathLike | None = None,
):
    """Heatmap of the latent factors, samples sorted by group (the paper's Fig. 8).

    Rows are samples (sorted by ``groupby``, dashed lines between groups), columns are factors. By default the
    factors are ordered by how strongly they separate the groups: by η² (eta squared), the share of the factor's
    variance over the samples that lies between the group means,
    ``η²_k = Σ_g n_g (z̄_gk − z̄_k)² / Σ_i (z_ik − z̄_k)²`` (0: the groups have the same mean, 1: the factor is
    constant within each group; the R² of a one-way ANOVA of the factor on the groups). It is computed on the
    posterior means before any scaling, over the samples with a label, and shown in the tick labels.

    Parameters
    ----------
    mdata
        MuData with the latent representation in ``obsm[use_rep]``.
    groupby
        ``obs`` column to sort and label the samples by.
    use_rep
        Key of the latent representation.
    factors
        Factor names / 0-based positions to show (default: with ``use_rep="X_poems"``, the active factors that
        ``store_results`` recorded; otherwise all).
    include_inactive
        With ``factors=None``, show every factor.
    standard_scale
        As in scanpy: ``"var"`` scales each factor to 0–1 over the samples (``(z − min) / (max − min)``), ``"obs"``
        each sample to 0–1 over the factors shown; ``None`` shows the posterior means on a diverging scale.
    sort_factors
        Order the factors by η² with ``groupby``, largest first; ``False`` keeps the model's order (by the variance
        they explain) and the η² stays in the tick labels.
    cmap
        Colour map (default: ``"RdBu_r"`` centred at 0 without scaling, ``"viridis"`` on the 0–1 scale).
    vmax
        Without ``standard_scale``, the colour range ``[-vmax, vmax]`` (default: the 99th percentile of
        ``|value|``).
    ax, figsize, show, save
        As in :func:`gates` (default file name ``factor_heatmap.png``; the default width grows with the factors).

    Returns
    -------
    The :class:`~matplotlib.axes.Axes` when ``show`` is ``False``.

    """
    if isinstance(standard_scale, bool) or standard_scale not in ("var", "obs", None):
        raise ValueError(
            f"`standard_scale` must be 'var', 'obs' or None (scanpy's meaning), got {standard_scale!r}: pass "
            "standard_scale='var' to scale each factor to 0–1 over the samples, 'obs' to scale each sample to 0–1 "
            "over the factors, or None for the posterior means."
        )
    if groupby not in mdata.obs.columns:
        raise KeyError(f"`groupby` {groupby!r} is not an obs column; available: {list(mdata.obs.columns)}.")
    z = latent(mdata, use_rep)
    if use_rep == LATENT_KEY:
        names = stored_factor_names(mdata, z.shape[1])
    else:
        names = [f"factor_{k + 1}" for k in range(z.shape[1])]
    ks = select_factors(factors, names, mdata if use_rep == LATENT_KEY else None, include_inactive)
    z = z[:, ks]
    labels = as_str_labels(mdata.obs[groupby])
    eta = eta_squared(z, labels, mdata.obs[groupby].notna().to_numpy())
    cols = np.argsort(-eta, kind="stable") if sort_factors else np.arange(len(ks))
    z, eta = z[:, cols], eta[cols]
    z, what = _scale(z, standard_scale)
    groups = group_order(mdata.obs[groupby])
    order = np.concatenate([np.flatnonzero(labels == grp) for grp in groups])
    sizes = [int((labels == grp).sum()) for grp in groups]
    if standard_scale is None:
        vmax = float(np.nanpercentile(np.abs(z), 99)) if vmax is None else float(vmax)
        vmin, cmap = -vmax, cmap or "RdBu_r"
    else:
        vmin, vmax, cmap = 0.0, 1.0, cmap or "viridis"
    fig, ax = new_axes(ax, figsize or (max(6.0, 0.45 * len(ks) + 3.5), 6.0))
    ax.grid(False)  # scanpy's styles draw a grid over heatmaps otherwise
    im = ax.imshow(z[order], aspect="auto", interpolation="nearest", cmap=cmap, vmin=vmin, vmax=vmax)
    group_ticks(ax, groups, sizes, axis="y")
    ax.set_xticks(np.arange(len(ks)))
    ax.set_xticklabels([f"{names[ks[c]]} (η² {e:.2f})" for c, e in zip(cols, eta, strict=True)], rotation=90)
    ax.set_xlabel(f"latent factor, sorted by η² with {groupby}" if sort_factors else "latent factor (model order)")
    ax.set_ylabel(f"samples sorted by {groupby}")
    ax.set_title(f"Latent factors ({use_rep}) by {groupby}")
    fig.colorbar(im, ax=ax, label=what, fraction=0.04, pad=0.02)
    return finish(fig, ax, show, save, "factor_heatmap")


def eta_squared(z: np.ndarray, labels: np.ndarray, labelled: np.ndarray) -> np.ndarray:
    """η² of each column of ``z`` with ``labels`` over the ``labelled`` samples (0 for a constant column)."""
    z, labels = z[labelled], labels[labelled]
    if len(z) == 0:
        return np.zeros(z.shape[1])
    centred = z - z.mean(0)
    total = (centred**2).sum(0)
    between = np.zeros(z.shape[1])
    for g in dict.fromkeys(labels):
        rows = labels == g
        between += rows.sum() * centred[rows].mean(0) ** 2
    return np.where(total > 0, between / np.where(total > 0, total, 1.0), 0.0)


def _scale(z: np.ndarray, standard_scale: str | None) -> tuple[np.ndarray, str]:
    """``z`` scaled to 0–1 per factor (``"var"``) or per sample (``"obs"``), and the colour bar's label."""
    if standard_scale is None:
        return z, "posterior mean"
    axis = 0 if standard_scale == "var" else 1
    lo = z.min(axis, keepdims=True)
    span = z.max(axis, keepdims=True) - lo
    scaled = (z - lo) / np.where(span > 0, span, 1.0)
    return scaled, "scaled to 0–1 per factor" if axis == 0 else "scaled to 0–1 per sample"
