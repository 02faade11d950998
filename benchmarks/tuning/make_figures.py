"""Train POEMS on breast_tcga with the defaults and draw every pm.pl plot, with the numbers behind them.

The figures go to ``--figures`` (default ``benchmarks/results/figures/``, not committed: no docs page uses them).

Usage::

    OMP_NUM_THREADS=1 python benchmarks/tuning/make_figures.py [--figures DIR] [--seeds 0] [--max-epochs 500]
    OMP_NUM_THREADS=1 python benchmarks/tuning/make_figures.py --quick --figures /tmp/figures   # 20 epochs

The numbers (the variance-explained table, the factor–subtype associations, the top-10 features per modality of the
two factors most associated with subtype, the FDR-significant cross-omic pairs) are printed and written to
``<out>/breast_interpretation.{json,md}`` (``--out``, default ``benchmarks/results``).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import matplotlib
import pandas as pd

import poems_mu as pm

matplotlib.use("Agg")


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=[0])
    parser.add_argument(
        "--figures", type=Path, default=common.ROOT / "benchmarks" / "results" / "figures", help="figure folder"
    )
    parser.add_argument("--max-epochs", type=int, default=500)
    parser.add_argument("--fdr", type=float, default=0.05)
    parser.add_argument("--n-top", type=int, default=50)
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    common.quiet()
    args.figures.mkdir(parents=True, exist_ok=True)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        info = draw(args, 20 if args.quick else args.max_epochs)
    text = printed.getvalue()
    print(text)
    payload = {"settings": {"seed": args.seeds[0], "max_epochs": args.max_epochs, "quick": args.quick}, **info}
    markdown = "# breast_tcga with the defaults: the numbers behind the figures\n\n```\n" + text + "```\n"
    common.write_results(args.out / "breast_interpretation.json", payload, provenance=prov, markdown=markdown)


def draw(args, max_epochs: int) -> dict:
    """Train, print the numbers, save the figures; returns the training's epochs and seconds."""
    mdata = pm.datasets.breast_tcga()
    model, wall = common.train_poems(mdata, args.seeds[0], train_kwargs={"max_epochs": max_epochs})
    n_epochs = len(model.history["elbo_per_sample_validation"])
    print(f"trained {n_epochs} epochs in {wall:.0f} s: {model}")
    model.store_results(overwrite=True)

    # --- numbers -------------------------------------------------------------------------------------------
    r2 = pm.tl.variance_explained(model, store=True)  # pl.variance_explained(mdata) reads it below
    wide = r2.pivot(index="modality", columns="factor", values="r2").loc[model.modalities]
    wide = wide[model.factor_names() + ["total"]]
    print("\nVariance explained (R², leave-one-factor-out; 'total' = full model):")
    print(wide.round(3).T.to_string())

    assoc = pm.tl.factor_associations(mdata, "subtype")
    print("\nFactor–subtype association (Kruskal–Wallis, BH):")
    print(assoc.head(8).to_string(index=False))
    top2 = assoc["factor"].head(2).tolist()
    top = pm.tl.top_features(model, factor=top2, n=10)
    print(f"\nTop-10 features per modality of the two factors most associated with subtype ({top2}):")
    for (mod, fac), sub in top.groupby(["modality", "factor"], sort=False):
        items = [f"{r.feature}({r.effective_signed:+.2f})" for r in sub.itertuples()]  # signed effective loading
        print(f"  {mod:8s} {fac:10s} " + ", ".join(items))

    cross = pm.tl.cross_omic_associations(model, fdr=args.fdr, n_top=args.n_top)
    print(
        f"\nCross-omic associations (n_top={args.n_top}, FDR {args.fdr}): {len(cross)} pairs tested, "
        f"{int(cross['significant'].sum())} significant"
    )
    print(cross.groupby(["modality_a", "modality_b"])["significant"].agg(["size", "sum"]).to_string())
    print(cross[cross["significant"]].head(10).to_string(index=False))

    maps = pm.tl.subtype_correlations(mdata, "subtype")
    from poems_mu.tl._subtypes import mean_offdiagonal

    print(
        "\nSubtype correlation maps (mean off-diagonal):", {k: round(mean_offdiagonal(v), 3) for k, v in maps.items()}
    )

    # --- figures -------------------------------------------------------------------------------------------
    def out(name: str) -> str:
        return os.path.join(args.figures, f"{name}.png")

    pm.pl.gates(mdata, groupby="subtype", show=False, save=out("gates"))
    pm.pl.loadings(model, show=False, save=out("loadings"))
    pm.pl.top_features(model, factor=top2, n=10, show=False, save=out("top_features"))
    pm.pl.top_features(model, n=10, show=False, save=out("top_features_aggregate"))
    pm.pl.top_features(model, kind="per_factor", show=False, save=out("top_features_per_factor"))
    pm.pl.variance_explained(mdata, min_r2=0.005, show=False, save=out("variance_explained"))
    pm.pl.factor_heatmap(mdata, "subtype", show=False, save=out("factor_heatmap"))
    pm.pl.cross_omic_network(cross, n_edges=30, show=False, save=out("cross_omic_network"))
    pm.pl.subtype_correlations(maps, show=False, save=out("subtype_correlations"))
    import matplotlib.pyplot as plt
    import scanpy as sc

    sc.pp.neighbors(mdata, use_rep="X_poems")
    sc.tl.umap(mdata, random_state=args.seeds[0])
    sc.pl.embedding(mdata, basis="X_umap", color=["subtype", "poems_gate_protein"], show=False)
    plt.savefig(out("embedding_umap"), dpi=150, bbox_inches="tight")
    plt.close("all")
    print(f"\nfigures written to {args.figures.resolve()}")
    return {"epochs": n_epochs, "wall_s": wall}


if __name__ == "__main__":
    main()
