"""Planted data with noisy feature sets: for benchmarks and tests of feature sets in the prior
(``POEMS(feature_sets=...)``).

The data are the Gaussian modalities of :mod:`poems_mu.datasets._synthetic` (:func:`~._synthetic.gaussian_modalities`,
each feature driven by one factor and, with probability 1/2, one more; 20 % unlinked). The sets are the true supports
of some factors, corrupted in known ways, plus decoys of random features, so that what a model keeps, drops and adds
can be scored against the truth.
"""

from __future__ import annotations

from typing import NamedTuple

import mudata as md
import numpy as np
import pandas as pd

from ._synthetic import gaussian_modalities, planted_factors, to_mudata


class AnnotatedPlanted(NamedTuple):
    """What :func:`make_annotated` returns (a tuple: ``mdata, z, supports, net, truth = make_annotated(0)``)."""

    mdata: md.MuData
    """The modalities (``obs["group"]``: the planted groups of :func:`~._synthetic.planted_factors`)."""
    z: np.ndarray
    """True factor scores, samples × ``n_factors``."""
    supports: dict[str, np.ndarray]
    """``{modality: bool D × n_factors}``: the features each true factor drives."""
    net: pd.DataFrame
    """The sets in decoupler's long format with a modality column: ``modality``, ``source``, ``target``."""
    truth: dict[str, dict]
    """Per set (``source``): ``factor`` (the true factor it stands for, -1 for a decoy), ``wrong`` (listed members
    outside the true support), ``left_out`` (true members not listed: ``omitted`` ∪ ``replaced``), ``omitted`` (the
    share ``left_out`` of the true members, dropped first) and ``replaced`` (true members whose place a wrong member
    took); each a set of ``(modality, feature)`` pairs (empty for a decoy)."""


def corrupt_support(rng: np.random.Generator, support: np.ndarray, wrong: float, left_out: float):
    """One set from one true support column: omit a share ``left_out`` of the true members, then replace a share
    ``wrong`` of the members still listed by random non-members.

    Parameters
    ----------
    rng
        Random generator (drawn from in a fixed order: the members' order, then the non-members).
    support
        Boolean vector over the features: the true members.
    wrong
        Share of the listed members that are not true members (rounded to whole features).
    left_out
        Share of the true members left out before the replacement (rounded).

    Returns
    -------
    listed, omitted, replaced, wrong_members: index arrays of the features listed, the true members left out, the true
    members replaced, and the non-members listed in their place.

    """
    if not (0 <= wrong < 1 and 0 <= left_out < 1):
        raise ValueError(f"`wrong` and `left_out` must be shares in [0, 1), got {wrong!r} and {left_out!r}.")
    members = rng.permutation(np.flatnonzero(support))
    n_omit = int(round(left_out * len(members)))
    omitted, kept = members[:n_omit], members[n_omit:]
    outside = np.flatnonzero(~support)
    n_wrong = min(int(round(wrong * len(kept))), len(outside))
    replaced, kept = kept[:n_wrong], kept[n_wrong:]
    wrong_members = rng.choice(outside, n_wrong, replace=False)
    return np.sort(np.concatenate([kept, wrong_members])), np.sort(omitted), np.sort(replaced), np.sort(wrong_members)


