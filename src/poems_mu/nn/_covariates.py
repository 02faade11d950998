"""Additive per-feature covariate effects of a decoder: ``η_j += Γ_j · s``."""

from __future__ import annotations

import torch
from torch import nn


class CovariateEffects(nn.Module):
    """``Γ s``: one coefficient per feature and covariate column, added to the decoder's output (link scale).

    The effect is outside the sparse generator, so ``W`` keeps its meaning: ``W[j, k] = 0`` still removes factor k
    from feature j, and ``∂η_j/∂z`` does not depend on the covariates. Γ starts at 0 and has a weak Gaussian prior
    (SD ``prior_sd``) that makes it identifiable next to the feature's bias when a one-hot code sums to one.

    Parameters
    ----------
    n_features
        Number of features D.
    n_covariates
        Number of covariate columns C (one-hot categories and standardised continuous covariates).
    prior_sd
        SD of the Gaussian prior on each coefficient.

    """

    def __init__(self, n_features: int, n_covariates: int, prior_sd: float = 1.0):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(n_features, n_covariates))
        self.prior_sd = float(prior_sd)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """Effects ``(batch, D)`` of the covariates ``s`` (batch, C)."""
        return s @ self.gamma.t()

    def prior_penalty(self, feature_weight: torch.Tensor) -> torch.Tensor:
        """``−log p(Γ)`` over the features that count (up to a constant)."""
        return (0.5 * (self.gamma / self.prior_sd).square().sum(1) * feature_weight).sum()
