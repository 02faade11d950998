"""Each modality's data read through its likelihood: the data checked against it, and the statistics it starts from.

The likelihood (:mod:`poems_mu.nn`) decides which values it accepts and what it starts from; here the registered data
of each modality (or a new cohort's) are gathered over the samples that have it and handed to it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from scipy import sparse

from poems_mu._arguments import per_modality_option
from poems_mu._constants import x_key
from poems_mu.nn import LIKELIHOODS, FeatureStatistics, likelihood_class, make_likelihood

from ._covariates import resolve_size_factor_keys, size_factors


def resolve_likelihoods(likelihood, modalities: Sequence[str]) -> list[str]:
    """One likelihood name per modality from ``likelihood`` (a name, or ``{modality: name}``, the rest Gaussian)."""
    names = per_modality_option(likelihood, modalities, "likelihood", f"a likelihood name ({list(LIKELIHOODS)})")
    names = {m: "gaussian" if name is None else name for m, name in names.items()}
    for mod, name in names.items():
        likelihood_class(name, mod)
    return list(names.values())


def _values(block) -> np.ndarray:
    """The stored values of a (possibly sparse) block: for a sparse one its non-zeros are enough for the checks."""
    return np.asarray(block.data if sparse.issparse(block) else block)


def check_likelihood_data(modality: str, name: str, data, rows: np.ndarray, where: str = "") -> None:
    """The data of ``modality`` (its rows ``rows``, −1 = absent) suit likelihood ``name``; an error names the fix."""
    cls = likelihood_class(name, modality)
    if cls.data_rule is None:
        return
    block = data[rows[rows >= 0]] if len(rows) else data[:0]
    values = _values(block)
    values = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
    bad = cls.invalid_values(values)
    if bad.any():
        what, wrong, fix = cls.data_rule
        raise ValueError(
            f"Modality {modality!r}{where} is modelled with likelihood {name!r} ({what}), but it holds "
            f"{int(bad.sum())} {wrong} (e.g. {values[bad][:3].tolist()}). {fix}"
        )


def observed_dense(data, rows: np.ndarray) -> np.ndarray:
    """The rows ``rows[rows >= 0]`` of ``data`` as a dense float64 array."""
    x = data[rows[rows >= 0]]
    x = x.toarray() if sparse.issparse(x) else np.asarray(x)
    return x.astype(np.float64)


def count_modalities(modalities: Sequence[str], likelihoods: Sequence[str]) -> list[str]:
    """The modalities whose likelihood uses library sizes (``"nb"``)."""
    return [m for m, name in zip(modalities, likelihoods, strict=True) if likelihood_class(name).uses_library]


def feature_statistics(
    adata_manager, modalities: Sequence[str], likelihoods: Sequence[str], rows
) -> list[FeatureStatistics]:
    """Per modality, its likelihood's :meth:`~poems_mu.nn.Likelihood.initial_statistics` over the registered data of
    the samples that have it (``rows``: per modality the row of each sample, −1 = absent), after checking the data
    against the likelihood and the library sizes of ``size_factor_key`` (for count modalities only, positive).
    """
    mdata = adata_manager.adata
    given = adata_manager.registry["setup_args"].get("size_factor_key")
    keys = resolve_size_factor_keys(mdata, modalities, given)
    counts = count_modalities(modalities, likelihoods)
    if given is not None and not counts:
        raise ValueError(
            f"setup_mudata was given size_factor_key={given!r}, but no modality is modelled with likelihood 'nb': "
            "library sizes apply to count modalities only. Pass likelihood={modality: 'nb'} or set the MuData up "
            "without size_factor_key."
        )
    if isinstance(given, Mapping):
        wrong = [m for m in keys if m not in counts]
        if wrong:
            raise ValueError(
                f"size_factor_key names modalities {wrong}, which are not modelled with likelihood 'nb'; library "
                "sizes apply to count modalities only."
            )
    out = []
    for mod, name, r in zip(modalities, likelihoods, rows, strict=True):
        data = adata_manager.get_from_registry(x_key(mod))
        check_likelihood_data(mod, name, data, r)
        library = None
        if mod in counts and mod in keys:
            library = size_factors(mdata, keys[mod], mod, observed=r >= 0)[r >= 0]
        out.append(likelihood_class(name).initial_statistics(observed_dense(data, r), library))
    return out


def encoder_views(
    adata_manager, modalities: Sequence[str], likelihoods: Sequence[str], rows, statistics: Sequence[FeatureStatistics]
) -> list[np.ndarray]:
    """Per modality, what its encoder sees of every sample (its likelihood's view, standardised with
    ``statistics``): ``(n_samples, n_features)`` float64, NaN rows for the samples without the modality.
    """
    mdata = adata_manager.adata
    keys = resolve_size_factor_keys(mdata, modalities, adata_manager.registry["setup_args"].get("size_factor_key"))
    out = []
    for mod, name, r, stats in zip(modalities, likelihoods, rows, statistics, strict=True):
        x = torch.as_tensor(observed_dense(adata_manager.get_from_registry(x_key(mod)), r), dtype=torch.float32)
        library = None
        if likelihood_class(name).uses_library and mod in keys:
            library = torch.as_tensor(size_factors(mdata, keys[mod], mod)[r >= 0], dtype=torch.float32)
        lik = make_likelihood(name, x.shape[1], 1.0, stats)
        with torch.no_grad():
            view = lik.encoder_input(x, torch.ones(len(x)), lik.log_library(x, library))
        full = np.full((len(r), x.shape[1]), np.nan)
        full[r >= 0] = view.numpy()
        out.append(full)
    return out
