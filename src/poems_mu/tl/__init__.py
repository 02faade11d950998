"""poems_mu.tl."""

from ._associations import cross_omic_associations, to_networkx
from ._consensus import consensus_embedding
from ._cross_validate import cross_validate
from ._enrichment import enrichment
from ._evaluate import evaluate_subtyping, summarize_subtyping
from ._factor_associations import factor_associations
from ._factors import active_factors
from ._refine import refine_associations
from ._refined_sets import feature_set_summary, refined_sets
from ._stability import factor_stability
from ._subtypes import subtype_correlations
from ._summary import ModelSummary, summary
from ._top_features import top_features
from ._variance import variance_explained

__all__ = [
    "ModelSummary",
    "active_factors",
    "consensus_embedding",
    "cross_omic_associations",
    "cross_validate",
    "enrichment",
    "evaluate_subtyping",
    "factor_associations",
    "factor_stability",
    "feature_set_summary",
    "refine_associations",
    "refined_sets",
    "subtype_correlations",
    "summarize_subtyping",
    "summary",
    "to_networkx",
    "top_features",
    "variance_explained",
]
