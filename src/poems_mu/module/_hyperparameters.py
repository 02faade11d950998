"""The hyperparameters of a POEMS model: each declared once here, with its type, default and allowed values.

:class:`~poems_mu.POEMS` takes its signature's defaults from :data:`DEFAULTS`, checks the values a user gives by
building a :class:`Hyperparameters`, and hands that object to :class:`~poems_mu.module.POEMSModule`, which builds the
network from it. What each one means is documented on :class:`~poems_mu.POEMS`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Literal, get_args

import numpy as np

from poems_mu._arguments import check_positive_int, check_positive_real, check_unit_interval, is_int, is_real

Gating = Literal["learned", "fixed"]
Decoder = Literal["sparse", "dense"]
DecoderLinks = Literal["dense", "sparse", "auto"]
FactorStart = Literal["random", "pca"]
#: largest latent size accepted
MAX_LATENT = 1024


@dataclass(frozen=True)
class Hyperparameters:
    """Architecture, priors and training-time behaviour of the POEMS module (see :class:`~poems_mu.POEMS`).

    Building one checks every value; an error names the argument and what it accepts.
    """

    n_latent: int = 32
    n_hidden_encoder: int = 128
    n_layers_encoder: int = 2
    n_hidden_decoder: int = 64
    n_hidden_gate: int = 64
    dropout: float = 0.1
    kl_weight: float = 1.0
    prior_expert: bool = False
    gating: Gating = "learned"
    decoder: Decoder = "sparse"
    lambda0: float = 15.0
    lambda1: float = 1.0
    lambda_factor: float = 3.0
    ssl_a: float = 1.0
    ssl_b: float | None = None
    sigma_prior_df: float = 3.0
    chunk_size: int | None = None
    max_chunk_bytes: int | None = None
    w_init_scale: float = 0.15
    factor_start: FactorStart = "pca"
    decoder_links: DecoderLinks = "auto"
    links_dense_every: int = 10
    modality_dropout: float = 0.0
    likelihood: str | Mapping[str, str] = "gaussian"
    feature_set_confidence: float = 0.99

    def __post_init__(self):
        if not is_int(self.n_latent) or not 1 <= self.n_latent <= MAX_LATENT:
            raise ValueError(f"n_latent must be an integer between 1 and {MAX_LATENT}, got {self.n_latent!r}.")
        for name in ("n_hidden_encoder", "n_layers_encoder", "n_hidden_decoder", "n_hidden_gate"):
            check_positive_int(getattr(self, name), name)
        for name in ("chunk_size", "max_chunk_bytes"):
            value = getattr(self, name)
            if value is not None and (not is_int(value) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}.")
        check_unit_interval(self.dropout, "dropout")
        if not is_real(self.kl_weight) or not (math.isfinite(self.kl_weight) and self.kl_weight >= 0):
            raise ValueError(f"kl_weight must be a finite number ≥ 0, got {self.kl_weight!r}.")
        for name in ("sigma_prior_df", "ssl_a", "lambda1"):
            check_positive_real(getattr(self, name), name)
        if self.ssl_b is not None:
            check_positive_real(self.ssl_b, "ssl_b")
        if not is_real(self.lambda0) or not self.lambda0 > self.lambda1:
            raise ValueError(
                f"The spike-and-slab lasso needs lambda0 > lambda1 > 0, got lambda0={self.lambda0!r} and "
                f"lambda1={self.lambda1!r}."
            )
        if not is_real(self.lambda_factor) or not (math.isfinite(self.lambda_factor) and self.lambda_factor >= 0):
            raise ValueError(f"lambda_factor must be a finite number ≥ 0, got {self.lambda_factor!r}.")
        if not is_real(self.w_init_scale) or not (math.isfinite(self.w_init_scale) and self.w_init_scale >= 0):
            raise ValueError(f"w_init_scale must be a finite number ≥ 0, got {self.w_init_scale!r}.")
        if not isinstance(self.prior_expert, bool | np.bool_):
            raise ValueError(f"prior_expert must be True or False, got {self.prior_expert!r}.")
        _check_choice(self.gating, Gating, "gating")
        _check_choice(self.decoder, Decoder, "decoder")
        _check_choice(self.factor_start, FactorStart, "factor_start")
        if self.factor_start == "pca" and self.decoder != "sparse":
            raise ValueError(
                "factor_start='pca' (the default) starts the links of the sparse decoder; with "
                f"decoder={self.decoder!r} pass factor_start='random'."
            )
        _check_choice(self.decoder_links, DecoderLinks, "decoder_links")
        if not is_int(self.links_dense_every) or self.links_dense_every < 1:
            raise ValueError(
                "links_dense_every must be a positive integer (1: every training pass dense), got "
                f"{self.links_dense_every!r}."
            )
        check_unit_interval(self.modality_dropout, "modality_dropout")
        c = self.feature_set_confidence
        if not is_real(c) or not 0.5 < c < 1:
            raise ValueError(f"feature_set_confidence must be a number in (0.5, 1), got {c!r}.")
        # `likelihood` names modalities: it is checked against them when the model resolves it per modality
        object.__setattr__(self, "n_latent", int(self.n_latent))
        object.__setattr__(self, "prior_expert", bool(self.prior_expert))

    @classmethod
    def names(cls) -> list[str]:
        """The hyperparameters' names, in declaration order."""
        return [f.name for f in fields(cls)]


def _check_choice(value, choices, name: str) -> None:
    allowed = get_args(choices)
    if value not in allowed:
        listed = ", ".join(repr(c) for c in allowed[:-1]) + f" or {allowed[-1]!r}"
        raise ValueError(f"{name} must be {listed}, got {value!r}.")


#: the defaults, as :class:`~poems_mu.POEMS`'s signature shows them
DEFAULTS = Hyperparameters()
