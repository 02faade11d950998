"""What the benchmark scripts share: threads, arguments, data, small protocols, tables and the result writer.

Import it before numpy and torch (``import _common as common``, which sorts first among the imports; a script in a
group folder first puts ``benchmarks/`` on ``sys.path`` in one line). Importing it sets one BLAS/OpenMP thread per
process unless ``OMP_NUM_THREADS`` is set, and torch's intra-op threads to the same number: the benchmark machines'
cores are shared, and timings are per thread.

* :func:`parser`: every script's command line, with ``--seeds``, ``--quick`` (the first seed, small sizes, few
  epochs: a check that the pipeline runs, not a result) and ``--out`` (the results folder; ``benchmarks/results``,
  or ``benchmarks/results/quick`` with ``--quick``, which git ignores);
* :func:`provenance`, :func:`write_results` and :func:`write_report`: every result file records the command line, the
  commit (and whether the tree had uncommitted changes), the date and the machine (CPU, threads, versions);
* :func:`planted`: the planted data sets of :mod:`poems_mu.datasets._synthetic` (their recovery scores,
  ``match_factors`` and ``grouped_auroc``, are imported from there);
* :func:`synthetic_mdata` (timing data) and :func:`sparse_decoder` (a decoder with the package's defaults);
* small protocols of the planted and tuning benchmarks (:func:`train_poems`, :func:`score_planted3`,
  :func:`knn_cv`, :func:`heldout_elbo`); the subtyping protocol of the POEMS paper is in ``_baselines.py``;
* :func:`table`: markdown tables of mean ± SD over seeds.

Nothing here imports ``poems_mu`` at import time, so ``tuning/v01_reference.py`` can put another checkout first.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", os.environ["OMP_NUM_THREADS"])
os.environ.setdefault("MKL_NUM_THREADS", os.environ["OMP_NUM_THREADS"])

import argparse
import json
import logging
import platform
import shlex
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.neighbors import KNeighborsClassifier

THREADS = int(os.environ["OMP_NUM_THREADS"])
torch.set_num_threads(THREADS)

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
RESULTS = BENCHMARKS / "results"
#: where ``--quick`` writes unless ``--out`` is given (ignored by git: smoke runs never replace a result)
QUICK_RESULTS = RESULTS / "quick"
#: shapes timed by the performance benchmarks: features per modality, samples
BRCA, BRCA_N = (1000, 1000, 503), 875  # MOGONET BRCA: mRNA, methylation, miRNA
KIRC, KIRC_N = (58_316, 22_928, 1_879), 289  # full-dimensional KIRC (the paper kept a quarter of the features)
SEED003, SEED003_N = (132_129, 6_980), 21  # seeds/003: transcriptome beside metabolome


# -- process and command line -------------------------------------------------------------------------------------
def quiet() -> None:
    """Silence Lightning's and scvi's progress chatter and their known warnings."""
    import scvi

    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "scvi", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    scvi.settings.verbosity = logging.ERROR
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
    warnings.filterwarnings("ignore", category=FutureWarning)


class _Parser(argparse.ArgumentParser):
    """Resolves ``--out`` (the quick folder for ``--quick``) and keeps the first seed only under ``--quick``."""

    def parse_args(self, args=None, namespace=None):
        ns = super().parse_args(args, namespace)
        quick = getattr(ns, "quick", False)
        if hasattr(ns, "out"):
            ns.out = Path(ns.out) if ns.out is not None else (QUICK_RESULTS if quick else RESULTS)
        if quick and getattr(ns, "seeds", None):
            ns.seeds = ns.seeds[:1]
        return ns


def arguments(seeds: Sequence[int] | None = (0,), quick: bool = True, workers: bool = False) -> argparse.ArgumentParser:
    """The standard arguments as an argparse parent: ``--seeds`` (unless None), ``--quick``, ``--out`` and, with
    ``workers``, ``--workers`` (the processes of :func:`map_jobs`)."""
    parent = argparse.ArgumentParser(add_help=False)
    if seeds is not None:
        parent.add_argument("--seeds", type=int, nargs="+", default=list(seeds), help="seeds (default: %(default)s)")
    if quick:
        parent.add_argument(
            "--quick", action="store_true", help="first seed, small sizes, few epochs: a pipeline check, not a result"
        )
    parent.add_argument(
        "--out", type=Path, default=None, help="results folder (default: benchmarks/results; with --quick .../quick)"
    )
    if workers:
        parent.add_argument("--workers", type=int, default=1, help="fits run at once, each in its own process")
    return parent


def parser(
    doc: str, seeds: Sequence[int] | None = (0,), quick: bool = True, workers: bool = False
) -> argparse.ArgumentParser:
    """A script's parser: its docstring as the description and the :func:`arguments`."""
    return _Parser(
        description=doc,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[arguments(seeds, quick, workers)],
    )


