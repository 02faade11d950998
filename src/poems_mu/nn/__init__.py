"""Building blocks of the POEMS module: encoders, gate, product of experts, sparse decoders, priors, likelihoods.

Nothing here knows of MuData: the blocks take tensors (and, for a likelihood's starting statistics, arrays).
"""

from ._covariates import CovariateEffects
from ._encoder import ModalityEncoder
from ._gating import GatingNetwork, masked_log_softmax
from ._likelihood import FeatureStatistics, Likelihood
from ._likelihoods import (
    LIKELIHOODS,
    BernoulliLikelihood,
    GaussianLikelihood,
    NegativeBinomialLikelihood,
    likelihood_class,
    likelihood_with_parameter,
    make_likelihood,
)
from ._poe import drop_experts, product_of_experts
from ._sparse_decoder import DenseDecoder, SparseDecoder
from ._ssl_prior import SpikeSlabLasso, annotated_prior_logits, count_sets, shrink_columns

__all__ = [
    "LIKELIHOODS",
    "BernoulliLikelihood",
    "CovariateEffects",
    "DenseDecoder",
    "FeatureStatistics",
    "GatingNetwork",
    "GaussianLikelihood",
    "Likelihood",
    "ModalityEncoder",
    "NegativeBinomialLikelihood",
    "SparseDecoder",
    "SpikeSlabLasso",
    "annotated_prior_logits",
    "count_sets",
    "drop_experts",
    "likelihood_class",
    "likelihood_with_parameter",
    "make_likelihood",
    "masked_log_softmax",
    "product_of_experts",
    "shrink_columns",
]
