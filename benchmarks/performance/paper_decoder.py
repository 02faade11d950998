"""A faithful re-statement of the POEMS paper's vectorised Sparse-VAE decoder (paper Appendix C.1), for benchmarks.

Sparse VAE (Moran et al.) decodes feature j from the masked latent ``z ⊙ W_j`` through a generator shared by all
features and a per-feature output head. The paper's vectorised decoder (C.1) does this for all features at once by
broadcasting: the masked inputs of every (feature, sample) pair form a ``(D · B, K)`` matrix, which goes through the
shared generator (``Linear(K, H, bias=False) → ReLU → Dropout(0.2)``), is viewed as ``(D, B, H)`` and multiplied by
the per-feature heads ``(D, H, 1)`` plus a per-feature bias. The layer sizes, the dropout and the head layout follow
the authors' public implementation of that decoder; nothing here is chunked or recomputed, so every intermediate
of size ``D · B · K`` or ``D · B · H`` is kept for the backward pass, as in the original.

:class:`PaperSparseDecoder` has the attributes the POEMS module relies on (``W`` for the spike-and-slab prior), so it
can replace :class:`poems_mu.nn.SparseDecoder` inside a :class:`poems_mu.POEMS` model (see :func:`use_paper_decoder`):
encoders, gating, loss, data loading and trainer stay the same, and a timing difference is the decoder's alone.
"""

from __future__ import annotations

import torch
from torch import nn


class PaperSparseDecoder(nn.Module):
    """Vectorised Sparse-VAE decoder of the POEMS paper: ``x̂_j = head_j(Dropout(ReLU(A^T (z ⊙ W_j))))``.

    Parameters
    ----------
    n_output
        Number of features D.
    n_latent
        Latent dimension K.
    n_hidden
        Width H of the shared generator (100 in the paper's code).
    dropout
        Dropout after the generator's ReLU (0.2 in the paper's code).

    """

    def __init__(self, n_output: int, n_latent: int, n_hidden: int = 100, dropout: float = 0.2):
        super().__init__()
        self.n_output, self.n_latent, self.n_hidden = n_output, n_latent, n_hidden
        self.W = nn.Parameter(torch.randn(n_output, n_latent))
        self.generator = nn.Sequential(nn.Linear(n_latent, n_hidden, bias=False), nn.ReLU(), nn.Dropout(dropout))
        # the per-feature heads Linear(H, 1), stacked: weight (D, H, 1), bias (D, 1)
        bound = n_hidden**-0.5
        self.head_weight = nn.Parameter(torch.empty(n_output, n_hidden, 1).uniform_(-bound, bound))
        self.head_bias = nn.Parameter(torch.zeros(n_output, 1))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Decode ``z`` (batch, K) to ``(batch, D)``."""
        n_batch, n_latent = z.shape
        masked = z.unsqueeze(0) * self.W.unsqueeze(1)  # (D, B, K)
        hidden = self.generator(masked.view(self.n_output * n_batch, n_latent))  # (D·B, H)
        hidden = hidden.view(self.n_output, n_batch, -1)  # (D, B, H)
        x_mean = torch.matmul(hidden, self.head_weight).squeeze(-1) + self.head_bias  # (D, B)
        return x_mean.t()


def use_paper_decoder(model, n_hidden: int = 100, dropout: float = 0.2) -> None:
    """Replace every sparse decoder of a :class:`poems_mu.POEMS` model by a :class:`PaperSparseDecoder`.

    Parameters
    ----------
    model
        A POEMS model built with ``decoder="sparse"``.
    n_hidden, dropout
        Generator width and dropout of the paper's decoder.

    """
    module = model.module
    module.decoders = nn.ModuleList(
        [PaperSparseDecoder(dec.n_output, dec.n_latent, n_hidden, dropout) for dec in module.decoders]
    )
