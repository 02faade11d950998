"""Feature-set (gene-set) enrichment of factors: decoupler's univariate linear model on signed loadings."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mudata import MuData
from scipy import stats

from poems_mu._constants import EFFECTIVE_SIGNED_KEY

from ._common import FactorSpec, check_positive_int, effective_source, is_model, loadings_source, select_factors

COLUMNS = ("factor", "source", "size", "score", "pvalue", "qvalue")


def _signed_loadings(data, modality: str, loadings: str) -> pd.DataFrame:
    """Features × factors: signed effective loadings (model or stored) or ``|W|``."""
    if loadings == "abs_W":
        return loadings_source(data, modality)[0].abs()
    e = effective_source(data, modality, signed=True)
    if e is None:
        raise KeyError(
            f"mdata.mod[{modality!r}].varm[{EFFECTIVE_SIGNED_KEY!r}] not found: run `model.store_results(mdata)` "
            "with this version of poems_mu, pass the model, or pass loadings='abs_W'."
        )
    return e.astype(np.float64)


def _ulm(mat: np.ndarray, adj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decoupler's ULM for every row of ``mat`` (factors × features) and column of ``adj`` (features × sets).

    The t-value of the slope of ``loading ~ 1 + set weight`` over all features (df = n_features − 2) and its raw
    two-sided p-value; the same formula as ``decoupler.mt.ulm``, which only reports p-values already adjusted per row.
    """
    n = mat.shape[1]
    df = n - 2
    a = adj - adj.mean(0)
    m = mat - mat.mean(1, keepdims=True)
    den = np.sqrt((m**2).sum(1))[:, None] * np.sqrt((a**2).sum(0))[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (m @ a) / np.where(den > 0, den, 1.0), 0.0)
    t = r * np.sqrt(df / ((1.0 - r + 2.2e-16) * (1.0 + r + 2.2e-16)))
    return t, 2 * stats.t.sf(np.abs(t), df)


def enrichment(
    data,
    net: pd.DataFrame,
    modality: str,
    factors: FactorSpec = None,
    method: str = "ulm",
    *,
    loadings: str = "effective",
    tmin: int = 5,
    include_inactive: bool = False,
) -> pd.DataFrame:
    """Feature-set enrichment of each factor's signed loadings (e.g. gene sets or pathways of one modality).

    For each factor, decoupler's univariate linear model (ULM): over all features of ``modality``, the factor's
    signed loading is regressed on the set's weight (1 for members of an unweighted set, 0 for the rest); the score
    is the slope's t-value (positive: the set's features rise with the factor), with its raw two-sided p-value and
    a Benjamini–Hochberg q-value over **all** factor × set tests. The sets are matched to the features with
    ``decoupler.pp.prune`` / ``decoupler.pp.adjmat``; decoupler's own ``ulm`` adjusts p-values per factor only,
    so the test is computed here with the same formula.

    The default loadings are the *signed effective loadings* (:meth:`~poems_mu.POEMS.get_effective_loadings` with
    ``signed=True``: the mean over samples of ``∂x̂_ij/∂z_ik`` times the SD of factor k). Their magnitude can be
    below the unsigned effective loading (mean of ``|∂x̂_ij/∂z_ik|``, used by :func:`top_features`) when the
    sign of the effect changes across samples. On a MuData, the stored ``varm["poems_effective_signed"]`` is used.

    Parameters
    ----------
    data
        A trained :class:`~poems_mu.POEMS` model, or a MuData with stored results (``model.store_results``).
    net
        Feature sets in decoupler's long format: columns ``source`` (set name), ``target`` (feature name, as in the
        modality's ``var_names``) and optionally ``weight`` (default 1). Nothing is downloaded; fetch MSigDB or
        PROGENy through ``decoupler.op`` on a machine with internet.
    modality
        The modality whose features the sets name.
    factors
        Factors to test (names such as ``"factor_3"``, 0-based positions, or a list); default the active factors
        (:meth:`~poems_mu.POEMS.active_factors`; on a MuData those ``store_results`` recorded, else all), so that
        factors the model does not use add no tests to the multiple-testing correction.
    method
        ``"ulm"`` (the only method so far).
    loadings
        ``"effective"`` (signed effective loadings) or ``"abs_W"``: the magnitude of the sparse loadings, a test
        without direction (is the set among the features the factor reaches?). W's sign is not used: through the
        nonlinear decoder the sign of a single ``W[j, k]`` is not identifiable (across seeds the signed W of
        matched factors correlates little), and on planted sets the signed W does not rank them first.
    tmin
        Sets with fewer than ``tmin`` features present in the modality are left out.
    include_inactive
        With ``factors=None``, test every factor.

    Returns
    -------
    Tidy DataFrame with columns ``factor``, ``source``, ``size`` (members present), ``score`` (t-value), ``pvalue``
    and ``qvalue``, sorted by q-value.

    """
    import decoupler as dc

    if method != "ulm":
        raise ValueError(f"Unknown enrichment method {method!r}: only 'ulm' is available.")
    if loadings not in ("effective", "abs_W"):
        raise ValueError(f"`loadings` must be 'effective' or 'abs_W', got {loadings!r}.")
    tmin = check_positive_int(tmin, "tmin")
    if not isinstance(net, pd.DataFrame) or not {"source", "target"} <= set(net.columns):
        raise ValueError("`net` must be a DataFrame in decoupler's long format with columns 'source' and 'target'.")
    if not (is_model(data) or isinstance(data, MuData)):
        raise TypeError(f"Expected a POEMS model or a MuData with stored results, got {type(data).__name__}.")
    mods = list(data.modalities) if is_model(data) else list(data.mod)
    if modality not in mods:
        raise KeyError(f"Unknown modality {modality!r}; choose from {mods}.")
    L = _signed_loadings(data, modality, loadings)
    net = net.copy()  # never modify the user's table
    if "weight" not in net.columns:
        net["weight"] = 1.0
    features = list(L.index)
    n_hit = net["target"].isin(features).sum()
    if n_hit == 0:
        raise ValueError(
            f"No target of `net` is a feature of modality {modality!r} (e.g. {features[:3]}): check the identifiers."
        )
    net = dc.pp.prune(features=features, net=net, tmin=tmin, verbose=False)
    sources, targets, adj = dc.pp.adjmat(features=features, net=net, verbose=False)
    adj = pd.DataFrame(adj, index=targets, columns=sources).reindex(features, fill_value=0.0).to_numpy(np.float64)
    cols = select_factors(factors, list(L.columns), data, include_inactive)
    mat = L.iloc[:, cols].to_numpy(np.float64).T
    score, pvalue = _ulm(mat, adj)
    qvalue = stats.false_discovery_control(pvalue.ravel(), method="bh").reshape(pvalue.shape)
    out = pd.DataFrame(
        {
            "factor": np.repeat(L.columns[cols].to_numpy(), len(sources)),
            "source": np.tile(np.asarray(sources, dtype=object), len(cols)),
            "size": np.tile((adj != 0).sum(0), len(cols)),
            "score": score.ravel(),
            "pvalue": pvalue.ravel(),
            "qvalue": qvalue.ravel(),
        }
    )
    return out.sort_values(["qvalue", "pvalue"], kind="mergesort").reset_index(drop=True)
