"""Smoke test of the subtyping benchmark's functions on a tiny synthetic MuData (benchmarks/accuracy/subtyping.py)."""

from __future__ import annotations

import json

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def sb(load_benchmark):
    return load_benchmark("subtyping")


def _toy(n_per_class: int = 20, seed: int = 0) -> md.MuData:
    """Three well separated classes; modality ``b`` is missing for the last 15 samples."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(["x", "y", "z"], n_per_class)
    n = labels.size
    centres = {"x": 0.0, "y": 3.0, "z": -3.0}
    shift = np.array([centres[c] for c in labels])[:, None]
    a = rng.normal(size=(n, 15)) + shift * rng.normal(size=(1, 15))
    b = rng.normal(size=(n, 10)) + shift * rng.normal(size=(1, 10))
    names = [f"s{i}" for i in range(n)]
    have_b = np.arange(n) < n - 15
    mods = {
        "a": ad.AnnData(a.astype(np.float32), obs=pd.DataFrame(index=names)),
        "b": ad.AnnData(b[have_b].astype(np.float32), obs=pd.DataFrame(index=np.array(names)[have_b])),
    }
    for m, x in mods.items():
        x.var_names = [f"{m}{j}" for j in range(x.n_vars)]
    mdata = md.MuData(mods)
    mdata.obs["label"] = pd.Categorical(labels)
    return mdata


def test_paper_split_is_stratified_disjoint_and_fixed(baselines):
    labels = np.repeat(["a", "b", "c"], [50, 30, 20])
    s = baselines.paper_split(labels)
    assert len(s["test"]) == 20 and len(s["train"]) == 80
    assert len(s["val"]) == 16 and len(s["fit"]) == 64
    assert set(s["fit"]) | set(s["val"]) == set(s["train"])
    assert not set(s["fit"]) & set(s["val"]) and not set(s["train"]) & set(s["test"])
    assert pd.Series(labels[s["test"]]).value_counts().to_dict() == {"a": 10, "b": 6, "c": 4}
    again = baselines.paper_split(labels)
    assert all(np.array_equal(s[k], again[k]) for k in s)


def test_zscored_views_use_train_stats_and_mark_missing(baselines):
    bl = baselines
    mdata = _toy()
    fit = np.zeros(mdata.n_obs, dtype=bool)
    fit[:30] = True
    views = bl.zscored_views(mdata, fit)
    assert views["a"].shape == (60, 15) and views["b"].shape == (60, 10)
    assert np.isnan(views["b"][-15:]).all() and np.isfinite(views["b"][:-15]).all()
    np.testing.assert_allclose(views["a"][fit].mean(0), 0, atol=1e-6)
    np.testing.assert_allclose(views["a"][fit].std(0), 1, atol=1e-6)
    assert abs(views["a"][~fit].mean()) > 1e-3  # test rows are not re-centred


def test_benchmark_runs_every_method_and_writes_tables(sb, tmp_path):
    mdata = _toy()
    train_kwargs = {**sb.CHOSEN_TRAIN_KWARGS, "max_epochs": 4, "n_epochs_kl_warmup": 1, "early_stopping_patience": 2}
    model_kwargs = {**sb.CHOSEN_MODEL_KWARGS, "n_latent": 4, "n_hidden_encoder": 16, "n_hidden_decoder": 8}
    records = sb.run_benchmark(
        [("toy", mdata, "label")],
        seeds=[0],
        model_kwargs=model_kwargs,
        train_kwargs=train_kwargs,
        quick=True,
        log=lambda s: None,
    )
    assert [r["method"] for r in records] == list(sb.ALL_METHODS)
    for r in records:
        assert "metrics" in r, r.get("error")
        assert set(r["metrics"]) == {"all", "test", "train"}
        for scope in r["metrics"].values():
            assert set(scope) == {"kmeans_accuracy", "kmeans_nmi", "kmeans_ari", "knn_accuracy"}
            assert all(0 <= scope[m]["mean"] <= 1 for m in ("kmeans_accuracy", "kmeans_nmi", "knn_accuracy"))
            assert len(scope["knn_accuracy"]["values"]) == 5
        if r["method"].startswith("POEM"):
            assert 1 <= r["info"]["epochs"] <= 4
    by = {r["method"]: r for r in records}
    # the planted classes are linearly separated: the baselines must find them
    assert by["PCA"]["metrics"]["all"]["knn_accuracy"]["mean"] > 0.9
    assert by["MOFA+"]["info"]["train_corr_median"] > 0.9  # projection reproduces MOFA's own train factors
    text = sb.markdown(records, "cmd", {"model_kwargs": model_kwargs, "train_kwargs": train_kwargs})
    assert "## toy — all samples (n = 60)" in text and "## toy — test split (paper protocol) (n = 12)" in text
    for method in sb.ALL_METHODS:
        assert f"| {method} |" in text
    summary = sb.summarize(records)
    assert set(summary.scope) == {"all", "test", "train"} and (summary.n == 1).all()
    json.dumps(records)  # JSON-able


def test_ablation_options_behave():
    """The benchmark's POEMS variants: fixed gating, dense decoder (POEM), prior expert on/off."""
    import scvi
    import torch

    import poems_mu as pm

    mdata = _toy()
    pm.POEMS.setup_mudata(mdata)
    small = {"n_latent": 3, "n_hidden_encoder": 8, "n_hidden_decoder": 4, "n_hidden_gate": 4}

    fixed = pm.POEMS(mdata, gating="fixed", **small)
    gates = fixed.get_gating_weights().to_numpy()
    np.testing.assert_allclose(gates[:-15], 0.5, atol=1e-6)  # both modalities: equal weights
    np.testing.assert_allclose(gates[-15:], [[1.0, 0.0]] * 15, atol=1e-6)  # b missing: all weight on a

    dense = pm.POEMS(mdata, decoder="dense", factor_start="random", **small)
    assert dense.module.priors is None and not hasattr(dense.module.decoders[0], "W")
    with pytest.raises(ValueError, match="dense"):
        dense.get_loadings("a")

    def posterior_precision(prior_expert):
        scvi.settings.seed = 3  # same initial weights for both models
        model = pm.POEMS(mdata, prior_expert=prior_expert, **small)
        model.module.eval()
        batch = next(iter(model._make_data_loader(adata=mdata, batch_size=mdata.n_obs)))
        with torch.no_grad():
            qz = model.module.inference(**model.module._get_inference_input(batch))["qz"]
        return 1.0 / qz.scale.pow(2).numpy()

    # the N(0, I) prior expert adds exactly 1 to the fused precision
    np.testing.assert_allclose(posterior_precision(True) - posterior_precision(False), 1.0, rtol=1e-4, atol=1e-4)


def test_the_benchmarked_configuration_is_the_package_default(sb):
    """The subtyping table describes what a user gets: its explicit settings equal the package's defaults."""
    import inspect

    import poems_mu as pm

    init = inspect.signature(pm.POEMS.__init__).parameters
    train = inspect.signature(pm.POEMS.train).parameters
    assert {k: init[k].default for k in sb.CHOSEN_MODEL_KWARGS} == sb.CHOSEN_MODEL_KWARGS
    assert {k: train[k].default for k in sb.CHOSEN_TRAIN_KWARGS} == sb.CHOSEN_TRAIN_KWARGS
