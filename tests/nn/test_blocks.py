"""The model's mathematical pieces against independent computations."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from poems_mu.nn import GatingNetwork, GaussianLikelihood, SpikeSlabLasso, product_of_experts
from poems_mu.nn._gating import masked_log_softmax
from poems_mu.nn._reference import feature_loop_decode

from _helpers import sparse_decoder


def _grid_product_moments(mus, sds, alphas, prior):
    """Mean and variance of ∏_v N(z; μ_v, σ_v²)^{α_v} (· N(z; 0, 1)) by numerical integration on a grid."""
    grid = np.linspace(-30, 30, 600_001)
    log_dens = np.zeros_like(grid)
    for mu, sd, a in zip(mus, sds, alphas, strict=True):
        log_dens += a * stats.norm.logpdf(grid, mu, sd)
    if prior:
        log_dens += stats.norm.logpdf(grid, 0, 1)
    dens = np.exp(log_dens - log_dens.max())
    dens /= np.trapezoid(dens, grid)
    mean = np.trapezoid(grid * dens, grid)
    return mean, np.trapezoid((grid - mean) ** 2 * dens, grid)


@pytest.mark.parametrize("prior", [False, True])
def test_poe_matches_direct_product_of_densities(prior):
    mus, sds, alphas = [1.5, -0.7, 3.0], [0.8, 1.7, 2.5], [0.5, 0.3, 0.2]
    mean, var = _grid_product_moments(mus, sds, alphas, prior)
    mu_t = torch.tensor(mus, dtype=torch.float64).view(1, 3, 1)
    logvar_t = torch.log(torch.tensor(sds, dtype=torch.float64) ** 2).view(1, 3, 1)
    mu_s, logvar_s = product_of_experts(mu_t, logvar_t, torch.log(torch.tensor([alphas], dtype=torch.float64)), prior)
    assert mu_s.item() == pytest.approx(mean, rel=1e-5)
    assert math.exp(logvar_s.item()) == pytest.approx(var, rel=1e-5)


def test_poe_masked_expert_has_no_influence_and_no_nan_gradient():
    mu = torch.randn(4, 3, 5, requires_grad=True)
    logvar = torch.randn(4, 3, 5, requires_grad=True)
    observed = torch.tensor([[1, 1, 0], [1, 0, 0], [0, 1, 1], [1, 1, 1]], dtype=torch.bool)
    log_alpha = masked_log_softmax(torch.randn(4, 3, requires_grad=True), observed)
    mu_s, logvar_s = product_of_experts(mu, logvar, log_alpha)
    (mu_s.sum() + logvar_s.sum()).backward()
    assert torch.isfinite(mu.grad).all() and torch.isfinite(logvar.grad).all()
    # gradient never flows into an expert the sample does not have
    assert (mu.grad[~observed] == 0).all()
    # sample 1 has only modality 0: the product is that expert, rescaled in precision by alpha=1
    torch.testing.assert_close(mu_s[1], mu[1, 0])
    torch.testing.assert_close(logvar_s[1], logvar[1, 0])


def test_gating_masks_give_exact_zeros_and_rows_sum_to_one():
    gate = GatingNetwork(n_modalities=3, n_latent=4, n_hidden=64, fixed=False)
    observed = torch.tensor([[1, 1, 1], [1, 0, 1], [0, 0, 1]], dtype=torch.bool)
    alpha = gate(torch.randn(3, 3, 4), observed).exp()
    assert (alpha[~observed] == 0).all()
    torch.testing.assert_close(alpha.sum(1), torch.ones(3))
    assert alpha[2, 2] == 1
    fixed = GatingNetwork(n_modalities=3, n_latent=4, n_hidden=64, fixed=True)(torch.randn(3, 3, 4), observed).exp()
    torch.testing.assert_close(fixed[1], torch.tensor([0.5, 0.0, 0.5]))


def test_gate_ignores_the_padded_input_of_a_missing_modality():
    gate = GatingNetwork(n_modalities=2, n_latent=3, n_hidden=64, fixed=False)
    observed = torch.tensor([[True, False]])
    mu = torch.randn(1, 2, 3)
    other = mu.clone()
    other[0, 1] = torch.randn(3) * 100
    torch.testing.assert_close(gate(mu, observed), gate(other, observed))


def test_e_step_matches_hand_computation():
    lam0, lam1, a, b = 10.0, 1.0, 1.0, 3.0
    prior = SpikeSlabLasso(n_features=3, n_latent=2, lambda0=lam0, lambda1=lam1, a=a, b=b)
    prior.theta.copy_(torch.tensor([0.3, 0.6]))
    w = torch.tensor([[0.0, 0.5], [2.0, -0.01], [-0.2, 1.0]])
    prior.e_step(w)

    def psi(lam, x):
        return lam / 2 * np.exp(-lam * abs(x))

    theta = [0.3, 0.6]
    expected = np.array(
        [
            [
                theta[k] * psi(lam1, x) / (theta[k] * psi(lam1, x) + (1 - theta[k]) * psi(lam0, x))
                for k, x in enumerate(row)
            ]
            for row in w.tolist()
        ]
    )
    np.testing.assert_allclose(prior.p_star.numpy(), expected, rtol=1e-5)
    expected_theta = (expected.sum(0) + a - 1) / (a + b + 3 - 2)
    np.testing.assert_allclose(prior.theta.numpy(), expected_theta, rtol=1e-5)
    # penalty: sum_jk [lam1 p* + lam0 (1 - p*)] |w|
    expected_pen = ((lam1 * expected + lam0 * (1 - expected)) * np.abs(w.numpy())).sum()
    assert prior.penalty(w).item() == pytest.approx(expected_pen, rel=1e-5)


def test_e_step_is_stable_for_huge_weights():
    prior = SpikeSlabLasso(n_features=2, n_latent=2, lambda0=10.0, lambda1=1.0, a=1.0, b=None)
    prior.e_step(torch.tensor([[1e6, 0.0], [-1e4, 1e-30]]))
    assert torch.isfinite(prior.p_star).all() and torch.isfinite(prior.theta).all()
    assert prior.p_star[0, 0] == 1
    assert 0 < prior.theta.min() and prior.theta.max() < 1


@pytest.mark.parametrize("chunk_size", [None, 1, 7])
def test_vectorised_decoder_matches_feature_loop(chunk_size):
    torch.manual_seed(0)
    dec = sparse_decoder(23, 5, 6, chunk_size=chunk_size)
    with torch.no_grad():
        dec.b.normal_()
    z = torch.randn(9, 5)
    with torch.no_grad():
        fast = dec(z)
    torch.testing.assert_close(fast, feature_loop_decode(dec, z), rtol=1e-5, atol=1e-5)


def test_zero_loading_removes_the_factor_from_the_feature():
    torch.manual_seed(0)
    dec = sparse_decoder(4, 3, 8)
    with torch.no_grad():
        dec.W[2, 1] = 0.0
    z = torch.randn(5, 3)
    z2 = z.clone()
    z2[:, 1] += 10.0
    with torch.no_grad():
        out, out2 = dec(z), dec(z2)
    torch.testing.assert_close(out[:, 2], out2[:, 2])
    assert not torch.allclose(out[:, 0], out2[:, 0])


def test_sigma_prior_puts_the_stated_mass_below_the_quantile():
    lik = GaussianLikelihood(5, prior_df=3.0, prior_quantile_sd=0.7, prior_probability=0.9)
    # scaled inverse-chi2(nu, s0^2) is InvGamma(nu / 2, scale = nu s0^2 / 2)
    dist = stats.invgamma(a=3.0 / 2, scale=3.0 * lik.prior_scale2 / 2)
    assert dist.cdf(0.7**2) == pytest.approx(0.9, rel=1e-6)
