"""Scale benchmark: seconds per epoch and peak memory of POEMS against the number of features and samples, side by
side with a re-statement of the paper's vectorised decoder (``paper_decoder.py``); full-dimensional KIRC and
seed-003 shapes; the decoder alone before/after; two-process DDP against one process.

Every training configuration runs in a fresh subprocess, so its peak memory is its own: peak RSS on CPU (the
kernel's high-water mark ``VmHWM``, reset just before ``model.train`` so it is the training's peak, data and model
included), ``torch.cuda.max_memory_allocated`` on GPU. Both decoders sit in the same POEMS model (encoders, gating,
loss, loader and trainer are shared; only ``module.decoders`` differs), at K = 32, H = 100, batch 512. Synthetic
data (rank-5 signal + noise); timings do not depend on the values. Ratios come from one run: the configurations of
both decoders are interleaved.

    OMP_NUM_THREADS=1 python benchmarks/scale.py decoder    # the decoder alone (forward + backward), old vs new
    OMP_NUM_THREADS=1 python benchmarks/scale.py chunks     # chunk-size sweep behind the default chunk budget
    OMP_NUM_THREADS=1 python benchmarks/scale.py brca       # the BRCA-size pair, repeated (the headline ratio)
    OMP_NUM_THREADS=1 python benchmarks/scale.py features   # s/epoch and peak RSS vs features (both decoders)
    OMP_NUM_THREADS=1 python benchmarks/scale.py samples    # ... vs samples
    OMP_NUM_THREADS=1 python benchmarks/scale.py shapes     # KIRC and seed-003 shapes, package defaults
    OMP_NUM_THREADS=1 python benchmarks/scale.py ddp        # breast_tcga: 2-process DDP vs one process
    python benchmarks/scale.py report                       # scale.md + scale.png from the JSON files

Options: ``--device cuda`` (GPU timings, max allocated memory), ``--quick`` (a smoke test, not a result),
``--paper-mem-limit-gb`` (address-space cap of each paper-decoder run, default 8: the machine is shared; the
largest feature count within 24 GB is extrapolated from the runs that fit). Results go to benchmarks/results/scale*.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
K, H, BATCH = 32, 100, 512
BRCA, BRCA_N = (1000, 1000, 503), 875  # MOGONET BRCA: mRNA, methylation, miRNA; samples
KIRC, KIRC_N = (58_316, 22_928, 1_879), 289  # full-dimensional KIRC (the paper kept a quarter of the features)
SEED003, SEED003_N = (132_129, 6_980), 21  # seeds/003: transcriptome beside metabolome
GIB = 2**30
MEMORY_TARGET = 24 * GIB


# ----------------------------------------------------------------------------------------------------------------
# worker side (one configuration per fresh process)
# ----------------------------------------------------------------------------------------------------------------
def _status_mb(field: str) -> float:
    match = re.search(rf"^{field}:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) / 1024 if match else float("nan")


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def split_like_brca(total: int) -> list[int]:
    """``total`` features split over three modalities in the BRCA proportions 1000 : 1000 : 503."""
    dims = [round(total * d / sum(BRCA)) for d in BRCA[:2]]
    return [*dims, total - sum(dims)]


def synthetic_mdata(dims, n: int, seed: int = 0):
    """MuData with ``len(dims)`` modalities of ``n`` samples: a shared rank-5 signal plus noise, float32."""
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


def _epoch_timer():
    import lightning.pytorch as pl

    class EpochTimer(pl.Callback):
        def __init__(self):
            self.starts: list[float] = []
            self.end = None

        def on_train_epoch_start(self, trainer, pl_module):
            self.starts.append(time.perf_counter())

        def on_train_end(self, trainer, pl_module):
            self.end = time.perf_counter()

        def durations(self) -> list[float]:
            return list(np.diff([*self.starts, self.end]))

    return EpochTimer()


def _is_oom(err: BaseException) -> bool:
    msg = str(err).lower()
    return isinstance(err, MemoryError) or any(s in msg for s in ("can't allocate", "out of memory", "not enough"))


def run_training_config(cfg: dict) -> dict:
    """Train one configuration and measure it (runs inside the worker process)."""
    if cfg.get("mem_limit_gb"):
        limit = int(cfg["mem_limit_gb"] * GIB)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("scvi").setLevel(logging.ERROR)
    import scvi
    import torch

    import poems_mu as pm

    sys.path.insert(0, str(HERE))
    from paper_decoder import use_paper_decoder

    torch.set_num_threads(cfg.get("threads", 1))
    out = {"status": "ok"}
    try:
        mdata = synthetic_mdata(cfg["dims"], cfg["n"])
        out["data_mb"] = cfg["n"] * sum(cfg["dims"]) * 4 / 2**20
        pm.POEMS.setup_mudata(mdata)
        scvi.settings.seed = 0
        model = pm.POEMS(mdata, n_latent=cfg.get("n_latent", K), n_hidden_decoder=cfg.get("n_hidden", H))
        if cfg["impl"] == "paper":
            use_paper_decoder(model, n_hidden=cfg.get("n_hidden", H), dropout=cfg.get("paper_dropout", 0.2))
        out["n_params"] = sum(p.numel() for p in model.module.parameters())
        cuda = cfg.get("device") == "cuda"
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        out["rss_before_train_mb"] = _status_mb("VmRSS")
        out["peak_reset"] = _reset_peak_rss()
        timer = _epoch_timer()
        start = time.perf_counter()
        model.train(
            max_epochs=cfg["epochs"],
            batch_size=cfg["batch"],
            early_stopping=False,
            accelerator="gpu" if cuda else "cpu",
            devices=1,
            callbacks=[timer],
            enable_progress_bar=False,
            enable_model_summary=False,
        )
        out["train_s"] = time.perf_counter() - start
        epochs = timer.durations()
        out["epoch_s"] = epochs
        # the first epoch includes one-off costs (allocator warm-up, Lightning setup): time the others
        out["s_per_epoch"] = float(np.mean(epochs[1:] if len(epochs) > 1 else epochs))
        out["peak_rss_mb"] = _status_mb("VmHWM")
        out["ru_maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        if cuda:
            out["gpu_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    except Exception as err:  # noqa: BLE001 - report any failure of the configuration, OOM in particular
        out["status"] = "oom" if _is_oom(err) else "error"
        out["error"] = f"{type(err).__name__}: {str(err)[:300]}"
        out["peak_rss_mb"] = _status_mb("VmHWM")
    return out


def spawn(cfg: dict, timeout: float = 3600) -> dict:
    """Run one configuration in a fresh Python process; a crash (e.g. killed for memory) is reported, not raised."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "_worker", json.dumps(cfg)]
    env = {**os.environ, "OMP_NUM_THREADS": str(cfg.get("threads", 1)), "PYTHONWARNINGS": "ignore"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**cfg, "status": "timeout"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**cfg, **json.loads(line[len("RESULT ") :])}
    return {**cfg, "status": f"crashed (exit code {proc.returncode})", "error": proc.stderr[-500:]}


