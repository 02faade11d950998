"""The POEMS torch module: per-modality encoders, gated product of experts, sparse decoders, likelihoods."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn
from torch.distributions import Normal

from poems_mu._constants import COVARIATES_KEY, library_key, mask_key, x_key
from poems_mu.nn import (
    CovariateEffects,
    DenseDecoder,
    FeatureStatistics,
    GatingNetwork,
    ModalityEncoder,
    SparseDecoder,
    SpikeSlabLasso,
    annotated_prior_logits,
    count_sets,
    drop_experts,
    make_likelihood,
    product_of_experts,
    shrink_columns,
)

from ._hyperparameters import Hyperparameters
from ._sparsity import LINK_THRESHOLD, sparsity_metrics, sparsity_statistics
from ._starts import start_set_links


class POEMSModule(BaseModuleClass):
    """POEMS: Product Of Experts for interpretable Multi-omics integration using Sparse decoding.

    Each modality's encoder sees its data through its likelihood's view, standardised per feature
    (:meth:`~poems_mu.nn.Likelihood.encoder_input`); the encoders' Gaussian experts are weighted per sample by the
    gate and fused by a product of experts; each modality's decoder gives every feature's value on its likelihood's
    link scale. Covariates (one-hot categories and standardised continuous values, C columns) enter every encoder
    with the data and every decoder additively per feature (:class:`~poems_mu.nn.CovariateEffects`).

    The spike-and-slab penalty on each ``W`` is not part of the autograd loss: the training plan applies it as a
    proximal (soft-threshold) step after every optimizer step (:meth:`proximal_step`), then the E-step. It is still
    reported, in ``kl_global`` and as ``ssl_penalty``. So is the factor penalty ``λ_f √D Σ_k ‖W_{:,k}‖₂`` on each
    factor's loadings over all modalities together (``lambda_factor``; D the number of features; ``factor_penalty``),
    whose proximal step empties the columns the data do not need.

    K (``n_latent``) is a cap. The buffer ``factor_kept`` marks the factors in use: a factor whose column of W is 0 in
    every modality is pruned (:func:`~poems_mu.module._factors.prune_empty_factors`) and leaves the computation:
    the encoders compute, and the posterior, the KL term, the gate and the decoders see, only the kept factors, so
    ``z`` has :attr:`n_factors` ≤ K columns.

    Parameters
    ----------
    modalities
        Modality names, in registry order.
    n_features
        Number of features of each modality.
    statistics
        Per modality, the :class:`~poems_mu.nn.FeatureStatistics` its likelihood and decoder start from.
    hparams
        The model's :class:`~poems_mu.module.Hyperparameters`.
    likelihoods
        Likelihood name of each modality (see :data:`~poems_mu.nn.LIKELIHOODS`).
    n_covariates
        Number C of encoded covariate columns (0: no covariates).
    set_members
        Feature sets, per modality a (D × A) array (see :func:`~poems_mu.nn.annotated_prior_logits`), or ``None``.
        Their A annotated factors come first, before the ``n_latent`` free ones, and are never pruned; the factor
        penalty of each is ``λ_f √m_k ‖W_{:,k}‖₂``, ``m_k`` the size of its set.
    set_start
        Per modality the (D × A) starting links of the annotated factors; NaN, or the default, is the usual random
        start on the members (0 elsewhere).
    set_start_p
        Per set, the p-value of the test that decided its start (kept as the buffer ``set_start_p``, saved with the
        model; NaN when not given).

    """

    def __init__(
        self,
        modalities: Sequence[str],
        n_features: Sequence[int],
        statistics: Sequence[FeatureStatistics],
        hparams: Hyperparameters,
        likelihoods: Sequence[str],
        n_covariates: int = 0,
        set_members: Sequence[np.ndarray | None] | None = None,
        set_start: Sequence[np.ndarray] | None = None,
        set_start_p: Sequence[float] | None = None,
    ):
        super().__init__()
        h = hparams
        self.hparams = hparams
        self.modalities = list(modalities)
        self.n_annotated = count_sets(set_members)
        self.n_latent = self.n_annotated + h.n_latent
        n_latent = self.n_latent
        self.n_covariates = int(n_covariates)
        self.kl_weight = float(h.kl_weight)
        self.prior_expert = h.prior_expert
        self.modality_dropout = float(h.modality_dropout)
        self.decoder_type = h.decoder
        self.encoders = nn.ModuleList(
            [
                ModalityEncoder(d + self.n_covariates, n_latent, h.n_hidden_encoder, h.n_layers_encoder, h.dropout)
                for d in n_features
            ]
        )
        self.gate = GatingNetwork(len(self.modalities), n_latent, h.n_hidden_gate, fixed=h.gating == "fixed")
        if h.decoder == "sparse":
            chunking = {"chunk_size": h.chunk_size, "max_chunk_bytes": h.max_chunk_bytes}
            links = {"links": h.decoder_links, "links_dense_every": h.links_dense_every}
            self.decoders = nn.ModuleList(
                [
                    SparseDecoder(d, n_latent, h.n_hidden_decoder, w_init_scale=h.w_init_scale, **chunking, **links)
                    for d in n_features
                ]
            )
            logits = annotated_prior_logits(set_members, n_features, h.n_latent, h.feature_set_confidence)
            self.priors = nn.ModuleList(
                [
                    SpikeSlabLasso(d, n_latent, h.lambda0, h.lambda1, h.ssl_a, h.ssl_b, prior_logit=logit)
                    for d, logit in zip(n_features, logits, strict=True)
                ]
            )
        else:
            self.decoders = nn.ModuleList([DenseDecoder(d, n_latent, h.n_hidden_decoder) for d in n_features])
            self.priors = None
        self.likelihoods = nn.ModuleList(
            [
                make_likelihood(name, d, h.sigma_prior_df, stats)
                for name, d, stats in zip(likelihoods, n_features, statistics, strict=True)
            ]
        )
        self.register_buffer("factor_kept", torch.ones(n_latent, dtype=torch.bool))
        self.register_buffer("factor_empty_for", torch.zeros(n_latent, dtype=torch.int64))
        self.factor_penalty_weight = float(h.lambda_factor) * math.sqrt(sum(n_features))
        # per factor: λ_f √(size of its group): all D features for a free factor, its set's members for an annotated one
        weights = torch.full((n_latent,), self.factor_penalty_weight)
        if set_members is not None:
            sizes = sum(np.nan_to_num(np.asarray(m, dtype=np.float64)).sum(0) for m in set_members if m is not None)
            weights[: self.n_annotated] = float(h.lambda_factor) * torch.as_tensor(sizes).clamp_min(1.0).sqrt()
        self.register_buffer("factor_penalty_weights", weights, persistent=False)
        self._kept = None  # the indices of the kept factors, or None while every factor is kept
        self.register_load_state_dict_post_hook(lambda module, keys: module.refresh_factors())
        self.covariate_effects = None
        if self.n_covariates:
            self.covariate_effects = nn.ModuleList([CovariateEffects(d, self.n_covariates) for d in n_features])
        with torch.no_grad():  # each decoder starts at its data's mean on the link scale
            for dec, stats in zip(self.decoders, statistics, strict=True):
                bias = dec.b if h.decoder == "sparse" else dec.net[-1].bias
                bias.copy_(torch.as_tensor(stats.bias, dtype=bias.dtype))
        if set_members is not None:
            start_set_links(self, set_members, set_start, set_start_p)

    # -- the factors in use --------------------------------------------------------------------------------------
    @property
    def n_factors(self) -> int:
        """Number of factors in use (the columns of ``z``): K minus the pruned ones."""
        return self.n_latent if self._kept is None else len(self._kept)

    def kept_factors(self) -> torch.Tensor | None:
        """Indices of the factors in use, or ``None`` while all K are (the computation then takes no index)."""
        return self._kept

    def factor_index(self) -> torch.Tensor:
        """Indices of the factors in use, in order (all K before any is pruned)."""
        if self._kept is None:
            return torch.arange(self.n_latent, device=self.factor_kept.device)
        return self._kept

    def refresh_factors(self) -> None:
        """Re-read ``factor_kept`` (after it was loaded or restored in place)."""
        kept = self.factor_kept
        self._kept = None if bool(kept.all()) else torch.nonzero(kept).flatten()

    # -- scvi interface ------------------------------------------------------------------------------------
    def _get_inference_input(self, tensors: dict[str, torch.Tensor]) -> dict:
        return {
            "xs": [tensors[x_key(m)] for m in self.modalities],
            "observed": torch.stack([tensors[mask_key(m)] for m in self.modalities], dim=1).bool(),
            "libraries": [tensors.get(library_key(m)) for m in self.modalities],
            "covariates": tensors.get(COVARIATES_KEY),
        }

    def _get_generative_input(self, tensors: dict[str, torch.Tensor], inference_outputs: dict) -> dict:
        return {"z": inference_outputs["z"], "covariates": inference_outputs.get("covariates")}

    @auto_move_data
    def inference(
        self,
        xs: list[torch.Tensor],
        observed: torch.Tensor,
        libraries: list[torch.Tensor | None] | None = None,
        covariates: torch.Tensor | None = None,
        n_samples: int = 1,
        use_mean: bool = False,
    ) -> dict:
        """Encode every modality, gate, and fuse the experts into ``q(z | x)``.

        ``z`` is one posterior sample (batch, K), ``n_samples`` of them (n_samples, batch, K), or with
        ``use_mean`` the posterior mean. ``contributions`` (batch, V[+1]) is each modality's share of the fused
        precision averaged over the factors, ``α_v τ_v / Σ_u α_u τ_u`` (the prior expert's share last when it is on).
        ``xs_std`` holds each modality's encoder input (its likelihood's view, standardised; absent rows 0) and
        ``targets`` what each likelihood scores. ``libraries`` holds the library sizes of ``size_factor_key`` per
        modality (``None``: the total counts); ``covariates`` (batch, C) the encoded covariates, required when the
        module has them.
        """
        if (covariates is None) != (self.n_covariates == 0):
            raise ValueError(f"The module has {self.n_covariates} covariate columns; the minibatch does not match.")
        libraries = [None] * len(xs) if libraries is None else libraries
        log_libs, xs_std, targets = [], [], []
        for v, (lik, x, lib) in enumerate(zip(self.likelihoods, xs, libraries, strict=True)):
            log_libs.append(lik.log_library(x, lib))
            xs_std.append(lik.encoder_input(x, observed[:, v], log_libs[v]))
            targets.append(lik.target(x, xs_std[v], observed[:, v]))
        encoded, xs_in = observed, xs_std  # what the encoders see; the loss reconstructs every observed modality
        if self.training and self.modality_dropout > 0:
            encoded = drop_experts(observed, self.modality_dropout)
            xs_in = [x * encoded[:, v].unsqueeze(-1) for v, x in enumerate(xs_std)]
        if covariates is not None:
            xs_in = [torch.cat([x, covariates.to(x.dtype)], dim=-1) for x in xs_in]
        kept = self._kept
        mus, logvars = zip(*(enc(x, kept) for enc, x in zip(self.encoders, xs_in, strict=True)), strict=True)
        mu, logvar = torch.stack(mus, dim=1), torch.stack(logvars, dim=1)
        log_alpha = self.gate(mu, encoded, kept)
        qz_m, qz_logvar, shares = product_of_experts(mu, logvar, log_alpha, self.prior_expert, return_weights=True)
        # no argument validation: it reads the tensors on the host every step (non-finite losses: checked per epoch)
        qz = Normal(qz_m, torch.exp(0.5 * qz_logvar), validate_args=False)
        if use_mean:
            z = qz.loc if n_samples == 1 else qz.loc.expand(n_samples, *qz.loc.shape)
        else:
            z = qz.rsample() if n_samples == 1 else qz.rsample((n_samples,))
        return {
            "z": z,
            "qz": qz,
            "alpha": log_alpha.exp(),
            "contributions": shares.mean(-1),
            "xs_std": xs_std,
            "targets": targets,
            "log_libraries": log_libs,
            "covariates": covariates,
            "observed": observed,
        }

    @auto_move_data
    def generative(self, z: torch.Tensor, covariates: torch.Tensor | None = None) -> dict:
        """Decode ``z`` ((batch, K') or (n_samples, batch, K'), the kept factors) into each modality's output on its
        link scale.

        ``px_means[v]`` is the standardised mean (Gaussian), the log share of the library (negative binomial) or
        the logit (Bernoulli), with the additive covariate effects when the module has covariates.
        """
        return {"px_means": [self.decode(v, z, covariates) for v in range(len(self.modalities))]}

    def decode(self, v: int, z: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        """Modality ``v``'s decoder output on its link scale, with the covariate effects (see :meth:`generative`)."""
        px = self.decoders[v](z, self._kept)
        if self.covariate_effects is not None:
            if covariates is None:
                raise ValueError(f"The module has {self.n_covariates} covariate columns: pass `covariates`.")
            px = px + self.covariate_effects[v](covariates.to(px.dtype))
        return px

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict,
        generative_outputs: dict,
        kl_weight: float = 1.0,
        n_obs: int = 1,
    ) -> LossOutput:
        """The ELBO with per-sample sums; the global prior terms enter once per step, divided by ``n_obs``.

        Per sample: ``Σ_v m_v Σ_j NLL(x_vj) + β·KL(q(z|x) ‖ N(0, I))`` (``m_v``: the sample has modality v; constant
        features left out). With several posterior samples (``z`` of shape (n_samples, batch, K)) the
        reconstruction term is averaged over them. The spike-and-slab penalty is reported in ``kl_global`` but is not
        in ``loss``: the training plan applies it as a proximal step.
        """
        observed = inference_outputs["observed"].to(inference_outputs["qz"].loc.dtype)
        rec = {}
        for v, mod in enumerate(self.modalities):
            likelihood = self.likelihoods[v]
            nll = likelihood.nll(
                inference_outputs["targets"][v],
                generative_outputs["px_means"][v],
                inference_outputs["log_libraries"][v],
            )
            nll = (nll * likelihood.feature_mask).sum(-1)
            if nll.dim() == 2:  # (n_samples, batch)
                nll = nll.mean(0)
            rec[mod] = nll * observed[:, v]
        qz = inference_outputs["qz"]
        kl_z = 0.5 * (qz.loc.pow(2) + qz.scale.pow(2) - 1 - 2 * qz.scale.log()).sum(-1)
        prior_terms = self.feature_prior_penalty()
        ssl_terms = self.ssl_penalty().detach()
        factor_terms = self.factor_penalty().detach()
        global_terms = prior_terms.detach() + ssl_terms + factor_terms
        rec_total = torch.stack(list(rec.values()), dim=0).sum(0)
        loss = (rec_total + kl_weight * self.kl_weight * kl_z).mean() + prior_terms / n_obs
        # the held-out criterion: per-sample negative ELBO without the global prior terms, which do not depend on
        # the samples (scvi's "elbo" adds kl_global / n_samples, which on a small validation set swamps the rest)
        metrics = {
            "elbo_per_sample": (rec_total + self.kl_weight * kl_z).mean().detach(),
            "ssl_penalty": ssl_terms,
            "factor_penalty": factor_terms,
        }
        for v, mod in enumerate(self.modalities):  # averaged over the samples that have the modality
            metrics[f"reconstruction_{mod}"] = (rec[mod].sum() / observed[:, v].sum().clamp_min(1)).detach()
        return LossOutput(
            loss=loss,
            reconstruction_loss=rec,
            kl_local={"kl_z": kl_z},
            kl_global=global_terms,
            extra_metrics=metrics,
        )

    # -- global priors ----------------------------------------------------------------------------------------
    def feature_prior_penalty(self) -> torch.Tensor:
        """Negative log priors of the per-feature parameters: the likelihoods' own (Gaussian σ², negative binomial
        θ) and the covariate effects Γ, summed over modalities (not divided by n).
        """
        total = sum(lik.prior_penalty() for lik in self.likelihoods)
        for lik, eff in zip(self.likelihoods, self.covariate_effects or [], strict=False):
            total = total + eff.prior_penalty(lik.feature_mask)
        return total

    def ssl_penalty(self) -> torch.Tensor:
        """Spike-and-slab lasso penalties ``Σ λ*|W|`` of every W (not divided by n; 0 for the dense decoder)."""
        if self.priors is None:
            return torch.zeros((), device=self.likelihoods[0].view_mean.device)
        return sum(prior.penalty(dec.W) for prior, dec in zip(self.priors, self.decoders, strict=True))

    def factor_penalty(self) -> torch.Tensor:
        """The factor penalty ``Σ_k λ_f √D_k ‖W_{:,k}‖₂`` over all modalities (not divided by n; 0 without it);
        ``D_k`` is the number of features D for a free factor and the size of the set for an annotated one.
        """
        if self.priors is None or self.factor_penalty_weight == 0:
            return torch.zeros((), device=self.factor_kept.device)
        norm = torch.sqrt(sum(dec.W.square().sum(0) for dec in self.decoders))
        return self.priors[0].penalty_scale * (self.factor_penalty_weights * norm).sum()

    # -- the spike-and-slab side: W, the proximal step, the E-step ---------------------------------------------
    def sparse_weights(self) -> list[torch.nn.Parameter]:
        """The W of every sparse decoder (empty for the dense decoder): no weight decay, a proximal step instead."""
        return [] if self.priors is None else [dec.W for dec in self.decoders]

    @torch.no_grad()
    def anneal_sparsity(self, fraction: float, mode: str = "scale") -> None:
        """Warm every spike-and-slab prior up to ``fraction`` of its strength (see :meth:`SpikeSlabLasso.anneal`)."""
        for prior in self.priors or []:
            prior.anneal(fraction, mode)

    @torch.no_grad()
    def proximal_step(self, step_sizes: Sequence[torch.Tensor | float], n_obs: int, e_step: bool = True) -> None:
        """Soft-threshold every W with the step sizes the optimizer just used, then (``e_step``) run the E-step.

        ``step_sizes[v]`` is a scalar or a per-entry tensor shaped like ``W_v``; the threshold of entry (j, k) is
        ``step · λ*_jk / n_obs`` (the penalty is a global term, divided by the number of training samples).
        """
        if self.priors is None:
            return
        for prior, dec, step in zip(self.priors, self.decoders, step_sizes, strict=True):
            prior.prox(dec.W, step / n_obs)
        ws = [dec.W for dec in self.decoders]
        if self.factor_penalty_weight > 0:
            # the step of a column: the mean of its entries' steps over all modalities
            sums = [
                s.sum(0) if torch.is_tensor(s) else torch.full_like(w[0], s * w.shape[0])
                for s, w in zip(step_sizes, ws, strict=True)
            ]
            step = sum(sums) / sum(w.shape[0] for w in ws)
            shrink_columns(ws, step * self.priors[0].penalty_scale * self.factor_penalty_weights / n_obs)
        if self._kept is not None:  # a pruned factor stays out: its column stays 0 whatever the optimizer's momentum
            for w in ws:
                w.mul_(self.factor_kept)
        if e_step:
            self.e_step()

    @torch.no_grad()
    def e_step(self) -> None:
        """Update p* and θ of every modality from its current W (call after each optimizer step)."""
        for prior, dec in zip(self.priors or [], self.decoders, strict=False):
            prior.e_step(dec.W)

    #: ``|W|`` above this counts as a link in the sparsity statistics (the paper's threshold)
    LINK_THRESHOLD = LINK_THRESHOLD

    def sparsity_statistics(self) -> dict[str, dict[str, torch.Tensor]]:
        """Per modality, W's sparsity (see :func:`~poems_mu.module._sparsity.sparsity_statistics`)."""
        return sparsity_statistics(self)

    def sparsity_metrics(self) -> dict[str, torch.Tensor]:
        """The sparsity statistics under the training history's names (see :func:`~poems_mu.module._sparsity`)."""
        return sparsity_metrics(self)
