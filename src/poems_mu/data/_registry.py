"""What a registered MuData holds for POEMS: its modalities, which samples have each, and its library sizes."""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scvi.data import AnnDataManager, fields

from poems_mu._constants import x_key

from ._covariates import CovariatesField, resolve_size_factor_keys, size_factors


def mudata_fields(modalities: list[str], layers: dict, covariates: dict) -> list:
    """Scvi registry fields of a POEMS setup: one layer field per modality (its data, any feature count, samples
    gathered through ``obsmap``) and one for the covariates (``{obs column: argument}``).
    """
    out = [
        fields.MuDataLayerField(x_key(mod), layers[mod], mod_key=mod, is_count_data=False, mod_required=True)
        for mod in modalities
    ]
    out.append(CovariatesField(covariates))
    return out


def registered_modalities(adata_manager: AnnDataManager) -> list[str]:
    """Modality names registered by :meth:`POEMS.setup_mudata`, in registry order."""
    return list(adata_manager.registry["setup_args"]["modalities"])


def all_nan_rows(data) -> np.ndarray:
    """Boolean mask of the rows of ``data`` that are entirely NaN."""
    if sparse.issparse(data):
        data = data.toarray()
    data = np.asarray(data)
    if not np.issubdtype(data.dtype, np.floating):
        return np.zeros(data.shape[0], dtype=bool)
    return np.isnan(data).all(axis=1)


def modality_rows(mdata, modality: str, data=None, nan_rows_as_missing: bool = False) -> np.ndarray:
    """Row of each MuData sample in ``mdata[modality]``; −1 where the sample lacks the modality.

    With ``nan_rows_as_missing``, a sample whose whole row in ``data`` is NaN also counts as lacking it.
    """
    rows = np.asarray(mdata.obsmap[modality]).astype(np.int64).ravel() - 1
    if nan_rows_as_missing and data is not None:
        nan_rows = np.flatnonzero(all_nan_rows(data))
        rows[np.isin(rows, nan_rows)] = -1
    return rows


def registered_size_factors(adata_manager: AnnDataManager) -> dict[str, np.ndarray]:
    """Library sizes from ``size_factor_key`` of a registered MuData: ``{modality: values of every sample}``."""
    setup_args = adata_manager.registry["setup_args"]
    keys = resolve_size_factor_keys(adata_manager.adata, setup_args["modalities"], setup_args.get("size_factor_key"))
    return {m: size_factors(adata_manager.adata, k, m) for m, k in keys.items()}


def observed_rows(adata_manager: AnnDataManager) -> list[np.ndarray]:
    """:func:`modality_rows` of every registered modality, honouring ``nan_rows_as_missing``."""
    mdata = adata_manager.adata
    nan_missing = bool(adata_manager.registry["setup_args"].get("nan_rows_as_missing", False))
    return [
        modality_rows(mdata, m, adata_manager.get_from_registry(x_key(m)), nan_missing)
        for m in registered_modalities(adata_manager)
    ]


SCVI_SETUP_IDS = ("_scvi_uuid", "_scvi_manager_uuid")


def drop_setup_ids(mdata) -> None:
    """Remove scvi's registration ids from a MuData made by copying a set-up one (in place, ``uns`` only).

    A copy keeps the original's ids, and setting the copy up would then replace the original's registration.
    """
    for uns in [mdata.uns, *(ad.uns for ad in mdata.mod.values())]:
        for key in SCVI_SETUP_IDS:
            uns.pop(key, None)
