"""Feature sets in the prior on planted data: does an annotated factor find its set's true support from a noisy set,
which members does POEMS drop and add, are decoy sets left inactive, and what does an informed fit cost?

Protocol (written before the first run; package defaults otherwise):

* **Data**: ``make_annotated`` of :mod:`poems_mu.datasets._synthetic_sets`: 300 samples, 6 independent true factors,
  Gaussian modalities ``a`` (150 features) and ``b`` (100), each feature driven by one factor and with probability
  1/2 one more (20 % unlinked), weights ±U(0.4, 0.8), noise SD 1. Sets ``set_1``-``set_4`` for true factors 1-4 (5
  and 6 are left to the free factors), in both modalities: the true support with 20 % of its members left out, then
  a share ``wrong`` of the members still listed replaced by random non-members (``--wrong``, default 0.3); plus 4
  decoys ``decoy_1``-``decoy_4`` of random features (in each modality as many as the median set lists there). Data
  seeds 0, 1, 2 (``--seeds``), each model trained with the same seed (``scvi.settings.seed``; MOFA-FLEX's ``seed``).
* **Methods**, side by side on the same data: POEMS with the sets (``feature_sets=net``, ``feature_set_confidence``
  at its default 0.99); POEMS without them; MOFA-FLEX 0.1.2 with the same sets, at the MOFA preset of
  ``_baselines.py`` (15 free factors, horseshoe weights, Normal factors and likelihood; lr 0.05, its default early
  stopping, at most 10 000 epochs) on the z-scored modalities, the sets as boolean ``varm["sets"]`` DataFrames (one
  column per set, the same columns in both modalities) with ``DataOptions(annotations_varm_key="sets")`` and
  ``ModelOptions(annotation_confidence=0.99)``; MOFA-FLEX puts its free factors ``Factor 1``-``Factor 15`` first and
  names the annotated ones by the columns (checked and recorded per fit).
  As a reference without a model: the given sets themselves (membership as the score).
  *Added after the first full run* (there MOFA-FLEX's 15 free factors took all the signal and left the annotated
  factors nearly empty): MOFA-FLEX at its own default ``n_factors=0``, the annotated factors only, otherwise the same.
  *Added later*: POEMS with the sets started at random (``start_at_random``), the ablation of the start from each
  set's first principal component (since the encoders' start, its encoder units are drawn again as well); and
  ``pm.tl.refined_sets`` now calls a member kept only when its link passes the threshold it uses for added features
  (0.256), not any link above 0.01.
  *Added in a later session*: MuVI 0.2.2 (``_informed_baselines.fit_muvi``) on the same z-scored modalities with the
  same masks as prior masks, ``prior_confidence=0.99`` (its "low"), otherwise at its defaults (horseshoe prior, its
  learning rate and early stopping), CPU; at its default (the sets' factors only) and with 15 dense factors beside
  them (its ``n_factors``, as MOFA-FLEX's preset has 15 free ones). MuVI's seed is the data seed. ``--weak`` (added
  with MuVI, after every method reached AUROC ≈ 1 on the default data, so that the informed and uninformed fits
  could differ): 150 samples and link weights ±U(0.3, 0.6), otherwise the same; chosen on data seeds 10-12 with
  POEMS only, where POEMS without sets found no factor.
* **Scores**, per annotated set: AUROC of |W| of its annotated factor, over ``a`` and ``b`` together, against its
  factor's **true** support (not the given set); the mean over the 4 sets. POEMS without sets has no annotated factor:
  its AUROC is the grouped AUROC (``grouped_auroc`` of :mod:`poems_mu.datasets._synthetic`) of the true factors 1-4.
  The grouped AUROC of the true factors 1-4 and of factors 5-6 is reported for every model (a learned factor counts
  for the true factor it correlates with most, when |corr| > 0.3). The share of an annotated factor's |W| that falls
  on its given set's members (mean over the sets whose factor has a link). POEMS with sets, from
  ``pm.tl.refined_sets``: precision and recall of its ``dropped`` calls against the wrong members, and of its
  ``added`` calls against the true members the sets lack (the omitted ones and those a wrong member replaced), pooled
  over the 4 sets of a fit. Decoys: how many of the 4 are ``active`` under ``pm.tl.active_factors``'s default rule
  (POEMS), how many explain at least 1 % of the variance of ``a`` or ``b`` (MOFA+'s ``drop_factor_threshold``; POEMS:
  the ``r2_*`` of ``active_factors``, MOFA-FLEX: ``get_r2``, which has no activity rule of its own), and the largest
  such share. Factors kept, and wall seconds per fit (``time.perf_counter`` around set-up and training). Mean ± SD
  over the data seeds. *Added after the first full run*: how many of the 4 sets' factors POEMS calls active, and how
  many decoys' factors correlate (|corr| > 0.3 of the sample scores) with some true factor; per fit, every factor's
  best-correlated true factor.

    OMP_NUM_THREADS=1 python benchmarks/accuracy/feature_sets_planted.py      # -> results/feature_sets_planted.*
    OMP_NUM_THREADS=1 python benchmarks/accuracy/feature_sets_planted.py --wrong 0.1 0.3 0.5
    OMP_NUM_THREADS=1 python benchmarks/accuracy/feature_sets_planted.py --weak  # -> feature_sets_planted_weak.*

``--quick``: the first seed, 20 epochs (MOFA-FLEX 200): a pipeline check, into ``results/quick``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common, _baselines

import _common as common
import _informed_baselines as informed
import numpy as np
import pandas as pd

SEEDS = (0, 1, 2)
WRONG = (0.3,)
MODS = ("a", "b")
QUICK_TRAIN = {"max_epochs": 20, "n_epochs_kl_warmup": 5}
MOFAFLEX_EPOCHS, MOFAFLEX_QUICK_EPOCHS = 10_000, 200
MIN_R2 = 0.01  # MOFA+'s drop_factor_threshold
NAME = "feature_sets_planted"
WEAK = {"n": 150, "weight_range": (0.3, 0.6)}  # --weak: half the samples, weaker links (the default is 300, 0.4-0.8)
MUVI_DENSE, MUVI_QUICK_EPOCHS = 15, 200  # MuVI's uninformed factors beside the sets' (as MOFA-FLEX's preset)
METHODS = (
    "given sets (no model)",
    "POEMS with sets",
    "POEMS with sets, random start",
    "POEMS without sets",
    "MOFA-FLEX with sets",
    "MOFA-FLEX with sets, no free factor",
    "MuVI with sets",
    f"MuVI with sets, {MUVI_DENSE} dense factors",
)


def data(seed: int, wrong: float, weak: bool = False):
    """The planted data and sets of one run (``make_annotated`` at its defaults but ``wrong``; ``weak``: fewer
    samples and weaker links, :data:`WEAK`)."""
    from poems_mu.datasets._synthetic_sets import make_annotated

    return make_annotated(seed, wrong=wrong, **(WEAK if weak else {}))


def annotated(truth: dict) -> list[str]:
    return [s for s, t in truth.items() if t["factor"] >= 0]


def decoys(truth: dict) -> list[str]:
    return [s for s, t in truth.items() if t["factor"] < 0]


def auroc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, score))


def precision_recall(called: set, true: set) -> tuple[float, float]:
    """Precision and recall of ``called`` against ``true`` (NaN where undefined)."""
    hit = len(called & true)
    return (hit / len(called) if called else float("nan")), (hit / len(true) if true else float("nan"))


def set_scores(w: dict[str, pd.DataFrame], d) -> dict:
    """AUROC of |W| of each annotated set's factor against its true support, and the share of that factor's |W| on the
    given set (``w``: per modality features × factors, factors named by the sets)."""
    from poems_mu.datasets._synthetic_sets import set_masks

    w = {m: w[m].reindex(d.mdata.mod[m].var_names) for m in MODS}  # the supports' feature order
    masks = set_masks(d.net, {m: list(w[m].index) for m in MODS})
    per, on_set = {}, {}
    for s in annotated(d.truth):
        f = d.truth[s]["factor"]
        score = np.concatenate([np.abs(w[m][s].to_numpy()) for m in MODS])
        given = np.concatenate([masks[m][s].to_numpy() for m in MODS])
        per[s] = auroc(np.concatenate([d.supports[m][:, f] for m in MODS]), score)
        on_set[s] = float(score[given].sum() / score.sum()) if score.sum() > 0 else float("nan")
    return {
        "auroc": float(np.mean(list(per.values()))),
        "auroc_per_set": per,
        "w_on_set": float(np.nanmean(list(on_set.values()))) if any(np.isfinite(list(on_set.values()))) else np.nan,
    }


def grouped(d, latent: np.ndarray, loadings: dict[str, np.ndarray], names: list[str]) -> dict:
    """Grouped AUROC of the annotated true factors and of the others; each learned factor's best-correlated true
    factor (1-based) and |corr|, and how many decoys' factors correlate with a true factor above ``MATCH_R``."""
    from poems_mu.datasets._synthetic import MATCH_R, grouped_auroc

    _, per = grouped_auroc(d.z, latent, loadings, d.supports, MODS)
    k = len(annotated(d.truth))
    c = np.nan_to_num(np.abs(np.corrcoef(d.z.T, latent.T)[: d.z.shape[1], d.z.shape[1] :]))
    match = {n: (int(c[:, j].argmax()) + 1, float(c[:, j].max())) for j, n in enumerate(names)}
    return {
        "grouped_annotated": float(np.mean(per[:k])),
        "grouped_other": float(np.mean(per[k:])),
        "grouped": per,
        "factor_match": match,
        "decoys_matched": sum(match[s][1] > MATCH_R for s in decoys(d.truth) if s in match),
    }


