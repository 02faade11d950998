"""Helpers shared by the interpretation tools: model/MuData resolution, data access, factor selection, storage."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData
from scipy import sparse

from poems_mu._constants import (
    ACTIVE_FACTORS_KEY,
    EFFECTIVE_KEY,
    EFFECTIVE_SIGNED_KEY,
    LATENT_KEY,
    PSTAR_KEY,
    UNS_KEY,
    W_KEY,
)
from poems_mu.data import layer_matrix
from poems_mu.data._registry import modality_rows

FactorSpec = str | int | Sequence[str | int] | None


def is_model(obj: Any) -> bool:
    """Whether ``obj`` is a (trained or not) POEMS model."""
    from poems_mu.model import POEMS

    return isinstance(obj, POEMS)


def check_comparable(models: Sequence, caller: str) -> list:
    """``models`` as a list: two or more trained POEMS models with the first one's modalities and features."""
    models = list(models)
    if len(models) < 2 or not all(is_model(m) for m in models):
        raise ValueError(f"{caller} needs a sequence of two or more trained POEMS models.")
    untrained = [i for i, m in enumerate(models) if not m.is_trained]
    if untrained:
        raise ValueError(f"{caller} needs trained models: model(s) {untrained} are not trained yet (call .train()).")
    ref = models[0]
    for i, m in enumerate(models[1:], start=1):
        if list(m.modalities) != list(ref.modalities):
            raise ValueError(f"Model {i} has modalities {m.modalities}, the first model {ref.modalities}.")
        for mod in ref.modalities:
            if not m.adata.mod[mod].var_names.equals(ref.adata.mod[mod].var_names):
                raise ValueError(f"Model {i} was trained on other {mod!r} features than the first model.")
    return models


def model_mdata(model, mdata: MuData | None) -> MuData:
    """The MuData to work on: ``mdata`` (checked against the model's registry) or the model's training MuData."""
    if mdata is None:
        return model.adata
    model._validate_anndata(mdata)
    return mdata


def registry_layers(model) -> dict[str, str | None]:
    """Layer of each modality the model was set up with (``None`` = ``.X``)."""
    return dict(model.adata_manager.registry["setup_args"].get("layers") or {})


def nan_rows_missing(model) -> bool:
    """The model's ``nan_rows_as_missing`` setting."""
    return bool(model.adata_manager.registry["setup_args"].get("nan_rows_as_missing", False))


