"""Arguments of the ``poems-mu`` command line: the parser, and the parsed options as POEMS's arguments.

:func:`setup_kwargs` and :func:`model_kwargs` turn the options of ``poems-mu fit`` into the keyword arguments of
:meth:`POEMS.setup_mudata <poems_mu.POEMS.setup_mudata>` and :class:`~poems_mu.POEMS`; a malformed option is a
:class:`CLIError` naming it. Whether a name or an ``obs`` column is valid is left to the package, whose errors name
the modality or column.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

PROG = "poems-mu"
DEMO_FILE = "poems_demo.h5mu"


class CLIError(Exception):
    """An error to show as ``poems-mu: error: <message>`` (exit status 2)."""


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


def modality_entries(entries: Sequence[str] | None, option: str, what: str) -> dict[str, str] | str | None:
    """``MOD=VALUE`` entries of ``option`` as a mapping; a single entry without ``=`` is one value for every
    modality. ``what`` names the value in the error (``layer``, ``likelihood``).
    """
    if not entries:
        return None
    if len(entries) == 1 and "=" not in entries[0]:
        return entries[0]
    out: dict[str, str] = {}
    for entry in entries:
        mod, sep, value = entry.partition("=")
        if not sep or not mod or not value:
            raise CLIError(
                f"{option} expects MODALITY={what.upper()} entries (or a single {what} name for all), got {entry!r}"
            )
        if mod in out:
            raise CLIError(f"{option} names modality {mod!r} twice")
        out[mod] = value
    return out


def setup_kwargs(args) -> dict:
    """The keyword arguments of ``POEMS.setup_mudata`` from the options of ``fit``."""
    return {
        "modalities": args.modalities,
        "layers": modality_entries(args.layers, "--layers", "layer"),
        "batch_key": args.batch_key,
        "categorical_covariate_keys": args.categorical_covariate or None,
        "continuous_covariate_keys": args.continuous_covariate or None,
        "size_factor_key": args.size_factor_key,
    }


def model_kwargs(args) -> dict:
    """The keyword arguments of ``POEMS(mdata, ...)`` given on the command line (the model's defaults otherwise)."""
    kwargs = {} if args.n_latent is None else {"n_latent": args.n_latent}
    likelihood = modality_entries(getattr(args, "likelihood", None), "--likelihood", "likelihood")
    if likelihood is not None:
        kwargs["likelihood"] = likelihood
    if getattr(args, "modality_dropout", None) is not None:
        kwargs["modality_dropout"] = args.modality_dropout
    return kwargs


def _add_training_args(p: argparse.ArgumentParser, max_epochs_help: str) -> None:
    p.add_argument(
        "--n-latent",
        type=_positive_int,
        default=None,
        help="most latent factors K (a cap: the factors the data do not need are pruned)",
    )
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


def _add_model_args(fit: argparse.ArgumentParser) -> None:
    """Likelihoods, covariates and library sizes of ``fit``."""
    fit.add_argument(
        "--likelihood",
        nargs="+",
        action="extend",
        metavar="MOD=LIKELIHOOD",
        help="likelihood of a modality: gaussian (default; continuous data), nb (raw counts) or bernoulli (0/1 "
        "data); a single name without '=' applies to all; may be repeated",
    )
    fit.add_argument(
        "--batch-key",
        metavar="KEY",
        default=None,
        help="obs column with each sample's batch (plate, centre, cohort): a categorical covariate of every "
        "encoder and decoder",
    )
    fit.add_argument(
        "--categorical-covariate",
        nargs="+",
        action="extend",
        metavar="KEY",
        help="more categorical obs columns (e.g. sex, site), one-hot encoded; may be repeated",
    )
    fit.add_argument(
        "--continuous-covariate",
        nargs="+",
        action="extend",
        metavar="KEY",
        help="numeric obs columns (e.g. age, purity), standardised; may be repeated",
    )
    fit.add_argument(
        "--modality-dropout",
        type=float,
        metavar="P",
        default=None,
        help="in training, hide each modality of a sample from the encoders with probability P (default 0; 0.25 "
        "is recommended with an nb modality whose values you will predict from the others)",
    )
    fit.add_argument(
        "--size-factor-key",
        metavar="KEY",
        default=None,
        help="obs column with each sample's library size for the nb modalities (default: its total counts)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``poems-mu`` argument parser."""
    from poems_mu import __version__

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
    _add_model_args(fit)
    fit.add_argument(
        "--runs",
        type=_positive_int,
        default=1,
        metavar="R",
        help="train R models with seeds SEED, SEED+1, ...; the first is saved and gives the results, and with R >= 2 "
        "obsm['X_poems_consensus'] holds the consensus of the R runs for clustering (pm.tl.consensus_embedding; "
        "consensuses of 3 or more runs agree more than single runs on the bundled cohorts' k-means clusters; the docs "
        "use 12) (default: 1)",
    )
    fit.add_argument(
        "--label-key", default=None, help="obs column with known groups: print subtyping metrics of the embedding"
    )
    _add_training_args(fit, "maximum number of epochs (default: the model's; early stopping may end sooner)")

    demo = sub.add_parser(
        "demo",
        help="train on the bundled breast_tcga data; write results, figures and subtyping metrics",
        description=f"Train POEMS on the bundled TCGA breast cancer data (mRNA, miRNA, protein; protein missing "
        f"for 70 of 220 samples), write {DEMO_FILE} and PNG figures to OUT_DIR and print subtyping metrics.",
    )
    demo.add_argument("--out-dir", default=".", help="folder for the outputs (default: current folder)")
    _add_training_args(demo, "maximum number of epochs (default: the model's; early stopping may end sooner)")
    return parser
