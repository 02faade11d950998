"""What a likelihood decides for its modality, and the starting statistics it reads off the data.

A likelihood object owns every decision that depends on the kind of data a modality holds: which values it accepts,
the view of the data its encoder sees (standardised per feature with the buffers ``view_mean`` and ``view_scale``),
the target of its loss, the decoder's starting bias, the negative log-likelihood, and the mean and variance of the
data in their own units. The decoder output ``η`` is on the likelihood's link scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

#: a feature whose SD is below this share of (1 + |mean|) is constant: it keeps scale 1 and leaves the likelihood
CONSTANT_TOL = 1e-8


@dataclass(frozen=True)
class FeatureStatistics:
    """What a modality's likelihood starts from, read off its observed training samples.

    Attributes
    ----------
    mean, scale
        Per-feature standardisation of the encoder's view (float32; scale 1 for a constant feature).
    mask
        1 for the features that enter the likelihood, 0 for constant ones (float32).
    log_library_reference
        ``log L₀``, the log median library size of a count modality (0 for the others).
    bias
        The decoder's starting per-feature bias: the mean of the data on the link scale (float64).

    """

    mean: np.ndarray
    scale: np.ndarray
    mask: np.ndarray
    log_library_reference: float
    bias: np.ndarray


def standardisation(t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-feature ``(mean, scale, mask)`` of ``t`` (samples × features, float64) as float32 arrays."""
    mean, sd = t.mean(0), t.std(0)
    constant = sd <= CONSTANT_TOL * (1 + np.abs(mean))
    scale = np.where(constant, 1.0, sd)
    return mean.astype(np.float32), scale.astype(np.float32), (~constant).astype(np.float32)


class Likelihood(nn.Module):
    """Base class of the per-modality likelihoods.

    Subclasses set the class attributes and implement :meth:`nll`, :meth:`mean`, :meth:`variance` and
    :meth:`expected_transform`; the defaults below fit a likelihood whose encoder sees the data themselves.

    Parameters
    ----------
    n_features
        Number of features D.
    statistics
        The modality's :class:`FeatureStatistics` (``None``: mean 0, scale 1, every feature in, ``L₀ = 1``).

    """

    #: the name users pass (``likelihood="nb"``)
    name: ClassVar[str]
    #: what the data must be, for documentation and errors
    expects: ClassVar[str]
    #: whether the mean scales with each sample's library size (a minibatch then carries ``log ℓ``)
    uses_library: ClassVar[bool] = False
    #: ``(what the data are, what is wrong with them, the fix)`` for the error on values :meth:`invalid_values` flags
    data_rule: ClassVar[tuple[str, str, str] | None] = None
    #: name of the per-feature parameter a model stores for this likelihood (``var["poems_<name>"]``), if any
    feature_parameter: ClassVar[str | None] = None

    def __init__(self, n_features: int, statistics: FeatureStatistics | None = None):
        super().__init__()
        self.n_features = n_features
        self.register_buffer("view_mean", torch.zeros(n_features))
        self.register_buffer("view_scale", torch.ones(n_features))
        self.register_buffer("feature_mask", torch.ones(n_features))
        self.register_buffer("log_library_reference", torch.zeros(()))
        if statistics is not None:
            self.view_mean.copy_(torch.as_tensor(statistics.mean, dtype=torch.float32))
            self.view_scale.copy_(torch.as_tensor(statistics.scale, dtype=torch.float32))
            self.feature_mask.copy_(torch.as_tensor(statistics.mask, dtype=torch.float32))
            self.log_library_reference.fill_(float(statistics.log_library_reference))

    # -- the data ------------------------------------------------------------------------------------------------
    @classmethod
    def invalid_values(cls, values: np.ndarray) -> np.ndarray | None:
        """Boolean mask of the stored values this likelihood cannot model; ``None`` when any finite value will do."""
        return None

    @classmethod
    def initial_statistics(cls, x: np.ndarray, library: np.ndarray | None = None) -> FeatureStatistics:
        """The :class:`FeatureStatistics` of observed data ``x`` (samples × features, float64); ``library`` holds
        the samples' library sizes where the likelihood uses them (``None``: the total counts).
        """
        mean, scale, mask = standardisation(x)
        return FeatureStatistics(mean, scale, mask, 0.0, cls.initial_bias(x))

    @classmethod
    def initial_bias(cls, x: np.ndarray) -> np.ndarray:
        """The decoder's starting per-feature bias for data ``x``: the data's mean on the link scale."""
        return np.zeros(x.shape[1])

    # -- what the encoder sees and what the loss compares --------------------------------------------------------
    def log_library(self, x: torch.Tensor, library: torch.Tensor | None) -> torch.Tensor | None:
        """``log ℓ`` per sample, for a likelihood that uses library sizes; ``None`` otherwise."""
        return None

    def view(self, x: torch.Tensor, log_library: torch.Tensor | None) -> torch.Tensor:
        """The transform of the data the encoder sees, before standardisation (the data themselves)."""
        return x

    def encoder_input(self, x: torch.Tensor, observed: torch.Tensor, log_library: torch.Tensor | None):
        """The encoder's input: the view standardised per feature; rows of samples without the modality exactly 0."""
        return ((self.view(x, log_library) - self.view_mean) / self.view_scale) * observed.unsqueeze(-1)

    def target(self, x: torch.Tensor, encoder_input: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        """What :meth:`nll` scores: the data (absent rows 0)."""
        return x * observed.unsqueeze(-1)

    def expected_transform(self, eta: torch.Tensor) -> torch.Tensor:
        """The decoder output ``η`` mapped to the encoder's view, before standardisation."""
        raise NotImplementedError

    def expected_view(self, eta: torch.Tensor) -> torch.Tensor:
        """The decoder output ``η`` on the encoder's standardised view (what the data's view is expected to be)."""
        return (self.expected_transform(eta) - self.view_mean) / self.view_scale

    # -- the likelihood itself -----------------------------------------------------------------------------------
    def nll(self, x: torch.Tensor, eta: torch.Tensor, log_library: torch.Tensor | None = None) -> torch.Tensor:
        """Negative log-likelihood per sample and feature of :meth:`target` ``x`` given ``η``."""
        raise NotImplementedError

    def mean(self, eta: torch.Tensor, log_library: torch.Tensor | None = None) -> torch.Tensor:
        """Mean of the data given ``η``."""
        raise NotImplementedError

    def variance(self, eta: torch.Tensor, log_library: torch.Tensor | None = None) -> torch.Tensor:
        """Variance of the data given ``η``."""
        raise NotImplementedError

    def predictive_moments(self, eta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and variance of the data over decoder outputs ``η`` (draws × batch × D) at the reference library.

        Law of total variance: the spread of the decoded means plus the likelihood's own variance.
        """
        log_lib = self.log_library_reference.expand(eta.shape[1])
        draws = self.mean(eta, log_lib)
        var = draws.var(0, unbiased=False) + self.variance(eta, log_lib).mean(0)
        return draws.mean(0), var

    def constant_value(self) -> torch.Tensor:
        """Per feature, the training value of a constant feature in data units (meaningful where the mask is 0)."""
        return self.view_mean

    def prior_penalty(self) -> torch.Tensor:
        """Negative log prior of the likelihood's own per-feature parameters over the features that count."""
        return self.feature_mask.new_zeros(())

    def feature_parameter_values(self) -> np.ndarray | None:
        """The per-feature parameter named by :attr:`feature_parameter`, in data units (``None`` if none)."""
        return None
