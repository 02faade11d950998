"""When the spike-and-slab prior starts to act: the sparsity warm-up's length against the KL warm-up's.

    OMP_NUM_THREADS=1 python benchmarks/tuning/sparsity_onset.py --workers 2
    OMP_NUM_THREADS=1 python benchmarks/tuning/sparsity_onset.py --quick      # two onsets, 1 seed, 20 epochs

The prior on W reaches its full strength, and its E-step (the slab probabilities p* and the shares θ_k) first runs,
at the end of the sparsity warm-up (``plan_kwargs["n_epochs_sparsity_warmup"]``; by default the KL warm-up's 100
epochs). The best held-out state is looked for only after both warm-ups. On breast_tcga that state is the first or
second epoch after the warm-up on every seed (``results/subtyping.md``: 151 epochs = 101 + patience 50), a step or
two after the first E-step (one epoch is one step with full batches): the penalties have acted on the model that is
kept at partial strength only, so its factor count is the PCA start's (parallel analysis's 22) less the columns the
warm-up emptied. This script measures what an earlier onset does, with the KL warm-up (and so the epoch from which
the best state is looked for) unchanged.

Each onset of :data:`ONSETS` is run with the package's training schedule (``train_schedule.py``'s ``lr 0.005,
warm-up 100, patience 50, full batch``) and every other argument at the package default, per seed, on
``train_schedule.py``'s data and protocol: the planted sets (factors kept, grouped AUROC), breast_tcga and rosmap
(the seed's split: the held-out criterion of the 20 % test part, the factors kept, the share of W's entries in the
slab (p* > 0.5) at the restored state, the restored epoch, the CKA between the seeds' embeddings) and the two
constraints (the planted batch's 10-NN accuracy, the weak feature sets' AUROC). No label is used.

Rule: ``train_schedule.py``'s, with the package's onset (100) as the base the feature sets and the agreement are held
to: among the onsets that keep the planted counts in range with a grouped AUROC of at least 0.95, leave the batch out
of the latent, recover the sets at least as well as the default and make the seeds agree at least as much, the one
with the lowest test criterion averaged over the two cohorts. The script reports it; it does not change the package.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tuning/: train_schedule's protocol

import _common as common
import pandas as pd
import train_schedule as ts

#: the package's schedule, in train_schedule's grid
SCHEDULE = "lr 0.005, warm-up 100, patience 50, full batch"
#: epochs of the sparsity warm-up; the first is the package's (the KL warm-up's length), the rule's base
ONSETS = (100, 75, 50, 25)
QUICK_ONSETS = (5, 2)  # with the quick runs' 5-epoch KL warm-up


def arm(onset: int, kl_warmup: int) -> str:
    """The name of an onset in the records and tables; the one at the KL warm-up's length is the default."""
    return f"prior from epoch {onset}" + (" (default)" if onset == kl_warmup else "")


def _job(job: tuple) -> dict:
    onset, data, seed, train_kwargs, quick = job
    train_kwargs = {**train_kwargs, "plan_kwargs": {"n_epochs_sparsity_warmup": onset}}
    rec = ts._job((SCHEDULE, data, seed, train_kwargs, quick, {}))
    kl_warmup = train_kwargs.get("n_epochs_kl_warmup", ts.SCHEDULES[SCHEDULE]["n_epochs_kl_warmup"])
    return {**rec, "schedule": arm(onset, kl_warmup), "onset": onset}


def markdown(summary: pd.DataFrame, base: str, chosen: str | None, seeds) -> str:
    lines = [
        "# When the spike-and-slab prior starts to act (label-free)",
        "",
        f"The package's schedule and prior (λ0 = {ts.PRIOR[0]:g}, λ_f = {ts.PRIOR[1]:g}), the sparsity warm-up "
        f"shortened; seeds {', '.join(map(str, seeds))}; means over seeds; protocol and rule: the script's "
        "docstring. *Test*: held-out criterion of the 20 % of samples training never saw (lower is better); "
        "*paired*: its difference to the default onset, seed by seed, and on how many seeds it is lower; *slab*: "
        "share of W's entries with p* > 0.5 at the restored state; *restored*: the epoch whose state was kept.",
        "",
        "| onset | planted kept (4 / 8), in range | AUROC (4 / 8) | data | test | paired (better on) | kept | slab | "
        "restored | CKA |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for _, r in summary.iterrows():
        lines += ts.cohort_rows(
            r,
            lambda data, r=r: (
                f"{r[f'{data}: kept']:.1f} | {r[f'{data}: slab']:.3f} | "
                f"{r[f'{data}: best epoch']:.0f} | {r[f'{data}: cka']:.3f}"
            ),
        )
    lines += ts.constraint_lines(summary, base, "onset", chosen)
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=[0, 1, 2, 3, 4], workers=True)
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    onsets, train_kwargs = (QUICK_ONSETS, ts.QUICK_TRAIN) if args.quick else (ONSETS, {})
    base = arm(onsets[0], onsets[0])
    jobs = [
        (onset, data, seed, train_kwargs, args.quick) for onset in onsets for data in ts.JOB_DATA for seed in args.seeds
    ]
    df, summary, chosen = ts.run_rule(_job, jobs, args.workers, base)
    text = markdown(summary, base, chosen, args.seeds)
    settings = {"schedule": ts.SCHEDULES[SCHEDULE], "onsets": list(onsets), "base": base, "seeds": args.seeds}
    payload = ts.payload(df, summary, chosen, settings, base)
    common.write_results(args.out / "sparsity_onset.json", payload, provenance=prov, markdown=text)
    print(text)


if __name__ == "__main__":
    main()
