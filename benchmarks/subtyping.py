"""Subtyping benchmark: POEMS, its ablations, PCA and MOFA+ under the POEMS paper's protocol (Appendix A).

For each data set the samples are split once, as in the paper: 80/20 train/test (``random_state=1``, stratified by
label), and 20 % of the train split is the validation set (same seed, stratified). Every method is fitted on the
train split only (POEMS: trained on 80 % of it, early stopping on the other 20 %), then embeds *all* samples. The
embeddings are scored with :func:`poems_mu.tl.evaluate_subtyping` (k-means accuracy / NMI / ARI and KNN accuracy,
evaluation seeds 0, 12, 21, 42, 1234) on (a) the test split, as in the paper, and (b) all samples. Each model is
trained with several training seeds (``scvi.settings.seed``; MOFA+'s own seed); the table gives the mean ± sd over
training seeds of the per-run means over the evaluation seeds, and in brackets the mean evaluation-seed sd.

    OMP_NUM_THREADS=1 python benchmarks/subtyping.py --datasets rosmap breast_tcga --seeds 0 1 2 3 4 \
        --out benchmarks/results

``--quick`` runs one seed with few epochs (a smoke test of the pipeline, not a result).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scvi  # noqa: E402
import torch  # noqa: E402
from mudata import MuData  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import poems_mu as pm  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _baselines import mofa_embedding, pca_embedding, zscored_views  # noqa: E402

#: The defaults chosen by ``search_sparse.py`` (label-free: held-out ELBO, sparsity, planted recovery; see README.md;
#: ``search_defaults.py`` chose the earlier ones); passed explicitly so the benchmark does not depend on the
#: package's current defaults.
CHOSEN_MODEL_KWARGS: dict = {
    "n_latent": 32,
    "n_hidden_encoder": 128,
    "n_layers_encoder": 2,
    "n_hidden_decoder": 64,
    "n_hidden_gate": 64,
    "dropout": 0.1,
    "kl_weight": 1.0,
    "prior_expert": False,
    "lambda0": 15.0,
    "lambda1": 1.0,
    "w_init_scale": 0.15,
}
CHOSEN_TRAIN_KWARGS: dict = {
    "max_epochs": 500,
    "lr": 1e-2,
    "batch_size": 128,
    "early_stopping": True,
    "early_stopping_patience": 25,
    "n_epochs_kl_warmup": 50,
    "n_restarts": 1,
    "weight_decay": 1e-6,
}

#: Benchmarked methods: POEMS variants are overrides of the chosen model arguments.
POEMS_VARIANTS: dict[str, dict] = {
    "POEMS": {},
    "POEM (dense decoder)": {"decoder": "dense"},
    "POEMS (fixed gating)": {"gating": "fixed"},
}
BASELINES = ("PCA", "MOFA+")
ALL_METHODS = (*POEMS_VARIANTS, *BASELINES)

#: label column of the bundled data sets
LABEL_KEYS = {"rosmap": "label", "breast_tcga": "subtype"}
METRIC_NAMES = {
    "kmeans_accuracy": "k-means ACC",
    "kmeans_nmi": "k-means NMI",
    "kmeans_ari": "k-means ARI",
    "knn_accuracy": "KNN acc",
}
SCOPES = ("all", "test", "train")
#: baseline settings (fixed, not tuned)
N_COMPONENTS = 32
MOFA_MAX_ITER = 1000

logger = logging.getLogger("subtyping")


def quiet() -> None:
    """Silence Lightning/scvi chatter and use one thread (the cores are shared)."""
    torch.set_num_threads(1)
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "scvi", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    scvi.settings.verbosity = logging.ERROR
    warnings.filterwarnings("ignore", module="lightning")
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*GPU available but not used.*")
    warnings.filterwarnings("ignore", category=FutureWarning, module="mudata")


def load_dataset(name: str) -> tuple[MuData, str]:
    """A bundled data set (``rosmap``, ``breast_tcga``) or a MOGONET folder, with its label column."""
    if name in LABEL_KEYS:
        return getattr(pm.datasets, name)(), LABEL_KEYS[name]
    return pm.datasets.read_mogonet(name), "label"


def paper_split(labels: np.ndarray, random_state: int = 1) -> dict[str, np.ndarray]:
    """The paper's split: 80/20 train/test, then 20 % of train for validation (stratified, ``random_state=1``).

    Returns sorted sample positions for ``train`` (= ``fit`` ∪ ``val``), ``fit``, ``val`` and ``test``.
    """
    labels = np.asarray(labels)
    idx = np.arange(len(labels))
    train, test = train_test_split(idx, test_size=0.2, random_state=random_state, stratify=labels)
    fit, val = train_test_split(train, test_size=0.2, random_state=random_state, stratify=labels[train])
    return {k: np.sort(v) for k, v in {"train": train, "fit": fit, "val": val, "test": test}.items()}


def train_split_data(mdata: MuData, split: dict[str, np.ndarray]) -> tuple[MuData, np.ndarray, np.ndarray]:
    """The train-split MuData (a copy) and the positions in it of the fit and validation samples."""
    train_data = mdata[mdata.obs_names[split["train"]]].copy()
    pos = {name: i for i, name in enumerate(train_data.obs_names)}
    fit_rows = np.array([pos[n] for n in mdata.obs_names[split["fit"]]])
    val_rows = np.array([pos[n] for n in mdata.obs_names[split["val"]]])
    return train_data, fit_rows, val_rows


def fit_poems(
    mdata: MuData, split: dict[str, np.ndarray], seed: int, model_kwargs: dict, train_kwargs: dict
) -> tuple[np.ndarray, dict]:
    """Train POEMS on the train split (validation = ``split["val"]``) and embed all samples.

    The model is set up on the train-split samples only, so the test samples touch nothing — not even the
    per-feature standardisation — and are embedded afterwards by transferring the setup to the full MuData.
    """
    start = time.perf_counter()
    train_data, fit_rows, val_rows = train_split_data(mdata, split)
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(train_data)
    model = pm.POEMS(train_data, **model_kwargs)
    model.train(
        enable_progress_bar=False,
        datasplitter_kwargs={"external_indexing": [fit_rows, val_rows, np.array([], dtype=np.int64)]},
        **train_kwargs,
    )
    full = mdata.copy()
    pm.POEMS.setup_mudata(full)
    z = model.get_latent_representation(full)
    wall = time.perf_counter() - start
    hist = model.history
    info = {"wall_s": wall, "epochs": len(hist["elbo_train"])}
    if "elbo_per_sample_validation" in hist:
        info["best_elbo_per_sample_validation"] = float(hist["elbo_per_sample_validation"].min().iloc[0])
    if model.module.decoder_type == "sparse":
        sparsity = model.sparsity_summary()
        info["W_density"] = float(sparsity["density"].mean())
        info["W_zeros"] = float(sparsity["zeros"].mean())
    return z, info


def fit_baseline(method: str, mdata: MuData, split: dict[str, np.ndarray], seed: int, quick: bool = False):
    """PCA or MOFA+ fitted on the train split (z-scored with its statistics); all samples embedded."""
    fit_mask = np.zeros(mdata.n_obs, dtype=bool)
    fit_mask[split["train"]] = True
    start = time.perf_counter()
    views = zscored_views(mdata, fit_mask)
    if method == "PCA":
        z, info = pca_embedding(views, fit_mask, n_components=N_COMPONENTS), {}
    elif method == "MOFA+":
        z, info = mofa_embedding(
            views, fit_mask, n_factors=N_COMPONENTS, seed=seed, max_iter=50 if quick else MOFA_MAX_ITER
        )
    else:
        raise ValueError(f"Unknown baseline {method!r}.")
    info["wall_s"] = time.perf_counter() - start
    return z, info


def evaluate(z: np.ndarray, labels: np.ndarray, split: dict[str, np.ndarray], scopes=SCOPES) -> dict:
    """``{scope: {metric: {"mean", "sd", "values"}}}`` over the evaluation seeds, for each sample scope."""
    out = {}
    for scope in scopes:
        mask = np.ones(len(labels), dtype=bool)
        if scope != "all":
            mask = np.zeros(len(labels), dtype=bool)
            mask[split[scope]] = True
        df = pm.tl.evaluate_subtyping(z, labels=labels, subset=mask)
        out[scope] = {
            m: {"mean": float(g.mean()), "sd": float(g.std(ddof=1)), "values": [float(v) for v in g]}
            for m, g in df.groupby("metric", sort=False)["value"]
        }
    return out


def run_method(
    method: str,
    mdata: MuData,
    labels: np.ndarray,
    split: dict,
    seed: int,
    model_kwargs: dict,
    train_kwargs: dict,
    quick: bool = False,
    scopes=SCOPES,
) -> dict:
    """Fit one method with one training seed and evaluate it; returns a JSON-able record."""
    if method in POEMS_VARIANTS:
        kwargs = {**model_kwargs, **POEMS_VARIANTS[method]}
        if kwargs.get("decoder") == "dense":
            kwargs = {k: v for k, v in kwargs.items() if k not in ("lambda0", "lambda1")}
        z, info = fit_poems(mdata, split, seed, kwargs, train_kwargs)
    else:
        z, info = fit_baseline(method, mdata, split, seed, quick=quick)
    if not np.isfinite(z).all():
        return {"method": method, "train_seed": seed, "info": info, "error": "non-finite embedding"}
    return {"method": method, "train_seed": seed, "info": info, "metrics": evaluate(z, labels, split, scopes)}


def summarize(records: list[dict]) -> pd.DataFrame:
    """Tidy summary: dataset, method, scope, metric, mean/sd over training seeds, mean eval-seed sd, n."""
    rows = []
    for r in records:
        if "metrics" not in r:
            continue
        for scope, metrics in r["metrics"].items():
            for metric, s in metrics.items():
                rows.append((r["dataset"], r["method"], scope, metric, r["train_seed"], s["mean"], s["sd"]))
    df = pd.DataFrame(rows, columns=["dataset", "method", "scope", "metric", "train_seed", "run_mean", "eval_sd"])
    g = df.groupby(["dataset", "method", "scope", "metric"], sort=False)
    return g.agg(
        mean=("run_mean", "mean"),
        sd=("run_mean", lambda x: x.std(ddof=1)),
        eval_sd=("eval_sd", "mean"),
        n=("run_mean", "size"),
    ).reset_index()


def _cell(row) -> str:
    sd = "–" if not np.isfinite(row["sd"]) else f"{row['sd']:.3f}"
    return f"{row['mean']:.3f} ± {sd} [{row['eval_sd']:.3f}]"


def markdown(records: list[dict], command: str, settings: dict) -> str:
    """Markdown tables, one per data set and scope (all samples, test split)."""
    summary = summarize(records)
    lines = [
        "# Subtyping benchmark",
        "",
        f"Command: `{command}`",
        "",
        "Cells: mean ± sd over training seeds of the per-run mean over the 5 evaluation seeds; in brackets the mean"
        " evaluation-seed sd. Wall: mean seconds per fit (training + embedding; noisy on a shared machine).",
        "",
        f"POEMS settings: `{json.dumps(settings['model_kwargs'])}`, training `{json.dumps(settings['train_kwargs'])}`.",
        "",
    ]
    wall = {}
    epochs = {}
    for r in records:
        key = (r["dataset"], r["method"])
        wall.setdefault(key, []).append(r["info"]["wall_s"])
        if "epochs" in r["info"]:
            epochs.setdefault(key, []).append(r["info"]["epochs"])
    errors = [r for r in records if "metrics" not in r]
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        info = next(r for r in records if r["dataset"] == dataset)["data"]
        for scope, title in (("all", "all samples"), ("test", "test split (paper protocol)")):
            n = info["n_test"] if scope == "test" else info["n_obs"]
            lines += [f"## {dataset} — {title} (n = {n})", ""]
            lines.append("| method | " + " | ".join(METRIC_NAMES.values()) + " | wall s | epochs | seeds |")
            lines.append("|---" * (len(METRIC_NAMES) + 4) + "|")
            sub = summary[(summary.dataset == dataset) & (summary.scope == scope)]
            for method in dict.fromkeys(sub.method):
                m = sub[sub.method == method].set_index("metric")
                cells = [_cell(m.loc[k]) if k in m.index else "–" for k in METRIC_NAMES]
                w = np.mean(wall[(dataset, method)])
                ep = epochs.get((dataset, method))
                ep_s = f"{np.mean(ep):.0f} ({min(ep)}–{max(ep)})" if ep else "–"
                lines.append(f"| {method} | " + " | ".join(cells) + f" | {w:.1f} | {ep_s} | {int(m['n'].iloc[0])} |")
            lines.append("")
    if errors:
        lines += ["Failed runs:", ""] + [
            f"- {r['dataset']} {r['method']} seed {r['train_seed']}: {r['error']}" for r in errors
        ]
    return "\n".join(lines) + "\n"


def run_benchmark(
    datasets,
    seeds,
    methods=ALL_METHODS,
    model_kwargs: dict | None = None,
    train_kwargs: dict | None = None,
    quick: bool = False,
    log=print,
    records: list | None = None,
) -> list[dict]:
    """Run every method × data set × training seed; returns the list of per-run records.

    ``datasets`` are names of bundled data sets or ``(name, mdata, label_key)`` tuples. Records are appended to
    ``records`` (a new list by default) as the runs finish.
    """
    model_kwargs = dict(CHOSEN_MODEL_KWARGS if model_kwargs is None else model_kwargs)
    train_kwargs = dict(CHOSEN_TRAIN_KWARGS if train_kwargs is None else train_kwargs)
    if quick:
        train_kwargs["max_epochs"] = min(train_kwargs.get("max_epochs", 500), 30)
        train_kwargs["n_epochs_kl_warmup"] = min(train_kwargs.get("n_epochs_kl_warmup") or 0, 10)
        train_kwargs["early_stopping_patience"] = min(train_kwargs.get("early_stopping_patience", 50), 10)
    records = [] if records is None else records
    for ds in datasets:
        if isinstance(ds, tuple):
            name, mdata, label_key = ds
        else:
            mdata, label_key = load_dataset(ds)
            name = Path(ds).name if ds not in LABEL_KEYS else ds
        labels = mdata.obs[label_key].astype(str).to_numpy()
        split = paper_split(labels)
        data_info = {
            "n_obs": int(mdata.n_obs),
            "n_test": int(len(split["test"])),
            "n_train": int(len(split["train"])),
            "n_val": int(len(split["val"])),
            "classes": {str(k): int(v) for k, v in pd.Series(labels).value_counts().items()},
            "modalities": {m: list(map(int, mdata.mod[m].shape)) for m in mdata.mod},
        }
        for seed in seeds:
            for method in methods:
                rec = run_method(method, mdata, labels, split, seed, model_kwargs, train_kwargs, quick=quick)
                rec.update(dataset=name, data=data_info)
                records.append(rec)
                if "metrics" in rec:
                    a = rec["metrics"]["all"]
                    log(
                        f"{name} seed={seed} {method}: all-sample KNN {a['knn_accuracy']['mean']:.3f} "
                        f"NMI {a['kmeans_nmi']['mean']:.3f} ACC {a['kmeans_accuracy']['mean']:.3f} "
                        f"({rec['info']['wall_s']:.1f} s, {rec['info'].get('epochs', '-')} epochs)"
                    )
                else:
                    log(f"{name} seed={seed} {method}: FAILED {rec['error']}")
    return records


def _settings(quick: bool, model_kwargs: dict | None = None, train_kwargs: dict | None = None) -> dict:
    return {
        "model_kwargs": CHOSEN_MODEL_KWARGS if model_kwargs is None else model_kwargs,
        "train_kwargs": CHOSEN_TRAIN_KWARGS if train_kwargs is None else train_kwargs,
        "quick": quick,
        "pca_components": N_COMPONENTS,
        "mofa": {"factors": N_COMPONENTS, "max_iter": MOFA_MAX_ITER, "convergence_mode": "fast"},
        "split": "80/20 train/test, 20% of train validation, stratified, random_state=1",
        "eval_seeds": [0, 12, 21, 42, 1234],
    }


def write_results(out: Path, name: str, records: list[dict], command: str, settings: dict, wall: float) -> None:
    """Write ``{name}.json`` (settings, summary, every run) and ``{name}.md`` (the tables)."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "command": command,
        "settings": settings,
        "total_wall_s": wall,
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "scvi-tools": scvi.__version__,
            "poems_mu": getattr(pm, "__version__", "?"),
        },
        "summary": summarize(records).to_dict(orient="records") if records else [],
        "runs": records,
    }
    (out / f"{name}.json").write_text(json.dumps(meta, indent=1))
    if any("metrics" in r for r in records):
        (out / f"{name}.md").write_text(markdown(records, command, settings))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="*", default=["rosmap", "breast_tcga"])
    parser.add_argument("--mogonet", nargs="*", default=[], help="MOGONET-format folders to add as data sets")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", default=list(ALL_METHODS), choices=list(ALL_METHODS))
    parser.add_argument("--out", default="benchmarks/results")
    parser.add_argument("--name", default="subtyping", help="stem of the output files")
    parser.add_argument("--quick", action="store_true", help="one seed, few epochs: a smoke test, not a result")
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override POEMS arguments of the chosen configuration (values as JSON), e.g. --set lambda0=10",
    )
    parser.add_argument(
        "--set-train",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override training arguments (values as JSON), e.g. --set-train early_stopping_patience=100",
    )
    parser.add_argument(
        "--merge", nargs="+", metavar="JSON", help="combine earlier result files (e.g. one per data set) and exit"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.merge:
        parts = [json.loads(Path(f).read_text()) for f in args.merge]
        records = [r for p in parts for r in p["runs"]]
        command = " ; ".join(p["command"] for p in parts)
        wall = sum(p["total_wall_s"] for p in parts)
        write_results(out, args.name, records, command, parts[0]["settings"], wall)
        print(f"merged {len(records)} runs into {out / args.name}.json and .md")
        return
    quiet()
    seeds = args.seeds[:1] if args.quick else args.seeds
    datasets = list(args.datasets) + list(args.mogonet)
    command = "OMP_NUM_THREADS=1 python benchmarks/subtyping.py " + " ".join(argv if argv is not None else sys.argv[1:])
    model_kwargs, train_kwargs = dict(CHOSEN_MODEL_KWARGS), dict(CHOSEN_TRAIN_KWARGS)
    for option, items, target in (("--set", args.set, model_kwargs), ("--set-train", args.set_train, train_kwargs)):
        for item in items:
            key, _, value = item.partition("=")
            if key not in target:
                parser.error(f"{option} {item}: {key!r} is not one of {sorted(target)}")
            target[key] = json.loads(value)
    settings = _settings(args.quick, model_kwargs, train_kwargs)
    start = time.perf_counter()
    records: list[dict] = []

    def log(line: str) -> None:  # progress, and the results so far after every run
        print(line, flush=True)
        write_results(out, args.name, records, command, settings, time.perf_counter() - start)

    run_benchmark(datasets, seeds, args.methods, model_kwargs, train_kwargs, quick=args.quick, log=log, records=records)
    write_results(out, args.name, records, command, settings, time.perf_counter() - start)
    print(f"wrote {out / args.name}.json and .md in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
