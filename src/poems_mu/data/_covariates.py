"""Sample covariates (batch, categorical and continuous ones) and library sizes, read from ``mdata.obs``.

The covariates are registered as one scvi field whose state is the encoding: the categories of each categorical
covariate (in the order of their one-hot columns) and the training mean and SD of each continuous one. The state is
saved with a model and transferred to any MuData the model is given, so a new cohort is encoded exactly as the
training one was, and a category the model never saw is an error naming it. Nothing is written to the MuData.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scvi.data.fields import BaseAnnDataField

from poems_mu._arguments import per_modality_option
from poems_mu._constants import COVARIATES_KEY


def _as_list(keys, arg: str) -> list[str]:
    if keys is None:
        return []
    if isinstance(keys, str):
        return [keys]
    keys = list(keys) if isinstance(keys, (list, tuple, pd.Index)) else [keys]
    if not all(isinstance(k, str) for k in keys):
        raise ValueError(f"`{arg}` takes column names of mdata.obs (strings), got {keys!r}.")
    return keys


def covariate_keys(batch_key, categorical_covariate_keys, continuous_covariate_keys) -> dict[str, str]:
    """``{obs column: argument that named it}``, categorical keys first (``batch_key`` first); repeats refused."""
    named = {
        "batch_key": _as_list(batch_key, "batch_key"),
        "categorical_covariate_keys": _as_list(categorical_covariate_keys, "categorical_covariate_keys"),
        "continuous_covariate_keys": _as_list(continuous_covariate_keys, "continuous_covariate_keys"),
    }
    every = [k for keys in named.values() for k in keys]
    repeated = sorted({k for k in every if every.count(k) > 1})
    if repeated:
        raise ValueError(
            f"Covariate keys {repeated} are given more than once across batch_key, categorical_covariate_keys and "
            "continuous_covariate_keys; name each obs column once."
        )
    return {k: arg for arg, keys in named.items() for k in keys}


def _column(mdata, key: str, arg: str) -> pd.Series:
    if key not in mdata.obs.columns:
        shown = list(mdata.obs.columns[:10])
        raise ValueError(
            f"`{arg}`: {key!r} is not a column of mdata.obs (its columns include {shown}). Covariates are read from "
            "the MuData's own obs; for a column of one modality's obs, call mdata.update() or copy it to mdata.obs."
        )
    column = mdata.obs[key]
    missing = column.isna().to_numpy()
    if missing.any():
        raise ValueError(
            f"`{arg}`: mdata.obs[{key!r}] has {int(missing.sum())} missing values (e.g. samples "
            f"{list(mdata.obs_names[missing][:3])}); every sample needs a value: fill them in or drop those samples."
        )
    return column


def _continuous(mdata, key: str) -> np.ndarray:
    column = _column(mdata, key, "continuous_covariate_keys")
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise ValueError(
            f"`continuous_covariate_keys`: mdata.obs[{key!r}] is not numeric (dtype {column.dtype}); pass it in "
            "categorical_covariate_keys instead, or convert it to numbers."
        )
    values = column.to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError(f"`continuous_covariate_keys`: mdata.obs[{key!r}] has infinite values; they must be finite.")
    return values


def _labels(column: pd.Series) -> np.ndarray:
    """Category labels as strings; whole numbers read the same whether stored as int or float (1 and 1.0)."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return _labels(pd.Series(column.cat.categories))[column.cat.codes.to_numpy()]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        values = column.to_numpy(dtype=np.float64)
        if np.all(values == np.round(values)):
            return values.astype(np.int64).astype(str)
    return column.astype(str).to_numpy()


class CovariatesField(BaseAnnDataField):
    """The sample covariates of a MuData as one registry field (state: the encoding; nothing written to the data).

    Parameters
    ----------
    keys
        ``{obs column: argument}`` from :func:`covariate_keys`: columns named by ``batch_key`` and
        ``categorical_covariate_keys`` are one-hot encoded, those of ``continuous_covariate_keys`` standardised with
        their training mean and SD.

    """

    def __init__(self, keys: Mapping[str, str]):
        super().__init__()
        self.arguments = dict(keys)
        self.categorical_keys = [k for k, arg in keys.items() if arg != "continuous_covariate_keys"]
        self.continuous_keys = [k for k, arg in keys.items() if arg == "continuous_covariate_keys"]

    registry_key = COVARIATES_KEY
    attr_name = "obs"
    attr_key = None

    @property
    def is_empty(self) -> bool:
        return not (self.categorical_keys or self.continuous_keys)

    def get_data_registry(self) -> dict:
        return {}  # the loader encodes the covariates itself (:func:`covariate_matrix`)

    def validate_field(self, mdata) -> None:
        for key in self.categorical_keys:
            _column(mdata, key, self.arguments[key])
        for key in self.continuous_keys:
            _continuous(mdata, key)

    def register_field(self, mdata) -> dict:
        self.validate_field(mdata)
        categories = {}
        for key in self.categorical_keys:
            column = mdata.obs[key]
            levels = column.cat.categories if isinstance(column.dtype, pd.CategoricalDtype) else None
            observed = set(_labels(column))
            if levels is not None:
                levels = [c for c in _labels(pd.Series(levels)) if c in observed]
            else:
                levels = sorted(observed)
            categories[key] = levels
        means, sds = [], []
        for key in self.continuous_keys:
            values = _continuous(mdata, key)
            means.append(float(values.mean()))
            sds.append(float(values.std()) if values.std() > 0 else 1.0)
        return {
            "arguments": dict(self.arguments),
            "categorical_keys": list(self.categorical_keys),
            "categories": categories,
            "continuous_keys": list(self.continuous_keys),
            "continuous_mean": means,
            "continuous_sd": sds,
        }

    def transfer_field(self, state_registry: dict, mdata, **kwargs) -> dict:
        if list(state_registry["categorical_keys"]) != self.categorical_keys or list(
            state_registry["continuous_keys"]
        ) != list(self.continuous_keys):
            raise ValueError("The covariate keys differ from those the model was set up with.")
        covariate_matrix(mdata, state_registry)  # checks the columns and the categories
        return state_registry

    def get_summary_stats(self, state_registry: dict) -> dict:
        return {"n_covariates": covariate_width(state_registry)}

    def view_state_registry(self, state_registry: dict):
        return None


