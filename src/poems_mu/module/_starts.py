"""Deterministic starts of factors, applied to a module as built: the feature sets' factors (their decoders' links
and encoder units start at the set's first principal component) and, with ``factor_start="pca"``, the free factors
(links and encoder units at the rotated components of :mod:`poems_mu.data._factor_start`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: ridge strength of the start's fit, relative to the mean variance of the encoder's hidden units
RIDGE = 1e-2
#: fewest samples with a factor's scores for a fit in one modality's encoder
MIN_FIT_SAMPLES = 10


@torch.no_grad()
def start_set_links(
    module,
    set_members: Sequence[np.ndarray | None],
    set_start: Sequence[np.ndarray] | None,
    set_start_p: Sequence[float] | None = None,
) -> None:
    """Each annotated factor's links: on its members only (the data may add others), at ``set_start`` where given
    (NaN there, or no ``set_start``: the free factors' random start, kept on the members); 0 elsewhere. The p-values
    of the test that decided the starts become the buffer ``set_start_p`` (saved with the state; NaN when not given).
    """
    a = module.n_annotated
    p = np.full(a, np.nan) if set_start_p is None else np.asarray(set_start_p, np.float64)
    module.register_buffer("set_start_p", torch.as_tensor(p, dtype=torch.float32))
    for v, (dec, members) in enumerate(zip(module.decoders, set_members, strict=False)):
        w = dec.W[:, :a]
        if members is not None:
            w *= torch.as_tensor(np.nan_to_num(np.asarray(members, np.float32)))
        else:
            w.zero_()
        if set_start is not None:
            start = torch.as_tensor(set_start[v], dtype=w.dtype)
            w.copy_(torch.where(start.isnan(), w, start))


@torch.no_grad()
def start_free_links(module, links: Sequence[np.ndarray]) -> None:
    """The links of the first ``n`` free factors (right after the annotated ones) at ``links[v]`` (``(D_v, n)``) in
    each modality's decoder; the other free factors keep their random start.
    """
    first = module.n_annotated
    for dec, start in zip(module.decoders, links, strict=True):
        n = start.shape[1]
        dec.W[:, first : first + n] = torch.as_tensor(start, dtype=dec.W.dtype, device=dec.W.device)


@torch.no_grad()
def start_encoder_units(module, v: int, inputs: np.ndarray, scores: np.ndarray) -> list[int]:
    """Set the mean output of factor k in encoder ``v`` to a ridge fit, on that encoder's hidden layer as
    initialised, of ``scores[:, k]`` (samples × factors, standardised; NaN where a factor does not start there or a
    sample has no score: a started set not listed in the modality, a free factor without a start; ``inputs``: the
    encoder's input for the same samples). The other outputs keep their random start. Returns the factors whose unit
    was set.

    Started only in its decoders' links, a set's factor still depends on its encoder unit, which starts as random as
    a free factor's, and a free factor can win the race (``benchmarks/results/feature_sets_planted.md``).
    """
    enc = module.encoders[v]
    mode = enc.training
    enc.eval()  # no dropout in the hidden layer the fit reads
    dtype = enc.mean.weight.dtype
    hidden = enc.body(torch.as_tensor(inputs, dtype=dtype, device=enc.mean.weight.device)).double().cpu().numpy()
    enc.train(mode)
    done, systems = [], {}  # the centred hidden layer and the ridge system, once per set of samples with scores
    for k in range(scores.shape[1]):
        ok = np.isfinite(scores[:, k])
        if ok.sum() < MIN_FIT_SAMPLES:
            continue
        key = ok.tobytes()
        if key not in systems:
            h = hidden[ok]
            centre = h.mean(0)
            hc = h - centre
            gram = hc.T @ hc
            ridge = RIDGE * np.trace(gram) / gram.shape[0]
            systems[key] = (centre, hc, gram + ridge * np.eye(gram.shape[0]))
        centre, hc, lhs = systems[key]
        w = np.linalg.solve(lhs, hc.T @ scores[ok, k])
        enc.mean.weight[k] = torch.as_tensor(w, dtype=dtype)
        enc.mean.bias[k] = float(scores[ok, k].mean() - centre @ w)
        done.append(k)
    return done
