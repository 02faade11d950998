"""Feature sets in the prior (``POEMS(feature_sets=...)``): input checks, the prior they set, names through every
output, and what training does to planted sets.
"""

from __future__ import annotations

import math

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scvi

import poems_mu as pm
from poems_mu.data._feature_sets import START_SCALE

FAST = {"max_epochs": 3, "n_epochs_kl_warmup": 1, "enable_progress_bar": False}


def _planted(seed: int = 0, n: int = 300):
    """Two modalities from 2 factors. Factor 0 drives a0-a19 and b0-b9, factor 1 drives a20-a39 and b10-b19; a40-a59
    and b20-b39 are noise. Feature a19 is driven by factor 0 much more strongly than the others.
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    mods = {}
    for name, d, blocks in (("a", 60, [(0, 20), (20, 40)]), ("b", 40, [(0, 10), (10, 20)])):
        w = np.zeros((d, 2))
        for f, (lo, hi) in enumerate(blocks):
            w[lo:hi, f] = rng.choice([-1, 1], hi - lo) * rng.uniform(0.8, 1.5, hi - lo)
        if name == "a":
            w[19, 0] = 3.0
        x = z @ w.T + 0.5 * rng.normal(size=(n, d))
        mods[name] = ad.AnnData(x.astype(np.float32))
        mods[name].obs_names = [f"s{i}" for i in range(n)]
        mods[name].var_names = [f"{name}{j}" for j in range(d)]
    return md.MuData(mods)


def _sets():
    """``f0``: factor 0's features but a18, a19 (left out) and with 5 noise features of a (wrong members); ``decoy``:
    10 noise features of b.
    """
    rows = [("a", "f0", f"a{j}") for j in range(18)] + [("a", "f0", f"a{j}") for j in range(40, 45)]
    rows += [("b", "f0", f"b{j}") for j in range(10)]
    rows += [("b", "decoy", f"b{j}") for j in range(25, 35)]
    return pd.DataFrame(rows, columns=["modality", "source", "target"])


def _model(mdata=None, sets=None, **kwargs):
    mdata = _planted() if mdata is None else mdata
    pm.POEMS.setup_mudata(mdata)
    return pm.POEMS(mdata, feature_sets=_sets() if sets is None else sets, n_latent=4, **kwargs)


# -- input -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda t: t.assign(modality=t["modality"].replace("b", "c")), ValueError, r"modalities \['c'\]"),
        (lambda t: pd.concat([t, t.iloc[[0]]]), ValueError, "'f0' lists feature 'a0' of modality 'a' more than"),
        (lambda t: t.drop(columns="target"), ValueError, "lacks the column"),
        (lambda t: t.assign(source=[1] * len(t)), TypeError, "'source' of `feature_sets` must be a non-empty string"),
        (lambda t: t.assign(target=t["target"].where(t["source"] != "decoy", "x" + t["target"])), ValueError, "decoy"),
        (lambda t: t.assign(source=t["source"].replace("decoy", "factor_2")), ValueError, "names of free factors"),
        (lambda t: t.iloc[:0], ValueError, "holds no set"),
    ],
)
def test_bad_feature_sets_are_refused_with_the_set_or_modality_named(change, error, match):
    mdata = _planted()
    pm.POEMS.setup_mudata(mdata)
    with pytest.raises(error, match=match):
        pm.POEMS(mdata, feature_sets=change(_sets()))


def test_other_bad_arguments_are_refused():
    mdata = _planted()
    pm.POEMS.setup_mudata(mdata)
    with pytest.raises(TypeError, match="mapping"):
        pm.POEMS(mdata, feature_sets=[("a", "f0", "a0")])
    with pytest.raises(ValueError, match="decoder='sparse'"):
        pm.POEMS(mdata, feature_sets=_sets(), decoder="dense", factor_start="random")
    for bad in (0.5, 1.0, "high"):
        with pytest.raises(ValueError, match="feature_set_confidence"):
            pm.POEMS(mdata, feature_sets=_sets(), feature_set_confidence=bad)


def test_the_users_table_is_not_modified_and_both_forms_give_the_same_model():
    sets = _sets()
    before = sets.copy()
    table_model = _model(sets=sets)
    pd.testing.assert_frame_equal(sets, before)
    per_modality = {m: sets[sets["modality"] == m][["source", "target"]] for m in ("b", "a")}
    mapping_model = _model(sets=per_modality)
    assert table_model.factor_names() == mapping_model.factor_names()
    assert table_model.factor_names()[:2] == ["f0", "decoy"]
    assert table_model.factor_names()[2:] == ["factor_1", "factor_2", "factor_3", "factor_4"]
    assert (
        table_model.init_params_["non_kwargs"]["feature_sets"]
        == mapping_model.init_params_["non_kwargs"]["feature_sets"]
    )


def test_absent_targets_are_left_out_and_a_set_may_skip_a_modality():
    sets = pd.concat([_sets(), pd.DataFrame([("a", "f0", "not_a_feature")], columns=["modality", "source", "target"])])
    model = _model(sets=sets)
    record = model.init_params_["non_kwargs"]["feature_sets"]
    assert "not_a_feature" not in record["a"]["target"]
    assert "decoy" not in record["a"]["source"]  # listed in b only


# -- the prior --------------------------------------------------------------------------------------------------------
def test_the_sets_set_the_prior_odds_of_their_links_and_leave_the_rest_to_theta():
    model = _model(feature_set_confidence=0.9)
    logit = math.log(0.9 / 0.1)
    prior_a, prior_b = model.module.priors
    assert prior_a.prior_logit[0, 0] == pytest.approx(logit)  # a0 in f0
    assert prior_a.prior_logit[41, 0] == pytest.approx(logit)  # a wrong member is a member for the prior
    assert prior_a.prior_logit[19, 0] == pytest.approx(-logit)  # left out
    assert not prior_a.prior_given[:, 1].any()  # decoy has no entry in a: theta
    assert prior_b.prior_given[:, 1].all()
    assert not prior_a.prior_given[:, 2:].any() and not prior_b.prior_given[:, 2:].any()  # free factors
    # a fresh annotated factor links its members only, in the modalities that list its set
    w = model.module.decoders[0].W.detach()
    assert (w[18:40, 0] == 0).all() and (w[:18, 0] != 0).all() and (w[:, 1] == 0).all()
    assert (model.module.decoders[1].W.detach()[25:35, 1] != 0).all()
    # at the same |w| the E-step puts a member's link in the slab more readily than another feature's
    prior_a.e_step(torch_full_like(model.module.decoders[0].W, 0.05))
    assert prior_a.p_star[0, 0] > 0.5 > prior_a.p_star[19, 0]


def test_an_annotated_factor_starts_as_its_sets_first_component_and_pays_the_factor_penalty_of_its_size():
    mdata = _planted()
    model = _model(mdata)
    w = model.module.decoders[0].W.detach().numpy()[:18, 0]  # the true members of f0 in a
    x = np.asarray(mdata.mod["a"].X, dtype=np.float64)[:, :18]
    x = (x - x.mean(0)) / x.std(0)
    pc = np.linalg.svd(x - x.mean(0), full_matrices=False)[2][0]
    assert abs(np.corrcoef(w, pc)[0, 1]) > 0.99
    assert np.abs(model.module.decoders[0].W.detach()[:, 0]).max() == pytest.approx(START_SCALE)
    weights = model.module.factor_penalty_weights
    lam = model.module.hparams.lambda_factor
    assert weights[0] == pytest.approx(lam * math.sqrt(33)) and weights[1] == pytest.approx(lam * math.sqrt(10))
    assert weights[2] == pytest.approx(lam * math.sqrt(100))


def test_a_set_whose_members_do_not_co_vary_starts_as_a_free_factor():
    sets = pd.concat(
        [_sets(), pd.DataFrame({"modality": "a", "source": "mixed", "target": [f"a{j}" for j in (2, 25, 41, 47, 55)]})]
    )
    scvi.settings.seed = 0
    model = _model(sets=sets)
    p = dict(zip(model.feature_set_names, model.module.set_start_p.numpy(), strict=True))
    assert p["f0"] == pytest.approx(1 / 200)  # no random set of its size co-varies as much
    assert p["decoy"] > 0.05 and p["mixed"] > 0.05
    again = _model(sets=sets)  # a fixed random stream: the same test whatever the seed
    np.testing.assert_array_equal(again.module.set_start_p.numpy(), model.module.set_start_p.numpy())
    w_a, w_b = (d.W.detach().numpy() for d in model.module.decoders)
    assert np.abs(w_a[:, 0]).max() == pytest.approx(START_SCALE)  # f0 starts as its first component
    k_decoy, k_mixed = model.feature_set_names.index("decoy"), model.feature_set_names.index("mixed")
    decoy, mixed = w_b[25:35, k_decoy], w_a[[2, 25, 41, 47, 55], k_mixed]
    for start in (decoy, mixed):  # the others as free factors do: random links on their members only
        assert np.abs(start).max() != pytest.approx(START_SCALE) and np.std(start) > 0
    assert np.count_nonzero(w_b[:, k_decoy]) == 10 and np.count_nonzero(w_a[:, k_mixed]) == 5
    assert not w_a[:, k_decoy].any() and not w_b[:, k_mixed].any()


def test_a_started_sets_encoder_unit_starts_at_its_scores_and_a_decoys_does_not():
    import torch

    scvi.settings.seed = 0
    mdata = _planted()
    model = _model(mdata)
    module = model.module
    x = np.asarray(mdata.mod["a"].X, dtype=np.float64)
    members = x[:, :18]  # f0's members in a (all true)
    pc = np.linalg.svd(members - members.mean(0), full_matrices=False)[0][:, 0]
    with torch.no_grad():
        module.encoders[0].eval()
        view = (x - x.mean(0)) / x.std(0)
        mean = module.encoders[0](torch.as_tensor(view, dtype=torch.float32))[0].numpy()
    assert abs(np.corrcoef(mean[:, 0], pc)[0, 1]) > 0.9  # f0's unit reads its set's component from the start
    assert abs(np.corrcoef(mean[:, 0], pc)[0, 1]) > abs(np.corrcoef(mean[:, 2], pc)[0, 1]) + 0.5  # not a free one
    decoy = pm.POEMS(mdata, feature_sets=_sets().query("source == 'decoy'"), n_latent=4)
    assert np.isnan(decoy._set_scores).all()  # not started: no score, its encoder units keep their random start


def torch_full_like(t, value):
    import torch

    return torch.full_like(t.detach(), value)


# -- training -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained():
    scvi.settings.seed = 0
    model = _model()
    model.train(enable_progress_bar=False)
    return model


@pytest.mark.slow
def test_a_planted_set_is_recovered_its_wrong_members_dropped_and_a_driven_feature_added(trained):
    from sklearn.metrics import roc_auc_score

    w = np.abs(trained.get_loadings("a")["f0"].to_numpy())
    truth = np.arange(60) < 20
    assert roc_auc_score(truth, w) > 0.95
    refined = pm.tl.refined_sets(trained)
    f0 = refined[(refined["set"] == "f0") & (refined["modality"] == "a")].set_index("feature")
    wrong = [f"a{j}" for j in range(40, 45)]
    true_members = [f"a{j}" for j in range(18)]
    dropped = f0["status"] == "dropped"
    assert dropped.reindex(wrong).mean() > dropped.reindex(true_members).mean()
    assert f0.loc["a19", "status"] == "added" and not f0.loc["a19", "in_set"]
    assert set(f0.index) >= set(wrong + true_members)


@pytest.mark.slow
def test_a_decoy_set_ends_inactive_and_the_planted_set_carries_its_factor(trained):
    summary = pm.tl.feature_set_summary(trained)
    assert list(summary.index) == ["f0", "decoy"]
    assert not summary.loc["decoy", "active"] and summary.loc["decoy", "kept"] == 0
    assert summary.loc["f0", "active"] and min(summary.loc["f0", "r2_a"], summary.loc["f0", "r2_b"]) > 0.1
    assert summary.loc["f0", "members"] == 33 and summary.loc["decoy", "members"] == 10
    # the free factors left: factor 1 of the data, and no second copy of factor 0
    z = trained.get_latent_representation()
    names = trained.factor_names()
    free = [k for k, n in enumerate(names) if n.startswith("factor_")]
    corr = np.abs(np.corrcoef(z.T))[names.index("f0"), free]
    assert corr.max() < 0.5


MIXED = [f"a{j}" for j in (2, 7, 21, 25, 29, 33, 41, 47, 55)] + [f"b{j}" for j in (3, 12, 16, 30)]


@pytest.mark.slow
def test_a_set_of_features_from_several_factors_does_not_take_the_factor_no_set_claims():
    """``mixed`` lists features of both planted factors and noise; factor 1 has no set of its own, so a free factor
    must carry it, not ``mixed``."""
    mixed = pd.DataFrame({"modality": [t[0] for t in MIXED], "source": "mixed", "target": MIXED})
    scvi.settings.seed = 0
    model = _model(sets=pd.concat([_sets(), mixed]))
    model.train(enable_progress_bar=False)
    summary = pm.tl.feature_set_summary(model)
    assert not summary.loc["mixed", "started"] and not summary.loc["mixed", "active"]
    assert summary.loc["f0", "started"] and summary.loc["f0", "active"]
    z, names = model.get_latent_representation(), model.factor_names()
    free = [k for k, n in enumerate(names) if n.startswith("factor_")]
    a = np.asarray(model.adata.mod["a"].X, dtype=np.float64)
    factor_1 = a[:, 20:40] @ np.sign(np.corrcoef(a[:, 20:40].T)[0])  # the planted factor 1, up to scale
    assert max(abs(np.corrcoef(z[:, k], factor_1)[0, 1]) for k in free) > 0.9


@pytest.mark.slow
def test_set_names_follow_the_factors_through_save_load_h5mu_and_a_query(trained, tmp_path, monkeypatch):
    from poems_mu.data._feature_sets import FeatureSets

    names = trained.factor_names()
    assert names[:2] == ["f0", "decoy"]
    assert list(pm.tl.active_factors(trained).index) == names
    assert list(trained.get_loadings("b").columns) == names
    trained.save(tmp_path / "m")

    def no_test(*args, **kwargs):
        raise AssertionError("loading a model must not run the sets' start test again")

    with monkeypatch.context() as patched:
        patched.setattr(FeatureSets, "starts", no_test)
        loaded = pm.POEMS.load(tmp_path / "m", adata=trained.adata)
    assert loaded.factor_names() == names
    np.testing.assert_allclose(loaded.get_latent_representation(), trained.get_latent_representation(), atol=1e-6)
    pd.testing.assert_frame_equal(pm.tl.refined_sets(loaded), pm.tl.refined_sets(trained))
    summary = pm.tl.feature_set_summary(loaded)  # the start's test comes back with the saved state
    pd.testing.assert_frame_equal(summary, pm.tl.feature_set_summary(trained))
    assert summary.loc["f0", "start_p"] == pytest.approx(1 / 200) and not summary.loc["decoy", "started"]
    mdata = trained.adata.copy()
    trained.store_results(mdata)
    mdata.write(tmp_path / "r.h5mu")
    back = md.read_h5mu(tmp_path / "r.h5mu")
    assert list(back.uns["poems"]["factors"]) == names
    query = _planted(seed=1, n=40)
    assert trained.get_latent_representation(query).shape == (40, len(names))


def test_refined_sets_need_a_model_with_sets():
    mdata = _planted(n=60)
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=3)
    model.train(**FAST)
    with pytest.raises(ValueError, match="no feature sets"):
        pm.tl.refined_sets(model)
    with pytest.raises(TypeError, match="trained poems_mu.POEMS model"):
        pm.tl.refined_sets(mdata)


def test_a_training_checkpoint_keeps_the_sets(tmp_path):
    mdata = _planted(n=80)
    model = _model(mdata)
    model.train(**FAST, checkpoint_dir=str(tmp_path / "ck"), checkpoint_every=1)
    back = pm.POEMS.load(tmp_path / "ck", mdata)
    assert back.factor_names() == model.factor_names()
    for p, q in zip(back.module.priors, model.module.priors, strict=True):
        np.testing.assert_array_equal(p.prior_logit.numpy(), q.prior_logit.numpy())
        np.testing.assert_array_equal(p.prior_given.numpy(), q.prior_given.numpy())
    np.testing.assert_array_equal(back.get_loadings("a").to_numpy(), model.get_loadings("a").to_numpy())


def test_sets_work_with_counts_mutations_covariates_and_missing_samples():
    from poems_mu.datasets._synthetic import make_mixed_mudata

    mdata = make_mixed_mudata(n=80, seed=0, batch_shift=1.0)
    prot = mdata.mod["prot"]
    mdata.mod["prot"] = prot[:8].copy()  # 8 samples with protein: too few for one component over both
    mdata.update()
    sets = pd.DataFrame(
        [("rna", "s1", f"rna_{j}") for j in range(8)]
        + [("prot", "s1", f"prot_{j}") for j in range(5)]
        + [("mut", "s2", f"mut_{j}") for j in range(6)],
        columns=["modality", "source", "target"],
    )
    pm.POEMS.setup_mudata(mdata, batch_key="batch", continuous_covariate_keys=["age"])
    model = pm.POEMS(mdata, feature_sets=sets, n_latent=3, likelihood={"rna": "nb", "mut": "bernoulli"})
    start = [d.W.detach().numpy().copy() for d in model.module.decoders]
    # s1 is tested per modality (8 samples have both), s2 in mut; every start stays on the members of its modality
    assert np.isfinite(model.module.set_start_p.numpy()).all()
    assert (start[0][8:, 0] == 0).all() and (start[1][5:, 0] == 0).all() and (start[2][6:, 1] == 0).all()
    assert (start[2][:, 0] == 0).all() and (start[0][:, 1] == 0).all() and (start[1][:, 1] == 0).all()
    model.train(**FAST)
    assert model.factor_names()[:2] == ["s1", "s2"]
    assert np.isfinite(model.get_latent_representation()).all()
    table = pm.tl.refined_sets(model)
    assert set(table["modality"]) <= {"rna", "prot", "mut"}
    assert set(table.loc[table["set"] == "s2", "modality"]) == {"mut"}


def test_the_link_path_gives_the_same_model_with_sets():
    fits = {}
    for links in ("dense", "sparse"):
        scvi.settings.seed = 5
        model = _model(_planted(n=80), decoder_links=links)
        # two epochs: the paths agree to ~1e-8 here; from then on Adam's normalised step can turn such a difference
        # at a link on the proximal threshold into a visible one (2e-3 after a third epoch with this seed)
        model.train(**(FAST | {"max_epochs": 2}))
        fits[links] = model
    np.testing.assert_allclose(
        fits["sparse"].get_loadings("a").to_numpy(), fits["dense"].get_loadings("a").to_numpy(), atol=1e-6
    )
    assert fits["sparse"].factor_names() == fits["dense"].factor_names()
