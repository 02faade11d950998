"""tl.enrichment: decoupler's ULM on signed loadings, raw p-values, BH over all factor × set tests."""

import decoupler as dc
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import poems_mu as pm
from poems_mu.tl._enrichment import _ulm


@pytest.fixture(scope="module")
def trained(breast_trained):
    return breast_trained


@pytest.mark.slow
def test_ulm_scores_are_decouplers_and_pvalues_are_raw():
    rng = np.random.default_rng(0)
    feats = [f"g{j}" for j in range(60)]
    mat = pd.DataFrame(rng.normal(size=(4, 60)), index=[f"f{k}" for k in range(4)], columns=feats)
    net = pd.DataFrame(
        {"source": np.repeat(["A", "B", "C"], 8), "target": rng.choice(feats, 24, replace=False), "weight": 1.0}
    )
    es, padj = dc.mt.ulm(mat, net, tmin=5, verbose=False)
    sources, targets, adj = dc.pp.adjmat(features=feats, net=net)
    adj = pd.DataFrame(adj, index=targets, columns=sources).reindex(feats, fill_value=0.0).to_numpy()
    t, p = _ulm(mat.to_numpy(), adj)
    np.testing.assert_allclose(t, es[list(sources)].to_numpy(), rtol=1e-5)  # decoupler computes in float32
    np.testing.assert_allclose(p, 2 * stats.t.sf(np.abs(t), 58))
    # decoupler's own p-values are ours adjusted per row (factor) only
    per_row = stats.false_discovery_control(p, axis=1, method="bh")
    np.testing.assert_allclose(padj[list(sources)].to_numpy(), per_row, rtol=1e-5)


def test_a_set_of_a_factors_top_positive_loaders_comes_first(trained):
    mdata, model = trained
    eff = model.get_effective_loadings("mrna", signed=True)
    k = int(np.argmax(eff.abs().max(0).to_numpy()))
    col = eff.columns[k]
    top = eff[col].sort_values(ascending=False).index[:10]
    rng = np.random.default_rng(1)
    decoys = [rng.choice(eff.index, 10, replace=False) for _ in range(5)]
    net = pd.DataFrame(
        {
            "source": ["planted"] * 10 + [f"decoy{i}" for i in range(5) for _ in range(10)],
            "target": list(top) + [g for d in decoys for g in d],
        }
    )
    before = net.copy()
    res = pm.tl.enrichment(model, net, "mrna")
    pd.testing.assert_frame_equal(net, before)
    assert list(res.columns) == ["modality", "factor", "source", "size", "score", "pvalue", "qvalue"]
    assert (res["modality"] == "mrna").all()
    active = model.active_factors()
    assert col in set(active.index[active["active"]])
    # by default only the active factors are tested; include_inactive=True tests every factor
    assert set(res["factor"]) == set(active.index[active["active"]]) and len(res) == 6 * active["active"].sum()
    everything = pm.tl.enrichment(model, net, "mrna", include_inactive=True)
    assert len(everything) == 6 * model.module.n_factors  # every factor kept (pruned ones have no loadings)
    own = res[res["factor"] == col].sort_values("pvalue")
    assert own.iloc[0]["source"] == "planted" and own.iloc[0]["score"] > 0 and own.iloc[0]["size"] == 10
    np.testing.assert_allclose(np.sort(res["qvalue"]), np.sort(stats.false_discovery_control(res["pvalue"])))
    # the MuData path reads the stored signed effective loadings and gives the same table
    stored = mdata.copy()
    model.store_results(stored, overwrite=True)
    pd.testing.assert_frame_equal(pm.tl.enrichment(stored, net, "mrna"), res)
    by_w = pm.tl.enrichment(model, net, "mrna", factors=col, loadings="abs_W")
    assert set(by_w["factor"]) == {col}
    # |W|: the score does not depend on W's signs, and a set of the factor's largest |W| comes first, positive
    w = model.get_loadings("mrna")[col].abs()
    strong = pd.DataFrame({"source": "strong", "target": w.sort_values(ascending=False).index[:10]})
    by_w = pm.tl.enrichment(model, pd.concat([net, strong]), "mrna", factors=col, loadings="abs_W")
    assert by_w.iloc[0]["source"] == "strong" and by_w.iloc[0]["score"] > 0