# -- provenance and results ---------------------------------------------------------------------------------------
def map_jobs(fn: Callable, jobs: Sequence, workers: int = 1) -> list:
    """``fn`` over ``jobs`` in job order: in ``workers`` processes when more than one, else here."""
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(fn, jobs))
    return [fn(job) for job in jobs]


def _jsonable(x):
    """numpy scalars and arrays as Python values (for ``json.dumps``)."""
    return x.item() if hasattr(x, "item") else x.tolist() if hasattr(x, "tolist") else str(x)


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def machine() -> dict:
    """The CPU, the thread count, the platform and the versions that matter for a result."""
    import scvi

    import poems_mu

    cpu = platform.processor() or platform.machine()
    try:
        name = next(x for x in Path("/proc/cpuinfo").read_text().splitlines() if x.startswith("model name"))
        cpu = name.split(":", 1)[1].strip()
    except (OSError, StopIteration):
        pass
    out = {"cpu": cpu, "cpu_count": os.cpu_count(), "threads": torch.get_num_threads()}
    out |= {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__}
    out |= {"scvi-tools": scvi.__version__, "poems_mu": getattr(poems_mu, "__version__", "?")}
    if torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(0)
    return out


def provenance(script: str | os.PathLike, argv: Sequence[str] | None = None) -> dict:
    """Where a result comes from: the command line (``argv``: the script's arguments, default ``sys.argv``), the
    commit and whether the tree had uncommitted changes, the start date and the machine."""
    path = Path(script).resolve()
    rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    args = list(sys.argv[1:] if argv is None else argv)
    status = _git("--no-optional-locks", "status", "--porcelain", "--untracked-files=no")
    return {
        "command": f"OMP_NUM_THREADS={THREADS} " + shlex.join(["python", str(rel), *map(str, args)]),
        "commit": _git("rev-parse", "HEAD"),
        "dirty": None if status is None else bool(status),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }


def describe(prov: dict) -> str:
    """One line of a provenance record, for markdown."""
    m = prov["machine"]
    commit = (prov["commit"] or "?")[:10] + (" with uncommitted changes" if prov["dirty"] else "")
    return (
        f"`{prov['command']}` at commit {commit}, {prov['started']}; {m['cpu']} ({m['cpu_count']} cores, "
        f"{m['threads']} torch thread(s)), torch {m['torch']}, scvi-tools {m['scvi-tools']}, poems_mu {m['poems_mu']}"
    )


def kept_parts(old: dict, old_methods: Sequence[str], rerun: Collection[str]) -> list[dict]:
    """Where the rows of a results file come from when it re-runs only ``rerun`` and keeps the other methods' rows
    from ``old`` (an earlier file of the same script, whose rows cover ``old_methods``).

    One part per earlier run, ``{"methods", "provenance", "settings"}``: rows that ``old`` had itself kept keep the
    run they came from (parts chain from file to file); the rest are ``old``'s own. Methods re-run now leave their
    part; a part left without methods is dropped."""
    earlier = old.get("kept", [])
    from_earlier = {m for part in earlier for m in part["methods"]}
    # files written before the provenance record keep their command and machine at the top level
    provenance = old.get("provenance") or {"command": old.get("command"), "machine": old.get("machine")}
    own = {
        "methods": [m for m in old_methods if m not in from_earlier],
        "provenance": provenance,
        "settings": old.get("settings"),
    }
    parts = []
    for part in [*earlier, own]:
        still = [m for m in part["methods"] if m not in rerun]
        if still:
            parts.append({**part, "methods": still})
    return parts


def kept_lines(kept: list[dict] | None) -> list[str]:
    """Markdown lines naming the earlier runs whose rows a results file kept (:func:`kept_parts`)."""
    lines = []
    for part in kept or []:
        lines += ["", f"Kept from an earlier run ({'; '.join(part['methods'])}): {describe(part['provenance'])}."]
    return lines


