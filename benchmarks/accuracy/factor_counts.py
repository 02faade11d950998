"""How many factors each method keeps when it decides the number itself, on planted and real cohorts.

    OMP_NUM_THREADS=1 python benchmarks/accuracy/factor_counts.py --workers 2
    OMP_NUM_THREADS=1 python benchmarks/accuracy/factor_counts.py --quick    # 1 seed, 20 epochs (a pipeline check)

The factors issue asks POEMS to keep at most 15 factors on breast_tcga; MOFA+ and MOFA-FLEX in the subtyping
benchmark are given 15 by hand. This script puts the numbers side by side where every method gets the same cap:

- **POEMS** at the package defaults (cap 32): the components that parallel analysis finds above noise in the joint
  PCA (``n_above_noise``, the factors that start) and the factors kept when training ends.
- **MOFA+** (mofapy2, :func:`_baselines.fit_mofa`: views z-scored, ARD and spike-and-slab weights, a factor dropped
  once it explains no more than 0.1 % of every view's variance): the factors kept from a start of 15 (the subtyping
  benchmark's setting) and of 32 (POEMS's cap).
- **POEMS started at MOFA+'s count**: the same package defaults, with as many free factors started from the joint PCA
  as MOFA+ kept from 32 on the same data and seed (the benchmarks' ``prepare`` hook with the package's start,
  :func:`factor_start.ablation_start`), to see what a smaller count gains or costs: the factors kept, the held-out
  criterion of both POEMS runs and, on the bundled cohorts, the reproducibility of their kept factors across seeds.

MOFA-FLEX's MOFA preset has no rule that drops a factor (its horseshoe shrinks weights; the number stays the one
asked for), so it has no row here.

Data: planted (``make_structured``, 4 and 8 correlated factors, a near-noise modality, 15 % of samples missing one
modality; data seed = training seed), breast_tcga and rosmap with every sample. Seeds 0–4 by default. No labels are
used.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tuning"))  # factor_start.ablation_start

import _common as common
import numpy as np
import pandas as pd

CAPS = (15, 32)
COLS = ["poems_above_noise", "poems_kept", *[f"mofa_kept_{c}" for c in CAPS], "poems_at_mofa_kept"]
REAL = ("breast_tcga", "rosmap")


def _data(name: str, seed: int):
    if name.startswith("planted"):
        return common.planted("structured", seed, n_factors=int(name.split("_")[1]))[0]
    import poems_mu as pm

    return getattr(pm.datasets, name)()


def run(job) -> list[dict]:
    """One data set, every seed: the counts of every method, the held-out criterion of both POEMS runs and, on the
    bundled cohorts (one data set for every seed), the reproducibility of their kept factors."""
    name, seeds, train_kwargs = job
    import factors as bench
    from _baselines import fit_mofa, zscored_views
    from factor_start import ablation_start

    common.quiet()
    records, models = [], {"default": [], "at_mofa": []}
    for seed in seeds:
        mdata = _data(name, seed)
        record = {"data": name, "seed": seed}
        mask = np.ones(mdata.n_obs, dtype=bool)
        views = zscored_views(mdata, mask)
        for cap in CAPS:
            mofa = fit_mofa(views, mask, n_factors=cap, seed=seed, max_iter=50 if train_kwargs else 1000)
            record[f"mofa_kept_{cap}"] = int(mofa.nodes["Z"].getExpectation().shape[1])
        for variant, kwargs, prepare in (
            ("default", {}, None),
            (
                "at_mofa",
                {"factor_start": "random"},
                lambda model, n=record[f"mofa_kept_{CAPS[-1]}"]: ablation_start(model, n=n),
            ),
        ):
            model, _ = common.train_poems(_data(name, seed), seed, kwargs, train_kwargs=train_kwargs, prepare=prepare)
            summary = model.training_summary_
            record[f"elbo_{variant}"] = summary["runs"][summary["chosen_restart"]]["validation_criterion"]
            if variant == "default":
                record["poems_above_noise"] = model._free_start.n_above_noise
                record["poems_kept"] = model.module.n_factors
            else:
                record["poems_at_mofa_kept"] = model.module.n_factors
            models[variant].append(model)
        print(json.dumps(record), flush=True)
        records.append(record)
    if name in REAL and len(seeds) > 1:
        for record in records:
            for variant, fitted in models.items():
                record[f"repro_{variant}"] = bench.reproducibility(fitted)
    return records


def main(argv=None) -> None:
    p = common.parser(__doc__, seeds=[0, 1, 2, 3, 4], workers=True)
    p.add_argument("--data", nargs="+", default=["planted_4", "planted_8", "breast_tcga", "rosmap"])
    args = p.parse_args(argv)
    prov = common.provenance(__file__, argv)
    train_kwargs = {"max_epochs": 20, "n_epochs_kl_warmup": 5} if args.quick else {}
    jobs = [(name, args.seeds, train_kwargs) for name in args.data]
    df = pd.DataFrame([r for records in common.map_jobs(run, jobs, args.workers) for r in records])
    lines = common.table(df, ["data"], COLS, fmt=".1f", count=True)
    held = common.table(df, ["data"], ["elbo_default", "elbo_at_mofa"], fmt=".1f")
    repro = ["| data | repro_default | repro_at_mofa |", "|---|---|---|"]
    if "repro_default" in df:
        for name, g in df.dropna(subset=["repro_default"]).groupby("data", sort=False):
            repro.append(f"| {name} | {g['repro_default'].iloc[0]:.3f} | {g['repro_at_mofa'].iloc[0]:.3f} |")
    text = "\n".join(
        [
            "# How many factors each method keeps",
            "",
            f"Seeds {', '.join(map(str, args.seeds))}; mean ± SD over seeds; every sample. POEMS: package defaults "
            "(cap 32), `poems_above_noise` the factors its parallel analysis starts, `poems_kept` those kept when "
            f"training ends. MOFA+: factors kept from a start of {CAPS[0]} and of {CAPS[1]} (dropR2 0.001). "
            f"`poems_at_mofa_kept`: POEMS with as many free factors started as MOFA+ kept from {CAPS[-1]} (same seed). "
            "Planted: the number after `planted_` is the number of true factors.",
            "",
            *lines,
            "",
            "Per seed: "
            + "; ".join(
                f"{d}: " + ", ".join(f"{'/'.join(str(int(r[c])) for c in COLS)}" for _, r in g.iterrows())
                for d, g in df.groupby("data", sort=False)
            )
            + f" ({' / '.join(COLS)})",
            "",
            "The two POEMS runs: held-out criterion (per sample, lower is better; each seed its own validation split) "
            "and, on the bundled cohorts, the reproducibility of the kept factors across the seeds.",
            "",
            *held,
            "",
            *repro,
        ]
    )
    payload = {"settings": {"quick": args.quick, "caps": list(CAPS)}, "records": df.to_dict("records")}
    common.write_results(args.out / "factor_counts.json", payload, provenance=prov, markdown=text)
    print(text)


if __name__ == "__main__":
    main()
