"""Shared helpers for :mod:`poems_mu.pp`: modality selection and layer access."""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp
from anndata import AnnData
from mudata import MuData

from poems_mu.data._checks import layer_matrix

#: Sparse inputs with at most this many elements (``n_obs * n_vars``) are densified (with a warning) by
#: functions that need dense data; larger ones raise an error suggesting a dense layer.
DENSIFY_LIMIT = 20_000_000


def _label(name: str | None) -> str:
    return "AnnData" if name is None else f"modality {name!r}"


def iter_modalities(data: MuData | AnnData, modality: str | Iterable[str] | None) -> list[tuple[str | None, AnnData]]:
    """Resolve ``data`` and ``modality`` to a list of ``(name, AnnData)`` pairs (name ``None`` for AnnData)."""
    if isinstance(data, MuData):
        available = list(data.mod.keys())
        if modality is None:
            names = available
        elif isinstance(modality, str):
            names = [modality]
        else:
            names = list(modality)
            if not all(isinstance(m, str) for m in names):
                raise TypeError(f"`modality` must be a string or a list of strings, got {modality!r}.")
        if not names:
            raise ValueError("No modality selected: the MuData has no modalities or `modality` is empty.")
        if len(set(names)) != len(names):
            raise ValueError(f"`modality` contains duplicates: {names!r}.")
        missing = [m for m in names if m not in data.mod]
        if missing:
            raise KeyError(f"Modality {missing!r} not found in MuData. Available modalities: {available!r}.")
        return [(m, data.mod[m]) for m in names]
    if isinstance(data, AnnData):
        if modality is not None:
            raise ValueError("`modality` can only be given for a MuData; got an AnnData.")
        return [(None, data)]
    raise TypeError(f"Expected a MuData or an AnnData, got {type(data).__name__}.")


def get_matrix(adata: AnnData, layer: str | None, name: str | None):
    """Return ``adata.X`` (``layer=None``) or ``adata.layers[layer]`` without copying; an error if there is none."""
    X = layer_matrix(adata, layer, name)
    if X is None:
        raise ValueError(f"{_label(name)} has no `.X`; pass `layer=`.")
    return X


def check_layer_out(targets: list[tuple[str | None, AnnData]], layer_out: str, overwrite: bool) -> None:
    """Raise if ``layer_out`` already exists in any target and ``overwrite`` is False (checked before any write)."""
    if not isinstance(layer_out, str) or not layer_out:
        raise ValueError(f"`layer_out` must be a non-empty string, got {layer_out!r}.")
    if overwrite:
        return
    existing = [_label(name) for name, adata in targets if layer_out in adata.layers]
    if existing:
        raise ValueError(
            f"Layer {layer_out!r} already exists in {', '.join(existing)}. "
            "Pass `overwrite=True` to replace it, or choose another `layer_out`."
        )


def to_dense(X, name: str | None, what: str) -> np.ndarray:
    """Return a dense ndarray; sparse input is densified only when small (with a warning)."""
    if sp.issparse(X):
        n_elem = X.shape[0] * X.shape[1]
        if n_elem > DENSIFY_LIMIT:
            raise ValueError(
                f"{_label(name)}: {what} needs dense data, and the sparse input has {n_elem:,} elements "
                f"(limit {DENSIFY_LIMIT:,}). Store a dense copy in a layer (e.g. `adata.layers['dense'] = "
                "adata.X.toarray()`) and pass `layer='dense'`."
            )
        warnings.warn(
            f"{_label(name)}: densifying a sparse {X.shape[0]}x{X.shape[1]} matrix for {what}.",
            UserWarning,
            stacklevel=3,
        )
        return X.toarray()
    return np.asarray(X)


def check_numeric(X, name: str | None) -> None:
    """Raise a clear error for non-numeric matrices."""
    dtype = X.dtype
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        raise TypeError(f"{_label(name)}: expected a numeric matrix, got dtype {dtype}.")
