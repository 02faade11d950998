"""Command line: ``poems-mu fit`` trains POEMS on an ``.h5mu`` file; ``poems-mu demo`` runs it on bundled data.

Errors in the input (a missing file, an unknown modality, a bad layer, an unknown likelihood, a covariate that is not
a column of ``obs``, data that do not suit their likelihood, ...) are reported as one line, ``poems-mu: error: ...``,
with exit status 2 and no stack trace; ``--debug`` shows the trace. The options are parsed in :mod:`._cli_args`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from ._cli_args import DEMO_FILE, PROG, CLIError, build_parser, model_kwargs, setup_kwargs

#: |W| above this counts as a non-zero loading in the summary (as in the training log's W_density)
W_NONZERO = 0.01
DEMO_LABEL_KEY = "subtype"


# --------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_libraries():
    """Silence Lightning's banner/tips and known harmless warnings; keep the progress bar."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning", "scvi")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for msg in (
            ".*pull_on_update.*",
            ".*does not have many workers.*",
            ".*log_every_n_steps.*",
            ".*LeafSpec.*",
            ".*treespec.*",
            ".*var_names.*not unique.*",
        ):
            warnings.filterwarnings("ignore", message=msg)
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels, strict=True):
                lg.setLevel(level)


def _model_dir(output: Path) -> Path:
    return output.with_name(f"{output.stem}_model")


