"""The one-screen summary both commands print: data, likelihoods, gates, sparsity, training, metrics, files."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from poems_mu.data._covariates import registered_covariates

#: |W| above this counts as a non-zero loading in the summary (as in the training log's W_density)
W_NONZERO = 0.01


def summary(mdata, model, seconds: float, metrics=None, files: Sequence[Path] = (), title: str = "") -> str:
    """One screen: data, training, gates, loadings density, metrics and files written."""
    hist = model.history.get("elbo_train")
    epochs = 0 if hist is None else len(hist)
    max_epochs = model.trainer.max_epochs if getattr(model, "trainer", None) is not None else None
    lines = [
        f"== {title or 'POEMS'} ==",
        f"samples      {mdata.n_obs}",
        "modalities   (likelihood; mean gate α and mean effective contribution over the samples that have it;",
        "              W: share of |W| > 0.01, of exact zeros, and of slab links p* > 0.5)",
    ]
    gates = model.get_gating_weights()
    contrib = model.get_contributions()
    sparsity = model.sparsity_summary() if model.module.decoder_type == "sparse" else None
    for mod in model.modalities:
        present = np.asarray(mdata.obsmap[mod]).ravel() > 0
        n_feat = mdata.mod[mod].n_vars
        g = gates.loc[present, mod].to_numpy()
        c = contrib.loc[present, mod].to_numpy()
        line = f"  {mod:<12} {model.likelihoods[mod]:<9} {n_feat:>7} features  {int(present.sum()):>6} samples"
        line += f"  gate {g.mean():.3f}"
        line += f"  contribution {c.mean():.3f}"
        if sparsity is not None:
            r = sparsity.loc[mod]
            line += f"  W > {W_NONZERO:g}: {r['density']:.3f}, zeros {r['zeros']:.3f}, slab {r['slab']:.3f}"
        lines.append(line)
    lines += _covariate_lines(model)
    stopped = f" (max {max_epochs}, stopped early)" if max_epochs and epochs < max_epochs else ""
    runs = getattr(model, "training_summary_", {}).get("runs", [])
    best = runs[model.training_summary_["chosen_restart"]]["best_epoch"] if runs else None
    restored = f"; restored the best held-out epoch, {best}" if best else ""
    lines.append(f"epochs       {epochs}{stopped}{restored}")
    lines.append(f"train time   {seconds:.1f} s")
    lines.append(
        f"latent       {model.module.n_factors} factors (of at most {model.module.n_latent}), ordered by the variance "
        "they explain -> obsm['X_poems']"
    )
    if metrics is not None:
        lines.append("subtyping    " + "  ".join(f"{r.metric} {r.mean:.3f}±{r.sd:.3f}" for r in metrics.itertuples()))
    if files:
        lines.append("written")
        lines += [f"  {f}" for f in files]
    return "\n".join(lines)


def _covariate_lines(model) -> list[str]:
    """The covariates and library sizes the model was set up with (none: no lines)."""
    state = registered_covariates(model.adata_manager) or {}
    setup = model.adata_manager.registry["setup_args"]
    batch = setup.get("batch_key")
    parts = [
        f"{'batch ' if key == batch else ''}{key} ({len(state['categories'][key])} categories)"
        for key in state.get("categorical_keys", [])
    ]
    parts += [f"{key} (continuous)" for key in state.get("continuous_keys", [])]
    lines = [f"covariates   {', '.join(parts)}"] if parts else []
    if setup.get("size_factor_key") is not None:
        lines.append(f"library size obs {setup['size_factor_key']!r} (nb modalities)")
    return lines
