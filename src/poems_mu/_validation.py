"""Input checks that turn bad data into errors a user can act on (modality names, counts, what to do)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from anndata import AnnData
from mudata import MuData
from scipy import sparse

MIN_SAMPLES_PER_MODALITY = 3


def check_mudata(mdata) -> None:
    """The object must be a MuData with unique sample names."""
    if isinstance(mdata, AnnData):
        raise TypeError(
            "POEMS needs a MuData object (one AnnData per modality). Wrap a single AnnData with "
            "`mudata.MuData({'rna': adata})`."
        )
    if not isinstance(mdata, MuData):
        raise TypeError(f"POEMS needs a mudata.MuData object, got {type(mdata).__name__}.")
    if mdata.is_view:
        raise ValueError("This MuData is a view; call `.copy()` on it first.")
    if not mdata.obs_names.is_unique:
        dup = mdata.obs_names[mdata.obs_names.duplicated()].unique()[:5].tolist()
        raise ValueError(f"MuData has duplicated sample names (obs_names), e.g. {dup}; make them unique.")


def resolve_modalities(mdata: MuData, modalities: Sequence[str] | str | None) -> list[str]:
    """Modality names to use, checked against ``mdata.mod``."""
    available = list(mdata.mod.keys())
    if modalities is None:
        modalities = available
    elif isinstance(modalities, str):
        modalities = [modalities]
    modalities = list(modalities)
    if not modalities:
        raise ValueError(f"No modality selected; this MuData has {available}.")
    missing = [m for m in modalities if m not in mdata.mod]
    if missing:
        raise ValueError(f"Modality {missing} not found in the MuData; available modalities: {available}.")
    if len(set(modalities)) != len(modalities):
        raise ValueError(f"Modality names are repeated in {modalities}.")
    return modalities


def resolve_layers(mdata: MuData, modalities: list[str], layers: Mapping[str, str | None] | str | None) -> dict:
    """Per-modality layer (``None`` = ``.X``), checked against each modality's layers."""
    if layers is None or isinstance(layers, str):
        layers = dict.fromkeys(modalities, layers)
    layers = dict(layers)
    unknown = [m for m in layers if m not in modalities]
    if unknown:
        raise ValueError(f"`layers` names modality {unknown}, which is not among the modalities used {modalities}.")
    out = {m: layers.get(m) for m in modalities}
    for mod, layer in out.items():
        if layer is not None and layer not in mdata.mod[mod].layers:
            raise ValueError(
                f"Layer {layer!r} not found in modality {mod!r}; its layers are {list(mdata.mod[mod].layers.keys())}."
            )
    return out


def modality_matrix(adata: AnnData, layer: str | None):
    """The matrix of a modality (``.X`` or a layer), as stored."""
    return adata.X if layer is None else adata.layers[layer]


def check_modality_data(mod: str, adata: AnnData, layer: str | None, nan_rows_as_missing: bool) -> None:
    """Shape, dtype, names and finiteness of one modality."""
    where = f"modality {mod!r}" + (f" (layer {layer!r})" if layer else "")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(f"{where} is empty ({adata.n_obs} samples × {adata.n_vars} features).")
    if not adata.var_names.is_unique:
        dup = adata.var_names[adata.var_names.duplicated()].unique()[:5].tolist()
        raise ValueError(
            f"{where} has duplicated feature names, e.g. {dup}; make them unique (`.var_names_make_unique()`)."
        )
    if not adata.obs_names.is_unique:
        raise ValueError(f"{where} has duplicated sample names; make them unique.")
    x = modality_matrix(adata, layer)
    if x is None:
        raise ValueError(f"{where} has no data matrix (.X is None); pass `layers={{'{mod}': '<layer>'}}`.")
    if getattr(adata, "isbacked", False) and layer is None:
        raise ValueError(
            f"{where} is backed on disk; load it into memory first (`mdata = mudata.read_h5mu(path)` without "
            "`backed=`, or `mdata[{mod!r}].to_memory()`)."
        )
    dtype = x.dtype
    if not (np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)):
        raise TypeError(f"{where} holds non-numeric data (dtype {dtype}); convert it to numbers first.")
    values = x.data if sparse.issparse(x) else np.asarray(x)
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    if sparse.issparse(x):
        x = x.toarray()
        bad = ~np.isfinite(x)
    bad_rows = bad.any(axis=1)
    whole = bad.all(axis=1)
    if nan_rows_as_missing and np.array_equal(bad_rows, whole):
        return
    hint = (
        "Impute or drop them"
        + (
            ""
            if nan_rows_as_missing
            else ", or pass `nan_rows_as_missing=True` to `setup_mudata` if whole-row NaNs mean 'not measured'"
        )
        + "."
    )
    raise ValueError(
        f"{where} has {int(bad.sum())} non-finite values (NaN or ±inf) in {int(bad_rows.sum())} of {adata.n_obs} "
        f"samples and {int(bad.any(axis=0).sum())} of {adata.n_vars} features. {hint}"
    )


def check_coverage(mdata: MuData, modalities: list[str], observed: np.ndarray) -> None:
    """Every sample has at least one modality; every modality has enough samples."""
    counts = observed.sum(0)
    for mod, n in zip(modalities, counts, strict=True):
        if n < MIN_SAMPLES_PER_MODALITY:
            raise ValueError(
                f"Modality {mod!r} has {int(n)} observed samples; POEMS needs at least {MIN_SAMPLES_PER_MODALITY} "
                "to learn from it. Drop it with `modalities=[...]`."
            )
    none = ~observed.any(1)
    if none.any():
        names = mdata.obs_names[none][:5].tolist()
        raise ValueError(
            f"{int(none.sum())} of {mdata.n_obs} samples have none of the modalities {modalities} (e.g. {names}); "
            "remove them (`mudata.pp.filter_obs`) or add a modality they have."
        )


def check_n_latent(n_latent) -> int:
    """``n_latent`` is a positive integer of sensible size."""
    if isinstance(n_latent, bool) or not isinstance(n_latent, int | np.integer) or not 1 <= n_latent <= 1024:
        raise ValueError(f"n_latent must be an integer between 1 and 1024, got {n_latent!r}.")
    return int(n_latent)


def warn_constant_features(mod: str, constant: np.ndarray) -> None:
    """Constant features carry no signal; they are kept but excluded from the likelihood."""
    if constant.any():
        warnings.warn(
            f"Modality {mod!r}: {int(constant.sum())} of {constant.size} features are constant across the samples "
            "that have the modality; they are kept but do not enter the likelihood (their loadings stay "
            "uninformative). Consider filtering them.",
            UserWarning,
            stacklevel=3,
        )
