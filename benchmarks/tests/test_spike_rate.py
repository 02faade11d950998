"""The spike-rate benchmark's summary: means over seeds and the held-out difference paired by seed
(benchmarks/tuning/spike_rate.py)."""

from __future__ import annotations

import pandas as pd
import pytest


@pytest.fixture(scope="module")
def sr(load_benchmark):
    return load_benchmark("spike_rate")


def _records():
    rows = []
    for lam, shift, links in ((15.0, 0.0, 10.0), (30.0, 1.0, 6.0)):
        for seed, elbo in enumerate((500.0, 510.0, 520.0)):
            rows.append(
                {
                    "lambda0": lam,
                    "data": "cohort",
                    "seed": seed,
                    "kept": 10 - int(lam == 30.0) * seed,
                    "elbo": elbo + (shift if seed else -shift),
                    "links_per_feature": links,
                    "density_kept": links / 20,
                    "grouped_auroc": None,
                }
            )
    return pd.DataFrame(rows)


def test_the_held_out_difference_is_paired_by_seed_and_counts_the_worse_seeds(sr):
    rows = {r["lambda0"]: r for r in sr.summarise(_records())}
    base, larger = rows[15.0], rows[30.0]
    assert base["elbo_diff"] == pytest.approx(0.0) and base["worse_on"] == 0
    assert larger["elbo_diff"] == pytest.approx(1.0 / 3) and larger["worse_on"] == 2 and larger["paired"] == 3
    assert larger["kept"] == pytest.approx(9.0) and larger["kept_range"] == [8, 10]
    assert larger["links_per_feature"] == pytest.approx(6.0) and "grouped_auroc" not in larger


def test_a_seed_without_its_default_run_is_left_out_of_the_pairing(sr):
    df = _records()
    df = df[~((df["lambda0"] == 15.0) & (df["seed"] == 0))]
    larger = {r["lambda0"]: r for r in sr.summarise(df)}[30.0]
    assert larger["paired"] == 2 and larger["elbo_diff"] == pytest.approx(1.0)
