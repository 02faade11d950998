"""The k-means structures of an embedding (benchmarks/accuracy/subtyping_structures.py)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def ss(load_benchmark):
    return load_benchmark("subtyping_structures")


def _blobs(centres, n=40, sd=0.3, seed=0):
    rng = np.random.default_rng(seed)
    z = np.concatenate([c + sd * rng.normal(size=(n, len(c))) for c in np.asarray(centres, float)])
    return z, np.repeat(np.arange(len(centres)), n).astype(str)


def test_three_clear_clusters_make_one_structure_that_the_scored_k_means_returns(ss):
    z, y = _blobs([[0, 0], [6, 0], [0, 6]])
    out = ss.structures(z, y, 3)
    first = out["structures"][0]
    assert first["gap"] == 0 and first["nmi"] == pytest.approx(1.0) and first["scored_share"] == 1.0
    # any other partition of three clear clusters is far worse
    assert all(t["gap"] > 0.5 for t in out["structures"][1:])
    assert out["nmi_scored"] == pytest.approx(1.0)


def test_four_equal_clusters_in_a_square_give_several_structures_of_the_same_inertia(ss):
    z, y = _blobs([[0, 0], [5, 0], [0, 5], [5, 5]])
    out = ss.structures(z, y, 3)
    near = [t for t in out["structures"] if t["gap"] < 0.02]
    assert len(near) >= 2  # merging either pair of neighbours costs the same
    assert all(t["ari_to_first"] < ss.SAME_STRUCTURE for t in out["structures"][1:])
    assert sum(t["scored_share"] for t in out["structures"]) == pytest.approx(1.0)


def test_agreement_is_one_for_an_invertible_linear_map_and_low_for_unrelated_embeddings(ss):
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 5))
    same = ss.agreement(a, a @ rng.normal(size=(5, 5)))
    assert same["r2"] == pytest.approx(1.0)
    other = ss.agreement(a, rng.normal(size=(200, 5)))
    assert other["r2"] < 0.1 and other["cka"] < same["cka"]
