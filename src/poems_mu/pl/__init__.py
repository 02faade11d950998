"""poems_mu.pl: scanpy-style plots of POEMS results (``ax``, ``show``, ``save``; axes returned with ``show=False``).

The file names mirror :mod:`poems_mu.tl`. The embedding itself works with scanpy directly:
``sc.pp.neighbors(mdata, use_rep="X_poems")``, ``sc.tl.umap(mdata)``,
``sc.pl.embedding(mdata, basis="X_poems", color="subtype")``; :func:`factors` plots any two factors by name.
"""

from ._associations import cross_omic_network
from ._enrichment import enrichment
from ._factor_scatter import factors
from ._factors import factor_heatmap
from ._gates import gates
from ._loadings import loadings
from ._refined_sets import refined_sets
from ._stability import factor_stability
from ._subtypes import subtype_correlations
from ._top_features import top_features
from ._variance import variance_explained
from ._weights import weights

__all__ = [
    "cross_omic_network",
    "enrichment",
    "factor_heatmap",
    "factor_stability",
    "factors",
    "gates",
    "loadings",
    "refined_sets",
    "subtype_correlations",
    "top_features",
    "variance_explained",
    "weights",
]
