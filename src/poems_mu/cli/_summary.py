"""The one-screen summary both commands print: :func:`poems_mu.tl.summary`, the training time, metrics and files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from poems_mu._constants import LATENT_KEY
from poems_mu.tl import summary as model_summary


def summary(mdata, model, seconds: float, metrics=None, files: Sequence[Path] = (), title: str = "") -> str:
    """One screen: the model's summary (data, likelihoods, gates, sparsity, training), time, metrics, files written.

    ``metrics``: ``{embedding key: table of tl.summarize_subtyping}``; ``seconds``: the training time of every run.
    """
    lines = [f"== {title or 'POEMS'} ==", *model_summary(model).lines()]
    epochs = next(i for i, line in enumerate(lines) if line.startswith("epochs"))
    lines.insert(epochs + 1, f"train time   {seconds:.1f} s")
    for key, table in (metrics or {}).items():
        label = "subtyping" if key == LATENT_KEY else f"subtyping of {key}"
        lines.append(f"{label}    " + "  ".join(f"{r.metric} {r.mean:.3f}±{r.sd:.3f}" for r in table.itertuples()))
    if files:
        lines.append("written")
        lines += [f"  {f}" for f in files]
    return "\n".join(lines)
