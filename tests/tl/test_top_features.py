"""pm.tl.top_features: ranking by effective loading, directions, the p* threshold, stored MuData."""

import warnings

import anndata as ad
import matplotlib
import mudata as md
import numpy as np
import pandas as pd
import pytest
from _tl_toy import K_TRUE, observed

import poems_mu as pm

matplotlib.use("Agg")


# ---------------------------------------------------------------------------------------------------------------
# top_features
# ---------------------------------------------------------------------------------------------------------------
def test_top_features_ranks_by_effective_loading(trained):
    mdata, model = trained
    df = pm.tl.top_features(model, n=5)
    assert list(df.columns) == [
        "modality",
        "factor",
        "rank",
        "feature",
        "effective",
        "effective_signed",
        "direction",
        "abs_weight",
        "pstar",
        "pstar_threshold",
        "pstar_informative",
        "corr",
        "strength",
    ]
    assert len(df) == 2 * K_TRUE * 5
    differs = 0
    for (mod, fac), sub in df.groupby(["modality", "factor"]):
        W, E = model.get_loadings(mod), model.get_effective_loadings(mod)
        S = model.get_effective_loadings(mod, signed=True)
        assert sub["rank"].tolist() == [1, 2, 3, 4, 5]
        expected = E[fac].sort_values(ascending=False, kind="stable").index[:5].tolist()
        assert sub["feature"].tolist() == expected
        by_w = W[fac].abs().sort_values(ascending=False, kind="stable").index[:5].tolist()
        differs += by_w != expected
        np.testing.assert_allclose(sub["effective"], E.loc[sub["feature"], fac], rtol=1e-6)
        np.testing.assert_allclose(sub["effective_signed"], S.loc[sub["feature"], fac], rtol=1e-6)
        assert (sub["direction"].to_numpy() == np.sign(S.loc[sub["feature"], fac].to_numpy())).all()
        assert set(sub["direction"]) <= {-1, 1}  # the top loaders all have an effect
        np.testing.assert_allclose(sub["abs_weight"], W.loc[sub["feature"], fac].abs(), rtol=1e-6)
        np.testing.assert_allclose(sub["pstar"], model.get_slab_probabilities(mod).loc[sub["feature"], fac], rtol=1e-6)
        np.testing.assert_allclose(sub["strength"], E.loc[sub["feature"]].sum(1), rtol=1e-6)
        assert (sub["effective_signed"].abs() <= sub["effective"] * (1 + 1e-6)).all()
    # |W| only bounds the effect: on this model its order differs from the effective loadings' for some factors
    assert differs > 0


def test_top_features_direction_and_observed_correlation(trained):
    mdata, model = trained
    df = pm.tl.top_features(model, "b", factor="factor_2", n=4)
    assert set(df["modality"]) == {"b"} and set(df["factor"]) == {"factor_2"}
    z = model.get_latent_representation()
    pos, x = observed(mdata, "b")
    for row in df.itertuples():
        j = list(mdata.mod["b"].var_names).index(row.feature)
        r = np.corrcoef(z[pos, 1], x[:, j])[0, 1]
        assert row.corr == pytest.approx(r, abs=1e-6)
    # the factor's strongest loaders move with it, in the direction the decoder gives them
    assert df["corr"].abs().min() > 0.5
    assert (np.sign(df["corr"]).to_numpy() == df["direction"].to_numpy()).all()
    none = pm.tl.top_features(model, "b", factor="factor_2", n=4, with_corr=False)
    assert none["corr"].isna().all()
    pd.testing.assert_frame_equal(none.drop(columns="corr"), df.drop(columns="corr"))


def test_top_features_pstar_threshold_by_hand(trained):
    mdata, model = trained
    df = pm.tl.top_features(model, n=3)
    table = model.active_factors()
    for (mod, fac), sub in df.groupby(["modality", "factor"]):
        theta = table.loc[fac, f"theta_{mod}"]
        lam0, lam1 = model.module.hparams.lambda0, model.module.hparams.lambda1
        threshold = max(np.log((1 - theta) / theta * lam0 / lam1) / (lam0 - lam1), 0.0)
        np.testing.assert_allclose(sub["pstar_threshold"], threshold, rtol=1e-5)
        aw = model.get_loadings(mod)[fac].abs()
        assert (sub["pstar_informative"] == (0 < threshold < aw.max())).all()
        # the threshold is where p* crosses 0.5
        pstar = model.get_slab_probabilities(mod)[fac]
        assert ((pstar > 0.5) == (aw > threshold)).all()
    # on this model θ_k stays well above its floor (0.13-0.18): the top links are in the slab and p* says so
    assert df["pstar_informative"].all() and (df["pstar"] > 0.5).all()


def _stored(w, eff, signed, theta=None, params=None):
    """A one-modality MuData with stored results written by hand (features × 2 factors)."""
    d = w.shape[0]
    adata = ad.AnnData(np.zeros((4, d)), obs=pd.DataFrame(index=[f"s{i}" for i in range(4)]))
    adata.var_names = [f"g{j}" for j in range(d)]
    adata.varm["poems_W"] = w
    adata.varm["poems_effective"] = eff
    adata.varm["poems_effective_signed"] = signed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"m": adata})
    mdata.uns["poems"] = {"modalities": ["m"], "factors": ["factor_1", "factor_2"]}
    if theta is not None:
        mdata.uns["poems"]["theta"] = {"m": np.asarray(theta)}
    if params is not None:
        mdata.uns["poems"]["params"] = params
    return mdata


