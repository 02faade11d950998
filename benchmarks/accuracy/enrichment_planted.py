"""Do enrichment, the active-factor rule and stability find what was planted?

Protocol (fixed before the first run; package defaults, K = 32 factors):

* **Planted** (``make_planted3`` of :mod:`poems_mu.datasets._synthetic`: 4 true factors, informative modalities
  ``a`` (120 features) and ``b`` (80), near-noise ``c``). Data seeds 0-4, each trained with the same
  ``scvi.settings.seed``. Sets per informative modality: for each true factor f, ``f{f}_up`` (its planted features whose
  data rise with z_f) and ``f{f}_down`` (those that fall), plus for every planted set 5 decoys of the same size drawn at
  random from all features of the modality. Each true factor is matched to the learned factor with the largest |corr| of
  sample scores (sign s). ``pm.tl.enrichment`` at its defaults (active factors, signed effective loadings), and once
  with ``loadings="abs_W"`` (no direction). Scores: ``first`` = the two planted sets of f are the two best sets (by
  p-value) of the matched factor; ``top1`` = the best set is one of them; ``direction`` = ``f{f}_up`` scores with sign s
  and ``f{f}_down`` with −s (effective loadings only); ``decoy_fpr`` = share of (tested factor, decoy) pairs with q <
  0.05; ``planted_q05`` = share of planted sets with q < 0.05 in their matched factor. A matched factor the rule calls
  inactive is not tested and counts as a miss; a planted set with fewer than 5 members (``tmin``) is pruned by
  ``tl.enrichment`` and its factor is scored on the other one. ``n_active`` against 4 (``n_active_r2``, the rule with
  ``min_r2=0.01``, was added after the first run).
* **Stability**: data seed 0 trained with seeds 0-4 → ``pm.tl.factor_stability`` (n_top = 10); the reproducibility
  of the factor matched to each true factor, of active and of inactive factors, and the share of features with
  frequency >= 0.8 in those 4 factors that are planted features of the factor.
* **breast_tcga**: seeds 0-4 on the whole cohort → active factors per run, ``factor_stability``, and enrichment of
  the shipped sets (``pm.datasets.breast_tcga_feature_sets``) with 5 same-size decoys per set: decoy FPR at
  q < 0.05, the sets at q < 0.05 in the first run and in how many runs each recurs in the matched factor.

    OMP_NUM_THREADS=1 python benchmarks/accuracy/enrichment_planted.py planted  # -> results/enrichment_planted.json
    OMP_NUM_THREADS=1 python benchmarks/accuracy/enrichment_planted.py breast   # -> results/enrichment_breast.json
    python benchmarks/accuracy/enrichment_planted.py report                     # -> results/enrichment.md

``--quick``: seeds 0 and 1, 20 epochs (a pipeline check; ``report`` then reads the quick folder).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import numpy as np
import pandas as pd

SEEDS = (0, 1, 2, 3, 4)
N_DECOYS = 5
QUICK_TRAIN = {"max_epochs": 20, "n_epochs_kl_warmup": 5}


def _train(mdata, seed: int, quick: bool):
    return common.train_poems(mdata, seed, train_kwargs=QUICK_TRAIN if quick else None)[0]


def _corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = (a - a.mean(0)) / np.where(a.std(0) > 0, a.std(0), 1.0)
    b = (b - b.mean(0)) / np.where(b.std(0) > 0, b.std(0), 1.0)
    return a.T @ b / len(a)


def _active_r2(table: pd.DataFrame, min_r2: float = 0.01) -> pd.Series:
    """The rule plus ``min_r2``: the factor explains >= 1 % of some modality's variance."""
    r2 = table[[c for c in table.columns if c.startswith("r2_")]].max(axis=1)
    return table["active"] & (r2 >= min_r2)


def _with_decoys(sets: dict[str, list[str]], features: list[str], rng) -> pd.DataFrame:
    rows = [(s, t, "planted") for s, members in sets.items() for t in members]
    for s, members in sets.items():
        for i in range(N_DECOYS):
            rows += [(f"decoy_{s}_{i}", t, "decoy") for t in rng.choice(features, len(members), replace=False)]
    return pd.DataFrame(rows, columns=["source", "target", "kind"])


