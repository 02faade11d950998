"""benchmarks/accuracy/imputation.py on a tiny cohort: the fold protocol and the scores mean what they say."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def imp(load_benchmark):
    return load_benchmark("imputation")


def _toy(n=60, seed=0):
    """Two inputs and a target driven by the same two factors."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    names = [f"s{i}" for i in range(n)]
    mods = {}
    for name, d in (("a", 12), ("b", 8), ("t", 6)):
        x = (z @ rng.normal(size=(2, d)) + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
        mods[name] = ad.AnnData(
            x, obs=pd.DataFrame(index=names), var=pd.DataFrame(index=[f"{name}{j}" for j in range(d)])
        )
    return md.MuData(mods)


def test_scores(imp):
    rng = np.random.default_rng(0)
    truth = rng.normal(size=(30, 5))
    assert imp.scores(truth, np.zeros_like(truth), None) == {"feature_r": 0.0, "sample_r": 0.0}
    perfect = imp.scores(truth, 2 * truth + 1, np.ones_like(truth))
    assert perfect["feature_r"] == pytest.approx(1.0) and perfect["sample_r"] > 0.9
    cover = imp.scores(truth, np.zeros_like(truth), np.ones_like(truth))["coverage90"]
    assert cover == pytest.approx((np.abs(truth) <= 1.645).mean())


def test_a_fold_hides_only_the_target_of_its_samples(imp):
    mdata = _toy()
    held = mdata.obs_names[:12]
    fold = imp.fold_mudata(mdata, "t", held)
    assert fold.n_obs == 60 and fold["a"].n_obs == 60 and fold["b"].n_obs == 60
    assert fold["t"].n_obs == 48 and not fold["t"].obs_names.isin(held).any()


def test_run_fold_scores_every_method_on_the_held_out_samples(imp):
    mdata = _toy()
    rows = imp.run_fold(mdata, "t", ["a", "b"], mdata.obs_names[:12], seed=0, quick=True)
    by = {r["method"]: r for r in rows}
    assert list(by) == list(imp.METHODS)
    assert by["feature means"]["feature_r"] == 0.0
    assert by["ridge"]["feature_r"] > 0.8  # the target is a linear function of the inputs' factors
    assert 0.0 <= by["POEMS"]["coverage90"] <= 1.0 and by["POEMS"]["interval_width"] > 0
    assert by["POEMS"]["feature_r"] > 0.3
