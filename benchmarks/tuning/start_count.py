"""What the number of started factors buys and costs: the held-out criterion and the reproducibility of the kept
factors as the PCA start begins with fewer components than parallel analysis finds.

    OMP_NUM_THREADS=1 python benchmarks/tuning/start_count.py --workers 2
    OMP_NUM_THREADS=1 python benchmarks/tuning/start_count.py --quick        # 1 seed, 20 epochs (a pipeline check)

For each bundled cohort (every sample) and training seed, POEMS at the package defaults, and again with the free
factors started at ``n`` = PA − 9, PA − 6, PA − 3 components of the same joint PCA (PA: parallel analysis's count,
the default; the benchmarks' ``prepare`` hook with the model's start, ``factor_start.ablation_start``). Each seed
draws its own validation split, the same for every ``n`` of that seed, so the held-out criterion (per sample, lower
is better) is compared pairwise: per ``n``, the mean over seeds of its difference to the default and that mean's
standard error. Reproducibility: ``tl.factor_stability`` of the kept factors over the seeds. No labels are used.

The rule this measures for the factors issue (at most 15 factors on breast_tcga without a worse held-out
criterion) is written here before the first run: the smallest ``n`` whose mean paired difference is within one
standard error of 0 (or below it). The script reports it; it does not change the package.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
sys.path.insert(0, str(Path(__file__).resolve().parent))  # factor_start.ablation_start
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "accuracy"))  # factors.reproducibility

import _common as common
import numpy as np

DATASETS = ("breast_tcga", "rosmap")
STEPS = (9, 6, 3)


def run(job) -> list[dict]:
    """One cohort and one start (``step`` fewer components than parallel analysis finds; ``None``: the default) over
    every seed; the records, with the reproducibility of the kept factors."""
    data, step, seeds, train_kwargs = job
    import factors as bench
    from factor_start import ablation_start

    import poems_mu as pm

    common.quiet()
    if step is None:
        kwargs, prepare = {}, None
    else:
        kwargs, prepare = {"factor_start": "random"}, lambda model: ablation_start(model, fewer=step)
    records, models = [], []
    for seed in seeds:
        model, _ = common.train_poems(
            getattr(pm.datasets, data)(), seed, kwargs, train_kwargs=train_kwargs, prepare=prepare
        )
        summary = model.training_summary_
        records.append(
            {
                "data": data,
                "seed": seed,
                "step": step,
                "started": int(model._free_start.scores.shape[1]),
                "kept": int(model.module.n_factors),
                "elbo": summary["runs"][summary["chosen_restart"]]["validation_criterion"],
            }
        )
        print(json.dumps(records[-1]), flush=True)
        models.append(model)
    value = bench.reproducibility(models) if len(models) > 1 else float("nan")
    return [{**r, "reproducibility": value} for r in records]


def main(argv=None) -> None:
    p = common.parser(__doc__, seeds=[0, 1, 2, 3, 4], workers=True)
    args = p.parse_args(argv)
    prov = common.provenance(__file__, argv)
    train_kwargs = {"max_epochs": 20, "n_epochs_kl_warmup": 5} if args.quick else {}
    jobs = [(d, step, args.seeds, train_kwargs) for d in DATASETS for step in (None, *STEPS)]
    records = [r for part in common.map_jobs(run, jobs, args.workers) for r in part]
    lines = [
        "| data | start | started | kept | held-out | paired difference to the default (SE) | reproducibility |",
        "|---|---|---|---|---|---|---|",
    ]
    chosen = {}
    for data in DATASETS:
        default = {r["seed"]: r["elbo"] for r in records if r["data"] == data and r["step"] is None}
        within = []
        for step in (None, *STEPS):
            rs = [r for r in records if r["data"] == data and r["step"] == step]
            started = [r["started"] for r in rs]
            kept = [r["kept"] for r in rs]
            diff = np.array([r["elbo"] - default[r["seed"]] for r in rs])
            se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else float("nan")
            if step is not None and diff.mean() <= se:
                within.append((float(np.mean(started)), step))
            name = "default (parallel analysis)" if step is None else f"parallel analysis − {step}"
            cell = "–" if step is None else f"{diff.mean():+.1f} ({se:.1f})"
            lines.append(
                f"| {data} | {name} | {np.mean(started):.1f} | {np.mean(kept):.1f} ({min(kept)}–{max(kept)}) | "
                f"{np.mean([r['elbo'] for r in rs]):.1f} | {cell} | {rs[0]['reproducibility']:.3f} |"
            )
        chosen[data] = min(within)[0] if within else None
    text = "\n".join(
        [
            "# The number of started factors",
            "",
            f"Every sample, seeds {', '.join(map(str, args.seeds))}; protocol and rule: the script's docstring.",
            "",
            *lines,
            "",
            "The rule's choice (mean started count of the smallest start within one SE of the default): "
            + "; ".join(f"{d}: {'none' if c is None else f'{c:.1f}'}" for d, c in chosen.items()),
        ]
    )
    payload = {"settings": {"quick": args.quick, "steps": list(STEPS)}, "records": records, "chosen": chosen}
    common.write_results(args.out / "start_count.json", payload, provenance=prov, markdown=text)
    print(text)


if __name__ == "__main__":
    main()
