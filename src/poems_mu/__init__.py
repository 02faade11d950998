"""POEMS for MuData: Product Of Experts for interpretable Multi-omics integration using Sparse decoding."""

from importlib.metadata import PackageNotFoundError as _PackageNotFoundError
from importlib.metadata import version as _version

from . import datasets, pl, pp, tl
from ._model_files import InvalidModelFolder
from .model import POEMS
from .train import NonFiniteLossError

try:
    __version__ = _version("poems_mu")
except _PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"

__all__ = ["POEMS", "InvalidModelFolder", "NonFiniteLossError", "datasets", "pl", "pp", "tl", "__version__"]
