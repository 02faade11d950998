"""Writing a trained model's results onto a MuData (``store_results``)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
import pandas as pd
from mudata import MuData

from poems_mu import _constants as keys
from poems_mu.data._covariates import covariate_names, registered_covariates

from ._factors import active_factors_record
from ._inference import collect, contributions_frame, effective_loadings

#: the entries of ``uns["poems"]`` that ``store_results`` writes
UNS_RESULT_KEYS = (
    "params",
    "modalities",
    "factors",
    "n_latent",
    "likelihoods",
    "covariates",
    "theta",
    "sparsity",
    keys.ACTIVE_FACTORS_KEY,
    "training",
)


def result_targets(model, mdata: MuData) -> list[tuple[str, object, str]]:
    """Every place :meth:`~poems_mu.POEMS.store_results` writes to on ``mdata``: ``(where, store, key)``."""
    targets = [("obsm", mdata.obsm, k) for k in (keys.LATENT_KEY, keys.GATES_KEY, keys.CONTRIBUTIONS_KEY)]
    own = mdata.uns.get(keys.UNS_KEY)
    if isinstance(own, Mapping):  # the model's own entries; what pm.tl stored beside them is not a result of it
        targets += [(f"uns[{keys.UNS_KEY!r}]", own, k) for k in UNS_RESULT_KEYS]
    else:
        targets.append(("uns", mdata.uns, keys.UNS_KEY))
    targets += [("obs", mdata.obs, f"{keys.GATE_OBS_PREFIX}{m}") for m in model.modalities]
    for m, likelihood in zip(model.modalities, model.module.likelihoods, strict=True):
        if m not in mdata.mod:
            continue
        ad = mdata.mod[m]
        if likelihood.feature_parameter is not None:
            targets.append((f"mod['{m}'].var", ad.var, keys.feature_parameter_key(likelihood.feature_parameter)))
        if model.module.decoder_type == "sparse":
            varm_keys = (keys.W_KEY, keys.PSTAR_KEY, keys.EFFECTIVE_KEY, keys.EFFECTIVE_SIGNED_KEY)
            targets += [(f"mod['{m}'].varm", ad.varm, k) for k in varm_keys]
    return targets


class ResultsMixin:
    """``store_results``: latents, gates, contributions, loadings and the model's summary onto the MuData."""

    def store_results(self, mdata: MuData | None = None, overwrite: bool = False, batch_size: int | None = None):
        """Write the model's results onto the MuData.

        Writes ``obsm["X_poems"]`` (posterior means), ``obsm["poems_gates"]`` and ``obs["poems_gate_<modality>"]``,
        ``obsm["poems_contributions"]`` (:meth:`get_contributions`), ``mod[m].varm["poems_W"]``, ``["poems_pstar"]``,
        ``["poems_effective"]`` and ``["poems_effective_signed"]`` (:meth:`get_effective_loadings`, unsigned and
        ``signed=True``; sparse decoder only),
        ``mod[m].var["poems_sigma"]`` (Gaussian modalities: the residual SD in data units) or
        ``mod[m].var["poems_nb_theta"]`` (negative binomial modalities: the inverse dispersion θ, variance
        ``μ + μ²/θ``), and ``uns["poems"]``: model parameters, the factors kept (``"factors"``, in the order of the
        variance they explain) and the cap K (``"n_latent"``), each modality's likelihood (``"likelihoods"``), the
        names of the encoded covariate columns (``"covariates"``, with covariates), θ per modality, how sparse W is
        (``"sparsity"``: :meth:`sparsity_summary`), which factors are active (``"active_factors"``: the table of
        :meth:`active_factors` over these samples, as columns, with the rule's thresholds) and how training ended
        (``"training"``: per restart the epochs run, the best epoch restored and its held-out criterion, the restart
        kept, and ``"factor_r2"``, the variance each kept factor explains, which ordered them). Only the kept factors
        appear anywhere: pruned ones have no column. All of it survives ``mdata.write`` / ``read_h5mu``.

        Parameters
        ----------
        mdata
            MuData with the training features of any of the trained modalities (default: the training MuData); for
            a new cohort lacking a modality, that modality's per-feature results are not written.
        overwrite
            Replace keys that already exist. Without it, existing keys raise an error and nothing is written.
        batch_size
            Minibatch size for inference.

        Returns
        -------
        The MuData written to.

        """
        res = collect(self, mdata, batch_size, ["qz_mean", "alpha", "contributions"])
        mdata = self.adata if mdata is None else mdata
        existing = [f"{where}[{key!r}]" for where, store, key in result_targets(self, mdata) if key in store]
        if existing and not overwrite:
            raise ValueError(
                f"These keys already exist and would be overwritten: {', '.join(existing)}. "
                "Pass overwrite=True to replace them."
            )
        mdata.obsm[keys.LATENT_KEY] = res["qz_mean"].astype(np.float32)
        mdata.obsm[keys.GATES_KEY] = pd.DataFrame(res["alpha"], index=mdata.obs_names, columns=list(self.modalities))
        mdata.obsm[keys.CONTRIBUTIONS_KEY] = contributions_frame(self.modalities, res["contributions"], mdata.obs_names)
        for v, m in enumerate(self.modalities):
            mdata.obs[f"{keys.GATE_OBS_PREFIX}{m}"] = res["alpha"][:, v]
            if m not in mdata.mod:  # a new cohort without this modality
                continue
            ad = mdata.mod[m]
            likelihood = self.module.likelihoods[v]
            if likelihood.feature_parameter is not None:
                key = keys.feature_parameter_key(likelihood.feature_parameter)
                ad.var[key] = likelihood.feature_parameter_values()
            if self.module.decoder_type == "sparse":
                ad.varm[keys.W_KEY] = self.get_loadings(m).to_numpy()
                ad.varm[keys.PSTAR_KEY] = self.get_slab_probabilities(m).to_numpy()
                z = res["qz_mean"]
                ad.varm[keys.EFFECTIVE_KEY] = effective_loadings(self, v, z, batch_size).to_numpy()
                ad.varm[keys.EFFECTIVE_SIGNED_KEY] = effective_loadings(self, v, z, batch_size, signed=True).to_numpy()
        uns = {
            "params": json.dumps(
                self.init_params_.get("non_kwargs", {}) | self.init_params_.get("kwargs", {}), default=str
            ),
            "modalities": list(self.modalities),
            "factors": self.factor_names(),
            "n_latent": int(self.module.n_latent),
            "likelihoods": dict(self.likelihoods),
        }
        covariates = covariate_names(registered_covariates(self.adata_manager))
        if covariates:
            uns["covariates"] = np.array(covariates, dtype=str)
        if self.module.decoder_type == "sparse":
            kept = self.module.factor_index()
            uns["theta"] = {
                m: self.module.priors[v].theta.index_select(0, kept).cpu().numpy()
                for v, m in enumerate(self.modalities)
            }
            uns["sparsity"] = self.sparsity_summary().to_dict(orient="index")
        if len(res["qz_mean"]) >= 2:  # a variance over samples needs two
            uns[keys.ACTIVE_FACTORS_KEY] = active_factors_record(self, res["qz_mean"])
        summary = getattr(self, "training_summary_", None)
        if summary:
            runs = summary["runs"]
            uns["training"] = {
                "chosen_restart": int(summary["chosen_restart"]),
                "epochs": np.array([r["epochs"] or 0 for r in runs], dtype=np.int64),
                "best_epoch": np.array([-1 if r["best_epoch"] is None else r["best_epoch"] for r in runs]),
                "validation_criterion": np.array(
                    [np.nan if r["validation_criterion"] is None else r["validation_criterion"] for r in runs]
                ),
            }
            if "factor_r2" in summary:  # what ordered the factors when training ended
                uns["training"]["factor_r2"] = np.asarray(summary["factor_r2"], dtype=np.float64)
        if keys.UNS_KEY in mdata.uns and isinstance(mdata.uns[keys.UNS_KEY], Mapping):
            # keep what tl functions stored (variance explained, subtyping metrics, ...)
            kept = {k: v for k, v in mdata.uns[keys.UNS_KEY].items() if k not in UNS_RESULT_KEYS}
            uns = {**kept, **uns}
        mdata.uns[keys.UNS_KEY] = uns
        return mdata
