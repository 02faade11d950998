"""poems_mu.pl: scanpy-style plots of POEMS results (``ax``, ``show``, ``save``; axes returned with ``show=False``).

The embedding itself works with scanpy directly: ``sc.pp.neighbors(mdata, use_rep="X_poems")``,
``sc.tl.umap(mdata)``, ``sc.pl.embedding(mdata, basis="X_poems", color="subtype")``.
"""

from ._enrichment import enrichment
from ._loadings import loadings, subtype_correlations, top_features, variance_explained
from ._network import cross_omic_network
from ._samples import factor_heatmap, gates
from ._stability import factor_stability

__all__ = [
    "cross_omic_network",
    "enrichment",
    "factor_heatmap",
    "factor_stability",
    "gates",
    "loadings",
    "subtype_correlations",
    "top_features",
    "variance_explained",
]
