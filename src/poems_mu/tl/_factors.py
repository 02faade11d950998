"""Which factors of a trained model are in use (the rule lives with the model: :meth:`POEMS.active_factors`)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mudata import MuData

from poems_mu.model._factors import MIN_LINK_WEIGHT, MIN_SCORE_VARIANCE

from ._common import is_model
from ._variance import variance_explained


def active_factors(
    model,
    mdata: MuData | None = None,
    *,
    min_variance: float = MIN_SCORE_VARIANCE,
    min_weight: float = MIN_LINK_WEIGHT,
    batch_size: int | None = None,
    with_r2: bool = True,
    min_r2: float | None = None,
) -> pd.DataFrame:
    """Active factors of a trained model, with the evidence per factor.

    The rows are the factors the model kept (pruned ones are gone), in its order (by the variance they explain). A
    factor is active when the variance over samples of its posterior mean exceeds ``min_variance`` and, with the
    sparse decoder, it reaches at least one feature (``|W| > min_weight``); at the defaults (0, 0) that is every kept
    factor. See :meth:`poems_mu.POEMS.active_factors` for the rule and the columns.

    Parameters
    ----------
    model
        A trained :class:`~poems_mu.POEMS` model.
    mdata
        MuData whose samples the variance is taken over (default: the model's training MuData).
    min_variance
        Threshold on the variance over samples of the posterior mean.
    min_weight
        Threshold on ``|W|`` for a link to count.
    batch_size
        Minibatch size for inference.
    with_r2
        Add ``r2_<m>`` per modality: the share of the modality's variance the factor explains
        (:func:`~poems_mu.tl.variance_explained`, leave-one-factor-out; evidence only, the rule does not use it).
    min_r2
        Optional extra criterion: a factor must also explain at least this share of some modality's variance (as
        MOFA+'s ``drop_factor_threshold``; 0.01 is its usual choice). Not part of the default rule, which
        ``store_results`` records.

    Returns
    -------
    DataFrame indexed by factor with ``score_variance``, per modality ``links_<m>``, ``slab_<m>``, ``theta_<m>``
    (sparse decoder) and ``r2_<m>`` (``with_r2``), and the flag ``active`` (last column).

    """
    if not is_model(model):
        raise TypeError(f"`model` must be a trained poems_mu.POEMS model, got {type(model).__name__}.")
    if not model.is_trained_:
        raise ValueError("The model is not trained yet: call model.train() first.")
    if min_r2 is not None and not (np.isfinite(min_r2) and 0 <= min_r2 <= 1):
        raise ValueError(f"`min_r2` must be a share in [0, 1], got {min_r2!r}.")
    table = model.active_factors(mdata, batch_size=batch_size, min_variance=min_variance, min_weight=min_weight)
    if with_r2 or min_r2 is not None:
        r2 = variance_explained(model, mdata, batch_size=batch_size, store=False)
        r2 = r2[r2["factor"] != "total"].pivot(index="factor", columns="modality", values="r2")
        for m in model.modalities:
            table.insert(len(table.columns) - 1, f"r2_{m}", r2[m].reindex(table.index).to_numpy())
        if min_r2 is not None:
            best = table[[f"r2_{m}" for m in model.modalities]].max(axis=1).to_numpy()
            table["active"] &= best >= min_r2
    return table
