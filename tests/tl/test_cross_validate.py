"""tl.cross_validate: k folds over samples, scored on samples each model never saw."""

import pandas as pd
import pytest

import poems_mu as pm


@pytest.fixture(scope="module")
def cohort():
    return pm.datasets.breast_tcga()


def _cv(mdata, epochs, n_folds=2, seed=0):
    return pm.tl.cross_validate(
        mdata,
        n_folds=n_folds,
        model_kwargs={"n_latent": 6},
        train_kwargs={"max_epochs": epochs, "n_epochs_kl_warmup": 20, "early_stopping": False},
        seed=seed,
        n_draws=5,
    )


@pytest.mark.slow
def test_folds_partition_the_samples_and_training_helps_on_held_out_samples(cohort):
    before_uns = set(cohort.uns)
    names = cohort.obs_names.copy()
    trained = _cv(cohort, 50)
    assert list(trained["fold"]) == [0, 1]
    assert trained["n_test"].sum() == cohort.n_obs and (trained["n_train"] + trained["n_test"] == cohort.n_obs).all()
    assert list(trained.columns) == [
        "fold", "n_train", "n_test", "epochs", "elbo_train", "elbo_test",
        "n_test_mrna", "n_test_mirna", "n_test_protein", "r2_mrna", "r2_mirna", "r2_protein",
    ]  # fmt: skip
    # stratified by modality pattern: 75 of the 150 tumours with protein in each half
    assert list(trained["n_test_protein"]) == [75, 75] and list(trained["n_test_mrna"]) == [110, 110]
    assert (trained["epochs"] == 50).all()
    untrained = _cv(cohort, 1)
    # the held-out ELBO falls and the held-out reconstruction improves with training
    assert (trained["elbo_test"] < untrained["elbo_test"]).all()
    for m in ("mrna", "mirna", "protein"):
        assert (trained[f"r2_{m}"] > untrained[f"r2_{m}"]).all() and (trained[f"r2_{m}"] > 0).all()
    assert (trained["elbo_train"] < trained["elbo_test"]).all()  # the samples a model saw fit it better
    assert cohort.obs_names.equals(names) and set(cohort.uns) == before_uns  # the user's MuData is untouched


def test_the_cohorts_own_setup_survives(cohort):
    set_up = cohort.copy()
    pm.POEMS.setup_mudata(set_up)
    _cv(set_up, 2)
    _cv(set_up, 2)  # a second call still finds the setup of `set_up` (the folds' copies do not replace it)
    assert pm.POEMS._get_most_recent_anndata_manager(set_up).adata is set_up


@pytest.mark.slow
def test_reproducible_from_the_seed(cohort):
    first = _cv(cohort, 3, n_folds=3)
    pd.testing.assert_frame_equal(_cv(cohort, 3, n_folds=3), first)
    other = _cv(cohort, 3, n_folds=3, seed=1)
    assert not other["elbo_test"].equals(first["elbo_test"])


def test_bad_input(cohort):
    with pytest.raises(ValueError, match="between 2 and the number of samples"):
        pm.tl.cross_validate(cohort, n_folds=cohort.n_obs + 1)
    with pytest.raises(ValueError, match="between 2"):
        pm.tl.cross_validate(cohort, n_folds=1)
    with pytest.raises(TypeError, match="MuData"):
        pm.tl.cross_validate(cohort["mrna"])
    set_up = cohort.copy()
    pm.POEMS.setup_mudata(set_up)
    with pytest.raises(ValueError, match="setup_kwargs"):
        pm.tl.cross_validate(set_up.copy())
