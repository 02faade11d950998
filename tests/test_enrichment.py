"""tl.enrichment: decoupler's ULM on signed loadings, raw p-values, BH over all factor × set tests."""

import decoupler as dc
import numpy as np
import pandas as pd
import pytest
import scvi
from scipy import stats

import poems_mu as pm
from poems_mu.tl._enrichment import _ulm


@pytest.fixture(scope="module")
def trained():
    mdata = pm.datasets.breast_tcga()
    pm.POEMS.setup_mudata(mdata)
    scvi.settings.seed = 0
    model = pm.POEMS(mdata, n_latent=6)
    model.train(max_epochs=30, n_epochs_kl_warmup=10, enable_progress_bar=False)
    return mdata, model


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
    assert list(res.columns) == ["factor", "source", "size", "score", "pvalue", "qvalue"]
    active = model.active_factors()
    assert col in set(active.index[active["active"]])
    # by default only the active factors are tested; include_inactive=True tests every factor
    assert set(res["factor"]) == set(active.index[active["active"]]) and len(res) == 6 * active["active"].sum()
    everything = pm.tl.enrichment(model, net, "mrna", include_inactive=True)
    assert len(everything) == 6 * model.module.n_latent
    own = res[res["factor"] == col].sort_values("pvalue")
    assert own.iloc[0]["source"] == "planted" and own.iloc[0]["score"] > 0 and own.iloc[0]["size"] == 10
    np.testing.assert_allclose(np.sort(res["qvalue"]), np.sort(stats.false_discovery_control(res["pvalue"])))
    # the MuData path reads the stored signed effective loadings and gives the same table
    pm.POEMS.setup_mudata(mdata)
    model.store_results(mdata, overwrite=True)
    pd.testing.assert_frame_equal(pm.tl.enrichment(mdata, net, "mrna"), res)
    assert set(pm.tl.enrichment(model, net, "mrna", factors=col, loadings="W")["factor"]) == {col}


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
        pm.tl.enrichment(model, net, "mrna", loadings="abs")
    fresh = pm.datasets.breast_tcga()
    with pytest.raises(KeyError, match="poems_effective_signed"):
        pm.tl.enrichment(fresh, net, "mrna")