def planted_sets(mdata, z: np.ndarray, supports: dict, mod: str) -> dict[str, list[str]]:
    """``f{f}_up`` / ``f{f}_down``: planted features of factor f whose data rise / fall with z_f."""
    x = np.asarray(mdata[mod].X)
    c = _corr(x, z)  # features x true factors
    names = list(mdata[mod].var_names)
    out = {}
    for f in range(z.shape[1]):
        sup = supports[mod][:, f]
        out[f"f{f}_up"] = [names[j] for j in np.flatnonzero(sup & (c[:, f] > 0))]
        out[f"f{f}_down"] = [names[j] for j in np.flatnonzero(sup & (c[:, f] < 0))]
    return out


def score_planted(model, mdata, z: np.ndarray, supports: dict, seed: int) -> list[dict]:
    import poems_mu as pm

    zl = model.get_latent_representation()
    c = _corr(z, zl)  # true x learned
    match = np.abs(c).argmax(1)
    names = model.factor_names()
    table = pm.tl.active_factors(model)
    active = table["active"]
    near_true = np.abs(c).max(0) > 0.5  # learned factors that follow some true factor
    rule = {
        "n_active": int(active.sum()),
        "n_active_r2": int(_active_r2(table).sum()),
        "n_active_near_true": int((active & near_true).sum()),
        "n_true_with_active": int(
            sum(any(active.iloc[k] and abs(c[f, k]) > 0.5 for k in range(len(names))) for f in range(z.shape[1]))
        ),
    }
    rng = np.random.default_rng(1000 + seed)
    recs = []
    for mod in ("a", "b"):
        sets = planted_sets(mdata, z, supports, mod)
        net = _with_decoys(sets, list(mdata[mod].var_names), rng)
        kinds = net.drop_duplicates("source").set_index("source")["kind"]
        for loadings in ("effective", "abs_W"):
            res = pm.tl.enrichment(model, net[["source", "target"]], mod, loadings=loadings)
            res["kind"] = res["source"].map(kinds)
            dec = res[res["kind"] == "decoy"]
            tested = set(res["source"])
            rec = {
                "seed": seed,
                "modality": mod,
                "loadings": loadings,
                **rule,
                "n_tested_factors": int(res["factor"].nunique()),
                "decoy_fpr": float((dec["qvalue"] < 0.05).mean()),
                "planted_sets_pruned": int(sum(name not in tested for name in sets)),
            }
            signed = loadings == "effective"  # |W| has no direction
            first, top1, direction, q05, matched_active = [], [], [], [], []
            for f in range(z.shape[1]):
                k, s = names[match[f]], np.sign(c[f, match[f]])
                own = res[res["factor"] == k].sort_values("pvalue", kind="mergesort")
                matched_active.append(bool(active[k]))
                # a planted set with fewer than tmin = 5 members is pruned by tl.enrichment: score the other one
                want = {name for name in (f"f{f}_up", f"f{f}_down") if name in tested}
                if own.empty:  # the matched factor is inactive: not tested, a miss
                    first.append(False)
                    top1.append(False)
                    direction.append(False if signed else np.nan)
                    q05 += [False] * len(want)
                    continue
                first.append(set(own["source"].iloc[: len(want)]) == want)
                top1.append(own["source"].iloc[0] in want)
                sc = own.set_index("source")["score"]
                signs = {f"f{f}_up": s, f"f{f}_down": -s}
                direction.append(all(np.sign(sc[name]) == signs[name] for name in want) if signed else np.nan)
                q = own.set_index("source")["qvalue"]
                q05 += [bool(q[name] < 0.05) for name in sorted(want)]
            rec |= {
                "first": float(np.mean(first)),
                "top1": float(np.mean(top1)),
                "direction": float(np.mean(direction)),
                "planted_q05": float(np.mean(q05)),
                "matched_active": float(np.mean(matched_active)),
                "matched_abs_corr": [float(abs(c[f, match[f]])) for f in range(z.shape[1])],
            }
            recs.append(rec)
            print(json.dumps(rec), flush=True)
    return recs


