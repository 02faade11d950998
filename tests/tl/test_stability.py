"""tl.factor_stability / pl.factor_stability: factors matched across runs, biomarkers counted across runs."""

import numpy as np
import pandas as pd
import pytest
import scvi

import poems_mu as pm

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def runs():
    mdata = pm.datasets.breast_tcga()
    pm.POEMS.setup_mudata(mdata)
    models = []
    for seed in (0, 1):
        scvi.settings.seed = seed
        m = pm.POEMS(mdata, n_latent=6)
        m.train(max_epochs=30, n_epochs_kl_warmup=10, enable_progress_bar=False)
        models.append(m)
    return mdata, models


def test_a_run_against_itself_is_perfectly_stable(runs):
    _, (m, _) = runs
    factors, features = pm.tl.factor_stability([m, m], n_top=5)
    live = np.asarray(m.get_latent_representation()).std(0) > 0
    assert list(factors.index) == m.factor_names()
    assert (factors["run1_factor"] == factors.index).all()
    np.testing.assert_allclose(factors.loc[live, "run1_corr"], 1.0, atol=1e-6)
    assert (features["frequency"] == 1.0).all() and (features["n_runs"] == 2).all()
    n_top = features.groupby(["factor", "modality"]).size()
    assert (n_top <= 5).all()


def test_permuted_factors_are_matched_back(runs, tmp_path):
    mdata, (m, _) = runs
    m.save(tmp_path / "m")
    other = pm.POEMS.load(tmp_path / "m", mdata)
    k = m.module.n_factors
    assert k >= 3  # enough kept factors for a permutation to say something
    perm = np.roll(np.arange(k), 2)[::-1]  # no factor keeps its place... or one at most
    names = m.factor_names()
    z = m.get_latent_representation()
    other.get_latent_representation = lambda *a, **k: z[:, perm]
    loadings = {mod: m.get_loadings(mod) for mod in m.modalities}
    # and per-entry sign flips: W's sign is not identifiable, only |W| is compared
    flips = {mod: np.random.default_rng(0).choice([-1.0, 1.0], size=w.shape) for mod, w in loadings.items()}
    other.get_loadings = lambda mod: pd.DataFrame(
        (loadings[mod].to_numpy() * flips[mod])[:, perm], index=loadings[mod].index, columns=names
    )
    factors, features = pm.tl.factor_stability([m, other], n_top=5)
    # reference factor k is column inverse_perm[k] of the permuted run
    inverse = np.argsort(perm)
    live = z.std(0) > 0
    assert [names[i] for i in inverse[live]] == list(factors.loc[live, "run1_factor"])
    w = np.abs(np.concatenate([loadings[mod].to_numpy() for mod in m.modalities]))
    linked = w.std(0) > 0  # a factor without any link has a constant |W| column: its loading corr is 0
    np.testing.assert_allclose(factors.loc[linked, "run1_loading_corr"], 1.0, atol=1e-6)
    assert (factors.loc[~linked, "run1_loading_corr"] == 0).all()
    assert (features["frequency"] == 1.0).all()


def test_two_seeds(runs, tmp_path):
    _, models = runs
    factors, features = pm.tl.factor_stability(models, n_top=5)
    assert factors["reproducibility"].between(0, 1).all()
    # a reference factor the other run has no counterpart for (it kept fewer) does not come back: 0
    matched = factors["run1_corr"].notna()
    assert (~matched).sum() == max(0, models[0].module.n_factors - models[1].module.n_factors)
    np.testing.assert_allclose(factors.loc[matched, "reproducibility"], factors.loc[matched, "run1_corr"])
    assert (factors.loc[~matched, "reproducibility"] == 0).all()
    assert set(features["frequency"]) <= {0.5, 1.0}
    assert features["factor"].isin(factors.index).all()
    ax = pm.pl.factor_stability(factors, show=False, save=tmp_path / "stab.png")
    assert (tmp_path / "stab.png").exists()
    labels = [t.get_text() for t in ax.get_yticklabels()]
    best = factors["reproducibility"].idxmax()
    assert labels[0].startswith(best)


def test_bad_input(runs):
    mdata, (m, _) = runs
    with pytest.raises(ValueError, match="two or more trained POEMS models"):
        pm.tl.factor_stability([m])
    with pytest.raises(ValueError, match="`n_top` must be a positive integer"):
        pm.tl.factor_stability([m, m], n_top=0)
    with pytest.raises(ValueError, match="first table returned by pm.tl.factor_stability"):
        pm.pl.factor_stability(pd.DataFrame({"x": [1]}), show=False)
