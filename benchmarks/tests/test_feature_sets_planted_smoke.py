"""Planted noisy feature sets (poems_mu.datasets._synthetic_sets) and benchmarks/accuracy/feature_sets_planted.py."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from poems_mu.datasets._synthetic_sets import corrupt_support, make_annotated, set_masks


def _members(net, source):
    rows = net[net["source"] == source]
    return set(zip(rows["modality"], rows["target"], strict=True))


@pytest.mark.parametrize(("wrong", "left_out"), [(0.3, 0.2), (0.1, 0.2), (0.5, 0.0)])
def test_the_sets_have_the_wrong_and_left_out_shares_asked_for(wrong, left_out):
    dims = {"a": 150, "b": 100}
    mdata, z, supports, net, truth = make_annotated(0, n=120, dims=dims, wrong=wrong, left_out=left_out)
    assert mdata.n_obs == 120 and z.shape == (120, 6)
    assert {m: mdata.mod[m].n_vars for m in mdata.mod} == dims
    assert all(supports[m].shape == (d, 6) and supports[m].dtype == bool for m, d in dims.items())
    assert list(net.columns) == ["modality", "source", "target"] and not net.duplicated().any()
    assert list(dict.fromkeys(net["source"])) == [f"set_{i}" for i in range(1, 5)] + [f"decoy_{i}" for i in range(1, 5)]
    for name in (f"set_{i}" for i in range(1, 5)):
        t, given = truth[name], _members(net, name)
        true = {(m, mdata.mod[m].var_names[j]) for m in dims for j in np.flatnonzero(supports[m][:, t["factor"]])}
        assert t["factor"] == int(name[-1]) - 1
        assert t["wrong"] == given - true and t["left_out"] == true - given
        assert t["left_out"] == t["omitted"] | t["replaced"] and not t["omitted"] & t["replaced"]
        assert len(t["replaced"]) == len(t["wrong"])  # a wrong member takes a true member's place
        for m in dims:  # per modality, up to rounding
            n_true = sum(1 for mm, _ in true if mm == m)
            n_given = sum(1 for mm, _ in given if mm == m)
            assert abs(sum(1 for mm, _ in t["omitted"] if mm == m) - left_out * n_true) <= 0.5
            assert abs(sum(1 for mm, _ in t["wrong"] if mm == m) - wrong * n_given) <= 0.5
            assert n_given == n_true - sum(1 for mm, _ in t["omitted"] if mm == m)


def test_decoys_are_random_sets_of_a_typical_size_in_every_modality():
    _, _, _, net, truth = make_annotated(1)
    sizes = net.groupby(["source", "modality"]).size().unstack()
    for m in ("a", "b"):
        median = int(np.median(sizes.loc[[f"set_{i}" for i in range(1, 5)], m]))
        assert (sizes.loc[[f"decoy_{i}" for i in range(1, 5)], m] == median).all()
    for i in range(1, 5):
        t = truth[f"decoy_{i}"]
        assert t["factor"] == -1 and not (t["wrong"] or t["left_out"])
    assert not set(truth) & {f"factor_{i}" for i in range(1, 40)}  # no set takes a free factor's name


def test_deterministic_by_seed_and_the_data_do_not_depend_on_the_sets():
    a, b, c = make_annotated(3), make_annotated(3), make_annotated(4)
    assert a.net.equals(b.net) and np.array_equal(a.z, b.z) and a.truth == b.truth
    assert np.array_equal(a.mdata["a"].X, b.mdata["a"].X)
    assert not a.net.equals(c.net) and not np.array_equal(a.z, c.z)
    d = make_annotated(3, wrong=0.5, n_decoys=2)
    assert np.array_equal(a.mdata["b"].X, d.mdata["b"].X) and np.array_equal(a.z, d.z)
    assert d.net["source"].nunique() == 6


def test_corrupt_support_and_masks():
    support = np.zeros(50, bool)
    support[:20] = True
    listed, omitted, replaced, bad = corrupt_support(np.random.default_rng(0), support, 0.25, 0.2)
    assert len(omitted) == 4 and len(listed) == 16 and len(bad) == 4 and len(replaced) == 4
    assert not support[bad].any() and support[np.setdiff1d(listed, bad)].all()
    with pytest.raises(ValueError, match="shares"):
        corrupt_support(np.random.default_rng(0), support, 1.0, 0.2)
    mdata, _, _, net, _ = make_annotated(0, n=30)
    masks = set_masks(net, {m: list(mdata.mod[m].var_names) for m in mdata.mod})
    for m, mask in masks.items():
        assert list(mask.columns) == list(dict.fromkeys(net["source"])) and mask.dtypes.eq(bool).all()
        assert int(mask.to_numpy().sum()) == int((net["modality"] == m).sum())


@pytest.mark.slow
def test_quick_run_writes_every_method(load_benchmark, tmp_path):
    fsp = load_benchmark("feature_sets_planted")
    fsp.main(["--quick", "--out", str(tmp_path)])
    payload = json.loads((tmp_path / "feature_sets_planted.json").read_text())
    assert [r["method"] for r in payload["runs"]] == list(fsp.METHODS)
    for r in payload["runs"]:
        assert 0.0 <= r["auroc"] <= 1.0
        if r["method"] != fsp.METHODS[0]:
            assert math.isfinite(r["wall_s"]) and r["wall_s"] > 0
    sets = [f"set_{i}" for i in range(1, 5)] + [f"decoy_{i}" for i in range(1, 5)]
    preset, no_free, muvi, muvi_dense = payload["linear_model_checks"]
    assert preset["masks_match"] and preset["n_informed_factors"] == 8 and preset["n_uninformed_factors"] == 15
    assert preset["factor_names"] == [f"Factor {i}" for i in range(1, 16)] + sets  # free factors first
    assert no_free["masks_match"] and no_free["n_uninformed_factors"] == 0 and no_free["factor_names"] == sets
    assert muvi["masks_match"] and muvi["factor_names"] == sets and 0 < muvi["epochs"] <= fsp.MUVI_QUICK_EPOCHS
    assert muvi_dense["masks_match"] and muvi_dense["factor_names"] == sets + [f"dense_{i}" for i in range(15)]
    text = (tmp_path / "feature_sets_planted.md").read_text()
    assert text.startswith("# Feature sets in the prior") and "--quick" in text
    for method in fsp.METHODS:
        assert f"| {method} |" in text
