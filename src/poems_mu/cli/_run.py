"""What both commands do besides training: quiet logs, check and write outputs, time training, print once."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from poems_mu._constants import LATENT_KEY

from ._args import CLIError


@contextlib.contextmanager
def quiet_libraries():
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


def model_dir(output: Path) -> Path:
    return output.with_name(f"{output.stem}_model")


def check_writable(paths: Sequence[Path], overwrite: bool) -> None:
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise CLIError(f"{', '.join(existing)} already exist(s); pass --overwrite to replace")


def write_h5mu(mdata, path: Path) -> None:
    """Write atomically: a crash leaves any earlier file intact."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        mdata.write(str(tmp))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def several_devices(args) -> bool:
    """Whether ``--devices`` asks for more than one device (a list of ids, or a count above 1): training uses DDP."""
    return isinstance(args.devices, list) or (isinstance(args.devices, int) and args.devices > 1)


def train(model, args) -> float:
    kwargs = {"accelerator": args.accelerator, "devices": args.devices, "enable_progress_bar": not args.quiet}
    if args.max_epochs is not None:
        kwargs["max_epochs"] = args.max_epochs
    if several_devices(args):
        kwargs["strategy"] = "ddp"
    start = time.perf_counter()
    model.train(**kwargs)
    return time.perf_counter() - start


def is_global_zero(model) -> bool:
    """Whether this process writes the outputs: always, except in the non-zero ranks of a multi-device run."""
    trainer = getattr(model, "trainer", None)
    return bool(getattr(trainer, "is_global_zero", True))


def say(text: str) -> None:
    """Print, except in the extra processes that Lightning's DDP launcher starts (they re-run this command)."""
    if os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0":
        print(text, flush=True)


def evaluate(mdata, label_key: str, keys=(LATENT_KEY,)) -> dict:
    """Subtyping metrics of each embedding ``obsm[key]`` against the labels ``obs[label_key]``, also stored on the
    MuData (``uns["poems"]["subtyping"][key]``); ``{key: summary table}``.

    The output file holds this run's results, so an earlier summary under ``uns["poems"]["subtyping"]`` is replaced.
    """
    from poems_mu import tl

    if label_key not in mdata.obs:
        raise CLIError(f"--label-key {label_key!r} is not a column of the MuData's obs: {list(mdata.obs.columns)}")
    out = {}
    for key in keys:
        df = tl.evaluate_subtyping(mdata, label_key, use_rep=key, store=True, overwrite=True)
        out[key] = tl.summarize_subtyping(df)
    return out
