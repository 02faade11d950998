"""Data sets and readers: MOGONET-format folders, small bundled real data sets and the POEMS paper's TCGA BRCA set."""

from ._bundled import breast_tcga, rosmap
from ._download import tcga_brca
from ._mogonet import read_mogonet

__all__ = ["breast_tcga", "read_mogonet", "rosmap", "tcga_brca"]
