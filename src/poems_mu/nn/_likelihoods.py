"""The likelihoods a modality can have: Gaussian, negative binomial on raw counts, Bernoulli on 0/1 data."""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.stats import chi2
from torch import nn

from ._likelihood import FeatureStatistics, Likelihood, standardisation

LOG_SIGMA_MIN = math.log(1e-3)
#: bounds on log θ of the negative binomial (θ from 1e-4, near-geometric tails, to 1e6, near-Poisson)
LOG_THETA_MIN, LOG_THETA_MAX = math.log(1e-4), math.log(1e6)


class GaussianLikelihood(Likelihood):
    """Gaussian with a learned per-feature σ_j and a scaled inverse-χ² prior on σ_j² (as in Sparse VAE).

    The encoder sees the data standardised per feature, and the loss scores that standardised view, so the model is
    invariant to a per-feature affine change of the input and σ starts at one (the feature's SD). The decoder output
    is the standardised mean.

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
    statistics
        See :class:`~poems_mu.nn.Likelihood`.

    """

    name = "gaussian"
    expects = "continuous values (standardised per feature inside the model)"
    feature_parameter = "sigma"

    def __init__(
        self,
        n_features: int,
        prior_df: float,
        prior_quantile_sd: float = 1.0,
        prior_probability: float = 0.9,
        statistics: FeatureStatistics | None = None,
    ):
        super().__init__(n_features, statistics)
        self.log_sigma = nn.Parameter(torch.zeros(n_features))
        self.prior_df = float(prior_df)
        # σ² ~ ν s0² / χ²_ν, so P(σ² < s²) = P(χ²_ν > ν s0²/s²) = p  ⇔  s0² = s² χ²_ν.ppf(1 − p) / ν
        self.prior_scale2 = float(prior_quantile_sd**2 * chi2.ppf(1 - prior_probability, prior_df) / prior_df)

    @property
    def sigma(self) -> torch.Tensor:
        """Per-feature SD on the standardised scale."""
        return self.log_sigma.clamp_min(LOG_SIGMA_MIN).exp()

    def target(self, x: torch.Tensor, encoder_input: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """The standardised data (what the encoder sees)."""
        return encoder_input

    def expected_view(self, eta: torch.Tensor) -> torch.Tensor:
        """The decoder output itself: it is the standardised mean."""
        return eta

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

    def predictive_moments(self, eta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance over the draws of ``η``, back from the standardised scale to data units."""
        mean, var = super().predictive_moments(eta)
        return self.view_mean + self.view_scale * mean, self.view_scale.square() * var

    def prior_penalty(self) -> torch.Tensor:
        """``−log p(σ²)`` summed over the features that count (up to a constant)."""
        log_sigma2 = 2 * self.log_sigma.clamp_min(LOG_SIGMA_MIN)
        per_feature = (self.prior_df / 2 + 1) * log_sigma2 + self.prior_df * self.prior_scale2 / (
            2 * torch.exp(log_sigma2)
        )
        return (per_feature * self.feature_mask).sum()

    def feature_parameter_values(self) -> np.ndarray:
        """The residual SD σ_j in data units."""
        return (self.sigma * self.view_scale).detach().cpu().numpy()


class NegativeBinomialLikelihood(Likelihood):
    """Negative binomial on raw counts: log-mean ``η_j + log ℓ_i`` per feature, a per-feature inverse dispersion.

    ``x_ij ~ NB(μ_ij, θ_j)`` with ``μ_ij = ℓ_i exp(η_ij)`` (``ℓ_i`` the sample's library size, ``η_ij`` the
    decoder's output, the log of the expected share of the library) and variance ``μ + μ²/θ_j``. Each feature has its
    own θ_j, with a weak log-normal prior ``log θ_j ~ N(log θ₀, s²)``. There is no softmax across features: feature
    j's mean depends on ``z`` only through ``η_j``, so ``W[j, k] = 0`` still removes factor k from feature j. The
    encoder sees ``log1p(x · L₀ / ℓ)`` (the counts at the reference library size L₀, the median training library),
    standardised, so a sample sequenced twice as deep gets the same view.

    Parameters
    ----------
    n_features
        Number of features.
    prior_theta
        θ₀, the prior median of the inverse dispersion (10: dispersion 0.1, typical of bulk RNA-seq).
    prior_log_sd
        s, the prior SD of ``log θ_j`` (2: θ between θ₀/50 and 50·θ₀ with 95 % prior probability).
    statistics
        See :class:`~poems_mu.nn.Likelihood`.

    """

    name = "nb"
    expects = "raw counts: non-negative integers"
    uses_library = True
    data_rule = (
        "raw counts",
        "negative or non-integer values",
        "Give the raw counts (e.g. a 'counts' layer via setup_mudata(layers=...)), or use likelihood 'gaussian' for "
        "transformed data.",
    )
    feature_parameter = "nb_theta"

    def __init__(
        self,
        n_features: int,
        prior_theta: float = 10.0,
        prior_log_sd: float = 2.0,
        statistics: FeatureStatistics | None = None,
    ):
        super().__init__(n_features, statistics)
        self.log_theta = nn.Parameter(torch.full((n_features,), math.log(prior_theta)))
        self.prior_log_theta = math.log(prior_theta)
        self.prior_log_sd = float(prior_log_sd)

    @classmethod
    def invalid_values(cls, values: np.ndarray) -> np.ndarray:
        """Negative or non-integer values."""
        return (values < 0) | (values != np.round(values))

    @classmethod
    def initial_statistics(cls, x: np.ndarray, library: np.ndarray | None = None) -> FeatureStatistics:
        """Standardisation of ``log1p`` of the counts at the median library size; bias: the log mean share."""
        lib = np.maximum(x.sum(1), 1.0) if library is None else np.asarray(library, dtype=np.float64)
        log_ref = float(np.log(np.median(lib))) if len(lib) else 0.0
        share = x / lib[:, None]
        mean, scale, mask = standardisation(np.log1p(share * np.exp(log_ref)))
        bias = np.log(np.maximum(share.mean(0), 1e-8))
        return FeatureStatistics(mean, scale, mask, log_ref, bias)

    def log_library(self, x: torch.Tensor, library: torch.Tensor | None) -> torch.Tensor:
        """``log ℓ``: of ``library`` as given (checked positive), or of the total counts (at least 1)."""
        if library is None:  # a sample with no counts gets ℓ = 1 (its counts are all 0 anyway)
            return x.sum(-1).clamp_min(1.0).log()
        return library.log()  # size factors as given, e.g. DESeq-style ones around 1

    def view(self, x: torch.Tensor, log_library: torch.Tensor) -> torch.Tensor:
        """``log1p`` of the counts at the reference library size."""
        return torch.log1p(x * torch.exp(self.log_library_reference - log_library).unsqueeze(-1))

    def expected_transform(self, eta: torch.Tensor) -> torch.Tensor:
        """``log1p`` of the expected counts at the reference library size, ``log1p(exp(η + log L₀))``, stably."""
        return nn.functional.softplus(eta + self.log_library_reference)

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

    def constant_value(self) -> torch.Tensor:
        """The count of a constant feature: the view's mean undone (``expm1``)."""
        return torch.expm1(self.view_mean)

    def prior_penalty(self) -> torch.Tensor:
        """``−log p(log θ)`` summed over the features that count (up to a constant)."""
        per_feature = 0.5 * ((self.log_theta - self.prior_log_theta) / self.prior_log_sd) ** 2
        return (per_feature * self.feature_mask).sum()

    def feature_parameter_values(self) -> np.ndarray:
        """The inverse dispersion θ_j."""
        return self.theta.detach().cpu().numpy().astype(np.float64)


class BernoulliLikelihood(Likelihood):
    """Bernoulli on 0/1 data (e.g. mutation calls): the decoder's output is the logit of ``P(x_ij = 1)``.

    No parameters of its own; the encoder sees the 0/1 values standardised. ``W[j, k] = 0`` removes factor k from
    feature j's logit.

    Parameters
    ----------
    n_features
        Number of features.
    statistics
        See :class:`~poems_mu.nn.Likelihood`.

    """

    name = "bernoulli"
    expects = "binary values: 0 or 1"
    data_rule = (
        "0/1 data",
        "values other than 0 and 1",
        "Binarise it (e.g. mutated = 1), or use likelihood 'gaussian'.",
    )

    @classmethod
    def invalid_values(cls, values: np.ndarray) -> np.ndarray:
        """Values other than 0 and 1."""
        return (values != 0) & (values != 1)

    @classmethod
    def initial_bias(cls, x: np.ndarray) -> np.ndarray:
        """The logit of each feature's share of ones (clipped to [0.001, 0.999])."""
        p = np.clip(x.mean(0), 1e-3, 1 - 1e-3)
        return np.log(p / (1 - p))

    def expected_transform(self, eta: torch.Tensor) -> torch.Tensor:
        """``P(x = 1)``."""
        return torch.sigmoid(eta)

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


#: the likelihoods :class:`~poems_mu.POEMS` accepts, by the name users pass
LIKELIHOODS: dict[str, type[Likelihood]] = {
    cls.name: cls for cls in (GaussianLikelihood, NegativeBinomialLikelihood, BernoulliLikelihood)
}


def likelihood_class(name, modality: str | None = None) -> type[Likelihood]:
    """The likelihood class called ``name``; an error naming the choices (and ``modality``) otherwise."""
    if isinstance(name, str) and name in LIKELIHOODS:
        return LIKELIHOODS[name]
    where = "" if modality is None else f"Modality {modality!r}: "
    raise ValueError(
        f"{where}unknown likelihood {name!r}; choose one of {list(LIKELIHOODS)} "
        "('nb' for raw counts, 'bernoulli' for 0/1 data, 'gaussian' for anything continuous)."
    )


def make_likelihood(
    name: str, n_features: int, sigma_prior_df: float, statistics: FeatureStatistics | None = None
) -> Likelihood:
    """The likelihood called ``name`` for ``n_features`` features (``sigma_prior_df``: ν of the Gaussian σ² prior)."""
    cls = likelihood_class(name)
    if cls is GaussianLikelihood:
        return GaussianLikelihood(n_features, prior_df=sigma_prior_df, statistics=statistics)
    return cls(n_features, statistics=statistics)


def likelihood_with_parameter(parameter: str) -> type[Likelihood]:
    """The likelihood class whose per-feature parameter is ``parameter`` (``"sigma"``, ``"nb_theta"``)."""
    return next(cls for cls in LIKELIHOODS.values() if cls.feature_parameter == parameter)
