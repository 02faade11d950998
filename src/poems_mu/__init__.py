"""POEMS for MuData: Product Of Experts for interpretable Multi-omics integration using Sparse decoding."""

from importlib.metadata import PackageNotFoundError, version

from . import datasets, pl, pp, tl
from ._model import POEMS
from ._model_files import InvalidModelFolder
from ._training_plan import NonFiniteLossError

try:
    __version__ = version("poems_mu")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["POEMS", "InvalidModelFolder", "NonFiniteLossError", "datasets", "pl", "pp", "tl", "__version__"]
