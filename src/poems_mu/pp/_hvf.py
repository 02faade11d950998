"""Highly variable feature selection for bulk multi-omics data."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData
from sklearn.utils.sparsefuncs import mean_variance_axis

from ._utils import _label, check_numeric, get_matrix, iter_modalities


def _feature_stats(X) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and sample variance (``ddof=1``), ignoring NaN. Features with < 2 values get NaN."""
    if sp.issparse(X):
        X = sp.csr_matrix(X)
        if not np.issubdtype(X.dtype, np.floating):
            X = X.astype(np.float64)
        n_nan = np.bincount(X.indices[np.isnan(X.data)], minlength=X.shape[1])
        n_valid = (X.shape[0] - n_nan).astype(np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean, var0 = mean_variance_axis(X, axis=0)  # ignores NaN, ddof=0
            mean = np.where(n_valid > 0, mean, np.nan)
            var = np.where(n_valid > 1, var0 * n_valid / np.maximum(n_valid - 1, 1), np.nan)
        return np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN features / fewer than 2 values
        return np.nanmean(X, axis=0), np.nanvar(X, axis=0, ddof=1)


def highly_variable_features(
    data: MuData | AnnData,
    modality: str | Iterable[str] | None = None,
    layer: str | None = None,
    n_top: int | Mapping[str, int] = 2000,
    flavor: Literal["variance", "dispersion"] = "variance",
    key_added: str = "highly_variable",
    overwrite: bool = False,
    subset: bool = False,
) -> MuData | AnnData | None:
    """Flag the most variable features of each modality of bulk multi-omics data.

    Features are ranked per modality, independently of the other modalities, by

    * ``flavor="variance"`` (default): the per-feature sample variance (``ddof=1``). Suited to data on a
      comparable scale within a modality, e.g. log-transformed expression or methylation beta values.
    * ``flavor="dispersion"``: the index of dispersion ``variance / mean``, which favours features that vary
      more than their abundance predicts. Only defined for non-negative data (e.g. counts); features with
      mean 0 cannot be ranked.

    The ``n_top`` best-ranked features are flagged (ties are broken by feature order). Unlike
    :func:`scanpy.pp.highly_variable_genes`, no binning by mean expression is done: single-cell mean-variance
    models do not apply to bulk omics.

    Parameters
    ----------
    data : mudata.MuData or anndata.AnnData
        Data to annotate.
    modality : str or list of str, optional
        Modalities of a MuData to process; ``None`` (default) processes all of them. Must be ``None`` for an
        AnnData.
    layer : str, optional
        Input layer; ``None`` (default) uses ``.X``.
    n_top : int or dict of str to int, default 2000
        Number of features to flag per modality, or a mapping ``{modality: n_top}`` (modalities absent from
        the mapping are flagged entirely). If a modality has fewer rankable features, all of them are flagged.
    flavor : {"variance", "dispersion"}, default "variance"
        Ranking statistic, see above.
    key_added : str, default "highly_variable"
        ``var`` column receiving the boolean flags.
    overwrite : bool, default False
        Replace existing ``var`` columns (``key_added``, ``"variance"`` and, for ``flavor="dispersion"``,
        ``"dispersion"``). Otherwise an existing column raises ``ValueError``.
    subset : bool, default False
        If True, ``data`` is left untouched and a new, annotated object restricted to the flagged features
        of the processed modalities is returned (other modalities are copied whole).

    Returns
    -------
    mudata.MuData or anndata.AnnData or None
        ``None`` if ``subset=False``: each processed ``adata.var`` gets the columns ``key_added`` (bool),
        ``"variance"`` (float) and, for ``flavor="dispersion"``, ``"dispersion"`` (float). With
        ``subset=True``, a new object of the same type as ``data``. For a MuData, the columns are written to
        the modalities' ``var``; use :meth:`mudata.MuData.pull_var` to see them in the global ``var``.

    Raises
    ------
    ValueError
        If ``n_top`` is not positive, ``flavor`` is unknown, a ``var`` column exists and ``overwrite`` is
        False, or ``flavor="dispersion"`` is used on data with negative values.
    KeyError
        If a modality or ``layer`` does not exist.

    Warns
    -----
    UserWarning
        If some features cannot be ranked (all NaN, fewer than 2 non-NaN values, or mean 0 with
        ``flavor="dispersion"``); they are never flagged.

    Notes
    -----
    NaN values are ignored in the statistics (``nanmean``/``nanvar``) and left in place in the data.

    """
    if flavor not in ("variance", "dispersion"):
        raise ValueError(f"`flavor` must be 'variance' or 'dispersion', got {flavor!r}.")
    if not isinstance(key_added, str) or not key_added:
        raise ValueError(f"`key_added` must be a non-empty string, got {key_added!r}.")
    stat_cols = ["variance"] + (["dispersion"] if flavor == "dispersion" else [])
    if key_added in stat_cols:
        raise ValueError(f"`key_added` cannot be {key_added!r}: that column holds the statistics.")
    targets = iter_modalities(data, modality)
    if isinstance(n_top, Mapping):
        unknown = sorted(set(n_top) - {name for name, _ in targets})
        if unknown:
            raise KeyError(f"`n_top` names modalities that are not processed: {unknown!r}.")
    columns = [key_added, *stat_cols]
    if not overwrite:
        clashes = [
            f"{col!r} in {_label(name)}.var" for name, adata in targets for col in columns if col in adata.var.columns
        ]
        if clashes:
            raise ValueError(
                f"Column(s) already exist: {', '.join(clashes)}. Pass `overwrite=True` to replace them, "
                "or choose another `key_added`."
            )

    annotations: dict[str | None, dict[str, np.ndarray]] = {}
    for name, adata in targets:
        n = n_top.get(name, adata.n_vars) if isinstance(n_top, Mapping) else n_top
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise ValueError(f"{_label(name)}: `n_top` must be a positive integer, got {n!r}.")
        X = get_matrix(adata, layer, name)
        check_numeric(X, name)
        mean, var = _feature_stats(X)
        cols = {"variance": var}
        score = var
        if flavor == "dispersion":
            values = X.data if sp.issparse(X) else np.asarray(X)
            if np.any(values < 0):
                raise ValueError(f"{_label(name)}: flavor='dispersion' needs non-negative data; use flavor='variance'.")
            with np.errstate(divide="ignore", invalid="ignore"):
                score = np.where(mean > 0, var / mean, np.nan)
            cols["dispersion"] = score
        rankable = np.isfinite(score)
        n_bad = int(np.count_nonzero(~rankable))
        if n_bad:
            warnings.warn(
                f"{_label(name)}: {n_bad} feature(s) cannot be ranked by {flavor} (all NaN, fewer than 2 "
                "non-NaN values" + (", or mean 0" if flavor == "dispersion" else "") + ") and are never flagged.",
                UserWarning,
                stacklevel=2,
            )
        order = np.argsort(-np.where(rankable, score, -np.inf), kind="stable")
        mask = np.zeros(adata.n_vars, dtype=bool)
        mask[order[: min(int(n), int(rankable.sum()))]] = True
        cols[key_added] = mask
        annotations[name] = cols

    if not subset:
        for name, adata in targets:
            _write_columns(adata, annotations[name])
        return None

    if isinstance(data, AnnData):
        out = data[:, annotations[None][key_added]].copy()
        _write_columns(out, {k: v[annotations[None][key_added]] for k, v in annotations[None].items()})
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # mudata's pull_on_update deprecation notice
        out = data.copy()
        for name, cols in annotations.items():
            keep = cols[key_added]
            new = out.mod[name][:, keep].copy()
            _write_columns(new, {k: v[keep] for k, v in cols.items()})
            out.mod[name] = new
        out.update()
    return out


def _write_columns(adata: AnnData, cols: dict[str, np.ndarray]) -> None:
    for key, values in cols.items():
        adata.var[key] = np.asarray(values)
