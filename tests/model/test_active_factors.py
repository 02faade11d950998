"""POEMS.active_factors / tl.active_factors: the rule and its evidence."""

import mudata
import numpy as np
import pytest
import torch

import poems_mu as pm
from poems_mu.model._factors import MIN_LINK_WEIGHT, MIN_SCORE_VARIANCE


@pytest.fixture(scope="module")
def trained(breast_trained):
    return breast_trained


def _with_a_factor_cut_off(model, mdata, path):
    """A copy of ``model`` whose most variable factor reaches no feature (W[:, k] = 0), and k."""
    model.save(path)
    other = pm.POEMS.load(path, mdata)
    k = int(np.argmax(pm.tl.active_factors(other, with_r2=False)["score_variance"]))
    with torch.no_grad():
        for dec in other.module.decoders:
            dec.W[:, k] = 0.0
    return other, k


def test_evidence_matches_the_model(trained):
    mdata, model = trained
    table = pm.tl.active_factors(model)
    assert list(table.index) == model.factor_names()
    z = model.get_latent_representation()
    np.testing.assert_allclose(table["score_variance"], z.var(0, ddof=1), rtol=1e-5)
    for m in model.modalities:
        w = model.get_loadings(m).abs()
        assert (table[f"links_{m}"] == (w > MIN_LINK_WEIGHT).sum(0)).all()
        assert (table[f"slab_{m}"] == (model.get_slab_probabilities(m) > 0.5).sum(0)).all()
    reaches = sum(table[f"links_{m}"] for m in model.modalities) > 0
    assert (table["active"] == ((table["score_variance"] > MIN_SCORE_VARIANCE) & reaches)).all()
    assert table["active"].all()  # at the default rule, every factor the model kept
    r2 = pm.tl.variance_explained(model, store=False)
    for m in model.modalities:
        per = r2[(r2["modality"] == m) & (r2["factor"] != "total")].set_index("factor")["r2"]
        np.testing.assert_allclose(table[f"r2_{m}"], per.reindex(table.index))
    assert list(table.columns)[-1] == "active"
    assert "r2_mrna" not in pm.tl.active_factors(model, with_r2=False)


def test_a_factor_cut_off_from_every_feature_is_inactive(trained, tmp_path):
    mdata, model = trained
    other, k = _with_a_factor_cut_off(model, mdata, tmp_path / "m")
    table = pm.tl.active_factors(other)
    assert not table["active"].iloc[k]
    assert table["score_variance"].iloc[k] > 0.01  # the encoders still move it: the links decide
    assert all(table[f"links_{m}"].iloc[k] == 0 for m in other.modalities)


def test_thresholds_move_the_flag(trained):
    _, model = trained
    loose = pm.tl.active_factors(model, min_variance=0.0, min_weight=0.0)
    strict = pm.tl.active_factors(model, min_variance=1e6)
    assert loose["active"].sum() >= pm.tl.active_factors(model)["active"].sum()
    assert not strict["active"].any()
    table = pm.tl.active_factors(model)
    best_r2 = table[[f"r2_{m}" for m in model.modalities]].max(axis=1)
    cut = float(best_r2[table["active"]].median())
    by_r2 = pm.tl.active_factors(model, min_r2=cut)
    assert (by_r2["active"] == (table["active"] & (best_r2 >= cut))).all()
    assert 0 < by_r2["active"].sum() < table["active"].sum()


def test_bad_input(trained):
    mdata, model = trained
    with pytest.raises(ValueError, match="min_variance"):
        pm.tl.active_factors(model, min_variance=-1)
    with pytest.raises(ValueError, match="min_weight"):
        pm.tl.active_factors(model, min_weight=float("nan"))
    with pytest.raises(ValueError, match="min_r2"):
        pm.tl.active_factors(model, min_r2=2.0)
    with pytest.raises(TypeError, match="POEMS"):
        pm.tl.active_factors(mdata)
    with pytest.raises(ValueError, match="at least 2 samples"):
        pm.tl.active_factors(model, mdata[:1].copy())
    fresh = pm.datasets.breast_tcga()
    pm.POEMS.setup_mudata(fresh)
    untrained = pm.POEMS(fresh, n_latent=3)
    with pytest.raises(ValueError, match="not trained"):
        pm.tl.active_factors(untrained)


def test_store_results_records_the_flags_and_tl_pl_skip_inactive_factors(trained, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    mdata, model = trained
    other, k = _with_a_factor_cut_off(model, mdata, tmp_path / "m")
    name = other.factor_names()[k]
    flags = pm.tl.active_factors(other, with_r2=False)["active"]
    out = mdata.copy()
    pm.POEMS.setup_mudata(out)
    other.store_results(out, overwrite=True)
    rec = out.uns["poems"]["active_factors"]
    assert list(rec["factor"]) == other.factor_names()
    np.testing.assert_array_equal(rec["active"], flags.to_numpy())
    assert rec["rule"]["min_variance"] == MIN_SCORE_VARIANCE and rec["rule"]["min_weight"] == MIN_LINK_WEIGHT
    # the flags survive the h5mu round trip, and the MuData path reads them
    out.write(tmp_path / "out.h5mu")
    back = mudata.read_h5mu(tmp_path / "out.h5mu")
    for data in (other, back):
        shown = set(pm.tl.top_features(data, "protein", n=3, with_corr=False)["factor"])
        assert name not in shown and shown <= set(flags.index[flags])
        every = set(pm.tl.top_features(data, "protein", n=3, with_corr=False, include_inactive=True)["factor"])
        assert every == set(other.factor_names())
    # a factor asked for by name is shown even if inactive
    assert set(pm.tl.top_features(back, "protein", factor=name, n=3, with_corr=False)["factor"]) == {name}
    active_names = list(flags.index[flags])
    ax = pm.pl.factor_heatmap(back, "subtype", sort_factors=False, show=False)
    assert [t.get_text().split(" (η² ")[0] for t in ax.get_xticklabels()] == active_names
    ax = pm.pl.factor_heatmap(back, "subtype", include_inactive=True, sort_factors=False, show=False)
    assert [t.get_text().split(" (η² ")[0] for t in ax.get_xticklabels()] == other.factor_names()
    axs = pm.pl.loadings(back, "protein", show=False)
    assert f"{len(active_names)} of {len(flags)} factors" in np.atleast_1d(axs)[0].get_title()
