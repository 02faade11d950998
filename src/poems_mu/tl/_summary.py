"""A trained model in one screen: data and likelihoods, gates, sparsity, the factors kept, how training ended."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from mudata import MuData

from poems_mu.data._covariates import registered_covariates

from ._common import is_model, model_mdata

#: |W| above this counts as a link (the paper's threshold, as in ``sparsity_summary`` and the training log)
LINK_THRESHOLD = 0.01
#: the columns of ``POEMS.sparsity_summary`` the summary shows
SPARSITY_COLUMNS = ("density", "density_kept", "links_per_feature", "zeros", "slab")


@dataclass
class ModelSummary:
    """What :func:`summary` returns: three tables and the training record, printed as one screen.

    Attributes
    ----------
    modalities
        One row per modality: ``likelihood``, ``features``, ``samples`` (that have the modality), ``gate`` and
        ``contribution`` (means over those samples), and with the sparse decoder the columns of
        :meth:`~poems_mu.POEMS.sparsity_summary` (``density``, ``density_kept``, ``links_per_feature``, ``zeros``,
        ``slab``).
    factors
        One row per kept factor, in the model's order: ``r2`` (the variance it explains, mean over modalities of the
        leave-one-factor-out R² that ordered the factors when training ended; NaN for a model trained before that
        was recorded) and ``links_<modality>`` (features with ``|W| > 0.01``, sparse decoder).
    training
        ``epochs``, ``max_epochs``, ``stopped_early``, ``best_epoch`` (the held-out epoch restored, if any),
        ``n_restarts``, ``chosen_restart``, ``n_latent`` (the cap K) and ``n_factors`` (kept).
    covariates
        The covariates the model was set up with, as text (empty without covariates).
    library_size
        The ``obs`` column of library sizes (negative binomial modalities), if one was set up.

    """

    modalities: pd.DataFrame
    factors: pd.DataFrame
    training: dict
    covariates: list[str] = field(default_factory=list)
    library_size: str | None = None

    def lines(self) -> list[str]:
        """The summary as lines of text (what ``print`` shows)."""
        mods = self.modalities
        out = [
            f"samples      {int(self.training['n_obs'])}",
            "modalities   (likelihood; mean gate α and mean effective contribution over the samples that have it;",
            f"              W: share of |W| > {LINK_THRESHOLD:g} over all K columns, exact zeros, slab links p* > 0.5)",
        ]
        for mod, r in mods.iterrows():
            line = f"  {mod:<12} {r['likelihood']:<9} {int(r['features']):>7} features  {int(r['samples']):>6} samples"
            line += f"  gate {r['gate']:.3f}  contribution {r['contribution']:.3f}"
            if "density" in mods.columns:
                line += f"  W > {LINK_THRESHOLD:g}: {r['density']:.3f}, zeros {r['zeros']:.3f}, slab {r['slab']:.3f}"
            out.append(line)
        if self.covariates:
            out.append(f"covariates   {', '.join(self.covariates)}")
        if self.library_size is not None:
            out.append(f"library size obs {self.library_size!r} (nb modalities)")
        t = self.training
        stopped = f" (max {t['max_epochs']}, stopped early)" if t["stopped_early"] else ""
        restored = f"; restored the best held-out epoch, {t['best_epoch']}" if t["best_epoch"] else ""
        out.append(f"epochs       {t['epochs']}{stopped}{restored}")
        if t["n_restarts"] > 1:
            out.append(f"restarts     {t['n_restarts']}, kept restart {t['chosen_restart']} (best held-out criterion)")
        out.append(
            f"latent       {t['n_factors']} factors (of at most {t['n_latent']}), ordered by the variance they explain "
            "-> obsm['X_poems']"
        )
        r2 = self.factors["r2"].to_numpy(dtype=float)
        if len(r2) and np.isfinite(r2).all():
            shown = ", ".join(f"{f} {v:.1%}" for f, v in zip(self.factors.index[:5], r2[:5], strict=True))
            more = ", …" if len(r2) > 5 else ""
            out.append(f"             variance explained (mean over modalities): {shown}{more}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def __repr__(self) -> str:
        return str(self)


def _covariates(model) -> list[str]:
    """The covariates the model was set up with, as short texts."""
    state = registered_covariates(model.adata_manager) or {}
    setup = model.adata_manager.registry["setup_args"]
    batch = setup.get("batch_key")
    parts = [
        f"{'batch ' if key == batch else ''}{key} ({len(state['categories'][key])} categories)"
        for key in state.get("categorical_keys", [])
    ]
    return parts + [f"{key} (continuous)" for key in state.get("continuous_keys", [])]


def summary(model, mdata: MuData | None = None) -> ModelSummary:
    """A trained model in one screen: the Python form of the summary the command line prints.

    Parameters
    ----------
    model
        A trained :class:`~poems_mu.POEMS` model.
    mdata
        MuData whose samples the gates are averaged over (default: the training MuData).

    Returns
    -------
    :class:`ModelSummary`
        Prints as one screen (``print(pm.tl.summary(model))``, or as the last line of a notebook cell); its
        ``modalities``, ``factors`` and ``training`` attributes hold the numbers as tables.

    Examples
    --------
    >>> s = pm.tl.summary(model)  # doctest: +SKIP
    >>> s.factors.head()  # doctest: +SKIP

    """
    if not is_model(model):
        raise TypeError(f"`model` must be a trained poems_mu.POEMS model, got {type(model).__name__}.")
    if not model.is_trained_:
        raise ValueError("The model is not trained yet: call model.train() first.")
    mdata_ = model_mdata(model, mdata)
    sparse = model.module.decoder_type == "sparse"
    gates = model.get_gating_weights(mdata)
    contrib = model.get_contributions(mdata)
    sparsity = model.sparsity_summary() if sparse else None
    rows = {}
    for mod in model.modalities:
        present = np.asarray(mdata_.obsmap[mod]).ravel() > 0
        row = {
            "likelihood": model.likelihoods[mod],
            "features": int(mdata_.mod[mod].n_vars),
            "samples": int(present.sum()),
            "gate": float(gates.loc[present, mod].mean()),
            "contribution": float(contrib.loc[present, mod].mean()),
        }
        if sparsity is not None:
            row.update({c: sparsity.loc[mod, c] for c in SPARSITY_COLUMNS})
        rows[mod] = row
    modalities = pd.DataFrame.from_dict(rows, orient="index")

    names = model.factor_names()
    record = getattr(model, "training_summary_", None) or {}
    r2 = record.get("factor_r2")
    factors = pd.DataFrame(
        {"r2": np.asarray(r2, dtype=np.float64) if r2 is not None and len(r2) == len(names) else np.nan},
        index=pd.Index(names, name="factor"),
    )
    if sparse:
        for mod in model.modalities:
            w = model.get_loadings(mod).to_numpy()
            factors[f"links_{mod}"] = (np.abs(w) > LINK_THRESHOLD).sum(0)

    hist = model.history.get("elbo_train") if model.history is not None else None
    epochs = 0 if hist is None else len(hist)
    trainer = getattr(model, "trainer", None)
    max_epochs = trainer.max_epochs if trainer is not None else None
    runs = record.get("runs", [])
    chosen = int(record.get("chosen_restart", 0))
    training = {
        "n_obs": int(mdata_.n_obs),
        "epochs": epochs,
        "max_epochs": max_epochs,
        "stopped_early": bool(max_epochs and epochs < max_epochs),
        "best_epoch": runs[chosen].get("best_epoch") if runs else None,
        "n_restarts": int(record.get("n_restarts", 1)),
        "chosen_restart": chosen,
        "n_latent": int(model.module.n_latent),
        "n_factors": int(model.module.n_factors),
    }
    library_size = model.adata_manager.registry["setup_args"].get("size_factor_key")
    return ModelSummary(modalities, factors, training, _covariates(model), library_size)