def given_sets(d) -> dict:
    """The reference without a model: each set's membership as the score."""
    from poems_mu.datasets._synthetic_sets import set_masks

    masks = set_masks(d.net, {m: list(d.mdata.mod[m].var_names) for m in MODS})
    return set_scores({m: masks[m].astype(float) for m in MODS}, d)


def score_informed(model, d) -> dict:
    import poems_mu as pm

    rec = set_scores({m: model.get_loadings(m) for m in MODS}, d)
    rec |= grouped(
        d, model.get_latent_representation(), {m: model.get_loadings(m).to_numpy() for m in MODS}, model.factor_names()
    )
    refined = pm.tl.refined_sets(model)
    calls = {k: set() for k in ("dropped", "added")}
    wrong, lacking = set(), set()
    for s in annotated(d.truth):
        r = refined[refined["set"] == s]
        for k in calls:
            rk = r[r["status"] == k]
            calls[k] |= {(s, m, x) for m, x in zip(rk["modality"], rk["feature"], strict=True)}
        wrong |= {(s, *mx) for mx in d.truth[s]["wrong"]}
        lacking |= {(s, *mx) for mx in d.truth[s]["left_out"]}
    rec["dropped_precision"], rec["dropped_recall"] = precision_recall(calls["dropped"], wrong)
    rec["added_precision"], rec["added_recall"] = precision_recall(calls["added"], lacking)
    rec["n_dropped"], rec["n_added"] = len(calls["dropped"]), len(calls["added"])
    act = pm.tl.active_factors(model)
    r2 = act.loc[decoys(d.truth), [f"r2_{m}" for m in MODS]].max(axis=1)
    rec["decoys_active"] = int(act.loc[decoys(d.truth), "active"].sum())
    rec["sets_active"] = int(act.loc[annotated(d.truth), "active"].sum())
    rec["decoys_r2"] = int((r2 >= MIN_R2).sum())
    rec["decoy_r2_max"] = float(r2.max())
    rec["factors"] = model.module.n_factors
    return rec