def stability_planted(models, z: np.ndarray, supports: dict) -> dict:
    import poems_mu as pm

    ref = models[0]
    factors, features = pm.tl.factor_stability(models)
    c = np.abs(_corr(z, ref.get_latent_representation()))
    names = ref.factor_names()
    matched = [names[k] for k in c.argmax(1)]
    tables = [pm.tl.active_factors(m) for m in models]
    active = tables[0]["active"]
    stable = features[(features["frequency"] >= 0.8) & features["factor"].isin(matched)]
    hits = []
    for _, row in stable.iterrows():
        f = matched.index(row["factor"])
        if row["modality"] in ("a", "b"):
            j = list(ref.adata.mod[row["modality"]].var_names).index(row["feature"])
            hits.append(bool(supports[row["modality"]][j, f]))

    # is W's sign identifiable? matched factors of the other runs: |corr| of signed W, of |W| and of the signed
    # effective loadings over the informative features (a and b stacked)
    def stacked(m) -> dict[str, pd.DataFrame]:  # once per model: the effective loadings run the model
        w = pd.concat([m.get_loadings(mod) for mod in ("a", "b")])
        eff = pd.concat([m.get_effective_loadings(mod, signed=True) for mod in ("a", "b")])
        return {"signed_W": w, "abs_W": w.abs(), "effective": eff}

    loadings = [stacked(m) for m in models]

    def cols(i, k, kind):
        return loadings[i][kind][k].to_numpy()

    sign_check = {"score": [], "signed_W": [], "abs_W": [], "effective": []}
    for i in range(1, len(models)):
        for k in matched:
            k2 = factors.loc[k, f"run{i}_factor"]
            sign_check["score"].append(float(factors.loc[k, f"run{i}_corr"]))
            for kind in ("signed_W", "abs_W", "effective"):
                sign_check[kind].append(float(abs(np.corrcoef(cols(0, k, kind), cols(i, k2, kind))[0, 1])))
    return {
        "w_sign_check": sign_check,
        "matched_reproducibility": [float(factors.loc[k, "reproducibility"]) for k in matched],
        "matched_loading_corr": [float(factors.loc[k, "loading_corr"]) for k in matched],
        "active_reproducibility": float(factors.loc[active[active].index, "reproducibility"].mean()),
        "inactive_reproducibility": float(factors.loc[active[~active].index, "reproducibility"].mean())
        if (~active).any()
        else None,
        "n_active_per_run": [int(t["active"].sum()) for t in tables],
        "n_active_r2_per_run": [int(_active_r2(t).sum()) for t in tables],
        "n_stable_features_in_matched": int(len(stable)),
        "stable_features_planted_share": float(np.mean(hits)) if hits else None,
    }


def run_planted(seeds, quick: bool) -> dict:
    recs, models0 = [], []
    for seed in seeds:
        mdata, z, supports = common.planted("planted3", seed)
        model = _train(mdata, seed, quick)
        recs += score_planted(model, mdata, z, supports, seed)
        if seed == seeds[0]:
            models0.append(model)
            data0 = (z, supports)
    mdata, _, _ = common.planted("planted3", seeds[0])
    for seed in seeds[1:]:
        models0.append(_train(mdata.copy(), seed, quick))
    stab = stability_planted(models0, *data0)
    print(json.dumps(stab), flush=True)
    return {"enrichment": recs, "stability": stab}


