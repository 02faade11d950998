"""Baseline embeddings for the subtyping benchmark: PCA and MOFA+ on z-scored views.

Both baselines follow the same inductive protocol as POEMS in ``subtyping.py``: they are *fitted on the train-split
samples only* and then embed every sample (train and test). Views are z-scored per feature with the mean and SD of
the train-split samples that have the view; a sample lacking a view has NaN there (MOFA+ handles NaN natively;
PCA imputes the missing block with the train mean, i.e. 0 after z-scoring).
"""

from __future__ import annotations

import contextlib
import io
import os

import numpy as np
from mudata import MuData
from scipy import sparse
from sklearn.decomposition import PCA

_TOL = 1e-8


def zscored_views(mdata: MuData, fit_mask: np.ndarray, modalities=None) -> dict[str, np.ndarray]:
    """Per-view ``(n_obs, D)`` float64 arrays, z-scored with the statistics of the ``fit_mask`` samples.

    Rows of samples that lack a view are NaN. Features that are constant over the fitted samples are dropped
    (they carry no information and would divide by zero).
    """
    modalities = list(mdata.mod) if modalities is None else list(modalities)
    out = {}
    for mod in modalities:
        ad = mdata.mod[mod]
        rows = np.asarray(mdata.obsmap[mod]).astype(np.int64).ravel() - 1
        x = ad.X.toarray() if sparse.issparse(ad.X) else np.asarray(ad.X)
        full = np.full((mdata.n_obs, x.shape[1]), np.nan)
        have = rows >= 0
        full[have] = x[rows[have]]
        ref = full[fit_mask & have]
        mean, sd = ref.mean(0), ref.std(0)
        keep = sd > _TOL * (1 + np.abs(mean))
        out[mod] = (full[:, keep] - mean[keep]) / sd[keep]
    return out


def pca_embedding(views: dict[str, np.ndarray], fit_mask: np.ndarray, n_components: int = 32) -> np.ndarray:
    """PCA on the concatenated z-scored views, fitted on ``fit_mask`` samples; missing blocks imputed with 0.

    After z-scoring with the train statistics, 0 is the train mean of every feature, so imputation with 0 is
    mean-imputation. The embedding is deterministic (full SVD), so it does not depend on a training seed.
    """
    x = np.concatenate([np.nan_to_num(v, nan=0.0) for v in views.values()], axis=1)
    n_components = min(n_components, int(fit_mask.sum()) - 1, x.shape[1])
    pca = PCA(n_components=n_components, svd_solver="full").fit(x[fit_mask])
    return pca.transform(x)


def fit_mofa(
    views: dict[str, np.ndarray],
    fit_mask: np.ndarray,
    n_factors: int = 32,
    seed: int = 0,
    max_iter: int = 1000,
    convergence_mode: str = "fast",
):
    """The fitted mofapy2 model of the ``fit_mask`` samples (settings: see :func:`mofa_embedding`; NaN = missing)."""
    from mofapy2.run.entry_point import entry_point

    names = list(views)
    data = [[v[fit_mask]] for v in views.values()]
    n_factors = min(n_factors, int(fit_mask.sum()) - 1, sum(v.shape[1] for v in views.values()))
    with contextlib.redirect_stdout(io.StringIO()):
        ent = entry_point()
        ent.set_data_options(scale_views=False, center_groups=True)
        ent.set_data_matrix(data, views_names=names, likelihoods=["gaussian"] * len(names))
        ent.set_model_options(factors=n_factors)
        ent.set_train_options(iter=max_iter, convergence_mode=convergence_mode, seed=seed, quiet=True, verbose=False)
        ent.build()
        ent.run()
    return ent.model


def mofa_embedding(
    views: dict[str, np.ndarray],
    fit_mask: np.ndarray,
    n_factors: int = 32,
    seed: int = 0,
    max_iter: int = 1000,
    convergence_mode: str = "fast",
) -> tuple[np.ndarray, dict]:
    """MOFA+ (mofapy2) fitted on the ``fit_mask`` samples, then all samples projected onto its factors.

    mofapy2 defaults otherwise: Gaussian likelihoods, one group, ARD and spike-and-slab on the weights,
    ``convergence_mode="fast"``, no factor dropping. ``max_iter`` caps the number of iterations (mofapy2's own
    default is 1000 as well). Missing views are NaN.

    The embedding of every sample (train and test) is the posterior mean of ``z`` under MOFA's N(0, I) factor
    prior given the fitted weights and noise precisions,
    ``(I + Σ_v E[W_v]ᵀ T_v E[W_v])⁻¹ Σ_v E[W_v]ᵀ T_v x_v`` over the views the sample has — MOFA+'s own
    variational update of ``Z`` with the weights fixed at their means. For the train samples it agrees closely
    with MOFA+'s fitted factors (checked in the returned ``info["train_corr"]``).

    Returns
    -------
    The ``(n_obs, K)`` embedding and a dict with the number of iterations, the factors kept and the median
    absolute correlation between projected and fitted train factors.
    """
    model = fit_mofa(views, fit_mask, n_factors, seed, max_iter, convergence_mode)
    nodes = model.nodes
    W = [np.asarray(w) for w in nodes["W"].getExpectation()]  # per view (D, K)
    tau = [np.asarray(t) for t in nodes["Tau"].getExpectation()]  # per view, (N, D) or (D,)
    Z_fit = np.asarray(nodes["Z"].getExpectation())
    K = Z_fit.shape[1]
    # MOFA centres each feature on the fitted samples (the train mean, 0 after our z-scoring up to fp error)
    centres = [np.nanmean(v[fit_mask], axis=0) for v in views.values()]
    Z = np.zeros((next(iter(views.values())).shape[0], K))
    precision_terms = []
    for w, t in zip(W, tau, strict=True):
        t = t[0] if t.ndim == 2 else t  # Tau is per feature, repeated over samples
        precision_terms.append((w * t[:, None]).T)  # (K, D) = Wᵀ T
    for i in range(Z.shape[0]):
        A = np.eye(K)
        b = np.zeros(K)
        for v, x in enumerate(views.values()):
            xi = x[i] - centres[v]
            if np.isnan(xi).all():
                continue
            ok = ~np.isnan(xi)
            wt = precision_terms[v][:, ok]
            A += wt @ W[v][ok]
            b += wt @ xi[ok]
        Z[i] = np.linalg.solve(A, b)
    fit_rows = np.flatnonzero(fit_mask)
    corr = [abs(np.corrcoef(Z[fit_rows, k], Z_fit[:, k])[0, 1]) for k in range(K) if Z_fit[:, k].std() > 0]
    n_iter = len(model.train_stats["number_factors"])
    info = {
        "iterations": int(n_iter),
        "converged": bool(n_iter < max_iter),
        "n_factors": int(K),
        "train_corr_median": float(np.median(corr)) if corr else float("nan"),
    }
    return Z, info


def single_thread() -> None:
    """Limit BLAS/OpenMP to one thread (the benchmark machine's cores are shared)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
