"""Neural-network building blocks of the POEMS module."""

from ._encoder import ModalityEncoder
from ._gating import GatingNetwork, masked_log_softmax
from ._likelihood import GaussianLikelihood
from ._poe import drop_experts, product_of_experts
from ._sparse_decoder import DenseDecoder, SparseDecoder
from ._ssl_prior import SpikeSlabLasso

__all__ = [
    "DenseDecoder",
    "GatingNetwork",
    "GaussianLikelihood",
    "ModalityEncoder",
    "SparseDecoder",
    "SpikeSlabLasso",
    "drop_experts",
    "masked_log_softmax",
    "product_of_experts",
]