# ----------------------------------------------------------------------------------------------------------------
# sweeps
# ----------------------------------------------------------------------------------------------------------------
def _log(res: dict) -> None:
    keys = ("impl", "dims", "n", "batch", "status", "s_per_epoch", "peak_rss_mb", "gpu_max_allocated_mb", "error")
    print(json.dumps({k: res[k] for k in keys if k in res}), flush=True)


def _base(args, impl: str, dims, n: int, epochs: int) -> dict:
    cfg = {"impl": impl, "dims": list(dims), "n": n, "batch": BATCH, "n_hidden": H, "epochs": epochs}
    cfg["device"] = args.device
    if impl == "paper" and args.device == "cpu":
        cfg["mem_limit_gb"] = args.paper_mem_limit_gb
    return cfg


def sweep_features(args) -> list[dict]:
    totals = [1_000, 2_503, 10_000] if args.quick else [1_000, 2_503, 5_000, 10_000, 35_000, 70_000, 140_000]
    paper_max = 2_503 if args.quick else args.paper_max_features
    n = 100 if args.quick else BRCA_N
    out = []
    for total in totals:
        dims = BRCA if total == sum(BRCA) else split_like_brca(total)
        impls = ["paper", "poems"] if total <= paper_max else ["poems"]
        for impl in impls:
            epochs = 1 if args.quick else (2 if total > 10_000 else 3)
            res = spawn(_base(args, impl, dims, n, epochs))
            _log(res)
            out.append(res)
    return out


