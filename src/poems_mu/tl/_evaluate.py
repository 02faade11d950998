"""Subtyping evaluation of an embedding, following the POEMS paper's protocol (Appendix A)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans
from sklearn.metrics import accuracy_score, adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix
from sklearn.model_selection import train_test_split
from sklearn.neighbors import KNeighborsClassifier

from ._common import check_positive_int, embedding, plan_store, store_uns

UNS_SUBTYPING = "subtyping"

#: Metric names, in the order they appear in the output of :func:`evaluate_subtyping`.
METRICS = ("kmeans_accuracy", "kmeans_nmi", "kmeans_ari", "knn_accuracy")


def _hungarian_accuracy(labels_true: np.ndarray, labels_pred: np.ndarray) -> float:
    """Clustering accuracy under the best one-to-one matching of clusters to classes.

    The matching maximises the number of agreements in the contingency matrix (Hungarian algorithm, via
    :func:`scipy.optimize.linear_sum_assignment`). With more clusters than classes, samples of unmatched
    clusters count as errors; with fewer, samples of unmatched classes do.
    """
    table = contingency_matrix(labels_true, labels_pred)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / len(labels_true))


def _subset_mask(data: MuData | AnnData | None, subset: Any, n_obs: int) -> np.ndarray:
    """Turn ``subset`` (boolean mask, ``(key, value)`` pair or ``{key: value}`` mapping) into a bool mask."""
    if isinstance(subset, tuple | Mapping):
        if data is None:
            raise TypeError("`subset` as obs key/value needs an AnnData or MuData; pass a boolean mask instead.")
        items = subset.items() if isinstance(subset, Mapping) else [subset]
        if isinstance(subset, tuple) and len(subset) != 2:
            raise ValueError(f"`subset` as a tuple must be (obs_key, value), got {subset!r}.")
        mask = np.ones(n_obs, dtype=bool)
        for key, value in items:
            if key not in data.obs.columns:
                raise KeyError(
                    f"`subset` key {key!r} not found in `.obs`. Available columns: {list(data.obs.columns)!r}."
                )
            values = list(value) if isinstance(value, list | set | frozenset | np.ndarray) else [value]
            mask &= data.obs[key].isin(values).to_numpy()
        return mask
    if isinstance(subset, pd.Series) and data is not None and not isinstance(subset.index, pd.RangeIndex):
        if not subset.index.isin(data.obs_names).all() or len(subset) != n_obs:
            raise ValueError("`subset` is a Series whose index does not match `obs_names`.")
        subset = subset.reindex(data.obs_names)
    mask = np.asarray(subset)
    if mask.dtype != bool:
        raise TypeError(f"`subset` must be a boolean mask, got dtype {mask.dtype}.")
    if mask.shape != (n_obs,):
        raise ValueError(f"`subset` mask has shape {mask.shape}, expected ({n_obs},).")
    return mask


def evaluate_subtyping(
    data: MuData | AnnData | np.ndarray,
    label_key: str | None = None,
    use_rep: str = "X_poems",
    *,
    labels: Sequence[Any] | np.ndarray | pd.Series | None = None,
    seeds: Sequence[int] = (0, 12, 21, 42, 1234),
    n_clusters: int | None = None,
    knn_k: int | None = None,
    test_size: float = 0.25,
    subset: Any = None,
    store: bool = False,
    key_added: str | None = None,
    overwrite: bool = False,
) -> pd.DataFrame:
    """Evaluate how well an embedding recovers known subtypes (POEMS paper, Appendix A).

    For every seed, on the embedding of the selected samples:

    * **k-means** (:class:`sklearn.cluster.KMeans`, ``n_clusters`` clusters, ``n_init=10``,
      ``random_state=seed``), scored against the labels by

      - ``kmeans_accuracy``: accuracy after the best one-to-one matching of clusters to classes (Hungarian
        algorithm on the contingency matrix). If ``n_clusters`` differs from the number of classes, samples
        in unmatched clusters/classes count as errors;
      - ``kmeans_nmi``: :func:`sklearn.metrics.normalized_mutual_info_score` (arithmetic normalisation);
      - ``kmeans_ari``: :func:`sklearn.metrics.adjusted_rand_score`;

    * **KNN classification**: a stratified train/test split (``test_size``, ``random_state=seed``), a
      :class:`sklearn.neighbors.KNeighborsClassifier` with ``knn_k`` neighbours fitted on the training part,
      and ``knn_accuracy`` = accuracy on the test part.

    Parameters
    ----------
    data : mudata.MuData or anndata.AnnData or numpy.ndarray
        Object holding the embedding in ``.obsm[use_rep]``, or the embedding itself as an
        ``(n_samples, n_dims)`` array (then pass ``labels``).
    label_key : str, optional
        Column of ``data.obs`` with the true subtypes (for a MuData, a global ``obs`` column such as
        ``"subtype"`` or ``"rna:subtype"``). Give either ``label_key`` or ``labels``.
    use_rep : str, default "X_poems"
        Key of the embedding in ``data.obsm``. Ignored when ``data`` is an array.
    labels : array-like, optional
        True subtypes, one per sample (row of ``data``). Required when ``data`` is an array.
    seeds : sequence of int, default (0, 12, 21, 42, 1234)
        Random seeds; each gives one k-means run and one train/test split.
    n_clusters : int, optional
        Number of k-means clusters. Defaults to the number of classes.
    knn_k : int, optional
        Number of neighbours of the KNN classifier. Defaults to the number of classes.
    test_size : float, default 0.25
        Fraction of samples in the KNN test split.
    subset : array-like of bool, tuple or dict, optional
        Restrict the evaluation to some samples: a boolean mask over samples (a :class:`pandas.Series`
        indexed by ``obs_names`` is aligned), an ``(obs_key, value)`` pair, or a ``{obs_key: value}`` mapping
        (values may be lists; conditions are combined with AND), e.g. ``subset=("split", "test")``.
    store : bool, default False
        Also store the summary (see :func:`summarize_subtyping`) on the MuData/AnnData, in
        ``data.uns["poems"]["subtyping"][key_added]``, as a plain, h5mu-serialisable dict: ``{"metrics":
        {metric: {"mean", "sd", "n"}}, "n_obs", "n_classes", "n_clusters", "knn_k", "test_size", "seeds"}``
        plus ``"label_key"`` when given. Only that entry is written; other keys of ``uns["poems"]`` and of
        ``uns["poems"]["subtyping"]`` are kept. Not possible with an array embedding.
    key_added : str, optional
        Key of the stored summary under ``uns["poems"]["subtyping"]``; defaults to ``use_rep``. Use distinct
        keys to keep several evaluations of one embedding, e.g. ``"X_poems_test"`` with a test-split ``subset``.
    overwrite : bool, default False
        With ``store=True``, replace an existing entry ``key_added``; without it an existing entry raises an
        error before anything is computed (as :meth:`~poems_mu.POEMS.store_results`).

    Returns
    -------
    pandas.DataFrame
        Tidy table with one row per seed and metric and columns ``seed`` (int), ``metric`` (str, one of
        ``kmeans_accuracy``, ``kmeans_nmi``, ``kmeans_ari``, ``knn_accuracy``) and ``value`` (float).
        ``DataFrame.attrs`` records ``n_obs``, ``n_classes``, ``n_clusters`` and ``knn_k``.

    Raises
    ------
    KeyError
        If ``use_rep`` is not in ``obsm`` (the message lists the available keys) or ``label_key`` is not in
        ``obs``.
    ValueError
        If ``store=True`` would replace an entry without ``overwrite=True`` (or ``data`` is an array), fewer
        than 2 classes remain, the embedding contains NaN or infinite values, a class has fewer than 2 samples
        (no stratified split possible), or the split leaves too few training samples.

    Warns
    -----
    UserWarning
        When samples with a missing label (NaN/None) are dropped; the message gives their number.

    Examples
    --------
    >>> df = poems_mu.tl.evaluate_subtyping(mdata, "subtype", subset=("split", "test"))  # doctest: +SKIP
    >>> poems_mu.tl.evaluate_subtyping(mdata, "subtype", store=True, key_added="X_poems_all")  # doctest: +SKIP
    >>> poems_mu.tl.summarize_subtyping(df)  # doctest: +SKIP

    """
    annotated = isinstance(data, MuData | AnnData)
    key_added = use_rep if key_added is None else key_added
    if store and not annotated:
        raise ValueError("`store=True` needs a MuData or AnnData to store on; with an array embedding use store=False.")
    store = plan_store(data, (UNS_SUBTYPING, str(key_added)), store, overwrite)
    if annotated:
        X = embedding(data, use_rep)
        n_obs = data.n_obs
        if (label_key is None) == (labels is None):
            raise ValueError("Pass exactly one of `label_key` (a column of `.obs`) or `labels`.")
        if label_key is not None:
            if label_key not in data.obs.columns:
                raise KeyError(
                    f"Label key {label_key!r} not found in `.obs`. Available columns: {list(data.obs.columns)!r}."
                )
            y = data.obs[label_key].to_numpy()
        else:
            y = np.asarray(labels, dtype=object)
    else:
        if label_key is not None:
            raise TypeError("`label_key` needs an AnnData or MuData; with an array embedding pass `labels=`.")
        if labels is None:
            raise ValueError("With an array embedding, pass the true subtypes as `labels=`.")
        X = np.asarray(data)
        n_obs = X.shape[0] if X.ndim else 0
        y = np.asarray(labels, dtype=object)
    if X.ndim != 2:
        raise ValueError(f"The embedding must be 2-D (samples x dimensions), got shape {X.shape}.")
    if not np.issubdtype(X.dtype, np.number):
        raise TypeError(f"The embedding must be numeric, got dtype {X.dtype}.")
    if X.shape[0] != n_obs or y.shape != (n_obs,):
        raise ValueError(f"Embedding has {X.shape[0]} rows and labels have shape {y.shape}; expected {n_obs} each.")

    keep = np.ones(n_obs, dtype=bool) if subset is None else _subset_mask(data if annotated else None, subset, n_obs)
    if not keep.any():
        raise ValueError("`subset` selects no samples.")
    missing = pd.isna(y) & keep
    if missing.any():
        warnings.warn(
            f"Dropping {int(missing.sum())} sample(s) with a missing label"
            + (f" in obs[{label_key!r}]" if label_key is not None else "")
            + ".",
            UserWarning,
            stacklevel=2,
        )
    keep &= ~missing
    X, y = X[keep], y[keep]
    bad = ~np.isfinite(X).all(axis=1)
    if bad.any():
        what = f"embedding obsm[{use_rep!r}]" if annotated else "embedding array"
        raise ValueError(
            f"The {what} has NaN or infinite values in {int(bad.sum())} of the {len(X)} evaluated "
            "samples. Recompute it, or exclude those samples with `subset`."
        )

    y_codes, classes = pd.factorize(pd.Series(y, dtype=object))
    n_classes = len(classes)
    if n_classes < 2:
        raise ValueError(
            f"At least 2 classes are needed, found {n_classes} ({list(classes)!r}) among {len(y)} samples."
        )
    counts = np.bincount(y_codes)
    if counts.min() < 2:
        rare = [classes[i] for i in np.flatnonzero(counts < 2)]
        raise ValueError(f"Class(es) {rare!r} have fewer than 2 samples; a stratified train/test split is impossible.")
    n_clusters = n_classes if n_clusters is None else check_positive_int(n_clusters, "n_clusters")
    knn_k = n_classes if knn_k is None else check_positive_int(knn_k, "knn_k")
    if n_clusters > len(y):
        raise ValueError(f"`n_clusters`={n_clusters} exceeds the number of samples ({len(y)}).")
    if not 0 < test_size < 1:
        raise ValueError(f"`test_size` must be a fraction in (0, 1), got {test_size!r}.")
    seeds = [int(s) for s in np.atleast_1d(np.asarray(seeds))]
    if not seeds:
        raise ValueError("`seeds` is empty.")

    rows = []
    for seed in seeds:
        pred = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit_predict(X)
        rows += [
            (seed, "kmeans_accuracy", _hungarian_accuracy(y_codes, pred)),
            (seed, "kmeans_nmi", float(normalized_mutual_info_score(y_codes, pred))),
            (seed, "kmeans_ari", float(adjusted_rand_score(y_codes, pred))),
        ]
        try:
            X_train, X_test, y_train, y_test = train_test_split(
                X, y_codes, test_size=test_size, random_state=seed, stratify=y_codes
            )
        except ValueError as err:
            raise ValueError(
                f"Stratified split with test_size={test_size} failed for {len(y)} samples in {n_classes} classes: {err}"
            ) from err
        if knn_k > len(y_train):
            raise ValueError(f"`knn_k`={knn_k} exceeds the number of training samples ({len(y_train)}).")
        knn = KNeighborsClassifier(n_neighbors=knn_k).fit(X_train, y_train)
        rows.append((seed, "knn_accuracy", float(accuracy_score(y_test, knn.predict(X_test)))))

    df = pd.DataFrame(rows, columns=["seed", "metric", "value"]).astype({"seed": int, "metric": str, "value": float})
    df.attrs.update(n_obs=len(y), n_classes=n_classes, n_clusters=n_clusters, knn_k=knn_k)

    if store:
        _store(
            data, str(key_added), df, label_key=label_key, seeds=seeds, test_size=float(test_size), overwrite=overwrite
        )
    return df


def summarize_subtyping(df: pd.DataFrame, ddof: int = 1) -> pd.DataFrame:
    """Summarise the output of :func:`evaluate_subtyping` as mean ± standard deviation per metric.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy table with columns ``metric`` and ``value`` (and usually ``seed``).
    ddof : int, default 1
        Delta degrees of freedom of the standard deviation (1: sample sd, NaN for a single seed; 0:
        population sd).

    Returns
    -------
    pandas.DataFrame
        One row per metric, in order of first appearance, with columns ``metric``, ``mean``, ``sd`` and
        ``n`` (number of non-NaN values).

    """
    missing = {"metric", "value"} - set(df.columns)
    if missing:
        raise KeyError(f"`df` lacks column(s) {sorted(missing)!r}; expected the output of evaluate_subtyping.")
    grouped = df.groupby("metric", sort=False)["value"]
    out = pd.DataFrame({"mean": grouped.mean(), "sd": grouped.std(ddof=ddof), "n": grouped.count()})
    return out.rename_axis("metric").reset_index()


def _store(
    data: MuData | AnnData,
    key: str,
    df: pd.DataFrame,
    *,
    label_key: str | None,
    seeds: list[int],
    test_size: float,
    overwrite: bool,
) -> None:
    summary = summarize_subtyping(df)
    entry: dict[str, Any] = {
        "metrics": {
            row.metric: {"mean": float(row.mean), "sd": float(row.sd), "n": int(row.n)}
            for row in summary.itertuples(index=False)
        },
        "n_obs": int(df.attrs["n_obs"]),
        "n_classes": int(df.attrs["n_classes"]),
        "n_clusters": int(df.attrs["n_clusters"]),
        "knn_k": int(df.attrs["knn_k"]),
        "test_size": test_size,
        "seeds": np.asarray(seeds, dtype=np.int64),
    }
    if label_key is not None:
        entry["label_key"] = str(label_key)
    store_uns(data, (UNS_SUBTYPING, key), entry, overwrite=overwrite)
