"""Which of a POEMS model's K factors are in use: the rule, with its evidence per factor."""

from __future__ import annotations

import numpy as np
import pandas as pd

#: Thresholds of the active-factor rule, fixed before any planted result was looked at.
MIN_SCORE_VARIANCE = 0.01
MIN_LINK_WEIGHT = 0.01


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
        for v, m in enumerate(model.modalities):
            w = np.abs(module.decoders[v].W.detach().cpu().numpy())
            prior = module.priors[v]
            links = (w > min_weight).sum(0)
            table[f"links_{m}"] = links
            table[f"slab_{m}"] = (prior.p_star.detach().cpu().numpy() > 0.5).sum(0)
            table[f"theta_{m}"] = prior.theta.detach().cpu().numpy().astype(np.float64)
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
