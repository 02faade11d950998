"""Smoke tests of benchmarks/accuracy/likelihoods_planted.py and batch_planted.py (their --quick runs)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from poems_mu.datasets import _synthetic


@pytest.fixture(scope="module")
def lp(load_benchmark):
    return load_benchmark("likelihoods_planted")


@pytest.fixture(scope="module")
def bp(load_benchmark):
    return load_benchmark("batch_planted")


def _in_unit(value) -> bool:
    return isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0


def test_generators_plant_what_they_say(common):
    data, library, obs, z, supports = common.planted("counts", 0, n=60, scale=0.2)
    counts = data["rna"]
    assert (counts >= 0).all() and np.array_equal(counts, np.round(counts))
    assert 3.0 < library.max() / library.min() <= 4.0 and library.min() >= 2.5e6
    assert supports["rna"].shape == (counts.shape[1], _synthetic.N_FACTORS)
    assert set(supports["rna"].sum(1)) <= {0, 1, 2} and (supports["rna"].sum(1) == 0).mean() == pytest.approx(0.2)
    assert obs["group"].value_counts().tolist() == [20, 20, 20]
    data, obs, z, supports = common.planted("binary", 0, n=60, scale=0.5)
    assert set(np.unique(data["mut"])) == {0.0, 1.0} and 0.05 < data["mut"].mean() < 0.5
    mdata, z = common.planted("batched", 0, n=60, scale=0.2)
    cells = mdata.obs.groupby(["group", "batch"], observed=True).size()
    assert len(cells) == 6 and (cells == 10).all()  # batch and group balanced
    x, b1 = np.asarray(mdata["a"].X), (mdata.obs["batch"] == "b1").to_numpy()
    shift = np.abs(x[b1].mean(0) - x[~b1].mean(0)) / x[~b1].std(0)
    assert (shift > 1.0).mean() > 0.5  # most features carry the strong batch shift


@pytest.mark.slow
def test_likelihoods_quick_run_writes_both_parts(lp, tmp_path):
    out = tmp_path / "likelihoods.json"
    lp.main(["--quick", "--out", str(tmp_path)])
    payload = json.loads(out.read_text())
    recs = payload["records"]
    assert [(r["part"], r["arm"]) for r in recs] == [(p, a) for p, arms in lp.ARMS.items() for a in arms]
    for r in recs:
        assert r["epochs"] == lp.QUICK["train"]["max_epochs"]
        assert _in_unit(r["support_auroc"]) and _in_unit(r["knn_groups"]) and _in_unit(r["knn_groups_true_z"])
        if r["part"].startswith("counts"):
            assert math.isfinite(r["heldout_spearman"]) and -1.0 <= r["heldout_spearman"] <= 1.0
            assert r["likelihoods"]["rna"] == ("nb" if r["arm"].startswith("nb") else "gaussian")
        else:
            assert _in_unit(r["heldout_auroc_pooled"]) and _in_unit(r["heldout_auroc_median"])
            assert r["likelihoods"]["mut"] == ("bernoulli" if r["arm"].startswith("bernoulli") else "gaussian")
            if r["arm"].startswith("bernoulli"):  # probabilities
                assert 0.0 <= r["pred_range"][0] <= r["pred_range"][1] <= 1.0
    text = out.with_suffix(".md").read_text()
    assert text.startswith("# Count and binary likelihoods") and "--quick" in text
    for arm in ("nb", "gaussian_log1p", "bernoulli", "gaussian"):
        assert f"| {arm} |" in text


@pytest.mark.slow
def test_batch_quick_run_writes_every_arm_and_goals(bp, tmp_path):
    out = tmp_path / "batch.json"
    bp.main(["--quick", "--out", str(tmp_path)])
    recs = json.loads(out.read_text())["records"]
    assert [r["arm"] for r in recs] == [*bp.ARMS, *bp.REFERENCES]
    assert all(_in_unit(r["knn_batch"]) and _in_unit(r["knn_groups"]) for r in recs)
    by = {r["arm"]: r for r in recs}
    assert by["PCA of the data (reference)"]["knn_batch"] > 0.9  # the planted batch dominates the raw data
    assert by["true factors (reference)"]["knn_batch"] < 0.75  # the true factors know nothing of the batch
    text = out.with_suffix(".md").read_text()
    for arm in bp.ARMS:
        assert f"| {arm} |" in text and f"- {arm}: knn_batch" in text
