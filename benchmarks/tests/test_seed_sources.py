"""The seed-sources benchmark: each variant moves the draws it says it moves, and its scoring
(benchmarks/accuracy/seed_sources.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(scope="module")
def ss(load_benchmark):
    return load_benchmark("seed_sources")


class _Stop(Exception):
    pass


def _draws(ss, monkeypatch, variant: str, seed: int) -> tuple[dict, torch.Tensor]:
    """The module's initial weights and torch's random state when training starts, for one run of ``variant``."""
    import poems_mu as pm

    seen = {}

    def train(model, **kwargs):
        seen["state"] = {k: v.clone() for k, v in model.module.state_dict().items()}
        seen["rng"] = torch.get_rng_state().clone()
        raise _Stop

    monkeypatch.setattr(pm.POEMS, "train", train)
    with pytest.raises(_Stop):
        ss.fit(("breast_tcga", variant, seed, True))
    return seen["state"], seen["rng"]


def _same_weights(a: dict, b: dict) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(
    ("variant", "init_moves", "noise_moves"),
    [("default", True, True), ("fixed init", False, True), ("fixed training noise", True, False)],
)
def test_each_variant_moves_the_draws_it_names(ss, monkeypatch, variant, init_moves, noise_moves):
    state_1, rng_1 = _draws(ss, monkeypatch, variant, 1)
    state_2, rng_2 = _draws(ss, monkeypatch, variant, 2)
    assert _same_weights(state_1, state_2) is not init_moves
    assert torch.equal(rng_1, rng_2) is not noise_moves


def test_runs_that_agree_up_to_a_rotation_score_full_agreement(ss):
    rng = np.random.default_rng(0)
    centres = np.repeat(np.array([[0.0, 0.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 0.0]]), 30, axis=0)
    labels = np.repeat(["a", "b", "c"], 30)
    base = centres + 0.3 * rng.normal(size=centres.shape)
    runs = []
    for i in range(3):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        runs.append({"z": base @ q, "kept": 3 + i, "criterion": 100.0 + i, "epochs": 50, "train_s": 1.0})
    split = {"train": np.arange(60), "test": np.arange(60, 90)}
    out = ss.score(runs, labels, split)
    assert out["cka"] == pytest.approx(1.0) and out["ari"] == pytest.approx(1.0)
    assert out["kept"]["mean"] == pytest.approx(4.0) and out["kept"]["sd"] == pytest.approx(1.0)
    assert out["nmi_all"]["mean"] == pytest.approx(1.0) and out["nmi_all"]["sd"] == pytest.approx(0.0)
    runs[2]["z"] = rng.normal(size=base.shape)  # one run that shares nothing with the others
    worse = ss.score(runs, labels, split)
    assert worse["cka"] < 0.8 and worse["ari"] < 0.8


def test_the_schedule_variants_are_the_schedules_of_those_names_in_train_schedules_grid(ss, load_benchmark):
    """Each schedule variant runs what ``tuning/train_schedule.py`` runs under the same name."""
    ts = load_benchmark("train_schedule")
    assert ss.SCHEDULES and all(ss.VARIANTS[name][1] == ts.SCHEDULES[name] for name in ss.SCHEDULES)
