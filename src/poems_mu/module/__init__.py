"""The POEMS torch module and the declaration of its hyperparameters."""

from ._hyperparameters import DEFAULTS, Hyperparameters
from ._module import POEMSModule

__all__ = ["DEFAULTS", "Hyperparameters", "POEMSModule"]
