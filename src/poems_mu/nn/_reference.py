"""Reference (oracle) implementations of the sparse decoder, kept to test the fast paths against.

They compute the definition ``x̂_j = c_j · ReLU(A^T (z ⊙ W_j) + d) + b_j`` directly: feature by feature in Python,
or all features at once with plain autograd ops (storing every activation). Neither is used in training.
"""

from __future__ import annotations

import torch

from ._sparse_decoder import SparseDecoder, _unit_rows


def decode_chunk(z: torch.Tensor, w: torch.Tensor, a: torch.Tensor, d: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """``x̂[:, j] − b_j = c_j · ReLU(A^T (z ⊙ w_j) + d)`` for the features of ``w`` (plain autograd ops)."""
    n_feat, n_latent = w.shape
    m = (w.t().unsqueeze(-1) * a.unsqueeze(1)).reshape(n_latent, -1)
    pre = (z @ m).view(z.shape[0], n_feat, -1) + d
    return (torch.relu(pre) * c).sum(-1)


@torch.no_grad()
def feature_loop_decode(decoder: SparseDecoder, z: torch.Tensor) -> torch.Tensor:
    """Decode ``z`` (B, K) with ``decoder``'s parameters feature by feature in Python: the definition."""
    a, c = _unit_rows(decoder.A), _unit_rows(decoder.c)
    cols = [torch.relu((z * decoder.W[j]) @ a + decoder.d) @ c[j] + decoder.b[j] for j in range(decoder.n_output)]
    return torch.stack(cols, dim=1)


def autograd_decode(decoder: SparseDecoder, z: torch.Tensor) -> torch.Tensor:
    """All features in one pass with plain autograd ops (stores every activation): the chunked path's reference."""
    a, c = _unit_rows(decoder.A), _unit_rows(decoder.c)
    return decode_chunk(z, decoder.W, a, decoder.d, c) + decoder.b
