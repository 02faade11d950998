"""What the first-layer bias costs: the sparse decoder of 0.1 against today's, forward + backward, interleaved.

BRCA size (2,503 features), K = 32, H = 100, batch 128, one thread; each decoder's file is loaded on its own, so
only the decoder differs::

    git worktree add /tmp/old 420ecff
    OMP_NUM_THREADS=1 python benchmarks/decoder_bias_cost.py --old-src /tmp/old/src
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old-src", required=True, help="src folder of a checkout of the 0.1 code")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rel = Path("poems_mu") / "nn" / "_sparse_decoder.py"
    impls = {"0.1": _load(Path(args.old_src) / rel, "dec_old"), "now": _load(HERE.parent / "src" / rel, "dec_now")}
    b, d, k, h = 128, 2503, 32, 100
    times = {name: [] for name in impls}
    for _ in range(args.repeats):
        for name, mod in impls.items():
            torch.manual_seed(0)
            dec = mod.SparseDecoder(d, k, h)
            z = torch.randn(b, k, requires_grad=True)
            dec(z).sum().backward()  # warm-up
            start = time.perf_counter()
            for _ in range(10):
                dec(z).pow(2).sum().backward()
            times[name].append((time.perf_counter() - start) / 10)
    for name, ts in times.items():
        print(
            f"{name}: {min(ts) * 1e3:.0f} ms per forward + backward (best of {len(ts)}: {[round(t * 1e3) for t in ts]})"
        )
    print(f"now / 0.1: {min(times['now']) / min(times['0.1']):.3f}")


if __name__ == "__main__":
    main()
