"""Per-modality likelihoods. Each maps (data, decoder mean) to a per-sample, per-feature negative log-likelihood."""

from __future__ import annotations

import math

import torch
from scipy.stats import chi2
from torch import nn

LOG_SIGMA_MIN = math.log(1e-3)


class GaussianLikelihood(nn.Module):
    """Gaussian with a learned per-feature σ_j and a scaled inverse-χ² prior on σ_j² (as in Sparse VAE).

    Data are standardised per feature before they reach the module, so σ starts at one (the feature's SD).

    Parameters
    ----------
    n_features
        Number of features.
    prior_df
        Degrees of freedom ν of the scaled inverse-χ² prior.
    prior_quantile_sd
        The SD ``s`` such that ``P(σ² < s²) = prior_probability`` under the prior.
    prior_probability
        See ``prior_quantile_sd``.

    """

    def __init__(
        self,
        n_features: int,
        prior_df: float = 3.0,
        prior_quantile_sd: float = 1.0,
        prior_probability: float = 0.9,
    ):
        super().__init__()
        self.log_sigma = nn.Parameter(torch.zeros(n_features))
        self.prior_df = float(prior_df)
        # σ² ~ ν s0² / χ²_ν, so P(σ² < s²) = P(χ²_ν > ν s0²/s²) = p  ⇔  s0² = s² χ²_ν.ppf(1 − p) / ν
        self.prior_scale2 = float(prior_quantile_sd**2 * chi2.ppf(1 - prior_probability, prior_df) / prior_df)

    @property
    def sigma(self) -> torch.Tensor:
        """Per-feature SD on the standardised scale."""
        return self.log_sigma.clamp_min(LOG_SIGMA_MIN).exp()

    def nll(self, x: torch.Tensor, mean: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood ``(batch, D)``."""
        log_sigma = self.log_sigma.clamp_min(LOG_SIGMA_MIN)
        return 0.5 * math.log(2 * math.pi) + log_sigma + 0.5 * ((x - mean) * torch.exp(-log_sigma)) ** 2

    def prior_penalty(self, feature_weight: torch.Tensor) -> torch.Tensor:
        """``−log p(σ²)`` summed over the features that count (up to a constant)."""
        log_sigma2 = 2 * self.log_sigma.clamp_min(LOG_SIGMA_MIN)
        per_feature = (self.prior_df / 2 + 1) * log_sigma2 + self.prior_df * self.prior_scale2 / (
            2 * torch.exp(log_sigma2)
        )
        return (per_feature * feature_weight).sum()
