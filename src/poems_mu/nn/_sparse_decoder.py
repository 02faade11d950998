"""Sparse-VAE decoder: feature j of a modality sees only ``z ⊙ W[j]``; all features at once, in feature chunks.

The decoder costs O(batch · D · K · H) arithmetic whatever the implementation; what must not grow with D is memory.
:class:`_ChunkedSparseDecode` computes the features chunk by chunk and keeps nothing of size (batch × D × H) for
the backward pass: it saves only its inputs and recomputes each chunk's pre-activation there, so peak memory is
O(batch · chunk · H) however many features there are. Writing the backward by hand (instead of wrapping each chunk
in ``torch.utils.checkpoint``) avoids autograd's bookkeeping of every small op and reuses buffers in place: on CPU,
forward + backward at 2,503 features was about 2x faster than checkpointing and 3-4x faster than one unchunked pass
(``benchmarks/results/scale.md``).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from ._sparse_links import _SparseLinkDecode

_EPS = 1e-8
#: default activation budget of one feature chunk on CPU: cache-sized chunks were fastest (13-131 features for
#: batch 512-32 at K = 32, H = 100; ``python benchmarks/performance/scale.py chunks``).
DEFAULT_CHUNK_BYTES = 8 * 2**20
#: default budget on accelerators, where large chunks keep the device busy and the launch count low.
DEFAULT_CHUNK_BYTES_ACCELERATOR = 512 * 2**20
#: ``links="auto"`` decodes over the non-zero links when at most this share of W is non-zero: below it the link path
#: was faster than the dense one on CPU, above it slower (``python benchmarks/performance/speed.py density``)
LINKS_MAX_DENSITY = 0.05


def _unit_rows(m: torch.Tensor) -> torch.Tensor:
    return m / m.norm(dim=-1, keepdim=True).clamp_min(_EPS)


def _pre_activation(
    z1: torch.Tensor, w: torch.Tensor, a: torch.Tensor, d: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``M`` (K + 1, J·H) and the pre-activation ``z1 @ M = z @ M[:K] + d`` as (B, J, H).

    ``M[k, j·H + h] = w[j, k] a[k, h]`` for k < K and ``M[K, j·H + h] = d[h]``; ``z1`` is ``z`` with a column of ones
    appended, so the bias enters the one GEMM (inner dimension K + 1) for all features of the chunk; no
    ``(batch, features, K)`` tensor is built.
    """
    n_feat, n_latent = w.shape
    m = torch.empty(n_latent + 1, n_feat, a.shape[1], dtype=a.dtype, device=a.device)
    torch.mul(w.t().unsqueeze(-1), a.unsqueeze(1), out=m[:n_latent])
    m[n_latent] = d
    m = m.view(n_latent + 1, -1)
    return m, (z1 @ m).view(z1.shape[0], n_feat, -1)


def _with_ones(z: torch.Tensor) -> torch.Tensor:
    """``z`` with a column of ones appended (the bias's input), (B, K + 1)."""
    return torch.cat([z, z.new_ones(z.shape[0], 1)], dim=1)