def sweep_samples(args) -> list[dict]:
    ns = [50, 200] if args.quick else [219, BRCA_N, 3_500]
    out = []
    for n in ns:
        for impl in ("paper", "poems"):
            res = spawn(_base(args, impl, BRCA, n, 1 if args.quick else 3))
            _log(res)
            out.append(res)
    return out


def repeat_brca(args) -> list[dict]:
    """The BRCA-size pair (1000 + 1000 + 503 features, 875 samples), paper and POEMS alternated, several times."""
    n = 100 if args.quick else BRCA_N
    out = []
    for rep in range(1 if args.quick else 3):
        for batch in (128, BATCH):
            for impl in ("paper", "poems"):
                cfg = {**_base(args, impl, BRCA, n, 1 if args.quick else 3), "batch": batch, "rep": rep}
                res = spawn(cfg)
                _log(res)
                out.append(res)
    return out


def sweep_shapes(args) -> list[dict]:
    """Full-dimensional shapes with the package defaults (H = 64, batch 128)."""
    out = []
    shapes = [("seed-003", SEED003, SEED003_N), ("KIRC", KIRC, KIRC_N)]
    for name, dims, n in shapes:
        cfg = {"impl": "poems", "dims": list(dims), "n": n, "batch": 128, "n_hidden": 64, "device": args.device}
        cfg.update({"epochs": 1 if args.quick else 3, "shape": name})
        res = spawn(cfg)
        _log(res)
        out.append(res)
    return out


