"""One convention for ``pm.tl``: store only when asked, never overwrite without ``overwrite=True``; enrichment over
every modality with one BH correction; ``pl`` functions read what ``tl`` stored or take what it returns."""

import warnings

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import stats

import poems_mu as pm
from poems_mu.tl._common import store_uns


@pytest.fixture(scope="module")
def trained(breast_trained):
    return breast_trained


@pytest.fixture
def stored(trained):
    """A copy of the training MuData with the model's results (the session's MuData is left alone)."""
    mdata, model = trained
    copy = mdata.copy()
    model.store_results(copy, overwrite=True)
    copy.uns["poems"] = {**copy.uns["poems"], "mine": "kept"}  # something the user put there
    return copy, model


# -- storing ------------------------------------------------------------------------------------------------------
CALLS = {
    "variance_explained": lambda md, model, **kw: pm.tl.variance_explained(model, md, **kw),
    "factor_associations": lambda md, model, **kw: pm.tl.factor_associations(md, "subtype", **kw),
    "subtype_correlations": lambda md, model, **kw: pm.tl.subtype_correlations(md, "subtype", **kw),
    "cross_omic": lambda md, model, **kw: pm.tl.cross_omic_associations(model, md, n_top=3, **kw),
    ("subtyping", "X_poems"): lambda md, model, **kw: pm.tl.evaluate_subtyping(md, "subtype", seeds=(0,), **kw),
}


def _entry(mdata, key):
    node = mdata.uns["poems"]
    for part in (key,) if isinstance(key, str) else key:
        node = node[part]
    return node


@pytest.mark.parametrize("key", list(CALLS), ids=str)
def test_tl_stores_only_when_asked_and_never_overwrites_silently(stored, key):
    mdata, model = stored
    call = CALLS[key]
    before = dict(mdata.uns["poems"])
    call(mdata, model)  # default: only return
    assert dict(mdata.uns["poems"]) == before
    call(mdata, model, store=True)
    first = _entry(mdata, key)
    name = "".join(f"\\[{p!r}\\]" for p in ("poems", *((key,) if isinstance(key, str) else key)))
    with pytest.raises(ValueError, match=f"already exists and would be overwritten: uns{name}.*overwrite=True"):
        call(mdata, model, store=True)
    assert _entry(mdata, key) is first  # nothing was written
    call(mdata, model, store=True, overwrite=True)
    assert _entry(mdata, key) is not first
    assert mdata.uns["poems"]["mine"] == "kept" and mdata.uns["poems"]["factors"] == before["factors"]
    with pytest.raises(ValueError, match="only applies with `store=True`"):
        call(mdata, model, overwrite=True)


def test_an_existing_entry_is_refused_before_the_work(stored, monkeypatch):
    mdata, model = stored
    mdata.uns["poems"] = {**mdata.uns["poems"], "variance_explained": {"r2_total": np.zeros(3)}}

    def fail(*args, **kwargs):
        raise AssertionError("computed although the result could not be stored")

    monkeypatch.setattr("poems_mu.tl._variance.leave_one_factor_out_r2", fail)
    with pytest.raises(ValueError, match=r"uns\['poems'\]\['variance_explained'\]"):
        pm.tl.variance_explained(model, mdata, store=True)


def test_store_uns_keeps_other_entries_and_copies_nested_dicts():
    adata = AnnData(np.zeros((2, 1)))
    shared = {"X_other": {"keep": "me"}}
    adata.uns["poems"] = {"subtyping": shared, "model": 1}
    store_uns(adata, ("subtyping", "X_poems"), {"n": 1})
    assert adata.uns["poems"]["subtyping"] == {"X_other": {"keep": "me"}, "X_poems": {"n": 1}}
    assert adata.uns["poems"]["model"] == 1
    assert shared == {"X_other": {"keep": "me"}}  # the dict the user held is not mutated
    with pytest.raises(ValueError, match="overwrite=True"):
        store_uns(adata, ("subtyping", "X_poems"), {"n": 2})
    store_uns(adata, ("subtyping", "X_poems"), {"n": 2}, overwrite=True)
    assert adata.uns["poems"]["subtyping"]["X_poems"] == {"n": 2}
    adata.uns["poems"] = ["not", "a", "dict"]
    with pytest.raises(TypeError, match=r"uns\['poems'\]` exists but is a list"):
        store_uns(adata, "x", 1, overwrite=True)
    assert adata.uns["poems"] == ["not", "a", "dict"]


