"""The linear models with feature sets in their prior, as the feature-set benchmarks run them: MOFA-FLEX with its
annotations and MuVI with its prior masks, fitted to the same z-scored modalities and the same boolean masks.

Both return what the benchmarks score, in one form: :class:`Fitted` (loadings features × factors per modality, factor
scores samples × factors, and each factor's share of variance explained per modality, factors named by the sets).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from typing import NamedTuple

import numpy as np
import pandas as pd

MUVI_CONFIDENCE = 0.99  # MuVI's "low" prior confidence, the same as MOFA-FLEX's annotation_confidence below
MOFAFLEX_CONFIDENCE = 0.99


class Fitted(NamedTuple):
    """One fitted linear model: ``w`` {modality: features × factors}, ``z`` samples × factors, ``r2`` factors ×
    modalities (share of variance explained), and the model's own object."""

    w: dict[str, pd.DataFrame]
    z: pd.DataFrame
    r2: pd.DataFrame
    model: object


def zscored(mdata, modality: str) -> pd.DataFrame:
    """One modality, samples × features, each feature centred and scaled to unit variance."""
    x = np.asarray(mdata.mod[modality].X, dtype=np.float64)
    x = (x - x.mean(0)) / x.std(0)
    var = mdata.mod[modality]
    return pd.DataFrame(x.astype(np.float32), index=var.obs_names, columns=var.var_names)


def fit_mofaflex(mdata, masks: dict[str, pd.DataFrame], seed: int, max_epochs: int, n_free: int | None = None):
    """MOFA-FLEX (the MOFA preset of ``_baselines.py``; ``n_free`` free factors in place of its 15) with the sets as
    boolean ``varm["sets"]`` annotations (``masks``: {modality: features × sets})."""
    import anndata as ad
    import mudata as md
    from _baselines import MOFAFLEX_MODEL
    from mofaflex import MOFAFLEX, DataOptions, ModelOptions, TrainingOptions

    mods = {}
    for m, mask in masks.items():
        x = zscored(mdata, m)
        a = ad.AnnData(x.to_numpy())
        a.obs_names, a.var_names = x.index, x.columns
        a.varm["sets"] = mask
        mods[m] = a
    options = MOFAFLEX_MODEL | ({} if n_free is None else {"n_factors": n_free})
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return MOFAFLEX(
            md.MuData(mods),
            DataOptions(plot_data_overview=False, subset_var=None, scale_per_group=False, annotations_varm_key="sets"),
            ModelOptions(**options, annotation_confidence=MOFAFLEX_CONFIDENCE),
            TrainingOptions(lr=0.05, device="cpu", save_path=False, seed=seed, max_epochs=max_epochs),
        )


def mofaflex_fitted(model, obs_names) -> Fitted:
    w = {m: v.T for m, v in model.get_weights("pandas").items()}
    z = next(iter(model.get_factors("pandas").values())).loc[obs_names]
    r2 = next(iter(model.get_r2().values()))  # one group: factors × views
    return Fitted(w, z, r2, model)


def mofaflex_checks(model, masks: dict[str, pd.DataFrame]) -> dict:
    """What MOFA-FLEX made of the annotations: factor counts and names, and whether the masks it stored are ours."""
    stored = model.get_annotations("pandas")
    return {
        "n_informed_factors": int(model.n_informed_factors),
        "n_uninformed_factors": int(model.n_uninformed_factors),
        "factor_names": [str(x) for x in model.factor_names],
        "masks_match": bool(all(stored[m].T.equals(masks[m]) for m in masks)),
        "epochs": len(model._train_loss_elbo),
    }


def _import_muvi():
    """``muvi`` 0.2.2 imports ``deep_getattr`` from ``pyro.infer.autoguide.guides``, which pyro-ppl 1.9.2 (the
    version scvi-tools 1.4 installs) no longer has; it is ``functools.reduce(getattr, name.split("."), obj)``, given
    back to that module here before the import."""
    import pyro.infer.autoguide.guides as guides

    if not hasattr(guides, "deep_getattr"):
        guides.deep_getattr = lambda obj, name: functools.reduce(getattr, name.split("."), obj)
    import muvi

    logging.getLogger("muvi").setLevel(logging.ERROR)
    return muvi


def fit_muvi(mdata, masks: dict[str, pd.DataFrame], seed: int, n_dense: int | None = None, n_epochs: int = 0):
    """MuVI on the z-scored modalities with the sets as prior masks (sets × features), at its defaults (learning rate,
    early stopping, horseshoe prior) but the prior confidence (0.99, its "low") and the device (CPU); ``n_dense``
    uninformed factors beside the sets' (MuVI's ``n_factors``, none by default); ``n_epochs`` 0 is MuVI's default."""
    muvi = _import_muvi()
    observations = {m: zscored(mdata, m) for m in masks}
    prior = {m: mask.T.astype(bool) for m, mask in masks.items()}
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        model = muvi.MuVI(
            observations, prior_masks=prior, prior_confidence=MUVI_CONFIDENCE, n_factors=n_dense, device="cpu"
        )
        model.fit(n_epochs=n_epochs, seed=seed, verbose=False)
    return model


def muvi_fitted(model, obs_names) -> Fitted:
    muvi = _import_muvi()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        _, r2, _ = muvi.tl.variance_explained(model, sort=False)  # factors × r2_<view>, in the model's factor order
    names = [str(x) for x in model.factor_names]
    w = {m: v.T for m, v in model.get_factor_loadings(as_df=True).items()}
    z = model.get_factor_scores(as_df=True).loc[obs_names]
    r2 = r2.rename(columns=lambda c: c.removeprefix("r2_")).loc[names]
    return Fitted(w, z, r2, model)


def muvi_checks(model, masks: dict[str, pd.DataFrame]) -> dict:
    """What MuVI made of the masks: its factor names, and whether the masks it stored are ours."""
    stored = model.get_prior_masks(as_df=True)
    names = [str(x) for x in model.factor_names]
    informed = [n for n in names if n in masks[next(iter(masks))].columns]
    return {
        "factor_names": names,
        "masks_match": bool(all(stored[m].loc[informed].T.equals(masks[m][informed]) for m in masks)),
        "epochs": int(model._training_log["n_iter"]),
        "stopped_early": bool(model._training_log["stop_early"]),
    }
