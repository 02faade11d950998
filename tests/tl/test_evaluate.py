import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest

from poems_mu.tl import evaluate_subtyping, summarize_subtyping
from poems_mu.tl._evaluate import METRICS, _hungarian_accuracy

SEEDS = (0, 12, 21, 42, 1234)


def _blobs(n_per_class=20, n_classes=3, dim=4, spread=0.1, seed=0):
    """Perfectly separated classes: tight blobs around far-apart centres."""
    rng = np.random.default_rng(seed)
    centres = np.eye(n_classes, dim) * 100
    X = np.concatenate([c + spread * rng.normal(size=(n_per_class, dim)) for c in centres])
    y = np.repeat([f"type{i}" for i in range(n_classes)], n_per_class)
    return X, y


def _adata(X, y, key="X_poems"):
    adata = ad.AnnData(np.zeros((len(y), 2)))
    adata.obs["subtype"] = pd.Categorical(y)
    adata.obsm[key] = X
    return adata


def _mudata(X, y):
    n = len(y)
    names = [f"s{i}" for i in range(n)]
    a = ad.AnnData(np.zeros((n, 3)), obs=pd.DataFrame(index=names))
    b = ad.AnnData(np.zeros((n // 2, 2)), obs=pd.DataFrame(index=names[: n // 2]))
    b.var_names = ["b0", "b1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"a": a, "b": b})
    mdata.obs["subtype"] = y
    mdata.obsm["X_poems"] = X
    return mdata


# --- Hungarian accuracy -------------------------------------------------------------------------------


def test_hungarian_accuracy_permuted_labels_is_one():
    true = np.array([0, 0, 1, 1, 1, 2, 2, 3])
    perm = {0: 2, 1: 3, 2: 0, 3: 1}
    pred = np.array([perm[t] for t in true])
    assert _hungarian_accuracy(true, pred) == 1.0


def test_hungarian_accuracy_hand_computed_and_rectangular():
    true = np.array([0, 0, 0, 1, 1, 1])
    pred = np.array([5, 5, 7, 7, 7, 7])  # best matching: 5->0 (2 right), 7->1 (3 right)
    assert _hungarian_accuracy(true, pred) == pytest.approx(5 / 6)
    # more clusters than classes: unmatched cluster 9 counts as wrong
    pred = np.array([5, 5, 5, 7, 7, 9])
    assert _hungarian_accuracy(true, pred) == pytest.approx(5 / 6)
    # fewer clusters than classes: one class stays unmatched
    assert _hungarian_accuracy(np.array([0, 0, 1, 1, 2, 2]), np.zeros(6, dtype=int)) == pytest.approx(2 / 6)


# --- evaluate_subtyping --------------------------------------------------------------------------------


def test_separated_classes_score_perfectly():
    X, y = _blobs()
    df = evaluate_subtyping(X, labels=y)
    assert list(df.columns) == ["seed", "metric", "value"]
    assert len(df) == len(SEEDS) * len(METRICS)
    assert set(df["seed"]) == set(SEEDS)
    assert set(df["metric"]) == set(METRICS)
    np.testing.assert_allclose(df["value"], 1.0)
    assert df.attrs["n_classes"] == 3 and df.attrs["knn_k"] == 3


def test_knn_accuracy_perfect_even_when_kmeans_is_not():
    # two elongated, parallel classes: k-means splits along the long axis, KNN separates them perfectly
    rng = np.random.default_rng(1)
    t = rng.uniform(0, 20, size=200)
    X = np.column_stack([t, np.repeat([0.0, 3.0], 100)])
    y = np.repeat(["a", "b"], 100)
    df = evaluate_subtyping(X, labels=y, seeds=(0, 1))
    knn = df.loc[df.metric == "knn_accuracy", "value"]
    np.testing.assert_allclose(knn, 1.0)
    assert (df.loc[df.metric == "kmeans_accuracy", "value"] < 0.8).all()


def test_random_embedding_gives_chance_level():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8))
    y = rng.integers(0, 4, size=400)
    summary = summarize_subtyping(evaluate_subtyping(X, labels=y)).set_index("metric")
    assert summary.loc["kmeans_accuracy", "mean"] < 0.40  # chance 0.25 (+ matching optimism)
    assert summary.loc["kmeans_nmi", "mean"] < 0.05
    assert abs(summary.loc["kmeans_ari", "mean"]) < 0.05
    assert 0.12 < summary.loc["knn_accuracy", "mean"] < 0.40


def test_seed_changes_split_but_is_reproducible():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 3))
    y = rng.integers(0, 3, size=120)
    a = evaluate_subtyping(X, labels=y, seeds=(0, 1))
    b = evaluate_subtyping(X, labels=y, seeds=(0, 1))
    pd.testing.assert_frame_equal(a, b)


