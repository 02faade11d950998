"""Variance explained per modality and factor (MOFA+-style, valid for a nonlinear decoder)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from mudata import MuData

from poems_mu._constants import UNS_KEY
from poems_mu.model._inference import leave_one_factor_out_r2

from ._common import model_mdata, plan_store, store_uns

UNS_KEY_R2 = "variance_explained"


def variance_explained(
    model,
    mdata: MuData | None = None,
    batch_size: int | None = 256,
    store: bool = False,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Share of each modality's variance explained by each factor and by the whole latent space.

    On the standardised scale the encoders see (each feature centred and scaled over its observed samples;
    constant features left out), with the posterior means ``z̄`` of every sample and only the samples that have
    the modality. For a Gaussian modality that is the data standardised; for a negative binomial one ``log1p`` of
    the counts at the median library size, standardised, against the same transform of the expected counts; for a
    Bernoulli one the 0/1 values standardised, against the predicted probability. (The link scale itself has no
    observed counterpart: the log of a zero count is not finite.) With covariates, ``x̂`` includes their effects,
    so the total is what the factors and the covariates explain together, and the per-factor values are each
    factor's share::

        R²_v(z) = 1 − Σ_i Σ_j (x_ij − x̂_ij(z_i))² / Σ_i Σ_j (x_ij − x̄_j)²
        R²_v    = R²_v(z̄)                                       (total)
        R²_v,k  = max(0, R²_v(z̄) − R²_v(z̄ with factor k set to its mean over the samples))

    The leave-one-factor-out definition is valid for the nonlinear decoder, where MOFA's one-factor-at-a-time
    reconstruction is not; with interactions between factors the per-factor values need not sum to the total.

    Parameters
    ----------
    model
        A trained :class:`~poems_mu.POEMS` (sparse or dense decoder).
    mdata
        MuData to evaluate on (default: the training MuData); it must have the training modalities and features.
    batch_size
        Minibatch size of the passes over the data.
    store
        Also store the result in ``mdata.uns["poems"]["variance_explained"]`` (where
        :func:`poems_mu.pl.variance_explained` reads it from a MuData) as ``{"modalities": str array (V),
        "factors": str array (K), "r2_per_factor": float array (V, K), "r2_total": float array (V)}``; other keys
        of ``uns["poems"]`` are kept. Default: only return the table.
    overwrite
        With ``store=True``, replace an existing entry; without it an existing entry raises an error before
        anything is computed (as :meth:`~poems_mu.POEMS.store_results`).

    Returns
    -------
    pandas.DataFrame
        Tidy table with columns ``modality``, ``factor`` and ``r2``: one row per modality and factor, then one row
        per modality with ``factor == "total"``. ``df.pivot(index="modality", columns="factor", values="r2")``
        gives the modality × factor matrix.

    Examples
    --------
    >>> r2 = pm.tl.variance_explained(model)  # doctest: +SKIP
    >>> r2[r2.factor == "total"]  # doctest: +SKIP
    >>> pm.tl.variance_explained(model, mdata, store=True)  # doctest: +SKIP
    >>> pm.pl.variance_explained(mdata)  # reads the stored table  # doctest: +SKIP

    """
    mdata = model_mdata(model, mdata)
    store = plan_store(mdata, UNS_KEY_R2, store, overwrite)
    mods = list(model.modalities)
    factors = model.factor_names()
    r2_k, r2_full = leave_one_factor_out_r2(model, mdata, batch_size)

    if store:
        store_uns(
            mdata,
            UNS_KEY_R2,
            {
                "modalities": np.array(mods, dtype=str),
                "factors": np.array(factors, dtype=str),
                "r2_per_factor": r2_k.astype(np.float64),
                "r2_total": r2_full.astype(np.float64),
            },
            overwrite=overwrite,
        )
    return r2_table(mods, factors, r2_k, r2_full)


def r2_table(mods, factors, r2_k: np.ndarray, r2_total: np.ndarray) -> pd.DataFrame:
    """Tidy ``modality, factor, r2`` table (per-factor rows, then the ``"total"`` rows)."""
    per = pd.DataFrame(
        {
            "modality": np.repeat(list(mods), len(factors)),
            "factor": np.tile(list(factors), len(mods)),
            "r2": np.asarray(r2_k, dtype=np.float64).ravel(),
        }
    )
    tot = pd.DataFrame({"modality": list(mods), "factor": "total", "r2": np.asarray(r2_total, dtype=np.float64)})
    return pd.concat([per, tot], ignore_index=True)


def stored_variance_explained(mdata: MuData) -> pd.DataFrame:
    """The table :func:`variance_explained` stored in ``mdata.uns["poems"]`` (with ``store=True``)."""
    uns = mdata.uns.get(UNS_KEY, {})
    if not isinstance(uns, Mapping) or UNS_KEY_R2 not in uns:
        raise KeyError(
            f'mdata.uns["{UNS_KEY}"]["{UNS_KEY_R2}"] not found: run `pm.tl.variance_explained(model, mdata, '
            "store=True)` first, or pass the table it returns."
        )
    d = uns[UNS_KEY_R2]
    return r2_table(
        [str(m) for m in d["modalities"]],
        [str(f) for f in d["factors"]],
        np.asarray(d["r2_per_factor"]),
        np.asarray(d["r2_total"]),
    )