def test_bad_input(trained):
    mdata, model = trained
    net = pd.DataFrame({"source": ["s"] * 5, "target": list(mdata["mrna"].var_names[:5])})
    with pytest.raises(KeyError, match="Unknown modality"):
        pm.tl.enrichment(model, net, "rna")
    with pytest.raises(ValueError, match="only 'ulm'"):
        pm.tl.enrichment(model, net, "mrna", method="gsea")
    with pytest.raises(ValueError, match="'source' and 'target'"):
        pm.tl.enrichment(model, net.rename(columns={"target": "gene"}), "mrna")
    with pytest.raises(ValueError, match="No target of `net`"):
        pm.tl.enrichment(model, net.assign(target=[f"x{i}" for i in range(5)]), "mrna")
    with pytest.raises(ValueError, match="loadings"):
        pm.tl.enrichment(model, net, "mrna", loadings="W")
    fresh = pm.datasets.breast_tcga()
    with pytest.raises(KeyError, match="poems_effective_signed"):
        pm.tl.enrichment(fresh, net, "mrna")


def test_dot_plot_shows_sets_by_best_q_with_signed_colours():
    import matplotlib

    matplotlib.use("Agg")
    table = pd.DataFrame(
        {
            "factor": ["f1", "f1", "f1", "f2", "f2", "f2"],
            "source": ["up", "down", "none"] * 2,
            "size": 10,
            "score": [5.0, -4.0, 0.1, 0.5, -0.2, 0.3],
            "pvalue": [1e-6, 1e-4, 0.9, 0.4, 0.8, 0.7],
            "qvalue": [6e-6, 3e-4, 0.9, 0.6, 0.9, 0.9],
        }
    )
    before = table.copy()
    ax = pm.pl.enrichment(table, show=False)
    pd.testing.assert_frame_equal(table, before)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["up", "down", "none"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["f1", "f2"]
    dots = ax.collections[0]
    colours = dots.to_rgba(dots.get_array())
    offsets = dots.get_offsets()
    up = np.flatnonzero((offsets[:, 0] == 0) & (offsets[:, 1] == 0))[0]
    down = np.flatnonzero((offsets[:, 0] == 0) & (offsets[:, 1] == 1))[0]
    assert colours[up][0] > colours[up][2] and colours[down][2] > colours[down][0]  # red rises, blue falls
    sizes = dots.get_sizes()
    assert sizes[up] == sizes.max() and sizes[up] > sizes[down]
    assert (dots.get_edgecolors()[:, 3] > 0).sum() == 2  # two tests pass q <= 0.05
    ax = pm.pl.enrichment(table, max_q=0.05, show=False)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["up", "down"]
    ax = pm.pl.enrichment(table, n_sources=1, show=False)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["up"]
    with pytest.raises(ValueError, match="pm.tl.enrichment"):
        pm.pl.enrichment(table.drop(columns="qvalue"))
    with pytest.raises(ValueError, match="No set has qvalue"):
        pm.pl.enrichment(table, max_q=1e-9)
    with pytest.raises(ValueError, match="max_q"):
        pm.pl.enrichment(table, max_q=2)


def test_dot_plot_of_several_modalities_labels_sets_by_modality():
    import matplotlib

    matplotlib.use("Agg")
    table = pd.DataFrame(
        {
            "modality": ["rna", "rna", "prot", "prot"],
            "factor": ["f1", "f2", "f1", "f2"],
            "source": ["S", "S", "S", "S"],  # the same set name tested in two modalities: two rows of dots
            "size": 10,
            "score": [3.0, 0.1, -2.0, 0.2],
            "pvalue": [1e-5, 0.9, 1e-3, 0.8],
            "qvalue": [4e-5, 0.9, 2e-3, 0.9],
        }
    )
    before = table.copy()
    ax = pm.pl.enrichment(table, show=False)
    pd.testing.assert_frame_equal(table, before)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["rna: S", "prot: S"]
    assert ax.get_ylabel() == "modality: feature set"
    assert len(ax.collections[0].get_offsets()) == 4
    # one modality: plain set names, as before
    ax = pm.pl.enrichment(table, modality="prot", show=False)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["S"]
    assert len(ax.collections[0].get_offsets()) == 2
    with pytest.raises(ValueError, match="choose from"):
        pm.pl.enrichment(table, modality="mirna")
    with pytest.raises(ValueError, match="`modality` column"):
        pm.pl.enrichment(table.drop(columns="modality"), modality="rna")
