"""The dropout benchmark's arms and its partition scores (benchmarks/tuning/dropout.py)."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd


def test_the_arms_keep_the_packages_schedule_and_start_from_its_dropout(load_benchmark):
    import poems_mu as pm

    dr = load_benchmark("dropout")
    ts = load_benchmark("train_schedule")
    schedule = ts.SCHEDULES[dr.SCHEDULE]
    train = inspect.signature(pm.POEMS.train).parameters
    assert {k: train[k].default for k in schedule} == schedule  # the package's training schedule
    assert dr.RATES[0] == inspect.signature(pm.POEMS).parameters["dropout"].default  # the base is the default
    assert dr.arm(dr.RATES[0]).endswith("(default)") and not dr.arm(dr.RATES[-1]).endswith("(default)")


def test_partitions_score_agreement_between_seeds_and_the_nmi_spread(load_benchmark):
    dr = load_benchmark("dropout")
    ts = load_benchmark("train_schedule")
    from _baselines import load_dataset

    rng = np.random.default_rng(0)
    records = []
    for data in ts.DATASETS:
        mdata, key = load_dataset(data)
        codes = pd.factorize(mdata.obs[key])[0]
        informative = np.eye(codes.max() + 1)[codes] * 5 + rng.normal(0, 0.1, (mdata.n_obs, codes.max() + 1))
        for seed in range(3):
            # one arm sees the classes on every seed; the other sees noise drawn anew per seed
            records.append({"schedule": "same", "data": data, "seed": seed, "z": informative})
            records.append({"schedule": "noise", "data": data, "seed": seed, "z": rng.normal(size=(mdata.n_obs, 3))})
    parts = dr.partitions(pd.DataFrame(records)).set_index(["schedule", "data"])
    for data in ts.DATASETS:
        assert parts.loc[("same", data), "agreement"] == 1.0
        assert parts.loc[("same", data), "nmi_mean"] > 0.99 and parts.loc[("same", data), "nmi_sd"] < 1e-9
        assert parts.loc[("noise", data), "agreement"] < 0.2
        assert parts.loc[("noise", data), "nmi_mean"] < 0.1
