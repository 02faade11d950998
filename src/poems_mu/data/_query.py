"""The samples a trained model is asked about, and which of their modalities it may look at.

A product of experts places a sample from whatever modalities it has, so a query — the training MuData or a new
cohort — need only hold the training features of the trained modalities it has: a whole modality may be absent.
The query is read straight from the user's MuData (``obsmap`` and the registered layer of each modality), never
registered, copied or written to. ``condition_on`` hides the other modalities from the encoders, as if the samples
lacked them: the model then places each sample from those modalities alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import scvi
import torch
from mudata import MuData

from poems_mu._constants import x_key

from ._checks import check_query_mudata, check_samples_observed, layer_matrix
from ._covariates import covariate_matrix, registered_covariates, resolve_size_factor_keys, size_factors
from ._loader import MultiModalDataset
from ._registry import modality_rows, observed_rows, registered_size_factors
from ._statistics import check_likelihood_data, count_modalities


def resolve_samples(obs_names: pd.Index, samples: Sequence[str] | str | None) -> np.ndarray:
    """Positions of ``samples`` (sample names, default all) in ``obs_names``."""
    if samples is None:
        return np.arange(len(obs_names))
    if isinstance(samples, str):
        samples = [samples]
    samples = pd.Index(samples).astype(str)
    positions = obs_names.get_indexer(samples)
    if (positions < 0).any():
        unknown = samples[positions < 0][:5].tolist()
        raise ValueError(
            f"{int((positions < 0).sum())} of the samples asked for are not in this MuData (e.g. {unknown}); "
            "`samples` takes sample names (obs_names)."
        )
    return positions


def resolve_condition(modalities: Sequence[str], condition_on: Sequence[str] | str | None, arg: str) -> list[str]:
    """The trained modalities to condition on (default all), checked; ``arg`` names the argument in errors."""
    if condition_on is None:
        return list(modalities)
    if isinstance(condition_on, str):
        condition_on = [condition_on]
    condition_on = list(dict.fromkeys(condition_on))
    unknown = [m for m in condition_on if m not in modalities]
    if unknown:
        raise ValueError(
            f"`{arg}` names modalities the model does not have: {unknown}; its modalities are {list(modalities)}."
        )
    if not condition_on:
        raise ValueError(f"`{arg}` is empty; name at least one of the model's modalities {list(modalities)}.")
    return condition_on


def held_modalities(model, mdata: MuData) -> dict[str, tuple]:
    """The trained modalities a new MuData holds (checked as ``setup_mudata`` checks them), each as ``(data, rows)``:
    its registered matrix and the row of each sample in it (−1 = absent).
    """
    setup_args = model.adata_manager.registry["setup_args"]
    var_names = {m: model.adata.mod[m].var_names for m in model.modalities}
    present = check_query_mudata(mdata, setup_args, var_names)
    layers = setup_args.get("layers") or {}
    nan_missing = bool(setup_args.get("nan_rows_as_missing", False))
    held = {}
    for m in present:
        data = layer_matrix(mdata.mod[m], layers.get(m), m)
        held[m] = (data, modality_rows(mdata, m, data, nan_missing))
    return held


def check_query_data(model, mdata: MuData, held: dict) -> dict[str, np.ndarray]:
    """Checks a new MuData's modalities against their likelihoods and returns the library sizes of its count
    modalities that come from ``size_factor_key`` (checked positive where observed).

    ``held`` is :func:`held_modalities` of the MuData.
    """
    for m, (data, rows) in held.items():
        check_likelihood_data(m, model.likelihoods[m], data, rows, where=" of this MuData")
    counts = count_modalities(list(held), [model.likelihoods[m] for m in held])
    given = model.adata_manager.registry["setup_args"].get("size_factor_key")
    if isinstance(given, dict):
        given = {m: k for m, k in given.items() if m in counts}
    keys = resolve_size_factor_keys(mdata, counts, given)
    return {m: size_factors(mdata, k, m, observed=held[m][1] >= 0) for m, k in keys.items()}


def query_dataset(
    model,
    mdata: MuData | None,
    samples: Sequence[str] | str | None = None,
    condition_on: Sequence[str] | None = None,
    what: str = "the model's modalities",
) -> tuple[MultiModalDataset, pd.Index]:
    """The dataset of ``samples`` of ``mdata`` (default: the training MuData), seen through ``condition_on``.

    Returns the dataset (its minibatches as in training, modalities outside ``condition_on`` or absent from
    ``mdata`` masked) and the names of its samples. Errors name the modality, argument or samples at fault; a new
    MuData's data are checked against each modality's likelihood, and its covariates are encoded as in training
    (a category the model did not see is an error).
    """
    modalities = list(model.modalities)
    condition_on = list(modalities) if condition_on is None else list(condition_on)
    n_features = [model.summary_stats[f"n_{x_key(m)}"] for m in modalities]
    if mdata is None:
        mdata = model.adata
        manager = model.adata_manager
        data = [manager.get_from_registry(x_key(m)) for m in modalities]
        rows = observed_rows(manager)
        covariates = covariate_matrix(mdata, registered_covariates(manager))
        libraries = registered_size_factors(manager)
    else:
        held = held_modalities(model, mdata)
        data, rows = [], []
        for m in modalities:
            data.append(held[m][0] if m in held else None)
            rows.append(held[m][1] if m in held else np.full(mdata.n_obs, -1, dtype=np.int64))
        libraries = check_query_data(model, mdata, held)
        libraries = {m: lib for m, lib in libraries.items() if m in condition_on}
        covariates = covariate_matrix(mdata, registered_covariates(model.adata_manager))
    rows = [r if m in condition_on else np.full_like(r, -1) for m, r in zip(modalities, rows, strict=True)]
    positions = resolve_samples(mdata.obs_names, samples)
    obs_names = mdata.obs_names[positions]
    observed = np.stack([r[positions] >= 0 for r in rows], axis=1)
    check_samples_observed(obs_names, observed[:, [modalities.index(m) for m in condition_on]], condition_on, what)
    dataset = MultiModalDataset.from_arrays(modalities, data, n_features, rows, positions, covariates, libraries)
    return dataset, obs_names


def minibatches(dataset: MultiModalDataset, batch_size: int | None) -> Iterator[dict[str, torch.Tensor]]:
    """The dataset's samples in order, ``batch_size`` at a time (default ``scvi.settings.batch_size``)."""
    batch_size = batch_size or scvi.settings.batch_size
    for start in range(0, len(dataset), batch_size):
        yield dataset[np.arange(start, min(start + batch_size, len(dataset)))]
