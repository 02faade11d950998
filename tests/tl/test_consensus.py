"""tl.consensus_embedding: one embedding of the samples from several runs."""

import numpy as np
import pytest
import scvi
from scipy.spatial.distance import pdist
from scipy.stats import ortho_group

import poems_mu as pm
from poems_mu.tl._consensus import consensus_scores, linear_cka


def _runs(n_runs=5, n=200, shared=3, noise=1.0, seed=0):
    """Embeddings of ``n`` samples that share ``shared`` directions, each run rotated, rescaled and with its own
    noise directions (two per run), as runs of one model with different seeds."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(n, shared))
    runs = []
    for r in range(n_runs):
        own = rng.normal(size=(n, 2)) * noise
        z = np.c_[truth + 0.5 * noise * rng.normal(size=truth.shape), own]
        runs.append(3.0 ** (r - 2) * z @ ortho_group.rvs(z.shape[1], random_state=r))
    return truth, runs


def test_the_consensus_of_rotated_copies_keeps_their_distances():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(50, 4)) * [3.0, 2.0, 1.0, 0.5]
    copies = [z, 7.0 * z @ ortho_group.rvs(4, random_state=2), 0.1 * z @ ortho_group.rvs(4, random_state=3)]
    out, share = consensus_scores(copies)
    assert out.shape == (50, 4)
    d_in, d_out = pdist(z), pdist(out)
    np.testing.assert_allclose(d_out / d_in, (d_out / d_in)[0], rtol=1e-8)  # distances kept up to one factor
    np.testing.assert_allclose(share.sum(), 1.0)  # the copies span 4 directions; 4 axes hold all of it
    assert (np.diff(share) <= 0).all()


def test_the_consensus_is_closer_to_the_shared_structure_than_any_single_run():
    truth, runs = _runs()
    out, share = consensus_scores(runs, n_components=3)
    single = [linear_cka(truth, z) for z in runs]
    assert linear_cka(truth, out) > max(single) + 0.1
    assert linear_cka(truth, out) > 0.85
    # the shared directions hold 3 / 5.75 of each run's variance (3 × 1 of truth, 3 × 0.25 and 2 × 1 of noise); the
    # three axes find them, the noise of the runs being spread over the concatenation's other directions
    assert share.sum() > 3 / 5.75


def test_every_run_weighs_the_same_whatever_its_scale_and_the_default_width_is_the_median():
    _, runs = _runs()
    out, _ = consensus_scores(runs)
    scaled = [z * 1000.0 if i == 0 else z for i, z in enumerate(runs)]
    np.testing.assert_allclose(consensus_scores(scaled)[0], out, atol=1e-8)
    widths = [runs[0][:, :3], runs[1][:, :4], runs[2]]  # 3, 4 and 5 columns
    assert consensus_scores(widths)[0].shape[1] == 4


def test_rows_outside_the_fit_rows_are_placed_without_moving_the_axes():
    _, runs = _runs()
    fit_rows = np.arange(150)
    out, _ = consensus_scores(runs, fit_rows=fit_rows)
    moved = [z.copy() for z in runs]
    for z in moved:
        z[150:] += 5.0  # held-out samples far away
    out2, _ = consensus_scores(moved, fit_rows=fit_rows)
    np.testing.assert_allclose(out2[:150], out[:150], atol=1e-10)
    assert not np.allclose(out2[150:], out[150:])


def test_consensus_scores_refuses_bad_input():
    z = np.zeros((10, 2))
    with pytest.raises(ValueError, match="two or more embeddings"):
        consensus_scores([z])
    with pytest.raises(ValueError, match="same rows"):
        consensus_scores([z, np.zeros((9, 2))])
    with pytest.raises(ValueError, match="`n_components` must be a positive integer"):
        consensus_scores([z, z], n_components=0)
    with pytest.raises(ValueError, match=r"must be at most 4 \(the samples .* 10, and the runs. factors"):
        consensus_scores([z, z], n_components=5)


@pytest.mark.slow
def test_consensus_embedding_of_trained_models(tmp_path):
    mdata = pm.datasets.breast_tcga()
    pm.POEMS.setup_mudata(mdata)
    models = []
    for seed in (0, 1, 2):
        scvi.settings.seed = seed
        m = pm.POEMS(mdata, n_latent=6)
        m.train(max_epochs=20, n_epochs_kl_warmup=5, enable_progress_bar=False)
        models.append(m)
    other = mdata.copy()
    pm.tl.consensus_embedding(models, other, n_components=3)
    expected, share = consensus_scores([m.get_latent_representation(other) for m in models], 3)
    np.testing.assert_allclose(other.obsm["X_poems_consensus"], expected, rtol=1e-5, atol=1e-5)
    summary = other.uns["poems"]["consensus"]["X_poems_consensus"]
    assert summary["n_models"] == 3 and summary["n_components"] == 3
    np.testing.assert_allclose(summary["variance_share"], share)
    assert list(summary["factors_per_model"]) == [m.module.n_factors for m in models]
    assert 0 < summary["mean_cka"] <= 1
    assert "X_poems_consensus" not in mdata.obsm  # the models' own MuData is untouched
    # nothing the user has is replaced without overwrite=True
    before = other.obsm["X_poems_consensus"].copy()
    with pytest.raises(ValueError, match=r"obsm\['X_poems_consensus'\] exists"):
        pm.tl.consensus_embedding(models, other)
    np.testing.assert_array_equal(other.obsm["X_poems_consensus"], before)
    pm.tl.consensus_embedding(models, other, n_components=2, overwrite=True)
    assert other.obsm["X_poems_consensus"].shape == (other.n_obs, 2)
    # the stored summary is plain data: it survives an h5mu round trip
    other.write(tmp_path / "c.h5mu")
    import mudata

    back = mudata.read_h5mu(tmp_path / "c.h5mu")
    assert int(back.uns["poems"]["consensus"]["X_poems_consensus"]["n_components"]) == 2
    with pytest.raises(ValueError, match="two or more trained POEMS models"):
        pm.tl.consensus_embedding(models[:1])
    fresh = pm.POEMS(mdata, n_latent=6)
    with pytest.raises(ValueError, match=r"model\(s\) \[1\] are not trained yet"):
        pm.tl.consensus_embedding([models[0], fresh], other, key_added="other_key")
