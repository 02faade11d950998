"""The defaults benchmark's E-step fixed point (benchmarks/tuning/train_defaults.py)."""

from __future__ import annotations

import copy

import pytest
import torch


def test_the_fixed_point_is_one_the_e_step_keeps_and_the_model_is_left_as_it_was(load_benchmark):
    import scvi

    import poems_mu as pm
    from poems_mu.datasets._synthetic import make_planted3

    td = load_benchmark("train_defaults")
    mdata = make_planted3(n=80, seed=0)[0]
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, n_latent=6)
    model.train(max_epochs=12, n_epochs_kl_warmup=4, enable_progress_bar=False)
    module = model.module
    returned = [(p.p_star.clone(), p.theta.clone()) for p in module.priors]
    fixed = td.e_step_fixed_point(model)
    for (p_star, theta), prior in zip(returned, module.priors, strict=True):
        assert torch.equal(prior.p_star, p_star) and torch.equal(prior.theta, theta)  # the model's prior untouched
    kept = module.factor_index()
    for mod, prior, dec in zip(module.modalities, module.priors, module.decoders, strict=True):
        again = copy.deepcopy(prior)
        for _ in range(10_000):
            again.e_step(dec.W)
        assert fixed[mod]["theta"] == pytest.approx(float(again.theta.index_select(0, kept).double().mean()), abs=1e-6)
        assert fixed[mod]["slab"] == pytest.approx(float((again.p_star > 0.5).double().mean()), abs=1e-9)