# -- pl reads what tl stored ----------------------------------------------------------------------------------------
def test_pl_reads_what_tl_stored_or_says_which_call_stores_it(stored):
    import matplotlib

    matplotlib.use("Agg")
    mdata, model = stored
    with pytest.raises(KeyError, match=r"pm.tl.subtype_correlations\(mdata, label_key, store=True\)"):
        pm.pl.subtype_correlations(mdata, show=False)
    with pytest.raises(KeyError, match=r"pm.tl.cross_omic_associations\(model, mdata, store=True\)"):
        pm.pl.cross_omic_network(mdata, show=False)
    with pytest.raises(KeyError, match=r"store=True"):
        pm.pl.variance_explained(mdata, show=False)
    maps = pm.tl.subtype_correlations(mdata, "subtype", store=True)
    from_table = pm.pl.subtype_correlations(maps, show=False)
    from_uns = pm.pl.subtype_correlations(mdata, show=False)
    for a, b in zip(from_table, from_uns, strict=True):
        np.testing.assert_allclose(a.get_images()[0].get_array(), b.get_images()[0].get_array())
        assert [t.get_text() for t in a.get_xticklabels()] == [t.get_text() for t in b.get_xticklabels()]
    with pytest.raises(TypeError, match="only apply when computing"):
        pm.pl.subtype_correlations(maps, method="spearman", show=False)
    pairs = pm.tl.cross_omic_associations(model, mdata, n_top=5, store=True)
    ax = pm.pl.cross_omic_network(mdata, n_edges=6, show=False)
    assert len(ax.collections[0].get_segments()) == min(6, int(pairs["significant"].sum()))
    with pytest.raises(ValueError, match="only the significant pairs"):
        pm.pl.cross_omic_network(mdata, significant_only=False, show=False)
    with pytest.raises(TypeError, match="only when `data` is a model"):
        pm.pl.cross_omic_network(pairs, n_top=3, show=False)


# -- enrichment over every modality -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sets():
    return pm.datasets.breast_tcga_feature_sets()


def test_enrichment_tests_every_modality_with_one_bh_correction(trained, sets):
    mdata, model = trained
    before = sets.copy()
    res = pm.tl.enrichment(model, sets)
    pd.testing.assert_frame_equal(sets, before)  # the user's net is not modified
    assert list(res.columns) == ["modality", "factor", "source", "size", "score", "pvalue", "qvalue"]
    assert set(res["modality"]) == set(mdata.mod)
    np.testing.assert_allclose(res["qvalue"], stats.false_discovery_control(res["pvalue"], method="bh"))
    assert (np.diff(res["qvalue"]) >= 0).all()
    differs = False
    for m in mdata.mod:
        own = sets[sets["modality"] == m]
        part = res[res["modality"] == m]
        # each modality is tested with its own rows of the net: every set of it with >= tmin members
        feats = set(mdata[m].var_names)
        big = own[own["target"].isin(feats)].groupby("source")["target"].nunique()
        assert set(part["source"]) == set(big.index[big >= 5])
        # the same tests as one modality alone; only the q-values differ (BH over the whole table)
        alone = pm.tl.enrichment(model, own, m)
        merged = part.merge(alone, on=["modality", "factor", "source"], suffixes=("", "_alone"))
        assert len(merged) == len(part) == len(alone)
        np.testing.assert_allclose(merged["pvalue"], merged["pvalue_alone"])
        np.testing.assert_allclose(alone["qvalue"], stats.false_discovery_control(alone["pvalue"]))
        differs |= not np.allclose(merged["qvalue"], merged["qvalue_alone"])
    assert differs
    # the MuData with stored results gives the same table
    copy = mdata.copy()
    model.store_results(copy, overwrite=True)
    pd.testing.assert_frame_equal(pm.tl.enrichment(copy, sets), res)


