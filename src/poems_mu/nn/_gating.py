"""Gating network: per-sample modality weights alpha_v, softmax over the modalities a sample has."""

from __future__ import annotations

import torch
from torch import nn


def masked_log_softmax(logits: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
    """Log-softmax over the observed entries of each row; ``-inf`` (alpha = 0 exactly) where ``observed`` is False."""
    return torch.log_softmax(logits.masked_fill(~observed, float("-inf")), dim=-1)


class GatingNetwork(nn.Module):
    """``g = MLP(concat_v LayerNorm(mu_v))`` giving one logit per modality.

    Parameters
    ----------
    n_modalities
        Number of modalities V.
    n_latent
        Latent dimension K.
    n_hidden
        Hidden width of the gate MLP.
    fixed
        If True, the gate is not learned: every observed modality gets the same weight (the paper's ablation).

    """

    def __init__(self, n_modalities: int, n_latent: int, n_hidden: int, fixed: bool):
        super().__init__()
        self.fixed = fixed
        self.norms = nn.ModuleList([nn.LayerNorm(n_latent) for _ in range(n_modalities)])
        self.net = nn.Sequential(
            nn.Linear(n_modalities * n_latent, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_modalities)
        )

    def forward(self, mu: torch.Tensor, observed: torch.Tensor, kept: torch.Tensor | None = None) -> torch.Tensor:
        """Return log gating weights ``(batch, V)`` from expert means ``(batch, V, K')`` and the observed mask.

        With ``kept`` (indices of the K' factors in use) the layer norms take their statistics over those factors
        only and the first layer reads only their inputs: a pruned factor has no influence on the gate.
        """
        if self.fixed:
            return masked_log_softmax(torch.zeros_like(observed, dtype=mu.dtype), observed)
        if kept is None:
            normed = [norm(mu[:, v]) * observed[:, v : v + 1] for v, norm in enumerate(self.norms)]
            return masked_log_softmax(self.net(torch.cat(normed, dim=-1)), observed)
        normed = [
            nn.functional.layer_norm(
                mu[:, v], (len(kept),), norm.weight.index_select(0, kept), norm.bias.index_select(0, kept), norm.eps
            )
            * observed[:, v : v + 1]
            for v, norm in enumerate(self.norms)
        ]
        n_latent = self.norms[0].normalized_shape[0]
        inputs = torch.cat([kept + v * n_latent for v in range(len(self.norms))])
        first = self.net[0]
        h = nn.functional.linear(torch.cat(normed, dim=-1), first.weight.index_select(1, inputs), first.bias)
        return masked_log_softmax(self.net[2](self.net[1](h)), observed)
