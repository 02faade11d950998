"""Cross-omic feature associations through shared factors."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import pandas as pd
from mudata import MuData
from scipy import stats

from ._common import (
    FactorSpec,
    bh,
    check_fdr,
    check_positive_int,
    is_model,
    loadings_source,
    modality_data,
    model_mdata,
    nan_rows_missing,
    plan_store,
    registry_layers,
    resolve_factors,
    resolve_modality_list,
    store_uns,
    table_to_uns,
)

CROSS_OMIC_COLUMNS = (
    "feature_a",
    "modality_a",
    "feature_b",
    "modality_b",
    "factor",
    "score",
    "rho",
    "p",
    "q",
    "significant",
    "n_samples",
)
UNS_KEY_CROSS_OMIC = "cross_omic"


def _ranks(x: np.ndarray) -> np.ndarray:
    """Column ranks (ties averaged), centred and scaled to unit norm; constant columns become NaN."""
    r = stats.rankdata(x, axis=0)
    r = r - r.mean(0)
    norm = np.sqrt((r**2).sum(0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norm > 0, r / np.where(norm > 0, norm, 1.0), np.nan)


def spearman_pairs(xa: np.ndarray, xb: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spearman ρ and two-sided p of the column pairs ``(xa[:, ia[t]], xb[:, ib[t]])``.

    Same statistic and p-value (t distribution with n − 2 degrees of freedom) as :func:`scipy.stats.spearmanr`;
    the ranks of every column are computed once.
    """
    n = xa.shape[0]
    ra, rb = _ranks(xa), _ranks(xb)
    rho = np.clip(np.einsum("ij,ij->j", ra[:, ia], rb[:, ib]), -1.0, 1.0)
    p = np.full(rho.shape, np.nan)
    if n > 2:
        with np.errstate(invalid="ignore", divide="ignore"):
            t = rho * np.sqrt((n - 2) / np.clip((1.0 - rho) * (1.0 + rho), 1e-300, None))
        p = 2 * stats.t.sf(np.abs(t), n - 2)
        p[np.isnan(rho)] = np.nan
    return rho, p


def _top_loaders(aw: np.ndarray, n_top: int) -> np.ndarray:
    """Indices of the (at most) ``n_top`` largest non-zero entries of ``aw``."""
    order = np.argsort(-aw, kind="stable")[:n_top]
    return order[aw[order] > 0]


