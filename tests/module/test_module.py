"""The POEMS module's objective: the ELBO's pieces against independent computations."""

import numpy as np
import pytest
import torch
from scipy import stats

from poems_mu.module import Hyperparameters, POEMSModule
from poems_mu.nn import FeatureStatistics


def _module(n_features=(4, 3), **kwargs):
    torch.manual_seed(0)
    stats = [
        FeatureStatistics(np.zeros(d, np.float32), np.ones(d, np.float32), np.ones(d, np.float32), 0.0, np.zeros(d))
        for d in n_features
    ]
    hparams = Hyperparameters(n_latent=2, n_hidden_encoder=8, n_hidden_decoder=8, dropout=0.0, **kwargs)
    return POEMSModule(["a", "b"], list(n_features), stats, hparams, ["gaussian", "gaussian"])


def _batch(n=6, observed_b=None):
    torch.manual_seed(1)
    t = {"X_a": torch.randn(n, 4), "X_b": torch.randn(n, 3), "M_a": torch.ones(n)}
    t["M_b"] = torch.ones(n) if observed_b is None else torch.tensor(observed_b, dtype=torch.float32)
    t["X_b"] = t["X_b"] * t["M_b"][:, None]
    return t


def _loss(module, tensors, **kwargs):
    inf = module.inference(**module._get_inference_input(tensors))
    gen = module.generative(inf["z"])
    return module.loss(tensors, inf, gen, **kwargs), inf, gen


def test_elbo_pieces_are_per_sample_sums_and_global_terms_are_divided_by_n_obs():
    module = _module(kl_weight=0.7).eval()
    tensors = _batch(observed_b=[1, 1, 0, 1, 0, 1])
    out, inf, gen = _loss(module, tensors, kl_weight=0.5, n_obs=40)
    # reconstruction of a modality: sum over features of the Gaussian NLL, zero for samples lacking it
    x = inf["xs_std"][1]
    sigma = module.likelihoods[1].sigma
    nll = -stats.norm.logpdf(x.numpy(), gen["px_means"][1].detach().numpy(), sigma.detach().numpy()).sum(1)
    nll *= tensors["M_b"].numpy()
    np.testing.assert_allclose(out.reconstruction_loss["b"].detach().numpy(), nll, rtol=1e-4, atol=1e-5)
    assert (out.reconstruction_loss["b"][tensors["M_b"] == 0] == 0).all()
    # KL(q || N(0, I)) summed over the latent dimensions
    qz = inf["qz"]
    kl = torch.distributions.kl_divergence(qz, torch.distributions.Normal(0, 1)).sum(-1)
    torch.testing.assert_close(out.kl_local["kl_z"], kl)
    rec = out.reconstruction_loss["a"] + out.reconstruction_loss["b"]
    # the spike-and-slab penalty is applied by the proximal step, not through the loss; it is still reported
    assert module.ssl_penalty() > 0
    expected = (rec + 0.5 * 0.7 * kl).mean() + module.feature_prior_penalty() / 40
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(
        out.kl_global_sum, module.feature_prior_penalty() + module.ssl_penalty() + module.factor_penalty()
    )
    torch.manual_seed(5)
    out40, _, _ = _loss(module, tensors, kl_weight=0.5, n_obs=40)
    torch.manual_seed(5)  # same z sample, so only the global term's scaling differs
    out80, _, _ = _loss(module, tensors, kl_weight=0.5, n_obs=80)
    torch.testing.assert_close(out40.loss - out80.loss, module.feature_prior_penalty() / 80)


def test_loss_is_a_per_sample_mean_so_it_does_not_depend_on_the_batch_size():
    module = _module().eval()
    tensors = _batch()
    doubled = {k: torch.cat([v, v]) for k, v in tensors.items()}
    out, _, _ = _loss(module, tensors, n_obs=10)
    out_d, _, _ = _loss(module, doubled, n_obs=10)
    # the KL term is deterministic given x: its batch mean is the same for a batch and the batch twice over
    assert out.kl_local["kl_z"].mean().item() == pytest.approx(out_d.kl_local["kl_z"].mean().item(), rel=1e-6)
    assert out.kl_global_sum.item() == pytest.approx(out_d.kl_global_sum.item())


def test_dense_decoder_has_no_sparsity_prior():
    module = _module(decoder="dense", factor_start="random")
    assert module.priors is None
    out, _, _ = _loss(module, _batch(), n_obs=10)
    assert torch.isfinite(out.loss)
    assert not any(k.startswith("W_density") for k in out.extra_metrics)