def test_top_features_from_a_stored_mudata_by_hand():
    w = np.array([[0.9, 0.0], [0.3, -0.2], [-0.5, 0.05], [0.0, 0.0]])
    eff = np.array([[0.2, 0.0], [0.6, 0.3], [0.4, 0.1], [0.0, 0.0]])  # |W| order 0, 2, 1; effective order 1, 2, 0
    signed = np.array([[0.1, 0.0], [-0.5, 0.3], [0.4, -0.1], [0.0, 0.0]])
    theta = np.array([0.05, 1e-4])
    mdata = _stored(w, eff, signed, theta, '{"lambda0": 20.0, "lambda1": 2.0}')
    df = pm.tl.top_features(mdata, factor=0, n=4, with_corr=False)
    assert df["feature"].tolist() == ["g1", "g2", "g0", "g3"]
    assert df["direction"].tolist() == [-1, 1, 1, 0]
    np.testing.assert_allclose(df["abs_weight"], [0.3, 0.5, 0.9, 0.0])
    assert df["pstar"].isna().all() and df["corr"].isna().all()
    # p* > 0.5 iff |w| > log((1 − θ)/θ · λ0/λ1) / (λ0 − λ1)
    t1, t2 = np.log(0.95 / 0.05 * 10) / 18, np.log((1 - 1e-4) / 1e-4 * 10) / 18
    assert t1 == pytest.approx(0.2915, abs=1e-4) and t2 == pytest.approx(0.6396, abs=1e-4)
    np.testing.assert_allclose(df["pstar_threshold"], t1)
    assert df["pstar_informative"].all()  # |W| = 0.9 clears it
    second = pm.tl.top_features(mdata, factor="factor_2", n=2, with_corr=False)
    np.testing.assert_allclose(second["pstar_threshold"], t2)
    assert not second["pstar_informative"].any()  # max |W| = 0.2: p* < 0.5 for every link of factor_2
    agg = pm.tl.top_features(mdata, factor=[0, 1], n=3, aggregate=True, with_corr=False)
    assert agg["feature"].tolist() == ["g1", "g2", "g0"]  # strength = summed effective loadings 0.9, 0.5, 0.2
    np.testing.assert_allclose(agg["strength"], [0.9, 0.5, 0.2])
    assert agg["factor"].tolist() == ["factor_1"] * 3  # the dominant factor by effective loading
    # θ ≥ λ0/(λ0 + λ1): even a zero link has p* ≥ 0.5, so p* says nothing
    high = pm.tl.top_features(_stored(w, eff, signed, [0.95, 0.5], "{}"), factor=0, n=1, with_corr=False)
    assert high["pstar_threshold"].iloc[0] == 0 and not high["pstar_informative"].iloc[0]


def test_top_features_needs_the_stored_effective_loadings():
    w = np.array([[0.9, 0.0], [0.3, -0.2]])
    mdata = _stored(w, w, w)
    del mdata.mod["m"].varm["poems_effective_signed"]
    with pytest.raises(KeyError, match=r"model\.store_results\(mdata\)"):
        pm.tl.top_features(mdata, with_corr=False)


def test_top_features_factor_selection_and_aggregate(trained):
    mdata, model = trained
    by_pos = pm.tl.top_features(model, "a", factor=[0, 2], n=3)
    by_name = pm.tl.top_features(model, "a", factor=["factor_1", "factor_3"], n=3)
    pd.testing.assert_frame_equal(by_pos, by_name)
    agg = pm.tl.top_features(model, "a", factor=[0, 2], n=6, aggregate=True)
    E = model.get_effective_loadings("a")[["factor_1", "factor_3"]]
    strength = E.sum(1).sort_values(ascending=False)
    assert agg["feature"].tolist() == strength.index[:6].tolist()
    np.testing.assert_allclose(agg["strength"], strength.iloc[:6], rtol=1e-6)
    # the reported factor is the dominant one among those selected, and the link columns are its
    assert agg["factor"].tolist() == E.loc[agg["feature"]].idxmax(axis=1).tolist()
    np.testing.assert_allclose(agg["effective"], E.loc[agg["feature"]].max(axis=1), rtol=1e-6)


def test_top_features_from_stored_mudata_matches_model(trained):
    mdata, model = trained
    from_model = pm.tl.top_features(model, n=3)
    from_mdata = pm.tl.top_features(mdata, n=3)
    pd.testing.assert_frame_equal(from_model, from_mdata, check_exact=False, rtol=1e-5)


def test_top_features_bad_arguments(trained):
    _, model = trained
    with pytest.raises(ValueError, match="Unknown factor"):
        pm.tl.top_features(model, factor="factor_99")
    with pytest.raises(ValueError, match="out of range"):
        pm.tl.top_features(model, factor=K_TRUE)  # the kept factors are numbered 0..K_TRUE-1
    with pytest.raises(ValueError, match="not available"):
        pm.tl.top_features(model, "protein")
    with pytest.raises(ValueError, match="positive integer"):
        pm.tl.top_features(model, n=0)