class _ChunkedSparseDecode(torch.autograd.Function):
    """``out[:, j] = c_j · ReLU(A^T (z ⊙ W_j) + d)`` over feature chunks, with recomputation in the backward pass.

    Backward, per chunk with ``P = z @ M + d`` recomputed and ``G = ∂L/∂P = g_j c_j 1[P > 0]``:
    ``∂c_j = Σ_b g_bj ReLU(P_bj)``, ``∂z = G @ M^T``, ``∂M = z^T @ G`` and from it
    ``∂W[j, k] = Σ_h ∂M[k, j, h] A[k, h]``, ``∂A[k, h] = Σ_j ∂M[k, j, h] W[j, k]``; ``∂d = Σ_{b,j} G_bj`` comes
    out of the same GEMM as the extra row of ``[z, 1]^T @ G`` (the bias is an extra input fixed at 1).
    """

    @staticmethod
    def forward(ctx, z, w, a, d, c, chunk: int):
        out = z.new_empty(z.shape[0], w.shape[0])
        z1 = _with_ones(z)
        for start in range(0, w.shape[0], chunk):
            sl = slice(start, start + chunk)
            # the activations of this chunk are not needed later: ReLU and the heads in place
            out[:, sl] = _pre_activation(z1, w[sl], a, d)[1].relu_().mul_(c[sl]).sum(-1)
        ctx.save_for_backward(z, w, a, d, c)
        ctx.chunk = chunk
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        z, w, a, d, c = ctx.saved_tensors
        grad_out = grad_out.contiguous()
        n_batch, n_latent = z.shape
        dz, da, dd = torch.zeros_like(z), torch.zeros_like(a), torch.zeros_like(d)
        dw, dc = torch.empty_like(w), torch.empty_like(c)
        z1 = _with_ones(z)
        z1_t = z1.t()
        for start in range(0, w.shape[0], ctx.chunk):
            sl = slice(start, start + ctx.chunk)
            w_j = w[sl]
            m, pre = _pre_activation(z1, w_j, a, d)
            h = pre.relu_()  # (B, J, H)
            g = grad_out[:, sl].unsqueeze(-1)  # (B, J, 1)
            d_pre = torch.ops.aten.threshold_backward(g * c[sl], h, 0.0).view(n_batch, -1)  # ReLU'
            dc[sl] = h.mul_(g).sum(0)
            dz.addmm_(d_pre, m[:n_latent].t())
            dm1 = (z1_t @ d_pre).view(n_latent + 1, w_j.shape[0], -1)  # (K + 1, J, H); the last row: Σ_b ∂P
            dm = dm1[:n_latent]
            dd.add_(dm1[n_latent].sum(0))
            dw[sl] = (dm * a.unsqueeze(1)).sum(-1).t()
            da.add_((dm * w_j.t().unsqueeze(-1)).sum(1))
        return dz, dw, da, dd, dc, None