def test_n_clusters_and_knn_k_override():
    X, y = _blobs(n_classes=2)
    df = evaluate_subtyping(X, labels=y, n_clusters=4, knn_k=5, seeds=(0,))
    assert df.attrs["n_clusters"] == 4 and df.attrs["knn_k"] == 5
    acc = df.set_index("metric").loc["kmeans_accuracy", "value"]
    assert acc < 1.0  # 4 clusters on 2 classes: two clusters stay unmatched
    assert df.set_index("metric").loc["knn_accuracy", "value"] == 1.0


def test_anndata_and_stores_summary_without_clobbering():
    X, y = _blobs()
    adata = _adata(X, y)
    adata.uns["poems"] = {"model": {"n_latent": 10}, "subtyping": {"X_other": {"keep": "me"}}}
    adata.uns["unrelated"] = "x"
    df = evaluate_subtyping(adata, "subtype", seeds=(0, 1), store=True)
    stored = adata.uns["poems"]["subtyping"]["X_poems"]
    assert adata.uns["poems"]["model"] == {"n_latent": 10}
    assert adata.uns["poems"]["subtyping"]["X_other"] == {"keep": "me"}
    assert adata.uns["unrelated"] == "x"
    assert stored["label_key"] == "subtype"
    assert stored["n_obs"] == len(y) and stored["n_classes"] == 3
    summary = summarize_subtyping(df).set_index("metric")
    for metric in METRICS:
        assert stored["metrics"][metric]["mean"] == pytest.approx(summary.loc[metric, "mean"])
        assert stored["metrics"][metric]["n"] == 2
        assert isinstance(stored["metrics"][metric]["mean"], float)


def test_uns_created_when_absent_and_nothing_stored_by_default():
    X, y = _blobs()
    adata = _adata(X, y)
    evaluate_subtyping(adata, "subtype", seeds=(0,))
    evaluate_subtyping(adata, "subtype", seeds=(0,), store=False)
    assert "poems" not in adata.uns
    evaluate_subtyping(adata, "subtype", seeds=(0,), store=True)
    assert set(adata.uns["poems"]["subtyping"]) == {"X_poems"}
    adata.obs["split"] = np.arange(adata.n_obs) % 2 == 0
    evaluate_subtyping(adata, "subtype", seeds=(0,), subset=("split", True), key_added="X_poems_test", store=True)
    stored = adata.uns["poems"]["subtyping"]
    assert set(stored) == {"X_poems", "X_poems_test"}
    assert stored["X_poems_test"]["n_obs"] == adata.n_obs // 2 and stored["X_poems"]["n_obs"] == adata.n_obs


def test_uns_not_a_dict_raises():
    X, y = _blobs()
    adata = _adata(X, y)
    adata.uns["poems"] = "something else"
    with pytest.raises(TypeError, match="not a dict"):
        evaluate_subtyping(adata, "subtype", seeds=(0,), store=True)
    assert adata.uns["poems"] == "something else"  # never replaced, even with overwrite
    with pytest.raises(TypeError, match="not a dict"):
        evaluate_subtyping(adata, "subtype", seeds=(0,), store=True, overwrite=True)
    assert adata.uns["poems"] == "something else"


def test_storing_twice_needs_overwrite():
    X, y = _blobs()
    adata = _adata(X, y)
    evaluate_subtyping(adata, "subtype", seeds=(0,), store=True)
    first = adata.uns["poems"]["subtyping"]["X_poems"]
    with pytest.raises(ValueError, match=r"uns\['poems'\]\['subtyping'\]\['X_poems'\].*overwrite=True"):
        evaluate_subtyping(adata, "subtype", seeds=(0, 1), store=True)
    assert adata.uns["poems"]["subtyping"]["X_poems"] is first  # untouched
    evaluate_subtyping(adata, "subtype", seeds=(0, 1), store=True, overwrite=True)
    assert list(adata.uns["poems"]["subtyping"]["X_poems"]["seeds"]) == [0, 1]
    with pytest.raises(ValueError, match="only applies with `store=True`"):
        evaluate_subtyping(adata, "subtype", seeds=(0,), overwrite=True)
    with pytest.raises(ValueError, match="needs a MuData or AnnData"):
        evaluate_subtyping(X, labels=y, seeds=(0,), store=True)


def test_mudata_h5mu_roundtrip(tmp_path):
    X, y = _blobs(n_per_class=10)
    mdata = _mudata(X, y)
    mdata.uns["poems"] = {"other": 1.5}
    evaluate_subtyping(mdata, "subtype", seeds=(0, 1), store=True)
    path = tmp_path / "res.h5mu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata.write(path)
        back = md.read_h5mu(path)
    entry = back.uns["poems"]["subtyping"]["X_poems"]
    assert back.uns["poems"]["other"] == 1.5
    assert entry["metrics"]["knn_accuracy"]["mean"] == pytest.approx(1.0)
    assert list(entry["seeds"]) == [0, 1]


