"""How sparse a POEMS module's feature-to-factor matrices are: the statistics of the training history and of
:meth:`~poems_mu.POEMS.sparsity_summary`.
"""

from __future__ import annotations

import torch

#: ``|W|`` above this counts as a link in the sparsity statistics (the paper's threshold)
LINK_THRESHOLD = 0.01


@torch.no_grad()
def sparsity_statistics(module) -> dict[str, dict[str, torch.Tensor]]:
    """Per modality: θ mean over the kept factors (``theta``), share of ``|W| > 0.01`` over all K columns
    (``density``) and over the kept factors (``density_kept``), links (``|W| > 0.01``) per feature
    (``links_per_feature``), share of exact zeros (``zeros``) and of slab links p* > 0.5 (``slab``), and the number
    of factors with a non-zero link (``factors``); empty for the dense decoder.
    """
    out = {}
    kept = module.factor_index()
    for mod, prior, dec in zip(module.modalities, module.priors or [], module.decoders, strict=False):
        links = dec.W.abs() > LINK_THRESHOLD
        out[mod] = {
            "theta": prior.theta.index_select(0, kept).double().mean(),
            "density": links.double().mean(),
            "density_kept": links.index_select(1, kept).double().mean(),
            "links_per_feature": links.sum(1).double().mean(),
            "zeros": (dec.W == 0).double().mean(),
            "slab": (prior.p_star > 0.5).double().mean(),
            "factors": (dec.W != 0).any(0).sum(),
        }
    return out


def sparsity_metrics(module) -> dict[str, torch.Tensor]:
    """:func:`sparsity_statistics` under the names of the training history (``W_density_<modality>``, ...), and
    the number of factors in use (``n_factors``).
    """
    names = {"theta": "theta", "density": "W_density", "zeros": "W_zero", "slab": "W_slab"}
    out = {
        f"{names[k]}_{mod}": value
        for mod, stats in module.sparsity_statistics().items()
        for k, value in stats.items()
        if k in names
    }
    if module.priors is not None:
        out["n_factors"] = torch.tensor(float(module.n_factors))
    return out
