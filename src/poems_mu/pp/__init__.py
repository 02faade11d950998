"""Preprocessing of bulk multi-omics data in MuData / AnnData.

Every function writes its result to a layer or a ``var`` column and never modifies ``.X`` or an existing
layer/column unless ``overwrite=True`` is passed; ``anonymize`` returns a renamed copy for sharing.
"""

from ._anonymize import anonymize, deanonymize
from ._hvf import highly_variable_features
from ._transform import log1p, scale

__all__ = ["anonymize", "deanonymize", "highly_variable_features", "log1p", "scale"]