# ----------------------------------------------------------------------------------------------------------------
# the decoder alone: forward + backward, old and new implementations
# ----------------------------------------------------------------------------------------------------------------
def _decoder_variants(n_output: int, batch: int):
    import torch
    from torch.utils.checkpoint import checkpoint

    from poems_mu.nn import SparseDecoder
    from poems_mu.nn._sparse_decoder import _decode_chunk, _unit_rows

    sys.path.insert(0, str(HERE))
    from paper_decoder import PaperSparseDecoder

    ours = SparseDecoder(n_output, K, H)

    def checkpointed(z, chunk):  # the previous implementation: torch.utils.checkpoint around each chunk
        a, c = _unit_rows(ours.A), _unit_rows(ours.c)
        outs = [
            checkpoint(_decode_chunk, z, ours.W[s : s + chunk], a, ours.d, c[s : s + chunk], use_reentrant=False)
            for s in range(0, n_output, chunk)
        ]
        return torch.cat(outs, dim=1) + ours.b

    old_chunk = max(1, min(n_output, 8 * 2**20 // (4 * (2 * batch * H + K * H))))  # its 8 MiB budget formula
    paper = PaperSparseDecoder(n_output, K, H, dropout=0.2)
    paper_nodrop = PaperSparseDecoder(n_output, K, H, dropout=0.0)
    # name -> (features per chunk or None, forward function)
    return {
        "paper (vectorised, dropout 0.2)": (None, paper),
        "paper (vectorised, no dropout)": (None, paper_nodrop),
        "one pass, plain autograd": (None, ours.autograd_reference),
        "chunks + torch.utils.checkpoint (before)": (old_chunk, lambda z: checkpointed(z, old_chunk)),
        "chunks + custom backward (now)": (ours.resolve_chunk_size(batch), ours),
    }


def bench_decoder(args) -> list[dict]:
    import random

    import torch

    torch.set_num_threads(1)
    n_output = 500 if args.quick else sum(BRCA)
    reps = 2 if args.quick else 5
    rows = []
    for batch in (128, BATCH):
        variants = _decoder_variants(n_output, batch)
        z = torch.randn(batch, K, requires_grad=True)
        best = {name: float("inf") for name in variants}
        for _ in range(reps):  # interleaved, in random order; the minimum is the least disturbed run
            for name in random.sample(list(variants), len(variants)):
                fn = variants[name][1]
                start = time.perf_counter()
                fn(z).square().sum().backward()
                best[name] = min(best[name], time.perf_counter() - start)
        for name, sec in best.items():
            chunk = variants[name][0]
            rows.append({"features": n_output, "batch": batch, "variant": name, "chunk": chunk, "ms": 1e3 * sec})
            print(json.dumps(rows[-1]), flush=True)
    return rows


def sweep_chunks(args) -> list[dict]:
    import random

    import torch

    from poems_mu.nn import SparseDecoder

    torch.set_num_threads(1)
    chunks = [2, 4, 8, 16, 32, 64, 128, 256]
    rows, best = [], {}
    configs = [(b, c) for b in (32, 128, BATCH) for c in chunks]
    for _ in range(2 if args.quick else 4):
        for batch, chunk in random.sample(configs, len(configs)):
            dec = SparseDecoder(1_000, K, H, chunk_size=chunk)
            z = torch.randn(batch, K, requires_grad=True)
            start = time.perf_counter()
            dec(z).square().sum().backward()
            sec = time.perf_counter() - start
            best[(batch, chunk)] = min(best.get((batch, chunk), float("inf")), sec)
    for (batch, chunk), sec in sorted(best.items()):
        mib = chunk * 4 * (3 * batch * H + 2 * K * H) / 2**20
        rows.append(
            {"batch": batch, "chunk": chunk, "chunk_mib": mib, "us_per_sample_per_1k_features": 1e6 * sec / batch}
        )
    return rows


# ----------------------------------------------------------------------------------------------------------------
# DDP: two processes against one, on breast_tcga
# ----------------------------------------------------------------------------------------------------------------
def ddp_train_worker(strategy: str, devices: int, batch: int, seed: int, epochs: int, out_path: str) -> None:
    """Train on breast_tcga (re-run by Lightning in the second DDP process); rank 0 saves the latent."""
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    import scvi
    import torch

    import poems_mu as pm

    torch.set_num_threads(1)
    mdata = pm.datasets.breast_tcga()
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata)
    start = time.perf_counter()
    kwargs = {"strategy": strategy} if devices > 1 else {}
    model.train(
        max_epochs=epochs,
        batch_size=batch,
        early_stopping=False,  # scvi turns early stopping off under DDP; off for the single process too
        accelerator="cpu",
        devices=devices,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=str(Path(out_path).parent),
        **kwargs,
    )
    wall = time.perf_counter() - start
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        latent = model.get_latent_representation()
        np.savez(out_path, latent=latent, labels=mdata.obs["subtype"].to_numpy().astype(str), wall=wall)


def bench_ddp(args) -> list[dict]:
    import tempfile

    import poems_mu as pm

    seeds = [0] if args.quick else [0, 1, 2]
    epochs = 20 if args.quick else 200
    setups = [("1 process, batch 128", "auto", 1, 128), ("2 processes (ddp, gloo), batch 2 x 64", "ddp", 2, 64)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for name, strategy, devices, batch in setups:
                path = os.path.join(tmp, f"{strategy}_{seed}.npz")
                cmd = [sys.executable, str(Path(__file__).resolve()), "_ddp_train", strategy, str(devices)]
                cmd += [str(batch), str(seed), str(epochs), path]
                proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
                if proc.returncode != 0:
                    rows.append({"setup": name, "seed": seed, "status": "failed", "error": proc.stderr[-800:]})
                    print(rows[-1], flush=True)
                    continue
                saved = np.load(path)
                df = pm.tl.evaluate_subtyping(saved["latent"], labels=saved["labels"], store=False)
                row = {"setup": name, "seed": seed, "epochs": epochs, "wall_s": float(saved["wall"])}
                row.update(df.groupby("metric")["value"].mean().to_dict())
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


# ----------------------------------------------------------------------------------------------------------------
# report
# ----------------------------------------------------------------------------------------------------------------
def _load(name: str):
    path = RESULTS / f"scale_{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _fmt(x, nd=1):
    return "–" if x is None or (isinstance(x, float) and not np.isfinite(x)) else f"{x:.{nd}f}"


def _fit_limit(rows: list[dict], impl: str, n: int):
    """Largest feature count within 24 GiB from a straight-line fit of peak RSS on features (ok runs at ``n``)."""
    pts = [
        (sum(r["dims"]), r["peak_rss_mb"]) for r in rows if r["impl"] == impl and r["n"] == n and r["status"] == "ok"
    ]
    if len(pts) < 2:
        return None
    pts = sorted(pts)[-3:]  # the largest runs: the per-feature slope, not start-up costs, dominates there
    slope, intercept = np.polyfit([p[0] for p in pts], [p[1] for p in pts], 1)
    return {
        "mb_per_1k_features": slope * 1e3,
        "intercept_mb": intercept,
        "max_features_24gb": (MEMORY_TARGET / 2**20 - intercept) / slope,
        "largest_run": max(p[0] for p in pts),
    }


def _training_table(rows: list[dict], key: str, label: str) -> list[str]:
    lines = [
        f"| {label} | POEMS s/epoch | paper s/epoch | speed-up | POEMS peak RSS (MB) | paper peak RSS (MB) | "
        "data (MB) |",
        "|---|---|---|---|---|---|---|",
    ]
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[key] if key == "n" else sum(r["dims"]), {})[r["impl"]] = r
    for x, g in sorted(groups.items()):
        ours, paper = g.get("poems", {}), g.get("paper")

        def cell(r, field):
            if r is None:
                return "not run"
            if r.get("status") != "ok":
                return r.get("status", "?")
            return _fmt(r.get(field), 2 if field == "s_per_epoch" else 0)

        ratio = "–"
        if paper and paper.get("status") == "ok" and ours.get("status") == "ok":
            ratio = f"{paper['s_per_epoch'] / ours['s_per_epoch']:.1f}x"
        dims = "+".join(str(d) for d in (ours or paper)["dims"])
        lines.append(
            f"| {x:,} ({dims}) | {cell(ours, 's_per_epoch')} | {cell(paper, 's_per_epoch')} | {ratio} | "
            f"{cell(ours, 'peak_rss_mb')} | {cell(paper, 'peak_rss_mb')} | {_fmt(ours.get('data_mb'), 0)} |"
        )
    return lines


def _run_note(meta: dict, name: str) -> list[str]:
    run = meta.get("runs", {}).get(name)
    if not run:
        return []
    load = run["load_average_1_5_15min"]
    return [
        "",
        f"_Run finished {run['finished']}; load average at the end {load[0]} / {load[1]} / {load[2]} "
        f"(1 / 5 / 15 min) on {os.cpu_count()} cores._",
    ]


def report(args) -> None:
    meta = _load("meta") or {}
    features, samples, shapes, brca = _load("features"), _load("samples"), _load("shapes"), _load("brca")
    decoder, chunks, ddp = _load("decoder"), _load("chunks"), _load("ddp")
    md = ["# Scale benchmark", ""]
    md.append(
        f"Machine: {meta.get('machine', '?')}. One torch thread per process (`OMP_NUM_THREADS=1`); the machine was "
        "shared with other jobs, so absolute timings are noisy and differ between sections run at different "
        "times (see the load note under each) — compare within a table: both decoders were run interleaved in one "
        "invocation. K = 32, H = 100, batch 512 unless stated. Peak RSS: the kernel's "
        "high-water mark over `model.train` (data, model, optimizer state and activations), each configuration "
        "in a fresh process. `python benchmarks/scale.py <section>` reproduces each table."
    )
    if decoder:
        md += ["", "## The decoder alone (forward + backward of one minibatch, best of 5, ms)", ""]
        md += ["| variant | batch 128 | batch 512 |", "|---|---|---|"]
        names = list(dict.fromkeys(r["variant"] for r in decoder))
        by = {(r["variant"], r["batch"]): r for r in decoder}

        def cell(name, batch):
            r = by.get((name, batch))
            if r is None:
                return "–"
            return f"{r['ms']:.0f}" + (f" (chunks of {r['chunk']})" if r.get("chunk") else "")

        for name in names:
            md.append(f"| {name} | {cell(name, 128)} | {cell(name, 512)} |")
        md.append("")
        md.append(
            f"{decoder[0]['features']:,} features at K = 32, H = 100; 'paper' is `benchmarks/paper_decoder.py`, "
            "'before' the previous implementation of this package's decoder (its 8 MiB chunk formula)."
        )
        md += _run_note(meta, "decoder")
    if brca:
        md += ["", "## BRCA size: 1000 + 1000 + 503 features, 875 samples (pairs run back to back, repeated)", ""]
        md += [
            "| batch | repeat | POEMS s/epoch | paper s/epoch | speed-up | POEMS peak RSS (MB) | paper peak RSS (MB) |",
            "|---|---|---|---|---|---|---|",
        ]
        for batch in sorted({r["batch"] for r in brca}):
            ratios = []
            for rep in sorted({r["rep"] for r in brca}):
                pair = {r["impl"]: r for r in brca if r["batch"] == batch and r["rep"] == rep}
                ours, paper = pair.get("poems", {}), pair.get("paper", {})
                if ours.get("status") == "ok" and paper.get("status") == "ok":
                    ratios.append(paper["s_per_epoch"] / ours["s_per_epoch"])
                    md.append(
                        f"| {batch} | {rep} | {ours['s_per_epoch']:.2f} | {paper['s_per_epoch']:.2f} | "
                        f"{ratios[-1]:.1f}x | {ours['peak_rss_mb']:.0f} | {paper['peak_rss_mb']:.0f} |"
                    )
            if ratios:
                md.append(f"| {batch} | **median** | | | **{np.median(ratios):.1f}x** | | |")
        md += _run_note(meta, "brca")
    if features:
        md += ["", f"## Features (n = {features[0]['n']} samples, batch {features[0]['batch']})", ""]
        md += _training_table(features, "features", "features")
        md += [
            "",
            "'not run': the paper decoder was not attempted beyond the first size at which it failed (its memory grows "
            "linearly with the features).",
        ]
        fits = {impl: _fit_limit(features, impl, features[0]["n"]) for impl in ("poems", "paper")}
        md += [
            "",
            "Largest feature count within 24 GB (peak RSS, straight-line fit of the largest runs; an "
            "extrapolation beyond the largest run):",
            "",
        ]
        for impl, fit in fits.items():
            if fit:
                md.append(
                    f"- {'POEMS (this package)' if impl == 'poems' else 'paper decoder'}: "
                    f"{fit['mb_per_1k_features']:.0f} MB per 1,000 features → about "
                    f"{fit['max_features_24gb']:,.0f} features (largest run: {fit['largest_run']:,})."
                )
        paper_failed = [r for r in features if r["impl"] == "paper" and r["status"] != "ok"]
        for r in paper_failed:
            md.append(
                f"- paper decoder at {sum(r['dims']):,} features: {r['status']} under a "
                f"{r.get('mem_limit_gb', '?')} GB address-space cap ({r.get('error', '')[:120]})."
            )
        md += _run_note(meta, "features")
    if samples:
        md += ["", f"## Samples ({sum(samples[0]['dims']):,} features, BRCA split, batch {samples[0]['batch']})", ""]
        md += _training_table(samples, "n", "samples")
        md += _run_note(meta, "samples")
    if shapes:
        md += ["", "## Full-dimensional shapes (this package, defaults: K = 32, H = 64, batch 128)", ""]
        md += [
            "| shape | features | samples | s/epoch | peak RSS (MB) | data (MB) | parameters |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in shapes:
            md.append(
                f"| {r['shape']} | {' + '.join(f'{d:,}' for d in r['dims'])} | {r['n']} | "
                f"{_fmt(r.get('s_per_epoch'), 2) if r['status'] == 'ok' else r['status']} | "
                f"{_fmt(r.get('peak_rss_mb'), 0)} | {_fmt(r.get('data_mb'), 0)} | {r.get('n_params', 0):,} |"
            )
        md += _run_note(meta, "shapes")
    if ddp:
        epochs = ddp[0].get("epochs", "?")
        md += [
            "",
            f"## Two-process DDP against one process (breast_tcga, defaults, {epochs} epochs, no early stopping)",
        ]
        md += [""]
        md += ["| setup | k-means ACC | NMI | ARI | KNN acc | wall s |", "|---|---|---|---|---|---|"]
        for setup in dict.fromkeys(r["setup"] for r in ddp):
            rs = [r for r in ddp if r["setup"] == setup and "kmeans_accuracy" in r]
            if not rs:
                md.append(f"| {setup} | failed | | | | |")
                continue

            def ms(key, rs=rs):
                v = np.array([r[key] for r in rs])
                return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0:.3f}"

            md.append(
                f"| {setup} | {ms('kmeans_accuracy')} | {ms('kmeans_nmi')} | {ms('kmeans_ari')} | "
                f"{ms('knn_accuracy')} | {np.mean([r['wall_s'] for r in rs]):.0f} |"
            )
        md.append("")
        md.append(
            f"Mean ± sd over training seeds {sorted({r['seed'] for r in ddp})} of the mean over evaluation "
            "seeds (0, 12, 21, 42, 1234); all-sample embeddings; same effective batch (128) in both setups."
        )
        md += _run_note(meta, "ddp")
    if chunks:
        md += ["", "## Chunk size (decoder alone, 1,000 features, µs per sample, best of 4)", ""]
        batches = sorted({r["batch"] for r in chunks})
        sizes = sorted({r["chunk"] for r in chunks})
        by = {(r["batch"], r["chunk"]): r for r in chunks}
        md += ["| batch | " + " | ".join(f"chunk {c}" for c in sizes) + " |", "|---" * (len(sizes) + 1) + "|"]
        for b in batches:
            md.append(
                f"| {b} | "
                + " | ".join(
                    f"{by[(b, c)]['us_per_sample_per_1k_features']:.0f} ({by[(b, c)]['chunk_mib']:.1f} MiB)"
                    for c in sizes
                )
                + " |"
            )
        md += _run_note(meta, "chunks")
    (RESULTS / "scale.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    _plot(features, samples)


def _plot(features, samples) -> None:
    if not features and not samples:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [(features, "features", "number of features"), (samples, "n", "number of samples")]
    panels = [p for p in panels if p[0]]
    fig, axes = plt.subplots(2, len(panels), figsize=(5.5 * len(panels), 7), squeeze=False)
    for col, (rows, key, xlabel) in enumerate(panels):
        for impl, label, style in (("poems", "POEMS (chunked, this package)", "o-"), ("paper", "paper decoder", "s--")):
            ok = [r for r in rows if r["impl"] == impl and r["status"] == "ok"]
            xs = [sum(r["dims"]) if key == "features" else r["n"] for r in ok]
            axes[0, col].plot(xs, [r["s_per_epoch"] for r in ok], style, label=label)
            axes[1, col].plot(xs, [r["peak_rss_mb"] / 1024 for r in ok], style, label=label)
            failed = [r for r in rows if r["impl"] == impl and r["status"] != "ok"]
            for r in failed:
                x = sum(r["dims"]) if key == "features" else r["n"]
                axes[1, col].axvline(x, color="grey", ls=":", lw=1)
                cap = f" ({r['mem_limit_gb']:g} GB cap)" if r.get("mem_limit_gb") else ""
                axes[1, col].text(x, 0.5, f" {impl}: {r['status']}{cap}", rotation=90, va="bottom", fontsize=7)
        for row in range(2):
            axes[row, col].set_xscale("log")
            axes[row, col].set_yscale("log")
            axes[row, col].set_xlabel(xlabel)
            axes[row, col].grid(alpha=0.3, which="both")
            if key == "n":
                xs = sorted({r["n"] for r in rows})
                axes[row, col].set_xticks(xs, [f"{x:,}" for x in xs])
                axes[row, col].minorticks_off()
                if row == 1:
                    axes[row, col].set_yscale("linear")
                    axes[row, col].set_ylim(bottom=0)
        axes[0, col].set_ylabel("seconds per epoch (CPU, 1 thread)")
        axes[1, col].set_ylabel("peak RSS (GB)")
        if key == "features":
            ax = axes[1, col]
            ax.axhline(24, color="red", lw=1)
            for impl, color in (("poems", "C0"), ("paper", "C1")):
                fit = _fit_limit(rows, impl, rows[0]["n"])
                if fit:  # the straight-line extrapolation to 24 GB
                    xs = np.geomspace(fit["largest_run"], fit["max_features_24gb"], 50)
                    ax.plot(xs, (fit["intercept_mb"] + xs * fit["mb_per_1k_features"] / 1e3) / 1024, ":", color=color)
                    ax.plot([fit["max_features_24gb"]], [24], "x", color=color, ms=8)
                    ax.annotate(
                        f"{fit['max_features_24gb']:,.0f} (extrapolated)",
                        (fit["max_features_24gb"], 24),
                        textcoords="offset points",
                        xytext=(-10, -14 if impl == "poems" else 6),
                        ha="right" if impl == "poems" else "center",
                        fontsize=7,
                        color=color,
                    )
            ax.text(ax.get_xlim()[0], 24, " 24 GB", color="red", va="bottom", fontsize=8)
        axes[0, col].legend(fontsize=8)
    fig.suptitle("POEMS scale: K = 32, H = 100, batch 512")
    fig.tight_layout()
    fig.savefig(RESULTS / "scale.png", dpi=120)


def _save(name: str, rows) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"scale_{name}.json").write_text(json.dumps(rows, indent=1) + "\n")
    meta = _load("meta") or {}
    meta.setdefault("runs", {})[name] = {
        "finished": time.strftime("%Y-%m-%d %H:%M"),
        "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()],
    }
    meta["machine"] = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    try:
        cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        meta["machine"] = f"{cpu.group(1)}, {os.cpu_count()} cores" if cpu else meta["machine"]
    except OSError:
        pass
    (RESULTS / "scale_meta.json").write_text(json.dumps(meta, indent=1) + "\n")


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_worker":
        print("RESULT " + json.dumps(run_training_config(json.loads(argv[1]))), flush=True)
        return
    if argv and argv[0] == "_ddp_train":
        strategy, devices, batch, seed, epochs, path = argv[1:7]
        ddp_train_worker(strategy, int(devices), int(batch), int(seed), int(epochs), path)
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "section", choices=["decoder", "chunks", "brca", "features", "samples", "shapes", "ddp", "report"]
    )
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny sizes, not a result")
    parser.add_argument("--paper-mem-limit-gb", type=float, default=8.0)
    parser.add_argument(
        "--paper-max-features", type=int, default=10_000, help="largest feature count tried for the paper decoder"
    )
    args = parser.parse_args(argv)
    if args.quick:
        global RESULTS
        RESULTS = RESULTS / "scale_quick"
    sections = {
        "decoder": bench_decoder,
        "chunks": sweep_chunks,
        "brca": repeat_brca,
        "features": sweep_features,
        "samples": sweep_samples,
        "shapes": sweep_shapes,
        "ddp": bench_ddp,
    }
    if args.section != "report":
        _save(args.section, sections[args.section](args))
    report(args)


if __name__ == "__main__":
    main()
