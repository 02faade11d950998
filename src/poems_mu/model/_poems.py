"""The POEMS model class: the scvi-tools front end for MuData."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from mudata import MuData
from scvi.data import AnnDataManager
from scvi.data._manager import AnnDataManagerValidationCheck
from scvi.model.base import BaseModelClass, VAEMixin

from poems_mu._constants import x_key
from poems_mu.data import POEMSDataLoader, POEMSDataSplitter
from poems_mu.data._checks import (
    check_coverage,
    check_modality_data,
    check_mudata,
    check_obsmap,
    resolve_layers,
    resolve_modalities,
    warn_constant_features,
)
from poems_mu.data._covariates import covariate_keys, resolve_size_factor_keys
from poems_mu.data._feature_sets import FeatureSets, resolve_feature_sets
from poems_mu.data._query import check_query_data, held_modalities
from poems_mu.data._registry import mudata_fields, observed_rows, registered_modalities
from poems_mu.data._statistics import feature_statistics, resolve_likelihoods
from poems_mu.module import DEFAULTS, Hyperparameters, POEMSModule
from poems_mu.module._hyperparameters import Decoder, DecoderLinks, FactorStart, Gating
from poems_mu.train import POEMSTrainingPlan

from ._getters import GettersMixin
from ._impute import ImputeMixin
from ._results import ResultsMixin
from ._save_load import LOADING, SaveLoadMixin
from ._starts import free_start, set_starts, set_views, start_factors, views_of
from ._training import TrainingMixin

logger = logging.getLogger(__name__)


class POEMS(
    SaveLoadMixin,
    ImputeMixin,
    ResultsMixin,
    GettersMixin,
    VAEMixin,
    TrainingMixin,
    BaseModelClass,
):
    """POEMS: Product Of Experts for interpretable Multi-omics integration using Sparse decoding.

    Each modality has an encoder giving a Gaussian expert; a gating network weights the experts per sample; their
    product is the shared posterior ``q(z | x)``; each modality is decoded by a Sparse-VAE decoder in which feature
    ``j`` sees only ``z ⊙ W_v[j]``, with a spike-and-slab lasso prior on ``W_v``. How the defaults were chosen, and
    what they give on the bundled cohorts, is in the documentation's model page.

    Parameters
    ----------
    mdata
        MuData registered with :meth:`setup_mudata`.
    n_latent
        Most latent factors K (a cap: the factors the data do not need are pruned during training, see
        ``lambda_factor``; the rest are ordered by the variance they explain when training ends).
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
        Include the N(0, I) prior as an expert in the product of experts (the paper's option).
    gating
        ``"learned"`` or ``"fixed"`` (equal weights over the modalities a sample has).
    decoder
        ``"sparse"`` (POEMS) or ``"dense"`` (POEM: no feature-to-factor matrix, no sparsity prior).
    lambda0, lambda1
        Spike and slab rates of the spike-and-slab lasso prior on each ``W_v`` (``lambda0 > lambda1 > 0``), applied
        as a proximal step: the threshold of a link is ``λ*/n`` per sample, n the number of training samples. A
        larger ``lambda0`` gives a sparser W at some cost in fit; on very small cohorts (tens of samples) lower both,
        or every link may be cut.
    lambda_factor
        Strength of the factor penalty ``λ_f √D Σ_k ‖W_{:,k}‖₂``: a group lasso on each factor's loadings over all
        modalities together (D: the number of features), applied as a proximal step like the spike-and-slab one. It
        empties the columns the data do not need; a factor with no link left in any modality is pruned. 0 turns it
        off: do so on cohorts of tens of samples, where it outweighs the data and empties every factor, and choose
        ``n_latent`` by :func:`~poems_mu.tl.cross_validate` instead.
    ssl_a, ssl_b
        Beta(a, b) prior on the slab probabilities θ; ``ssl_b=None`` uses ``b = D_v``.
    sigma_prior_df
        ν of the scaled inverse-χ² prior on the per-feature noise variances.
    chunk_size, max_chunk_bytes
        Feature chunking of the sparse decoders (bounded memory for very wide modalities); ``None`` chooses from
        the minibatch size and the device.
    w_init_scale
        SD of the symmetric initial ``W`` (``N(0, w_init_scale²)``: small, near the slab/spike crossover).
    factor_start
        How the free factors start. ``"pca"`` (default): as many factors as parallel analysis finds components
        above noise in a joint PCA of the modalities (each weighted equally, registered covariates regressed out,
        feature sets' factors projected out) start at those components, rotated by varimax: their links in W and
        their units in every encoder; the other factors start at random. Deterministic given the data, so that runs
        from different seeds land on the same factors; it densifies every modality once at set-up. ``"random"``: the
        random initialisation of the network (needed by ``decoder="dense"``). The two are compared in the
        documentation's model page.
    decoder_links
        How the sparse decoders form their first layer: ``"dense"`` (all K factors per feature), ``"sparse"``
        (only the non-zero links of W) or ``"auto"`` (the link path while at most 5 % of a modality's W is
        non-zero). Same results either way (up to float rounding); see :class:`~poems_mu.nn.SparseDecoder`.
    links_dense_every
        On the link path, every this many training passes is dense, so that the zero entries of W get their data
        gradient (their way back into the model); in between they reuse the last one.
    modality_dropout
        In training, hide each observed modality of a sample from the encoders with this probability (a sample
        keeps at least one) while still reconstructing all of them, so that the decoders learn to work from the
        posterior of a subset: what :meth:`impute` asks of them. 0 trains on every sample's full set; the docs
        recommend 0.25 with a count modality.
    feature_sets
        Known feature sets (gene sets, pathways) that guide factors, in decoupler's long format: one DataFrame with
        columns ``modality``, ``source`` and ``target`` (what :func:`~poems_mu.datasets.breast_tcga_feature_sets`
        returns) or ``{modality: net}`` with columns ``source`` and ``target``. Each ``source`` is one set, one
        *annotated factor* named by that string, whichever modalities list it; the model adds up to ``n_latent`` free
        factors beside them. Targets that are not features of their modality are left out; a set with no feature
        left is an error. See :func:`~poems_mu.tl.refined_sets` for what the data did to each set.
    feature_set_confidence
        Prior probability that a link of an annotated factor is in the slab for a member of the set (a non-member:
        one minus it), in place of the factor's learned rate θ_k; in a modality where a set has no entry its links
        keep θ_k. At 0.99 (MuVI's and MOFA-FLEX's default) a member's link is penalised at about ``λ1`` and others
        at about ``λ0`` until the data say otherwise: the data can still drop members and add features.
    likelihood
        Likelihood of each modality: one name for all, or ``{modality: name}`` (unnamed modalities are Gaussian).
        ``"gaussian"``: continuous data, standardised per feature. ``"nb"``: raw counts (negative binomial with a
        per-feature dispersion; mean ``ℓ_i exp(η_ij)``, ``ℓ_i`` the library size: the total of the sample's registered
        counts, or ``setup_mudata(size_factor_key=...)``); its encoder sees ``log1p`` of the counts at the median
        library size, standardised. ``"bernoulli"``: 0/1 data such as mutation calls (logit per feature). ``W`` means
        the same under every likelihood: ``W[j, k] = 0`` removes factor k from feature j's link-scale output.

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
        n_latent: int = DEFAULTS.n_latent,
        n_hidden_encoder: int = DEFAULTS.n_hidden_encoder,
        n_layers_encoder: int = DEFAULTS.n_layers_encoder,
        n_hidden_decoder: int = DEFAULTS.n_hidden_decoder,
        n_hidden_gate: int = DEFAULTS.n_hidden_gate,
        dropout: float = DEFAULTS.dropout,
        kl_weight: float = DEFAULTS.kl_weight,
        prior_expert: bool = DEFAULTS.prior_expert,
        gating: Gating = DEFAULTS.gating,
        decoder: Decoder = DEFAULTS.decoder,
        lambda0: float = DEFAULTS.lambda0,
        lambda1: float = DEFAULTS.lambda1,
        lambda_factor: float = DEFAULTS.lambda_factor,
        ssl_a: float = DEFAULTS.ssl_a,
        ssl_b: float | None = DEFAULTS.ssl_b,
        sigma_prior_df: float = DEFAULTS.sigma_prior_df,
        chunk_size: int | None = DEFAULTS.chunk_size,
        max_chunk_bytes: int | None = DEFAULTS.max_chunk_bytes,
        w_init_scale: float = DEFAULTS.w_init_scale,
        factor_start: FactorStart = DEFAULTS.factor_start,
        decoder_links: DecoderLinks = DEFAULTS.decoder_links,
        links_dense_every: int = DEFAULTS.links_dense_every,
        modality_dropout: float = DEFAULTS.modality_dropout,
        likelihood: str | Mapping[str, str] = DEFAULTS.likelihood,
        feature_sets: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
        feature_set_confidence: float = DEFAULTS.feature_set_confidence,
    ):
        self.init_params_ = self._get_init_params(locals())
        hparams = Hyperparameters(**{k: v for k, v in self.init_params_["non_kwargs"].items() if k != "feature_sets"})
        super().__init__(mdata)
        self.modalities = registered_modalities(self.adata_manager)
        sets = self._resolve_feature_sets(feature_sets, hparams)
        n_features = [self.summary_stats[f"n_{x_key(m)}"] for m in self.modalities]
        rows = observed_rows(self.adata_manager)
        names = resolve_likelihoods(hparams.likelihood, self.modalities)
        #: the likelihood of each modality, ``{modality: name}``
        self.likelihoods = dict(zip(self.modalities, names, strict=True))
        statistics = feature_statistics(self.adata_manager, self.modalities, names, rows)
        for mod, stats in zip(self.modalities, statistics, strict=True):
            warn_constant_features(mod, stats.mask == 0)
        n_covariates = int(self.summary_stats.get("n_covariates", 0))
        self._module_inputs = {
            "modalities": self.modalities,
            "n_features": n_features,
            "statistics": statistics,
            "hparams": hparams,
            "likelihoods": names,
            "n_covariates": n_covariates,
            "set_members": None if sets is None else [sets.prior_members(m) for m in self.modalities],
            "set_start": None,
            "set_start_p": None,
        }
        views = None
        if sets is not None and not LOADING.get():
            # each annotated factor starts as its set's first principal component where its members co-vary (a model
            # being loaded takes its links and the test's p-values from its saved state instead)
            views = set_views(self)
            starts = set_starts(self, views)
            self._module_inputs["set_start"] = starts.links
            self._module_inputs["set_start_p"] = starts.coherence_p
            self._set_scores = starts.scores
        self.module = self._module_cls(**self._module_inputs)
        #: the start of the free factors (``factor_start="pca"``; None for the random start and for a loaded model)
        self._free_start = None
        if hparams.factor_start == "pca" and not LOADING.get():
            views = views_of(self, range(len(self.modalities)), views)  # every modality, read once for both uses
            self._free_start = free_start(self, views)
        start_factors(self, views)
        n_obs = np.stack([r >= 0 for r in rows], axis=1).sum(0)
        h = hparams
        self._model_summary_string = (
            f"POEMS: {len(self.modalities)} modalities ("
            + ", ".join(
                f"{m}: {d} features, {n} samples" for m, d, n in zip(self.modalities, n_features, n_obs, strict=True)
            )
            + f"), n_latent={h.n_latent}, decoder={h.decoder}, gating={h.gating}, prior_expert={h.prior_expert}, "
            f"kl_weight={h.kl_weight}, lambda0={h.lambda0}, lambda1={h.lambda1}, likelihoods={self.likelihoods}, "
            f"covariate columns: {n_covariates}" + ("." if sets is None else f", feature sets: {len(sets.names)}.")
        )

    def _resolve_feature_sets(self, feature_sets, hparams: Hyperparameters) -> FeatureSets | None:
        """Match ``feature_sets`` to the features; keep them in the init parameters as plain lists (a saved model
        then needs no pickle, and loading it rebuilds the same sets).
        """
        #: names of the feature sets (the annotated factors), in order
        self.feature_set_names: list[str] = []
        self._feature_sets = None  # matched to the features; what pm.tl.refined_sets reads
        self._set_scores = None  # the started sets' first-component scores (samples × sets), for the encoders' start
        if feature_sets is None:
            return None
        if hparams.decoder != "sparse":
            raise ValueError("`feature_sets` guide the links of the sparse decoder: use decoder='sparse'.")
        var_names = {m: list(self.adata.mod[m].var_names) for m in self.modalities}
        sets = resolve_feature_sets(feature_sets, var_names)
        self.feature_set_names = list(sets.names)
        self._feature_sets = sets
        self.init_params_["non_kwargs"]["feature_sets"] = sets.record
        return sets

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
        check_mudata(mdata)
        modalities = resolve_modalities(mdata, modalities)
        layers = resolve_layers(mdata, modalities, layers)
        covariates = covariate_keys(batch_key, categorical_covariate_keys, continuous_covariate_keys)
        resolve_size_factor_keys(mdata, modalities, size_factor_key)
        for mod in modalities:
            check_modality_data(mod, mdata.mod[mod], layers[mod], nan_rows_as_missing)
            check_obsmap(mdata, mod)
        # the resolved choices are what a saved model must be re-registered with
        setup_method_args["setup_args"].update({"modalities": modalities, "layers": layers})
        adata_manager = AnnDataManager(
            fields=mudata_fields(modalities, layers, covariates),
            setup_method_args=setup_method_args,
            validation_checks=AnnDataManagerValidationCheck(check_fully_paired_mudata=False),
        )
        adata_manager.register_fields(mdata, **kwargs)
        observed = np.stack([r >= 0 for r in observed_rows(adata_manager)], axis=1)
        check_coverage(mdata, modalities, observed)
        cls.register_manager(adata_manager)

    # ------------------------------------------------------------------------------------------------------
    # a MuData new to this model
    # ------------------------------------------------------------------------------------------------------
    def _validate_anndata(self, adata: MuData | None = None, copy_if_view: bool = True):
        # a MuData new to this model passes the checks of setup_mudata and must have the training features: the
        # getters and impute read a query directly and accept a cohort lacking modalities; scvi's own methods (e.g.
        # get_elbo) register it and need them all; scvi checks its covariates when it transfers the setup to it
        # (CovariatesField.transfer_field)
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