def test_subset_by_obs_key_value_and_mask():
    X, y = _blobs(n_per_class=20)
    adata = _adata(X, y)
    adata.obs["split"] = np.where(np.arange(len(y)) % 2 == 0, "train", "test")
    df = evaluate_subtyping(adata, "subtype", subset=("split", "test"), seeds=(0,))
    assert df.attrs["n_obs"] == len(y) // 2
    df2 = evaluate_subtyping(adata, "subtype", subset={"split": ["test"]}, seeds=(0,))
    pd.testing.assert_frame_equal(df, df2)
    df3 = evaluate_subtyping(adata, "subtype", subset=(adata.obs["split"] == "test").to_numpy(), seeds=(0,))
    pd.testing.assert_frame_equal(df, df3)
    df4 = evaluate_subtyping(X, labels=y, subset=adata.obs["split"].to_numpy() == "test", seeds=(0,))
    pd.testing.assert_frame_equal(df, df4)


def test_missing_labels_dropped_with_warning():
    X, y = _blobs()
    y = y.astype(object)
    y[[0, 25, 50]] = None
    adata = _adata(X, y)
    with pytest.warns(UserWarning, match="Dropping 3 sample"):
        df = evaluate_subtyping(adata, "subtype", seeds=(0,))
    assert df.attrs["n_obs"] == len(y) - 3
    # NaN labels in a row excluded by `subset` are not counted
    X2 = X.copy()
    mask = np.ones(len(y), dtype=bool)
    mask[0] = False
    with pytest.warns(UserWarning, match="Dropping 2 sample"):
        evaluate_subtyping(X2, labels=y, subset=mask, seeds=(0,))


def test_error_missing_obsm_key_lists_available():
    X, y = _blobs()
    adata = _adata(X, y, key="X_mofa")
    with pytest.raises(KeyError, match="X_mofa"):
        evaluate_subtyping(adata, "subtype")


def test_error_missing_label_key():
    X, y = _blobs()
    with pytest.raises(KeyError, match="Label key 'celltype' not found"):
        evaluate_subtyping(_adata(X, y), "celltype")


def test_error_fewer_than_two_classes():
    X, _ = _blobs()
    with pytest.raises(ValueError, match="At least 2 classes"):
        evaluate_subtyping(X, labels=np.repeat("a", len(X)))


def test_error_nan_in_embedding():
    X, y = _blobs()
    X[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite values in 1 of"):
        evaluate_subtyping(_adata(X, y), "subtype")
    # excluded by subset: fine
    mask = np.ones(len(y), dtype=bool)
    mask[3] = False
    evaluate_subtyping(X, labels=y, subset=mask, seeds=(0,))


def test_error_singleton_class_and_bad_args():
    X, y = _blobs()
    y = y.copy()
    y[0] = "lonely"
    with pytest.raises(ValueError, match="fewer than 2 samples"):
        evaluate_subtyping(X, labels=y)
    X, y = _blobs()
    with pytest.raises(ValueError, match="labels="):
        evaluate_subtyping(X)
    with pytest.raises(TypeError, match="label_key"):
        evaluate_subtyping(X, "subtype")
    with pytest.raises(ValueError, match="exactly one"):
        evaluate_subtyping(_adata(X, y), "subtype", labels=y)
    with pytest.raises(ValueError, match="shape"):
        evaluate_subtyping(X, labels=y[:-1])
    with pytest.raises(ValueError, match="test_size"):
        evaluate_subtyping(X, labels=y, test_size=1.5)
    with pytest.raises(ValueError, match="positive integer"):
        evaluate_subtyping(X, labels=y, knn_k=0)
    with pytest.raises(TypeError, match="boolean mask"):
        evaluate_subtyping(X, labels=y, subset=np.arange(len(y)))
    with pytest.raises(ValueError, match="no samples"):
        evaluate_subtyping(X, labels=y, subset=np.zeros(len(y), dtype=bool))


# --- summarize_subtyping -------------------------------------------------------------------------------


def test_summarize_mean_sd():
    df = pd.DataFrame(
        {
            "seed": [0, 1, 2, 0, 1, 2],
            "metric": ["kmeans_nmi"] * 3 + ["knn_accuracy"] * 3,
            "value": [0.1, 0.2, 0.3, 1.0, 1.0, 0.7],
        }
    )
    out = summarize_subtyping(df)
    assert list(out.columns) == ["metric", "mean", "sd", "n"]
    assert list(out["metric"]) == ["kmeans_nmi", "knn_accuracy"]
    np.testing.assert_allclose(out["mean"], [0.2, 0.9])
    np.testing.assert_allclose(out["sd"], [np.std([0.1, 0.2, 0.3], ddof=1), np.std([1.0, 1.0, 0.7], ddof=1)])
    assert list(out["n"]) == [3, 3]
    np.testing.assert_allclose(summarize_subtyping(df, ddof=0)["sd"][0], np.std([0.1, 0.2, 0.3]))
    with pytest.raises(KeyError, match="value"):
        summarize_subtyping(df.drop(columns="value"))
