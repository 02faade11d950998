"""Feature sets in the prior on breast_tcga: what an informed fit costs beside an uninformed one, and what happens
to each shipped set over training seeds.

Protocol: all samples, seeds 0, 1, 2, with and without ``pm.datasets.breast_tcga_feature_sets()`` (package defaults
otherwise): seconds per fit (set-up and training, ``time.perf_counter``), held-out criterion, factors kept; per set
over the seeds: the p-value of its start's test, in how many runs it is active (:func:`poems_mu.tl.active_factors`'s
default rule), the largest variance share its factor explains in a modality, members kept / dropped / added
(:func:`poems_mu.tl.refined_sets`), and η² of its factor with the PAM50 subtypes (reported, never used to choose
anything). The planted benchmark of the sets is ``feature_sets_planted.py``.

    OMP_NUM_THREADS=1 python benchmarks/accuracy/feature_sets_breast.py   # -> results/feature_sets_breast.{json,md}

``--quick``: one seed, 20 epochs (a pipeline check, into ``results/quick``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import pandas as pd

SEEDS = (0, 1, 2)
QUICK_TRAIN = {"max_epochs": 20, "n_epochs_kl_warmup": 5}


def breast(args) -> None:
    import poems_mu as pm

    prov = common.provenance(__file__, sys.argv[1:])
    seeds = args.seeds[:1] if args.quick else args.seeds
    train = QUICK_TRAIN if args.quick else {}
    sets = pm.datasets.breast_tcga_feature_sets()
    fits, per_set = [], []
    for seed in seeds:
        for informed in (True, False):
            mdata = pm.datasets.breast_tcga()
            kwargs = {"feature_sets": sets} if informed else {}
            model, wall = common.train_poems(mdata, seed, kwargs, train_kwargs=train)
            summary = model.training_summary_
            fits.append(
                {
                    "seed": seed,
                    "sets": informed,
                    "seconds": wall,
                    "factors": model.module.n_factors,
                    "elbo": summary["runs"][summary["chosen_restart"]]["validation_criterion"],
                }
            )
            if not informed:
                continue
            table = pm.tl.feature_set_summary(model)
            z = pd.DataFrame(model.get_latent_representation(), index=mdata.obs_names, columns=model.factor_names())
            labels = mdata.obs["subtype"]
            ok = labels.notna()
            zs = z.loc[ok, table.index]
            between = zs.groupby(labels[ok].astype(str).to_numpy()).transform("mean")
            table["eta2_subtype"] = (between.var() / zs.var()).fillna(0.0).to_numpy()
            table["r2_max"] = table[[c for c in table.columns if c.startswith("r2_")]].max(axis=1)
            per_set.append(table.assign(seed=seed).reset_index())
    fits, per_set = pd.DataFrame(fits), pd.concat(per_set, ignore_index=True)
    agg = per_set.groupby("set", sort=False).agg(
        active=("active", "sum"),
        r2_max=("r2_max", "mean"),
        members=("members", "first"),
        start_p=("start_p", "first"),
        kept=("kept", "mean"),
        dropped=("dropped", "mean"),
        added=("added", "mean"),
        eta2=("eta2_subtype", "mean"),
    )
    lines = [
        "# Feature sets in the prior: breast_tcga",
        "",
        f"All samples, seeds {', '.join(map(str, seeds))}; the 15 shipped sets "
        "(`pm.datasets.breast_tcga_feature_sets`).",
        "",
        "| fit | s per fit | factors | held-out criterion |",
        "|---|---|---|---|",
    ]
    for informed, g in fits.groupby("sets", sort=False):
        lines.append(
            f"| {'with sets' if informed else 'without sets'} | {g['seconds'].mean():.1f} ± {g['seconds'].std():.1f} | "
            f"{g['factors'].mean():.1f} | {g['elbo'].mean():.1f} ± {g['elbo'].std():.1f} |"
        )
    lines += [
        "",
        f"Per set, over the seeds: runs in which it is active (of {len(seeds)}), mean largest R² over the modalities, "
        "members kept / dropped / added (means), η² of its factor with the PAM50 subtype (reported only), and the "
        "p-value of the start's test (do its members co-vary more than random features? the set starts as their "
        "first principal component at p ≤ 0.05; the test does not depend on the seed).",
        "",
        "| set | start p | active | R² | members | kept | dropped | added | η² subtype |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in agg.iterrows():
        lines.append(
            f"| {name} | {r['start_p']:.3f} | {int(r['active'])} | {r['r2_max']:.3f} | {int(r['members'])} | "
            f"{r['kept']:.1f} | {r['dropped']:.1f} | {r['added']:.1f} | {r['eta2']:.3f} |"
        )
    out = Path(__file__).resolve().parents[1] / "results" / ("quick" if args.quick else "")
    common.write_results(
        out / "feature_sets_breast.json",
        {"fits": fits.to_dict(orient="records"), "sets": per_set.to_dict(orient="records")},
        provenance=prov,
        markdown="\n".join(lines),
    )
    print("\n".join(lines))


def main(argv=None) -> None:
    p = common.parser(__doc__, seeds=list(SEEDS))
    args = p.parse_args(argv)
    common.quiet()
    breast(args)


if __name__ == "__main__":
    main()
