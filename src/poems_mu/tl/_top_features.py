"""Ranked features per factor and modality by their effective loadings (paper Figs. 2, 5, 6)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from mudata import MuData

from poems_mu._constants import EFFECTIVE_KEY, EFFECTIVE_SIGNED_KEY, LATENT_KEY, UNS_KEY
from poems_mu.model._getters import sparse_only
from poems_mu.model._inference import effective_loadings
from poems_mu.module import DEFAULTS

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
    "effective",
    "effective_signed",
    "direction",
    "abs_weight",
    "pstar",
    "pstar_threshold",
    "pstar_informative",
    "corr",
    "strength",
)

#: the clamp the spike-and-slab E-step puts on θ
_THETA_EPS = 1e-6


def pstar_threshold(theta, lambda0: float, lambda1: float) -> np.ndarray:
    """``|W|`` above which the slab probability ``p*`` exceeds 0.5, per factor.

    With Laplace spike (rate λ0) and slab (rate λ1) densities ψ0, ψ1 and slab share θ,
    ``p*(w) = θψ1(w) / (θψ1(w) + (1 − θ)ψ0(w))`` exceeds 0.5 exactly when
    ``|w| > log((1 − θ)/θ · λ0/λ1) / (λ0 − λ1)``. That threshold is returned, clipped at 0 (0: even ``w = 0`` has
    ``p* ≥ 0.5``, which happens when ``θ ≥ λ0 / (λ0 + λ1)``).

    Parameters
    ----------
    theta
        Slab share θ_k of each factor (array-like), clamped to ``[1e-6, 1 − 1e-6]`` as in the E-step.
    lambda0, lambda1
        Spike and slab rates, ``λ0 > λ1 > 0``.

    Returns
    -------
    numpy.ndarray
        The threshold per factor (float64, ≥ 0).

    """
    theta = np.clip(np.asarray(theta, dtype=np.float64), _THETA_EPS, 1 - _THETA_EPS)
    lambda0, lambda1 = float(lambda0), float(lambda1)
    if not lambda0 > lambda1 > 0:
        raise ValueError(f"The spike-and-slab rates need lambda0 > lambda1 > 0, got {lambda0!r} and {lambda1!r}.")
    return np.maximum(np.log((1 - theta) / theta * lambda0 / lambda1) / (lambda0 - lambda1), 0.0)


def _slab_prior(data, modality: str, n_factors: int) -> tuple[np.ndarray, float, float] | None:
    """θ (kept factors), λ0 and λ1 of a modality's prior; ``None`` where a MuData does not store them.

    A model gives the spike rate its E-step used last (``lambda0_now``: λ0 unless a ``sparsity_warmup="lambda0"``
    warm-up was cut short); a MuData gives ``uns["poems"]["theta"][modality]`` and the λ0, λ1 of
    ``uns["poems"]["params"]`` (the model's defaults where a parameter is not recorded).
    """
    if is_model(data):
        prior = data.module.priors[data.modalities.index(modality)]
        theta = prior.theta.detach().index_select(0, data.module.factor_index()).cpu().numpy()
        return theta.astype(np.float64), float(prior.lambda0_now), float(prior.lambda1)
    uns = data.uns.get(UNS_KEY)
    thetas = uns.get("theta") if isinstance(uns, Mapping) else None
    if not isinstance(thetas, Mapping) or modality not in thetas:
        return None
    theta = np.asarray(thetas[modality], dtype=np.float64).ravel()
    if len(theta) != n_factors:
        return None
    try:
        params = json.loads(str(uns.get("params", "{}")))
    except json.JSONDecodeError:
        params = {}
    params = params if isinstance(params, Mapping) else {}
    return theta, float(params.get("lambda0", DEFAULTS.lambda0)), float(params.get("lambda1", DEFAULTS.lambda1))


def _pstar_evidence(data, modality: str, aw: np.ndarray, P: pd.DataFrame | None) -> tuple[np.ndarray, np.ndarray]:
    """Per factor: the ``|W|`` threshold of ``p* > 0.5`` and whether ``p*`` separates that factor's links."""
    n_factors = aw.shape[1]
    prior = _slab_prior(data, modality, n_factors)
    if prior is not None:
        thr = pstar_threshold(*prior)
        amax = aw.max(0) if len(aw) else np.zeros(n_factors)
        return thr, (thr > 0) & (amax > thr)
    thr = np.full(n_factors, np.nan)
    if P is None or not len(P):
        return thr, np.zeros(n_factors, dtype=bool)
    p = P.to_numpy()
    return thr, (p.max(0) > 0.5) & (p.min(0) < 0.5)


def _effective_pair(data, modality: str, z: np.ndarray | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Unsigned and signed effective loadings of a modality: computed from a model, or read from a MuData."""
    if is_model(data):
        v = data.modalities.index(modality)
        return effective_loadings(data, v, z, None), effective_loadings(data, v, z, None, signed=True)
    E, S = effective_source(data, modality), effective_source(data, modality, signed=True)
    if E is None or S is None:
        raise KeyError(
            f"mdata.mod[{modality!r}].varm[{EFFECTIVE_KEY!r}] and [{EFFECTIVE_SIGNED_KEY!r}] are needed (the features "
            "are ranked by their effective loadings): run `model.store_results(mdata)` (sparse decoder) to write "
            "them, or pass the model."
        )
    return E, S


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
    with_corr: bool = True,
    include_inactive: bool = False,
) -> pd.DataFrame:
    """Top features of each factor and modality by their effective loading (Figs. 2 and 6; Fig. 5 with ``aggregate``).

    **Ranking.** Features are ranked by the unsigned **effective loading** ``effective``
    (:meth:`~poems_mu.POEMS.get_effective_loadings`): the mean over samples of ``|∂x̂_ij/∂z_ik|`` times the SD of
    ``z_k``, i.e. the change of the feature per SD of the factor on the decoder's link scale (standardised units
    for a Gaussian modality, log fold change of the expected count for a negative binomial one, log odds for a
    Bernoulli one). ``|W_v[j, k]|`` only bounds that effect (``∂x̂_j/∂z_k = W[j, k] · ⟨c_j, A_k ⊙ 1[pre_j > 0]⟩``):
    a large ``|W|`` can meet a generator that is off for most samples, so it is shown as evidence, not used to rank.

    **Direction.** ``direction`` is the sign of the signed effective loading ``effective_signed`` (the mean of
    ``∂x̂_ij/∂z_ik`` times the SD of ``z_k``): ``+1`` the feature rises with the factor, ``−1`` it falls, ``0`` no
    effect (``W[j, k] = 0``). ``|effective_signed| ≤ effective``, with equality when the sign is the same for every
    sample; a much smaller ``|effective_signed|`` means the direction differs between samples. W's own sign carries
    no direction (the decoder passes ``z ⊙ W_j`` through a nonlinearity with learned heads), so it is not shown.
    ``corr`` is data-side evidence: the observed Pearson correlation, over the samples that have the modality,
    between the factor's posterior mean ``z_k`` and the feature ``x_j``. For a strong link its sign usually equals
    ``direction``; it can differ when other factors that correlate with ``z_k`` also drive the feature, when the
    effect is weak next to the noise, or when its sign changes between samples.

    **Slab probability.** ``pstar`` is the posterior probability that the link is in the slab (a real effect, not
    spike noise). With Laplace spike (rate λ0) and slab (rate λ1) densities ψ0, ψ1,
    ``p* = θψ1(w) / (θψ1(w) + (1 − θ)ψ0(w))`` exceeds 0.5 only when ``|w|`` exceeds ``pstar_threshold`` =
    ``log((1 − θ_k)/θ_k · λ0/λ1) / (λ0 − λ1)`` (clipped at 0), which depends on the factor's slab share θ_k in the
    modality (θ_k, λ0 and λ1 come from the model, or from ``uns["poems"]["theta"]`` and ``["params"]`` as
    :meth:`~poems_mu.POEMS.store_results` writes them). ``pstar_informative`` says whether p* separates that
    factor's links: it is ``False`` when the threshold is above every ``|W|`` of the factor's column in the
    modality (a small θ_k: p* is below 0.5 for every link whatever its size), or is 0 (θ_k ≥ λ0/(λ0 + λ1): even a
    zero link has p* ≥ 0.5).
    p* then reports θ_k rather than the link; judge the link by ``effective`` and ``abs_weight``. A trained model
    holds the p* and θ of its restored state, whose θ_k is still falling from its start of 0.5 (the E-step iterated
    on the same W puts fewer links in the slab; the model page, "The p* and θ of a trained model"): within a factor
    p* orders the links as ``|W|`` does, and is not a calibrated probability that a link is real.

    **Strength** (Fig. 5): ``Σ_k effective_v[j, k]`` over the selected factors. With ``aggregate=True`` features
    are ranked per modality by it.

    Parameters
    ----------
    data
        A trained :class:`~poems_mu.POEMS` with ``decoder="sparse"``, or a MuData on which
        :meth:`~poems_mu.POEMS.store_results` has written ``varm["poems_W"]``, ``["poems_pstar"]``,
        ``["poems_effective"]``, ``["poems_effective_signed"]``, ``uns["poems"]`` and ``obsm["X_poems"]``.
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
        ``factor`` and the per-link columns (``effective``, ``effective_signed``, ``direction``, ``abs_weight``,
        ``pstar``, ``pstar_threshold``, ``pstar_informative``, ``corr``) then refer to each feature's dominant factor
        (largest effective loading among the selected ones).
    mdata
        With a model: the MuData to average the effective loadings over and take ``corr`` from (default: the
        training MuData).
    use_rep
        With a MuData: key of the latent representation in ``obsm`` (for ``corr``).
    layers
        With a MuData: ``{modality: layer}`` holding the data (default ``.X``). With a model, the layers it was
        set up with are used.
    with_corr
        Compute ``corr`` (needs the data and the latent representation). ``False`` leaves it NaN.
    include_inactive
        With ``factor=None``, every factor instead of the active ones.

    Returns
    -------
    pandas.DataFrame
        One row per selected feature, columns ``modality``, ``factor``, ``rank`` (1 = largest effective loading),
        ``feature``, ``effective`` (unsigned effective loading), ``effective_signed`` (signed effective loading),
        ``direction`` (−1, 0, +1: sign of ``effective_signed``), ``abs_weight`` (``|W|``), ``pstar`` (slab
        probability, NaN if unavailable), ``pstar_threshold`` (``|W|`` above which p* > 0.5 for this modality and
        factor; NaN on a MuData stored without θ), ``pstar_informative`` (bool: p* separates this factor's links;
        without θ, read off the stored p*: some above 0.5 and some below), ``corr`` (observed Pearson correlation
        of ``z_k`` and ``x_j``; NaN with ``with_corr=False``) and ``strength`` (``Σ_k effective`` over the selected
        factors); sorted by modality, factor and rank (by modality and rank with ``aggregate``).

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
        sparse_only(data, "Loadings")  # before any inference
        z_model = data.get_latent_representation(mdata_)
        z = z_model if with_corr else None
    elif isinstance(data, MuData):
        mdata_ = data
        layers_ = dict(layers or {})
        nan_missing = None  # whole-NaN rows = not measured
        z_model = None
        z = latent(data, use_rep) if with_corr else None
    else:
        raise TypeError(f"Expected a POEMS model or a MuData with stored results, got {type(data).__name__}.")

    frames = []
    ks = None
    for mod in mods:
        W, P = loadings_source(data, mod)
        E, S = _effective_pair(data, mod, z_model)
        names = list(W.columns)
        if ks is None:
            ks = select_factors(factor, names, data, include_inactive, mdata)
        aw = np.abs(W.to_numpy())
        eff, eff_signed = E.to_numpy(), S.to_numpy()
        thr, informative = _pstar_evidence(data, mod, aw, P)
        strength = eff[:, ks].sum(1)
        rows = []  # (factor position, feature index, rank)
        if aggregate:
            order = np.argsort(-strength, kind="stable")[:n]
            dominant = np.asarray(ks)[np.argmax(eff[order][:, ks], axis=1)]
            rows = [(int(k), int(j), r + 1) for r, (j, k) in enumerate(zip(order, dominant, strict=True))]
        else:
            for k in ks:
                order = np.argsort(-eff[:, k], kind="stable")[:n]
                rows += [(k, int(j), r + 1) for r, j in enumerate(order)]
        kk = np.array([r[0] for r in rows], dtype=int)
        jj = np.array([r[1] for r in rows], dtype=int)
        corr = np.full(len(rows), np.nan)
        if with_corr and len(rows):
            uniq, inv = np.unique(jj, return_inverse=True)
            pos, x = modality_data(mdata_, mod, layers_.get(mod), uniq, nan_missing)
            corr = _pearson_columns(z[pos][:, kk], x[:, inv])
        signed = eff_signed[jj, kk]
        frames.append(
            pd.DataFrame(
                {
                    "modality": mod,
                    "factor": [names[k] for k in kk],
                    "rank": np.array([r[2] for r in rows], dtype=int),
                    "feature": W.index.to_numpy()[jj].astype(str),
                    "effective": eff[jj, kk],
                    "effective_signed": signed,
                    "direction": np.nan_to_num(np.sign(signed)).astype(int),
                    "abs_weight": aw[jj, kk],
                    "pstar": P.to_numpy()[jj, kk] if P is not None else np.nan,
                    "pstar_threshold": thr[kk],
                    "pstar_informative": informative[kk].astype(bool),
                    "corr": corr,
                    "strength": strength[jj],
                }
            )
        )
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=list(COLUMNS))
    return out[list(COLUMNS)]
