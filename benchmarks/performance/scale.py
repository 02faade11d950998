"""Scale: seconds per epoch and peak memory of POEMS against the number of features and samples, side by side with a
re-statement of the paper's vectorised decoder (``paper_decoder.py``); full-dimensional KIRC and seed-003 shapes;
the decoder alone, before and now; two-process DDP against one process.

Every training configuration runs in a fresh process (``scale_worker.py``), so its peak memory is its own: peak RSS
on CPU (the kernel's high-water mark over ``model.train``, data and model included), ``torch.cuda.max_memory_allocated``
on GPU. Both decoders sit in the same POEMS model (encoders, gating, loss, loader and trainer are shared; only
``module.decoders`` differs), at K = 32, H = 100, batch 512. Synthetic data (rank-5 signal + noise); timings do not
depend on the values. Ratios come from one run: the configurations of both decoders are interleaved.

    OMP_NUM_THREADS=1 python benchmarks/performance/scale.py decoder   # the decoder alone (forward + backward)
    OMP_NUM_THREADS=1 python benchmarks/performance/scale.py chunks    # chunk-size sweep behind the default budget
    OMP_NUM_THREADS=1 python benchmarks/performance/scale.py brca      # the BRCA-size pair, repeated (headline ratio)
    OMP_NUM_THREADS=1 python benchmarks/performance/scale.py features  # s/epoch and peak RSS vs features
    OMP_NUM_THREADS=1 python benchmarks/performance/scale.py samples   # ... vs samples
    OMP_NUM_THREADS=1 python benchmarks/performance/scale.py shapes    # KIRC and seed-003 shapes, package defaults
    OMP_NUM_THREADS=1 python benchmarks/performance/scale.py ddp       # breast_tcga: 2-process DDP vs one process
    python benchmarks/performance/scale.py report                      # scale.md + scale.png from the JSON files

Each section writes ``<out>/scale_<section>.json`` (``--out``, default ``benchmarks/results``), then the report
(``scale_report.py``: ``scale.md``) and the plot (``scale_plot.py``: ``scale.png``) are made again from every section
there. Options: ``--device cuda`` (GPU timings, max allocated memory), ``--quick`` (tiny sizes: a pipeline check,
written to ``benchmarks/results/quick`` unless ``--out`` says otherwise), ``--paper-mem-limit-gb`` (address-space cap
of each paper-decoder run, default 8: the machine is shared; the largest feature count within 24 GB is extrapolated
from the runs that fit).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np
import scale_plot
import scale_report
import torch

WORKER = Path(__file__).resolve().with_name("scale_worker.py")
K, H, BATCH = 32, 100, 512


def split_like_brca(total: int) -> list[int]:
    """``total`` features split over three modalities in the BRCA proportions 1000 : 1000 : 503."""
    dims = [round(total * d / sum(common.BRCA)) for d in common.BRCA[:2]]
    return [*dims, total - sum(dims)]


def spawn(cfg: dict, timeout: float = 3600) -> dict:
    """Run one configuration in a fresh process; a crash (e.g. killed for memory) is reported, not raised."""
    cmd = [sys.executable, str(WORKER), "train", json.dumps(cfg)]
    env = {**os.environ, "OMP_NUM_THREADS": str(cfg.get("threads", 1)), "PYTHONWARNINGS": "ignore"}
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {**cfg, "status": "timeout"}
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {**cfg, **json.loads(line[len("RESULT ") :])}
    return {**cfg, "status": f"crashed (exit code {proc.returncode})", "error": proc.stderr[-500:]}


# -- sweeps: one training configuration per worker process ---------------------------------------------------------
def _log(res: dict) -> None:
    keys = ("impl", "dims", "n", "batch", "status", "s_per_epoch", "peak_rss_mb", "gpu_max_allocated_mb", "error")
    print(json.dumps({k: res[k] for k in keys if k in res}), flush=True)


def _base(args, impl: str, dims, n: int, epochs: int) -> dict:
    cfg = {"impl": impl, "dims": list(dims), "n": n, "batch": BATCH, "n_latent": K, "n_hidden": H, "epochs": epochs}
    cfg["device"] = args.device
    if impl == "paper" and args.device == "cpu":
        cfg["mem_limit_gb"] = args.paper_mem_limit_gb
    return cfg


def sweep_features(args) -> list[dict]:
    totals = [1_000, 2_503, 10_000] if args.quick else [1_000, 2_503, 5_000, 10_000, 35_000, 70_000, 140_000]
    paper_max = 2_503 if args.quick else args.paper_max_features
    n = 100 if args.quick else common.BRCA_N
    out = []
    for total in totals:
        dims = common.BRCA if total == sum(common.BRCA) else split_like_brca(total)
        impls = ["paper", "poems"] if total <= paper_max else ["poems"]
        for impl in impls:
            epochs = 1 if args.quick else (2 if total > 10_000 else 3)
            res = spawn(_base(args, impl, dims, n, epochs))
            _log(res)
            out.append(res)
    return out


def sweep_samples(args) -> list[dict]:
    ns = [50, 200] if args.quick else [219, common.BRCA_N, 3_500]
    out = []
    for n in ns:
        for impl in ("paper", "poems"):
            res = spawn(_base(args, impl, common.BRCA, n, 1 if args.quick else 3))
            _log(res)
            out.append(res)
    return out


def repeat_brca(args) -> list[dict]:
    """The BRCA-size pair (1000 + 1000 + 503 features, 875 samples), paper and POEMS alternated, several times."""
    n = 100 if args.quick else common.BRCA_N
    out = []
    for rep in range(1 if args.quick else 3):
        for batch in (128, BATCH):
            for impl in ("paper", "poems"):
                cfg = {**_base(args, impl, common.BRCA, n, 1 if args.quick else 3), "batch": batch, "rep": rep}
                res = spawn(cfg)
                _log(res)
                out.append(res)
    return out


def sweep_shapes(args) -> list[dict]:
    """Full-dimensional shapes with the package defaults (H = 64, batch 128)."""
    out = []
    shapes = [("seed-003", common.SEED003, common.SEED003_N), ("KIRC", common.KIRC, common.KIRC_N)]
    for name, dims, n in shapes:
        cfg = {"impl": "poems", "dims": list(dims), "n": n, "batch": 128, "n_latent": K, "n_hidden": 64}
        cfg["device"] = args.device
        cfg.update({"epochs": 1 if args.quick else 3, "shape": name})
        res = spawn(cfg)
        _log(res)
        out.append(res)
    return out


# -- the decoder alone: forward + backward of one minibatch, in this process ---------------------------------------
def _decoder_variants(n_output: int, batch: int):
    from paper_decoder import PaperSparseDecoder
    from torch.utils.checkpoint import checkpoint

    from poems_mu.nn._reference import autograd_decode, decode_chunk
    from poems_mu.nn._sparse_decoder import _unit_rows

    ours = common.sparse_decoder(n_output, K, H)

    def checkpointed(z, chunk):  # the previous implementation: torch.utils.checkpoint around each chunk
        a, c = _unit_rows(ours.A), _unit_rows(ours.c)
        outs = [
            checkpoint(decode_chunk, z, ours.W[s : s + chunk], a, ours.d, c[s : s + chunk], use_reentrant=False)
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
        "one pass, plain autograd": (None, lambda z: autograd_decode(ours, z)),
        "chunks + torch.utils.checkpoint (before)": (old_chunk, lambda z: checkpointed(z, old_chunk)),
        "chunks + custom backward (now)": (ours.resolve_chunk_size(batch), ours),
    }


def bench_decoder(args) -> list[dict]:
    n_output = 500 if args.quick else sum(common.BRCA)
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
    chunks = [2, 4, 8, 16, 32, 64, 128, 256]
    rows, best = [], {}
    configs = [(b, c) for b in (32, 128, BATCH) for c in chunks]
    for _ in range(2 if args.quick else 4):
        for batch, chunk in random.sample(configs, len(configs)):
            dec = common.sparse_decoder(1_000, K, H, chunk_size=chunk)
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


# -- DDP: two processes against one, on breast_tcga ----------------------------------------------------------------
def bench_ddp(args) -> list[dict]:
    import poems_mu as pm

    seeds = [0] if args.quick else [0, 1, 2]
    epochs = 20 if args.quick else 200
    setups = [("1 process, batch 128", "auto", 1, 128), ("2 processes (ddp, gloo), batch 2 x 64", "ddp", 2, 64)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for name, strategy, devices, batch in setups:
                path = os.path.join(tmp, f"{strategy}_{seed}.npz")
                cmd = [sys.executable, str(WORKER), "ddp", strategy, str(devices)]
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


SECTIONS = {
    "decoder": bench_decoder,
    "chunks": sweep_chunks,
    "brca": repeat_brca,
    "features": sweep_features,
    "samples": sweep_samples,
    "shapes": sweep_shapes,
    "ddp": bench_ddp,
}


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=None)
    parser.add_argument("section", choices=[*SECTIONS, "report"])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--paper-mem-limit-gb", type=float, default=8.0)
    parser.add_argument(
        "--paper-max-features", type=int, default=10_000, help="largest feature count tried for the paper decoder"
    )
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    if args.section != "report":
        rows = SECTIONS[args.section](args)
        payload = {"rows": rows, "load_average_1_5_15min": [round(x, 2) for x in os.getloadavg()]}
        common.write_results(args.out / f"scale_{args.section}.json", payload, provenance=prov)
    common.write_report(args.out / "scale.md", scale_report.report(args.out), provenance=prov)
    scale_plot.plot(args.out)


if __name__ == "__main__":
    main()
