"""Property tests (hypothesis) for the math: gated product of experts, gates, and the spike-and-slab E-step."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from poems_mu.nn import GatingNetwork, SpikeSlabLasso, masked_log_softmax, product_of_experts

FAST = settings(max_examples=40, deadline=None)
f32 = np.float32


@st.composite
def experts(draw, max_batch=4, max_modalities=4, max_latent=3, mu_bound=1e3, logvar_bound=12.0):
    """Expert means and log-variances, an observed mask with at least one modality per sample, log gates."""
    b = draw(st.integers(1, max_batch))
    v = draw(st.integers(1, max_modalities))
    k = draw(st.integers(1, max_latent))
    mu = draw(arrays(f32, (b, v, k), elements=st.floats(-mu_bound, mu_bound, width=32)))
    logvar = draw(arrays(f32, (b, v, k), elements=st.floats(-logvar_bound, logvar_bound, width=32)))
    observed = draw(arrays(np.bool_, (b, v)))
    first = draw(arrays(np.int64, (b,), elements=st.integers(0, v - 1)))
    observed[np.arange(b), first] = True
    logits = draw(arrays(f32, (b, v), elements=st.floats(-20, 20, width=32)))
    observed_t = torch.from_numpy(observed)
    log_alpha = masked_log_softmax(torch.from_numpy(logits), observed_t)
    return torch.from_numpy(mu), torch.from_numpy(logvar), log_alpha, observed_t


@FAST
@given(experts(), st.booleans(), st.randoms(use_true_random=False))
def test_poe_is_invariant_to_the_order_of_the_experts(e, prior, rnd):
    mu, logvar, log_alpha, _ = e
    perm = list(range(mu.shape[1]))
    rnd.shuffle(perm)
    m1, lv1 = product_of_experts(mu, logvar, log_alpha, prior)
    m2, lv2 = product_of_experts(mu[:, perm], logvar[:, perm], log_alpha[:, perm], prior)
    torch.testing.assert_close(m2, m1, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(lv2, lv1, rtol=1e-5, atol=1e-5)


@FAST
@given(experts())
def test_a_single_observed_expert_is_returned_unchanged(e):
    mu, logvar, _, _ = e
    b, v, _ = mu.shape
    only = torch.zeros(b, v, dtype=torch.bool)
    only[:, v - 1] = True
    log_alpha = masked_log_softmax(torch.randn(b, v), only)
    assert torch.equal(log_alpha[:, v - 1], torch.zeros(b))  # alpha = 1 exactly
    m, lv = product_of_experts(mu, logvar, log_alpha, prior_expert=False)
    assert torch.equal(m, mu[:, v - 1])
    assert torch.equal(lv, logvar[:, v - 1])


@FAST
@given(experts(), st.booleans(), st.integers(0, 2**31 - 1))
def test_masked_experts_have_no_influence_whatever_their_values(e, prior, seed):
    mu, logvar, log_alpha, observed = e
    gen = torch.Generator().manual_seed(seed)
    hidden = ~observed.unsqueeze(-1).expand_as(mu)
    wild_mu = torch.where(hidden, torch.empty_like(mu).uniform_(-1e30, 1e30, generator=gen), mu)
    wild_lv = torch.where(hidden, torch.empty_like(mu).uniform_(-1e4, 1e4, generator=gen), logvar)
    m1, lv1 = product_of_experts(mu, logvar, log_alpha, prior)
    m2, lv2 = product_of_experts(wild_mu, wild_lv, log_alpha, prior)
    assert torch.equal(m1, m2) and torch.equal(lv1, lv2)


@FAST
@given(experts(mu_bound=10.0), st.booleans())
def test_poe_precision_is_the_gated_sum_and_the_mean_a_convex_combination(e, prior):
    mu, logvar, log_alpha, observed = e
    m, lv = product_of_experts(mu, logvar, log_alpha, prior)
    alpha, tau = log_alpha.double().exp().unsqueeze(-1), torch.exp(-logvar.double())
    tau_s = (alpha * tau).sum(1) + (1.0 if prior else 0.0)
    torch.testing.assert_close(torch.exp(-lv.double()), tau_s, rtol=1e-4, atol=0)
    mean = (alpha * tau * mu.double()).sum(1) / tau_s
    torch.testing.assert_close(m.double(), mean, rtol=1e-4, atol=1e-5)
    big = torch.where(observed.unsqueeze(-1), mu, torch.tensor(-torch.inf)).amax(1)
    small = torch.where(observed.unsqueeze(-1), mu, torch.tensor(torch.inf)).amin(1)
    if prior:
        big, small = big.clamp_min(0), small.clamp_max(0)
    assert (m <= big + 1e-4 * (1 + big.abs())).all() and (m >= small - 1e-4 * (1 + small.abs())).all()


@FAST
@given(st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**31 - 1), st.floats(1e-3, 1e4))
def test_gates_sum_to_one_over_observed_modalities_and_are_zero_elsewhere(b, v, seed, scale):
    gen = torch.Generator().manual_seed(seed)
    observed = torch.rand(b, v, generator=gen) < 0.5
    observed[torch.arange(b), torch.randint(v, (b,), generator=gen)] = True
    logits = torch.randn(b, v, generator=gen) * scale
    alpha = masked_log_softmax(logits, observed).exp()
    assert (alpha[~observed] == 0).all() and (alpha >= 0).all()
    torch.testing.assert_close(alpha.sum(1), torch.ones(b), rtol=0, atol=1e-5)
    k = 3
    torch.manual_seed(seed)
    mu = torch.randn(b, v, k, generator=gen) * scale
    for fixed in (False, True):
        gate = GatingNetwork(v, k, n_hidden=8, fixed=fixed).eval()
        with torch.no_grad():
            alpha = gate(mu, observed).exp()
        assert (alpha[~observed] == 0).all() and torch.isfinite(alpha).all()
        torch.testing.assert_close(alpha.sum(1), torch.ones(b), rtol=0, atol=1e-5)
        if fixed:
            expected = observed.float() / observed.float().sum(1, keepdim=True)
            torch.testing.assert_close(alpha, expected)


@st.composite
def ssl_problems(draw):
    d = draw(st.integers(1, 6))
    k = draw(st.integers(1, 4))
    w = draw(arrays(f32, (d, k), elements=st.floats(allow_nan=False, allow_infinity=False, width=32)))
    lambda1 = draw(st.floats(1e-2, 10.0))
    lambda0 = lambda1 * draw(st.floats(1.01, 1e3))
    a = draw(st.floats(0.1, 10.0))
    b = draw(st.one_of(st.none(), st.floats(0.1, 1e4)))
    theta = draw(arrays(f32, (k,), elements=st.floats(0.0, 1.0, width=32)))
    return w, lambda0, lambda1, a, b, theta


@FAST
@given(ssl_problems())
def test_e_step_keeps_p_star_in_0_1_and_theta_in_open_0_1_for_any_w(problem):
    w, lambda0, lambda1, a, b, theta = problem
    prior = SpikeSlabLasso(w.shape[0], w.shape[1], lambda0, lambda1, a, b)
    prior.theta.copy_(torch.from_numpy(theta))
    w = torch.from_numpy(w)
    for _ in range(3):
        prior.e_step(w)
        p, t = prior.p_star, prior.theta
        assert torch.isfinite(p).all() and (p >= 0).all() and (p <= 1).all()
        assert torch.isfinite(t).all() and (t > 0).all() and (t < 1).all()
        # more weight, more slab: p* is non-decreasing in |w| within each factor (up to rounding: vectorised and
        # scalar exp round differently, so equal |w| may differ in the last bit)
        order = torch.argsort(w.abs(), dim=0)
        assert (torch.diff(torch.gather(p, 0, order), dim=0) >= -1e-6).all()
