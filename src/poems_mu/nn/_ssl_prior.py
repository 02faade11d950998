"""Spike-and-slab lasso prior on a feature-to-factor matrix W (Ročková & George), with its EM updates."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

_THETA_EPS = 1e-6


class SpikeSlabLasso(nn.Module):
    """``w | γ ~ γ Laplace(λ1) + (1 − γ) Laplace(λ0)``, ``γ ~ Bern(θ_k)``, ``θ_k ~ Beta(a, b)``.

    ``p*`` (D × K) and ``θ`` (K) are buffers: saved with the model, never touched by the optimizer, updated by
    :meth:`e_step` after every optimizer step.

    The M-step penalty is not handed to the optimizer: :meth:`prox` applies it as a soft-threshold after each
    optimizer step, which gives exact zeros, and an entry at zero comes back only when its data gradient beats the
    spike's threshold (the selection rule of the spike-and-slab lasso). The spike rate in force, ``lambda0_now``
    (a buffer), can be annealed from ``λ1`` up to ``λ0`` (Ročková & George's dynamic posterior exploration, see
    :meth:`anneal`); with the full ``λ0`` from the first step every link of a fresh model is zeroed at once.

    Parameters
    ----------
    n_features
        Rows D of W.
    n_latent
        Columns K of W.
    lambda0
        Spike rate λ0 (large: pushes w to 0).
    lambda1
        Slab rate λ1 (small; ``λ0 > λ1 > 0``).
    a, b
        Beta prior on θ; ``b=None`` uses ``b = D``.
    prior_logit
        Optional (D × K) log prior odds of each link being in the slab, which replace ``logit θ_k`` in the E-step
        where they are finite (the links of annotated factors: high for a feature of the set, low for the others);
        NaN entries keep ``θ_k``. A buffer, never learned.

    """

    def __init__(
        self,
        n_features: int,
        n_latent: int,
        lambda0: float,
        lambda1: float,
        a: float,
        b: float | None,
        prior_logit: torch.Tensor | None = None,
    ):
        super().__init__()
        self.n_features = n_features
        self.lambda0, self.lambda1 = float(lambda0), float(lambda1)
        self.a = float(a)
        self.b = float(n_features if b is None else b)
        self.register_buffer("p_star", torch.full((n_features, n_latent), 0.5))
        self.register_buffer("theta", torch.full((n_latent,), 0.5))
        self.register_buffer("lambda0_now", torch.tensor(self.lambda0))
        self.register_buffer("penalty_scale", torch.tensor(1.0))
        # the given log odds (0 elsewhere) and where they are given; None: not in the state (a model without sets)
        given = None
        if prior_logit is not None:
            if tuple(prior_logit.shape) != (n_features, n_latent):
                raise ValueError(f"prior_logit must be ({n_features}, {n_latent}), got {tuple(prior_logit.shape)}.")
            given = ~torch.isnan(prior_logit)
            prior_logit = torch.where(given, prior_logit, 0.0).to(torch.float32)
        self.register_buffer("prior_logit", prior_logit)
        self.register_buffer("prior_given", given)

    @torch.no_grad()
    def anneal(self, fraction: float, mode: str = "scale") -> None:
        """Warm the prior up: ``fraction`` (clipped to [0, 1]) of the way from its start to its full strength.

        ``mode="scale"`` multiplies the whole penalty by ``fraction`` (λ0 and λ1 as set, also in the E-step);
        ``"lambda0"`` raises the spike rate from ``λ1`` to ``λ0`` (Ročková & George's dynamic posterior
        exploration); ``"both"`` does both.
        """
        if mode not in ("scale", "lambda0", "both"):
            raise ValueError(f"Unknown sparsity warm-up mode {mode!r}: use 'scale', 'lambda0' or 'both'.")
        fraction = min(max(float(fraction), 0.0), 1.0)
        ramp_l0 = fraction if mode in ("lambda0", "both") else 1.0
        self.lambda0_now.fill_(self.lambda1 + ramp_l0 * (self.lambda0 - self.lambda1))
        self.penalty_scale.fill_(fraction if mode in ("scale", "both") else 1.0)

    def rates(self) -> torch.Tensor:
        """Penalty rates in force, ``scale · (λ1 p*_jk + λ0 (1 − p*_jk))`` (D × K)."""
        return self.penalty_scale * (self.lambda1 * self.p_star + self.lambda0_now * (1.0 - self.p_star))

    def penalty(self, w: torch.Tensor) -> torch.Tensor:
        """M-step penalty ``Σ_jk λ*_jk |w_jk|`` (a scalar)."""
        return (self.rates() * w.abs()).sum()

    @torch.no_grad()
    def prox(self, w: torch.Tensor, step: torch.Tensor | float) -> None:
        """Soft-threshold ``w`` in place: ``w ← sign(w) · max(|w| − step · λ*, 0)``.

        The proximal operator of ``step · Σ_jk λ*_jk |w_jk|``; ``step`` is a scalar or a per-entry tensor (the
        step size the optimizer just used, divided by the number of samples).
        """
        thresh = self.rates() * step
        w.copy_(torch.sign(w) * (w.abs() - thresh).clamp_min(0.0))

    @torch.no_grad()
    def e_step(self, w: torch.Tensor) -> None:
        """Update ``p*`` and ``θ`` from the current ``w`` (in log space: no under/overflow for large ``|w|``); where
        ``prior_logit`` is finite it stands in for ``logit θ_k``.
        """
        aw = w.detach().abs()
        theta = self.theta.clamp(_THETA_EPS, 1 - _THETA_EPS)
        # logit p* = log(slab density / spike density), formed as one difference so that a huge |w| gives +inf
        # (p* = 1), never inf - inf
        lam0 = self.lambda0_now
        prior = torch.log(theta) - torch.log1p(-theta)
        if self.prior_logit is not None:
            prior = torch.where(self.prior_given, self.prior_logit, prior)
        logit = prior + torch.log(self.lambda1 / lam0)
        self.p_star.copy_(torch.sigmoid(logit + (lam0 - self.lambda1) * aw))
        theta_new = (self.p_star.sum(0) + self.a - 1) / (self.a + self.b + self.n_features - 2)
        self.theta.copy_(theta_new.clamp(_THETA_EPS, 1 - _THETA_EPS))


@torch.no_grad()
def shrink_columns(ws: list[torch.Tensor], thresholds: torch.Tensor) -> None:
    """Group soft-threshold in place: column k of every matrix in ``ws`` (one group over all of them) shrinks by
    ``thresholds[k]`` in Euclidean norm, so a column whose norm is below its threshold becomes exactly 0 everywhere.

    The proximal operator of ``Σ_k t_k ‖W_{:,k}‖₂`` (``W`` the matrices stacked by rows): the group lasso on factors.
    """
    norm = torch.sqrt(sum(w.square().sum(0) for w in ws))
    scale = (1 - thresholds / norm.clamp_min(torch.finfo(norm.dtype).tiny)).clamp_min(0.0)
    for w in ws:
        w.mul_(scale)


def count_sets(set_members: Sequence[np.ndarray | None] | None) -> int:
    """Number of feature sets in ``set_members`` (see :func:`annotated_prior_logits`); 0 for ``None``."""
    if set_members is None:
        return 0
    sizes = {m.shape[1] for m in set_members if m is not None}
    if len(sizes) != 1:
        raise ValueError("set_members must give the same number of sets for every modality that has them.")
    return sizes.pop()


def annotated_prior_logits(
    set_members: Sequence[np.ndarray | None] | None, n_features: Sequence[int], n_free: int, confidence: float
) -> list[torch.Tensor | None]:
    """Per modality, the (D × (A + n_free)) log prior odds of the links for :class:`SpikeSlabLasso` (``prior_logit``),
    or ``None`` everywhere without sets.

    ``set_members`` holds per modality a (D × A) array: 1 for a member of set k (log odds ``logit(confidence)``), 0
    for a non-member (``−logit(confidence)``), NaN where set k has no entry (``θ_k`` in the E-step), or ``None`` for
    a modality with no entry for any set. The ``n_free`` columns after the A annotated ones are NaN.
    """
    if set_members is None:
        return [None] * len(n_features)
    n_sets = count_sets(set_members)
    logit = math.log(confidence) - math.log1p(-confidence)
    out = []
    for d, members in zip(n_features, set_members, strict=True):
        odds = torch.full((d, n_sets + n_free), float("nan"))
        if members is not None:
            m = torch.as_tensor(np.asarray(members, dtype=np.float64), dtype=torch.float32)
            odds[:, :n_sets] = torch.where(torch.isnan(m), m, (2 * m - 1) * logit)
        out.append(odds)
    return out
