"""The POEMS model class: scvi-tools front end for MuData."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
from mudata import MuData
from scvi.data import AnnDataManager, fields
from scvi.data._manager import AnnDataManagerValidationCheck
from scvi.model.base import BaseModelClass, VAEMixin

from . import _constants as K
from . import _validation as val
from ._covariates import (
    CovariatesField,
    covariate_keys,
    resolve_size_factor_keys,
)
from ._data import POEMSDataLoader, POEMSDataSplitter, observed_rows, registered_modalities
from ._factors import FactorsMixin
from ._likelihoods import module_starts, resolve_likelihoods
from ._model_files import ModelFilesMixin
from ._module import POEMSModule
from ._outputs import OutputsMixin
from ._prediction import PredictionMixin
from ._query import check_query_data, held_modalities
from ._results import ResultsMixin
from ._training import TrainingMixin
from ._training_plan import POEMSTrainingPlan

logger = logging.getLogger(__name__)


class POEMS(
    ModelFilesMixin,
    PredictionMixin,
    FactorsMixin,
    ResultsMixin,
    OutputsMixin,
    VAEMixin,
    TrainingMixin,
    BaseModelClass,
):
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
    likelihood
        Likelihood of each modality: one name for all, or ``{modality: name}`` (unnamed modalities are Gaussian).
        ``"gaussian"``: continuous data, standardised per feature. ``"nb"``: raw counts (negative binomial with a
        per-feature dispersion; mean ``ℓ_i exp(η_ij)``, ``ℓ_i`` the library size: the total of the sample's registered
        counts, or ``setup_mudata(size_factor_key=...)``); its encoder sees ``log1p`` of the counts at the median
        library size, standardised. ``"bernoulli"``: 0/1 data such as mutation calls (logit per feature). ``W`` means
        the same under every likelihood: ``W[j, k] = 0`` removes factor k from feature j's link-scale output.
        With a count modality, train with ``modality_dropout=0.25``: on planted counts it took ``"nb"`` from behind
        to level with or ahead of a Gaussian on log1p in recovering W and in cross-modal prediction
        (``benchmarks/likelihoods_planted.py``).

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
        likelihood: str | Mapping[str, str] = "gaussian",
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
        names = resolve_likelihoods(likelihood, self.modalities)
        #: the likelihood of each modality, ``{modality: name}``
        self.likelihoods = dict(zip(self.modalities, names, strict=True))
        starts = module_starts(self.adata_manager, self.modalities, names, rows)
        for mod, weight in zip(self.modalities, starts["weight"], strict=True):
            val.warn_constant_features(mod, weight == 0)
        self._module_args = (self.modalities, n_features, starts["mean"], starts["scale"], starts["weight"])
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
            "likelihoods": names,
            "n_covariates": int(self.summary_stats.get("n_covariates", 0)),
            "log_library_reference": starts["log_library_reference"],
            "link_bias": starts["bias"],
        }
        self.module = self._build_module()
        n_obs = np.stack([r >= 0 for r in rows], axis=1).sum(0)
        self._model_summary_string = (
            f"POEMS: {len(self.modalities)} modalities ("
            + ", ".join(
                f"{m}: {d} features, {n} samples" for m, d, n in zip(self.modalities, n_features, n_obs, strict=True)
            )
            + f"), n_latent={n_latent}, decoder={decoder}, gating={gating}, prior_expert={prior_expert}, "
            f"kl_weight={kl_weight}, lambda0={lambda0}, lambda1={lambda1}, likelihoods={self.likelihoods}, "
            f"covariate columns: {self._module_kwargs['n_covariates']}."
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
        batch_key: str | None = None,
        categorical_covariate_keys: Sequence[str] | None = None,
        continuous_covariate_keys: Sequence[str] | None = None,
        size_factor_key: str | Mapping[str, str] | None = None,
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
        batch_key
            Column of ``mdata.obs`` with each sample's batch (plate, centre, cohort). Like the other categorical
            covariates it enters every encoder (one-hot, next to the data) and every decoder as an additive
            per-feature effect on the link scale (``η_j = f_j(z ⊙ W_j) + Γ_j · s``), so the latents need not carry
            it and ``W`` keeps its meaning. Standardisation stays global (not per batch): the batch effects are the
            model's to learn.
        categorical_covariate_keys
            More categorical columns of ``mdata.obs`` (e.g. sex, site), each one-hot encoded.
        continuous_covariate_keys
            Numeric columns of ``mdata.obs`` (e.g. age, purity), standardised with their training mean and SD.
        size_factor_key
            For count modalities (``likelihood="nb"``), the column of ``mdata.obs`` with each sample's library size,
            or ``{modality: column}``; default: the total of the sample's registered counts.

        Every sample needs a value of every covariate (NaN is an error). The categories seen here are the ones a
        trained model knows: a new cohort with another category is an error naming it (map it to a training
        category, or train with it). Covariates and library sizes are read from ``mdata.obs``, never written.
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`.

        """
        setup_method_args = cls._get_setup_method_args(**locals())
        val.check_mudata(mdata)
        modalities = val.resolve_modalities(mdata, modalities)
        layers = val.resolve_layers(mdata, modalities, layers)
        covariates = covariate_keys(batch_key, categorical_covariate_keys, continuous_covariate_keys)
        resolve_size_factor_keys(mdata, modalities, size_factor_key)
        for mod in modalities:
            val.check_modality_data(mod, mdata.mod[mod], layers[mod], nan_rows_as_missing)
            val.check_obsmap(mdata, mod)
        # the resolved choices are what a saved model must be re-registered with
        setup_method_args["setup_args"].update({"modalities": modalities, "layers": layers})
        mudata_fields = [
            fields.MuDataLayerField(K.x_key(mod), layers[mod], mod_key=mod, is_count_data=False, mod_required=True)
            for mod in modalities
        ]
        mudata_fields.append(CovariatesField(covariates))
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
        # (its covariates are checked when scvi transfers the setup to it: CovariatesField.transfer_field)
        if adata is not None and self.adata_manager is not None and self.get_anndata_manager(adata) is None:
            held = held_modalities(self, adata)
            if list(held) != list(self.modalities):
                lacking = [m for m in self.modalities if m not in held]
                raise ValueError(
                    f"This method needs every trained modality, and this MuData lacks {lacking}. The latents, "
                    "gates, contributions and `impute` work on such a cohort."
                )
            check_query_data(self, adata, held)
        return super()._validate_anndata(adata, copy_if_view=copy_if_view)
