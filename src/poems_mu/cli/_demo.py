"""``poems-mu demo``: train POEMS on the bundled breast_tcga cohort; write results, figures and metrics."""

from __future__ import annotations

from pathlib import Path

from ._args import DEMO_FILE, model_kwargs
from ._run import check_writable, evaluate, is_global_zero, say, train, write_h5mu
from ._summary import summary

DEMO_LABEL_KEY = "subtype"


def run_demo(args) -> int:
    import scvi

    from poems_mu import POEMS, datasets

    out_dir = Path(args.out_dir)
    output = out_dir / DEMO_FILE
    figures = {name: out_dir / f"poems_demo_{name}.png" for name in ("umap", "gates", "loadings")}
    check_writable([output, *figures.values()], args.overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    mdata = datasets.breast_tcga()
    scvi.settings.seed = args.seed
    POEMS.setup_mudata(mdata)
    model = POEMS(mdata, **model_kwargs(args))
    say(
        f"Training POEMS on the bundled breast_tcga data: {mdata.n_obs} samples, "
        f"modalities {', '.join(model.modalities)} (protein missing for "
        f"{mdata.n_obs - mdata.mod['protein'].n_obs} samples)"
    )
    seconds = train(model, args)
    if not is_global_zero(model):
        return 0
    model.store_results(overwrite=True)
    metrics = evaluate(mdata, DEMO_LABEL_KEY)
    write_h5mu(mdata, output)
    _demo_figures(mdata, model, figures)
    print(summary(mdata, model, seconds, metrics, [output, *figures.values()], title="POEMS demo: breast_tcga"))
    return 0


def _demo_figures(mdata, model, paths: dict[str, Path]) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    for name, draw in (("umap", _fig_umap), ("gates", _fig_gates), ("loadings", _fig_loadings)):
        fig = draw(mdata)
        fig.savefig(paths[name], dpi=120, bbox_inches="tight")
        plt.close(fig)


def _fig_umap(mdata):
    import anndata as ad
    import matplotlib.pyplot as plt
    import scanpy as sc

    adata = ad.AnnData(obs=mdata.obs[[DEMO_LABEL_KEY]].copy(), obsm={"X_poems": mdata.obsm["X_poems"]})
    sc.pp.neighbors(adata, use_rep="X_poems", random_state=0)
    sc.tl.umap(adata, random_state=0)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    sc.pl.umap(adata, color=DEMO_LABEL_KEY, ax=ax, show=False, title="POEMS embedding (UMAP) by PAM50 subtype")
    return fig


def _fig_gates(mdata):
    from poems_mu import pl

    ax = pl.gates(mdata, groupby=DEMO_LABEL_KEY, show=False)
    ax.set_title("Gating weights α per sample, by subtype (protein: 0 where missing)")
    return ax.figure


def _fig_loadings(mdata):
    from poems_mu import pl

    axes = pl.loadings(mdata, show=False)
    return (axes[0] if isinstance(axes, list) else axes).figure
