"""The POEMS model class: scvi-tools front end for MuData."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from mudata import MuData
from scipy import sparse
from scvi.data import AnnDataManager, fields
from scvi.data._manager import AnnDataManagerValidationCheck
from scvi.model.base import BaseModelClass, VAEMixin

from . import _constants as K
from . import _validation as val
from ._data import POEMSDataLoader, POEMSDataSplitter, observed_rows, registered_modalities
from ._factors import FactorsMixin
from ._model_files import ModelFilesMixin
from ._module import POEMSModule
from ._outputs import OutputsMixin
from ._prediction import PredictionMixin
from ._training import TrainingMixin
from ._training_plan import POEMSTrainingPlan

logger = logging.getLogger(__name__)

_CONSTANT_TOL = 1e-8


def _feature_stats(data, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, SD (scale 1 for constant features) and 0/1 weight of each feature over the observed rows."""
    x = data[rows[rows >= 0]]
    x = x.toarray() if sparse.issparse(x) else np.asarray(x)
    x = x.astype(np.float64)
    mean = x.mean(0)
    sd = x.std(0)
    constant = sd <= _CONSTANT_TOL * (1 + np.abs(mean))
    scale = np.where(constant, 1.0, sd)
    return mean.astype(np.float32), scale.astype(np.float32), (~constant).astype(np.float32)


