"""The spike-and-slab side of the POEMS module: penalties on every W, the proximal step, the E-step, summaries."""

from __future__ import annotations

from collections.abc import Sequence

import torch


class SparsityMixin:
    """Methods of :class:`~poems_mu._module.POEMSModule` acting on its sparse decoders' ``W`` and their priors.

    ``self.priors`` is the list of :class:`~poems_mu.nn.SpikeSlabLasso` (``None`` with the dense decoder) and
    ``self.decoders`` the decoders; ``sigma_penalty`` (the likelihoods' priors) is the module's own.
    """

    def ssl_penalty(self) -> torch.Tensor:
        """Spike-and-slab lasso penalties ``Σ λ*|W|`` of every W (not divided by n; 0 for the dense decoder)."""
        if self.priors is None:
            return torch.zeros((), device=self.mean_0.device)
        return sum(prior.penalty(dec.W) for prior, dec in zip(self.priors, self.decoders, strict=True))

    def global_penalty(self) -> torch.Tensor:
        """Spike-and-slab lasso penalties on every W plus the σ priors (not yet divided by ``n_obs``)."""
        return self.sigma_penalty() + self.ssl_penalty()

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
        if e_step:
            self.e_step()

    @torch.no_grad()
    def e_step(self) -> None:
        """Update p* and θ of every modality from its current W (call after each optimizer step)."""
        if self.priors is None:
            return
        for prior, dec in zip(self.priors, self.decoders, strict=True):
            prior.e_step(dec.W)

    @torch.no_grad()
    def sparsity_metrics(self) -> dict[str, torch.Tensor]:
        """θ mean, W density (``|W| > 0.01``), share of exact zeros and of slab links (p* > 0.5) per modality."""
        if self.priors is None:
            return {}
        out = {}
        for mod, prior, dec in zip(self.modalities, self.priors, self.decoders, strict=True):
            out[f"theta_{mod}"] = prior.theta.mean()
            out[f"W_density_{mod}"] = (dec.W.abs() > 0.01).float().mean()
            out[f"W_zero_{mod}"] = (dec.W == 0).float().mean()
            out[f"W_slab_{mod}"] = (prior.p_star > 0.5).float().mean()
        return out
