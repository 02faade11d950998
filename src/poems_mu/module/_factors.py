"""Which factors a module keeps, and in which order: pruning the empty ones, and permuting them (an exact
symmetry of the model).
"""

from __future__ import annotations

import torch


def _rows(t: torch.Tensor, order: torch.Tensor) -> None:
    t.copy_(t.index_select(0, order))


def _cols(t: torch.Tensor, order: torch.Tensor) -> None:
    t.copy_(t.index_select(1, order))


@torch.no_grad()
def permute_factors(module, order: torch.Tensor) -> None:
    """Put factor ``order[i]`` of ``module`` (a :class:`~poems_mu.module.POEMSModule`) at position i, in place.

    Every tensor indexed by the factors moves with them: the encoders' mean and log-variance units, the gate's layer
    norms and the matching inputs of its first layer, the columns of W and rows of A (sparse decoders) or the inputs
    of the first layer (dense ones), p*, θ and the sets' prior odds of the priors, ``factor_kept`` and the factor
    penalty's weights. The model's outputs are unchanged but for the order of the factors.
    """
    order = order.to(module.factor_kept.device)
    k = module.n_latent
    if sorted(order.tolist()) != list(range(k)):
        raise ValueError(f"order must be a permutation of the {k} factors, got {order.tolist()}.")
    for enc in module.encoders:
        for layer in (enc.mean, enc.logvar):
            _rows(layer.weight, order)
            _rows(layer.bias, order)
    for norm in module.gate.norms:
        _rows(norm.weight, order)
        _rows(norm.bias, order)
    inputs = torch.cat([order + v * k for v in range(len(module.gate.norms))])
    _cols(module.gate.net[0].weight, inputs)
    for dec in module.decoders:
        if module.priors is not None:
            _cols(dec.W, order)
            _rows(dec.A, order)
            _cols(dec._dense_grad, order)
        else:
            _cols(dec.net[0].weight, order)
    for prior in module.priors or []:
        _cols(prior.p_star, order)
        _rows(prior.theta, order)
        if prior.prior_logit is not None:
            _cols(prior.prior_logit, order)
            _cols(prior.prior_given, order)
    _rows(module.factor_kept, order)
    _rows(module.factor_penalty_weights, order)
    _rows(module.factor_empty_for, order)
    module.refresh_factors()


@torch.no_grad()
def prune_empty_factors(module, patience: int = 1) -> int:
    """Prune the kept factors of ``module`` whose column of W has been exactly 0 in every modality at ``patience``
    consecutive calls (once per epoch in training; ``factor_empty_for`` counts them); returns how many were pruned.
    While no factor reaches any feature nothing is pruned: a model keeps at least one factor. The annotated factors
    (the first ``module.n_annotated``) are never pruned: an empty one stays, and the active-factor rule calls it
    inactive.
    """
    if module.priors is None:
        return 0
    reaches = torch.stack([(dec.W != 0).any(0) for dec in module.decoders]).any(0)
    module.factor_empty_for.copy_(torch.where(reaches, 0, module.factor_empty_for + 1))
    if not bool((reaches & module.factor_kept).any()):
        return 0
    prune = module.factor_kept & (module.factor_empty_for >= patience)
    prune[: module.n_annotated] = False
    pruned = int(prune.sum())
    if pruned:
        module.factor_kept &= ~prune
        module.refresh_factors()
    return pruned