def covariate_width(state: Mapping | None) -> int:
    """Number of encoded covariate columns C (0 without covariates)."""
    if not state:
        return 0
    return sum(len(state["categories"][k]) for k in state["categorical_keys"]) + len(state["continuous_keys"])


def covariate_names(state: Mapping | None) -> list[str]:
    """Names of the encoded columns: ``key=category`` for one-hot columns, then the continuous keys."""
    if not state:
        return []
    names = [f"{k}={c}" for k in state["categorical_keys"] for c in state["categories"][k]]
    return names + list(state["continuous_keys"])


def covariate_matrix(mdata, state: Mapping | None) -> np.ndarray | None:
    """The covariates of every sample of ``mdata`` encoded as the model was set up (samples × C), or ``None``.

    Raises a ValueError naming the column for a missing column, a missing value or a category the model did not
    see in training.
    """
    if covariate_width(state) == 0:
        return None
    blocks = []
    for key in state["categorical_keys"]:
        arg = state.get("arguments", {}).get(key, "categorical_covariate_keys")
        values = _labels(_column(mdata, key, arg))
        levels = list(state["categories"][key])
        codes = pd.Index(levels).get_indexer(values)
        if (codes < 0).any():
            unknown = sorted(set(values[codes < 0]))
            raise ValueError(
                f"mdata.obs[{key!r}] has categories the model was not trained with: {unknown[:5]} (it knows "
                f"{levels[:10]}). Covariate effects exist only for the training categories: map these samples to one "
                "of them, or train on a MuData that includes them."
            )
        blocks.append(np.eye(len(levels), dtype=np.float32)[codes])
    for key, mean, sd in zip(state["continuous_keys"], state["continuous_mean"], state["continuous_sd"], strict=True):
        values = _continuous(mdata, key)
        blocks.append(((values - mean) / sd).astype(np.float32)[:, None])
    return np.concatenate(blocks, axis=1)


def registered_covariates(adata_manager) -> Mapping | None:
    """The covariate state of a registered MuData (``None`` without covariates)."""
    field_registries = adata_manager.registry["field_registries"]
    if COVARIATES_KEY not in field_registries:
        return None
    return field_registries[COVARIATES_KEY]["state_registry"] or None


# -- library sizes ------------------------------------------------------------------------------------------------
def resolve_size_factor_keys(mdata, modalities: Sequence[str], size_factor_key) -> dict[str, str]:
    """``{modality: obs column}`` of the library sizes given (a string names one column for every modality)."""
    given = per_modality_option(size_factor_key, modalities, "size_factor_key", "a column of mdata.obs")
    keys = {m: k for m, k in given.items() if k is not None}
    for mod, key in keys.items():
        size_factors(mdata, key, mod)
    return keys


def size_factors(mdata, key: str, modality: str, observed: np.ndarray | None = None) -> np.ndarray:
    """The library sizes ``mdata.obs[key]`` of ``modality`` (float64, every sample); with ``observed``, checks
    that they are finite and positive for the samples that have the modality.
    """
    if not isinstance(key, str) or key not in mdata.obs.columns:
        raise ValueError(
            f"`size_factor_key` of modality {modality!r}: {key!r} is not a column of mdata.obs; give the column "
            "holding each sample's library size (total counts)."
        )
    column = mdata.obs[key]
    if not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        raise ValueError(f"`size_factor_key` of modality {modality!r}: mdata.obs[{key!r}] is not numeric.")
    values = column.to_numpy(dtype=np.float64)
    if observed is not None:
        bad = observed & ~(np.isfinite(values) & (values > 0))
        if bad.any():
            raise ValueError(
                f"`size_factor_key` of modality {modality!r}: mdata.obs[{key!r}] is missing, zero, negative or "
                f"infinite for {int(bad.sum())} samples with the modality (e.g. {list(mdata.obs_names[bad][:3])}); "
                "library sizes must be positive."
            )
    return values
