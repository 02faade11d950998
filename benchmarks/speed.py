"""Speed benchmark (issue 15): the decoder's dense and link paths against W's density, and time to a trained model.

    OMP_NUM_THREADS=1 python benchmarks/speed.py density      # s per decoder pass (forward + backward), both paths
    OMP_NUM_THREADS=1 python benchmarks/speed.py train        # default train() on breast_tcga, rosmap vs MOFA+, PCA
    OMP_NUM_THREADS=1 python benchmarks/speed.py shape        # the seed-003 shape (21 x 139,109), one seed
    python benchmarks/speed.py report                         # results/speed.md from the JSON files

``density``: one decoder (K = 32, H = 64, batch 128, the package's chunking) at 2,500 and 140,000 features; W has
the given share of non-zero entries at random positions. Both paths run interleaved in one process, each timed as
the median of ``--reps`` forward + backward passes. Also the split of the dense cost: the same pass at K = 1
(a first layer of almost no cost) is what sparsity in W cannot remove.

``train``: the paper's split (train/test 80/20, 20 % of train for validation; ``subtyping.py``), POEMS with the
package defaults — the time is the whole ``train()`` call — then its held-out ELBO (best validation
``elbo_per_sample``); MOFA+ and PCA with ``_baselines.py``'s settings (time: z-scoring + fit + projection). Each
method's subtyping quality is scored on the test split with ``poems_mu.tl.evaluate_subtyping``.

``shape``: seed 003's shape (21 samples, 132,129 + 6,980 features; ``scale.py``'s synthetic rank-5 data, which
has no subtypes, so time and POEMS's held-out ELBO only), the same split and the same three methods.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE))

DENSITIES = (0.01, 0.03, 0.1, 0.3, 1.0)
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
    from poems_mu.nn import SparseDecoder

    torch.set_num_threads(1)
    rows = []
    for n_feat in FEATURES:
        reps = args.reps if n_feat < 10_000 else max(1, args.reps // 3)
        for density in (*DENSITIES, "K=1"):
            n_latent = 1 if density == "K=1" else 32
            torch.manual_seed(0)
            dec = SparseDecoder(n_feat, n_latent, 64)
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


def _fit_poems(mdata, split, seed):
    import scvi
    import subtyping as S

    import poems_mu as pm

    train_data, fit_rows, val_rows = S.train_split_data(mdata, split)
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(train_data)
    model = pm.POEMS(train_data)
    start = time.perf_counter()
    model.train(
        enable_progress_bar=False,
        datasplitter_kwargs={"external_indexing": [fit_rows, val_rows, np.array([], dtype=np.int64)]},
    )
    wall = time.perf_counter() - start
    full = mdata.copy()
    pm.POEMS.setup_mudata(full)
    z = model.get_latent_representation(full)
    hist = model.history
    return z, {
        "wall_s": wall,
        "epochs": len(hist["elbo_train"]),
        "heldout_elbo_per_sample": float(hist["elbo_per_sample_validation"].min().iloc[0]),
        "W_density": float(model.sparsity_summary()["density"].mean()),
    }


def bench_train(args) -> list[dict]:
    import subtyping as S

    S.quiet()
    torch.set_num_threads(1)
    rows = []
    for name in args.datasets:
        mdata, key = S.load_dataset(name)
        labels = mdata.obs[key].to_numpy()
        split = S.paper_split(labels)
        for seed in args.seeds:
            for method in ("POEMS", "MOFA+", "PCA"):
                if method == "PCA" and seed != args.seeds[0]:
                    continue  # deterministic
                if method == "POEMS":
                    z, info = _fit_poems(mdata, split, seed)
                else:
                    z, info = S.fit_baseline(method, mdata, split, seed)
                scores = S.evaluate(z, labels, split, scopes=("test",))["test"]
                row = {"dataset": name, "method": method, "seed": seed, **info}
                row.update({m: v["mean"] for m, v in scores.items()})
                print(json.dumps({k: v for k, v in row.items() if not isinstance(v, (list, dict))}), flush=True)
                rows.append({k: v for k, v in row.items() if not isinstance(v, (list, dict))})
    return rows


def bench_shape(args) -> list[dict]:
    import scale
    import subtyping as S

    S.quiet()
    torch.set_num_threads(1)
    mdata = scale.synthetic_mdata(scale.SEED003, scale.SEED003_N)
    split = S.paper_split(np.zeros(mdata.n_obs))
    rows = []
    for seed in args.seeds:
        for method in ("POEMS", "MOFA+", "PCA"):
            if method == "PCA" and seed != args.seeds[0]:
                continue
            if method == "POEMS":
                _, info = _fit_poems(mdata, split, seed)
            else:
                _, info = S.fit_baseline(method, mdata, split, seed)
            row = {"dataset": "seed-003 shape", "method": method, "seed": seed, **info}
            row = {k: v for k, v in row.items() if not isinstance(v, (list, dict))}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


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
    import pandas as pd
    from _tables import mean_sd_rows

    df = pd.DataFrame(rows)
    metrics = [m for m in ("knn_accuracy", "kmeans_nmi", "kmeans_ari", "kmeans_accuracy") if m in df]
    cols = ["wall_s", "epochs", "heldout_elbo_per_sample", "W_density", *metrics]
    cols = [c for c in cols if c in df]
    out = ["| data set | method | " + " | ".join(cols) + " |", "|---|---|" + "---|" * len(cols)]
    for idx, cells in mean_sd_rows(df, ["dataset", "method"], cols, fmt=".3g", sd_fmt=".2g"):
        out.append(f"| {idx[0]} | {idx[1]} | " + " | ".join(cells) + " |")
    return out


def report(args) -> None:
    lines = ["# Speed (issue 15)", "", "Generated by `python benchmarks/speed.py report`; see the script's docstring."]
    lines.append("")
    for name, title, fmt in (
        ("speed_density.json", "Decoder pass against W's density (one CPU thread)", _md_density),
        ("speed_train.json", "Time to a trained model, test-split subtyping (one CPU thread)", _md_train),
        ("speed_shape.json", "Time to a trained model at seed 003's shape (one CPU thread)", _md_train),
    ):
        path = RESULTS / name
        if path.exists():
            data = json.loads(path.read_text())
            lines += [f"## {title}", "", f"`{data['command']}` on {data['machine']}", "", *fmt(data["rows"]), ""]
    (RESULTS / "speed.md").write_text("\n".join(lines))
    print("\n".join(lines))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("density", "train", "shape", "report"))
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", default=["breast_tcga", "rosmap"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = parser.parse_args(argv)
    if args.what == "report":
        report(args)
        return
    rows = {"density": bench_density, "train": bench_train, "shape": bench_shape}[args.what](args)
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}"
    command = "OMP_NUM_THREADS=1 python benchmarks/speed.py " + " ".join(argv or sys.argv[1:])
    RESULTS.mkdir(exist_ok=True)
    out = {"command": command, "machine": machine, "rows": rows}
    (RESULTS / f"speed_{args.what}.json").write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