def score_uninformed(model, d) -> dict:
    loadings = {m: model.get_loadings(m).to_numpy() for m in MODS}
    rec = grouped(d, model.get_latent_representation(), loadings, model.factor_names())
    rec.pop("decoys_matched")
    rec["auroc"] = rec["grouped_annotated"]
    rec["factors"] = model.module.n_factors
    return rec


def score_linear(f, d) -> dict:
    """The scores of a linear model with the sets (``_informed_baselines.Fitted``): its loadings and scores as POEMS's,
    and how many decoys explain at least ``MIN_R2`` of a modality (neither model has an activity rule of its own)."""
    rec = set_scores(f.w, d)
    w = {m: f.w[m].reindex(d.mdata.mod[m].var_names) for m in MODS}
    names = [str(x) for x in f.z.columns]
    rec |= grouped(d, f.z.to_numpy(), {m: w[m][f.z.columns].to_numpy() for m in MODS}, names)
    r2 = f.r2.loc[decoys(d.truth), list(MODS)].max(axis=1)
    rec["decoys_r2"] = int((r2 >= MIN_R2).sum())
    rec["decoy_r2_max"] = float(r2.max())
    rec["factors"] = int(f.z.shape[1])
    return rec


def start_at_random(model) -> None:
    """The ablation of the sets' start: each annotated factor's links to its members drawn as a free factor's are
    (``N(0, w_init_scale²)``), 0 elsewhere, and its units in the encoders drawn again as ``torch.nn.Linear`` draws
    them, instead of its set's first principal component and that component's scores."""
    import torch

    module = model.module
    scale = module.hparams.w_init_scale
    a = module.n_annotated
    with torch.no_grad():
        for dec, members in zip(module.decoders, model._module_inputs["set_members"], strict=True):
            mask = torch.as_tensor(np.nan_to_num(members), dtype=dec.W.dtype)
            dec.W[:, :a] = torch.randn_like(mask) * scale * mask
        for enc in module.encoders:
            fresh = torch.nn.Linear(enc.mean.in_features, a)
            enc.mean.weight[:a], enc.mean.bias[:a] = fresh.weight, fresh.bias


