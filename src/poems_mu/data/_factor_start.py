"""A deterministic start of the free factors (``factor_start="pca"``): the varimax-rotated leading components of a
joint PCA of the views, as many as parallel analysis finds above noise.

The views are what the encoders see (:func:`~poems_mu.data._statistics.encoder_views`: each modality standardised
on its likelihood's scale). Each modality's block is divided by √D_v, so that every modality weighs the same
whatever its width, and a sample without a modality sits at that modality's mean (0). Registered covariates (batch,
continuous covariates) are regressed out of each block first: the decoders receive them, so the start leaves what
they explain to them. How many components start is
decided by Horn's parallel analysis: those whose singular value exceeds the 95th percentile of the same singular
value over copies of the data with every column permuted (the columns keep their values, their co-variation is
destroyed). The retained loadings, scaled by their singular values, are rotated by varimax, which concentrates each
feature on few components (what the spike-and-slab prior asks of W); the sample scores rotate with them and stay
uncorrelated with unit variance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: column-permuted copies of the data in the parallel analysis
PERMUTATIONS = 20
#: a component starts when its singular value exceeds this quantile of the permuted copies'
LEVEL = 0.95
#: the largest link of the start, over all started factors and modalities
START_SCALE = 1.0
#: above this many samples or features (the smaller of the two) the components come from a randomized SVD
EXACT_SVD_MAX = 2000


@dataclass(frozen=True)
class FactorStart:
    """The start of ``n`` free factors."""

    links: list[np.ndarray]
    """Per modality ``(D_v, n)``: the starting links of the started factors."""
    scores: np.ndarray
    """``(n_samples, n)``: each started factor's sample scores (mean 0, variance 1, uncorrelated)."""
    n_above_noise: int
    """How many components parallel analysis kept (``n`` is this, capped at the number of free factors)."""


def regress_out(view: np.ndarray, covariates: np.ndarray) -> np.ndarray:
    """``view`` (``(n_samples, D)``, NaN rows for samples without the modality) with ``covariates``
    (``(n_samples, C)``) and an intercept regressed out of every column over the samples that have the modality; the
    NaN rows stay NaN.
    """
    out = np.full(view.shape, np.nan)
    present = ~np.isnan(view).all(axis=1)
    design = np.c_[np.ones(int(present.sum())), covariates[present]]
    coef, *_ = np.linalg.lstsq(design, view[present], rcond=None)
    out[present] = view[present] - design @ coef
    return out


def joint_view(
    views: Sequence[np.ndarray], remove: np.ndarray | None = None, covariates: np.ndarray | None = None
) -> np.ndarray:
    """The centred concatenation of ``views`` (``(n_samples, D_v)``, NaN rows for samples without the modality),
    each block divided by √D_v, absent samples at 0; ``covariates`` (``(n_samples, C)``): regressed out of each block
    first (:func:`regress_out`), so that what they explain starts no factor; ``remove`` (``(n_samples, r)``, NaN
    allowed): scores whose linear span is projected out of every column then (the started feature sets' factors; an
    all-NaN column, a set that was not started, removes nothing).
    """
    if covariates is not None:
        views = [regress_out(v, covariates) for v in views]
    x = np.concatenate([np.nan_to_num(v, nan=0.0) / np.sqrt(v.shape[1]) for v in views], axis=1)
    x = x - x.mean(0)
    if remove is not None and remove.size:
        scored = np.isfinite(remove).any(axis=0)
        centre = np.zeros(remove.shape[1])
        centre[scored] = np.nanmean(remove[:, scored], axis=0)
        r = np.nan_to_num(remove - centre, nan=0.0)
        coef, *_ = np.linalg.lstsq(r, x, rcond=None)
        x = x - r @ coef
    return x


def _svd(x: np.ndarray, k: int, vectors: bool = True):
    """The leading ``k`` singular triplets of ``x``, or (``vectors=False``) its leading ``k`` singular values alone;
    exact when ``x`` is small, randomized otherwise.
    """
    if min(x.shape) <= EXACT_SVD_MAX:
        if not vectors:
            return np.linalg.svd(x, compute_uv=False)[:k]
        u, s, vt = np.linalg.svd(x, full_matrices=False)
        return u[:, :k], s[:k], vt[:k]
    from sklearn.utils.extmath import randomized_svd

    triplets = randomized_svd(x, n_components=k, n_iter=4, random_state=0)
    return triplets if vectors else triplets[1]


def parallel_analysis(x: np.ndarray, s: np.ndarray, rng: np.random.Generator | None = None) -> int:
    """How many of the leading singular values ``s`` of the centred ``x`` exceed the :data:`LEVEL` quantile of those
    of :data:`PERMUTATIONS` copies of ``x`` with each column permuted (a fixed random stream by default).
    """
    rng = np.random.default_rng(0) if rng is None else rng
    null = np.empty((PERMUTATIONS, len(s)))
    for i in range(PERMUTATIONS):
        xp = np.column_stack([rng.permutation(col) for col in x.T])
        null[i] = _svd(xp - xp.mean(0), len(s), vectors=False)
    above = s > np.quantile(null, LEVEL, axis=0)
    return len(s) if above.all() else int(np.argmin(above))


def varimax(loadings: np.ndarray, n_iter: int = 100, tol: float = 1e-8) -> np.ndarray:
    """The orthogonal ``R`` that maximises the varimax criterion of ``loadings @ R`` (Kaiser 1958)."""
    p, k = loadings.shape
    rot, value = np.eye(k), 0.0
    for _ in range(n_iter):
        lam = loadings @ rot
        u, s, vt = np.linalg.svd(loadings.T @ (lam**3 - lam * (lam**2).sum(0) / p))
        rot, previous, value = u @ vt, value, s.sum()
        if previous and value / previous < 1 + tol:
            break
    return rot


def pca_start(
    views: Sequence[np.ndarray],
    n_free: int,
    remove: np.ndarray | None = None,
    rotate: bool = True,
    n: int | None = None,
    covariates: np.ndarray | None = None,
) -> FactorStart:
    """The start of at most ``n_free`` free factors from the joint PCA of ``views`` (module docstring); ``remove``
    and ``covariates``: see :func:`joint_view`. ``rotate=False`` starts the components unrotated, and ``n`` starts
    that many components whatever parallel analysis finds (both for the benchmarks' ablations; the model uses the
    defaults).
    """
    x = joint_view(views, remove, covariates)
    k = min(n_free, *x.shape)
    u, s, vt = _svd(x, k)
    n_above = parallel_analysis(x, s)
    n = min(n_above if n is None else n, k)
    scores = u[:, :n] * np.sqrt(x.shape[0])
    links = vt[:n].T * s[:n]
    if rotate and n > 1:
        rot = varimax(links)
        links, scores = links @ rot, scores @ rot
    if n:
        links = links * (START_SCALE / np.abs(links).max())
    bounds = np.cumsum([0] + [v.shape[1] for v in views])
    per_view = [links[bounds[i] : bounds[i + 1]] for i in range(len(views))]
    return FactorStart(per_view, scores, n_above)