def _pair_candidates(
    wa: np.ndarray, wb: np.ndarray, ks: list[int], n_top: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Candidate pairs, their score (Σ over the selected factors of ``|W_a,k||W_b,k|``) and dominant factor."""
    pairs = set()
    for k in ks:
        ta, tb = _top_loaders(wa[:, k], n_top), _top_loaders(wb[:, k], n_top)
        pairs.update(itertools.product(ta.tolist(), tb.tolist()))
    if not pairs:
        empty = np.zeros(0, dtype=int)
        return empty, empty, np.zeros(0), empty
    arr = np.array(sorted(pairs), dtype=int)
    ia, ib = arr[:, 0], arr[:, 1]
    contrib = wa[ia][:, ks] * wb[ib][:, ks]  # (pairs, selected factors)
    return ia, ib, contrib.sum(1), np.asarray(ks)[np.argmax(contrib, axis=1)]


def cross_omic_associations(
    model,
    mdata: MuData | None = None,
    modalities: Sequence[str] | None = None,
    factor: FactorSpec = None,
    fdr: float = 0.05,
    n_top: int = 50,
    min_samples: int = 10,
    min_abs_rho: float = 0.0,
    as_graph: bool = False,
    store: bool = False,
    overwrite: bool = False,
):
    """Feature pairs from two modalities linked through shared factors, scored by the loadings, tested on the data.

    For every selected factor k, the ``n_top`` features of modality a and of modality b with the largest non-zero
    ``|W_k|`` are paired; each candidate pair (j_a, j_b) gets the score ``Σ_k |W_a[j_a, k]| · |W_b[j_b, k]|``
    over the selected factors (its ``factor`` is the one contributing most). Each pair is then tested on the
    data: Spearman correlation over the samples that have both modalities (same statistic and p-value as
    :func:`scipy.stats.spearmanr`), with Benjamini–Hochberg q-values over all pairs tested in the call
    (:func:`scipy.stats.false_discovery_control`). At most ``K · n_top²`` pairs are tested per modality pair,
    so it stays cheap for 20 000 × 20 000 features.

    Parameters
    ----------
    model
        A trained :class:`~poems_mu.POEMS` with ``decoder="sparse"``, or a MuData on which
        :meth:`~poems_mu.POEMS.store_results` wrote the loadings (the data are then read from ``.X``).
    mdata
        With a model: the MuData holding the data to test on (default: the training MuData).
    modalities
        Two modalities, or ``None`` for every pair of modalities (one BH family over all of them).
    factor
        Factor name, 0-based position, list of those, or ``None`` for all factors.
    fdr
        False discovery rate for the ``significant`` column.
    n_top
        Top loaders per factor and modality that form the candidate pairs.
    min_samples
        Fewest samples with both modalities needed to test a modality pair; with fewer, ``rho``/``p``/``q`` are
        NaN.
    min_abs_rho
        Also require ``|rho| >= min_abs_rho`` for ``significant`` (with hundreds of samples, weak correlations
        pass the FDR; an effect-size floor such as 0.3 keeps the strong ones).
    as_graph
        Return a :class:`networkx.Graph` of the significant pairs (see :func:`to_networkx`) instead of the table.
    store
        Also store a summary on the MuData tested on, in ``uns["poems"]["cross_omic"]``: ``{"n_tested",
        "n_significant", "fdr", "min_abs_rho", "n_top"}`` plus the significant pairs as a dict of columns
        (``"significant_pairs"``, which :func:`poems_mu.pl.cross_omic_network` draws from a MuData). Default:
        only return the result.
    overwrite
        With ``store=True``, replace an existing entry; without it an existing entry raises an error before
        anything is computed (as :meth:`~poems_mu.POEMS.store_results`).

    Returns
    -------
    pandas.DataFrame or networkx.Graph
        One row per tested pair, sorted by decreasing score, with columns ``feature_a``, ``modality_a``,
        ``feature_b``, ``modality_b``, ``factor``, ``score``, ``rho``, ``p``, ``q``, ``significant`` (``q <=
        fdr`` and ``|rho| >= min_abs_rho``) and ``n_samples``.

    Notes
    -----
    The candidates are chosen by a model fitted to the same samples the pairs are tested on, and any two features
    that both track a strong axis (e.g. subtype) correlate; the q-values say that the correlation is real in
    these data, not that it is direct. For a test free of that selection, pass held-out samples as ``mdata``.

    Examples
    --------
    >>> df = pm.tl.cross_omic_associations(model, modalities=["mrna", "mirna"])  # doctest: +SKIP
    >>> df[df.significant].head()  # doctest: +SKIP

    """
    fdr = check_fdr(fdr)
    n_top = check_positive_int(n_top, "n_top")
    if is_model(model):
        mdata_ = model_mdata(model, mdata)
        layers = registry_layers(model)
        nan_missing = nan_rows_missing(model)
        available = list(model.modalities)
    elif isinstance(model, MuData):
        mdata_, layers, nan_missing = model, {}, None  # whole-NaN rows = not measured
        from ._common import available_modalities

        available = available_modalities(model)
    else:
        raise TypeError(f"Expected a POEMS model or a MuData with stored results, got {type(model).__name__}.")
    store = plan_store(mdata_, UNS_KEY_CROSS_OMIC, store, overwrite)
    mods = resolve_modality_list(available, modalities)
    if modalities is not None and len(mods) != 2:
        raise ValueError(f"`modalities` must name two modalities (or be None for all pairs), got {mods}.")
    if len(mods) < 2:
        raise ValueError(f"Cross-omic associations need at least two modalities; the model has {mods}.")

    frames = []
    for mod_a, mod_b in itertools.combinations(mods, 2):
        Wa, _ = loadings_source(model, mod_a)
        Wb, _ = loadings_source(model, mod_b)
        names = list(Wa.columns)
        ks = resolve_factors(factor, names)
        ia, ib, score, kdom = _pair_candidates(np.abs(Wa.to_numpy()), np.abs(Wb.to_numpy()), ks, n_top)
        rho = np.full(len(ia), np.nan)
        p = np.full(len(ia), np.nan)
        n_both = 0
        if len(ia):
            ua, inv_a = np.unique(ia, return_inverse=True)
            ub, inv_b = np.unique(ib, return_inverse=True)
            pos_a, xa = modality_data(mdata_, mod_a, layers.get(mod_a), ua, nan_missing)
            pos_b, xb = modality_data(mdata_, mod_b, layers.get(mod_b), ub, nan_missing)
            both, sel_a, sel_b = np.intersect1d(pos_a, pos_b, return_indices=True)
            n_both = len(both)
            if n_both >= max(min_samples, 3):
                rho, p = spearman_pairs(xa[sel_a], xb[sel_b], inv_a, inv_b)
        frames.append(
            pd.DataFrame(
                {
                    "feature_a": Wa.index.to_numpy()[ia].astype(str),
                    "modality_a": mod_a,
                    "feature_b": Wb.index.to_numpy()[ib].astype(str),
                    "modality_b": mod_b,
                    "factor": [names[k] for k in kdom],
                    "score": score,
                    "rho": rho,
                    "p": p,
                    "n_samples": n_both,
                }
            )
        )
    df = pd.concat(frames, ignore_index=True)
    df["q"] = bh(df["p"].to_numpy())
    df["significant"] = ((df["q"] <= fdr) & (df["rho"].abs() >= float(min_abs_rho))).fillna(False).astype(bool)
    df = df.sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
    df = df[list(CROSS_OMIC_COLUMNS)]
    if store:
        sig = df[df["significant"]]
        store_uns(
            mdata_,
            UNS_KEY_CROSS_OMIC,
            {
                "n_tested": int(df["p"].notna().sum()),
                "n_significant": int(len(sig)),
                "fdr": fdr,
                "min_abs_rho": float(min_abs_rho),
                "n_top": n_top,
                "significant_pairs": table_to_uns(sig),
            },
            overwrite=overwrite,
        )
    return to_networkx(df) if as_graph else df


def to_networkx(df: pd.DataFrame, significant_only: bool = True):
    """Cross-omic associations as a :class:`networkx.Graph`.

    Nodes are ``"<modality>:<feature>"`` with attributes ``modality`` and ``feature``; edges carry ``factor``,
    ``score``, ``rho``, ``p``, ``q`` and ``weight`` (= ``|rho|``).

    Parameters
    ----------
    df
        Output of :func:`cross_omic_associations`.
    significant_only
        Keep only the rows with ``significant`` True.

    Returns
    -------
    networkx.Graph

    """
    try:
        import networkx as nx
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "to_networkx needs networkx: `pip install networkx` (or `pip install poems_mu[test]`). "
            "The DataFrame itself is already an edge list."
        ) from err
    missing = [c for c in ("feature_a", "modality_a", "feature_b", "modality_b") if c not in df.columns]
    if missing:
        raise ValueError(f"`df` lacks columns {missing}; pass the output of cross_omic_associations.")
    if significant_only and "significant" in df.columns:
        df = df[df["significant"].astype(bool)]
    G = nx.Graph()
    for row in df.itertuples(index=False):
        a, b = f"{row.modality_a}:{row.feature_a}", f"{row.modality_b}:{row.feature_b}"
        G.add_node(a, modality=row.modality_a, feature=row.feature_a)
        G.add_node(b, modality=row.modality_b, feature=row.feature_b)
        rho = float(getattr(row, "rho", np.nan))
        G.add_edge(
            a,
            b,
            factor=getattr(row, "factor", None),
            score=float(getattr(row, "score", np.nan)),
            rho=rho,
            p=float(getattr(row, "p", np.nan)),
            q=float(getattr(row, "q", np.nan)),
            weight=abs(rho) if np.isfinite(rho) else 0.0,
        )
    return G
