"""The training-schedule benchmark: its split, its test criterion and its rule (benchmarks/tuning/train_schedule.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

BASE = "previous default"  # train_schedule.BASE, checked below


@pytest.fixture(scope="module")
def ts(load_benchmark):
    module = load_benchmark("train_schedule")
    assert module.BASE == BASE
    return module


def test_the_split_is_drawn_by_the_seed_alone_and_its_parts_partition_the_samples(ts):
    split = ts.cohort_split(220, seed=3)
    assert set(split["train"]) == set(split["fit"]) | set(split["val"])
    assert not set(split["fit"]) & set(split["val"]) and not set(split["train"]) & set(split["test"])
    assert sorted([*split["train"], *split["test"]]) == list(range(220))
    assert len(split["test"]) == 44 and len(split["val"]) == 35
    again, other = ts.cohort_split(220, seed=3), ts.cohort_split(220, seed=4)
    assert all(np.array_equal(split[k], again[k]) for k in split)
    assert not np.array_equal(split["test"], other["test"])


def test_the_test_criterion_is_early_stoppings_criterion_on_other_samples(ts):
    """On the validation samples, at the restored best state, it gives the value early stopping recorded (the run
    is long enough for the unused factors to be pruned before its best epoch: pruning changes the criterion)."""
    import scvi

    import poems_mu as pm
    from poems_mu.datasets._synthetic import make_planted3

    mdata = make_planted3(n=120, seed=0)[0]
    split = ts.cohort_split(mdata.n_obs, seed=0)
    train = mdata[mdata.obs_names[split["train"]]].copy()
    pos = {n: i for i, n in enumerate(train.obs_names)}
    fit = np.array([pos[n] for n in mdata.obs_names[split["fit"]]])
    val = np.array([pos[n] for n in mdata.obs_names[split["val"]]])
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(train)
    model = pm.POEMS(train, n_latent=6)
    model.train(
        max_epochs=30,
        n_epochs_kl_warmup=5,
        enable_progress_bar=False,
        datasplitter_kwargs={"external_indexing": [fit, val, np.array([], dtype=np.int64)]},
    )
    summary = model.training_summary_
    recorded = summary["runs"][summary["chosen_restart"]]["validation_criterion"]
    assert ts.criterion_at_means(model, train, val) == pytest.approx(recorded, rel=1e-5)
    assert ts.criterion_at_means(model, train, fit) != pytest.approx(recorded, rel=1e-3)


def _summary(**overrides) -> pd.DataFrame:
    """Four schedules that meet every condition of the rule (``base`` stands for the rule's base schedule), with
    ``overrides`` per row."""
    meets = {
        "batch: knn": 0.6,
        "sets: auroc": 0.93,
        "breast_tcga: cka": 0.85,
        "rosmap: cka": 0.89,
        "in_range": True,
        "planted 4: auroc": 0.99,
        "planted 8: auroc": 0.97,
    }
    rows = {k: dict(meets) for k in ("base", "b", "c", "d")}
    for name, test in zip(rows, (600.0, 590.0, 580.0, 585.0), strict=True):
        rows[name]["test"] = test
    for name, row in overrides.items():
        rows[name].update(row)
    return pd.DataFrame([{"schedule": BASE if k == "base" else k, **v} for k, v in rows.items()])


def test_the_rule_takes_the_lowest_test_criterion_among_schedules_that_recover_the_planted_factors(ts):
    assert ts.choose(_summary()) == "c"
    assert ts.choose(_summary(c={"in_range": False}, d={"planted 8: auroc": 0.94})) == "b"
    assert ts.choose(_summary(c={"in_range": False}, d={"planted 8: auroc": 0.95})) == "d"
    assert ts.choose(_summary(**{k: {"in_range": False} for k in ("base", "b", "c", "d")})) is None


def test_the_rule_refuses_a_schedule_that_keeps_the_batch_loses_the_sets_or_makes_seeds_disagree_more(ts):
    """Each constraint alone moves the choice from ``c`` to ``d``; the default is held to its own values."""
    assert ts.choose(_summary(c={"batch: knn": 0.66})) == "d"
    assert ts.choose(_summary(c={"sets: auroc": 0.92})) == "d"
    assert ts.choose(_summary(c={"rosmap: cka": 0.88})) == "d"
    assert ts.choose(_summary(c={"breast_tcga: cka": 0.84})) == "d"
    assert ts.choose(_summary(c={"sets: auroc": 0.94}, d={"breast_tcga: cka": 0.86})) == "c"  # better than the default
    met = ts.constraints(_summary(base={"sets: auroc": 0.95}))
    assert list(met.all(axis=1)) == [True, False, False, False]  # the others now recover the sets worse
    every = {"batch: knn": 0.7}
    assert ts.choose(_summary(**dict.fromkeys(("base", "b", "c", "d"), every))) is None


def test_with_one_seed_agreement_is_not_compared(ts):
    nan = {"breast_tcga: cka": float("nan"), "rosmap: cka": float("nan")}
    assert ts.choose(_summary(**dict.fromkeys(("base", "b", "c", "d"), nan))) == "c"


def test_another_base_holds_the_schedules_to_its_own_sets_and_agreement(ts):
    """``sparsity_onset.py`` holds its onsets to the package's schedule rather than to the previous default."""
    summary = _summary(b={"sets: auroc": 0.95, "rosmap: cka": 0.95})
    assert ts.choose(summary) == "c"
    assert ts.choose(summary, "b") == "b"  # only b recovers the sets and agrees as well as itself
    assert list(ts.constraints(summary, "b").all(axis=1)) == [False, True, False, False]
