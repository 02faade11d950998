"""poems_mu.tl."""

from ._evaluate import evaluate_subtyping, summarize_subtyping

__all__ = ["evaluate_subtyping", "summarize_subtyping"]
