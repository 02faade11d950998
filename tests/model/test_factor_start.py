"""``POEMS(factor_start="pca")``: the free factors start at the rotated components of a joint PCA (links and encoder
units), as many as parallel analysis finds; the helpers of :mod:`poems_mu.data._factor_start`.
"""

from __future__ import annotations

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scvi
import torch

import poems_mu as pm
from poems_mu.data import _factor_start as fs

FAST = {"max_epochs": 3, "n_epochs_kl_warmup": 1, "enable_progress_bar": False}


def _planted(seed: int = 0, n: int = 200, missing_b: int = 30):
    """Modalities a (60 features) and b (40) from 3 factors, each on its own block of features; the last
    ``missing_b`` samples lack b."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    mods = {}
    for name, d in (("a", 60), ("b", 40)):
        w = np.zeros((d, 3))
        block = d // 4
        for f in range(3):
            w[f * block : (f + 1) * block, f] = rng.choice([-1, 1], block) * rng.uniform(0.8, 1.5, block)
        x = z @ w.T + 0.5 * rng.normal(size=(n, d))
        keep = slice(None) if name == "a" else slice(0, n - missing_b)
        mods[name] = ad.AnnData(x[keep].astype(np.float32))
        mods[name].obs_names = [f"s{i}" for i in range(n)][keep]
        mods[name].var_names = [f"{name}{j}" for j in range(d)]
    return md.MuData(mods), z


def _model(mdata, seed: int = 0, **kwargs):
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(mdata)
    return pm.POEMS(mdata, n_latent=6, **kwargs)


def test_the_planted_factors_start_in_the_links_and_the_encoders_and_the_rest_keep_the_random_start():
    mdata, z = _planted()
    model = _model(mdata, factor_start="pca")
    start = model._free_start
    assert start.n_above_noise == 3 and start.scores.shape == (200, 3)
    w_a = model.module.decoders[0].W.detach().numpy()
    np.testing.assert_array_equal(w_a[:, :3], start.links[0].astype(np.float32))
    assert np.abs(np.concatenate([w[:, :3] for w in start.links])).max() == pytest.approx(fs.START_SCALE)
    # varimax puts each planted block on one started factor
    for f in range(3):
        block = np.abs(w_a[f * 15 : (f + 1) * 15, :3]).mean(0)
        assert block.max() > 5 * np.sort(block)[-2]
    # the started units of the encoder of a read the planted factors from the start; a random unit does not
    module = model.module
    x = np.asarray(mdata.mod["a"].X, dtype=np.float64)
    with torch.no_grad():
        module.encoders[0].eval()
        mean = module.encoders[0](torch.as_tensor((x - x.mean(0)) / x.std(0), dtype=torch.float32))[0].numpy()
    corr = np.abs(np.corrcoef(mean.T, z.T)[:6, 6:])
    assert corr[:3].max(1).min() > 0.9
    assert corr[3:].max() < 0.6
    # the factors without a start keep the random initialisation of a model with the random start
    random = _model(mdata)
    np.testing.assert_array_equal(w_a[:, 3:], random.module.decoders[0].W.detach().numpy()[:, 3:])


def test_the_start_depends_on_the_data_not_on_the_seed_and_is_the_default():
    mdata, _ = _planted()
    one, two = _model(mdata, 0, factor_start="pca"), _model(mdata, 1, factor_start="pca")
    for a, b in zip(one._free_start.links, two._free_start.links, strict=True):
        np.testing.assert_array_equal(a, b)
    default = _model(mdata, 0)
    for a, b in zip(default.module.state_dict().values(), one.module.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # the random start leaves the network's own initialisation: no start is computed and W differs
    random = _model(mdata, 0, factor_start="random")
    assert random._free_start is None
    assert not torch.equal(random.module.decoders[0].W, one.module.decoders[0].W)


def test_bad_factor_start_is_refused_with_the_argument_named():
    mdata, _ = _planted()
    pm.POEMS.setup_mudata(mdata)
    with pytest.raises(ValueError, match="factor_start"):
        pm.POEMS(mdata, factor_start="svd")
    for kwargs in ({"decoder": "dense"}, {"factor_start": "pca", "decoder": "dense"}):
        with pytest.raises(ValueError, match="with decoder='dense' pass factor_start='random'"):
            pm.POEMS(mdata, **kwargs)
    assert pm.POEMS(mdata, factor_start="random", decoder="dense")._free_start is None


def test_with_feature_sets_the_free_factors_start_without_the_sets_signal():
    mdata, _ = _planted()
    sets = pd.DataFrame([("a", "block0", f"a{j}") for j in range(15)], columns=["modality", "source", "target"])
    model = _model(mdata, factor_start="pca", feature_sets=sets)
    set_scores = model._set_scores[:, 0]
    assert np.isfinite(set_scores).all()
    free = model._free_start.scores
    assert free.shape[1] >= 2
    assert np.abs(np.corrcoef(np.c_[set_scores, free].T)[0, 1:]).max() < 1e-6  # the set's component is projected out
    w = model.module.decoders[0].W.detach().numpy()
    np.testing.assert_array_equal(w[:, 1 : 1 + free.shape[1]], model._free_start.links[0].astype(np.float32))


def test_a_registered_batch_is_projected_out_of_the_start():
    """A batch shift is the decoders' to explain (they receive the covariate): with ``batch_key`` no started factor
    follows the batch, and parallel analysis counts the planted factors only; without it, one factor is the batch."""
    mdata, _ = _planted()
    batch = np.arange(200) % 2
    for name in ("a", "b"):
        adata = mdata[name]
        shift = np.where(np.random.default_rng(1).random(adata.n_vars) < 0.7, 2.0, 0.0)
        rows = batch[: adata.n_obs] == 1
        adata.X = np.asarray(adata.X) + rows[:, None] * shift[None, :].astype(np.float32)
    mdata.update()
    mdata.obs["batch"] = pd.Categorical(np.where(batch == 1, "b1", "b0"))

    def corr_with_batch(model):
        start = model._free_start
        return start.n_above_noise, np.abs(np.corrcoef(np.c_[batch, start.scores].T)[0, 1:]).max()

    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata, batch_key="batch")
    n, corr = corr_with_batch(pm.POEMS(mdata, n_latent=6))
    assert n == 3 and corr < 1e-6
    pm.POEMS.setup_mudata(mdata)
    n, corr = corr_with_batch(pm.POEMS(mdata, n_latent=6))
    assert n == 4 and corr > 0.9


def test_a_registered_batch_is_projected_out_of_a_feature_sets_start():
    """The sets start as the free factors do: with ``batch_key`` a batch shift shared by a set's members does not enter
    the set's starting score, which follows the planted factor; without it the set's first component is the batch."""
    mdata, z = _planted()
    batch = np.arange(200) % 2
    adata = mdata["a"]
    adata.X = np.asarray(adata.X) + 3.0 * (batch[:, None] == 1) * (np.arange(60) < 15)[None, :].astype(np.float32)
    mdata.update()
    mdata.obs["batch"] = pd.Categorical(np.where(batch == 1, "b1", "b0"))
    sets = pd.DataFrame([("a", "block0", f"a{j}") for j in range(15)], columns=["modality", "source", "target"])

    def set_score(**setup):
        scvi.settings.seed = 0
        pm.POEMS.setup_mudata(mdata, **setup)
        score = pm.POEMS(mdata, n_latent=6, feature_sets=sets)._set_scores[:, 0]
        return abs(np.corrcoef(score, batch)[0, 1]), abs(np.corrcoef(score, z[:, 0])[0, 1])

    to_batch, to_factor = set_score(batch_key="batch")
    assert to_batch < 1e-6 and to_factor > 0.9
    to_batch, to_factor = set_score()
    assert to_batch > 0.7 and to_factor < 0.7


def test_a_trained_model_with_the_start_saves_and_loads_without_starting_again(tmp_path, monkeypatch):
    mdata, _ = _planted()
    model = _model(mdata, factor_start="pca")
    model.train(**FAST, n_restarts=2)
    latent = model.get_latent_representation()
    model.save(tmp_path / "m")

    def refuse(*args, **kwargs):
        raise AssertionError("loading a model must not compute the start again")

    with monkeypatch.context() as patched:
        patched.setattr("poems_mu.model._poems.free_start", refuse)
        loaded = pm.POEMS.load(tmp_path / "m", adata=mdata)
    np.testing.assert_allclose(loaded.get_latent_representation(), latent, atol=1e-6)
    assert loaded.init_params_["non_kwargs"]["factor_start"] == "pca"


def test_each_restart_starts_again_from_the_components(monkeypatch):
    mdata, _ = _planted()
    model = _model(mdata, factor_start="pca")
    seen = []
    original = pm.model._training.start_factors

    def record(m, *args, **kwargs):
        views = original(m, *args, **kwargs)
        seen.append(m.module.decoders[0].W.detach().numpy()[:, :3].copy())
        return views

    monkeypatch.setattr(pm.model._training, "start_factors", record)
    model.train(**FAST, n_restarts=2)
    assert len(seen) == 1  # the second restart's fresh module
    np.testing.assert_array_equal(seen[0], model._free_start.links[0].astype(np.float32))


def test_the_restarts_of_one_train_call_read_the_views_once(monkeypatch):
    mdata, _ = _planted()
    model = _model(mdata, factor_start="pca")
    reads = []
    original = pm.model._starts.encoder_views

    def counted(*args, **kwargs):
        reads.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(pm.model._starts, "encoder_views", counted)
    model.train(**FAST, n_restarts=3)
    assert len(reads) == 1  # read for the second restart, reused by the third


# -- the helpers --------------------------------------------------------------------------------------------------
def test_parallel_analysis_counts_the_planted_components_and_none_in_noise():
    rng = np.random.default_rng(2)
    noise = rng.normal(size=(150, 60))
    scores, loadings = rng.normal(size=(150, 3)), rng.normal(size=(3, 60))
    for x, expected in ((noise, 0), (noise + 1.5 * scores @ loadings, 3)):
        x = x - x.mean(0)
        assert fs.parallel_analysis(x, np.linalg.svd(x, compute_uv=False)[:10]) == expected


def test_varimax_is_a_rotation_that_makes_mixed_simple_loadings_simple_again():
    simple = np.kron(np.eye(3), np.ones((10, 1)))  # 30 features, each on one of 3 factors
    angle = 0.5
    mix = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    rot = fs.varimax(simple @ mix)
    assert np.allclose(rot.T @ rot, np.eye(3), atol=1e-8)
    assert np.sort(np.abs(simple @ mix), axis=1)[:20, 1].min() > 0.4  # mixed: two loadings per feature
    assert np.sort(np.abs(simple @ mix @ rot), axis=1)[:, :2].max() < 1e-3  # rotated: one again


def test_the_joint_view_weighs_the_modalities_equally_and_puts_absent_samples_at_the_mean():
    rng = np.random.default_rng(3)
    wide, narrow = rng.normal(size=(50, 400)), rng.normal(size=(50, 4))
    narrow[:10] = np.nan
    x = fs.joint_view([wide, narrow])
    assert x.shape == (50, 404)
    np.testing.assert_allclose(x.mean(0), 0, atol=1e-12)
    share = (x[:, :400] ** 2).sum() / (x**2).sum()
    assert 0.4 < share < 0.6  # not 400 / 404
    # an absent sample sits where a sample at the modality's mean (0 before centring) would
    expected = -np.nansum(narrow / 2, axis=0) / 50
    np.testing.assert_allclose(x[:10, 400:], np.tile(expected, (10, 1)), atol=1e-12)


def test_the_joint_view_projects_out_the_started_sets_and_ignores_a_set_that_was_not_started():
    rng = np.random.default_rng(4)
    views = [rng.normal(size=(40, 12)), rng.normal(size=(40, 8))]
    scores = rng.normal(size=(40, 1))
    x = fs.joint_view(views, remove=scores)
    np.testing.assert_allclose((scores - scores.mean()).T @ x, 0, atol=1e-10)  # the set's span is gone
    not_started = np.full((40, 1), np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" for the set without scores
        y = fs.joint_view(views, remove=np.hstack([scores, not_started]))
    np.testing.assert_allclose(y, x, atol=1e-12)