def make_annotated(
    seed: int,
    n: int = 300,
    n_factors: int = 6,
    n_annotated: int = 4,
    dims: dict[str, int] | None = None,
    wrong: float = 0.3,
    left_out: float = 0.2,
    n_decoys: int = 4,
    weight_range: tuple[float, float] = (0.4, 0.8),
    noise: float = 1.0,
    shift: float = 0.0,
) -> AnnotatedPlanted:
    """Gaussian modalities from ``n_factors`` planted factors, with noisy feature sets for the first ``n_annotated``
    factors and decoy sets of random features.

    Draws, in this order from ``numpy.random.default_rng(seed)``: the factors (:func:`~._synthetic.planted_factors`
    with 3 groups and ``shift``; 0 gives independent ``N(0, 1)`` factors, centred), the modalities
    (:func:`~._synthetic.gaussian_modalities`: ``x = z Wᵀ + noise · ε``, weights ``±U(*weight_range)``), then the
    sets. The data do not depend on ``wrong``, ``left_out`` or ``n_decoys``.

    Set ``set_{f+1}`` stands for true factor f (f < ``n_annotated``): in each modality its true support, with a share
    ``left_out`` of the true members omitted and then a share ``wrong`` of the members still listed replaced by
    random non-members (:func:`corrupt_support`). So a set lists ``(1 − left_out)`` of its support's size, a share
    ``wrong`` of them wrong, and lacks ``left_out + wrong (1 − left_out)`` of its true members. ``decoy_1``, ... draw
    in each modality as many random features (any, linked or not) as the median annotated set lists there.

    Parameters
    ----------
    seed
        Seed of everything drawn.
    n
        Samples.
    n_factors
        True factors.
    n_annotated
        How many of the true factors (the first ones) get a set.
    dims
        Features per modality (default ``{"a": 150, "b": 100}``).
    wrong
        Share of a set's listed members that are not in the true support.
    left_out
        Share of the true members omitted from the set (before the replacement).
    n_decoys
        Sets of random features.
    weight_range, noise
        Link weights ``±U(lo, hi)`` and noise SD of the modalities.
    shift
        Group shift of the factors (:func:`~._synthetic.planted_factors`).

    Returns
    -------
    :class:`AnnotatedPlanted`: ``mdata``, ``z`` (n × n_factors), ``supports`` ``{modality: bool D × n_factors}``,
    ``net`` (columns ``modality``, ``source``, ``target``; the sets in order ``set_1``, ..., ``decoy_1``, ...) and
    ``truth`` (per set: its factor and its wrong and left-out members).

    """
    dims = {"a": 150, "b": 100} if dims is None else dict(dims)
    if not 0 <= n_annotated <= n_factors:
        raise ValueError(f"`n_annotated` must be between 0 and n_factors = {n_factors}, got {n_annotated!r}.")
    if n_decoys < 0 or (n_decoys > 0 and n_annotated == 0):
        raise ValueError("Decoys take the size of the annotated sets: give `n_annotated` > 0 with `n_decoys` > 0.")
    rng = np.random.default_rng(seed)
    z, groups = planted_factors(rng, n, n_factors=n_factors, shift=shift)
    data, supports = gaussian_modalities(rng, z, dims, weight_range=weight_range, noise=noise)
    obs = pd.DataFrame({"group": pd.Categorical(groups.astype(str))}, index=[f"s{i}" for i in range(n)])
    mdata = to_mudata(data, obs)
    var_names = {m: np.asarray(mdata.mod[m].var_names) for m in dims}

    rows, truth, listed_sizes = [], {}, {m: [] for m in dims}
    for f in range(n_annotated):
        name = f"set_{f + 1}"
        t = {"factor": f, "wrong": set(), "left_out": set(), "omitted": set(), "replaced": set()}
        for m in dims:
            listed, omitted, replaced, bad = corrupt_support(rng, supports[m][:, f], wrong, left_out)
            names = var_names[m]
            rows += [(m, name, names[j]) for j in listed]
            t["wrong"] |= {(m, names[j]) for j in bad}
            t["omitted"] |= {(m, names[j]) for j in omitted}
            t["replaced"] |= {(m, names[j]) for j in replaced}
            listed_sizes[m].append(len(listed))
        t["left_out"] = t["omitted"] | t["replaced"]
        truth[name] = t
    for d in range(n_decoys):
        name = f"decoy_{d + 1}"
        for m in dims:
            size = int(np.median(listed_sizes[m]))
            rows += [(m, name, x) for x in np.sort(rng.choice(var_names[m], size, replace=False))]
        truth[name] = {"factor": -1, "wrong": set(), "left_out": set(), "omitted": set(), "replaced": set()}
    net = pd.DataFrame(rows, columns=["modality", "source", "target"])
    return AnnotatedPlanted(mdata, z, supports, net, truth)


def set_masks(net: pd.DataFrame, var_names: dict[str, list[str]]) -> dict[str, pd.DataFrame]:
    """The sets of ``net`` as boolean ``features × sets`` DataFrames per modality (every set a column in every
    modality, in order of first appearance; what MOFA-FLEX takes as ``varm`` annotations).

    Parameters
    ----------
    net
        Long format with ``modality``, ``source``, ``target``.
    var_names
        ``{modality: feature names}``.

    Returns
    -------
    ``{modality: DataFrame}`` indexed by the modality's features, one bool column per set.

    """
    sources = list(dict.fromkeys(net["source"]))
    out = {}
    for m, names in var_names.items():
        mask = pd.DataFrame(False, index=pd.Index(list(names)), columns=sources)
        rows = net[(net["modality"] == m) & net["target"].isin(mask.index)]
        for source, target in rows[["source", "target"]].itertuples(index=False):
            mask.loc[target, source] = True
        out[m] = mask
    return out
