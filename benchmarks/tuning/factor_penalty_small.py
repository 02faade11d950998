"""Does the factor penalty empty every factor of a small cohort with weak links?

The planted data of the feature-set benchmark (``make_annotated``, 6 factors, Gaussian modalities ``a`` and ``b``,
no sets given) at its default (300 samples, link weights ±U(0.4, 0.8)) and at ``--weak`` of
``accuracy/feature_sets_planted.py`` (150 samples, ±U(0.3, 0.6)); POEMS without sets at the package defaults but
``lambda_factor`` (3, the default; 1; 0), data seeds 0-2, each model trained with the data seed. Per fit: the grouped
support AUROC of the 6 true factors over ``a`` and ``b`` (0.5 where no learned factor matches a true one), the factors
kept, links (``|W| > 0.01``) and epochs. Measured, not used to choose anything.

    OMP_NUM_THREADS=1 python benchmarks/tuning/factor_penalty_small.py   # -> results/factor_penalty_small.{json,md}

``--quick``: seed 0, 20 epochs (a pipeline check, into ``results/quick``).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common

import _common as common
import numpy as np
import pandas as pd

SEEDS = (0, 1, 2)
LAMBDA_FACTOR = (3.0, 1.0, 0.0)
#: the small cohort with weak links (``--weak`` of ``accuracy/feature_sets_planted.py``)
WEAK = {"n": 150, "weight_range": (0.3, 0.6)}
DATA = {"300 samples, ±U(0.4, 0.8)": {}, "150 samples, ±U(0.3, 0.6)": WEAK}
QUICK_TRAIN = {"max_epochs": 20, "n_epochs_kl_warmup": 5}
MODS = ("a", "b")


def fit(data_kwargs: dict, seed: int, model_kwargs: dict, train, prepare=None) -> dict:
    """One model on ``make_annotated(seed, **data_kwargs)`` (no sets given); ``prepare(model)`` runs before training."""
    from poems_mu.datasets._synthetic import grouped_auroc
    from poems_mu.datasets._synthetic_sets import make_annotated

    d = make_annotated(seed, **data_kwargs)
    model, wall = common.train_poems(d.mdata, seed, model_kwargs, train_kwargs=train, prepare=prepare)
    loadings = {m: model.get_loadings(m).to_numpy() for m in MODS}
    auroc, _ = grouped_auroc(d.z, model.get_latent_representation(), loadings, d.supports, MODS)
    w = np.concatenate(list(loadings.values()))
    return {
        "grouped_auroc": float(auroc),
        "factors": int(model.module.n_factors),
        "links": int((np.abs(w) > 0.01).sum()),
        "epochs": len(model.history["elbo_train"]),
    }


def main(argv=None) -> None:
    p = common.parser(__doc__, seeds=list(SEEDS))
    args = p.parse_args(argv)
    prov = common.provenance(__file__, argv)
    common.quiet()
    seeds = args.seeds[:1] if args.quick else args.seeds
    train = QUICK_TRAIN if args.quick else None
    recs = [
        {"data": name, "lambda_factor": lf, "seed": seed} | fit(kwargs, seed, {"lambda_factor": lf}, train)
        for name, kwargs in DATA.items()
        for lf in LAMBDA_FACTOR
        for seed in seeds
    ]
    df = pd.DataFrame(recs)
    lines = [
        "# The factor penalty on a small cohort with weak links",
        "",
        f"POEMS without sets on `make_annotated` (6 factors), package defaults but `lambda_factor`; data seeds "
        f"{', '.join(map(str, seeds))}; per seed. Protocol in the script's docstring.",
        "",
        "| data | lambda_factor | grouped AUROC | factors kept | links (abs W > 0.01) | epochs |",
        "|---|---|---|---|---|---|",
    ]
    for (name, lf), g in df.groupby(["data", "lambda_factor"], sort=False):
        cells = [", ".join(f"{v:.3f}" for v in g["grouped_auroc"])]
        cells += [", ".join(str(int(v)) for v in g[c]) for c in ("factors", "links", "epochs")]
        lines.append(f"| {name} | {lf:g} | " + " | ".join(cells) + " |")
    markdown = "\n".join(lines)
    out = args.out / "factor_penalty_small.json"
    common.write_results(
        out, {"settings": {"seeds": seeds, "data": DATA}, "runs": recs}, provenance=prov, markdown=markdown
    )
    print(markdown)


if __name__ == "__main__":
    main()
