"""Preprocessing of bulk multi-omics data in MuData / AnnData.

Every function writes its result to a layer or a ``var`` column and never modifies ``.X`` or an existing
layer/column unless ``overwrite=True`` is passed.
"""

from ._hvf import highly_variable_features
from ._transform import log1p, scale

__all__ = ["highly_variable_features", "log1p", "scale"]
