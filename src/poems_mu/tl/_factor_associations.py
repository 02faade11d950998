"""Factor–covariate associations: each factor tested against ``obs`` columns (categorical or continuous)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData
from scipy import stats

from poems_mu._constants import LATENT_KEY

from ._common import bh, check_fdr, latent, plan_store, store_uns, stored_factor_names, table_to_uns

UNS_KEY_FACTOR_ASSOC = "factor_associations"
FACTOR_ASSOC_COLUMNS = ("key", "factor", "test", "statistic", "effect", "p", "q", "significant", "n_samples")


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def factor_associations(
    mdata: MuData | AnnData,
    keys: str | Sequence[str],
    use_rep: str = LATENT_KEY,
    categorical_test: str = "kruskal",
    fdr: float = 0.05,
    store: bool = False,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Association of every latent factor with sample covariates (subtype, clinical columns), with FDR.

    * categorical columns (category, string, object, bool): Kruskal–Wallis H test (``categorical_test="kruskal"``,
      effect = ε² = H / (n − 1)) or one-way ANOVA (``"anova"``, effect = η²) of the factor across the groups;
    * numeric columns: Spearman correlation (effect = ρ).

    Samples with a missing value are left out of that column's tests; groups need at least 2 samples. q-values
    are Benjamini–Hochberg over all tests of the call.

    Parameters
    ----------
    mdata
        MuData (or AnnData) with the latent representation in ``obsm[use_rep]``.
    keys
        One or more ``obs`` columns.
    use_rep
        Key of the latent representation.
    categorical_test
        ``"kruskal"`` or ``"anova"``.
    fdr
        False discovery rate for the ``significant`` column.
    store
        Also store the table in ``mdata.uns["poems"]["factor_associations"]`` (a dict of columns). Default: only
        return it.
    overwrite
        With ``store=True``, replace an existing entry; without it an existing entry raises an error before
        anything is computed (as :meth:`~poems_mu.POEMS.store_results`).

    Returns
    -------
    pandas.DataFrame
        One row per key and factor, columns ``key``, ``factor``, ``test``, ``statistic``, ``effect``, ``p``,
        ``q``, ``significant`` and ``n_samples``; sorted by key, then by p-value.

    Examples
    --------
    >>> pm.tl.factor_associations(mdata, "subtype").head()  # doctest: +SKIP

    """
    if categorical_test not in ("kruskal", "anova"):
        raise ValueError(f"`categorical_test` must be 'kruskal' or 'anova', got {categorical_test!r}.")
    fdr = check_fdr(fdr)
    store = plan_store(mdata, UNS_KEY_FACTOR_ASSOC, store, overwrite)
    keys = [keys] if isinstance(keys, str) else list(keys)
    if not keys:
        raise ValueError("`keys` is empty; name at least one obs column.")
    missing = [k for k in keys if k not in mdata.obs.columns]
    if missing:
        raise KeyError(f"obs columns {missing} not found; available: {list(mdata.obs.columns)}.")
    z = latent(mdata, use_rep)
    if use_rep == LATENT_KEY:
        names = stored_factor_names(mdata, z.shape[1])
    else:
        names = [f"factor_{k + 1}" for k in range(z.shape[1])]
    rows = []
    for key in keys:
        s = mdata.obs[key]
        ok = s.notna().to_numpy()
        if _is_categorical(s):
            groups = s[ok].astype(str).to_numpy()
            levels, counts = np.unique(groups, return_counts=True)
            levels = levels[counts >= 2]
            keep = np.isin(groups, levels)
            zz, gg = z[ok][keep], groups[keep]
            n = len(gg)
            for k, name in enumerate(names):
                stat, p, eff = np.nan, np.nan, np.nan
                samples = [zz[gg == g, k] for g in levels]
                if len(levels) >= 2 and np.ptp(zz[:, k]) > 0:
                    if categorical_test == "kruskal":
                        stat, p = stats.kruskal(*samples)
                        eff = stat / (n - 1)
                    else:
                        stat, p = stats.f_oneway(*samples)
                        ss_between = sum(len(x) * (x.mean() - zz[:, k].mean()) ** 2 for x in samples)
                        ss_total = ((zz[:, k] - zz[:, k].mean()) ** 2).sum()
                        eff = ss_between / ss_total
                rows.append((key, name, categorical_test, stat, eff, p, n))
        else:
            y = s[ok].to_numpy(dtype=np.float64)
            zz = z[ok]
            for k, name in enumerate(names):
                rho, p = np.nan, np.nan
                if len(y) > 2 and np.ptp(y) > 0 and np.ptp(zz[:, k]) > 0:
                    rho, p = stats.spearmanr(zz[:, k], y)
                rows.append((key, name, "spearman", rho, rho, p, len(y)))
    df = pd.DataFrame(rows, columns=["key", "factor", "test", "statistic", "effect", "p", "n_samples"])
    df[["statistic", "effect", "p"]] = df[["statistic", "effect", "p"]].astype(np.float64)
    df["q"] = bh(df["p"].to_numpy())
    df["significant"] = (df["q"] <= fdr).fillna(False).astype(bool)
    df["_order"] = df["key"].map({k: i for i, k in enumerate(keys)})
    df = df.sort_values(["_order", "p"], kind="stable").drop(columns="_order").reset_index(drop=True)
    df = df[list(FACTOR_ASSOC_COLUMNS)]
    if store:
        store_uns(mdata, UNS_KEY_FACTOR_ASSOC, table_to_uns(df), overwrite=overwrite)
    return df
