"""How a model's factors start, from its registered data: the feature sets' factors at their first principal
components, and with ``factor_start="pca"`` the free factors at the rotated components of a joint PCA
(:mod:`poems_mu.data._factor_start`). Computed once when the model is built (not when it is loaded: a loaded model
has its trained state) and applied again to the fresh module of each restart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from poems_mu.data._covariates import covariate_matrix, registered_covariates
from poems_mu.data._factor_start import pca_start, regress_out
from poems_mu.data._registry import observed_rows
from poems_mu.data._statistics import encoder_views
from poems_mu.module._starts import start_encoder_units, start_free_links


def views_of(model, used: Sequence[int], known: Mapping[int, np.ndarray] | None = None) -> dict[int, np.ndarray]:
    """The encoder views (:func:`~poems_mu.data._statistics.encoder_views`) of the modalities ``used`` (indices), by
    index; those in ``known`` are not computed again.
    """
    known = dict(known or {})
    todo = [v for v in used if v not in known]
    if todo:
        rows = observed_rows(model.adata_manager)
        names, stats = model._module_inputs["likelihoods"], model._module_inputs["statistics"]
        mods = [model.modalities[v] for v in todo]
        views = encoder_views(
            model.adata_manager, mods, [names[v] for v in todo], [rows[v] for v in todo], [stats[v] for v in todo]
        )
        known.update(zip(todo, views, strict=True))
    return {v: known[v] for v in used}


def set_views(model) -> dict[int, np.ndarray]:
    """The encoder views of the modalities that list a feature set (a wide modality without sets is not densified)."""
    return views_of(model, [v for v, m in enumerate(model.modalities) if model._feature_sets.listed[m].any()])


def _covariates(model) -> np.ndarray | None:
    """The registered covariates of every sample (samples × C), or ``None``: what every start regresses out."""
    return covariate_matrix(model.adata, registered_covariates(model.adata_manager))


def set_starts(model, views: Mapping[int, np.ndarray]):
    """The feature sets' starts (:meth:`~poems_mu.data._feature_sets.FeatureSets.starts`) from the encoder views of
    the modalities that list a set (``views``, by modality index), with the registered covariates regressed out of
    each first, as for the free start: a batch shift among a set's members is the decoders' to explain.
    """
    covariates = _covariates(model)
    if covariates is not None:
        views = {v: regress_out(view, covariates) for v, view in views.items()}
    return model._feature_sets.starts({model.modalities[v]: view for v, view in views.items()})


def free_start(model, views: Mapping[int, np.ndarray], rotate: bool = True, n: int | None = None):
    """The start of the free factors from the joint PCA of every modality's view (``views``, by modality index), with
    the registered covariates regressed out of each modality and the started sets' scores projected out
    (:func:`~poems_mu.data._factor_start.pca_start`): the decoders receive the covariates, so a batch shift is theirs
    to explain, not a factor's. ``rotate`` and ``n``: ``pca_start``'s choices (the benchmarks' ablations; the model
    uses the defaults).
    """
    views = [views[v] for v in range(len(model.modalities))]
    n_free = model.module.n_latent - model.module.n_annotated
    return pca_start(views, n_free, model._set_scores, rotate=rotate, n=n, covariates=_covariates(model))


def start_factors(model, views: Mapping[int, np.ndarray] | None = None) -> Mapping[int, np.ndarray] | None:
    """Apply the starts to ``model.module``: the free factors' links, and in each modality's encoder the units of the
    started sets that list it and of the started free factors (a ridge fit to their scores,
    :func:`~poems_mu.module._starts.start_encoder_units`). Nothing to do without either start. Returns the encoder
    views it read (``views`` where given), so that the restarts of one ``train`` call read them once.
    """
    sets, scores, free = model._feature_sets, model._set_scores, model._free_start
    with_sets = sets is not None and scores is not None and np.isfinite(scores).any()
    with_free = free is not None and free.scores.shape[1] > 0
    if not (with_sets or with_free):
        return views
    module = model.module
    a, n_free = module.n_annotated, 0 if free is None else free.scores.shape[1]
    if with_free:
        start_free_links(module, free.links)
        used = range(len(model.modalities))
    else:
        used = [v for v, m in enumerate(model.modalities) if sets.listed[m].any()]
    views = views_of(model, used, views)
    covariates = _covariates(model)
    for v, view in views.items():
        present = ~np.isnan(view[:, 0])
        target = np.full((int(present.sum()), module.n_latent), np.nan)
        if with_sets:
            listed = sets.listed[model.modalities[v]]
            target[:, :a] = np.where(listed[None, :], scores[present], np.nan)
        if with_free:
            target[:, a : a + n_free] = free.scores[present]
        if np.isfinite(target).any():
            x = view[present] if covariates is None else np.concatenate([view[present], covariates[present]], axis=1)
            start_encoder_units(module, v, x, target)
    return views
