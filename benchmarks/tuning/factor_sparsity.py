"""Sparsity within the kept factors, and whether it makes breast_tcga's factors come back from seed to seed.

    OMP_NUM_THREADS=1 python benchmarks/tuning/factor_sparsity.py                      # the grid, seeds 0-4
    OMP_NUM_THREADS=1 python benchmarks/tuning/factor_sparsity.py --grid 10,3 40,3     # chosen configurations
    OMP_NUM_THREADS=1 python benchmarks/tuning/factor_sparsity.py --quick              # 1 configuration, 2 seeds

With the factor penalty (``lambda_factor``) the model keeps 15–19 factors on breast_tcga, and W is dense within them
(about 60 % of their links above 0.01, 11 links per feature at ``lambda0 = 10``): the spike-and-slab prior no longer
pins the factors' rotation, and their reproducibility across seeds is 0.59. This grid raises the spike rate
``lambda0`` with the factor penalty on, and measures per configuration, on breast_tcga (all samples, each seed its own
validation split, the same for every configuration): the factors kept, W's density within them and links per
feature, the held-out criterion (per-sample negative ELBO of the validation samples, lower is better), the
reproducibility of the kept factors over the seeds (``tl.factor_stability``, the first seed the reference), and, for
the record only (no choice uses labels), the k-means NMI of the latents against the PAM50 subtypes (mean over the
evaluation seeds of ``tl.evaluate_subtyping``) and its SD over training seeds. ``--planted`` adds the planted
counts of ``accuracy/factors.py`` (4 and 8 true factors) for each configuration.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import pandas as pd

#: (lambda0, lambda_factor); (10, 3) are the package defaults
GRID = [(10.0, 3.0), (20.0, 3.0), (40.0, 3.0), (80.0, 3.0)]


#: the obs column of labels each data set is scored against (reported only)
LABELS = {"breast_tcga": "subtype", "rosmap": "label"}


def data_run(data: str, config, seed: int, train_kwargs: dict):
    import poems_mu as pm

    mdata = getattr(pm.datasets, data)()
    model, wall = common.train_poems(
        mdata, seed, {"lambda0": config[0], "lambda_factor": config[1]}, train_kwargs=train_kwargs
    )
    summary = model.training_summary_
    sparsity = model.sparsity_summary()
    scores = pm.tl.evaluate_subtyping(model.get_latent_representation(), labels=mdata.obs[LABELS[data]].to_numpy())
    rec = {
        "data": data,
        "lambda0": config[0],
        "lambda_factor": config[1],
        "seed": seed,
        "kept": model.module.n_factors,
        "density_kept": float(sparsity["density_kept"].mean()),
        "links_per_feature": float(sparsity["links_per_feature"].mean()),
        "elbo": summary["runs"][summary["chosen_restart"]]["validation_criterion"],
        "nmi": float(scores.loc[scores["metric"] == "kmeans_nmi", "value"].mean()),
        **common.fit_info(model, wall),
    }
    return rec, model


def planted_counts(config, train_kwargs: dict, seeds) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "accuracy"))
    from factors import planted_run

    out = {}
    for k in (4, 8):
        kept = [
            planted_run(k, s, s, {"lambda0": config[0], "lambda_factor": config[1]}, train_kwargs)[0]["kept"]
            for s in seeds
        ]
        out[f"planted_{k}"] = kept
    return out


def main(argv=None) -> None:
    import poems_mu as pm

    p = common.parser(__doc__, seeds=[0, 1, 2, 3, 4])
    p.add_argument("--grid", nargs="+", default=None, help="configurations lambda0,lambda_factor")
    p.add_argument("--planted", action="store_true", help="also the planted counts (4 and 8 true factors)")
    p.add_argument("--data", nargs="+", default=["breast_tcga"], choices=sorted(LABELS), help="real data sets")
    args = p.parse_args(argv)
    prov = common.provenance(__file__, argv)
    common.quiet()
    grid = [tuple(float(v) for v in g.split(",")) for g in args.grid] if args.grid else GRID
    train_kwargs = {}
    if args.quick:
        grid, train_kwargs, args.seeds = grid[:1], {"max_epochs": 20, "n_epochs_kl_warmup": 5}, [0, 1]
    recs, summary = [], []
    for config in grid:
        for data in args.data:
            models = []
            for seed in args.seeds:
                rec, model = data_run(data, config, seed, train_kwargs)
                recs.append(rec)
                models.append(model)
                print(json.dumps(rec, default=float), flush=True)
            factors, _ = pm.tl.factor_stability(models)
            row = {
                "data": data,
                "lambda0": config[0],
                "lambda_factor": config[1],
                "reproducibility": float(factors["reproducibility"].mean()),
                "reproducible_factors": int((factors["reproducibility"] >= 0.8).sum()),
            }
            if args.planted and data == args.data[0]:  # the planted counts once per configuration
                row.update(planted_counts(config, train_kwargs, args.seeds[:3]))
            summary.append(row)
            print(json.dumps(row, default=float), flush=True)
    df = pd.DataFrame(recs)
    by = ["data", "lambda0", "lambda_factor"]
    agg = df.groupby(by).agg(
        kept=("kept", "mean"),
        kept_range=("kept", lambda s: f"{s.min()}–{s.max()}"),
        density_kept=("density_kept", "mean"),
        links_per_feature=("links_per_feature", "mean"),
        elbo=("elbo", "mean"),
        elbo_sd=("elbo", "std"),
        nmi=("nmi", "mean"),
        nmi_sd=("nmi", "std"),
        epochs=("epochs", "mean"),
        wall_s=("wall_s", "mean"),
    )
    agg = agg.join(pd.DataFrame(summary).set_index(by))
    lines = [
        "# Sparsity within the kept factors and reproducibility",
        "",
        f"Training seeds {', '.join(map(str, args.seeds))}, all samples; means over seeds (elbo and NMI ± SD over "
        "seeds); reproducibility: mean over the first seed's kept factors of `tl.factor_stability`; NMI is reported, "
        "not used.",
        "",
        "| data | λ0 | λ_f | kept | links per feature | \\|W\\| > 0.01 within kept | held-out criterion "
        "| reproducibility | factors ≥ 0.8 | k-means NMI | epochs | s per fit |"
        + (" planted 4 / 8 kept |" if args.planted else ""),
        "|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if args.planted else ""),
    ]
    for (data, l0, lf), r in agg.iterrows():
        line = (
            f"| {data} | {l0:g} | {lf:g} | {r['kept']:.1f} ({r['kept_range']}) | {r['links_per_feature']:.1f} | "
            f"{r['density_kept']:.3f} | {r['elbo']:.1f} ± {r['elbo_sd']:.1f} | {r['reproducibility']:.2f} | "
            f"{int(r['reproducible_factors'])} | {r['nmi']:.3f} ± {r['nmi_sd']:.3f} | {r['epochs']:.0f} | "
            f"{r['wall_s']:.0f} |"
        )
        if args.planted:
            counts = r["planted_4"], r["planted_8"]
            line += f" {counts[0]} / {counts[1]} |" if isinstance(counts[0], list) else " |"
        lines.append(line)
    p_name = "factor_sparsity" + ("" if args.data == ["breast_tcga"] else "_" + "_".join(args.data))
    name = p_name + "_quick" if args.quick else p_name
    out = Path(__file__).resolve().parents[1] / "results" / ("quick" if args.quick else "")
    common.write_results(
        out / f"{name}.json",
        {"runs": recs, "summary": summary},
        provenance=prov,
        markdown="\n".join(lines),
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
