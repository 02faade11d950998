"""Sparse and nonlinear for real: the proximal spike-and-slab step, the biased generator, best state, restarts."""

from __future__ import annotations

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scvi
import torch

import poems_mu as pm
from poems_mu.nn import SpikeSlabLasso

from _helpers import sparse_decoder

SMALL = {"n_latent": 4, "n_hidden_encoder": 16, "n_hidden_decoder": 8, "n_hidden_gate": 8}
QUIET = {"enable_progress_bar": False}


def _mdata(n=80, n_b=60, seed=0):
    """Two modalities driven by 2 factors; 'b' measured on the first ``n_b`` samples only."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    names = [f"s{i}" for i in range(n)]
    xa = z @ rng.normal(size=(2, 8)) + 0.3 * rng.normal(size=(n, 8))
    xb = z[:n_b] @ rng.normal(size=(2, 6)) + 0.3 * rng.normal(size=(n_b, 6))
    a = ad.AnnData(xa.astype(np.float32), obs=pd.DataFrame(index=names))
    a.var_names = [f"a{j}" for j in range(8)]
    b = ad.AnnData(xb.astype(np.float32), obs=pd.DataFrame(index=names[:n_b]))
    b.var_names = [f"b{j}" for j in range(6)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return md.MuData({"a": a, "b": b})


def _model(mdata=None, seed=0, **kwargs):
    mdata = _mdata() if mdata is None else mdata
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(mdata)
    return pm.POEMS(mdata, **{**SMALL, **kwargs})


def _all_factors(model, z: np.ndarray) -> torch.Tensor:
    """The kept factors' scores as the decoders' input: the pruned factors, last and without links, at 0."""
    return torch.as_tensor(np.pad(z, ((0, 0), (0, model.module.n_latent - z.shape[1]))), dtype=torch.float32)


# --- the proximal step ------------------------------------------------------------------------------------------
def test_prox_is_the_hand_computed_soft_threshold_with_exact_zeros():
    prior = SpikeSlabLasso(n_features=2, n_latent=3, lambda0=10.0, lambda1=1.0, a=1.0, b=None)
    prior.p_star.copy_(torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.25]]))
    w = torch.tensor([[0.30, -0.30, 0.30], [0.05, -0.02, -2.0]])
    step = torch.tensor([[0.1, 0.02, 0.05], [0.1, 0.01, 0.2]])
    lam = 1.0 * prior.p_star + 10.0 * (1 - prior.p_star)  # λ* = λ1 p* + λ0 (1 − p*)
    expected = np.sign(w.numpy()) * np.maximum(np.abs(w.numpy()) - (step * lam).numpy(), 0)
    prior.prox(w, step)
    np.testing.assert_allclose(w.numpy(), expected, rtol=0, atol=1e-7)
    # [0.3 - 0.1] ; [-0.3 + 0.2] ; [0.3 - 0.275] ; 0.05 - 1.0 → 0 ; -0.02 + 0.01 ; -2 + 0.2·7.75
    np.testing.assert_allclose(w.numpy(), [[0.2, -0.1, 0.025], [0.0, -0.01, -0.45]], atol=1e-6)
    assert w[1, 0] == 0.0  # an exact zero, not a small number


def test_the_prior_warms_up_by_scale_or_by_spike_rate():
    prior = SpikeSlabLasso(n_features=2, n_latent=2, lambda0=30.0, lambda1=2.0, a=1.0, b=None)
    prior.p_star.fill_(0.5)
    full = prior.rates().clone()
    torch.testing.assert_close(full, torch.full((2, 2), 16.0))
    prior.anneal(0.25)  # "scale": the whole penalty at a quarter, λ0 as set (also for the E-step)
    torch.testing.assert_close(prior.rates(), 0.25 * full)
    assert float(prior.lambda0_now) == 30.0
    prior.anneal(0.25, "lambda0")
    assert float(prior.lambda0_now) == pytest.approx(2.0 + 0.25 * 28.0) and float(prior.penalty_scale) == 1.0
    prior.anneal(0.0, "both")
    assert (prior.rates() == 0).all()
    prior.anneal(3.0, "both")
    torch.testing.assert_close(prior.rates(), full)
    with pytest.raises(ValueError, match="sparsity warm-up mode"):
        prior.anneal(0.5, "linear")
    model = _model(lambda0=30.0, lambda1=2.0)
    model.train(
        max_epochs=3, early_stopping=False, n_epochs_kl_warmup=10, plan_kwargs={"sparsity_warmup": "both"}, **QUIET
    )
    # the third epoch (index 2) ran at 2/10 of the way
    for prior in model.module.priors:
        assert float(prior.lambda0_now) == pytest.approx(2.0 + 0.2 * 28.0)
        assert float(prior.penalty_scale) == pytest.approx(0.2)


def test_training_gives_exact_zeros_and_w_has_no_weight_decay():
    model = _model(lambda0=10.0, lambda1=1.0)
    model.train(max_epochs=30, early_stopping=False, n_epochs_kl_warmup=5, weight_decay=0.1, **QUIET)
    w = np.concatenate([model.get_loadings(m).to_numpy().ravel() for m in model.modalities])
    assert (w == 0).mean() > 0.1  # exact zeros among the kept factors' links, not small numbers
    optimizer = model.trainer.optimizers[0]
    ws = {id(p) for p in model.module.sparse_weights()}
    for group in optimizer.param_groups:
        ids = {id(p) for p in group["params"]}
        if ids & ws:
            assert ids == ws and group["weight_decay"] == 0.0
        else:
            assert group["weight_decay"] == 0.1


@pytest.mark.slow
def test_a_zero_row_comes_back_when_the_data_demand_it():
    def trained_row(bias: bool):
        # 64 training samples: a per-sample threshold λ/n of ≤ 0.03; the factor penalty, which acts on whole
        # columns, is off: this is about one feature's row
        model = _model(lambda0=2.0, lambda1=0.2, lambda_factor=0.0)
        dec = model.module.decoders[0]
        with torch.no_grad():
            dec.W[0] = 0.0  # feature a0 is driven by the factors, but starts cut off from all of them
            if not bias:
                dec.d.zero_()
        if not bias:
            dec.d.requires_grad_(False)
        model.train(max_epochs=60, batch_size=16, lr=1e-2, early_stopping=False, n_epochs_kl_warmup=10, **QUIET)
        return model.get_loadings("a").to_numpy()[0]

    assert np.abs(trained_row(bias=True)).max() > 0.1
    # the mechanism: without the first-layer bias the ReLUs of a zero row pass no gradient, and it stays dead
    assert (trained_row(bias=False) == 0).all()


# --- the generator ----------------------------------------------------------------------------------------------
def test_generator_is_not_positively_homogeneous():
    torch.manual_seed(0)
    dec = sparse_decoder(5, 3, 8, w_init_scale=0.5)
    z = torch.randn(4, 3)
    with torch.no_grad():
        base = dec(z) - dec.b
        scaled = dec(3.0 * z) - dec.b
    assert not torch.allclose(scaled, 3.0 * base, atol=1e-3)
    with torch.no_grad():
        dec.d.zero_()  # the generator of 0.1: linear along rays from the origin
        torch.testing.assert_close(dec(3.0 * z) - dec.b, 3.0 * (dec(z) - dec.b), rtol=1e-5, atol=1e-5)


def test_a_zero_loading_removes_the_factor_from_the_feature_and_the_jacobian_is_exact():
    torch.manual_seed(1)
    dec = sparse_decoder(6, 4, 8, chunk_size=4, w_init_scale=0.5).double()
    with torch.no_grad():
        dec.W[2, 1] = 0.0
        dec.W[4] = 0.0
    z = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    full = torch.autograd.functional.jacobian(lambda x: dec(x).sum(0), z)  # (D, B, K): ∂x̂_bj / ∂z_bk
    per_sample = torch.stack([full[:, b, :] for b in range(5)])  # (B, D, K)
    assert (per_sample[:, 2, 1] == 0).all() and (per_sample[:, 4] == 0).all()
    torch.testing.assert_close(dec.jacobian(z.detach()), per_sample)


def test_decoder_accepts_several_posterior_samples():
    torch.manual_seed(2)
    dec = sparse_decoder(5, 3, 8)
    z = torch.randn(4, 7, 3)
    out = dec(z)
    assert out.shape == (4, 7, 5)
    torch.testing.assert_close(out[2], dec(z[2]))


# --- inference with several samples, scvi's ELBO -----------------------------------------------------------------
def test_inference_with_several_samples_and_scvi_elbo():
    model = _model()
    model.train(max_epochs=3, early_stopping=False, **QUIET)
    module = model.module.eval()
    tensors = next(iter(model._make_data_loader(adata=model.adata, batch_size=16)))
    inf = module.inference(**module._get_inference_input(tensors), n_samples=6)
    assert inf["z"].shape == (6, 16, SMALL["n_latent"])
    gen = module.generative(inf["z"])
    assert gen["px_means"][0].shape == (6, 16, 8)
    out = module.loss(tensors, inf, gen, n_obs=80)
    assert out.reconstruction_loss["a"].shape == (16,) and torch.isfinite(out.loss)
    # the reconstruction is the mean over the samples of the per-sample reconstruction
    singles = [module.loss(tensors, {**inf, "z": inf["z"][s]}, module.generative(inf["z"][s])) for s in range(6)]
    mean_rec = torch.stack([o.reconstruction_loss["a"] for o in singles]).mean(0)
    torch.testing.assert_close(out.reconstruction_loss["a"], mean_rec)
    assert np.isfinite(model.get_elbo())
    rec = model.get_reconstruction_error()
    assert set(rec) == {"a", "b"} and all(np.isfinite(float(v)) for v in rec.values())


# --- best state and restarts ------------------------------------------------------------------------------------
def _criterion_at_mean(model, indices) -> float:
    module = model.module.eval()
    total, n = 0.0, 0
    with torch.no_grad():
        for tensors in model._make_data_loader(adata=model.adata, indices=indices, batch_size=1000):
            _, _, lo = module(tensors, inference_kwargs={"use_mean": True}, loss_kwargs={"n_obs": 1})
            k = len(lo.reconstruction_loss["a"])
            total += float(lo.extra_metrics["elbo_per_sample"]) * k
            n += k
    return total / n


def test_training_ends_at_its_best_held_out_state():
    model = _model()
    model.train(max_epochs=60, early_stopping=False, n_epochs_kl_warmup=10, lr=1e-2, **QUIET)
    run = model.training_summary_["runs"][0]
    hist = model.history["elbo_per_sample_validation"].iloc[:, 0].to_numpy()
    after_warmup = hist[10:]
    assert run["restored_best"] and run["best_epoch"] == 11 + int(np.argmin(after_warmup))
    assert run["validation_criterion"] == pytest.approx(after_warmup.min(), rel=1e-5)
    # the parameters the model holds are those of the best epoch, not the last
    val_idx = model.validation_indices
    assert _criterion_at_mean(model, val_idx) == pytest.approx(run["validation_criterion"], rel=1e-4)
    assert run["best_epoch"] < 60 or hist[-1] == after_warmup.min()


def test_a_plateau_scheduler_waits_for_the_warm_up():
    """The held-out ELBO rises while the KL weight does; a plateau scheduler that read it would halve the rate
    every few warm-up epochs and leave the model frozen at its start."""
    model = _model()
    plateau = {"reduce_lr_on_plateau": True, "lr_patience": 1, "lr_factor": 0.5}
    plateau["lr_scheduler_metric"] = "elbo_validation"
    model.train(max_epochs=40, early_stopping=False, n_epochs_kl_warmup=20, lr=1e-2, plan_kwargs=plateau, **QUIET)
    elbo = model.history["elbo_validation"].iloc[:, 0].to_numpy(dtype=float)
    lr = model.history["lr-AdamW/pg1"].iloc[:, 0].to_numpy(dtype=float)
    assert (np.diff(elbo[:20]) > 0).sum() >= 2  # the warm-up gives the scheduler plateaus to read
    assert np.all(lr[:20] == 1e-2)
    assert lr[-1] < 1e-2  # after the warm-up it runs (patience 1 over 20 epochs)


def test_restore_best_can_be_switched_off():
    model = _model()
    model.train(max_epochs=30, early_stopping=False, n_epochs_kl_warmup=5, plan_kwargs={"restore_best": False}, **QUIET)
    run = model.training_summary_["runs"][0]
    assert not run["restored_best"]
    last = model.history["elbo_per_sample_validation"].iloc[-1, 0]
    assert _criterion_at_mean(model, model.validation_indices) == pytest.approx(last, rel=1e-4)


def test_restarts_keep_the_best_held_out_run_and_are_reproducible():
    def fit():
        model = _model(seed=3)
        # lr 0.01: at the default rate the chosen run's best state still holds a factor without links (the training
        # plan prunes one only after PRUNE_PATIENCE epochs), which the end of training prunes; the recorded criterion
        # counts that factor's KL and the model held no longer does (about 0.1 % lower here)
        model.train(max_epochs=15, early_stopping=False, n_epochs_kl_warmup=3, n_restarts=3, lr=1e-2, **QUIET)
        return model

    model = fit()
    summary = model.training_summary_
    values = [r["validation_criterion"] for r in summary["runs"]]
    assert len(values) == 3 and len(set(values)) == 3  # different initialisations
    assert summary["chosen_restart"] == int(np.argmin(values))
    assert _criterion_at_mean(model, model.validation_indices) == pytest.approx(min(values), rel=1e-4)
    again = fit()
    assert again.training_summary_["chosen_restart"] == summary["chosen_restart"]
    np.testing.assert_array_equal(model.get_latent_representation(), again.get_latent_representation())
    model.store_results()
    uns = model.adata.uns["poems"]["training"]
    assert uns["chosen_restart"] == summary["chosen_restart"]
    np.testing.assert_allclose(uns["validation_criterion"], values)


def test_n_restarts_is_checked():
    model = _model()
    with pytest.raises(ValueError, match="n_restarts must be a positive integer"):
        model.train(max_epochs=2, n_restarts=0, **QUIET)


# --- contributions ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("prior_expert", [False, True])
def test_contributions_sum_to_one_and_are_zero_where_missing(prior_expert):
    model = _model(prior_expert=prior_expert)
    model.train(max_epochs=3, early_stopping=False, **QUIET)
    contrib = model.get_contributions()
    mods = contrib[["a", "b"]].to_numpy()
    np.testing.assert_allclose(mods.sum(1), 1.0, rtol=1e-6)
    assert (mods[60:, 1] == 0).all() and (mods[60:, 0] == 1).all()  # 'b' not measured for the last 20
    assert (mods[:60] > 0).all()
    if prior_expert:
        assert ((contrib["prior"] > 0) & (contrib["prior"] < 1)).all()
    else:
        assert "prior" not in contrib
    model.store_results()
    stored = model.adata.obsm["poems_contributions"]
    np.testing.assert_allclose(np.asarray(stored)[:, :2], mods, rtol=1e-6)


def test_contributions_weigh_gates_by_expert_precision():
    model = _model()
    model.train(max_epochs=3, early_stopping=False, **QUIET)
    module = model.module.eval()
    tensors = next(iter(model._make_data_loader(adata=model.adata, batch_size=100)))
    with torch.no_grad():
        inp = module._get_inference_input(tensors)
        inf = module.inference(**inp)
        xs = [
            lik.encoder_input(x, inp["observed"][:, v], None)
            for v, (lik, x) in enumerate(zip(module.likelihoods, inp["xs"], strict=True))
        ]
        tau = torch.stack([enc(x)[1] for enc, x in zip(module.encoders, xs, strict=True)], 1).neg().exp()
        w = inf["alpha"].unsqueeze(-1) * tau
        expected = (w / w.sum(1, keepdim=True)).mean(-1)
    np.testing.assert_allclose(model.get_contributions().to_numpy(), expected.numpy(), rtol=1e-5, atol=1e-7)


# --- effective loadings ---------------------------------------------------------------------------------------------
def test_effective_loadings_are_zero_where_w_is_and_match_finite_differences():
    model = _model(lambda0=10.0, lambda1=1.0)
    model.train(max_epochs=20, early_stopping=False, n_epochs_kl_warmup=3, **QUIET)
    with torch.no_grad():
        model.module.decoders[0].W[1, 2] = 0.0
    eff = model.get_effective_loadings("a")
    w = model.get_loadings("a").to_numpy()
    assert (eff.to_numpy()[w == 0] == 0).all() and eff.shape == w.shape
    dec = model.module.decoders[0]
    z = _all_factors(model, model.get_latent_representation())
    h, k = 1e-2, 0
    with torch.no_grad():
        zp, zm = z.clone(), z.clone()
        zp[:, k] += h
        zm[:, k] -= h
        fd = ((dec(zp) - dec(zm)) / (2 * h)).abs().mean(0) * z[:, k].std()
    np.testing.assert_allclose(eff.iloc[:, k].to_numpy(), fd.numpy(), rtol=0.05, atol=1e-3)


def test_a_failing_later_restart_gives_back_the_best_finished_one():
    import lightning.pytorch as pl

    class PoisonSecondRun(pl.Callback):
        runs = 0

        def on_train_start(self, trainer, plan):
            type(self).runs += 1

        def on_train_batch_end(self, trainer, plan, outputs, batch, batch_idx):
            if type(self).runs == 2 and trainer.current_epoch == 8:
                with torch.no_grad():
                    plan.module.decoders[0].W[0, 0] = float("nan")

    model = _model()
    with pytest.raises(pm.NonFiniteLossError):
        model.train(
            max_epochs=12,
            early_stopping=False,
            n_epochs_kl_warmup=3,
            n_restarts=2,
            callbacks=[PoisonSecondRun()],
            **QUIET,
        )
    # the model is the first restart's best state, usable, not the failed second one
    assert model.is_trained
    assert all(torch.isfinite(p).all() for p in model.module.parameters())
    hist = model.history["elbo_per_sample_validation"].iloc[3:, 0].to_numpy()
    assert len(model.history["elbo_train"]) == 12
    assert _criterion_at_mean(model, model.validation_indices) == pytest.approx(hist.min(), rel=1e-4)


def test_no_proximal_step_on_minibatches_that_only_accumulate_gradients():
    model = _model(lambda0=10.0, lambda1=1.0)
    calls = []
    original = model.module.proximal_step

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    model.module.proximal_step = spy
    # 64 training samples in minibatches of 16: 4 minibatches, 2 optimizer steps per epoch
    model.train(max_epochs=3, batch_size=16, early_stopping=False, accumulate_grad_batches=2, **QUIET)
    assert len(calls) == 3 * 2
