"""The POEMS torch module: per-modality encoders, gated product of experts, sparse decoders."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn
from torch.distributions import Normal

from ._constants import mask_key, x_key
from ._covariates import COVARIATES_KEY, library_key
from ._module_sparsity import SparsityMixin
from .nn import (
    LIKELIHOODS,
    CovariateEffects,
    DenseDecoder,
    GatingNetwork,
    ModalityEncoder,
    SparseDecoder,
    SpikeSlabLasso,
    drop_experts,
    make_likelihood,
    product_of_experts,
)


class POEMSModule(SparsityMixin, BaseModuleClass):
    """POEMS: Product Of Experts for interpretable Multi-omics integration using Sparse decoding.

    Each modality's encoder sees its data through a view suited to its likelihood, standardised per feature
    (``(t(x) − mean) / scale`` with the buffers below): ``t(x) = x`` for ``"gaussian"`` and ``"bernoulli"``, and
    ``t(x) = log1p(x · L₀ / ℓ)`` (counts at the reference library size L₀) for ``"nb"``. The decoder gives each
    feature's value on the likelihood's link scale: the standardised mean (``"gaussian"``, so the model is invariant
    to a per-feature affine change of the input), the log of the expected share of the library (``"nb"``, plus
    ``log ℓ``) or the logit (``"bernoulli"``). Covariates (one-hot categories and standardised continuous values,
    C columns) enter every encoder with the data and every decoder additively per feature
    (:class:`~poems_mu.nn.CovariateEffects`).

    Parameters
    ----------
    modalities
        Modality names, in registry order.
    n_features
        Number of features of each modality.
    feature_mean, feature_scale
        Per-modality arrays used to standardise each feature of the encoders' view (scale 1 for constant features).
    feature_weight
        Per-modality 0/1 arrays: features with weight 0 (constant ones) do not enter the likelihood.
    n_latent
        Latent dimension K.
    n_hidden_encoder, n_layers_encoder, dropout
        Encoder MLP width, depth and dropout.
    n_hidden_decoder
        Width H of each modality's shared generator.
    n_hidden_gate
        Width of the gating MLP.
    kl_weight
        β, the weight of the KL term (multiplied by the warm-up factor during training).
    prior_expert
        Include the N(0, I) prior as an expert in the product.
    gating
        ``"learned"`` (the gating network) or ``"fixed"`` (equal weights over observed modalities).
    decoder
        ``"sparse"`` (Sparse-VAE decoder with the spike-and-slab lasso prior on W) or ``"dense"`` (POEM ablation).
    lambda0, lambda1, ssl_a, ssl_b
        Spike-and-slab lasso hyperparameters; ``ssl_b=None`` uses ``b = D_v`` per modality.
    sigma_prior_df
        ν of the scaled inverse-χ² prior on the per-feature variances.
    chunk_size, max_chunk_bytes
        Feature chunking of the sparse decoders (see :class:`~poems_mu.nn.SparseDecoder`).
    w_init_scale
        SD of the symmetric initial ``W`` of each sparse decoder.
    decoder_links, links_dense_every
        First-layer path of the sparse decoders and its dense-pass schedule (``links`` and ``links_dense_every``
        of :class:`~poems_mu.nn.SparseDecoder`).
    modality_dropout
        In training, hide each observed modality of a sample from the encoders with this probability (at least one
        stays; :func:`~poems_mu.nn.drop_experts`), while every observed modality is still reconstructed.
    likelihoods
        Likelihood of each modality, ``"gaussian"``, ``"nb"`` or ``"bernoulli"`` (default all Gaussian).
    n_covariates
        Number C of encoded covariate columns (0: no covariates).
    log_library_reference
        Per modality, ``log L₀`` of the view of an ``"nb"`` modality (0 for the others).
    link_bias
        Per modality, the initial per-feature bias of the decoder (e.g. the log mean share of the library);
        ``None`` starts every bias at 0.

    The spike-and-slab penalty on ``W`` is not part of the autograd loss: the training plan applies it as a
    proximal (soft-threshold) step after every optimizer step (:meth:`proximal_step`), then the E-step. It is still
    reported, in ``kl_global`` and as ``ssl_penalty``.

    """

    def __init__(
        self,
        modalities: Sequence[str],
        n_features: Sequence[int],
        feature_mean: Sequence[torch.Tensor],
        feature_scale: Sequence[torch.Tensor],
        feature_weight: Sequence[torch.Tensor],
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
        likelihoods: Sequence[str] | None = None,
        n_covariates: int = 0,
        log_library_reference: Sequence[float] | None = None,
        link_bias: Sequence[torch.Tensor] | None = None,
    ):
        super().__init__()
        likelihoods = ["gaussian"] * len(modalities) if likelihoods is None else list(likelihoods)
        unknown = [name for name in likelihoods if name not in LIKELIHOODS]
        if unknown or len(likelihoods) != len(modalities):
            raise ValueError(f"likelihoods must give one of {list(LIKELIHOODS)} per modality, got {likelihoods!r}.")
        self.likelihood_names = likelihoods
        self.n_covariates = int(n_covariates)
        if gating not in ("learned", "fixed"):
            raise ValueError(f"gating must be 'learned' or 'fixed', got {gating!r}.")
        if decoder not in ("sparse", "dense"):
            raise ValueError(f"decoder must be 'sparse' or 'dense', got {decoder!r}.")
        self.modalities = list(modalities)
        self.n_latent = n_latent
        self.kl_weight = float(kl_weight)
        self.prior_expert = prior_expert
        self.modality_dropout = float(modality_dropout)
        self.decoder_type = decoder
        for v in range(len(self.modalities)):
            self.register_buffer(f"mean_{v}", torch.as_tensor(feature_mean[v], dtype=torch.float32))
            self.register_buffer(f"scale_{v}", torch.as_tensor(feature_scale[v], dtype=torch.float32))
            self.register_buffer(f"weight_{v}", torch.as_tensor(feature_weight[v], dtype=torch.float32))
            log_ref = 0.0 if log_library_reference is None else float(log_library_reference[v])
            self.register_buffer(f"log_library_ref_{v}", torch.tensor(log_ref, dtype=torch.float32))
        self.encoders = nn.ModuleList(
            [
                ModalityEncoder(d + self.n_covariates, n_latent, n_hidden_encoder, n_layers_encoder, dropout)
                for d in n_features
            ]
        )
        self.gate = GatingNetwork(len(self.modalities), n_latent, n_hidden_gate, fixed=gating == "fixed")
        chunk_kwargs = {"chunk_size": chunk_size, "links": decoder_links, "links_dense_every": links_dense_every}
        if max_chunk_bytes is not None:
            chunk_kwargs["max_chunk_bytes"] = int(max_chunk_bytes)
        if decoder == "sparse":
            self.decoders = nn.ModuleList(
                [
                    SparseDecoder(d, n_latent, n_hidden_decoder, w_init_scale=w_init_scale, **chunk_kwargs)
                    for d in n_features
                ]
            )
            self.priors = nn.ModuleList(
                [SpikeSlabLasso(d, n_latent, lambda0, lambda1, ssl_a, ssl_b) for d in n_features]
            )
        else:
            self.decoders = nn.ModuleList([DenseDecoder(d, n_latent, n_hidden_decoder) for d in n_features])
            self.priors = None
        self.likelihoods = nn.ModuleList(
            [make_likelihood(name, d, sigma_prior_df) for name, d in zip(likelihoods, n_features, strict=True)]
        )
        self.covariate_effects = None
        if self.n_covariates:
            self.covariate_effects = nn.ModuleList([CovariateEffects(d, self.n_covariates) for d in n_features])
        if link_bias is not None:
            with torch.no_grad():
                for dec, bias in zip(self.decoders, link_bias, strict=True):
                    target = dec.b if decoder == "sparse" else dec.net[-1].bias
                    target.copy_(torch.as_tensor(bias, dtype=target.dtype))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # folders and checkpoints written before the count likelihoods existed lack log L₀ (all their modalities
        # are Gaussian, for which it is 0): keep the module's own value
        for v in range(len(self.modalities)):
            key = f"{prefix}log_library_ref_{v}"
            if key not in state_dict and self.likelihood_names[v] == "gaussian":
                state_dict[key] = getattr(self, f"log_library_ref_{v}").clone()
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- helpers ---------------------------------------------------------------------------------------------
    def feature_stats(self, v: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(mean, scale, weight)`` buffers of modality ``v``."""
        return getattr(self, f"mean_{v}"), getattr(self, f"scale_{v}"), getattr(self, f"weight_{v}")

    def standardise(self, v: int, x: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """Standardise modality ``v``; rows of samples without the modality become exactly 0."""
        mean, scale, _ = self.feature_stats(v)
        return ((x - mean) / scale) * observed.unsqueeze(-1)

    def log_library(self, v: int, x: torch.Tensor, library: torch.Tensor | None) -> torch.Tensor | None:
        """``log ℓ`` per sample of an ``"nb"`` modality (``library`` given, or the total of ``x``); else ``None``."""
        if self.likelihood_names[v] != "nb":
            return None
        if library is None:  # the total counts; a sample with none gets ℓ = 1 (its counts are all 0 anyway)
            return x.sum(-1).clamp_min(1.0).log()
        return library.log()  # size factors as given (checked positive), e.g. DESeq-style ones around 1

    def encoder_view(self, v: int, x: torch.Tensor, observed: torch.Tensor, log_lib: torch.Tensor | None):
        """What encoder ``v`` sees: the likelihood's view of the data, standardised; absent rows exactly 0."""
        if log_lib is not None:  # counts at the reference library size, log1p
            x = torch.log1p(x * torch.exp(getattr(self, f"log_library_ref_{v}") - log_lib).unsqueeze(-1))
        return self.standardise(v, x, observed)

    def view_of_output(self, v: int, eta: torch.Tensor) -> torch.Tensor:
        """The decoder output ``η`` mapped to the encoders' standardised view (the data's expected view)."""
        mean, scale, _ = self.feature_stats(v)
        name = self.likelihood_names[v]
        if name == "gaussian":
            return eta
        if name == "bernoulli":
            t = torch.sigmoid(eta)
        else:
            t = torch.nn.functional.softplus(eta + getattr(self, f"log_library_ref_{v}"))  # log1p(exp(·)), stably
        return (t - mean) / scale

    def _observed(self, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([tensors[mask_key(m)] for m in self.modalities], dim=1).bool()

    # -- scvi interface ------------------------------------------------------------------------------------
    def _get_inference_input(self, tensors: dict[str, torch.Tensor]) -> dict:
        return {
            "xs": [tensors[x_key(m)] for m in self.modalities],
            "observed": self._observed(tensors),
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
        ``libraries`` holds the library sizes of ``size_factor_key`` per modality (``None``: the total counts);
        ``covariates`` (batch, C) the encoded covariates, required when the module has them.
        """
        if (covariates is None) != (self.n_covariates == 0):
            raise ValueError(f"The module has {self.n_covariates} covariate columns; the minibatch does not match.")
        libraries = [None] * len(xs) if libraries is None else libraries
        log_libs = [self.log_library(v, x, lib) for v, (x, lib) in enumerate(zip(xs, libraries, strict=True))]
        xs_std = [self.encoder_view(v, x, observed[:, v], log_libs[v]) for v, x in enumerate(xs)]
        # the likelihood's target: the standardised data (Gaussian) or the data themselves (counts, 0/1)
        targets = [
            xs_std[v] if name == "gaussian" else x * observed[:, v].unsqueeze(-1)
            for v, (name, x) in enumerate(zip(self.likelihood_names, xs, strict=True))
        ]
        encoded, xs_in = observed, xs_std  # what the encoders see; the loss reconstructs every observed modality
        if self.training and self.modality_dropout > 0:
            encoded = drop_experts(observed, self.modality_dropout)
            xs_in = [x * encoded[:, v].unsqueeze(-1) for v, x in enumerate(xs_std)]
        if covariates is not None:
            xs_in = [torch.cat([x, covariates.to(x.dtype)], dim=-1) for x in xs_in]
        mus, logvars = zip(*(enc(x) for enc, x in zip(self.encoders, xs_in, strict=True)), strict=True)
        mu, logvar = torch.stack(mus, dim=1), torch.stack(logvars, dim=1)
        log_alpha = self.gate(mu, encoded)
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
        """Decode ``z`` ((batch, K) or (n_samples, batch, K)) into each modality's output on its link scale.

        ``px_means[v]`` is the standardised mean (Gaussian), the log share of the library (negative binomial) or
        the logit (Bernoulli), with the additive covariate effects when the module has covariates.
        """
        return {"px_means": [self.decode(v, z, covariates) for v in range(len(self.modalities))]}

    def decode(self, v: int, z: torch.Tensor, covariates: torch.Tensor | None = None) -> torch.Tensor:
        """Modality ``v``'s decoder output on its link scale, with the covariate effects (see :meth:`generative`)."""
        px = self.decoders[v](z)
        if self.covariate_effects is not None:
            if covariates is None:
                raise ValueError(f"The module has {self.n_covariates} covariate columns: pass `covariates`.")
            px = px + self.covariate_effects[v](covariates.to(px.dtype))
        return px

    def constant_value(self, v: int) -> torch.Tensor:
        """Per feature, the training value of a constant feature in data units (meaningful where weight is 0)."""
        mean = self.feature_stats(v)[0]
        return torch.expm1(mean) if self.likelihood_names[v] == "nb" else mean

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict,
        generative_outputs: dict,
        kl_weight: float = 1.0,
        n_obs: int = 1,
    ) -> LossOutput:
        """ELBO with per-sample sums (DESIGN.md §2); global prior terms enter once per step divided by ``n_obs``.

        With several posterior samples (``z`` of shape (n_samples, batch, K)) the reconstruction term is averaged
        over them. The spike-and-slab penalty is reported in ``kl_global`` but is not in ``loss``: the training plan
        applies it as a proximal step.
        """
        observed = inference_outputs["observed"].to(inference_outputs["qz"].loc.dtype)
        rec = {}
        for v, mod in enumerate(self.modalities):
            _, _, weight = self.feature_stats(v)
            nll = self.likelihoods[v].nll(
                inference_outputs["targets"][v],
                generative_outputs["px_means"][v],
                inference_outputs["log_libraries"][v],
            )
            nll = (nll * weight).sum(-1)
            if nll.dim() == 2:  # (n_samples, batch)
                nll = nll.mean(0)
            rec[mod] = nll * observed[:, v]
        qz = inference_outputs["qz"]
        kl_z = 0.5 * (qz.loc.pow(2) + qz.scale.pow(2) - 1 - 2 * qz.scale.log()).sum(-1)
        sigma_terms = self.sigma_penalty()
        ssl_terms = self.ssl_penalty().detach()
        global_terms = sigma_terms.detach() + ssl_terms
        rec_total = torch.stack(list(rec.values()), dim=0).sum(0)
        loss = (rec_total + kl_weight * self.kl_weight * kl_z).mean() + sigma_terms / n_obs
        # the held-out criterion: per-sample negative ELBO without the global prior terms, which do not depend on
        # the samples (scvi's "elbo" adds kl_global / n_samples, which on a small validation set swamps the rest)
        metrics = {
            "elbo_per_sample": (rec_total + self.kl_weight * kl_z).mean().detach(),
            "ssl_penalty": ssl_terms,
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
    def sigma_penalty(self) -> torch.Tensor:
        """Negative log priors of the likelihoods' per-feature parameters (Gaussian σ², negative binomial θ) and of
        the covariate effects, summed over modalities (not divided by n).
        """
        total = sum(lik.prior_penalty(self.feature_stats(v)[2]) for v, lik in enumerate(self.likelihoods))
        for v, eff in enumerate(self.covariate_effects or []):
            total = total + eff.prior_penalty(self.feature_stats(v)[2])
        return total
