"""The sparsity-onset benchmark's arms (benchmarks/tuning/sparsity_onset.py)."""

from __future__ import annotations

import inspect


def test_the_arms_keep_the_packages_schedule_and_start_the_prior_no_later_than_it_does(load_benchmark):
    import poems_mu as pm

    so = load_benchmark("sparsity_onset")
    ts = load_benchmark("train_schedule")
    schedule = ts.SCHEDULES[so.SCHEDULE]
    train = inspect.signature(pm.POEMS.train).parameters
    assert {k: train[k].default for k in schedule} == schedule  # the package's training schedule
    assert so.ONSETS[0] == schedule["n_epochs_kl_warmup"]  # the package's onset: the KL warm-up's end
    assert all(onset < so.ONSETS[0] for onset in so.ONSETS[1:])
    assert so.arm(so.ONSETS[0], schedule["n_epochs_kl_warmup"]).endswith("(default)")
    assert not so.arm(50, schedule["n_epochs_kl_warmup"]).endswith("(default)")
