"""Speed: the decoder's dense and link paths against W's density, and the time to a trained model.

    OMP_NUM_THREADS=1 python benchmarks/performance/speed.py density  # s per decoder pass (forward + backward)
    OMP_NUM_THREADS=1 python benchmarks/performance/speed.py train    # default train(): breast_tcga, rosmap; baselines
    OMP_NUM_THREADS=1 python benchmarks/performance/speed.py shape --seeds 0   # the seed-003 shape (21 x 139,109)
    python benchmarks/performance/speed.py report                     # results/speed.md from the JSON files

Each part writes ``<out>/speed_<part>.json`` (``--out``, default ``benchmarks/results``). ``--quick``: one seed, one
repetition, 2,500 features only, breast_tcga only, and 20 epochs at a tenth of seed 003's features.

``density``: one decoder (K = 32, H = 64, batch 128, the package's chunking) at 2,500 and 140,000 features; W has
the given share of non-zero entries at random positions. Both paths run interleaved in one process, each timed as
the median of ``--reps`` forward + backward passes. Also the split of the dense cost: the same pass at K = 1
(a first layer of almost no cost) is what sparsity in W cannot remove. The decoder's other settings are the
package's defaults (``poems_mu.module.DEFAULTS``).

``train``: the paper's split (train/test 80/20, 20 % of train for validation; ``accuracy/subtyping.py``), POEMS
with the package defaults — the time is the whole ``train()`` call — then its held-out ELBO (best validation
``elbo_per_sample``), the factors it kept, and the mean wall time of a training epoch while all K = 32 factors were in
the model (``epoch_s_all``, the first 50 epochs: the warm-up, before any is pruned) and over its last 20 epochs
(``epoch_s_kept``, with the factors it kept): what pruning saves; MOFA+, MOFA-FLEX and PCA with ``_baselines.py``'s
settings (time: z-scoring + fit + projection). Each method's subtyping quality is scored on the test split with
``poems_mu.tl.evaluate_subtyping``.

``shape``: seed 003's shape (21 samples, 132,129 + 6,980 features; synthetic rank-5 data, which has no subtypes, so
time and POEMS's held-out ELBO only), the same split and the same methods.

``--methods`` (``train``, ``shape``) runs some of the methods only: the rows of the others are kept from the
existing ``speed_<part>.json``, whose provenance is recorded under ``kept`` (with the methods it covers), so a
baseline whose settings changed is re-timed without re-training POEMS.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np
import pandas as pd
import torch
from _baselines import evaluate, fit_baseline, fit_poems, load_dataset, paper_split

DENSITIES = (0.01, 0.03, 0.1, 0.3, 1.0)
#: the methods of ``train`` and ``shape``
METHODS = ("POEMS", "MOFA+", "MOFA-FLEX", "PCA")
FEATURES = (2_500, 140_000)


def _pass_time(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench_density(args) -> list[dict]:
    rows = []
    for n_feat in FEATURES[:1] if args.quick else FEATURES:
        reps = 1 if args.quick else args.reps if n_feat < 10_000 else max(1, args.reps // 3)
        for density in (*DENSITIES, "K=1"):
            n_latent = 1 if density == "K=1" else 32
            torch.manual_seed(0)
            dec = common.sparse_decoder(n_feat, n_latent, 64)
            if density != "K=1":
                with torch.no_grad():
                    dec.W.mul_((torch.rand_like(dec.W) < density).float())
            z = torch.randn(128, n_latent, requires_grad=True)
            row = {"features": n_feat, "density": density}
            for path in ("dense", "sparse") if density != "K=1" else ("dense",):
                dec.links = path
                dec._use_links = path == "sparse"
                dec.links_dense_every = 10**9  # time the link pass itself (its dense refresh is the dense pass)
                dec._passes = 1

                def step(dec=dec, z=z):
                    dec.zero_grad(set_to_none=True)
                    dec(z).square().mean().backward()

                row[f"{path}_s"] = _pass_time(step, reps)
            if "sparse_s" in row:
                row["speedup"] = row["dense_s"] / row["sparse_s"]
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


class EpochTimes:
    """A Lightning callback: the wall time of every training epoch and the factors in the model during it."""

    def __init__(self):
        import lightning.pytorch as pl

        self.callback = type("EpochTimer", (pl.Callback,), {})()
        self.callback.on_train_epoch_start = self._start
        self.callback.on_train_epoch_end = self._end
        self.times, self.factors = [], []

    def _start(self, trainer, plan):
        self._t = time.perf_counter()
        self.factors.append(plan.module.n_factors)

    def _end(self, trainer, plan):
        self.times.append(time.perf_counter() - self._t)


def _time_methods(name: str, mdata, labels, args) -> list[dict]:
    """POEMS (time: ``model.train``), MOFA+, MOFA-FLEX and PCA (time: z-scoring + fit + projection) on the paper's
    split of ``mdata``; each scored on the test split when ``labels`` are given."""
    split = paper_split(np.zeros(mdata.n_obs) if labels is None else labels)
    train_kwargs = {"max_epochs": 20} if args.quick else None
    rows = []
    for seed in args.seeds:
        for method in args.methods:
            if method == "PCA" and seed != args.seeds[0]:
                continue  # deterministic
            if method == "POEMS":
                timer = EpochTimes()
                z, info = fit_poems(
                    mdata, split, seed, train_kwargs={**(train_kwargs or {}), "callbacks": [timer.callback]}
                )
                info = {
                    "epoch_s_all": float(np.mean(timer.times[:50])),
                    "epoch_s_kept": float(np.mean(timer.times[-20:])),
                    "wall_s": info["train_s"],
                    "epochs": info["epochs"],
                    "heldout_elbo_per_sample": info["best_elbo_per_sample_validation"],
                    "W_density": info["W_density"],
                    "n_factors": info["n_factors"],
                }
            else:
                z, info = fit_baseline(method, mdata, split, seed, quick=args.quick)
            row = {"dataset": name, "method": method, "seed": seed, **info}
            if labels is not None:
                scores = evaluate(z, labels, split, scopes=("test",))["test"]
                row.update({m: v["mean"] for m, v in scores.items()})
            row = {k: v for k, v in row.items() if not isinstance(v, (list, dict))}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def bench_train(args) -> list[dict]:
    rows = []
    for name in args.datasets[:1] if args.quick else args.datasets:
        mdata, key = load_dataset(name)
        rows += _time_methods(name, mdata, mdata.obs[key].to_numpy(), args)
    return rows


def bench_shape(args) -> list[dict]:
    dims = [d // 10 for d in common.SEED003] if args.quick else common.SEED003
    return _time_methods("seed-003 shape", common.synthetic_mdata(dims, common.SEED003_N), None, args)


def _md_density(rows: list[dict]) -> list[str]:
    out = ["| features | W density | dense s/pass | link s/pass | dense / link |", "|---|---|---|---|---|"]
    for r in rows:
        if r["density"] == "K=1":
            continue
        out.append(
            f"| {r['features']:,} | {r['density']:.0%} | {r['dense_s']:.3f} | {r['sparse_s']:.3f} | "
            f"{r['speedup']:.2f}× |"
        )
    out.append("")
    for n_feat in FEATURES:
        full = next((r for r in rows if r["features"] == n_feat and r["density"] == 1.0), None)
        floor = next((r for r in rows if r["features"] == n_feat and r["density"] == "K=1"), None)
        if full and floor:
            share = 1 - floor["dense_s"] / full["dense_s"]
            out.append(
                f"* {n_feat:,} features: the dense pass at K = 1 takes {floor['dense_s']:.3f} s of the "
                f"{full['dense_s']:.3f} s at K = 32, so the first layer (what W's zeros can remove) is {share:.0%} "
                f"of the dense cost and skipping every link could give at most {1 / (1 - share):.2f}×."
            )
    return out


def _md_train(rows: list[dict]) -> list[str]:
    df = pd.DataFrame(rows).rename(columns={"dataset": "data set"})
    metrics = [m for m in ("knn_accuracy", "kmeans_nmi", "kmeans_ari", "kmeans_accuracy") if m in df]
    lead = ("wall_s", "epochs", "n_factors", "epoch_s_all", "epoch_s_kept", "heldout_elbo_per_sample", "W_density")
    cols = [c for c in (*lead, *metrics) if c in df]
    return common.table(df, ["data set", "method"], cols, formats=dict.fromkeys(cols, (".3g", ".2g")))


def report(out: Path) -> str:
    lines = ["# Speed", "", "Made by `python benchmarks/performance/speed.py report`; see the script's docstring."]
    for name, title, fmt in (
        ("speed_density.json", "Decoder pass against W's density (one CPU thread)", _md_density),
        ("speed_train.json", "Time to a trained model, test-split subtyping (one CPU thread)", _md_train),
        ("speed_shape.json", "Time to a trained model at seed 003's shape (one CPU thread)", _md_train),
    ):
        path = out / name
        if path.exists():
            data = json.loads(path.read_text())
            prov = data.get("provenance")
            source = common.describe(prov) if prov else f"`{data['command']}` on {data['machine']}"
            kept = data.get("kept", [])
            if kept:
                from_kept = {m for part in kept for m in part["methods"]}
                rerun = [m for m in METHODS if m not in from_kept and any(r["method"] == m for r in data["rows"])]
                sources = [f"{', '.join(rerun)}: {source}"]
                for part in kept:
                    old = part["provenance"]
                    if isinstance(old.get("machine"), dict):
                        sources.append(f"{', '.join(part['methods'])}: {common.describe(old)}")
                    else:
                        sources.append(f"{', '.join(part['methods'])}: `{old['command']}` on {old['machine']}")
                source = ". ".join(sources)
            lines += ["", f"## {title}", "", source, "", *fmt(data["rows"])]
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=[0, 1, 2])
    parser.add_argument("what", choices=("density", "train", "shape", "report"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", default=["breast_tcga", "rosmap"])
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(METHODS),
        choices=METHODS,
        help="train/shape: the methods to run (the others' rows are kept from the existing results file)",
    )
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    if args.what == "report":
        common.write_report(args.out / "speed.md", report(args.out), provenance=prov)
        return
    common.quiet()
    rows = {"density": bench_density, "train": bench_train, "shape": bench_shape}[args.what](args)
    path = args.out / f"speed_{args.what}.json"
    payload = {"rows": rows}
    if args.what != "density" and set(args.methods) != set(METHODS) and path.exists():
        payload = keep_other_methods(json.loads(path.read_text()), rows, args.methods)
    common.write_results(path, payload, provenance=prov)


def keep_other_methods(old: dict, rows: list[dict], methods) -> dict:
    """The new ``rows`` of ``methods`` with the rows of the other methods kept from ``old`` (an earlier results
    file), in the order data set, method (:data:`METHODS`), seed; ``kept``: ``_common.kept_parts``."""
    kept_rows = [r for r in old["rows"] if r["method"] not in methods]
    datasets = list(dict.fromkeys([r["dataset"] for r in old["rows"]] + [r["dataset"] for r in rows]))
    merged = sorted(
        kept_rows + rows, key=lambda r: (datasets.index(r["dataset"]), METHODS.index(r["method"]), r["seed"])
    )
    own = [m for m in METHODS if any(r["method"] == m for r in old["rows"])]
    parts = common.kept_parts(old, own, methods)
    return {"rows": merged, "kept": parts}


if __name__ == "__main__":
    main()
