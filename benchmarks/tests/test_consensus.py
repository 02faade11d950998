"""The consensus benchmark's scoring and its rule (benchmarks/accuracy/consensus.py)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def cs(load_benchmark):
    return load_benchmark("consensus")


def _runs(n_runs, noise, seed=0):
    """Runs that place three groups of 40 samples, each with its own noise and rotation."""
    rng = np.random.default_rng(seed)
    centres = np.repeat(np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]), 40, axis=0)
    labels = np.repeat(["a", "b", "c"], 40)
    runs = []
    for _ in range(n_runs):
        z = np.c_[centres, np.zeros((120, 1))] + noise * rng.normal(size=(120, 3))
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        runs.append({"z": z @ q, "wall_s": 2.0, "factors": 3})
    idx = rng.permutation(120)
    split = {"train": np.sort(idx[:90]), "test": np.sort(idx[90:])}
    return runs, labels, split


def test_clear_groups_give_agreeing_consensuses_and_the_time_of_their_runs(cs):
    runs, labels, split = _runs(6, noise=0.3)
    row = cs.score_size(runs, 3, 2, labels, split)
    assert row["ari_between"] == pytest.approx(1.0)
    assert row["cka_between"] > 0.95 and row["seconds"] == pytest.approx(6.0) and row["width"] == 3
    assert row["kmeans_nmi_all"]["mean"] == pytest.approx(1.0)
    per_seed = row["kmeans_nmi_all"]["per_evaluation_seed"]
    assert len(per_seed) == 2 and all(len(v) > 1 for v in per_seed)
    assert row["kmeans_nmi_all"]["sd_within"] == pytest.approx(0.0, abs=1e-12)
    single = cs.score_size(runs, 1, 2, labels, split)
    assert single["seconds"] == pytest.approx(2.0)


def test_the_rule_takes_the_smallest_size_that_agrees_on_every_data_set(cs):
    def rows(aris):
        return [{"runs": r, "ari_between": a} for r, a in zip((1, 3, 5), aris, strict=True)]

    results = {
        "x": {"POEMS": rows([0.5, 0.95, 0.97])},
        "y": {"POEMS": rows([0.6, 0.8, 0.92]), "MOFA+": rows([1, 1, 1])},
    }
    assert cs.chosen_size(results) == 5
    results["y"]["POEMS"] = rows([0.6, 0.8, 0.85])
    assert cs.chosen_size(results) is None


def test_keep_takes_the_other_methods_rows_and_refuses_a_run_that_does_not_compare(cs, tmp_path):
    import json

    earlier = {
        "provenance": {"commit": "abc"},
        "settings": {"sizes": [1, 3], "groups": 2, "quick": False},
        "results": {"x": {"POEMS": ["old"], "MOFA+": ["mofa rows"]}},
        "factors": {"x POEMS": [9], "x MOFA+": [4, 5]},
    }
    path = tmp_path / "consensus.json"
    path.write_text(json.dumps(earlier))
    results, factors = {"x": {"POEMS": ["new"]}}, {"x POEMS": [7]}
    kept = cs.keep_rows(path, results, factors, [1, 3], 2)
    assert results == {"x": {"POEMS": ["new"], "MOFA+": ["mofa rows"]}}
    assert factors == {"x POEMS": [7], "x MOFA+": [4, 5]}
    assert kept == [{"methods": ["MOFA+"], "provenance": {"commit": "abc"}, "settings": earlier["settings"]}]
    with pytest.raises(ValueError, match="sizes"):
        cs.keep_rows(path, {"x": {"POEMS": []}}, {}, [1, 3, 5], 2)
    with pytest.raises(ValueError, match="no rows for 'y'"):
        cs.keep_rows(path, {"y": {"POEMS": []}}, {}, [1, 3], 2)


def test_keep_credits_rows_an_earlier_file_had_itself_kept_to_the_run_they_came_from(cs, tmp_path):
    """A chain of --keep runs: MOFA+'s rows came to file 2 from file 1; file 3, re-running POEMS and keeping from
    file 2, credits MOFA+ to file 1's commit and MOFA-FLEX to file 2's."""
    import json

    first = {"methods": ["MOFA+"], "provenance": {"commit": "one"}, "settings": {"sizes": [1], "groups": 2}}
    earlier = {
        "provenance": {"commit": "two"},
        "settings": {"sizes": [1], "groups": 2, "quick": False},
        "results": {"x": {"POEMS": ["p2"], "MOFA+": ["m1"], "MOFA-FLEX": ["f2"]}},
        "factors": {"x POEMS": [9], "x MOFA+": [4], "x MOFA-FLEX": [5]},
        "kept": [first],
    }
    path = tmp_path / "consensus.json"
    path.write_text(json.dumps(earlier))
    results, factors = {"x": {"POEMS": ["p3"]}}, {"x POEMS": [8]}
    kept = cs.keep_rows(path, results, factors, [1], 2)
    assert results["x"] == {"POEMS": ["p3"], "MOFA+": ["m1"], "MOFA-FLEX": ["f2"]}
    assert [(p["methods"], p["provenance"]["commit"]) for p in kept] == [(["MOFA+"], "one"), (["MOFA-FLEX"], "two")]
    results, factors = {"x": {"POEMS": ["p3"], "MOFA+": ["m3"]}}, {}
    kept = cs.keep_rows(path, results, factors, [1], 2)  # MOFA+ re-run as well: file 1 no longer contributes
    assert [(p["methods"], p["provenance"]["commit"]) for p in kept] == [(["MOFA-FLEX"], "two")]
