"""Feature-set (gene-set) enrichment of factors: decoupler's univariate linear model on signed loadings."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from mudata import MuData
from scipy import stats

from poems_mu._constants import EFFECTIVE_SIGNED_KEY

from ._common import (
    FactorSpec,
    available_modalities,
    bh,
    check_positive_int,
    effective_source,
    is_model,
    loadings_source,
    select_factors,
)

COLUMNS = ("modality", "factor", "source", "size", "score", "pvalue", "qvalue")


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


def _modalities(data, modality: str | Sequence[str] | None) -> list[str]:
    """Modalities to test: every one of the model (of the MuData: those with stored results), or the chosen ones."""
    known = list(data.modalities) if is_model(data) else list(data.mod)
    if modality is None:
        mods = list(data.modalities) if is_model(data) else available_modalities(data)
        if not mods:
            raise KeyError(
                f"No modality of the MuData has stored results (mod[m].varm[{EFFECTIVE_SIGNED_KEY!r}]): run "
                "`model.store_results(mdata)` first, or pass the model."
            )
        return mods
    if not isinstance(modality, str | Sequence) or not all(isinstance(m, str) for m in modality):
        raise TypeError(f"`modality` must be a modality name, a list of names or None, got {modality!r}.")
    mods = [modality] if isinstance(modality, str) else list(modality)
    if not mods:
        raise ValueError("`modality` is an empty list; pass None to test every modality.")
    bad = [m for m in mods if m not in known]
    if bad:
        raise KeyError(f"Unknown modality {bad[0]!r}; choose from {known}, or pass modality=None for all of them.")
    if len(set(mods)) != len(mods):
        raise ValueError(f"Modalities are repeated in `modality`: {mods}.")
    return mods


def _sets_of(net: pd.DataFrame, mod: str) -> pd.DataFrame:
    """The rows of ``net`` for one modality (all of them without a ``modality`` column), as source/target/weight."""
    rows = net[net["modality"].astype(str) == mod] if "modality" in net.columns else net
    return rows[["source", "target", "weight"]]


def _tested_modalities(net: pd.DataFrame, loadings: dict[str, pd.DataFrame], tmin: int, explicit: bool) -> list[str]:
    """Modalities with at least one set of ``tmin`` features present; the others are skipped, or raise.

    With a ``modality`` column a modality none of whose rows name its features is an error (wrong identifiers); a
    whole net matched against every modality skips such modalities, with a warning where they were asked for.
    """
    by_modality = "modality" in net.columns
    matched, no_hit, too_small = [], [], []
    for mod, L in loadings.items():
        rows = _sets_of(net, mod)
        present = rows[rows["target"].isin(L.index)]
        if present.empty:
            if by_modality:
                raise ValueError(
                    f"No target of `net`'s rows with modality {mod!r} is a feature of it (features e.g. "
                    f"{list(L.index[:3])}; net names e.g. {list(rows['target'].astype(str).unique()[:3])}): check "
                    "the identifiers."
                )
            no_hit.append(mod)
        elif present.groupby("source")["target"].nunique().max() < tmin:
            too_small.append(mod)
        else:
            matched.append(mod)
    if not matched:
        if too_small:
            raise ValueError(
                f"No set of `net` has tmin={tmin} or more features of modalities {too_small}: lower `tmin`."
            )
        examples = {m: list(L.index[:2]) for m, L in loadings.items()}
        raise ValueError(
            f"No target of `net` is a feature of modalities {no_hit} (features e.g. {examples}; net names e.g. "
            f"{list(net['target'].astype(str).unique()[:3])}): check the identifiers."
        )
    skipped = too_small + no_hit
    if skipped and (explicit or by_modality):
        warnings.warn(
            f"No set of `net` has tmin={tmin} or more features of modalities {skipped}; they are not tested.",
            UserWarning,
            stacklevel=3,
        )
    return matched


def _net_modalities(net: pd.DataFrame, mods: list[str], data, explicit: bool) -> list[str]:
    """The modalities (of ``mods``) that ``net``'s ``modality`` column names; warns about ones the data lack."""
    in_net = sorted(set(net["modality"].astype(str)))
    known = list(data.modalities) if is_model(data) else list(data.mod)
    foreign = [m for m in in_net if m not in known]
    if foreign:
        warnings.warn(
            f"`net` has rows with modalities {foreign}, which the data do not have ({known}); they are not tested.",
            UserWarning,
            stacklevel=3,
        )
    if explicit:
        missing = [m for m in mods if m not in in_net]
        if missing:
            raise ValueError(
                f"`net` has no rows with modality {missing} (its `modality` column has {in_net}): choose from those, "
                "or drop the column to match every set against every modality."
            )
        return mods
    kept = [m for m in mods if m in in_net]
    if not kept:
        raise ValueError(
            f"The `modality` column of `net` names none of the modalities {mods} (it has {in_net}): fix the column, "
            "or drop it to match every set against every modality."
        )
    return kept


