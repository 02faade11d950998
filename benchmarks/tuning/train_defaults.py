"""Train POEMS with its defaults on the bundled cohorts and report what a user sees.

Per data set: epochs run, the epoch restored (best held-out criterion), wall time, the held-out criterion
(validation samples at their posterior means) and a Monte Carlo held-out ELBO (20 posterior draws), per modality the
share of |W| > 0.01 over all K columns and over the kept factors, the links (|W| > 0.01) per feature, the share of
exact zeros and of slab links (p* > 0.5), the mean θ over the kept factors, the slab share and θ once the E-step is
iterated to its fixed point on the returned W, the mean gate and the mean effective contribution; the factors kept.

    OMP_NUM_THREADS=1 python benchmarks/tuning/train_defaults.py [--seeds 0] [--datasets breast_tcga rosmap]
    OMP_NUM_THREADS=1 python benchmarks/tuning/train_defaults.py --quick   # breast_tcga, 20 epochs

Writes ``<out>/train_defaults.{json,md}`` (``--out``, default ``benchmarks/results``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np

import poems_mu as pm


def e_step_fixed_point(model, tol: float = 1e-9, max_iter: int = 10_000) -> dict[str, dict[str, float]]:
    """Per modality, the share of slab links (p* > 0.5, over all K columns as ``sparsity_summary``'s ``slab``) and
    the mean θ over the kept factors after the E-step is iterated on the returned W until θ stops moving, on a copy
    of the prior. A model returns the p* and θ of its last training step's E-step, one step per optimizer step."""
    import copy

    module = model.module
    kept = module.factor_index()
    out = {}
    for mod, prior, dec in zip(module.modalities, module.priors, module.decoders, strict=True):
        prior = copy.deepcopy(prior)
        for _ in range(max_iter):
            before = prior.theta.clone()
            prior.e_step(dec.W)
            if float((prior.theta - before).abs().max()) < tol:
                break
        out[mod] = {
            "slab": float((prior.p_star > 0.5).double().mean()),
            "theta": float(prior.theta.index_select(0, kept).double().mean()),
        }
    return out


def run(name: str, seed: int, train_kwargs=None) -> dict:
    mdata = getattr(pm.datasets, name)()
    model, wall = common.train_poems(mdata, seed, train_kwargs=train_kwargs)
    run_ = model.training_summary_["runs"][0]
    out = {
        "dataset": name,
        "seed": seed,
        "samples": mdata.n_obs,
        "epochs": len(model.history["elbo_train"]),
        "best_epoch (restored)": run_["best_epoch"],
        "wall_s": wall,
        "heldout_criterion (at posterior means)": run_["validation_criterion"],
        "heldout_elbo (20 draws)": common.heldout_elbo(model, mdata, model.validation_indices),
        "factors kept (of K)": f"{model.module.n_factors} of {model.module.n_latent}",
    }
    gates, contrib = model.get_gating_weights(), model.get_contributions()
    sparsity = model.sparsity_summary()
    fixed = e_step_fixed_point(model)
    theta = {m: float(stats["theta"]) for m, stats in model.module.sparsity_statistics().items()}
    for mod in model.modalities:
        observed = np.asarray(mdata.obsmap[mod]).ravel() > 0
        out[f"{mod}: |W| > 0.01"] = float(sparsity.loc[mod, "density"])
        out[f"{mod}: |W| > 0.01, kept factors"] = float(sparsity.loc[mod, "density_kept"])
        out[f"{mod}: links per feature"] = float(sparsity.loc[mod, "links_per_feature"])
        out[f"{mod}: exact zeros"] = float(sparsity.loc[mod, "zeros"])
        out[f"{mod}: slab (p* > 0.5)"] = float(sparsity.loc[mod, "slab"])
        out[f"{mod}: slab at the E-step's fixed point"] = fixed[mod]["slab"]
        out[f"{mod}: θ, kept factors"] = theta[mod]
        out[f"{mod}: θ at the E-step's fixed point"] = fixed[mod]["theta"]
        out[f"{mod}: mean gate"] = float(gates.loc[observed, mod].mean())
        out[f"{mod}: mean contribution"] = float(contrib.loc[observed, mod].mean())
    out["mean over modalities: |W| > 0.01"] = float(sparsity["density"].mean())
    out["mean over modalities: |W| > 0.01, kept factors"] = float(sparsity["density_kept"].mean())
    out["mean over modalities: links per feature"] = float(sparsity["links_per_feature"].mean())
    return out


def markdown(records: list[dict]) -> str:
    lines = ["# POEMS with default settings", ""]
    for res in records:
        lines += [f"## {res['dataset']} (seed {res['seed']})", "", "| quantity | value |", "|---|---|"]
        cells = {k.replace("|", "\\|"): v for k, v in res.items()}  # a | inside a cell ends it in markdown
        lines += [f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in cells.items()]
        lines.append("")
    lines.append(
        "Gates and contributions are averaged over the samples that have the modality; the validation samples "
        "are the default 20 %. Wall time: set-up + training."
    )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=[0])
    parser.add_argument("--datasets", nargs="+", default=["breast_tcga", "rosmap"])
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    common.quiet()
    train_kwargs = {"max_epochs": 20, "n_epochs_kl_warmup": 5} if args.quick else None
    datasets = args.datasets[:1] if args.quick else args.datasets
    records = []
    for name in datasets:
        for seed in args.seeds:
            records.append(run(name, seed, train_kwargs))
            print(records[-1], flush=True)
    payload = {"settings": {"quick": args.quick}, "records": records}
    common.write_results(args.out / "train_defaults.json", payload, provenance=prov, markdown=markdown(records))


if __name__ == "__main__":
    main()
