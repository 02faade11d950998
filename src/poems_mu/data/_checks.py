"""Checks of a user's MuData that turn bad data into errors a user can act on (modality names, counts, the fix).

Everything here runs on the user's objects without modifying them, before any tensor is built, so that bad input
never surfaces as a torch stack trace.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from anndata import AnnData
from mudata import MuData
from scipy import sparse

from poems_mu._arguments import per_modality_option

MIN_SAMPLES_PER_MODALITY = 3
#: largest magnitude the model can hold: data are converted to float32 minibatch by minibatch
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_mudata(mdata) -> None:
    """The object must be an in-memory, non-view MuData with unique sample names."""
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
    out = per_modality_option(layers, modalities, "layers", "a layer name")
    for mod, layer in out.items():
        if layer is not None and layer not in mdata.mod[mod].layers:
            raise ValueError(
                f"Layer {layer!r} not found in modality {mod!r}; its layers are {list(mdata.mod[mod].layers.keys())}."
            )
    return out


def layer_matrix(adata: AnnData, layer: str | None, name: str | None = None):
    """``adata.X`` (``layer=None``) or ``adata.layers[layer]``, as stored (no copy); ``.X`` may be ``None``.

    A missing layer is a KeyError naming the layers there are (``name``: the modality, for the message).
    """
    if layer is None:
        return adata.X
    if layer not in adata.layers:
        where = "AnnData" if name is None else f"modality {name!r}"
        raise KeyError(f"Layer {layer!r} not found in {where}. Available layers: {list(adata.layers.keys())!r}.")
    return adata.layers[layer]


def _where(mod: str, layer: str | None) -> str:
    return f"modality {mod!r}" + (f" (layer {layer!r})" if layer else "")


def _example(names, mask: np.ndarray, n: int = 3) -> str:
    picked = np.asarray(names)[np.flatnonzero(mask)[:n]].tolist()
    return f" (e.g. samples {picked})" if picked else ""


def check_modality_data(mod: str, adata: AnnData, layer: str | None, nan_rows_as_missing: bool) -> None:
    """Shape, storage, dtype, names and finiteness of one modality."""
    where = _where(mod, layer)
    if adata.is_view:
        raise ValueError(f"{where} is a view of another AnnData; assign a copy: `mdata.mod[{mod!r}] = adata.copy()`.")
    if adata.n_obs == 0 or adata.n_vars == 0:
        raise ValueError(
            f"{where} is empty ({adata.n_obs} samples × {adata.n_vars} features); drop it with `modalities=[...]`."
        )
    if not adata.var_names.is_unique:
        dup = adata.var_names[adata.var_names.duplicated()].unique()[:5].tolist()
        raise ValueError(
            f"{where} has duplicated feature names, e.g. {dup}; make them unique (`.var_names_make_unique()`)."
        )
    if not adata.obs_names.is_unique:
        dup = adata.obs_names[adata.obs_names.duplicated()].unique()[:5].tolist()
        raise ValueError(f"{where} has duplicated sample names, e.g. {dup}; make them unique.")
    if getattr(adata, "isbacked", False) and layer is None:
        raise ValueError(
            f"{where} is backed on disk (read with `backed=`); POEMS needs it in memory: read the file with "
            "`mudata.read_h5mu(path)` without `backed=`."
        )
    x = layer_matrix(adata, layer, mod)
    if x is None:
        raise ValueError(f"{where} has no data matrix (.X is None); pass `layers={{{mod!r}: '<layer>'}}`.")
    if not (sparse.issparse(x) or isinstance(x, np.ndarray)):
        kind = type(x).__name__
        raise TypeError(f"{where} is stored as {kind}; POEMS reads numpy arrays and scipy sparse matrices.")
    dtype = x.dtype
    if np.issubdtype(dtype, np.complexfloating) or not (
        np.issubdtype(dtype, np.number) or np.issubdtype(dtype, np.bool_)
    ):
        raise TypeError(
            f"{where} holds non-numeric data (dtype {dtype}); convert it to real numbers first, e.g. "
            f"`mdata.mod[{mod!r}].X = mdata.mod[{mod!r}].X.astype('float32')` (strings must be parsed)."
        )
    if np.issubdtype(dtype, np.bool_) or np.issubdtype(dtype, np.integer):
        return  # always finite, and no integer type overflows float32
    values = x.data if sparse.issparse(x) else np.asarray(x)
    bad = ~np.isfinite(values)
    if bad.any():
        _raise_non_finite(where, adata, x, nan_rows_as_missing)
    big = np.abs(values) > FLOAT32_MAX
    if big.any():
        raise ValueError(
            f"{where} has {int(big.sum())} values beyond ±{FLOAT32_MAX:.2g}, which float32 (the model's precision) "
            "cannot hold; rescale the data (e.g. log-transform it)."
        )


def _raise_non_finite(where: str, adata: AnnData, x, nan_rows_as_missing: bool) -> None:
    """Count the non-finite values; return if whole-NaN rows are allowed and those are the only ones."""
    dense = x.toarray() if sparse.issparse(x) else np.asarray(x)
    nan = np.isnan(dense)
    bad = nan | np.isinf(dense)
    whole_nan = nan.all(axis=1)
    if nan_rows_as_missing:
        bad = bad & ~whole_nan[:, None]
        if not bad.any():
            return
    rows = bad.any(axis=1)
    n_nan, n_inf = int((nan & bad).sum()), int((bad & ~nan).sum())
    if nan_rows_as_missing:
        hint = (
            f"With nan_rows_as_missing=True only samples whose whole row is NaN count as not measured "
            f"({int(whole_nan.sum())} here); impute or drop the remaining ones."
        )
    elif whole_nan.any() and not (bad & ~whole_nan[:, None]).any():
        hint = (
            f"All of them are whole-row NaNs ({int(whole_nan.sum())} samples): if they mean 'not measured', pass "
            "`nan_rows_as_missing=True` to `setup_mudata`; otherwise impute or drop those samples."
        )
    else:
        hint = (
            "Impute them or drop those samples/features (or pass `nan_rows_as_missing=True` to `setup_mudata` if "
            "whole-row NaNs mean 'not measured')."
        )
    raise ValueError(
        f"{where} has {n_nan + n_inf} non-finite values ({n_nan} NaN, {n_inf} ±inf) in {int(rows.sum())} of "
        f"{adata.n_obs} samples{_example(adata.obs_names, rows)} and {int(bad.any(axis=0).sum())} of "
        f"{adata.n_vars} features. {hint}"
    )


def check_obsmap(mdata: MuData, mod: str) -> None:
    """``mdata.obsmap[mod]`` must match the modality (it goes stale when a modality is replaced without update())."""
    adata = mdata.mod[mod]
    fix = "call `mdata.update()` after changing a modality"
    if mod not in mdata.obsmap:
        raise ValueError(f"The MuData has no sample map for modality {mod!r}; {fix}.")
    rows = np.asarray(mdata.obsmap[mod]).astype(np.int64).ravel() - 1
    present = rows >= 0
    stale = rows.shape[0] != mdata.n_obs or (present.any() and rows.max() >= adata.n_obs)
    if not stale:
        stale = not np.array_equal(np.asarray(mdata.obs_names[present]), np.asarray(adata.obs_names[rows[present]]))
    if not stale:
        stale = np.unique(rows[present]).size != adata.n_obs
    if stale:
        raise ValueError(
            f"The MuData's sample map (obsmap) of modality {mod!r} does not match that modality "
            f"({adata.n_obs} samples, {int(present.sum())} mapped); {fix}."
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


def check_same_features(mdata: MuData, modalities: Sequence[str], var_names: Mapping[str, Sequence]) -> None:
    """``mdata`` has every modality in ``modalities`` with exactly the features ``var_names[mod]``, in order."""
    for mod in modalities:
        if mod not in mdata.mod:
            raise ValueError(
                f"The model was trained with modality {mod!r}, which this MuData lacks "
                f"(it has {list(mdata.mod.keys())})."
            )
        saved = np.asarray(var_names[mod]).astype(str)
        given = np.asarray(mdata.mod[mod].var_names).astype(str)
        if saved.shape != given.shape or not np.array_equal(saved, given):
            lacking, new = len(set(saved) - set(given)), len(set(given) - set(saved))
            detail = (
                f"{lacking} training features missing here, {new} features new"
                if lacking or new
                else "same features in another order"
            )
            raise ValueError(
                f"Modality {mod!r} has {given.size} features here but the model was trained on {saved.size} "
                f"({detail}). Subset/reorder it to the training features: "
                f"`mdata.mod[{mod!r}] = mdata.mod[{mod!r}][:, train_feature_names].copy()`, then `mdata.update()`."
            )


def check_query_mudata(mdata, setup_args: Mapping, var_names: Mapping[str, Sequence]) -> list[str]:
    """A MuData given to a trained model: the checks of ``setup_mudata`` on the trained modalities it holds.

    A new cohort may lack whole trained modalities, but must hold at least one, with the training features in the
    training order, and no modality the model does not know (it would be ignored, which is rarely what was meant:
    a renamed modality, say).

    Parameters
    ----------
    mdata
        The new MuData.
    setup_args
        The setup arguments the model was registered with (``modalities``, ``layers``, ``nan_rows_as_missing``).
    var_names
        Training feature names per modality.

    Returns
    -------
    The trained modalities ``mdata`` holds, in training order.

    """
    check_mudata(mdata)
    modalities = list(setup_args["modalities"])
    present = [m for m in modalities if m in mdata.mod]
    if not present:
        raise ValueError(
            f"This MuData has none of the model's modalities {modalities} (it has {list(mdata.mod.keys())})."
        )
    new = [m for m in mdata.mod if m not in modalities]
    if new:
        raise ValueError(
            f"This MuData has modalities the model was not trained on: {new} (the model's are {modalities}). "
            "Rename a modality to its training name, or leave the others out: "
            "`mudata.MuData({m: mdata[m] for m in model.modalities if m in mdata.mod})`."
        )
    check_same_features(mdata, present, var_names)
    layers = setup_args.get("layers") or {}
    nan_missing = bool(setup_args.get("nan_rows_as_missing", False))
    for mod in present:
        layer = layers.get(mod)
        if layer is not None and layer not in mdata.mod[mod].layers:
            raise ValueError(
                f"The model reads modality {mod!r} from layer {layer!r}, which this MuData lacks; its layers are "
                f"{list(mdata.mod[mod].layers.keys())}."
            )
        check_modality_data(mod, mdata.mod[mod], layer, nan_missing)
        check_obsmap(mdata, mod)
    return present


def check_samples_observed(obs_names, observed: np.ndarray, modalities: Sequence[str], what: str) -> None:
    """Every sample (row of the boolean ``observed``, samples × ``modalities``) has one of ``modalities``."""
    none = ~observed.any(1)
    if none.any():
        names = np.asarray(obs_names)[none][:5].tolist()
        raise ValueError(
            f"{int(none.sum())} of {len(none)} samples have none of {what} {list(modalities)} (e.g. {names}): "
            "there is nothing to place them from. Leave them out (`samples=`, or `mudata.pp.filter_obs`)."
        )


def warn_constant_features(mod: str, constant: np.ndarray) -> None:
    """Constant features carry no signal; they are kept but excluded from the likelihood.

    A modality whose features are all constant is an error: its expert would be the same for every sample.
    """
    if constant.all():
        raise ValueError(
            f"Modality {mod!r}: all {constant.size} features are constant across the samples that have the "
            "modality, so it carries no information; drop it with `modalities=[...]`."
        )
    if constant.any():
        warnings.warn(
            f"Modality {mod!r}: {int(constant.sum())} of {constant.size} features are constant across the samples "
            "that have the modality; they are kept but do not enter the likelihood (their loadings stay "
            "uninformative). Consider filtering them.",
            UserWarning,
            stacklevel=3,
        )