def _one_modality(mod: str, L: pd.DataFrame, sets: pd.DataFrame, cols: list[int], tmin: int) -> pd.DataFrame:
    """ULM of the selected factors of one modality against its sets; p-values raw (q-values come later)."""
    import decoupler as dc

    features = list(L.index)
    sets = dc.pp.prune(features=features, net=sets, tmin=tmin, verbose=False)
    sources, targets, adj = dc.pp.adjmat(features=features, net=sets, verbose=False)
    adj = pd.DataFrame(adj, index=targets, columns=sources).reindex(features, fill_value=0.0).to_numpy(np.float64)
    score, pvalue = _ulm(L.iloc[:, cols].to_numpy(np.float64).T, adj)
    return pd.DataFrame(
        {
            "modality": mod,
            "factor": np.repeat(L.columns[cols].to_numpy(), len(sources)),
            "source": np.tile(np.asarray(sources, dtype=object), len(cols)),
            "size": np.tile((adj != 0).sum(0), len(cols)),
            "score": score.ravel(),
            "pvalue": pvalue.ravel(),
        }
    )


def enrichment(
    data,
    net: pd.DataFrame,
    modality: str | Sequence[str] | None = None,
    factors: FactorSpec = None,
    method: str = "ulm",
    *,
    loadings: str = "effective",
    tmin: int = 5,
    include_inactive: bool = False,
) -> pd.DataFrame:
    """Feature-set enrichment of each factor's signed loadings (gene sets, pathways, ...), in every modality at once.

    For each modality and factor, decoupler's univariate linear model (ULM): over all features of the modality, the
    factor's signed loading is regressed on the set's weight (1 for members of an unweighted set, 0 for the rest);
    the score is the slope's t-value (positive: the set's features rise with the factor), with its raw two-sided
    p-value and a Benjamini–Hochberg q-value over **all** the tests of the call (every modality × factor × set).
    The sets are matched to the features with ``decoupler.pp.prune`` / ``decoupler.pp.adjmat``; decoupler's own
    ``ulm`` adjusts p-values per factor only, so the test is computed here with the same formula.

    Which sets each modality gets: if ``net`` has a ``modality`` column (as
    :func:`poems_mu.datasets.breast_tcga_feature_sets` returns), each modality gets its own rows; otherwise the
    whole ``net`` is matched against every modality, and modalities none of whose features it names (or where no
    set reaches ``tmin`` members) are skipped, e.g. gene sets on a miRNA modality.

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
        modality's ``var_names``), optionally ``weight`` (default 1) and ``modality`` (which modality a row's
        feature belongs to). It is not modified. Nothing is downloaded; fetch MSigDB or PROGENy through
        ``decoupler.op`` on a machine with internet.
    modality
        ``None`` (default): every modality of the model (of a MuData: those with stored results). A name or a list
        of names restricts the test (and the multiple-testing correction) to those modalities.
    factors
        Factors to test: names such as ``"factor_3"``, 0-based positions (``2`` is the third factor, whatever its
        name), or a list of those; default the active factors (:meth:`~poems_mu.POEMS.active_factors`; on a MuData
        those ``store_results`` recorded, else all), so that factors the model does not use add no tests to the
        multiple-testing correction.
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
    pandas.DataFrame
        Tidy table with columns ``modality``, ``factor``, ``source``, ``size`` (members present), ``score``
        (t-value), ``pvalue`` and ``qvalue``, sorted by q-value. Nothing is stored; pass the table to
        :func:`poems_mu.pl.enrichment`.

    Examples
    --------
    >>> sets = pm.datasets.breast_tcga_feature_sets()  # doctest: +SKIP
    >>> res = pm.tl.enrichment(model, sets)  # every modality, one BH correction  # doctest: +SKIP
    >>> pm.pl.enrichment(res, max_q=0.05)  # doctest: +SKIP

    """
    if method != "ulm":
        raise ValueError(f"Unknown enrichment method {method!r}: only 'ulm' is available.")
    if loadings not in ("effective", "abs_W"):
        raise ValueError(f"`loadings` must be 'effective' or 'abs_W', got {loadings!r}.")
    tmin = check_positive_int(tmin, "tmin")
    if not isinstance(net, pd.DataFrame) or not {"source", "target"} <= set(net.columns):
        raise ValueError("`net` must be a DataFrame in decoupler's long format with columns 'source' and 'target'.")
    if not (is_model(data) or isinstance(data, MuData)):
        raise TypeError(f"Expected a POEMS model or a MuData with stored results, got {type(data).__name__}.")
    mods = _modalities(data, modality)
    net = net.copy()  # never modify the user's table
    if "weight" not in net.columns:
        net["weight"] = 1.0
    if "modality" in net.columns:
        mods = _net_modalities(net, mods, data, explicit=modality is not None)
    L = {m: _signed_loadings(data, m, loadings) for m in mods}
    mods = _tested_modalities(net, L, tmin, explicit=modality is not None)
    names = list(L[mods[0]].columns)
    cols = select_factors(factors, names, data, include_inactive)
    out = pd.concat([_one_modality(m, L[m], _sets_of(net, m), cols, tmin) for m in mods], ignore_index=True)
    out["qvalue"] = bh(out["pvalue"].to_numpy())
    out = out[list(COLUMNS)]
    return out.sort_values(["qvalue", "pvalue"], kind="mergesort").reset_index(drop=True)