def run_breast(seeds, quick: bool) -> dict:
    import poems_mu as pm

    models = [_train(pm.datasets.breast_tcga(), seed, quick) for seed in seeds]
    factors, features = pm.tl.factor_stability(models)
    ref = models[0]
    tables = [pm.tl.active_factors(m) for m in models]
    active = [t["active"] for t in tables]
    shipped = pm.datasets.breast_tcga_feature_sets()
    rng = np.random.default_rng(2000)
    enr, recur = [], []
    for mod, rows in shipped.groupby("modality", sort=False):
        sets = {s: list(g["target"]) for s, g in rows.groupby("source", sort=False)}
        net = _with_decoys(sets, list(ref.adata.mod[mod].var_names), rng)
        kinds = net.drop_duplicates("source").set_index("source")["kind"]
        per_run = []
        for i, m in enumerate(models):
            res = pm.tl.enrichment(m, net[["source", "target"]], mod)
            res["kind"] = res["source"].map(kinds)
            dec = res[res["kind"] == "decoy"]
            fpr = float((dec["qvalue"] < 0.05).mean())
            enr.append({"run": i, "modality": mod, "decoy_fpr": fpr, "n_decoy_tests": len(dec)})
            per_run.append(res)
        hits = per_run[0][(per_run[0]["kind"] == "planted") & (per_run[0]["qvalue"] < 0.05)]
        for _, h in hits.iterrows():
            again = 0
            for i, res in enumerate(per_run[1:], start=1):
                k = factors.loc[h["factor"], f"run{i}_factor"]
                row = res[(res["factor"] == k) & (res["source"] == h["source"])]
                again += int(len(row) == 1 and row["qvalue"].iloc[0] < 0.05)
            recur.append(
                {
                    "modality": mod,
                    "factor": h["factor"],
                    "source": h["source"],
                    "score": float(h["score"]),
                    "qvalue": float(h["qvalue"]),
                    "runs_recurring": again,
                    "reproducibility": float(factors.loc[h["factor"], "reproducibility"]),
                }
            )
    act = active[0]
    out = {
        "n_active_per_run": [int(a.sum()) for a in active],
        "n_active_r2_per_run": [int(_active_r2(t).sum()) for t in tables],
        "active_reproducibility": factors.loc[act[act].index, "reproducibility"].round(4).to_dict(),
        "inactive_reproducibility_mean": float(factors.loc[act[~act].index, "reproducibility"].mean())
        if (~act).any()
        else None,
        "stable_features": features[(features["frequency"] >= 0.8) & features["factor"].isin(act[act].index)]
        .assign(frequency=lambda d: d["frequency"].round(2))
        .to_dict(orient="records"),
        "enrichment_decoys": enr,
        "enrichment_hits_run0": recur,
    }
    print(json.dumps({k: out[k] for k in ("n_active_per_run", "inactive_reproducibility_mean")}), flush=True)
    return out


