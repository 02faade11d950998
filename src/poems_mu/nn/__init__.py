"""Neural-network building blocks of the POEMS module."""

from ._covariates import CovariateEffects
from ._encoder import ModalityEncoder
from ._gating import GatingNetwork, masked_log_softmax
from ._likelihood import (
    LIKELIHOODS,
    BernoulliLikelihood,
    GaussianLikelihood,
    NegativeBinomialLikelihood,
    make_likelihood,
)
from ._poe import drop_experts, product_of_experts
from ._sparse_decoder import DenseDecoder, SparseDecoder
from ._ssl_prior import SpikeSlabLasso

__all__ = [
    "LIKELIHOODS",
    "BernoulliLikelihood",
    "CovariateEffects",
    "DenseDecoder",
    "GatingNetwork",
    "GaussianLikelihood",
    "ModalityEncoder",
    "NegativeBinomialLikelihood",
    "SparseDecoder",
    "SpikeSlabLasso",
    "drop_experts",
    "make_likelihood",
    "masked_log_softmax",
    "product_of_experts",
]
