"""Command line: ``poems-mu fit`` trains POEMS on an ``.h5mu`` file; ``poems-mu demo`` runs it on bundled data.

Errors in the input (a missing file, an unknown modality, a bad layer, ...) are reported as one line,
``poems-mu: error: ...``, with exit status 2 and no stack trace; ``--debug`` shows the trace.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

PROG = "poems-mu"
#: |W| above this counts as a non-zero loading in the summary (as in the training log's W_density)
W_NONZERO = 0.01
DEMO_FILE = "poems_demo.h5mu"
DEMO_LABEL_KEY = "subtype"


class CLIError(Exception):
    """An error to show as ``poems-mu: error: <message>`` (exit status 2)."""


# --------------------------------------------------------------------------------------------------------------
# argument parsing
# --------------------------------------------------------------------------------------------------------------
def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _devices(text: str) -> int | list[int] | str:
    """``auto``, a number of devices (``2``) or a comma-separated list of device ids (``0,1``)."""
    if text == "auto":
        return text
    try:
        if "," in text:
            return [int(t) for t in text.split(",") if t.strip()]
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'auto', a number of devices or a comma-separated list of ids, got {text!r}"
        ) from None


def _layers(entries: Sequence[str] | None) -> dict[str, str] | str | None:
    """``mod=layer`` entries as a mapping; a single entry without ``=`` names one layer for every modality."""
    if not entries:
        return None
    if len(entries) == 1 and "=" not in entries[0]:
        return entries[0]
    out: dict[str, str] = {}
    for entry in entries:
        mod, sep, layer = entry.partition("=")
        if not sep or not mod or not layer:
            raise CLIError(f"--layers expects MODALITY=LAYER entries (or a single layer name for all), got {entry!r}")
        if mod in out:
            raise CLIError(f"--layers names modality {mod!r} twice")
        out[mod] = layer
    return out


def _add_training_args(p: argparse.ArgumentParser, max_epochs_help: str) -> None:
    p.add_argument("--n-latent", type=_positive_int, default=None, help="number of latent factors K")
    p.add_argument("--max-epochs", type=_positive_int, default=None, help=max_epochs_help)
    p.add_argument(
        "--accelerator", default="auto", help="Lightning accelerator: auto, cpu, gpu, mps, ... (default: auto)"
    )
    p.add_argument(
        "--devices",
        type=_devices,
        default="auto",
        help="number of devices (e.g. 2), a list of ids (0,1) or auto (default: auto); several devices train with DDP",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--overwrite", action="store_true", help="replace existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The ``poems-mu`` argument parser."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="POEMS: Product Of Experts for interpretable Multi-omics integration using Sparse decoding.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show full stack traces on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    fit = sub.add_parser(
        "fit",
        help="train POEMS on a MuData file and write the results",
        description="Read a MuData (.h5mu), train POEMS, store the results on it (obsm['X_poems'], gates, "
        "loadings, ...) and write it to OUTPUT; the model is saved to '<OUTPUT stem>_model/' next to OUTPUT.",
    )
    fit.add_argument("input", help="input MuData file (.h5mu)")
    fit.add_argument("-o", "--output", required=True, help="output MuData file (.h5mu)")
    fit.add_argument("--modalities", nargs="+", metavar="MOD", help="modalities to integrate (default: all)")
    fit.add_argument(
        "--layers",
        nargs="+",
        metavar="MOD=LAYER",
        help="layer holding each modality's data (default .X); a single name without '=' applies to all",
    )
    fit.add_argument(
        "--label-key", default=None, help="obs column with known groups: print subtyping metrics of the embedding"
    )
    _add_training_args(fit, "maximum number of epochs (default: the model's; early stopping may end sooner)")
    fit.set_defaults(func=_run_fit)

    demo = sub.add_parser(
        "demo",
        help="train on the bundled breast_tcga data; write results, figures and subtyping metrics",
        description=f"Train POEMS on the bundled TCGA breast cancer data (mRNA, miRNA, protein; protein missing "
        f"for 70 of 220 samples), write {DEMO_FILE} and PNG figures to OUT_DIR and print subtyping metrics.",
    )
    demo.add_argument("--out-dir", default=".", help="folder for the outputs (default: current folder)")
    _add_training_args(demo, "maximum number of epochs (default: the model's; early stopping may end sooner)")
    demo.set_defaults(func=_run_demo)
    return parser


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


def _model_kwargs(args) -> dict:
    return {} if args.n_latent is None else {"n_latent": args.n_latent}


def _summary(mdata, model, seconds: float, metrics=None, files: Sequence[Path] = (), title: str = "") -> str:
    """One screen: data, training, gates, loadings density, metrics and files written."""
    import numpy as np

    hist = model.history.get("elbo_train")
    epochs = 0 if hist is None else len(hist)
    max_epochs = model.trainer.max_epochs if getattr(model, "trainer", None) is not None else None
    lines = [
        f"== {title or 'POEMS'} ==",
        f"samples      {mdata.n_obs}",
        "modalities   (mean gate α and mean effective contribution over the samples that have the modality;",
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
        line = f"  {mod:<12} {n_feat:>7} features  {int(present.sum()):>6} samples  gate {g.mean():.3f}"
        line += f"  contribution {c.mean():.3f}"
        if sparsity is not None:
            r = sparsity.loc[mod]
            line += f"  W > {W_NONZERO:g}: {r['density']:.3f}, zeros {r['zeros']:.3f}, slab {r['slab']:.3f}"
        lines.append(line)
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
    layers = _layers(args.layers)
    try:
        mdata = mudata.read_h5mu(args.input)
    except (OSError, ValueError, KeyError) as err:
        raise CLIError(f"cannot read {args.input!r} as a MuData (.h5mu) file: {err}") from None
    scvi.settings.seed = args.seed
    POEMS.setup_mudata(mdata, modalities=args.modalities, layers=layers)
    model = POEMS(mdata, **_model_kwargs(args))
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
    model = POEMS(mdata, **_model_kwargs(args))
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
            return args.func(args)
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
