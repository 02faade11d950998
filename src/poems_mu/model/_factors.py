"""Which of a POEMS model's K factors are in use: the rule, with its evidence per factor."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch

from poems_mu.module._factors import permute_factors, prune_empty_factors

from ._inference import leave_one_factor_out_r2

#: Thresholds of the active-factor rule. At 0 the rule is the model's own pruning: a kept factor reaches a feature
#: (a non-zero link) and moves with the samples; higher values ask more of a factor.
MIN_SCORE_VARIANCE = 0.0
MIN_LINK_WEIGHT = 0.0


def variance_explained_per_factor(model, mdata=None, batch_size: int | None = 256) -> np.ndarray:
    """Per kept factor, the mean over modalities of the share of variance it explains (leave-one-factor-out R²
    of :func:`~poems_mu.tl.variance_explained`, modalities weighted equally).
    """
    r2_k, _ = leave_one_factor_out_r2(model, model.adata if mdata is None else mdata, batch_size)
    return np.nanmean(r2_k, axis=0)


def order_factors(model) -> np.ndarray:
    """When training ends: prune the factors with no link left, and order the kept ones by the variance they explain
    (largest first, MOFA+'s convention) over the training samples; the annotated factors (feature sets) stay first,
    in the order of the sets. Returns the kept factors' scores in the new order.
    """
    module = model.module
    module.eval()
    prune_empty_factors(module)
    if module.priors is not None and not any(bool((dec.W != 0).any()) for dec in module.decoders):
        warnings.warn(
            "Training ended with every link of W at 0 in every modality: the priors outweigh the data of this few "
            "samples. Lower `lambda_factor` (0, with a small `n_latent` chosen by pm.tl.cross_validate) and `lambda0`.",
            UserWarning,
            stacklevel=3,
        )
    score = variance_explained_per_factor(model)
    kept = module.factor_index().cpu()
    n_sets = module.n_annotated  # never pruned: the first n_sets kept factors, which keep their place
    order = np.concatenate([np.arange(n_sets), n_sets + np.argsort(-score[n_sets:], kind="stable")])
    pruned = torch.nonzero(~module.factor_kept.cpu()).flatten()
    permute_factors(module, torch.cat([kept[torch.as_tensor(order)], pruned]))
    return score[order].astype(np.float64)


def check_thresholds(min_variance: float, min_weight: float) -> None:
    """The rule's thresholds must be finite and ≥ 0."""
    for name, value in (("min_variance", min_variance), ("min_weight", min_weight)):
        if not (np.isfinite(value) and value >= 0):
            raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")


def active_table(model, z: np.ndarray, min_variance: float, min_weight: float) -> pd.DataFrame:
    """The table of :meth:`~poems_mu.POEMS.active_factors` from posterior means ``z`` (samples × K)."""
    z = np.asarray(z, dtype=np.float64)
    if len(z) < 2:
        raise ValueError("The MuData needs at least 2 samples to take the variance of the factors over.")
    table = pd.DataFrame({"score_variance": z.var(0, ddof=1)}, index=model.factor_names())
    module = model.module
    reaches = np.ones(len(table), dtype=bool)
    if module.decoder_type == "sparse":
        reaches[:] = False
        kept = module.factor_index()
        for v, m in enumerate(model.modalities):
            w = np.abs(module.decoders[v].W.detach().index_select(1, kept).cpu().numpy())
            prior = module.priors[v]
            links = (w > min_weight).sum(0)
            table[f"links_{m}"] = links
            table[f"slab_{m}"] = (prior.p_star.detach().index_select(1, kept).cpu().numpy() > 0.5).sum(0)
            table[f"theta_{m}"] = prior.theta.detach().index_select(0, kept).cpu().numpy().astype(np.float64)
            reaches |= links > 0
    table["active"] = (table["score_variance"].to_numpy() > min_variance) & reaches
    return table


def active_factors_record(model, z: np.ndarray) -> dict:
    """The active-factor table at the default rule as h5mu-writable columns, with the rule (for ``uns``)."""
    table = active_table(model, z, MIN_SCORE_VARIANCE, MIN_LINK_WEIGHT)
    record = {"factor": np.asarray(table.index, dtype=str)}
    for col in table.columns:
        dtype = bool if col == "active" else np.float64
        record[col] = table[col].to_numpy(dtype=dtype)
    record["rule"] = {"min_variance": MIN_SCORE_VARIANCE, "min_weight": MIN_LINK_WEIGHT}
    return record
