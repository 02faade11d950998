"""The training-schedule benchmark: its split, its test criterion and its rule (benchmarks/tuning/train_schedule.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def ts(load_benchmark):
    return load_benchmark("train_schedule")


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
    rows = {
        "a": {"in_range": True, "planted 4: auroc": 0.99, "planted 8: auroc": 0.97, "test": 600.0},
        "b": {"in_range": True, "planted 4: auroc": 0.99, "planted 8: auroc": 0.96, "test": 590.0},
        "c": {"in_range": False, "planted 4: auroc": 0.99, "planted 8: auroc": 0.99, "test": 580.0},
        "d": {"in_range": True, "planted 4: auroc": 0.99, "planted 8: auroc": 0.94, "test": 585.0},
    }
    for name, row in overrides.items():
        rows[name].update(row)
    return pd.DataFrame([{"schedule": k, **v} for k, v in rows.items()])


def test_the_rule_takes_the_lowest_test_criterion_among_schedules_that_recover_the_planted_factors(ts):
    assert ts.choose(_summary()) == "b"  # c misses a planted count, d's AUROC is below 0.95
    assert ts.choose(_summary(d={"planted 8: auroc": 0.95})) == "d"
    assert ts.choose(_summary(**{k: {"in_range": False} for k in "abcd"})) is None
