"""Do a run's factors and biomarkers come back in other runs (other seeds, restarts, subsamples of a cohort)?"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from mudata import MuData
from scipy.optimize import linear_sum_assignment

from ._common import check_comparable, check_positive_int


def _abs_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute Pearson r between every column of ``a`` and every column of ``b`` (0 where a column is constant)."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    na, nb = np.sqrt((a**2).sum(0)), np.sqrt((b**2).sum(0))
    den = np.outer(na, nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (a.T @ b) / np.where(den > 0, den, 1.0), 0.0)
    return np.abs(r)


def _loadings(model, modalities: Sequence[str]) -> dict[str, pd.DataFrame]:
    return {m: model.get_loadings(m) for m in modalities}


def _top(w: pd.DataFrame, col: str, n: int) -> pd.Index:
    """The ``n`` features with the largest absolute W in column ``col`` (exact zeros are never top loaders)."""
    x = w[col].abs()
    x = x[x > 0]
    return x.sort_values(ascending=False, kind="mergesort").index[:n]


def factor_stability(
    models: Sequence,
    mdata: MuData | None = None,
    n_top: int = 10,
    batch_size: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Match the factors of several runs and measure how well each factor and its top features come back.

    The first model is the reference. Every model places the same samples (``mdata``, default the reference's
    training MuData); for each other run the reference's factors are matched one to one to that run's factors by
    the Hungarian algorithm on the absolute correlation of the sample scores (posterior means). Loadings are compared
    too: the correlation between the matched columns of ``|W|``, all modalities' features together (the magnitude:
    the sign of a single ``W[j, k]`` is not identifiable through the nonlinear decoder, and across seeds the signed
    columns of matched factors correlate little even where ``|W|`` agrees). A factor's
    ``reproducibility`` is the mean over the other runs of the matched absolute score correlation, in [0, 1].

    Top features (stability selection of biomarkers): in each run, the ``n_top`` features of each modality with the
    largest absolute W in the (matched) factor; a feature's ``frequency`` is the share of runs, the reference included,
    in which it is one of them.

    Parameters
    ----------
    models
        Two or more trained POEMS models (sparse decoder) with the same modalities and features, e.g. trained with
        different ``scvi.settings.seed``.
    mdata
        MuData whose samples are scored (default: the first model's training MuData).
    n_top
        Top loaders per factor and modality.
    batch_size
        Minibatch size for inference.

    Returns
    -------
    ``(factors, features)``. ``factors``: one row per reference factor (index ``factor``) with ``reproducibility``,
    ``min_corr``, ``loading_corr`` (mean over runs), and per other run ``i`` the matched factor ``run{i}_factor``,
    its ``run{i}_corr`` and ``run{i}_loading_corr``. ``features``: tidy rows ``factor``, ``modality``, ``feature``,
    ``frequency``, ``n_runs`` for every feature that is a top loader in at least one run, sorted by factor and
    decreasing frequency.

    Examples
    --------
    >>> models = []
    >>> for seed in range(5):
    ...     scvi.settings.seed = seed
    ...     m = pm.POEMS(mdata)
    ...     m.train()
    ...     models.append(m)
    >>> factors, features = pm.tl.factor_stability(models)
    >>> features.query("frequency >= 0.8")  # biomarkers found in at least 4 of 5 runs

    """
    models = check_comparable(models, "factor_stability")
    check_positive_int(n_top, "n_top")
    ref = models[0]
    data = ref.adata if mdata is None else mdata
    scores = [m.get_latent_representation(data, batch_size=batch_size) for m in models]
    loadings = [_loadings(m, ref.modalities) for m in models]
    ref_names = ref.factor_names()
    stacked = [np.abs(np.concatenate([w[mod].to_numpy() for mod in ref.modalities])) for w in loadings]
    table = pd.DataFrame(index=pd.Index(ref_names, name="factor"))
    matches = [dict(zip(ref_names, ref_names, strict=True))]
    corr_cols, load_cols = [], []
    for i, (z, w) in enumerate(zip(scores[1:], stacked[1:], strict=True), start=1):
        c = _abs_corr(scores[0], z)
        rows, cols = linear_sum_assignment(-c)
        names = models[i].factor_names()
        matched = dict.fromkeys(ref_names)
        corr = np.full(len(ref_names), np.nan)
        lcorr = np.full(len(ref_names), np.nan)
        for r, k in zip(rows, cols, strict=True):
            matched[ref_names[r]] = names[k]
            corr[r] = c[r, k]
            lcorr[r] = _abs_corr(stacked[0][:, [r]], w[:, [k]])[0, 0]
        table[f"run{i}_factor"] = [matched[f] for f in ref_names]
        table[f"run{i}_corr"], table[f"run{i}_loading_corr"] = corr, lcorr
        corr_cols.append(f"run{i}_corr")
        load_cols.append(f"run{i}_loading_corr")
        matches.append(matched)
    table.insert(0, "reproducibility", table[corr_cols].fillna(0).mean(1))
    table.insert(1, "min_corr", table[corr_cols].fillna(0).min(1))
    table.insert(2, "loading_corr", table[load_cols].fillna(0).mean(1))
    rows = []
    for f in ref_names:
        for mod in ref.modalities:
            counts: dict[str, int] = {}
            for w, matched in zip(loadings, matches, strict=True):
                if matched[f] is None:
                    continue
                for feat in _top(w[mod], matched[f], n_top):
                    counts[feat] = counts.get(feat, 0) + 1
            rows += [(f, mod, feat, n / len(models), n) for feat, n in counts.items()]
    features = pd.DataFrame(rows, columns=["factor", "modality", "feature", "frequency", "n_runs"])
    order = {f: i for i, f in enumerate(ref_names)}
    features = features.sort_values(
        ["factor", "modality", "frequency", "feature"],
        key=lambda s: s.map(order) if s.name == "factor" else s,
        ascending=[True, True, False, True],
        kind="mergesort",
    ).reset_index(drop=True)
    return table, features
