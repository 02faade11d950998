"""Per-modality likelihoods: each maps (data, decoder output, log library size) to a per-sample, per-feature negative
log-likelihood, and gives the mean and variance of the data given the decoder output.

The decoder output ``η`` is on the likelihood's link scale: the standardised mean (Gaussian), the log of the
expected share of the library (negative binomial) or the logit (Bernoulli).
"""

from __future__ import annotations

import math

import torch
from scipy.stats import chi2
from torch import nn

LOG_SIGMA_MIN = math.log(1e-3)
#: bounds on log θ of the negative binomial (θ from 1e-4, near-geometric tails, to 1e6, near-Poisson)
LOG_THETA_MIN, LOG_THETA_MAX = math.log(1e-4), math.log(1e6)


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

    def nll(self, x: torch.Tensor, mean: torch.Tensor, log_library: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood ``(batch, D)`` of standardised data (``log_library`` is not used)."""
        log_sigma = self.log_sigma.clamp_min(LOG_SIGMA_MIN)
        return 0.5 * math.log(2 * math.pi) + log_sigma + 0.5 * ((x - mean) * torch.exp(-log_sigma)) ** 2

    def mean(self, eta: torch.Tensor, log_library: torch.Tensor | None = None) -> torch.Tensor:
        """The mean: the decoder output itself (standardised scale)."""
        return eta

    def variance(self, eta: torch.Tensor, log_library: torch.Tensor | None = None) -> torch.Tensor:
        """``σ_j²`` for every sample (standardised scale)."""
        return self.sigma.square().expand_as(eta)

    def prior_penalty(self, feature_weight: torch.Tensor) -> torch.Tensor:
        """``−log p(σ²)`` summed over the features that count (up to a constant)."""
        log_sigma2 = 2 * self.log_sigma.clamp_min(LOG_SIGMA_MIN)
        per_feature = (self.prior_df / 2 + 1) * log_sigma2 + self.prior_df * self.prior_scale2 / (
            2 * torch.exp(log_sigma2)
        )
        return (per_feature * feature_weight).sum()


class NegativeBinomialLikelihood(nn.Module):
    """Negative binomial on raw counts: log-mean ``η_j + log ℓ_i`` per feature, a per-feature inverse dispersion.

    ``x_ij ~ NB(μ_ij, θ_j)`` with ``μ_ij = ℓ_i exp(η_ij)`` (``ℓ_i`` the sample's library size, ``η_ij`` the
    decoder's output, the log of the expected share of the library) and variance ``μ + μ²/θ_j``. Each feature has its
    own θ_j, with a weak log-normal prior ``log θ_j ~ N(log θ₀, s²)``. There is no softmax across features: feature
    j's mean depends on ``z`` only through ``η_j``, so ``W[j, k] = 0`` still removes factor k from feature j.

    Parameters
    ----------
    n_features
        Number of features.
    prior_theta
        θ₀, the prior median of the inverse dispersion (10: dispersion 0.1, typical of bulk RNA-seq).
    prior_log_sd
        s, the prior SD of ``log θ_j`` (2: θ between θ₀/50 and 50·θ₀ with 95 % prior probability).

    """

    def __init__(self, n_features: int, prior_theta: float = 10.0, prior_log_sd: float = 2.0):
        super().__init__()
        self.log_theta = nn.Parameter(torch.full((n_features,), math.log(prior_theta)))
        self.prior_log_theta = math.log(prior_theta)
        self.prior_log_sd = float(prior_log_sd)

    def _log_theta(self) -> torch.Tensor:
        return self.log_theta.clamp(LOG_THETA_MIN, LOG_THETA_MAX)

    @property
    def theta(self) -> torch.Tensor:
        """Per-feature inverse dispersion θ_j (variance ``μ + μ²/θ``)."""
        return self._log_theta().exp()

    def nll(self, x: torch.Tensor, eta: torch.Tensor, log_library: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood ``(..., batch, D)`` of counts ``x`` given ``η`` and the log library sizes."""
        log_theta = self._log_theta()
        theta = log_theta.exp()
        log_mu = eta + log_library.unsqueeze(-1)
        log_theta_mu = torch.logaddexp(log_theta, log_mu)
        log_p = (
            torch.lgamma(x + theta)
            - torch.lgamma(theta)
            - torch.lgamma(x + 1)
            + theta * (log_theta - log_theta_mu)
            + x * (log_mu - log_theta_mu)
        )
        return -log_p

    def mean(self, eta: torch.Tensor, log_library: torch.Tensor) -> torch.Tensor:
        """Expected counts ``ℓ exp(η)``."""
        return torch.exp(eta + log_library.unsqueeze(-1))

    def variance(self, eta: torch.Tensor, log_library: torch.Tensor) -> torch.Tensor:
        """Variance of the counts given ``η``: ``μ + μ²/θ``."""
        mu = self.mean(eta, log_library)
        return mu + mu.square() / self.theta

    def prior_penalty(self, feature_weight: torch.Tensor) -> torch.Tensor:
        """``−log p(log θ)`` summed over the features that count (up to a constant)."""
        per_feature = 0.5 * ((self.log_theta - self.prior_log_theta) / self.prior_log_sd) ** 2
        return (per_feature * feature_weight).sum()


class BernoulliLikelihood(nn.Module):
    """Bernoulli on 0/1 data (e.g. mutation calls): the decoder's output is the logit of ``P(x_ij = 1)``.

    No parameters of its own. ``W[j, k] = 0`` removes factor k from feature j's logit.

    Parameters
    ----------
    n_features
        Number of features (kept for a uniform constructor).

    """

    def __init__(self, n_features: int):
        super().__init__()
        self.n_features = n_features

    def nll(self, x: torch.Tensor, eta: torch.Tensor, log_library: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood ``softplus(η) − x η``, ``(..., batch, D)``."""
        return nn.functional.softplus(eta) - x * eta

    def mean(self, eta: torch.Tensor, log_library: torch.Tensor | None = None) -> torch.Tensor:
        """``P(x = 1) = sigmoid(η)``."""
        return torch.sigmoid(eta)

    def variance(self, eta: torch.Tensor, log_library: torch.Tensor | None = None) -> torch.Tensor:
        """``p (1 − p)``."""
        p = torch.sigmoid(eta)
        return p * (1 - p)

    def prior_penalty(self, feature_weight: torch.Tensor) -> torch.Tensor:
        """No prior: 0."""
        return feature_weight.new_zeros(())


#: the likelihood names :class:`~poems_mu.POEMS` accepts, and what each expects of the data
LIKELIHOODS = {
    "gaussian": "continuous values (standardised per feature inside the model)",
    "nb": "raw counts: non-negative integers",
    "bernoulli": "binary values: 0 or 1",
}


def make_likelihood(name: str, n_features: int, sigma_prior_df: float = 3.0) -> nn.Module:
    """The likelihood module called ``name`` (one of :data:`LIKELIHOODS`) for ``n_features`` features."""
    if name == "gaussian":
        return GaussianLikelihood(n_features, prior_df=sigma_prior_df)
    if name == "nb":
        return NegativeBinomialLikelihood(n_features)
    if name == "bernoulli":
        return BernoulliLikelihood(n_features)
    raise ValueError(f"Unknown likelihood {name!r}; choose one of {list(LIKELIHOODS)}.")
