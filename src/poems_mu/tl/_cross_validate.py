"""k-fold cross-validation over samples: held-out ELBO and reconstruction R² per fold (small cohorts)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scvi
from mudata import MuData
from sklearn.model_selection import KFold, StratifiedKFold

from poems_mu.data import drop_setup_ids
from poems_mu.model._inference import negative_elbo_per_sample

from ._common import check_positive_int
from ._variance import variance_explained


def cross_validate(
    mdata: MuData,
    n_folds: int = 5,
    model_kwargs: Mapping | None = None,
    train_kwargs: Mapping | None = None,
    seed: int = 0,
    *,
    setup_kwargs: Mapping | None = None,
    n_draws: int = 20,
    batch_size: int | None = None,
) -> pd.DataFrame:
    """k-fold cross-validation of POEMS over the samples, for choosing ``n_latent`` or checking over-fitting.

    The samples (the MuData's union, whatever modalities each has) are split into ``n_folds`` folds (shuffled with
    ``seed``), stratified by which modalities each sample has when every such pattern has at least ``n_folds``
    samples. For each fold a model is trained on the other samples (its early stopping uses a validation split
    of those only) and scored on the fold's samples, which it never saw:

    * ``elbo_test``: the held-out negative ELBO per sample (reconstruction + β·KL, in nats on the standardised
      scale the model works on, ``n_draws`` posterior draws; lower is better), next to ``elbo_train``, the same
      on the training samples (the gap shows over-fitting). A sample's ELBO sums over the modalities it has, so
      compare it between settings on the same folds (same ``seed``), and with ``elbo_train`` only for stratified
      folds;
    * ``r2_<modality>``: the share of each modality's variance in the fold reconstructed at the posterior mean
      from all of the held-out sample's modalities (:func:`variance_explained`'s total; NaN where no held-out
      sample has the modality).

    Standardisation statistics come from each fold's training samples. ``scvi.settings.seed`` is set to
    ``seed + fold`` before each model is built, so the whole run is reproducible from ``seed``.

    Parameters
    ----------
    mdata
        The cohort. It is not modified (each fold works on copies).
    n_folds
        Number of folds, from 2 to the number of samples.
    model_kwargs
        Arguments of :class:`~poems_mu.POEMS` (e.g. ``{"n_latent": 8}``).
    train_kwargs
        Arguments of :meth:`~poems_mu.POEMS.train` (default: every default, no progress bar).
    seed
        Seed of the folds and of the training runs.
    setup_kwargs
        Arguments of :meth:`~poems_mu.POEMS.setup_mudata`; default: those ``mdata`` was set up with, if it was.
    n_draws
        Posterior draws of the held-out ELBO.
    batch_size
        Minibatch size of the scoring passes.

    Returns
    -------
    DataFrame with one row per fold: ``fold``, ``n_train``, ``n_test``, ``epochs``, ``elbo_train``, ``elbo_test``,
    and per registered modality ``n_test_<modality>`` (held-out samples that have it) and ``r2_<modality>``.

    """
    from poems_mu import POEMS

    if not isinstance(mdata, MuData):
        raise TypeError(f"`mdata` must be a MuData, got {type(mdata).__name__}.")
    n = mdata.n_obs
    n_folds = check_positive_int(n_folds, "n_folds")
    if not 2 <= n_folds <= n:
        raise ValueError(f"`n_folds` must be between 2 and the number of samples ({n}), got {n_folds}.")
    n_draws = check_positive_int(n_draws, "n_draws")
    if setup_kwargs is None:
        try:
            manager = POEMS._get_most_recent_anndata_manager(mdata)
        except ValueError as err:  # a copy of a MuData that was set up: its setup is not known
            raise ValueError(
                "This MuData is a copy of one set up with POEMS.setup_mudata, so its setup is unknown here: pass "
                "`setup_kwargs` (the arguments of setup_mudata), or call POEMS.setup_mudata on it first."
            ) from err
        setup_kwargs = {} if manager is None else dict(manager.registry["setup_args"])
    train_kwargs = {"enable_progress_bar": False, **(train_kwargs or {})}
    rows = []
    # folds with the same mix of modality patterns: a sample's ELBO sums over the modalities it has
    pattern = ["".join("1" if np.asarray(mdata.obsmap[m])[i] > 0 else "0" for m in mdata.mod) for i in range(n)]
    _, counts = np.unique(pattern, return_counts=True)
    if counts.min() >= n_folds:
        folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.arange(n), pattern)
    else:
        folds = KFold(n_splits=n_folds, shuffle=True, random_state=seed).split(np.arange(n))
    for fold, (train_idx, test_idx) in enumerate(folds):
        train_md = mdata[mdata.obs_names[train_idx]].copy()
        test_md = mdata[mdata.obs_names[test_idx]].copy()
        for part in (train_md, test_md):  # set up anew without replacing the registration of `mdata`
            drop_setup_ids(part)
        POEMS.setup_mudata(train_md, **setup_kwargs)
        scvi.settings.seed = seed + fold
        model = POEMS(train_md, **dict(model_kwargs or {}))
        model.train(**train_kwargs)
        r2 = variance_explained(model, test_md, batch_size=batch_size or 256, store=False)
        total = r2[r2["factor"] == "total"].set_index("modality")["r2"]
        row = {
            "fold": fold,
            "n_train": len(train_idx),
            "n_test": len(test_idx),
            "epochs": len(model.history["elbo_train"]),
            "elbo_train": negative_elbo_per_sample(model, train_md, n_draws, batch_size),
            "elbo_test": negative_elbo_per_sample(model, test_md, n_draws, batch_size),
        }
        has = {f"n_test_{m}": int((np.asarray(test_md.obsmap[m]) > 0).sum()) for m in model.modalities}
        rows.append(row | has | {f"r2_{m}": float(total[m]) for m in model.modalities})
    return pd.DataFrame(rows)
