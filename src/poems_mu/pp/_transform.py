"""Element-wise and per-feature transformations of bulk multi-omics matrices, written to layers."""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Literal

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from ._utils import _label, check_layer_out, check_numeric, get_matrix, iter_modalities, to_dense


def log1p(
    data: MuData | AnnData,
    modality: str | Iterable[str] | None = None,
    layer: str | None = None,
    layer_out: str = "log1p",
    overwrite: bool = False,
) -> None:
    """Compute ``log(1 + x)`` per modality and store it in a layer.

    The input (``.X`` or ``layer``) is never modified. All selected modalities are validated before any
    layer is written, so an error leaves ``data`` unchanged.

    Parameters
    ----------
    data : mudata.MuData or anndata.AnnData
        Data to transform.
    modality : str or list of str, optional
        Modalities of a MuData to transform; ``None`` (default) transforms all of them. Must be ``None`` for
        an AnnData.
    layer : str, optional
        Input layer; ``None`` (default) uses ``.X``.
    layer_out : str, default "log1p"
        Layer that receives the result.
    overwrite : bool, default False
        Replace ``layer_out`` if it already exists. Otherwise an existing ``layer_out`` raises ``ValueError``.

    Returns
    -------
    None
        The result is written to ``adata.layers[layer_out]`` of every selected modality. Integer and boolean
        inputs give ``float64``; floating inputs keep their precision. Sparse inputs stay sparse.

    Raises
    ------
    ValueError
        If the input has negative values (``log1p`` is only defined for ``x > -1``, and negative values in
        omics data usually mean the data is already transformed), or if ``layer_out`` exists and
        ``overwrite`` is False.
    KeyError
        If a modality or ``layer`` does not exist.

    Notes
    -----
    NaN values are left as NaN.

    """
    targets = iter_modalities(data, modality)
    check_layer_out(targets, layer_out, overwrite)
    results = []
    for name, adata in targets:
        X = get_matrix(adata, layer, name)
        check_numeric(X, name)
        if not sp.issparse(X):
            X = np.asarray(X)
        values = X.data if sp.issparse(X) else X
        n_neg = int(np.count_nonzero(values < 0))  # NaN compares False, so NaN is not counted
        if n_neg:
            raise ValueError(
                f"{_label(name)}: log1p requires non-negative values, found {n_neg} negative value(s) "
                f"(min {np.nanmin(values)!r}). Is the data already log-transformed or centred?"
            )
        if not np.issubdtype(X.dtype, np.floating):
            X = X.astype(np.float64)
        results.append((adata, X.log1p() if sp.issparse(X) else np.log1p(X)))
    for adata, Y in results:
        adata.layers[layer_out] = Y


def scale(
    data: MuData | AnnData,
    modality: str | Iterable[str] | None = None,
    layer: str | None = None,
    layer_out: str | None = None,
    method: Literal["zscore", "minmax"] = "zscore",
    overwrite: bool = False,
) -> None:
    """Scale every feature (column) per modality and store the result in a layer.

    Scaling is delegated to :class:`sklearn.preprocessing.StandardScaler` (``"zscore"``: subtract the
    feature mean, divide by the population standard deviation, ``ddof=0``) or
    :class:`sklearn.preprocessing.MinMaxScaler` (``"minmax"``: map each feature to ``[0, 1]``).
    The input is never modified. All selected modalities are validated before any layer is written.

    Parameters
    ----------
    data : mudata.MuData or anndata.AnnData
        Data to scale.
    modality : str or list of str, optional
        Modalities of a MuData to scale; ``None`` (default) scales all of them. Must be ``None`` for an
        AnnData.
    layer : str, optional
        Input layer; ``None`` (default) uses ``.X``.
    layer_out : str, optional
        Layer that receives the result. Defaults to ``"scaled"`` for ``method="zscore"`` and ``"minmax"`` for
        ``method="minmax"``.
    method : {"zscore", "minmax"}, default "zscore"
        Scaling method.
    overwrite : bool, default False
        Replace ``layer_out`` if it already exists. Otherwise an existing ``layer_out`` raises ``ValueError``.

    Returns
    -------
    None
        The dense result is written to ``adata.layers[layer_out]`` of every selected modality.

    Raises
    ------
    ValueError
        If ``method`` is unknown, the input contains infinite values, ``layer_out`` exists and ``overwrite``
        is False, or a sparse input is too large to densify (see below).
    KeyError
        If a modality or ``layer`` does not exist.

    Warns
    -----
    UserWarning
        For constant features (set to 0, no division by zero), all-NaN features (left NaN), and when a small
        sparse input is densified.

    Notes
    -----
    * NaN values are ignored when computing the per-feature statistics and stay NaN in the output.
    * Scaled data are dense. Sparse inputs with at most :data:`poems_mu.pp._utils.DENSIFY_LIMIT` elements
      are densified with a warning; larger ones raise an error suggesting a dense layer.

    """
    scalers = {"zscore": StandardScaler, "minmax": MinMaxScaler}
    if method not in scalers:
        raise ValueError(f"`method` must be one of {list(scalers)!r}, got {method!r}.")
    if layer_out is None:
        layer_out = "scaled" if method == "zscore" else "minmax"
    targets = iter_modalities(data, modality)
    check_layer_out(targets, layer_out, overwrite)
    results = []
    for name, adata in targets:
        X = get_matrix(adata, layer, name)
        check_numeric(X, name)
        X = to_dense(X, name, f"scale(method={method!r})")
        if X.ndim != 2:
            raise ValueError(f"{_label(name)}: expected a 2-D matrix, got shape {X.shape}.")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"{_label(name)}: cannot scale an empty matrix of shape {X.shape}.")
        n_inf = int(np.count_nonzero(np.isinf(X)))
        if n_inf:
            raise ValueError(f"{_label(name)}: input contains {n_inf} infinite value(s); replace them (e.g. by NaN).")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns; reported below
            col_max = np.nanmax(X, axis=0)
            col_min = np.nanmin(X, axis=0)
            Y = scalers[method]().fit_transform(X if np.issubdtype(X.dtype, np.floating) else X.astype(np.float64))
        all_nan = np.isnan(col_max)
        n_const = int(np.count_nonzero(~all_nan & (col_max == col_min)))
        if n_const:
            warnings.warn(
                f"{_label(name)}: {n_const} constant feature(s) have zero variance and were set to 0.",
                UserWarning,
                stacklevel=2,
            )
        if all_nan.any():
            warnings.warn(
                f"{_label(name)}: {int(all_nan.sum())} feature(s) contain only NaN and were left as NaN.",
                UserWarning,
                stacklevel=2,
            )
        results.append((adata, Y))
    for adata, Y in results:
        adata.layers[layer_out] = Y
