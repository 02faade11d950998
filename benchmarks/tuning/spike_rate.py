"""What a larger spike rate buys and costs with the factor penalty on: sparser loadings against held-out fit.

    OMP_NUM_THREADS=1 python benchmarks/tuning/spike_rate.py --workers 2
    OMP_NUM_THREADS=1 python benchmarks/tuning/spike_rate.py --quick      # two spike rates, 1 seed, 20 epochs

Not a tuning rule: the defaults (``lambda0`` = 15, ``lambda_factor`` = 3) are chosen by ``factor_prior.py``, whose
rule weighs the planted factor counts and the held-out criterion, not how sparse W is. Within the kept factors W is
not sparse at those defaults (``train_defaults.py``), and the spike rate ``lambda0`` is the knob a user turns for
sparser loadings. This script measures that knob with every other argument at the package default:
``lambda0`` in :data:`SPIKE_RATES`, ``lambda_factor`` = 3, the fits of ``factor_prior.py`` (``run``: planted data with
4 and 8 correlated, cluster-structured factors and a near-noise modality, data seed = training seed; breast_tcga and
rosmap with all samples, each seed its own validation split, the same for every spike rate).

Reported per data set and spike rate, over the seeds: the factors kept; W's links (|w| > 0.01) per feature and their
share within the kept factors (means over the modalities); on planted data the grouped AUROC of |W| against the
planted supports; the held-out criterion (per-sample negative ELBO of the validation samples at the posterior means,
lower is better) and its difference to ``lambda0`` = 15 paired by seed, with the number of seeds on which it is
worse. No label is used.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tuning/: factor_prior's fits

import _common as common
import numpy as np
import pandas as pd
from factor_prior import ALL_DATA, _job

SPIKE_RATES = (15.0, 20.0, 30.0, 40.0)
LAMBDA_FACTOR = 3.0
BASE = 15.0


def summarise(df: pd.DataFrame) -> list[dict]:
    """One row per data set and spike rate: means over seeds and the held-out difference to :data:`BASE` by seed."""
    base = df[df["lambda0"] == BASE].set_index(["data", "seed"])["elbo"]
    rows = []
    for (data, lam), g in df.groupby(["data", "lambda0"], sort=False):
        diff = (g.set_index(["data", "seed"])["elbo"] - base).dropna()
        row = {
            "data": data,
            "lambda0": float(lam),
            "seeds": int(len(g)),
            "kept": float(g["kept"].mean()),
            "kept_range": [int(g["kept"].min()), int(g["kept"].max())],
            "links_per_feature": float(g["links_per_feature"].mean()),
            "density_kept": float(g["density_kept"].mean()),
            "elbo": float(g["elbo"].mean()),
            "elbo_diff": float(diff.mean()) if len(diff) else float("nan"),
            "worse_on": int((diff > 0).sum()),
            "paired": int(len(diff)),
        }
        if "grouped_auroc" in g and g["grouped_auroc"].notna().any():
            row["grouped_auroc"] = float(g["grouped_auroc"].mean())
        rows.append(row)
    return rows


def markdown(rows: list[dict], seeds) -> str:
    lines = [
        "# The spike rate with the factor penalty on (label-free)",
        "",
        f"λ_f = {LAMBDA_FACTOR:g}, every other argument at the package default; seeds {', '.join(map(str, seeds))}; "
        "means over seeds; the protocol: the script's docstring.",
        "",
        "| data | λ0 | factors kept | links per feature | share within kept factors | grouped AUROC | held-out | "
        f"paired difference to λ0 = {BASE:g} (worse on) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        auroc = f"{r['grouped_auroc']:.3f}" if "grouped_auroc" in r else "–"
        diff = "–" if r["lambda0"] == BASE else f"{r['elbo_diff']:+.2f} ({r['worse_on']} of {r['paired']})"
        lines.append(
            f"| {r['data']} | {r['lambda0']:g} | {r['kept']:.1f} ({r['kept_range'][0]}–{r['kept_range'][1]}) | "
            f"{r['links_per_feature']:.2f} | {r['density_kept']:.3f} | {auroc} | {r['elbo']:.1f} | {diff} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=[0, 1, 2, 3, 4], workers=True)
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    rates, train_kwargs = (
        (SPIKE_RATES[:2], {"max_epochs": 20, "n_epochs_kl_warmup": 5}) if args.quick else (SPIKE_RATES, {})
    )
    jobs = [
        ((lam, LAMBDA_FACTOR), data, seed, train_kwargs) for lam in rates for data in ALL_DATA for seed in args.seeds
    ]
    df = pd.DataFrame(common.map_jobs(_job, jobs, args.workers))
    rows = summarise(df)
    text = markdown(rows, args.seeds)
    payload = {
        "settings": {"spike_rates": list(rates), "lambda_factor": LAMBDA_FACTOR, "seeds": args.seeds},
        "records": df.replace({np.nan: None}).to_dict("records"),
        "summary": rows,
    }
    common.write_results(args.out / "spike_rate.json", payload, provenance=prov, markdown=text)
    print(text)


if __name__ == "__main__":
    main()
