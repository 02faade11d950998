"""tl.refine_associations: a graph auto-encoder over the significant cross-omic pairs."""

import numpy as np
import pandas as pd
import pytest
import torch

import poems_mu as pm


@pytest.fixture(scope="module")
def trained(breast_trained):
    return breast_trained


def _blocks(model, size=10):
    """Two blocks of mrna x mirna features, fully linked inside, not across; every pair is a candidate. The first
    block holds each modality's strongest loaders of the first factor, the second those of the second factor (as
    ``cross_omic_associations`` pairs them): the model's view of the features, their node features, differs between
    the blocks, as it does between communities of real associations.
    """

    def strongest(mod):
        w = model.get_loadings(mod).abs()
        first = list(w.iloc[:, 0].sort_values(ascending=False, kind="stable").index[:size])
        second = w.iloc[:, 1].drop(first).sort_values(ascending=False, kind="stable").index[:size]
        return first + list(second)

    ga, gb = strongest("mrna"), strongest("mirna")
    rows = []
    for i, a in enumerate(ga):
        for j, b in enumerate(gb):
            inside = (i < size) == (j < size)
            rows.append((a, "mrna", b, "mirna", "factor_1", 1.0, 0.8 if inside else 0.05, inside))
    cols = ["feature_a", "modality_a", "feature_b", "modality_b", "factor", "score", "rho", "significant"]
    return pd.DataFrame(rows, columns=cols)


def test_held_out_edges_of_a_block_graph_are_predicted(trained):
    _, model = trained
    pairs = _blocks(model)
    before = pairs.copy()
    res = pm.tl.refine_associations(pairs, model, epochs=150, test_fraction=0.2, seed=0)
    pd.testing.assert_frame_equal(pairs, before)
    assert list(res.columns) == [*pairs.columns, "refined_score"]
    assert res["refined_score"].between(0, 1).all()
    inside = res["significant"]
    assert res.loc[inside, "refined_score"].mean() > res.loc[~inside, "refined_score"].mean() + 0.3
    assert res.attrs["n_edges"] == 200 and res.attrs["n_held_out"] == 40
    assert res.attrs["link_auroc"] > 0.8 and 0 <= res.attrs["link_ap"] <= 1 + 1e-12  # sklearn may round past 1


def test_seeded_reproducible_and_leaves_the_global_rng_alone(trained):
    _, model = trained
    pairs = pm.tl.cross_omic_associations(model, modalities=["mrna", "mirna"], n_top=15, store=False)
    state = torch.random.get_rng_state()
    a = pm.tl.refine_associations(pairs, model, epochs=30, seed=3, n_new=5)
    assert torch.equal(state, torch.random.get_rng_state())
    b = pm.tl.refine_associations(pairs, model, epochs=30, seed=3, n_new=5)
    pd.testing.assert_frame_equal(a, b)
    c = pm.tl.refine_associations(pairs, model, epochs=30, seed=4)
    assert not np.allclose(a["refined_score"], c["refined_score"])
    new = a.attrs["new_pairs"]
    assert len(new) == 5 and new["refined_score"].is_monotonic_decreasing
    known = set(zip(pairs["feature_a"], pairs["feature_b"], strict=True))
    assert not known & set(zip(new["feature_a"], new["feature_b"], strict=True))


def _complete_graph():
    """A model of two 3-feature modalities and a table in which every cross pair is significant."""
    import anndata as ad
    import mudata as md
    import scvi

    rng = np.random.default_rng(0)
    mods = {}
    for m in ("a", "b"):
        mods[m] = ad.AnnData(rng.normal(size=(30, 3)).astype(np.float32))
        mods[m].obs_names = [f"s{i}" for i in range(30)]
        mods[m].var_names = [f"{m}{j}" for j in range(3)]
    mdata = md.MuData(mods)
    pm.POEMS.setup_mudata(mdata)
    scvi.settings.seed = 0
    model = pm.POEMS(mdata, n_latent=2)
    model.train(max_epochs=2, enable_progress_bar=False)
    rows = [(f"a{i}", "a", f"b{j}", "b", "factor_1", 1.0, 0.9, True) for i in range(3) for j in range(3)]
    cols = ["feature_a", "modality_a", "feature_b", "modality_b", "factor", "score", "rho", "significant"]
    return pd.DataFrame(rows, columns=cols), model


def test_bad_input(trained):
    _, model = trained
    pairs = _blocks(model, size=3)
    with pytest.raises(ValueError, match="empty"):
        pm.tl.refine_associations(pairs.iloc[:0], model)
    with pytest.raises(ValueError, match="one-sided"):
        pm.tl.refine_associations(pairs[pairs["feature_a"] == pairs["feature_a"].iloc[0]], model)
    with pytest.raises(ValueError, match="cross_omic_associations"):
        pm.tl.refine_associations(pairs.drop(columns="rho"), model)
    with pytest.raises(KeyError, match="lacks"):
        pm.tl.refine_associations(pairs.assign(feature_a=pairs["feature_a"] + "_x"), model)
    two = pd.concat([pairs, pairs.assign(modality_b="protein")])
    with pytest.raises(ValueError, match="modality pairs"):
        pm.tl.refine_associations(two, model)
    with pytest.raises(ValueError, match="no non-edges"):
        pm.tl.refine_associations(*_complete_graph())
    with pytest.raises(ValueError, match="trained model"):
        pm.tl.refine_associations(pairs)
    with pytest.raises(ValueError, match="test_fraction"):
        pm.tl.refine_associations(pairs, model, test_fraction=1.0)
