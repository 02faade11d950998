"""Builders shared by tests: the network's blocks with the model's declared defaults for what a test does not set."""

from poems_mu.module import DEFAULTS
from poems_mu.nn import SparseDecoder


def sparse_decoder(n_output: int, n_latent: int, n_hidden: int, **overrides) -> SparseDecoder:
    """A :class:`~poems_mu.nn.SparseDecoder` with the model's defaults for the arguments not given."""
    defaults = {
        "chunk_size": DEFAULTS.chunk_size,
        "max_chunk_bytes": DEFAULTS.max_chunk_bytes,
        "w_init_scale": DEFAULTS.w_init_scale,
        "links": DEFAULTS.decoder_links,
        "links_dense_every": DEFAULTS.links_dense_every,
    }
    return SparseDecoder(n_output, n_latent, n_hidden, **{**defaults, **overrides})
