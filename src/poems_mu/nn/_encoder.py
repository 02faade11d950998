"""Per-modality encoder: an MLP giving the Gaussian expert of one modality."""

from __future__ import annotations

import torch
from torch import nn

#: log-variance is clamped to this range so that precisions never under- or overflow in float32.
LOGVAR_MIN, LOGVAR_MAX = -12.0, 12.0


def mlp(n_in: int, n_hidden: int, n_layers: int, dropout: float) -> nn.Sequential:
    """Linear → LayerNorm → ReLU → Dropout blocks (no BatchNorm: a minibatch of one sample must work)."""
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [
            nn.Linear(n_in if i == 0 else n_hidden, n_hidden),
            nn.LayerNorm(n_hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
        ]
    return nn.Sequential(*layers)


class ModalityEncoder(nn.Module):
    """Encoder of one modality: ``x_v -> (mu_v, logvar_v)``.

    Parameters
    ----------
    n_input
        Number of features of the modality.
    n_latent
        Latent dimension K.
    n_hidden
        Width H of the hidden layers.
    n_layers
        Number of hidden layers.
    dropout
        Dropout rate after each hidden layer.

    """

    def __init__(self, n_input: int, n_latent: int, n_hidden: int, n_layers: int, dropout: float):
        super().__init__()
        self.body = mlp(n_input, n_hidden, n_layers, dropout)
        self.mean = nn.Linear(n_hidden, n_latent)
        self.logvar = nn.Linear(n_hidden, n_latent)

    def forward(self, x: torch.Tensor, kept: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the expert's mean and clamped log-variance, each ``(batch, n_latent)``, or ``(batch, K')`` for the
        factors ``kept`` only (their output units alone are computed).
        """
        h = self.body(x)
        if kept is None:
            return self.mean(h), self.logvar(h).clamp(LOGVAR_MIN, LOGVAR_MAX)
        mean = nn.functional.linear(h, self.mean.weight.index_select(0, kept), self.mean.bias.index_select(0, kept))
        logvar = nn.functional.linear(
            h, self.logvar.weight.index_select(0, kept), self.logvar.bias.index_select(0, kept)
        )
        return mean, logvar.clamp(LOGVAR_MIN, LOGVAR_MAX)
