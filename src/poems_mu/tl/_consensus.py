"""One embedding of a cohort from several training runs: the geometry the runs share."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from mudata import MuData

from poems_mu._constants import CONSENSUS_KEY, CONSENSUS_LATENT_KEY

from ._common import check_comparable, check_positive_int, check_store, store_uns


def linear_cka(a: np.ndarray, b: np.ndarray) -> float:
    """Linear CKA between two embeddings of the same samples (any widths): 1 when one is a rotation and rescaling
    of the other, near 0 when they share no direction.
    """
    a, b = a - a.mean(0), b - b.mean(0)
    return float(np.linalg.norm(a.T @ b) ** 2 / (np.linalg.norm(a.T @ a) * np.linalg.norm(b.T @ b)))


def consensus_scores(
    latents: Sequence[np.ndarray], n_components: int | None = None, fit_rows: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The consensus of several embeddings of the same samples (the rows of every array in ``latents``).

    Each embedding is centred and scaled to a mean squared norm of 1 per sample (over ``fit_rows``, default every
    row), so that every run weighs the same whatever its number of factors; the scaled embeddings are concatenated
    and the result is the projection of every row on the leading ``n_components`` principal axes of the
    concatenation (fitted on ``fit_rows``). The squared distance between two samples in the concatenation is the
    sum over runs of their squared distances in each run, so these are the classical multidimensional scaling
    coordinates of the runs' mean squared distances. ``n_components`` defaults to the median width of the
    embeddings. Each axis's sign is fixed so that its largest coefficient is positive.

    Returns the ``(n_rows, n_components)`` embedding and the share of the concatenation's variance (over the fit
    rows) that each axis holds.
    """
    if len(latents) < 2:
        raise ValueError(f"A consensus needs two or more embeddings, got {len(latents)}.")
    n = latents[0].shape[0]
    if any(z.ndim != 2 or z.shape[0] != n for z in latents):
        raise ValueError("Every embedding of a consensus must be a 2-d array with the same rows (samples).")
    rows = np.arange(n) if fit_rows is None else np.asarray(fit_rows)
    blocks = []
    for z in latents:
        z = np.asarray(z, dtype=np.float64)
        z = z - z[rows].mean(0)
        scale = np.sqrt((z[rows] ** 2).sum(1).mean())
        blocks.append(z / scale if scale > 0 else z)
    x = np.concatenate(blocks, axis=1)
    if n_components is None:
        n_components = int(np.ceil(np.median([z.shape[1] for z in latents])))
    n_components = check_positive_int(n_components, "n_components")
    if n_components > min(len(rows), x.shape[1]):
        raise ValueError(
            f"`n_components` must be at most {min(len(rows), x.shape[1])} (the samples the consensus is fitted on, "
            f"{len(rows)}, and the runs' factors together, {x.shape[1]}), got {n_components}."
        )
    _, s, vt = np.linalg.svd(x[rows], full_matrices=False)
    axes = vt[:n_components]
    axes = axes * np.sign(axes[np.arange(n_components), np.abs(axes).argmax(1)])[:, None]
    share = s[:n_components] ** 2 / (s**2).sum()
    return x @ axes.T, share


def consensus_embedding(
    models: Sequence,
    mdata: MuData | None = None,
    n_components: int | None = None,
    key_added: str = CONSENSUS_LATENT_KEY,
    batch_size: int | None = None,
    overwrite: bool = False,
) -> None:
    """One embedding of the samples from several training runs, for clustering and neighbour graphs.

    Runs that differ only in their seed learn nearly the same space (linear CKA 0.94–0.96 between seeds on the
    bundled cohorts), but where a cohort's clusters are close to a tie, k-means on one run's latent can land on one
    partition or another depending on the seed. The consensus keeps what the runs share: each run's latent
    (posterior means) is centred and scaled to the same total variance, the runs are concatenated, and the
    samples are placed on the leading principal axes of the concatenation — the classical multidimensional scaling
    of the runs' mean squared distances. Its axes are not factors: read factors and their features in one model,
    checked with :func:`~poems_mu.tl.factor_stability` over the same runs. How many runs: on rosmap the consensuses
    of disjoint groups of 3 or more runs agree on their k-means partition (ARI ≥ 0.9); on breast_tcga they agree at
    ARI 0.82–0.88 from 3 runs to 16 (0.53 between single runs), while the CKA between them keeps rising (0.977 at 3
    runs, 0.994 at 12), so the examples use 12 (``benchmarks/accuracy/consensus.py``; the documentation's model page,
    "A consensus of several runs").

    Parameters
    ----------
    models
        Two or more trained POEMS models with the same modalities and features, e.g. trained with different
        ``scvi.settings.seed`` (the runs of :func:`~poems_mu.tl.factor_stability`).
    mdata
        MuData whose samples are placed (default: the first model's training MuData); every model places them.
    n_components
        Axes of the consensus; default: the median number of factors the models kept.
    key_added
        ``mdata.obsm`` key of the embedding; a summary goes to ``mdata.uns["poems"]["consensus"][key_added]``:
        ``n_models``, ``n_components``, ``variance_share`` (per axis, of the concatenated runs), ``factors_per_model``
        and ``mean_cka`` (the mean linear CKA between the runs' latents: how much the runs agree).
    batch_size
        Minibatch size for inference.
    overwrite
        Replace an existing ``obsm[key_added]`` and its summary; without it an existing key is an error and nothing
        is computed.

    Examples
    --------
    >>> pm.POEMS.setup_mudata(mdata)
    >>> models = []
    >>> for seed in range(12):
    ...     scvi.settings.seed = seed
    ...     m = pm.POEMS(mdata)
    ...     m.train()
    ...     models.append(m)
    >>> pm.tl.consensus_embedding(models)
    >>> sc.pp.neighbors(mdata, use_rep="X_poems_consensus")
    >>> pm.tl.evaluate_subtyping(mdata, "subtype", use_rep="X_poems_consensus")

    """
    models = check_comparable(models, "consensus_embedding")
    if not isinstance(key_added, str) or not key_added:
        raise ValueError(f"`key_added` must be a non-empty string, got {key_added!r}.")
    data = models[0].adata if mdata is None else mdata
    if key_added in data.obsm and not overwrite:
        raise ValueError(f"obsm[{key_added!r}] exists: pass overwrite=True to replace it, or another `key_added`.")
    check_store(data, (CONSENSUS_KEY, key_added), overwrite)
    latents = [m.get_latent_representation(data, batch_size=batch_size) for m in models]
    scores, share = consensus_scores(latents, n_components)
    cka = [linear_cka(a, b) for i, a in enumerate(latents) for b in latents[i + 1 :]]
    data.obsm[key_added] = scores.astype(np.float32)
    summary = {
        "n_models": len(models),
        "n_components": scores.shape[1],
        "variance_share": share,
        "factors_per_model": np.array([z.shape[1] for z in latents]),
        "mean_cka": float(np.mean(cka)),
    }
    store_uns(data, (CONSENSUS_KEY, key_added), summary, overwrite=overwrite)
