"""Gated product of Gaussian experts (POEMS paper, Eq. 1), computed in log space."""

from __future__ import annotations

import torch


def product_of_experts(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    log_alpha: torch.Tensor,
    prior_expert: bool = False,
    return_weights: bool = False,
):
    """Fuse V Gaussian experts whose precisions are rescaled by gating weights.

    ``tau_s = sum_v alpha_v tau_v (+1 with the N(0, I) prior expert)`` and
    ``mu_s = sum_v alpha_v tau_v mu_v / tau_s`` with ``tau_v = exp(-logvar_v)``.

    Parameters
    ----------
    mu
        Expert means, ``(batch, V, K)``.
    logvar
        Expert log-variances, ``(batch, V, K)``.
    log_alpha
        Log gating weights, ``(batch, V)``; ``-inf`` for a modality the sample does not have, so that its expert has
        exactly no influence.
    prior_expert
        Add the standard normal prior as one more expert with weight one.
    return_weights
        Also return each expert's share of the fused precision, ``alpha_v tau_v / tau_s`` (the prior expert's
        share last when it is on).

    Returns
    -------
    ``(mu_s, logvar_s)``, each ``(batch, K)``; with ``return_weights`` also the shares, ``(batch, V[+1], K)``
    (summing to one over the experts, exactly 0 where ``alpha = 0``).

    """
    log_w = log_alpha.unsqueeze(-1) - logvar  # log(alpha_v tau_v), (B, V, K)
    if prior_expert:
        log_w = torch.cat([log_w, torch.zeros_like(log_w[:, :1])], dim=1)
        mu = torch.cat([mu, torch.zeros_like(mu[:, :1])], dim=1)
    log_tau_s = torch.logsumexp(log_w, dim=1)  # (B, K)
    weights = torch.exp(log_w - log_tau_s.unsqueeze(1))  # normalised, exactly 0 where alpha = 0
    mu_s = (weights * mu).sum(dim=1)
    if return_weights:
        return mu_s, -log_tau_s, weights
    return mu_s, -log_tau_s


def drop_experts(observed: torch.Tensor, p: float) -> torch.Tensor:
    """Hide each observed expert with probability ``p``, keeping every sample's own set where all were hidden.

    ``observed`` is the boolean ``(batch, V)`` mask of the modalities the samples have. Training on the returned
    mask while reconstructing every observed modality teaches the decoders to work from partial posteriors (the
    sub-sampled objective of Wu and Goodman's MVAE), which is what predicting a modality from the others asks of them.
    """
    keep = observed & (torch.rand(observed.shape, device=observed.device) >= p)
    return torch.where(keep.any(1, keepdim=True), keep, observed)
