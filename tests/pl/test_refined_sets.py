"""pm.pl.refined_sets: one bar per feature set with the members kept and dropped and the features added."""

import anndata as ad
import matplotlib
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scvi

matplotlib.use("Agg")
import matplotlib.pyplot as plt

import poems_mu as pm
from poems_mu.pl._refined_sets import STATUS_COLORS


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 2))
    mods = {}
    for name, d in (("rna", 12), ("prot", 8)):
        w = np.zeros((d, 2))
        w[np.arange(d), np.arange(d) % 2] = rng.uniform(1, 2, d)
        mods[name] = ad.AnnData((z @ w.T + 0.3 * rng.normal(size=(60, d))).astype(np.float32))
        mods[name].obs_names = [f"s{i}" for i in range(60)]
        mods[name].var_names = [f"{name}_{j}" for j in range(d)]
    mdata = md.MuData(mods)
    sets = pd.DataFrame(
        [("rna", "even", f"rna_{j}") for j in range(0, 12, 2)] + [("prot", "odd", f"prot_{j}") for j in (1, 3, 5)],
        columns=["modality", "source", "target"],
    )
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, feature_sets=sets, n_latent=2)
    model.train(max_epochs=5, n_epochs_kl_warmup=1, enable_progress_bar=False)
    return model


def test_the_bars_are_the_summary_counts_and_inactive_sets_are_marked(model):
    summary = pm.tl.feature_set_summary(model)
    summary.loc["odd", "active"] = False  # as the plot reads it from the table
    ax = pm.pl.refined_sets(summary, show=False)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == ["even", "odd (inactive)"]
    for status in ("kept", "dropped", "added"):
        colour = matplotlib.colors.to_rgba(STATUS_COLORS[status])
        widths = [p.get_width() for p in ax.patches if p.get_facecolor() == colour]
        assert widths == summary[status].tolist(), status
    plt.close("all")


def test_it_takes_the_model_and_refuses_other_input(model, tmp_path):
    ax = pm.pl.refined_sets(model, show=False, save=tmp_path / "sets")
    assert (tmp_path / "sets.png").exists() and len(ax.get_yticklabels()) == 2
    with pytest.raises(ValueError, match="feature_set_summary"):
        pm.pl.refined_sets(pd.DataFrame({"kept": [1]}), show=False)
    with pytest.raises(TypeError, match="trained POEMS model or a DataFrame"):
        pm.pl.refined_sets(model.adata, show=False)
    plt.close("all")
