"""Which likelihood each modality has, the checks of its data, and what the module needs to start from them.

Model side of :mod:`poems_mu.nn._likelihood`: the user's ``likelihood`` argument resolved per modality, the data
checked against it (counts for ``"nb"``, 0/1 for ``"bernoulli"``), and, from the training samples, the
standardisation of each encoder's view, the reference library size of a count modality and the decoder's initial
per-feature bias (the mean of the data on the link scale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy import sparse

from ._constants import x_key
from ._covariates import resolve_size_factor_keys, size_factors
from ._validation import per_modality
from .nn import LIKELIHOODS

_CONSTANT_TOL = 1e-8


def resolve_likelihoods(likelihood, modalities: Sequence[str]) -> list[str]:
    """One likelihood name per modality from ``likelihood`` (a name, or ``{modality: name}``, the rest Gaussian)."""
    names = per_modality(likelihood, modalities, "likelihood", f"a likelihood name ({list(LIKELIHOODS)})")
    names = {m: "gaussian" if name is None else name for m, name in names.items()}
    for mod, name in names.items():
        if not isinstance(name, str) or name not in LIKELIHOODS:
            raise ValueError(
                f"Modality {mod!r}: unknown likelihood {name!r}; choose one of {list(LIKELIHOODS)} "
                "('nb' for raw counts, 'bernoulli' for 0/1 data, 'gaussian' for anything continuous)."
            )
    return list(names.values())


def _values(block) -> np.ndarray:
    """The stored values of a (possibly sparse) block: for a sparse one its non-zeros are enough for the checks."""
    return np.asarray(block.data if sparse.issparse(block) else block)


def check_likelihood_data(modality: str, name: str, data, rows: np.ndarray, where: str = "") -> None:
    """The data of ``modality`` (its rows ``rows``, −1 = absent) suit likelihood ``name``; an error names the fix."""
    if name == "gaussian":
        return
    block = data[rows[rows >= 0]] if len(rows) else data[:0]
    values = _values(block)
    values = values[np.isfinite(values)] if np.issubdtype(values.dtype, np.floating) else values
    bad = (values < 0) | (values != np.round(values)) if name == "nb" else (values != 0) & (values != 1)
    if bad.any():
        what, wrong, fix = _DATA_RULES[name]
        raise ValueError(
            f"Modality {modality!r}{where} is modelled with likelihood {name!r} ({what}), but it holds "
            f"{int(bad.sum())} {wrong} (e.g. {values[bad][:3].tolist()}). {fix}"
        )


#: per likelihood: what the data must be, what is wrong with them, and the fix
_DATA_RULES = {
    "nb": (
        "raw counts",
        "negative or non-integer values",
        "Give the raw counts (e.g. a 'counts' layer via setup_mudata(layers=...)), or use likelihood 'gaussian' for "
        "transformed data.",
    ),
    "bernoulli": (
        "0/1 data",
        "values other than 0 and 1",
        "Binarise it (e.g. mutated = 1), or use likelihood 'gaussian'.",
    ),
}


def _dense(data, rows: np.ndarray) -> np.ndarray:
    x = data[rows[rows >= 0]]
    x = x.toarray() if sparse.issparse(x) else np.asarray(x)
    return x.astype(np.float64)


def _standardisation(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    mean, sd = t.mean(0), t.std(0)
    constant = sd <= _CONSTANT_TOL * (1 + np.abs(mean))
    scale = np.where(constant, 1.0, sd)
    return mean.astype(np.float32), scale.astype(np.float32), (~constant).astype(np.float32)


def modality_start(name: str, data, rows: np.ndarray, library: np.ndarray | None = None) -> dict:
    """What the module of one modality starts from, over its observed training samples ``rows``.

    Returns ``mean``, ``scale`` and ``weight`` (standardisation of the encoder's view; weight 0 for constant
    features, which do not enter the likelihood), ``log_library_reference`` (``log L₀``, the median library size of
    an ``"nb"`` modality; 0 otherwise) and ``bias`` (the decoder's initial per-feature bias: 0, the log mean share of
    the library, or the logit of the mean). ``rows`` and ``library`` are indexed by the MuData's samples:
    ``library`` gives their library sizes (``size_factor_key``; default the total counts over the registered
    features).
    """
    x = _dense(data, rows)
    n_features = x.shape[1]
    if name == "nb":
        lib = np.maximum(x.sum(1), 1.0) if library is None else np.asarray(library, dtype=np.float64)[rows >= 0]
        log_ref = float(np.log(np.median(lib))) if len(lib) else 0.0
        share = x / lib[:, None]
        mean, scale, weight = _standardisation(np.log1p(share * np.exp(log_ref)))
        bias = np.log(np.maximum(share.mean(0), 1e-8))
        return {"mean": mean, "scale": scale, "weight": weight, "log_library_reference": log_ref, "bias": bias}
    mean, scale, weight = _standardisation(x)
    if name == "bernoulli":
        p = np.clip(x.mean(0), 1e-3, 1 - 1e-3)
        bias = np.log(p / (1 - p))
    else:
        bias = np.zeros(n_features)
    return {"mean": mean, "scale": scale, "weight": weight, "log_library_reference": 0.0, "bias": bias}


def module_starts(adata_manager, modalities: Sequence[str], likelihoods: Sequence[str], rows) -> dict[str, list]:
    """Per modality, :func:`modality_start` over the registered data, after checking it against its likelihood
    and checking the library sizes of ``size_factor_key`` (given only for ``"nb"`` modalities, positive).

    Returns lists ``mean``, ``scale``, ``weight``, ``log_library_reference`` and ``bias`` in modality order.
    """
    mdata = adata_manager.adata
    given = adata_manager.registry["setup_args"].get("size_factor_key")
    keys = resolve_size_factor_keys(mdata, modalities, given)
    count_mods = [m for m, name in zip(modalities, likelihoods, strict=True) if name == "nb"]
    if given is not None and not count_mods:
        raise ValueError(
            f"setup_mudata was given size_factor_key={given!r}, but no modality is modelled with likelihood 'nb': "
            "library sizes apply to count modalities only. Pass likelihood={modality: 'nb'} or set the MuData up "
            "without size_factor_key."
        )
    if isinstance(given, Mapping):
        wrong = [m for m in keys if m not in count_mods]
        if wrong:
            raise ValueError(
                f"size_factor_key names modalities {wrong}, which are not modelled with likelihood 'nb'; library "
                "sizes apply to count modalities only."
            )
    out: dict[str, list] = {k: [] for k in ("mean", "scale", "weight", "log_library_reference", "bias")}
    for mod, name, r in zip(modalities, likelihoods, rows, strict=True):
        data = adata_manager.get_from_registry(x_key(mod))
        check_likelihood_data(mod, name, data, r)
        library = size_factors(mdata, keys[mod], mod, observed=r >= 0) if name == "nb" and mod in keys else None
        for k, value in modality_start(name, data, r, library).items():
            out[k].append(value)
    return out