def _check_writable(paths: Sequence[Path], overwrite: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise CLIError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace")


def _write_h5mu(mdata, path: Path) -> None:
    """Write atomically: a crash leaves any earlier file intact."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        mdata.write(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _train(model, args) -> float:
    kwargs = {"accelerator": args.accelerator, "devices": args.devices, "enable_progress_bar": not args.quiet}
    if args.max_epochs is not None:
        kwargs["max_epochs"] = args.max_epochs
    if isinstance(args.devices, list) or (isinstance(args.devices, int) and args.devices > 1):
        kwargs["strategy"] = "ddp"
    start = time.perf_counter()
    model.train(**kwargs)
    return time.perf_counter() - start


def _is_global_zero(model) -> bool:
    """Whether this process writes the outputs: always, except in the non-zero ranks of a multi-device run."""
    trainer = getattr(model, "trainer", None)
    return bool(getattr(trainer, "is_global_zero", True))


def _say(text: str) -> None:
    """Print, except in the extra processes that Lightning's DDP launcher starts (they re-run this command)."""
    if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0":
        print(text, flush=True)


def _summary(mdata, model, seconds: float, metrics=None, files: Sequence[Path] = (), title: str = "") -> str:
    """One screen: data, training, gates, loadings density, metrics and files written."""
    import numpy as np

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
    lines.append(f"latent       {model.module.n_latent} factors -> obsm['X_poems']")
    if metrics is not None:
        lines.append("subtyping    " + "  ".join(f"{r.metric} {r.mean:.3f}±{r.sd:.3f}" for r in metrics.itertuples()))
    if files:
        lines.append("written")
        lines += [f"  {f}" for f in files]
    return "\n".join(lines)


def _covariate_lines(model) -> list[str]:
    """The covariates and library sizes the model was set up with (none: no lines)."""
    from ._covariates import registered_covariates

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


def _evaluate(mdata, label_key: str):
    from . import tl

    if label_key not in mdata.obs:
        raise CLIError(f"--label-key {label_key!r} is not a column of the MuData's obs: {list(mdata.obs.columns)}")
    df = tl.evaluate_subtyping(mdata, label_key, use_rep="X_poems")
    return tl.summarize_subtyping(df)


# --------------------------------------------------------------------------------------------------------------
# commands
# --------------------------------------------------------------------------------------------------------------
def _run_fit(args) -> int:
    import mudata
    import scvi

    from ._model import POEMS

    output = Path(args.output)
    model_dir = _model_dir(output)
    _check_writable([output, model_dir], args.overwrite)
    if not Path(args.input).is_file():
        raise CLIError(f"input file {args.input!r} does not exist")
    if output.resolve() == Path(args.input).resolve():
        raise CLIError("the output must be a different file from the input")
    setup, model_args = setup_kwargs(args), model_kwargs(args)  # malformed options fail before reading the file
    try:
        mdata = mudata.read_h5mu(args.input)
    except (OSError, ValueError, KeyError) as err:
        raise CLIError(f"cannot read {args.input!r} as a MuData (.h5mu) file: {err}") from None
    scvi.settings.seed = args.seed
    POEMS.setup_mudata(mdata, **setup)
    model = POEMS(mdata, **model_args)
    existing = [f"{where}[{key!r}]" for where, store, key in model._result_targets(mdata) if key in store]
    if existing:
        # results of an earlier model: the output gets this model's results only (the input file is not touched)
        _say(f"Note: {args.input} holds earlier POEMS results; {output} will hold the new ones instead.")
        mdata.uns.pop("poems", None)
    _say(f"Training POEMS on {args.input}: {mdata.n_obs} samples, modalities {', '.join(model.modalities)}")
    seconds = _train(model, args)
    if not _is_global_zero(model):  # DDP: the other ranks re-run this command; only rank 0 writes
        return 0
    model.store_results(overwrite=True)
    metrics = _evaluate(mdata, args.label_key) if args.label_key else None
    output.parent.mkdir(parents=True, exist_ok=True)
    _write_h5mu(mdata, output)
    model.save(str(model_dir), overwrite=args.overwrite)
    print(_summary(mdata, model, seconds, metrics, [output, model_dir], title=f"POEMS fit: {args.input}"))
    return 0


def _run_demo(args) -> int:
    import scvi

    from . import datasets
    from ._model import POEMS

    out_dir = Path(args.out_dir)
    output = out_dir / DEMO_FILE
    figures = {name: out_dir / f"poems_demo_{name}.png" for name in ("umap", "gates", "loadings")}
    _check_writable([output, *figures.values()], args.overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    mdata = datasets.breast_tcga()
    scvi.settings.seed = args.seed
    POEMS.setup_mudata(mdata)
    model = POEMS(mdata, **model_kwargs(args))
    _say(
        f"Training POEMS on the bundled breast_tcga data: {mdata.n_obs} samples, "
        f"modalities {', '.join(model.modalities)} (protein missing for "
        f"{mdata.n_obs - mdata.mod['protein'].n_obs} samples)"
    )
    seconds = _train(model, args)
    if not _is_global_zero(model):
        return 0
    model.store_results(overwrite=True)
    metrics = _evaluate(mdata, DEMO_LABEL_KEY)
    _write_h5mu(mdata, output)
    _demo_figures(mdata, model, figures)
    print(_summary(mdata, model, seconds, metrics, [output, *figures.values()], title="POEMS demo: breast_tcga"))
    return 0


# --------------------------------------------------------------------------------------------------------------
# demo figures
# --------------------------------------------------------------------------------------------------------------
def _demo_figures(mdata, model, paths: dict[str, Path]) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    for name, draw in (("umap", _fig_umap), ("gates", _fig_gates), ("loadings", _fig_loadings)):
        fig = draw(mdata, model)
        fig.savefig(paths[name], dpi=120, bbox_inches="tight")
        plt.close(fig)


def _fig_umap(mdata, model):
    import anndata as ad
    import matplotlib.pyplot as plt
    import scanpy as sc

    adata = ad.AnnData(obs=mdata.obs[[DEMO_LABEL_KEY]].copy(), obsm={"X_poems": mdata.obsm["X_poems"]})
    sc.pp.neighbors(adata, use_rep="X_poems", random_state=0)
    sc.tl.umap(adata, random_state=0)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    sc.pl.umap(adata, color=DEMO_LABEL_KEY, ax=ax, show=False, title="POEMS embedding (UMAP) by PAM50 subtype")
    return fig


def _fig_gates(mdata, model):
    from . import pl

    ax = pl.gates(mdata, groupby=DEMO_LABEL_KEY, show=False)
    ax.set_title("Gating weights α per sample, by subtype (protein: 0 where missing)")
    return ax.figure


def _fig_loadings(mdata, model):
    from . import pl

    axes = pl.loadings(mdata, show=False)
    return (axes[0] if isinstance(axes, list) else axes).figure


# --------------------------------------------------------------------------------------------------------------
# entry point
# --------------------------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``poems-mu`` command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with _quiet_libraries():
            return {"fit": _run_fit, "demo": _run_demo}[args.command](args)
    except CLIError as err:
        if args.debug:
            raise
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, KeyError, OSError) as err:
        if args.debug:
            raise
        msg = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