class SparseDecoder(nn.Module):
    """Decoder of one modality with a sparse feature-to-factor matrix ``W`` (D × K).

    ``x̂_j = c_j · ReLU(A^T (z ⊙ W_j) + d) + b_j``. The generator (``A`` (K × H), its bias ``d`` (H) and the ReLU)
    is shared across features; the mask acts at its input, so ``W[j, k] = 0`` removes factor k from feature j
    exactly (``∂x̂_j/∂z_k = 0``) whatever follows. The bias ``d`` makes the generator nonlinear along rays from the
    origin (without it ``x̂_j(t·z) − b_j = t·(x̂_j(z) − b_j)`` for every t > 0), and lets an all-zero row of ``W``
    come back: its pre-activation is ``d``, so the ReLU passes gradient to it. The rows of ``A`` and the heads ``c_j``
    are used at unit norm: both are otherwise free to absorb the scale of ``W`` (``W·s`` with ``A/s`` or ``c/s``
    gives the same output), which lets the sparsity penalty shrink ``W`` without making it sparse.
    ``∂x̂_j/∂z_k = W[j, k] · ⟨c_j, A_k ⊙ 1[pre_j > 0]⟩``, so ``|W[j, k]|`` bounds the effect of factor k on
    (standardised) feature j; :meth:`jacobian` gives the effect itself.

    Features are decoded in chunks and each chunk is recomputed in the backward pass, so peak memory is
    O(batch · chunk · H) however many features there are, and no (batch × features × K) tensor is ever built.

    Parameters
    ----------
    n_output
        Number of features D.
    n_latent
        Latent dimension K.
    n_hidden
        Width H of the shared generator.
    chunk_size
        Features decoded at a time. ``None`` picks it from ``max_chunk_bytes`` and the batch size.
    max_chunk_bytes
        Activation memory budget per chunk when ``chunk_size`` is None; ``None`` uses
        :data:`DEFAULT_CHUNK_BYTES` on CPU (cache-sized chunks are fastest there) and
        :data:`DEFAULT_CHUNK_BYTES_ACCELERATOR` on other devices.
    w_init_scale
        SD of the initial ``W`` (entries drawn from ``N(0, w_init_scale²)``).
    links
        First-layer path: ``"dense"`` (one GEMM over all K factors per feature), ``"sparse"`` (over each feature's
        non-zero links only, :mod:`~poems_mu.nn._sparse_links`) or ``"auto"`` (the link path while at most
        :data:`LINKS_MAX_DENSITY` of W is non-zero). Both give the same output and the same gradients of z, A, d,
        c and of the non-zero entries of W.
    links_dense_every
        In training on the link path, every this many forward passes is a dense one, which also gives the data
        gradient of the zero entries of W (their way back into the model under the proximal step); in between a
        zero entry gets the gradient of the last dense pass. ``1`` makes every pass dense. With ``"auto"`` the
        choice of path is also revisited at each dense pass only (it reads W's density on the host).

    """

    def __init__(
        self,
        n_output: int,
        n_latent: int,
        n_hidden: int,
        *,
        chunk_size: int | None,
        max_chunk_bytes: int | None,
        w_init_scale: float,
        links: Literal["dense", "sparse", "auto"],
        links_dense_every: int,
    ):
        super().__init__()
        self.links, self.links_dense_every = links, int(links_dense_every)
        self._passes = 0  # training forward passes (the dense-pass schedule)
        self._use_links = links == "sparse"
        # the data gradient of W at the last dense pass: what a zero entry gets on the link path (not saved)
        self.register_buffer("_dense_grad", torch.zeros(n_output, n_latent), persistent=False)
        self.n_output, self.n_latent, self.n_hidden = n_output, n_latent, n_hidden
        self.chunk_size = chunk_size
        self.max_chunk_bytes = max_chunk_bytes
        # W starts small and symmetric, near the slab/spike crossover: the proximal step and the E-step then sort
        # the links into slab and spike (a dense positive start sits deep in the slab, where the spike never acts)
        self.W = nn.Parameter(torch.randn(n_output, n_latent) * float(w_init_scale))
        self.A = nn.Parameter(torch.randn(n_latent, n_hidden) / math.sqrt(n_latent))
        self.d = nn.Parameter(torch.randn(n_hidden) * 0.1 + 0.1)  # mostly positive: zero rows start alive
        self.c = nn.Parameter(torch.randn(n_output, n_hidden) / math.sqrt(n_hidden))
        self.b = nn.Parameter(torch.zeros(n_output))

    def resolve_chunk_size(self, batch_size: int, device: torch.device | str | None = None) -> int:
        """Number of features per chunk for a minibatch of ``batch_size`` samples on ``device``."""
        if self.chunk_size is not None:
            return max(1, min(int(self.chunk_size), self.n_output))
        budget = self.max_chunk_bytes
        if budget is None:
            on_cpu = device is None or torch.device(device).type == "cpu"
            budget = DEFAULT_CHUNK_BYTES if on_cpu else DEFAULT_CHUNK_BYTES_ACCELERATOR
        # live per feature in the backward pass: pre-activation, its gradient and g·c (B × H each) + M and ∂M (K × H)
        per_feature = 4 * (3 * batch_size * self.n_hidden + 2 * self.n_latent * self.n_hidden)
        return max(1, min(self.n_output, int(budget // per_feature)))

    def forward(self, z: torch.Tensor, kept: torch.Tensor | None = None) -> torch.Tensor:
        """Decode ``z`` (..., K) to the modality's mean ``(..., D)`` on the standardised scale.

        Leading dimensions (e.g. posterior samples × batch) are flattened into one batch and restored. With
        ``kept`` (indices of the factors in use), ``z`` holds only those factors and only their columns of W and
        rows of A enter the computation.
        """
        lead = z.shape[:-1]
        z = z.reshape(-1, z.shape[-1])
        a, c = _unit_rows(self.A), _unit_rows(self.c)
        chunk = self.resolve_chunk_size(z.shape[0], z.device)
        # in the parameters' precision even under autocast: the backward accumulates dz and dA across chunks
        dtype = self.W.dtype
        use_links, w = self._plan_pass()
        if kept is not None:
            w, a = w.index_select(1, kept), a.index_select(0, kept)
        decode = _SparseLinkDecode if use_links else _ChunkedSparseDecode
        with torch.autocast(device_type=z.device.type, enabled=False):
            out = decode.apply(z.to(dtype), w, a.to(dtype), self.d, c.to(dtype), chunk)
        return (out + self.b).view(*lead, self.n_output)

    def link_density(self) -> float:
        """Share of non-zero entries of W (what ``links="auto"`` compares with :data:`LINKS_MAX_DENSITY`)."""
        return float((self.W != 0).float().mean())

    def _plan_pass(self) -> tuple[bool, torch.Tensor]:
        """Path of this forward pass, and the W it uses (a view with a gradient hook when training needs one)."""
        if self.links == "dense":
            return False, self.W
        if not (self.training and torch.is_grad_enabled() and self.W.requires_grad):
            use = self.links == "sparse" or self.link_density() <= LINKS_MAX_DENSITY
            return use, self.W
        dense_pass = self._passes % self.links_dense_every == 0
        self._passes += 1
        if dense_pass and self.links == "auto":
            self._use_links = self.link_density() <= LINKS_MAX_DENSITY
        if not self._use_links:
            return False, self.W
        w = self.W.view_as(self.W)  # a non-leaf alias: its hook sees this pass's gradient only
        if dense_pass:
            w.register_hook(self._remember_dense_grad)
            return False, w
        zero = self.W.detach() == 0
        w.register_hook(lambda grad: torch.where(zero, self._dense_grad.to(grad.dtype), grad))
        return True, w

    def _remember_dense_grad(self, grad: torch.Tensor) -> None:
        self._dense_grad.copy_(grad.detach())

    def _jacobian_chunks(self, z: torch.Tensor, kept: torch.Tensor | None = None):
        """``(feature slice, ∂x̂/∂z of those features (B, J, K'))`` chunk by chunk, for ``z`` (B, K') of the factors
        ``kept`` (default all K).
        """
        a, c = _unit_rows(self.A), _unit_rows(self.c)
        w = self.W
        if kept is not None:
            w, a = w.index_select(1, kept), a.index_select(0, kept)
        chunk = self.resolve_chunk_size(z.shape[0], z.device)
        z1 = _with_ones(z)
        for start in range(0, self.n_output, chunk):
            sl = slice(start, start + chunk)
            active = _pre_activation(z1, w[sl], a, self.d)[1] > 0  # (B, J, H)
            yield sl, ((active * c[sl]) @ a.t()) * w[sl]

    @torch.no_grad()
    def jacobian(self, z: torch.Tensor, kept: torch.Tensor | None = None) -> torch.Tensor:
        """``∂x̂_ij/∂z_ik = W[j, k] · ⟨c_j, A_k ⊙ 1[pre_ij > 0]⟩`` for every sample, feature and factor, (B, D, K').

        Exactly 0 where ``W[j, k] = 0``. Computed chunk by chunk (same cost as a forward pass). ``z`` is (B, K') and
        holds the factors ``kept`` (default all K); leading dimensions beyond one batch dimension are flattened.
        """
        z = z.reshape(-1, z.shape[-1])
        out = z.new_empty(z.shape[0], self.n_output, z.shape[-1])
        for sl, jac in self._jacobian_chunks(z, kept):
            out[:, sl] = jac
        return out

    @torch.no_grad()
    def jacobian_sum(self, z: torch.Tensor, signed: bool = False, kept: torch.Tensor | None = None) -> torch.Tensor:
        """``Σ_i ∂x̂_ij/∂z_ik`` (or of its absolute value) over the samples of ``z`` (B, K'), as (D, K').

        Memory O(B · chunk · K'): the (B, D, K') Jacobian is never built.
        """
        out = z.new_empty(self.n_output, z.shape[-1])
        for sl, jac in self._jacobian_chunks(z, kept):
            out[sl] = (jac if signed else jac.abs()).sum(0)
        return out


class DenseDecoder(nn.Module):
    """Plain MLP decoder ``z -> x̂`` (the paper's POEM ablation: no feature-to-factor matrix, no sparsity prior).

    Parameters
    ----------
    n_output
        Number of features D.
    n_latent
        Latent dimension K.
    n_hidden
        Hidden width.

    """

    def __init__(self, n_output: int, n_latent: int, n_hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_latent, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_output))

    def forward(self, z: torch.Tensor, kept: torch.Tensor | None = None) -> torch.Tensor:
        """Decode ``z`` (batch, K) to ``(batch, D)``; with ``kept``, ``z`` holds only those factors."""
        if kept is None:
            return self.net(z)
        first = self.net[0]
        h = nn.functional.linear(z, first.weight.index_select(1, kept), first.bias)
        return self.net[2](self.net[1](h))