class POEMS(ModelFilesMixin, PredictionMixin, FactorsMixin, OutputsMixin, VAEMixin, TrainingMixin, BaseModelClass):
    """POEMS: Product Of Experts for interpretable Multi-omics integration using Sparse decoding.

    Each modality has an encoder giving a Gaussian expert; a gating network weights the experts per sample; their
    product is the shared posterior ``q(z | x)``; each modality is decoded by a Sparse-VAE decoder in which feature
    ``j`` sees only ``z ⊙ W_v[j]``, with a spike-and-slab lasso prior on ``W_v``.

    Parameters
    ----------
    mdata
        MuData registered with :meth:`setup_mudata`.
    n_latent
        Number of latent factors K.
    n_hidden_encoder
        Width of the encoder MLPs.
    n_layers_encoder
        Depth of the encoder MLPs.
    n_hidden_decoder
        Width of each modality's shared generator in the sparse decoder.
    n_hidden_gate
        Width of the gating MLP.
    dropout
        Dropout rate in the encoders.
    kl_weight
        β: weight of the KL divergence in the ELBO.
    prior_expert
        Include the N(0, I) prior as an expert in the product of experts (the paper's option; off by default:
        it made no difference to the benchmark score, see ``benchmarks/README.md``).
    gating
        ``"learned"`` or ``"fixed"`` (equal weights over the modalities a sample has).
    decoder
        ``"sparse"`` (POEMS) or ``"dense"`` (POEM: no feature-to-factor matrix, no sparsity prior).
    lambda0, lambda1
        Spike and slab rates of the spike-and-slab lasso prior on each ``W_v``, applied as a proximal step (the
        threshold of a link is ``λ*/n`` per sample, n the number of training samples). The defaults were chosen
        by held-out ELBO, sparsity and planted recovery (``benchmarks/search_sparse.py``): with them 14–24 % of
        the loadings of the bundled cohorts stay above 0.01 and 72–84 % are exactly 0. A larger ``lambda0`` gives
        a sparser W at some cost in fit (30: 1–7 % above 0.01); on very small cohorts (tens of samples) lower both,
        or every link may be cut.
    ssl_a, ssl_b
        Beta(a, b) prior on the slab probabilities θ; ``ssl_b=None`` uses ``b = D_v``.
    sigma_prior_df
        ν of the scaled inverse-χ² prior on the per-feature noise variances.
    chunk_size, max_chunk_bytes
        Feature chunking of the sparse decoders (bounded memory for very wide modalities).
    w_init_scale
        SD of the symmetric initial ``W`` (``N(0, w_init_scale²)``: small, near the slab/spike crossover).
    decoder_links
        How the sparse decoders form their first layer: ``"dense"`` (all K factors per feature), ``"sparse"``
        (only the non-zero links of W) or ``"auto"`` (the link path while at most 5 % of a modality's W is
        non-zero, where it was faster on CPU). Same results either way (up to float rounding); see
        :class:`~poems_mu.nn.SparseDecoder` and ``benchmarks/speed.py``.
    links_dense_every
        On the link path, every this many training passes is dense, so that the zero entries of W get their data
        gradient (their way back into the model); in between they reuse the last one.
    modality_dropout
        In training, hide each observed modality of a sample from the encoders with this probability (a sample
        keeps at least one) while still reconstructing all of them, so that the decoders learn to work from the
        posterior of a subset: what :meth:`impute` asks of them. 0 (the default) trains on every sample's full set.

    Examples
    --------
    >>> import poems_mu as pm
    >>> mdata = pm.datasets.breast_tcga()
    >>> pm.POEMS.setup_mudata(mdata)
    >>> model = pm.POEMS(mdata)
    >>> model.train()
    >>> model.store_results()

    """

    _module_cls = POEMSModule
    _data_splitter_cls = POEMSDataSplitter
    _training_plan_cls = POEMSTrainingPlan
    _data_loader_cls = POEMSDataLoader

    def __init__(
        self,
        mdata: MuData,
        n_latent: int = 32,
        n_hidden_encoder: int = 128,
        n_layers_encoder: int = 2,
        n_hidden_decoder: int = 64,
        n_hidden_gate: int = 64,
        dropout: float = 0.1,
        kl_weight: float = 1.0,
        prior_expert: bool = False,
        gating: str = "learned",
        decoder: str = "sparse",
        lambda0: float = 15.0,
        lambda1: float = 1.0,
        ssl_a: float = 1.0,
        ssl_b: float | None = None,
        sigma_prior_df: float = 3.0,
        chunk_size: int | None = None,
        max_chunk_bytes: int | None = None,
        w_init_scale: float = 0.15,
        decoder_links: str = "auto",
        links_dense_every: int = 10,
        modality_dropout: float = 0.0,
    ):
        n_latent = val.check_model_args(
            n_latent,
            n_hidden_encoder,
            n_layers_encoder,
            n_hidden_decoder,
            n_hidden_gate,
            dropout,
            kl_weight,
            sigma_prior_df,
            ssl_a,
            ssl_b,
            chunk_size,
            max_chunk_bytes,
        )
        val.check_links_args(decoder_links, links_dense_every)
        val.check_probability("modality_dropout", modality_dropout)
        super().__init__(mdata)
        self.modalities = registered_modalities(self.adata_manager)
        n_features = [self.summary_stats[f"n_{K.x_key(m)}"] for m in self.modalities]
        rows = observed_rows(self.adata_manager)
        stats = [
            _feature_stats(self.adata_manager.get_from_registry(K.x_key(m)), r)
            for m, r in zip(self.modalities, rows, strict=True)
        ]
        for mod, (_, _, weight) in zip(self.modalities, stats, strict=True):
            val.warn_constant_features(mod, weight == 0)
        means, scales, weights = (list(s) for s in zip(*stats, strict=True))
        self._module_args = (self.modalities, n_features, means, scales, weights)
        self._module_kwargs = {
            "n_latent": n_latent,
            "n_hidden_encoder": n_hidden_encoder,
            "n_layers_encoder": n_layers_encoder,
            "n_hidden_decoder": n_hidden_decoder,
            "n_hidden_gate": n_hidden_gate,
            "dropout": dropout,
            "kl_weight": kl_weight,
            "prior_expert": prior_expert,
            "gating": gating,
            "decoder": decoder,
            "lambda0": lambda0,
            "lambda1": lambda1,
            "ssl_a": ssl_a,
            "ssl_b": ssl_b,
            "sigma_prior_df": sigma_prior_df,
            "chunk_size": chunk_size,
            "max_chunk_bytes": max_chunk_bytes,
            "w_init_scale": w_init_scale,
            "decoder_links": decoder_links,
            "links_dense_every": links_dense_every,
            "modality_dropout": modality_dropout,
        }
        self.module = self._build_module()
        n_obs = np.stack([r >= 0 for r in rows], axis=1).sum(0)
        self._model_summary_string = (
            f"POEMS: {len(self.modalities)} modalities ("
            + ", ".join(
                f"{m}: {d} features, {n} samples" for m, d, n in zip(self.modalities, n_features, n_obs, strict=True)
            )
            + f"), n_latent={n_latent}, decoder={decoder}, gating={gating}, prior_expert={prior_expert}, "
            f"kl_weight={kl_weight}, lambda0={lambda0}, lambda1={lambda1}."
        )
        self.init_params_ = self._get_init_params(locals())

    # ------------------------------------------------------------------------------------------------------
    # setup
    # ------------------------------------------------------------------------------------------------------
    @classmethod
    def setup_anndata(cls, adata, *args, **kwargs):
        """Not supported: POEMS integrates several modalities; use :meth:`setup_mudata`."""
        raise NotImplementedError(
            "POEMS needs a MuData object with one AnnData per modality: use `POEMS.setup_mudata(mdata)`."
        )

    @classmethod
    def setup_mudata(
        cls,
        mdata: MuData,
        modalities: Sequence[str] | None = None,
        layers: Mapping[str, str | None] | str | None = None,
        nan_rows_as_missing: bool = False,
        **kwargs,
    ) -> None:
        """Register a MuData for POEMS.

        Any number of modalities, each with its own features, may be used. A sample may lack some modalities
        (MuData's union of samples): it is gathered through ``mdata.obsmap`` and masked, never padded in place.
        Beyond scvi's registry entries in ``.uns``, the MuData is not modified.

        Parameters
        ----------
        mdata
            The MuData to register.
        modalities
            Names of the modalities to use (default: all of ``mdata.mod``).
        layers
            Layer holding the data of each modality, as a mapping ``{modality: layer}`` (missing entries and
            ``None`` mean ``.X``), or one layer name for all modalities.
        nan_rows_as_missing
            Treat a sample whose whole row of a modality is NaN as not having that modality. Otherwise any
            non-finite value is an error.
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`.

        """
        setup_method_args = cls._get_setup_method_args(**locals())
        val.check_mudata(mdata)
        modalities = val.resolve_modalities(mdata, modalities)
        layers = val.resolve_layers(mdata, modalities, layers)
        for mod in modalities:
            val.check_modality_data(mod, mdata.mod[mod], layers[mod], nan_rows_as_missing)
            val.check_obsmap(mdata, mod)
        # the resolved choices are what a saved model must be re-registered with
        setup_method_args["setup_args"].update({"modalities": modalities, "layers": layers})
        mudata_fields = [
            fields.MuDataLayerField(K.x_key(mod), layers[mod], mod_key=mod, is_count_data=False, mod_required=True)
            for mod in modalities
        ]
        adata_manager = AnnDataManager(
            fields=mudata_fields,
            setup_method_args=setup_method_args,
            validation_checks=AnnDataManagerValidationCheck(check_fully_paired_mudata=False),
        )
        adata_manager.register_fields(mdata, **kwargs)
        observed = np.stack([r >= 0 for r in observed_rows(adata_manager)], axis=1)
        val.check_coverage(mdata, modalities, observed)
        cls.register_manager(adata_manager)

    # ------------------------------------------------------------------------------------------------------
    # outputs
    # ------------------------------------------------------------------------------------------------------
    def _validate_anndata(self, adata: MuData | None = None, copy_if_view: bool = True):
        # a MuData new to this model passes the checks of setup_mudata and must have the training features
        # (the getters of _outputs.py and impute read a query directly and accept a cohort lacking modalities;
        # scvi's own methods, e.g. get_elbo, register it and need them all)
        if adata is not None and self.adata_manager is not None and self.get_anndata_manager(adata) is None:
            var_names = {m: self.adata.mod[m].var_names for m in self.modalities}
            present = val.check_query_mudata(adata, self.adata_manager.registry["setup_args"], var_names)
            if present != list(self.modalities):
                lacking = [m for m in self.modalities if m not in present]
                raise ValueError(
                    f"This method needs every trained modality, and this MuData lacks {lacking}. The latents, "
                    "gates, contributions and `impute` work on such a cohort."
                )
        return super()._validate_anndata(adata, copy_if_view=copy_if_view)

    # ------------------------------------------------------------------------------------------------------
    # results on the MuData
    # ------------------------------------------------------------------------------------------------------
    def _result_targets(self, mdata: MuData) -> list[tuple[str, object, str]]:
        targets = [("obsm", mdata.obsm, k) for k in (K.LATENT_KEY, K.GATES_KEY, K.CONTRIBUTIONS_KEY)]
        targets.append(("uns", mdata.uns, K.UNS_KEY))
        targets += [("obs", mdata.obs, f"{K.GATE_OBS_PREFIX}{m}") for m in self.modalities]
        for m in self.modalities:
            if m not in mdata.mod:
                continue
            ad = mdata.mod[m]
            targets.append((f"mod['{m}'].var", ad.var, K.SIGMA_KEY))
            if self.module.decoder_type == "sparse":
                keys = (K.W_KEY, K.PSTAR_KEY, K.EFFECTIVE_KEY, K.EFFECTIVE_SIGNED_KEY)
                targets += [(f"mod['{m}'].varm", ad.varm, k) for k in keys]
        return targets

    def store_results(self, mdata: MuData | None = None, overwrite: bool = False, batch_size: int | None = None):
        """Write the model's results onto the MuData.

        Writes ``obsm["X_poems"]`` (posterior means), ``obsm["poems_gates"]`` and ``obs["poems_gate_<modality>"]``,
        ``obsm["poems_contributions"]`` (:meth:`get_contributions`), ``mod[m].varm["poems_W"]``, ``["poems_pstar"]``,
        ``["poems_effective"]`` and ``["poems_effective_signed"]`` (:meth:`get_effective_loadings`, unsigned and
        ``signed=True``; sparse decoder only),
        ``mod[m].var["poems_sigma"]`` and ``uns["poems"]``: model parameters, θ per modality, how sparse W is
        (``"sparsity"``: per modality the share of ``|W| > 0.01``, of exact zeros and of slab links p* > 0.5), which
        factors are active (``"active_factors"``: the table of :meth:`active_factors` over these samples, as columns,
        with the rule's thresholds; plots and ``tl.top_features`` show only active factors by default) and how
        training ended (``"training"``: per restart the epochs run, the best epoch restored and its held-out
        criterion, and the restart kept). All of it survives ``mdata.write`` / ``read_h5mu``.

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
        res = self._collect(mdata, batch_size, ["qz_mean", "alpha", "contributions"])
        mdata = self.adata if mdata is None else mdata
        existing = [f"{where}[{key!r}]" for where, store, key in self._result_targets(mdata) if key in store]
        if existing and not overwrite:
            raise ValueError(
                f"These keys already exist and would be overwritten: {', '.join(existing)}. "
                "Pass overwrite=True to replace them."
            )
        mdata.obsm[K.LATENT_KEY] = res["qz_mean"].astype(np.float32)
        mdata.obsm[K.GATES_KEY] = pd.DataFrame(res["alpha"], index=mdata.obs_names, columns=list(self.modalities))
        mdata.obsm[K.CONTRIBUTIONS_KEY] = self._contributions_frame(res["contributions"], mdata.obs_names)
        for v, m in enumerate(self.modalities):
            mdata.obs[f"{K.GATE_OBS_PREFIX}{m}"] = res["alpha"][:, v]
            if m not in mdata.mod:  # a new cohort without this modality
                continue
            ad = mdata.mod[m]
            ad.var[K.SIGMA_KEY] = self.get_feature_sigma(m).to_numpy()
            if self.module.decoder_type == "sparse":
                ad.varm[K.W_KEY] = self.get_loadings(m).to_numpy()
                ad.varm[K.PSTAR_KEY] = self.get_slab_probabilities(m).to_numpy()
                z = res["qz_mean"]
                ad.varm[K.EFFECTIVE_KEY] = self._effective_loadings(v, z, batch_size).to_numpy()
                ad.varm[K.EFFECTIVE_SIGNED_KEY] = self._effective_loadings(v, z, batch_size, signed=True).to_numpy()
        uns = {
            "params": json.dumps(
                self.init_params_.get("non_kwargs", {}) | self.init_params_.get("kwargs", {}), default=str
            ),
            "modalities": list(self.modalities),
            "factors": self.factor_names(),
        }
        if self.module.decoder_type == "sparse":
            uns["theta"] = {m: self.module.priors[v].theta.cpu().numpy().copy() for v, m in enumerate(self.modalities)}
            uns["sparsity"] = self.sparsity_summary().to_dict(orient="index")
        if len(res["qz_mean"]) >= 2:  # a variance over samples needs two
            uns[K.ACTIVE_FACTORS_KEY] = self._active_factors_record(res["qz_mean"])
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
        if K.UNS_KEY in mdata.uns and isinstance(mdata.uns[K.UNS_KEY], Mapping):
            # keep what tl functions stored (variance explained, subtyping metrics, ...)
            uns = {**mdata.uns[K.UNS_KEY], **uns}
        mdata.uns[K.UNS_KEY] = uns
        return mdata
