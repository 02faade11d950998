"""Cross-modal prediction: decode a modality for samples placed from the others, with its predictive spread."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scvi
import torch
from mudata import MuData

from poems_mu.data._query import minibatches, query_dataset, resolve_condition

from ._getters import modality_index


class ImputeMixin:
    """``impute``: what a modality would read for samples that were not measured on it (or were, for checking)."""

    @torch.inference_mode()
    def impute(
        self,
        modality: str,
        mdata: MuData | None = None,
        from_modalities: Sequence[str] | str | None = None,
        samples: Sequence[str] | str | None = None,
        n_samples: int = 25,
        return_std: bool = False,
        batch_size: int | None = None,
    ) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
        """Predict ``modality`` from other modalities: the posterior predictive mean, and optionally its SD.

        Each sample is placed from ``from_modalities`` alone (the product of the experts it has among them; the
        target is never looked at, even where it was measured), ``n_samples`` draws of ``z`` from that posterior
        are decoded, and the prediction is the mean of the decoded values. Its SD adds the spread of the decoded
        values (what the model does not know about the sample's ``z``) to the feature's residual variance
        ``σ_j²`` (what it cannot predict at all): ``sqrt(Var_q[x̂_j(z)] + σ_j²)``, so that mean ± 1.645 SD is a
        90 % predictive interval under the Gaussian likelihood. Values are in the units of the registered data
        (the per-feature standardisation undone); a constant training feature is predicted as that constant,
        with SD 0. Under the other likelihoods the prediction is the likelihood's mean and the SD again adds its
        variance to the spread over ``z``: for ``"nb"`` the expected counts at the reference library size (the
        median training library, so samples are comparable whatever their depth; multiply by ``ℓ_i / L₀`` for a
        sample's own depth), for ``"bernoulli"`` the probability of a 1 (SD ``sqrt(p (1 − p))``). Covariates
        enter the prediction as in training (each sample's own values).

        The draws are seeded with ``scvi.settings.seed`` (the global torch RNG is left as it was), so a call is
        reproducible; they depend on ``batch_size``. Nothing is written to the MuData.

        Parameters
        ----------
        modality
            The modality to predict.
        mdata
            MuData holding the samples (default: the training MuData): any MuData with the training features of
            the trained modalities it holds, so a new cohort may lack ``modality`` or others.
        from_modalities
            Modalities to place the samples from (default: every other trained modality); a sample needs at least
            one of them.
        samples
            Sample names (``obs_names``) to predict (default: every sample of ``mdata``, whether or not it has
            ``modality``).
        n_samples
            Posterior draws per sample.
        return_std
            Also return the predictive SD.
        batch_size
            Minibatch size for inference.

        Returns
        -------
        DataFrame ``samples × features of modality`` of predicted means, and with ``return_std`` a second one of
        predictive SDs.

        Examples
        --------
        >>> protein, sd = model.impute("protein", return_std=True)
        >>> missing = mdata.obs_names[mdata.obsmap["protein"].ravel() == 0]
        >>> low, high = protein.loc[missing] - 1.645 * sd.loc[missing], protein.loc[missing] + 1.645 * sd.loc[missing]

        """
        self._check_if_trained(warn=False)
        v = modality_index(self, modality)
        others = [m for m in self.modalities if m != modality]
        if from_modalities is not None:
            listed = [from_modalities] if isinstance(from_modalities, str) else list(from_modalities)
            if modality in listed:
                raise ValueError(
                    f"`from_modalities` contains {modality!r}, the modality to predict; name only others, e.g. "
                    f"{others}."
                )
        elif not others:
            raise ValueError(f"The model has only the modality {modality!r}: there is nothing to predict it from.")
        condition = resolve_condition(
            self.modalities, others if from_modalities is None else from_modalities, "from_modalities"
        )
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ValueError(f"`n_samples` must be a positive integer (posterior draws per sample), got {n_samples!r}.")
        dataset, obs_names = query_dataset(self, mdata, samples, condition, what="`from_modalities`")
        module = self.module
        module.eval()
        likelihood = module.likelihoods[v]
        keep, constant = likelihood.feature_mask > 0, likelihood.constant_value()
        means, sds = [], []
        device = constant.device
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            if scvi.settings.seed is not None:
                torch.manual_seed(scvi.settings.seed)
            for tensors in minibatches(dataset, batch_size):
                inf = module.inference(**module._get_inference_input(tensors), n_samples=int(n_samples))
                z = inf["z"] if n_samples > 1 else inf["z"].unsqueeze(0)
                eta = module.decode(v, z, inf["covariates"])  # (n_samples, batch, D), link scale
                # in data units, counts at the reference library size (the training median)
                mean, var = likelihood.predictive_moments(eta)
                means.append(torch.where(keep, mean, constant).cpu().numpy())
                sds.append(torch.where(keep, var.clamp_min(0).sqrt(), 0.0).cpu().numpy())
        var_names = self.adata.mod[modality].var_names.copy()
        mean_df = pd.DataFrame(np.concatenate(means).astype(np.float64), index=obs_names.copy(), columns=var_names)
        if not return_std:
            return mean_df
        sd_df = pd.DataFrame(np.concatenate(sds).astype(np.float64), index=obs_names.copy(), columns=var_names.copy())
        return mean_df, sd_df