def report(out: Path) -> str:
    planted = json.loads((out / "enrichment_planted.json").read_text())
    breast = json.loads((out / "enrichment_breast.json").read_text())
    df = pd.DataFrame(planted["enrichment"])
    cols = ["first", "top1", "direction", "planted_q05", "decoy_fpr", "matched_active"]
    counts = ["n_active", "n_active_r2", "n_active_near_true", "n_true_with_active"]
    lines = [
        "# Enrichment, active factors and stability on planted data and breast_tcga",
        "",
        "`OMP_NUM_THREADS=1 python benchmarks/accuracy/enrichment_planted.py planted|breast`, then `... report`;",
        "protocol in the script's docstring; the provenance of each part in its JSON file. Planted: 4 true factors,",
        "K = 32, data seeds 0-4 (mean ± SD over seeds; shares over the 4 true factors, 8 planted sets and 40 decoys",
        "per modality).",
        "",
        *common.table(df, ["modality", "loadings"], cols, fmt=".2f"),
    ]
    runs = df.drop_duplicates("seed")
    lines += [
        "",
        "Active factors (4 planted; one row per data seed): `n_active` by the rule `store_results` records;",
        "`n_active_r2` with `min_r2=0.01` as well (added after the first run of this benchmark, see the note);",
        "`n_active_near_true` active factors with |corr| > 0.5 to a true factor (several learned factors can split",
        "one true factor); `n_true_with_active` true factors followed by at least one active factor.",
        "",
        "| seed | " + " | ".join(counts) + " |",
        "|---" * (len(counts) + 1) + "|",
    ]
    for _, r in runs.iterrows():
        lines.append(f"| {r['seed']} | " + " | ".join(str(int(r[c])) for c in counts) + " |")
    st = planted["stability"]
    lines += [
        "",
        "Stability on planted data (data seed 0, training seeds 0-4):",
        "",
        f"- reproducibility of the factors matched to the 4 true factors: "
        f"{', '.join(f'{v:.3f}' for v in st['matched_reproducibility'])}; their loading |corr|: "
        f"{', '.join(f'{v:.3f}' for v in st['matched_loading_corr'])}",
        f"- mean reproducibility of active factors {st['active_reproducibility']:.3f}, of inactive ones "
        + ("–" if st["inactive_reproducibility"] is None else f"{st['inactive_reproducibility']:.3f}"),
        f"- active factors per run: {st['n_active_per_run']}; with min_r2 = 0.01: {st['n_active_r2_per_run']}"
        " (4 planted)",
        "- is W's sign identifiable? over the 4 matched factors × 4 other runs, |corr| of sample scores "
        + ", ".join(f"{kind} {min(v):.2f}–{max(v):.2f}" for kind, v in st["w_sign_check"].items() if kind == "score")
        + "; of the loadings over the features of a and b: "
        + ", ".join(f"{kind} {min(v):.2f}–{max(v):.2f}" for kind, v in st["w_sign_check"].items() if kind != "score"),
        f"- features with frequency >= 0.8 in the matched factors: {st['n_stable_features_in_matched']}, of which "
        + (
            "–"
            if st["stable_features_planted_share"] is None
            else f"{st['stable_features_planted_share']:.1%} are planted features of that factor"
        ),
        "",
        "breast_tcga (seeds 0-4, whole cohort):",
        "",
        f"- active factors per run: {breast['n_active_per_run']}; with min_r2 = 0.01: {breast['n_active_r2_per_run']}",
        "- reproducibility of the first run's active factors: "
        + ", ".join(f"{k} {v:.3f}" for k, v in breast["active_reproducibility"].items()),
        "- mean reproducibility of its inactive factors: "
        + ("–" if (v := breast["inactive_reproducibility_mean"]) is None else f"{v:.3f}"),
    ]
    dec = pd.DataFrame(breast["enrichment_decoys"])
    per_mod = dec.groupby("modality")["decoy_fpr"].agg(["mean", "max"])
    lines.append(
        "- decoy FPR at q < 0.05 (5 same-size decoys per shipped set; mean / max over runs): "
        + ", ".join(f"{m} {r['mean']:.3f} / {r['max']:.3f}" for m, r in per_mod.iterrows())
    )
    lines += ["", "Shipped sets at q < 0.05 in run 0, and in how many of the 4 other runs they recur (matched factor):"]
    lines += ["", "| modality | factor | set | score | q | recurs in | factor reproducibility |", "|---" * 7 + "|"]
    for h in sorted(breast["enrichment_hits_run0"], key=lambda h: h["qvalue"]):
        lines.append(
            f"| {h['modality']} | {h['factor']} | {h['source']} | {h['score']:+.2f} | {h['qvalue']:.2g} | "
            f"{h['runs_recurring']}/4 | {h['reproducibility']:.3f} |"
        )
    stable = pd.DataFrame(breast["stable_features"])
    lines += ["", f"Features that are top-10 loaders of an active factor in >= 4 of 5 runs: {len(stable)}"]
    if len(stable):
        for (fac, mod), g in stable.groupby(["factor", "modality"], sort=False):
            lines.append(f"- {fac} / {mod}: " + ", ".join(g["feature"]))
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = common.parser(__doc__, seeds=None)
    parser.add_argument("what", choices=["planted", "breast", "report"])
    args = parser.parse_args(argv)
    prov = common.provenance(__file__, argv)
    if args.what == "report":
        common.write_report(args.out / "enrichment.md", report(args.out), provenance=prov)
        return
    common.quiet()
    seeds = (0, 1) if args.quick else SEEDS
    result = {"planted": run_planted, "breast": run_breast}[args.what](seeds, args.quick)
    payload = {"settings": {"seeds": list(seeds), "quick": args.quick}, **result}
    common.write_results(args.out / f"enrichment_{args.what}.json", payload, provenance=prov)


if __name__ == "__main__":
    main()
