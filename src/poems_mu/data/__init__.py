"""From a user's MuData to minibatches: checks, registry fields, covariates, the loader and query cohorts.

Modalities need not cover every sample: each modality's rows are gathered through ``mdata.obsmap`` and masked, never
padded in the user's data.
"""

from ._checks import layer_matrix
from ._covariates import CovariatesField
from ._loader import MultiModalDataset, POEMSDataLoader, POEMSDataSplitter
from ._registry import drop_setup_ids

__all__ = [
    "CovariatesField",
    "MultiModalDataset",
    "POEMSDataLoader",
    "POEMSDataSplitter",
    "drop_setup_ids",
    "layer_matrix",
]
