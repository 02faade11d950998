"""What the first-layer bias costs: the sparse decoder of 0.1 against today's, forward + backward, interleaved.

BRCA size (2,503 features), K = 32, H = 100, batch 128, one thread. The 0.1 decoder's file is loaded on its own from
a checkout of 0.1; today's decoder is the installed package's, with its default settings (``poems_mu.module.DEFAULTS``)
and the dense first-layer path (W is dense here, as at the start of training), so only the decoder differs::

    git worktree add /tmp/old 420ecff      # or: mkdir /tmp/old && git archive 420ecff src | tar -x -C /tmp/old
    OMP_NUM_THREADS=1 python benchmarks/performance/decoder_bias_cost.py --old-src /tmp/old/src

Writes ``<out>/decoder_bias_cost.json`` (``--out``, default ``benchmarks/results``).
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import torch


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=None, quick=False)
    parser.add_argument("--old-src", required=True, help="src folder of a checkout of the 0.1 code")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    old = _load(Path(args.old_src) / "poems_mu" / "nn" / "_sparse_decoder.py", "decoder_v01")
    b, d, k, h = 128, 2503, 32, 100
    build = {
        "0.1": lambda: old.SparseDecoder(d, k, h),
        "now": lambda: common.sparse_decoder(d, k, h, links="dense"),
    }
    times = {name: [] for name in build}
    for _ in range(args.repeats):
        for name, make in build.items():
            torch.manual_seed(0)
            dec = make()
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
    ratio = min(times["now"]) / min(times["0.1"])
    print(f"now / 0.1: {ratio:.3f}")
    payload = {"shape": {"batch": b, "features": d, "K": k, "H": h}, "seconds_per_pass": times, "now_over_v01": ratio}
    common.write_results(args.out / "decoder_bias_cost.json", payload, provenance=prov)


if __name__ == "__main__":
    main()