def test_enrichment_restricted_to_modalities_and_factors(trained, sets):
    _, model = trained
    two = pm.tl.enrichment(model, sets, modality=["mrna", "protein"])
    assert set(two["modality"]) == {"mrna", "protein"}
    np.testing.assert_allclose(two["qvalue"], stats.false_discovery_control(two["pvalue"]))
    one = pm.tl.enrichment(model, sets, "protein", factors=0)  # 0 is the first factor's position
    assert set(one["modality"]) == {"protein"} and set(one["factor"]) == {model.factor_names()[0]}
    assert set(pm.tl.enrichment(model, sets, factors=["factor_2"])["factor"]) == {"factor_2"}


def test_a_net_without_modality_column_is_matched_against_every_modality(trained, sets):
    _, model = trained
    protein = sets[sets["modality"] == "protein"].drop(columns="modality")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # modality=None skips the modalities the net never names, quietly
        res = pm.tl.enrichment(model, protein)
    assert set(res["modality"]) == {"protein"}
    pd.testing.assert_frame_equal(res, pm.tl.enrichment(model, sets[sets["modality"] == "protein"]))
    whole = pm.tl.enrichment(model, sets.drop(columns="modality"))
    assert set(whole["modality"]) == {"mrna", "mirna", "protein"}
    with pytest.warns(UserWarning, match=r"modalities \['mrna'\]; they are not tested"):
        asked = pm.tl.enrichment(model, protein, modality=["mrna", "protein"])
    assert set(asked["modality"]) == {"protein"}


def test_enrichment_errors(trained, sets):
    mdata, model = trained
    nowhere = pd.DataFrame({"source": ["s"] * 5, "target": [f"x{i}" for i in range(5)]})
    with pytest.raises(ValueError, match=r"No target of `net` is a feature of modalities \['mrna', 'mirna'"):
        pm.tl.enrichment(model, nowhere)
    wrong_ids = sets.assign(target=sets["target"] + "_v2")
    with pytest.raises(ValueError, match="rows with modality 'mrna' is a feature of it"):
        pm.tl.enrichment(model, wrong_ids)
    with pytest.warns(UserWarning, match=r"modalities \['rna'\], which the data do not have"):
        with pytest.raises(ValueError, match="names none of the modalities"):
            pm.tl.enrichment(model, sets.assign(modality="rna"))
    with pytest.raises(ValueError, match=r"`net` has no rows with modality \['mrna'\]"):
        pm.tl.enrichment(model, sets[sets["modality"] == "protein"], "mrna")
    with pytest.raises(KeyError, match="Unknown modality 'rna'"):
        pm.tl.enrichment(model, sets, ["protein", "rna"])
    with pytest.raises(ValueError, match="empty list"):
        pm.tl.enrichment(model, sets, [])
    with pytest.raises(TypeError, match="`modality` must be"):
        pm.tl.enrichment(model, sets, 3)
    with pytest.raises(ValueError, match="lower `tmin`"):
        pm.tl.enrichment(model, sets, "protein", tmin=500)
    with pytest.raises(KeyError, match=r"store_results"):
        pm.tl.enrichment(pm.datasets.breast_tcga(), sets)


def test_store_results_keeps_what_tl_stored_and_refuses_only_its_own_entries(trained):
    mdata, model = trained
    copy = mdata.copy()
    pm.tl.variance_explained(model, copy, store=True)  # a tl result first: store_results must still store
    model.store_results(copy)
    assert "variance_explained" in copy.uns["poems"] and copy.uns["poems"]["factors"] == model.factor_names()
    with pytest.raises(ValueError, match=r"uns\['poems'\]\['factors'\].*overwrite=True"):
        model.store_results(copy)
    # overwriting replaces the model's entries, keeps the tl results and drops a stale entry of an earlier model
    copy.uns["poems"] = {**copy.uns["poems"], "covariates": np.array(["stale"])}
    model.store_results(copy, overwrite=True)
    assert "variance_explained" in copy.uns["poems"] and "covariates" not in copy.uns["poems"]
