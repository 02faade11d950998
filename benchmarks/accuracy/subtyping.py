"""Subtyping benchmark: POEMS, its ablations and options, PCA, MOFA+ and MOFA-FLEX under the POEMS paper's protocol
(Appendix A).

For each data set the samples are split once, as in the paper: 80/20 train/test (``random_state=1``, stratified by
label), and 20 % of the train split is the validation set (same seed, stratified). Every method is fitted on the
train split only (POEMS: trained on 80 % of it, early stopping on the other 20 %), then embeds *all* samples. The
embeddings are scored with :func:`poems_mu.tl.evaluate_subtyping` (k-means accuracy / NMI / ARI and KNN accuracy,
evaluation seeds 0, 12, 21, 42, 1234) on (a) the test split, as in the paper, and (b) all samples. Each model is
trained with several training seeds (``scvi.settings.seed``; MOFA+'s own seed); the table gives the mean ± sd over
training seeds of the per-run means over the evaluation seeds, and in brackets the mean evaluation-seed sd. The
baselines run as their users run them (``_baselines.py``): PCA with 32 components, MOFA+ with 15 factors and its own
dropping of inactive factors (``dropR2=0.001``; k-means and KNN on the factors it keeps), MOFA-FLEX with its MOFA
preset; their settings are recorded in the results (``settings["mofa"]``, ``settings["mofaflex"]``).

    OMP_NUM_THREADS=1 python benchmarks/accuracy/subtyping.py --datasets rosmap breast_tcga --seeds 0 1 2 3 4
    OMP_NUM_THREADS=1 python benchmarks/accuracy/subtyping.py --mogonet /path/to/BRCA   # a MOGONET folder as well
    OMP_NUM_THREADS=1 python benchmarks/accuracy/subtyping.py --quick                   # 1 seed, 30 epochs
    # the baselines, then POEMS per data set, then merge (what produced results/subtyping.{json,md}); a baseline
    # whose settings changed is re-run alone (the first command) and merged with the stored POEMS parts:
    python benchmarks/accuracy/subtyping.py --methods PCA MOFA+ MOFA-FLEX --name subtyping_baselines
    python benchmarks/accuracy/subtyping.py --datasets breast_tcga --methods POEMS "POEM (dense decoder)" \
        "POEMS (fixed gating)" --name subtyping_poems_breast     # and --datasets rosmap: subtyping_poems_rosmap
    python benchmarks/accuracy/subtyping.py --merge benchmarks/results/subtyping_baselines.json \
        benchmarks/results/subtyping_poems_breast.json benchmarks/results/subtyping_poems_rosmap.json --name subtyping
    # the random start of the free factors, beside the table (results/subtyping_factor_start.{json,md}):
    python benchmarks/accuracy/subtyping.py --datasets breast_tcga rosmap --methods "POEMS (random start)" \
        --name subtyping_factor_start

Results are written after every run: ``<out>/<name>.json`` (every run's per-evaluation-seed values, the settings,
the provenance) and ``<name>.md`` (the tables), so a long run can be inspected while it goes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np
import pandas as pd
from _baselines import (
    BASELINES,
    LABEL_KEYS,
    MOFA_SETTINGS,
    MOFAFLEX_MODEL,
    N_COMPONENTS,
    SCOPES,
    load_dataset,
    paper_split,
    run_method,
)

#: The defaults chosen by ``tuning/search_sparse.py``, ``tuning/factor_start.py`` and ``tuning/factor_prior.py``
#: (label-free: held-out ELBO, sparsity, planted recovery, factor counts and their reproducibility); passed
#: explicitly so the benchmark does not depend on the package's current defaults (a smoke test checks that they are
#: the package's defaults).
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
    "lambda_factor": 3.0,
    "w_init_scale": 0.15,
    "factor_start": "pca",
}
CHOSEN_TRAIN_KWARGS: dict = {
    "max_epochs": 500,
    "lr": 5e-3,
    "batch_size": 1024,
    "early_stopping": True,
    "early_stopping_patience": 50,
    "n_epochs_kl_warmup": 100,
    "n_restarts": 1,
    "weight_decay": 1e-6,
}

#: Benchmarked methods: POEMS variants are overrides of the chosen model arguments.
POEMS_VARIANTS: dict[str, dict] = {
    "POEMS": {},
    "POEM (dense decoder)": {"decoder": "dense", "factor_start": "random"},
    "POEMS (fixed gating)": {"gating": "fixed"},
    "POEMS (random start)": {"factor_start": "random"},
}
ALL_METHODS = (*POEMS_VARIANTS, *BASELINES)
#: the keys of the settings that describe the baselines (in a merge, taken from the part that ran them)
BASELINE_SETTINGS = ("pca_components", "mofa", "mofaflex")

METRIC_NAMES = {
    "kmeans_accuracy": "k-means ACC",
    "kmeans_nmi": "k-means NMI",
    "kmeans_ari": "k-means ARI",
    "knn_accuracy": "KNN acc",
}


def run_variant(method, mdata, labels, split, seed, model_kwargs, train_kwargs, quick=False, scopes=SCOPES):
    """One method (a POEMS variant: overrides of ``model_kwargs``; or a baseline) with one training seed, evaluated."""
    if method in POEMS_VARIANTS:
        model_kwargs = {**model_kwargs, **POEMS_VARIANTS[method]}
        if model_kwargs.get("decoder") == "dense":
            model_kwargs = {k: v for k, v in model_kwargs.items() if k not in ("lambda0", "lambda1")}
    return run_method(method, mdata, labels, split, seed, model_kwargs, train_kwargs, quick, scopes)


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
    if "mofa" in settings:
        lines += [f"MOFA+ settings: `{json.dumps(settings['mofa'])}`.", ""]
    if "mofaflex" in settings:
        lines += [f"MOFA-FLEX settings: `{json.dumps(settings['mofaflex'])}`.", ""]
    if "pca_components" in settings:
        lines += [f"PCA: {settings['pca_components']} components.", ""]
    lines += ["Factors: mean (range) over training seeds of the factors in the embedding (POEMS, MOFA+: kept).", ""]
    wall = {}
    epochs = {}
    factors = {}
    for r in records:
        key = (r["dataset"], r["method"])
        wall.setdefault(key, []).append(r["info"]["wall_s"])
        if "epochs" in r["info"]:
            epochs.setdefault(key, []).append(r["info"]["epochs"])
        if "n_factors" in r["info"]:
            factors.setdefault(key, []).append(r["info"]["n_factors"])
    errors = [r for r in records if "metrics" not in r]
    for dataset in dict.fromkeys(r["dataset"] for r in records):
        info = next(r for r in records if r["dataset"] == dataset)["data"]
        for scope, title in (("all", "all samples"), ("test", "test split (paper protocol)")):
            n = info["n_test"] if scope == "test" else info["n_obs"]
            lines += [f"## {dataset} — {title} (n = {n})", ""]
            lines.append("| method | " + " | ".join(METRIC_NAMES.values()) + " | wall s | epochs | factors | seeds |")
            lines.append("|---" * (len(METRIC_NAMES) + 5) + "|")
            sub = summary[(summary.dataset == dataset) & (summary.scope == scope)]
            for method in dict.fromkeys(sub.method):
                m = sub[sub.method == method].set_index("metric")
                cells = [_cell(m.loc[k]) if k in m.index else "–" for k in METRIC_NAMES]
                w = np.mean(wall[(dataset, method)])
                ep = epochs.get((dataset, method))
                ep_s = f"{np.mean(ep):.0f} ({min(ep)}–{max(ep)})" if ep else "–"
                k = factors.get((dataset, method))
                k_s = f"{np.mean(k):.1f} ({min(k)}–{max(k)})" if k else "–"
                lines.append(
                    f"| {method} | " + " | ".join(cells) + f" | {w:.1f} | {ep_s} | {k_s} | {int(m['n'].iloc[0])} |"
                )
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
                rec = run_variant(method, mdata, labels, split, seed, model_kwargs, train_kwargs, quick=quick)
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
        "mofa": dict(MOFA_SETTINGS),
        "mofaflex": {**MOFAFLEX_MODEL, "lr": 0.05, "max_epochs": 10_000},
        "split": "80/20 train/test, 20% of train validation, stratified, random_state=1",
        "eval_seeds": [0, 12, 21, 42, 1234],
    }


def write_results(out: Path, name: str, records: list[dict], prov: dict, settings: dict, wall: float, parts=None):
    """``<out>/<name>.json`` (provenance, settings, summary, every run) and ``<name>.md`` (the tables)."""
    payload = {
        "settings": settings,
        "total_wall_s": wall,
        "summary": summarize(records).to_dict(orient="records") if records else [],
        "runs": records,
    }
    if parts:
        payload["parts"] = parts
    command = " ; ".join(p["command"] for p in parts) if parts else prov["command"]
    text = markdown(records, command, settings) if any("metrics" in r for r in records) else None
    common.write_results(out / f"{name}.json", payload, provenance=prov, markdown=text)


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=[0, 1, 2, 3, 4])
    parser.add_argument("--datasets", nargs="*", default=["rosmap", "breast_tcga"])
    parser.add_argument("--mogonet", nargs="*", default=[], help="MOGONET-format folders to add as data sets")
    parser.add_argument("--methods", nargs="+", default=list(ALL_METHODS), choices=list(ALL_METHODS))
    parser.add_argument("--name", default="subtyping", help="stem of the output files")
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
    prov = common.provenance(__file__, argv)
    if args.merge:
        parts = [json.loads(Path(f).read_text()) for f in args.merge]
        records = [r for p in parts for r in p["runs"]]
        sources = [p.get("provenance", {"command": p.get("command")}) for p in parts]
        wall = sum(p["total_wall_s"] for p in parts)
        # the POEMS settings of a part that ran POEMS (a part with the baselines only records the settings of then),
        # the baselines' settings of the part that ran the baselines
        poems = [p for p in parts if any(r["method"].startswith("POEM") for r in p["runs"])] or parts
        settings = dict(poems[0]["settings"])
        if any(p["settings"]["model_kwargs"] != settings["model_kwargs"] for p in poems[1:]) or any(
            p["settings"]["train_kwargs"] != settings["train_kwargs"] for p in poems[1:]
        ):
            raise ValueError("The parts ran POEMS with different settings: merge only runs of one configuration.")
        base = [p for p in parts if any(r["method"] in BASELINES for r in p["runs"])]
        for key in BASELINE_SETTINGS:
            values = [p["settings"].get(key) for p in base]
            if any(v != values[0] for v in values[1:]):
                raise ValueError(f"The parts ran the baselines with different {key!r}: merge one configuration.")
            settings.pop(key, None)
            if values and values[0] is not None:
                settings[key] = values[0]
        write_results(args.out, args.name, records, prov, settings, wall, parts=sources)
        print(f"merged {len(records)} runs into {args.out / args.name}.json and .md")
        return
    common.quiet()
    datasets = list(args.datasets) + list(args.mogonet)
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
        write_results(args.out, args.name, records, prov, settings, time.perf_counter() - start)

    run_benchmark(
        datasets, args.seeds, args.methods, model_kwargs, train_kwargs, quick=args.quick, log=log, records=records
    )
    write_results(args.out, args.name, records, prov, settings, time.perf_counter() - start)
    print(f"wrote {args.out / args.name}.json and .md in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
