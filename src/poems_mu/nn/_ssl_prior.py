"""Spike-and-slab lasso prior on a feature-to-factor matrix W (Ročková & George), with its EM updates."""

from __future__ import annotations

import math

import torch
from torch import nn

_THETA_EPS = 1e-6


class SpikeSlabLasso(nn.Module):
    """``w | γ ~ γ Laplace(λ1) + (1 − γ) Laplace(λ0)``, ``γ ~ Bern(θ_k)``, ``θ_k ~ Beta(a, b)``.

    ``p*`` (D × K) and ``θ`` (K) are buffers: saved with the model, never touched by the optimizer, updated by
    :meth:`e_step` after every optimizer step.

    Parameters
    ----------
    n_features
        Rows D of W.
    n_latent
        Columns K of W.
    lambda0
        Spike rate λ0 (large: pushes w to 0).
    lambda1
        Slab rate λ1 (small).
    a, b
        Beta prior on θ; ``b=None`` uses ``b = D``.

    """

    def __init__(
        self,
        n_features: int,
        n_latent: int,
        lambda0: float = 10.0,
        lambda1: float = 1.0,
        a: float = 1.0,
        b: float | None = None,
    ):
        super().__init__()
        if not lambda0 > lambda1 > 0:
            raise ValueError(f"The spike-and-slab lasso needs lambda0 > lambda1 > 0, got {lambda0=} and {lambda1=}.")
        self.n_features = n_features
        self.lambda0, self.lambda1 = float(lambda0), float(lambda1)
        self.a = float(a)
        self.b = float(n_features if b is None else b)
        self.register_buffer("p_star", torch.full((n_features, n_latent), 0.5))
        self.register_buffer("theta", torch.full((n_latent,), 0.5))

    def penalty(self, w: torch.Tensor) -> torch.Tensor:
        """M-step penalty ``Σ_jk [λ1 p*_jk + λ0 (1 − p*_jk)] |w_jk|`` (a scalar)."""
        lam = self.lambda1 * self.p_star + self.lambda0 * (1.0 - self.p_star)
        return (lam * w.abs()).sum()

    @torch.no_grad()
    def e_step(self, w: torch.Tensor) -> None:
        """Update ``p*`` and ``θ`` from the current ``w`` (in log space: no under/overflow for large ``|w|``)."""
        aw = w.detach().abs()
        theta = self.theta.clamp(_THETA_EPS, 1 - _THETA_EPS)
        # logit p* = log(slab density / spike density), formed as one difference so that a huge |w| gives +inf
        # (p* = 1), never inf - inf
        logit = (torch.log(theta) - torch.log1p(-theta)) + math.log(self.lambda1 / self.lambda0)
        self.p_star.copy_(torch.sigmoid(logit + (self.lambda0 - self.lambda1) * aw))
        theta_new = (self.p_star.sum(0) + self.a - 1) / (self.a + self.b + self.n_features - 2)
        self.theta.copy_(theta_new.clamp(_THETA_EPS, 1 - _THETA_EPS))
