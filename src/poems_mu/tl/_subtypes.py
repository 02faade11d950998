"""Subtype correlation maps in input space and in latent space (the paper's Fig. 3)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from mudata import MuData

from poems_mu._constants import LATENT_KEY, UNS_KEY

from ._common import latent, modality_data, plan_store, store_uns

UNS_KEY_SUBTYPES = "subtype_correlations"


def _centroids(x: np.ndarray, labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Mean row of each group (NaN for a group without samples)."""
    out = np.full((len(groups), x.shape[1]), np.nan)
    for i, g in enumerate(groups):
        sel = labels == g
        if sel.any():
            out[i] = x[sel].mean(0)
    return out


def _corr_rows(c: np.ndarray, groups: np.ndarray, method: str) -> pd.DataFrame:
    frame = pd.DataFrame(c.T, columns=groups)
    return frame.corr(method=method)


def subtype_correlations(
    mdata: MuData,
    label_key: str,
    modalities: Sequence[str] | None = None,
    use_rep: str = LATENT_KEY,
    layers: Mapping[str, str | None] | None = None,
    method: str = "pearson",
    center: bool = True,
    store: bool = False,
    overwrite: bool = False,
) -> dict[str, pd.DataFrame]:
    """Correlation between subtype centroids in input space and in latent space (the paper's Fig. 3).

    Each subtype's centroid is its mean profile; two subtypes correlate when their centroids do across the
    coordinates of the space. In **input space** every feature is first standardised (z-score over the samples
    that have its modality; constant features dropped) and centroids are taken per modality over the samples that
    have it; the **combined** input map concatenates the modalities' centroid blocks, each scaled by
    ``1/sqrt(n_features)`` so every modality weighs the same. In **latent space** the factors are centred (not
    scaled: inactive factors have small variance and should stay small).

    Distinct subtypes show lower (more negative) correlations; a clearer latent separation shows up as a lower
    mean off-diagonal correlation in ``"latent"`` than in ``"input"``.

    Parameters
    ----------
    mdata
        MuData with ``obsm[use_rep]`` and the subtype column.
    label_key
        ``obs`` column with the subtypes; samples with a missing label are left out.
    modalities
        Modalities of the input space (default: all).
    use_rep
        Key of the latent representation.
    layers
        ``{modality: layer}`` holding each modality's data (default ``.X``).
    method
        ``"pearson"`` or ``"spearman"``.
    center
        Centre features and factors over the samples first (default), so centroids are deviations from the
        cohort average. ``False`` correlates raw centroids (input features still scaled to unit variance but not
        centred; factors as they are): then every pair of subtypes shares the cohort's average profile and
        correlations are higher across the board.
    store
        Also store the matrices in ``mdata.uns["poems"]["subtype_correlations"]`` (where
        :func:`poems_mu.pl.subtype_correlations` reads them from a MuData) as ``{"label_key": str, "groups": str
        array, "<space>": float array (G, G)}``. Default: only return them.
    overwrite
        With ``store=True``, replace an existing entry; without it an existing entry raises an error before
        anything is computed (as :meth:`~poems_mu.POEMS.store_results`).

    Returns
    -------
    dict of pandas.DataFrame
        Subtype × subtype correlation matrices: ``"latent"``, ``"input"`` (all modalities combined) and
        ``"input_<modality>"`` for each modality.

    Examples
    --------
    >>> maps = pm.tl.subtype_correlations(mdata, "subtype")  # doctest: +SKIP
    >>> maps["input"], maps["latent"]  # doctest: +SKIP

    """
    if method not in ("pearson", "spearman"):
        raise ValueError(f"`method` must be 'pearson' or 'spearman', got {method!r}.")
    store = plan_store(mdata, UNS_KEY_SUBTYPES, store, overwrite)
    if label_key not in mdata.obs.columns:
        raise KeyError(f"obs column {label_key!r} not found; available: {list(mdata.obs.columns)}.")
    labels_s = mdata.obs[label_key]
    ok = labels_s.notna().to_numpy()
    labels = labels_s.astype(str).to_numpy()
    if isinstance(labels_s.dtype, pd.CategoricalDtype):
        groups = np.array([str(c) for c in labels_s.cat.categories if (labels_s == c).any()])
    else:
        groups = np.unique(labels[ok])
    if len(groups) < 2:
        raise ValueError(f"obs[{label_key!r}] has fewer than 2 groups.")
    mods = list(mdata.mod.keys()) if modalities is None else list(modalities)
    layers = dict(layers or {})

    z = latent(mdata, use_rep)
    if center:
        z = z - z[ok].mean(0)
    out = {"latent": _corr_rows(_centroids(z[ok], labels[ok], groups), groups, method)}
    blocks = []
    for mod in mods:
        pos, x = modality_data(mdata, mod, layers.get(mod), nan_rows_as_missing=None)
        keep = ok[pos]
        pos, x = pos[keep], x[keep]
        sd = x.std(0)
        x = x[:, sd > 0]
        x = ((x - x.mean(0)) if center else x) / sd[sd > 0]
        c = _centroids(x, labels[pos], groups)
        out[f"input_{mod}"] = _corr_rows(c, groups, method)
        if x.shape[1]:
            blocks.append(c / np.sqrt(x.shape[1]))
    out["input"] = _corr_rows(np.concatenate(blocks, axis=1), groups, method)
    out = {"input": out["input"], "latent": out["latent"], **{k: v for k, v in out.items() if k.startswith("input_")}}
    for frame in out.values():
        frame.index.name = label_key
        frame.columns.name = label_key
    if store:
        d = {"label_key": str(label_key), "groups": np.array(groups, dtype=str)}
        d.update({k: v.to_numpy(dtype=np.float64) for k, v in out.items()})
        store_uns(mdata, UNS_KEY_SUBTYPES, d, overwrite=overwrite)
    return out


def stored_subtype_correlations(mdata: MuData) -> dict[str, pd.DataFrame]:
    """The maps :func:`subtype_correlations` stored in ``mdata.uns["poems"]`` (with ``store=True``)."""
    uns = mdata.uns.get(UNS_KEY, {})
    if not isinstance(uns, Mapping) or UNS_KEY_SUBTYPES not in uns:
        raise KeyError(
            f'mdata.uns["{UNS_KEY}"]["{UNS_KEY_SUBTYPES}"] not found: run `pm.tl.subtype_correlations(mdata, '
            "label_key, store=True)` first, pass the dict it returns, or pass `label_key` to compute the maps here."
        )
    d = uns[UNS_KEY_SUBTYPES]
    groups = [str(g) for g in d["groups"]]
    label_key = str(d["label_key"]) if "label_key" in d else None
    out = {}
    for key, value in d.items():
        if key in ("label_key", "groups"):
            continue
        frame = pd.DataFrame(np.asarray(value, dtype=np.float64), index=groups, columns=groups)
        frame.index.name = label_key
        frame.columns.name = label_key
        out[str(key)] = frame
    return out


def mean_offdiagonal(corr: pd.DataFrame) -> float:
    """Mean of the off-diagonal entries of a correlation matrix."""
    c = corr.to_numpy()
    mask = ~np.eye(len(c), dtype=bool)
    return float(np.nanmean(c[mask]))
