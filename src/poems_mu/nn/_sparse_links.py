"""The sparse decoder's first layer over the non-zero links of W only (cost falling with W's density).

Feature j's pre-activation is ``A^T (z ⊙ W_j) + d = Σ_{k: W_jk ≠ 0} z_k W_jk A_k + d``. The dense path
(:class:`~poems_mu.nn._sparse_decoder._ChunkedSparseDecode`) forms it with a GEMM whose inner dimension is K + 1 for
every feature; this path lists each feature's non-zero links (ELL layout: features sorted by their number of links,
each chunk padded to the largest count m in it) and forms it with batched products of inner dimension m. The
output, ``∂z``, ``∂A``, ``∂d``, ``∂c`` and ``∂W`` on the non-zero links are those of the dense path (up to float
rounding: sums run in another order); ``∂W`` of a zero entry is not computed here (the dense path gives it: see
:class:`~poems_mu.nn.SparseDecoder` for how training gets it).

What sparsity cannot remove: ReLU, the heads ``c`` and their gradients cost O(batch · D · H) per step whatever W
is, so the gain over the dense path is bounded by the share of the first layer in the dense cost
(``python benchmarks/performance/speed.py density`` measures both).
"""

from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable


def link_lists(w: torch.Tensor, chunk: int) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """``(features, links)`` per chunk, feature indices (J,) and the columns of their non-zero links (J, m); and
    the features without any link.

    Features are sorted by their number of non-zero links so that padding stays small; a row's list is padded with
    columns of zero entries (their ``W`` is 0, so they add nothing). A feature without any link is decoded apart:
    its output is ``c_j · ReLU(d)`` in every sample. Chunks hold ``chunk`` features at most.
    """
    nz = w != 0
    counts = nz.sum(1)
    order = torch.argsort(counts, stable=True)
    empty = order[counts[order] == 0]
    order = order[counts[order] > 0]
    # columns of the non-zero entries first, in increasing order (a stable sort on "is zero")
    cols = torch.argsort((~nz).to(torch.int8), dim=1, stable=True)
    sorted_counts = counts[order].tolist()
    out = []
    for start in range(0, len(sorted_counts), chunk):
        feats = order[start : start + chunk]
        m = int(sorted_counts[min(start + chunk, len(sorted_counts)) - 1])
        out.append((feats, cols[feats, :m]))
    return out, empty


def _chunk_pre(z, w, a, d, feats, links):
    """``u`` (J, B, m), ``A`` rows ``ag`` (J, m, H) and the pre-activation (J, B, H) of one chunk."""
    wv = w[feats].gather(1, links)  # (J, m)
    u = z[:, links].permute(1, 0, 2) * wv.unsqueeze(1)  # (J, B, m)
    ag = a[links]  # (J, m, H)
    pre = torch.baddbmm(d.view(1, 1, -1), u, ag)
    return wv, u, ag, pre


class _SparseLinkDecode(torch.autograd.Function):
    """``out[:, j] = c_j · ReLU(Σ_{k: W_jk ≠ 0} z_k W_jk A_k + d)`` from link lists, recomputed in the backward pass."""

    @staticmethod
    def forward(ctx, z, w, a, d, c, chunk: int):
        lists, empty = link_lists(w, chunk)
        out = z.new_empty(z.shape[0], w.shape[0])
        out[:, empty] = (c[empty] @ torch.relu(d)).unsqueeze(0)
        for feats, links in lists:
            _, _, _, pre = _chunk_pre(z, w, a, d, feats, links)
            out[:, feats] = torch.bmm(pre.relu_(), c[feats].unsqueeze(-1)).squeeze(-1).t()
        ctx.save_for_backward(z, w, a, d, c)
        ctx.lists, ctx.empty = lists, empty
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        z, w, a, d, c = ctx.saved_tensors
        n_batch, n_hidden = z.shape[0], a.shape[1]
        dz, da = torch.zeros_like(z), torch.zeros_like(a)
        dw, dc = torch.zeros_like(w), torch.empty_like(c)
        # the features without links: out_j = c_j · ReLU(d) in every sample
        g_empty = grad_out[:, ctx.empty].sum(0)
        dc[ctx.empty] = torch.outer(g_empty, torch.relu(d))
        dd = (d > 0).to(d.dtype) * (g_empty @ c[ctx.empty])
        for feats, links in ctx.lists:
            wv, u, ag, pre = _chunk_pre(z, w, a, d, feats, links)
            g = grad_out[:, feats].t().unsqueeze(-1)  # (J, B, 1)
            gc = g * c[feats].unsqueeze(1)  # (J, B, H)
            d_pre = torch.ops.aten.threshold_backward(gc, pre, 0.0)
            dc[feats] = torch.bmm(g.transpose(1, 2), pre.relu_()).squeeze(1)
            dd += d_pre.sum((0, 1))
            du = torch.bmm(d_pre, ag.transpose(1, 2))  # (J, B, m)
            da.index_add_(0, links.reshape(-1), torch.bmm(u.transpose(1, 2), d_pre).reshape(-1, n_hidden))
            dz.index_add_(1, links.reshape(-1), (du * wv.unsqueeze(1)).permute(1, 0, 2).reshape(n_batch, -1))
            dwv = (du * z[:, links].permute(1, 0, 2)).sum(1)  # (J, m)
            dw[feats] = dw[feats].scatter_(1, links, dwv * (wv != 0))
        return dz, dw, da, dd, dc, None