def write_results(path: str | os.PathLike, payload: dict, *, provenance: dict, markdown: str | None = None) -> None:
    """Write a result with its provenance.

    ``path`` ending in ``.json``: ``payload`` with the ``provenance`` record first; ``.jsonl``: ``payload`` appended
    as one line, with its provenance. ``markdown`` (the tables) goes to ``path`` with the suffix ``.md``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prov = {**provenance, "written": datetime.now(UTC).isoformat(timespec="seconds")}
    if path.suffix == ".jsonl":
        with path.open("a") as fh:
            fh.write(json.dumps({**payload, "provenance": prov}, default=_jsonable) + "\n")
    else:
        path.write_text(json.dumps({"provenance": prov, **payload}, indent=1, default=_jsonable) + "\n")
    if markdown is not None:
        write_report(path.with_suffix(".md"), markdown, provenance=prov, echo=False)


def write_report(path: str | os.PathLike, text: str, *, provenance: dict, echo: bool = True) -> None:
    """Write markdown ending with a line that says what produced it (a report made from earlier results: the
    results' own provenance is in their files); print it unless ``echo`` is False."""
    prov = {"written": datetime.now(UTC).isoformat(timespec="seconds"), **provenance}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text.rstrip("\n") + f"\n\n_Written by {describe(prov)}._\n")
    if echo:
        print(text)


# -- data ---------------------------------------------------------------------------------------------------------
def planted(kind: str, seed: int, **kwargs):
    """``poems_mu.datasets._synthetic.make_<kind>(seed=seed, **kwargs)``: ``kind`` is one of planted, planted3,
    linked, structured, counts, binary, batched (what each returns: the generator's docstring)."""
    from poems_mu.datasets import _synthetic

    return getattr(_synthetic, f"make_{kind}")(seed=seed, **kwargs)


def synthetic_mdata(dims: Sequence[int], n: int, seed: int = 0):
    """MuData with ``len(dims)`` modalities of ``n`` samples: a shared rank-5 signal plus noise, float32 (for
    timings, which do not depend on the values)."""
    import anndata as ad
    import mudata as md

    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 5), dtype=np.float32)
    mods = {}
    for v, d in enumerate(dims):
        x = rng.standard_normal((n, d), dtype=np.float32)
        x += z @ rng.standard_normal((5, d), dtype=np.float32)
        adata = ad.AnnData(x)
        adata.obs_names = [f"s{i}" for i in range(n)]
        adata.var_names = [f"m{v}_{j}" for j in range(d)]
        mods[f"m{v}"] = adata
    return md.MuData(mods)


def sparse_decoder(n_output: int, n_latent: int | None = None, n_hidden: int | None = None, **overrides):
    """A :class:`poems_mu.nn.SparseDecoder` with the package's defaults (``poems_mu.module.DEFAULTS``) for every
    setting not given."""
    from poems_mu.module import DEFAULTS
    from poems_mu.nn import SparseDecoder

    settings = {
        "chunk_size": DEFAULTS.chunk_size,
        "max_chunk_bytes": DEFAULTS.max_chunk_bytes,
        "w_init_scale": DEFAULTS.w_init_scale,
        "links": DEFAULTS.decoder_links,
        "links_dense_every": DEFAULTS.links_dense_every,
    }
    n_latent = DEFAULTS.n_latent if n_latent is None else n_latent
    n_hidden = DEFAULTS.n_hidden_decoder if n_hidden is None else n_hidden
    return SparseDecoder(n_output, n_latent, n_hidden, **(settings | overrides))


# -- planted benchmarks -------------------------------------------------------------------------------------------
def train_poems(mdata, seed: int, model_kwargs=None, setup_kwargs=None, train_kwargs=None, prepare=None):
    """POEMS at the package defaults (plus overrides) trained on all of ``mdata`` with its default validation
    split; ``prepare(model)`` runs before training. Returns the model and the seconds of set-up + training."""
    import scvi

    import poems_mu as pm

    scvi.settings.seed = seed
    start = time.perf_counter()
    pm.POEMS.setup_mudata(mdata, **(setup_kwargs or {}))
    model = pm.POEMS(mdata, **(model_kwargs or {}))
    if prepare is not None:
        prepare(model)
    model.train(enable_progress_bar=False, **(train_kwargs or {}))
    return model, time.perf_counter() - start


