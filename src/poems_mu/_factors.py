"""Which of a POEMS model's K factors are in use: the rule, with its evidence per factor."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mudata import MuData

#: Thresholds of the active-factor rule, fixed before any planted result was looked at (see ``active_factors``).
MIN_SCORE_VARIANCE = 0.01
MIN_LINK_WEIGHT = 0.01


class FactorsMixin:
    """The active-factor rule of a trained model (``tl.active_factors`` wraps it)."""

    def active_factors(
        self,
        mdata: MuData | None = None,
        batch_size: int | None = None,
        min_variance: float = MIN_SCORE_VARIANCE,
        min_weight: float = MIN_LINK_WEIGHT,
    ) -> pd.DataFrame:
        """Which factors the model uses, with the evidence for each.

        Rule: factor k is **active** when the variance over samples of its posterior mean exceeds ``min_variance``
        (the active-unit rule of Burda et al., 2016: a factor the encoders do not move stays at the prior's mean 0
        for every sample) **and**, with the sparse decoder, at least one feature of some modality has
        ``|W[j, k]| > min_weight`` (the paper's link threshold): a factor that reaches no feature explains nothing.
        The thresholds were fixed before the planted benchmark was run; the latents are in prior units (N(0, 1)).

        Parameters
        ----------
        mdata
            MuData whose samples the variance is taken over (default: the training MuData).
        batch_size
            Minibatch size for inference.
        min_variance
            Threshold on the variance over samples of the posterior mean.
        min_weight
            Threshold on ``|W|`` for a link to count.

        Returns
        -------
        DataFrame indexed by factor: ``score_variance``; per modality ``links_<modality>`` (features with
        ``|W| > min_weight``), ``slab_<modality>`` (features with slab probability p* > 0.5) and ``theta_<modality>``
        (the prior's slab share θ_k) with the sparse decoder; ``active`` (bool).

        """
        for name, value in (("min_variance", min_variance), ("min_weight", min_weight)):
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"`{name}` must be a finite number >= 0, got {value!r}.")
        z = self._collect(mdata, batch_size, ["qz_mean"])["qz_mean"]
        return self._active_table(z, min_variance, min_weight)

    def _active_table(self, z: np.ndarray, min_variance: float, min_weight: float) -> pd.DataFrame:
        z = np.asarray(z, dtype=np.float64)
        if len(z) < 2:
            raise ValueError("The MuData needs at least 2 samples to take the variance of the factors over.")
        table = pd.DataFrame({"score_variance": z.var(0, ddof=1)}, index=self.factor_names())
        reaches = np.ones(len(table), dtype=bool)
        if self.module.decoder_type == "sparse":
            reaches[:] = False
            for v, m in enumerate(self.modalities):
                w = np.abs(self.module.decoders[v].W.detach().cpu().numpy())
                prior = self.module.priors[v]
                links = (w > min_weight).sum(0)
                table[f"links_{m}"] = links
                table[f"slab_{m}"] = (prior.p_star.detach().cpu().numpy() > 0.5).sum(0)
                table[f"theta_{m}"] = prior.theta.detach().cpu().numpy().astype(np.float64)
                reaches |= links > 0
        table["active"] = (table["score_variance"].to_numpy() > min_variance) & reaches
        return table

    def _active_factors_record(self, z: np.ndarray) -> dict:
        """The active-factor table at the default rule as h5mu-writable columns, with the rule (for ``uns``)."""
        table = self._active_table(z, MIN_SCORE_VARIANCE, MIN_LINK_WEIGHT)
        record = {"factor": np.asarray(table.index, dtype=str)}
        for col in table.columns:
            dtype = bool if col == "active" else np.float64
            record[col] = table[col].to_numpy(dtype=dtype)
        record["rule"] = {"min_variance": MIN_SCORE_VARIANCE, "min_weight": MIN_LINK_WEIGHT}
        return record