def run(seed: int, wrong: float, quick: bool, weak: bool = False) -> tuple[list[dict], list[dict]]:
    """Every method on one data set: the records, and MOFA-FLEX's annotation checks."""
    base = {"seed": seed, "wrong": wrong}
    d = data(seed, wrong, weak)
    recs = [base | {"method": METHODS[0]} | given_sets(d)]
    train = QUICK_TRAIN if quick else None
    model, wall = common.train_poems(d.mdata, seed, {"feature_sets": d.net}, train_kwargs=train)
    recs.append(base | {"method": METHODS[1], "wall_s": wall} | score_informed(model, d) | _epochs(model))
    d = data(seed, wrong, weak)  # a fresh MuData: set-up registers it with the model
    kwargs = {"feature_sets": d.net}
    model, wall = common.train_poems(d.mdata, seed, kwargs, train_kwargs=train, prepare=start_at_random)
    recs.append(base | {"method": METHODS[2], "wall_s": wall} | score_informed(model, d) | _epochs(model))
    d = data(seed, wrong, weak)
    model, wall = common.train_poems(d.mdata, seed, train_kwargs=train)
    recs.append(base | {"method": METHODS[3], "wall_s": wall} | score_uninformed(model, d) | _epochs(model))
    from poems_mu.datasets._synthetic_sets import set_masks

    checks = []
    masks = set_masks(d.net, {m: list(d.mdata.mod[m].var_names) for m in MODS})
    epochs = MOFAFLEX_QUICK_EPOCHS if quick else MOFAFLEX_EPOCHS
    for method, n_free in ((METHODS[4], None), (METHODS[5], 0)):
        start = time.perf_counter()
        mf = informed.fit_mofaflex(d.mdata, masks, seed, epochs, n_free)
        wall = time.perf_counter() - start
        checks.append({"method": method} | informed.mofaflex_checks(mf, masks))
        fitted = informed.mofaflex_fitted(mf, d.mdata.obs_names)
        recs.append(base | {"method": method, "wall_s": wall, "epochs": checks[-1]["epochs"]} | score_linear(fitted, d))
    for method, n_dense in ((METHODS[6], None), (METHODS[7], MUVI_DENSE)):
        start = time.perf_counter()
        mv = informed.fit_muvi(d.mdata, masks, seed, n_dense, MUVI_QUICK_EPOCHS if quick else 0)
        wall = time.perf_counter() - start
        checks.append({"method": method} | informed.muvi_checks(mv, masks))
        fitted = informed.muvi_fitted(mv, d.mdata.obs_names)
        recs.append(base | {"method": method, "wall_s": wall, "epochs": checks[-1]["epochs"]} | score_linear(fitted, d))
    return recs, checks


def _epochs(model) -> dict:
    return {"epochs": len(model.history["elbo_train"])}