def modality_data(
    mdata: MuData,
    modality: str,
    layer: str | None = None,
    columns: np.ndarray | None = None,
    nan_rows_as_missing: bool | None = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Observed data of one modality, aligned to the MuData's samples.

    ``nan_rows_as_missing=None`` (a MuData used without its model) counts whole-NaN rows as missing whenever there
    are any: ``setup_mudata`` accepts such rows only with ``nan_rows_as_missing=True``, so they mean "not measured".

    Returns
    -------
    positions
        Positions (in ``mdata.obs_names``) of the samples that have the modality.
    x
        Dense float64 array ``(len(positions), n_columns)`` of those samples (``columns`` selects features).

    """
    if modality not in mdata.mod:
        raise ValueError(f"Modality {modality!r} not found; available modalities: {list(mdata.mod.keys())}.")
    data = layer_matrix(mdata.mod[modality], layer, modality)
    if nan_rows_as_missing is None:
        # only a fully stored sparse row can be all NaN: skip densifying sparse data that has none
        nan_rows_as_missing = not sparse.issparse(data) or bool(
            (np.diff(sparse.csr_matrix(data).indptr) == data.shape[1]).any()
        )
    rows = modality_rows(mdata, modality, data, nan_rows_as_missing)
    positions = np.flatnonzero(rows >= 0)
    sub = data[rows[positions]]
    if columns is not None:
        sub = sub[:, np.asarray(columns)]
    sub = sub.toarray() if sparse.issparse(sub) else np.asarray(sub)
    return positions, sub.astype(np.float64)


def embedding(data: MuData | AnnData, use_rep: str = LATENT_KEY) -> np.ndarray:
    """Embedding ``data.obsm[use_rep]`` as a dense array of its own dtype."""
    if use_rep not in data.obsm:
        raise KeyError(
            f"{use_rep!r} not found in `.obsm` (available: {list(data.obsm.keys())}). Run "
            "`model.store_results(mdata)` first, or pass the key of the embedding as `use_rep`."
        )
    x = data.obsm[use_rep]
    x = x.to_numpy() if isinstance(x, pd.DataFrame) else x
    return x.toarray() if sparse.issparse(x) else np.asarray(x)


def latent(data: MuData | AnnData, use_rep: str = LATENT_KEY) -> np.ndarray:
    """Embedding ``data.obsm[use_rep]`` as a dense float64 array."""
    return embedding(data, use_rep).astype(np.float64)


def stored_factor_names(data: MuData | AnnData, n: int) -> list[str]:
    """Factor names stored by ``store_results`` if they fit, else ``factor_1 … factor_n``."""
    uns = data.uns.get(UNS_KEY)
    if isinstance(uns, Mapping) and "factors" in uns and len(uns["factors"]) == n:
        return [str(f) for f in uns["factors"]]
    return [f"factor_{k + 1}" for k in range(n)]


def resolve_factors(factor: FactorSpec, names: Sequence[str]) -> list[int]:
    """Positions of the selected factors.

    ``factor`` is ``None`` (all), a name such as ``"factor_3"``, a 0-based position, or a list of those.
    """
    names = list(names)
    if factor is None:
        return list(range(len(names)))
    items = [factor] if isinstance(factor, str | int | np.integer) else list(factor)
    if not items:
        raise ValueError("`factor` is an empty list; pass None for all factors.")
    out = []
    for f in items:
        if isinstance(f, bool):
            raise TypeError(f"`factor` must be a factor name or a 0-based position, got {f!r}.")
        if isinstance(f, int | np.integer):
            if not 0 <= f < len(names):
                raise ValueError(f"Factor position {f} is out of range: there are {len(names)} factors (0-based).")
            out.append(int(f))
        elif isinstance(f, str):
            if f not in names:
                raise ValueError(f"Unknown factor {f!r}; factors are {names[0]} … {names[-1]}.")
            out.append(names.index(f))
        else:
            raise TypeError(f"`factor` must be a factor name or a 0-based position, got {f!r}.")
    if len(set(out)) != len(out):
        raise ValueError(f"Factors are repeated in {factor!r}.")
    return out


def active_flags(data, mdata: MuData | None = None) -> np.ndarray | None:
    """Active-factor flags (bool, K) of a model (its rule) or of a MuData (``uns["poems"]["active_factors"]``).

    ``None`` where there are none to read: a MuData stored without them, or a table of results.
    """
    if is_model(data):
        return data.active_factors(mdata)["active"].to_numpy(dtype=bool)
    if isinstance(data, MuData | AnnData):
        uns = data.uns.get(UNS_KEY)
        table = uns.get(ACTIVE_FACTORS_KEY) if isinstance(uns, Mapping) else None
        if isinstance(table, Mapping) and "active" in table:
            return np.asarray(table["active"], dtype=bool)
    return None


def select_factors(
    factor: FactorSpec,
    names: Sequence[str],
    data=None,
    include_inactive: bool = False,
    mdata: MuData | None = None,
) -> list[int]:
    """Positions of the selected factors; ``factor=None`` means the active ones unless ``include_inactive``.

    Without active flags to read (see :func:`active_flags`) ``None`` means every factor. If the rule finds no
    active factor, every factor is kept and a warning says so.
    """
    if factor is not None or include_inactive or data is None:
        return resolve_factors(factor, names)
    flags = active_flags(data, mdata)
    if flags is None or len(flags) != len(names):
        return resolve_factors(None, names)
    if not flags.any():
        warnings.warn(
            "No factor is active by the rule of `POEMS.active_factors`; showing every factor.",
            UserWarning,
            stacklevel=3,
        )
        return resolve_factors(None, names)
    return [int(k) for k in np.flatnonzero(flags)]


def resolve_modality_list(available: Sequence[str], modality: str | Sequence[str] | None) -> list[str]:
    """Selected modality names, checked against ``available``."""
    available = list(available)
    if modality is None:
        return available
    mods = [modality] if isinstance(modality, str) else list(modality)
    bad = [m for m in mods if m not in available]
    if bad:
        raise ValueError(f"Modality {bad} not available; choose from {available}.")
    return mods


def loadings_source(data, modality: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``W`` and ``p*`` of one modality (features × factors) from a model or from a MuData with stored results."""
    if is_model(data):
        return data.get_loadings(modality), data.get_slab_probabilities(modality)
    if isinstance(data, MuData):
        ad = data.mod[modality]
        if W_KEY not in ad.varm:
            raise KeyError(
                f"mdata.mod[{modality!r}].varm[{W_KEY!r}] not found: run `model.store_results(mdata)` (sparse "
                "decoder) first, or pass the model."
            )
        w = np.asarray(ad.varm[W_KEY])
        names = stored_factor_names(data, w.shape[1])
        W = pd.DataFrame(w, index=ad.var_names.copy(), columns=names)
        P = None
        if PSTAR_KEY in ad.varm:
            P = pd.DataFrame(np.asarray(ad.varm[PSTAR_KEY]), index=ad.var_names.copy(), columns=names)
        return W, P
    raise TypeError(f"Expected a POEMS model or a MuData with stored results, got {type(data).__name__}.")


def effective_source(data, modality: str, mdata: MuData | None = None, signed: bool = False) -> pd.DataFrame | None:
    """Effective loadings of one modality (features × factors): from the model, or ``varm["poems_effective"]``
    (``varm["poems_effective_signed"]`` with ``signed``); ``None`` where the MuData has none stored.
    """
    if is_model(data):
        return data.get_effective_loadings(modality, mdata, signed=signed)
    ad = data.mod[modality]
    key = EFFECTIVE_SIGNED_KEY if signed else EFFECTIVE_KEY
    if key not in ad.varm:
        return None
    e = np.asarray(ad.varm[key])
    return pd.DataFrame(e, index=ad.var_names.copy(), columns=stored_factor_names(data, e.shape[1]))


def available_modalities(data) -> list[str]:
    """Modalities of a model, or of a MuData that carry stored loadings."""
    if is_model(data):
        return list(data.modalities)
    if isinstance(data, MuData):
        uns = data.uns.get(UNS_KEY)
        if isinstance(uns, Mapping) and "modalities" in uns:
            return [str(m) for m in uns["modalities"]]
        return [m for m, ad in data.mod.items() if W_KEY in ad.varm]
    raise TypeError(f"Expected a POEMS model or a MuData, got {type(data).__name__}.")


UnsKey = str | Sequence[str]


def _uns_path(key: UnsKey) -> tuple[str, ...]:
    path = (key,) if isinstance(key, str) else tuple(key)
    if not path or not all(isinstance(p, str) and p for p in path):
        raise ValueError(f"A key of uns[{UNS_KEY!r}] must be a non-empty string or a sequence of them, got {key!r}.")
    return path


def uns_entry_name(key: UnsKey) -> str:
    """``uns['poems']['a']['b']``: how errors name an entry of ``uns["poems"]``."""
    return "uns" + "".join(f"[{p!r}]" for p in (UNS_KEY, *_uns_path(key)))


def check_store(data: MuData | AnnData, key: UnsKey, overwrite: bool = False) -> None:
    """Raise if :func:`store_uns` would refuse to store ``key``; call it before the work, so none is lost.

    Raises
    ------
    ValueError
        If the entry already exists and ``overwrite`` is False (as :meth:`~poems_mu.POEMS.store_results`).
    TypeError
        If ``uns["poems"]`` (or a level above the entry) exists but is not a dict: it is never replaced.

    """
    if not isinstance(data, MuData | AnnData):
        raise TypeError(f"Results can only be stored on a MuData or AnnData, got {type(data).__name__}.")
    full = (UNS_KEY, *_uns_path(key))
    node: Any = data.uns
    for depth, part in enumerate(full):
        if part not in node:
            return
        if depth == len(full) - 1:
            if not overwrite:
                raise ValueError(
                    f"This key already exists and would be overwritten: {uns_entry_name(key)}. Pass overwrite=True "
                    "to replace it, or store=False to only return the result."
                )
            return
        node = node[part]
        if not isinstance(node, Mapping):
            where = "uns" + "".join(f"[{p!r}]" for p in full[: depth + 1])
            raise TypeError(
                f"`{where}` exists but is a {type(node).__name__}, not a dict; not storing results. "
                "Rename or delete it first, or pass store=False."
            )


def plan_store(data, key: UnsKey, store: bool, overwrite: bool) -> bool:
    """Check a ``tl`` function's ``store`` / ``overwrite`` before it computes; returns ``store``.

    ``overwrite=True`` without ``store=True`` is an error (the caller expected something to be stored), and with
    ``store=True`` an existing entry without ``overwrite`` is refused now rather than after the work.
    """
    if not isinstance(store, bool | np.bool_) or not isinstance(overwrite, bool | np.bool_):
        raise TypeError(f"`store` and `overwrite` must be True or False, got {store!r} and {overwrite!r}.")
    if overwrite and not store:
        raise ValueError(
            f"`overwrite=True` only applies with `store=True`: pass store=True to store the result in "
            f"{uns_entry_name(key)}."
        )
    if store:
        check_store(data, key, overwrite)
    return bool(store)


def store_uns(data: MuData | AnnData, key: UnsKey, value: Any, overwrite: bool = False) -> None:
    """Set ``data.uns["poems"][key] = value`` (``key`` a name or a path of names), keeping every other entry.

    An existing entry is replaced only with ``overwrite=True``; otherwise a ``ValueError`` names it and nothing is
    written (see :func:`check_store`, which ``tl`` functions call before they compute).
    """
    check_store(data, key, overwrite)
    full = (UNS_KEY, *_uns_path(key))
    levels = [data.uns]
    for part in full[:-1]:
        levels.append(dict(levels[-1].get(part, {})))  # copies: a stored dict shared elsewhere is not mutated
    levels[-1][full[-1]] = value
    for depth in range(len(full) - 2, -1, -1):
        levels[depth][full[depth]] = levels[depth + 1]


def table_to_uns(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """A DataFrame as a dict of plain numpy columns (strings as ``str`` arrays) that h5mu can write."""
    out = {}
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_bool_dtype(s):
            out[str(col)] = s.to_numpy(dtype=bool)
        elif pd.api.types.is_numeric_dtype(s):
            out[str(col)] = s.to_numpy(dtype=np.float64)
        else:
            out[str(col)] = s.astype(str).to_numpy(dtype=str)
    return out


def bh(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values; NaN p-values stay NaN and do not count as tests."""
    from scipy.stats import false_discovery_control

    p = np.asarray(p, dtype=np.float64)
    q = np.full_like(p, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = false_discovery_control(np.clip(p[ok], 0.0, 1.0), method="bh")
    return q


def check_fdr(fdr: float) -> float:
    """``fdr`` must lie in (0, 1)."""
    if not 0 < float(fdr) < 1:
        raise ValueError(f"`fdr` must be in (0, 1), got {fdr!r}.")
    return float(fdr)


def check_positive_int(value: Any, name: str) -> int:
    """A positive integer, or a clear error."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)
