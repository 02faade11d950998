"""Ranked features per factor and modality from the sparse feature-to-factor matrices W (paper Figs. 2, 5, 6)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from mudata import MuData

from poems_mu._constants import LATENT_KEY

from ._common import (
    FactorSpec,
    available_modalities,
    check_positive_int,
    effective_source,
    is_model,
    latent,
    loadings_source,
    modality_data,
    model_mdata,
    nan_rows_missing,
    registry_layers,
    resolve_modality_list,
    select_factors,
)

COLUMNS = (
    "modality",
    "factor",
    "rank",
    "feature",
    "weight",
    "abs_weight",
    "pstar",
    "effective",
    "corr",
    "sign",
    "strength",
)


def _pearson_columns(z: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``z`` with the matching column of ``x`` (NaN if one is constant)."""
    zc, xc = z - z.mean(0), x - x.mean(0)
    den = np.sqrt((zc**2).sum(0) * (xc**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (zc * xc).sum(0) / np.where(den > 0, den, 1.0), np.nan)


def top_features(
    data,
    modality: str | Sequence[str] | None = None,
    factor: FactorSpec = None,
    n: int = 10,
    *,
    aggregate: bool = False,
    mdata: MuData | None = None,
    use_rep: str = LATENT_KEY,
    layers: Mapping[str, str | None] | None = None,
    with_sign: bool = True,
    include_inactive: bool = False,
) -> pd.DataFrame:
    """Top features of each factor and modality by ``|W|`` (the paper's Figs. 2 and 6; Fig. 5 with ``aggregate``).

    ``|W_v[j, k]|`` bounds the effect of factor k on standardised feature j of modality v: the decoder gives
    ``∂x̂_j/∂z_k = W[j, k] · ⟨c_j, A_k ⊙ 1[pre_j > 0]⟩`` with unit-norm generator rows and heads, so W's scale is
    identifiable and ``W[j, k] = 0`` means no effect at all, but a large ``|W|`` can still meet a generator that is
    switched off for most samples. The ``effective`` column is the effect itself
    (:meth:`~poems_mu.POEMS.get_effective_loadings`: mean over samples of ``|∂x̂_ij/∂z_ik|`` times the SD of
    ``z_k``, i.e. the change of the standardised feature per SD of the factor). ``p*`` is the posterior
    probability that the link is in the slab (a real effect rather than spike noise).

    The **sign** of a feature relative to a factor is the sign of the Pearson correlation, over the samples that
    have the modality, between the factor's posterior mean ``z_k`` and the observed feature ``x_j``: ``+1`` means
    the feature goes up with the factor. (W's own sign is not interpretable on its own: the decoder passes
    ``z ⊙ W_j`` through a nonlinearity with learned heads.)

    The **strength** is the aggregated activation strength of the paper's Fig. 5: ``Σ_k |W_v[j, k]|`` over the
    selected factors.

    Parameters
    ----------
    data
        A trained :class:`~poems_mu.POEMS` with ``decoder="sparse"``, or a MuData on which
        :meth:`~poems_mu.POEMS.store_results` has written ``varm["poems_W"]`` / ``["poems_pstar"]`` and
        ``obsm["X_poems"]``.
    modality
        One modality, a list of them, or ``None`` for all.
    factor
        Factor name (``"factor_3"``), 0-based position, a list of those, or ``None`` for the active factors
        (:meth:`~poems_mu.POEMS.active_factors`; on a MuData those ``store_results`` recorded, every factor if it
        recorded none).
    n
        Number of features per (modality, factor) — or per modality with ``aggregate=True``.
    aggregate
        Rank features per modality by their strength over the selected factors (Fig. 5) instead of per factor.
        ``factor``, ``weight``, ``pstar``, ``corr`` and ``sign`` then refer to each feature's dominant factor
        (largest ``|W|`` among the selected ones).
    mdata
        With a model: the MuData holding the data to take signs from (default: the training MuData).
    use_rep
        With a MuData: key of the latent representation in ``obsm``.
    layers
        With a MuData: ``{modality: layer}`` holding the data (default ``.X``). With a model, the layers it was
        set up with are used.
    with_sign
        Compute ``corr`` and ``sign`` (needs the data and the latent representation). ``False`` leaves them NaN/0.
    include_inactive
        With ``factor=None``, every factor instead of the active ones.

    Returns
    -------
    pandas.DataFrame
        One row per selected feature, columns ``modality``, ``factor``, ``rank`` (1 = strongest), ``feature``,
        ``weight`` (W), ``abs_weight``, ``pstar`` (NaN if unavailable), ``effective`` (NaN on a MuData stored
        without it), ``corr``, ``sign`` (−1, 0, +1) and ``strength``; sorted by modality, factor and rank (by
        modality and rank with ``aggregate``).

    Examples
    --------
    >>> pm.tl.top_features(model, "mrna", factor="factor_3", n=10)  # doctest: +SKIP
    >>> pm.tl.top_features(model, aggregate=True)  # the paper's Fig. 5  # doctest: +SKIP

    """
    n = check_positive_int(n, "n")
    mods = resolve_modality_list(available_modalities(data), modality)
    if is_model(data):
        mdata_ = model_mdata(data, mdata)
        layers_ = registry_layers(data)
        nan_missing = nan_rows_missing(data)
        z = data.get_latent_representation(mdata_) if with_sign else None
    elif isinstance(data, MuData):
        mdata_ = data
        layers_ = dict(layers or {})
        nan_missing = None  # whole-NaN rows = not measured
        z = latent(data, use_rep) if with_sign else None
    else:
        raise TypeError(f"Expected a POEMS model or a MuData with stored results, got {type(data).__name__}.")

    frames = []
    ks = None
    for mod in mods:
        W, P = loadings_source(data, mod)
        E = effective_source(data, mod, mdata_)
        names = list(W.columns)
        if ks is None:
            ks = select_factors(factor, names, data, include_inactive, mdata)
        w = W.to_numpy()
        aw = np.abs(w)
        strength = aw[:, ks].sum(1)
        rows = []  # (factor position, feature index, rank)
        if aggregate:
            order = np.argsort(-strength, kind="stable")[:n]
            dominant = np.asarray(ks)[np.argmax(aw[order][:, ks], axis=1)]
            rows = [(int(k), int(j), r + 1) for r, (j, k) in enumerate(zip(order, dominant, strict=True))]
        else:
            for k in ks:
                order = np.argsort(-aw[:, k], kind="stable")[:n]
                rows += [(k, int(j), r + 1) for r, j in enumerate(order)]
        kk = np.array([r[0] for r in rows], dtype=int)
        jj = np.array([r[1] for r in rows], dtype=int)
        corr = np.full(len(rows), np.nan)
        if with_sign and len(rows):
            uniq, inv = np.unique(jj, return_inverse=True)
            pos, x = modality_data(mdata_, mod, layers_.get(mod), uniq, nan_missing)
            corr = _pearson_columns(z[pos][:, kk], x[:, inv])
        frames.append(
            pd.DataFrame(
                {
                    "modality": mod,
                    "factor": [names[k] for k in kk],
                    "rank": np.array([r[2] for r in rows], dtype=int),
                    "feature": W.index.to_numpy()[jj].astype(str),
                    "weight": w[jj, kk],
                    "abs_weight": aw[jj, kk],
                    "pstar": P.to_numpy()[jj, kk] if P is not None else np.nan,
                    "effective": E.to_numpy()[jj, kk] if E is not None else np.nan,
                    "corr": corr,
                    "sign": np.nan_to_num(np.sign(corr)).astype(int),
                    "strength": strength[jj],
                }
            )
        )
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))
    return out[list(COLUMNS)]