COLUMNS = {
    "auroc": ("AUROC (set's factor)", 3),
    "grouped_annotated": ("grouped AUROC, factors 1-4", 3),
    "grouped_other": ("grouped AUROC, factors 5-6", 3),
    "w_on_set": ("share of W on the given set", 2),
    "dropped_precision": ("dropped precision", 2),
    "dropped_recall": ("dropped recall", 2),
    "added_precision": ("added precision", 2),
    "added_recall": ("added recall", 2),
    "sets_active": ("sets active (of 4)", 1),
    "decoys_active": ("decoys active (of 4)", 1),
    "decoys_matched": ("decoys matching a true factor (of 4)", 1),
    "decoys_r2": ("decoys R² ≥ 1 % (of 4)", 1),
    "decoy_r2_max": ("decoy max R²", 3),
    "factors": ("factors", 1),
    "wall_s": ("s per fit", 1),
}


def _cell(values: pd.Series, digits: int) -> str:
    v = values.dropna()
    if v.empty:
        return "—"
    sd = f" ± {v.std():.{digits}f}" if len(v) > 1 else ""
    few = f" (n = {len(v)})" if len(v) < len(values) else ""  # undefined in some fits (no call, no link)
    return f"{v.mean():.{digits}f}{sd}{few}"


def report(df: pd.DataFrame, seeds, weak: bool = False) -> str:
    setting = (
        f"{WEAK['n']} samples, link weights ±U{WEAK['weight_range']}"
        if weak
        else "300 samples, link weights ±U(0.4, 0.8)"
    )
    lines = [
        "# Feature sets in the prior: planted sets with wrong and missing members" + (", weak signal" if weak else ""),
        "",
        f"`make_annotated` ({setting}, noise SD 1; 6 true factors, sets for factors 1-4 with 20 % of the true "
        "members left out and the share `wrong` of the listed members replaced, 4 decoys), data seeds "
        f"{', '.join(map(str, seeds))}, mean ± SD over the seeds. AUROC: |W| of the set's annotated factor over `a` "
        "and `b` against its true support, mean over the 4 sets; POEMS without sets: the grouped AUROC of factors 1-4; "
        "the given sets: membership as the score. Dropped / added: POEMS's calls (`pm.tl.refined_sets`) against the "
        "wrong members / the true members the sets lack, pooled over the sets of a fit. Share of W on the given set: "
        "of the annotated factors' |W|, mean over the sets whose factor has a link. (n = k): a score undefined in "
        "some fits (no call, no link), the mean of k. "
        "Protocol in the script's docstring.",
        "",
        "| wrong | method | " + " | ".join(name for name, _ in COLUMNS.values()) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for (wrong, method), g in df.groupby(["wrong", "method"], sort=False):
        cells = [_cell(g[c], digits) if c in g else "—" for c, (_, digits) in COLUMNS.items()]
        lines.append(f"| {wrong:g} | {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = common.parser(__doc__, seeds=list(SEEDS))
    p.add_argument("--wrong", type=float, nargs="+", default=list(WRONG), help="shares of wrong members")
    p.add_argument("--weak", action="store_true", help=f"fewer samples, weaker links: {WEAK} (-> {NAME}_weak.*)")
    args = p.parse_args(argv)
    prov = common.provenance(__file__, argv)
    common.quiet()
    recs, checks = [], []
    for wrong in args.wrong:
        for seed in args.seeds:
            r, check = run(seed, wrong, args.quick, args.weak)
            recs += r
            checks += [{"seed": seed, "wrong": wrong, **c} for c in check]
            for x in r:
                print(json.dumps({k: v for k, v in x.items() if not isinstance(v, dict | list)}, default=float))
            print(json.dumps(check), flush=True)
    df = pd.DataFrame(recs)
    df["method"] = pd.Categorical(df["method"], categories=list(METHODS))
    df = df.sort_values(["wrong", "method"], kind="stable")
    payload = {
        "settings": {
            "seeds": args.seeds,
            "wrong": args.wrong,
            "train": QUICK_TRAIN if args.quick else "package defaults",
            "mofaflex_max_epochs": MOFAFLEX_QUICK_EPOCHS if args.quick else MOFAFLEX_EPOCHS,
            "min_r2": MIN_R2,
            "data": WEAK if args.weak else "make_annotated defaults",
        },
        "runs": recs,
        "linear_model_checks": checks,
    }
    markdown = report(df, args.seeds, args.weak)
    name = NAME + ("_weak" if args.weak else "")
    common.write_results(args.out / f"{name}.json", payload, provenance=prov, markdown=markdown)
    print(markdown)


if __name__ == "__main__":
    main()
