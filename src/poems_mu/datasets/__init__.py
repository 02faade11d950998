"""Data sets and readers: MOGONET-format folders, small bundled real data sets and the POEMS paper's TCGA BRCA set."""

from ._bundled import breast_tcga, rosmap
from ._download import tcga_brca
from ._feature_sets import breast_tcga_feature_sets
from ._mogonet import read_mogonet

__all__ = ["breast_tcga", "breast_tcga_feature_sets", "read_mogonet", "rosmap", "tcga_brca"]