def score_planted3(seed: int, model_kwargs=None, train_kwargs=None, prepare=None) -> dict:
    """POEMS at the defaults (plus overrides) on ``make_planted3(seed=seed)`` (4 true factors, K = 32 by default,
    near-noise modality ``c``), scored: the grouped AUROC of |W| over ``a`` and ``b`` (``c``'s links are too weak to
    be recoverable), ``c``'s mean effective contribution and gate over the lower of ``a`` and ``b``'s, W's density
    (|W| > 0.01) and exact zeros, epochs and wall seconds (set-up + training)."""
    from poems_mu.datasets._synthetic import grouped_auroc

    mdata, z, supports = planted("planted3", seed)
    model, wall = train_poems(mdata, seed, model_kwargs, train_kwargs=train_kwargs, prepare=prepare)
    loadings = {m: model.get_loadings(m).to_numpy() for m in model.modalities}
    auroc, per_factor = grouped_auroc(z, model.get_latent_representation(), loadings, supports, ("a", "b"))
    contrib = model.get_contributions().mean()
    gates = model.get_gating_weights().mean()
    w_all = np.concatenate([w.ravel() for w in loadings.values()])
    return {
        "grouped_auroc": auroc,
        "auroc_per_factor": per_factor,
        "contribution": contrib.to_dict(),
        "noise_contribution_ratio": float(contrib["c"] / min(contrib["a"], contrib["b"])),
        "noise_gate_ratio": float(gates["c"] / min(gates["a"], gates["b"])),
        "density": float((np.abs(w_all) > 0.01).mean()),
        "zeros": float((w_all == 0).mean()),
        "epochs": len(model.history["elbo_train"]),
        "wall_s": wall,
    }


def fit_info(model, wall: float) -> dict:
    """Epochs run, the epoch whose state was restored (best held-out criterion) and the wall time."""
    summary = model.training_summary_
    best = summary["runs"][summary["chosen_restart"]]["best_epoch"]
    return {"epochs": len(model.history["elbo_train"]), "best_epoch": best, "wall_s": wall}


def knn_cv(latent: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean accuracy of a k-NN classifier over 5 stratified folds (shuffled, ``random_state=0``)."""
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    return float(cross_val_score(KNeighborsClassifier(n_neighbors=k), latent, labels, cv=folds).mean())


def heldout_elbo(model, mdata, rows, n_draws: int = 20) -> float:
    """Monte Carlo held-out ELBO per sample (reconstruction + β·KL, nats) of ``rows``: ``n_draws`` single posterior
    draws per minibatch (the 0.1 decoder takes one sample at a time)."""
    module = model.module.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for tensors in model._make_data_loader(adata=mdata, indices=rows, batch_size=256):
            draws = []
            for _ in range(n_draws):
                _, _, lo = module(tensors, loss_kwargs={"n_obs": len(rows)})
                draws.append(float(lo.extra_metrics["elbo_per_sample"]))
            n = len(next(iter(lo.reconstruction_loss.values())))
            total += float(np.mean(draws)) * n
            count += n
    return total / count


# -- tables -------------------------------------------------------------------------------------------------------
def mean_sd(values: pd.Series, fmt: str = ".3f", sd_fmt: str | None = None) -> str:
    """ "mean ± SD" of ``values`` (the mean alone for one value, "–" for none)."""
    values = values.dropna()
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:{fmt}}"
    return f"{values.mean():{fmt}} ± {values.std():{sd_fmt or fmt}}"


def table(df: pd.DataFrame, keys: list[str], cols: list[str], formats=None, fmt: str = ".3f", count: bool = False):
    """Markdown lines: one row per group of ``df`` by ``keys`` (in order of appearance), a "mean ± SD" cell per
    column of ``cols`` and, with ``count``, the group's number of rows (``n``); ``formats`` per column
    (``"epochs"``/``"best_epoch"`` whole, ``"wall_s"`` to 0.1 s by default, ``fmt`` otherwise; a ``(mean, sd)``
    pair of formats is accepted)."""
    formats = {"epochs": ".0f", "best_epoch": ".0f", "wall_s": ".1f", **(formats or {})}
    header = [*keys, *cols, *(["n"] if count else [])]
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for key, group in df.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        cells = []
        for c in cols:
            f = formats.get(c, fmt)
            cells.append(mean_sd(group[c], *(f if isinstance(f, tuple) else (f,))) if c in group else "–")
        lines.append("| " + " | ".join([*map(str, key), *cells, *([str(len(group))] if count else [])]) + " |")
    return lines
