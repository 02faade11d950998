"""The seeded reference fits whose outputs must not change when the code is reorganised.

    python tests/_scripts/reference_fit.py breast OUT.npz
    python tests/_scripts/reference_fit.py mixed OUT.npz

``breast``: breast_tcga z-scored per feature (``pm.pp.scale``, layer ``"scaled"``), ``scvi.settings.seed = 0``, the
default POEMS, ``train(max_epochs=20)`` on one CPU thread; posterior means, gates, W and p* per modality.

``mixed``: the planted cohort with one modality per likelihood (``make_mixed_mudata(80, 0, batch_shift=1.0)``), a
batch and a continuous covariate and given library sizes, ``n_latent=6``, ``nb`` and ``bernoulli`` likelihoods,
``modality_dropout=0.25``, 15 epochs with a 5-epoch warm-up (so the E-step runs); besides the above, contributions,
signed effective loadings, imputations with their SD, θ and σ, and the variance explained.

``tests/model/test_reference_fit.py`` compares fresh runs with the arrays stored in ``tests/_reference/`` (written by
this script), one recording per kind of CPU (``<fit>_fit.<machine>.npz``): the last bits of the arithmetic depend on
the CPU's vendor and instruction set, and a fresh fit must equal every array of one recording.
"""

import logging
import sys
import warnings

import numpy as np
import scvi
import torch

import poems_mu as pm
from poems_mu.datasets._synthetic import make_mixed_mudata


def _outputs(model) -> dict[str, np.ndarray]:
    out = {"latent": model.get_latent_representation(), "gates": model.get_gating_weights().to_numpy()}
    for mod in model.modalities:
        out[f"W_{mod}"] = model.get_loadings(mod).to_numpy()
        out[f"pstar_{mod}"] = model.get_slab_probabilities(mod).to_numpy()
    return out


def breast_fit() -> dict[str, np.ndarray]:
    """The default model on breast_tcga, 20 epochs."""
    torch.set_num_threads(1)
    mdata = pm.datasets.breast_tcga()
    pm.pp.scale(mdata)
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata, layers="scaled")
    model = pm.POEMS(mdata)
    model.train(max_epochs=20, enable_progress_bar=False)
    return _outputs(model)


def mixed_fit() -> dict[str, np.ndarray]:
    """Every likelihood, covariates, library sizes and modality dropout, 15 epochs."""
    torch.set_num_threads(1)
    mdata = make_mixed_mudata(n=80, seed=0, batch_shift=1.0)
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(
        mdata, batch_key="batch", continuous_covariate_keys=["age"], size_factor_key={"rna": "library"}
    )
    model = pm.POEMS(mdata, n_latent=6, likelihood={"rna": "nb", "mut": "bernoulli"}, modality_dropout=0.25)
    model.train(max_epochs=15, n_epochs_kl_warmup=5, enable_progress_bar=False)
    out = _outputs(model)
    out["contrib"] = model.get_contributions().to_numpy()
    for mod in model.modalities:
        out[f"eff_{mod}"] = model.get_effective_loadings(mod, signed=True).to_numpy()
        mean, sd = model.impute(mod, n_samples=5, return_std=True)
        out[f"impute_mean_{mod}"], out[f"impute_sd_{mod}"] = mean.to_numpy(), sd.to_numpy()
    out["theta_rna"] = model.get_nb_theta("rna").to_numpy()
    out["sigma_prot"] = model.get_feature_sigma("prot").to_numpy()
    out["ve"] = pm.tl.variance_explained(model)["r2"].to_numpy(dtype=float)
    return out


FITS = {"breast": breast_fit, "mixed": mixed_fit}

if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    np.savez_compressed(sys.argv[2], **FITS[sys.argv[1]]())
