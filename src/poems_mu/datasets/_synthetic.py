"""Planted data sets: multi-omics cohorts generated from known factors and known sparse feature-to-factor links, and
the scores of how well a model recovers them.

Tests, benchmarks and tutorials draw their planted data from here. Each generator is seeded and draws its random
numbers in a fixed order, so the same arguments give the same arrays. In every generator a feature's *support* is the
set of factors that drive it, and the weights are ``±U(lo, hi)`` on the support and 0 elsewhere.
"""

from __future__ import annotations

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import roc_auc_score

#: make_counts and make_binary: planted factors and groups, and the Gaussian modalities beside the one under test
N_FACTORS = 5
N_GROUPS = 3
GAUSSIAN_MODS = {"prot": 80, "meth": 120}
#: library-size ranges of :func:`make_counts`: bulk depth, and a shallow one where many counts are small or zero
DEPTHS = {"counts": (2.5e6, 1e7), "counts_shallow": (2e4, 8e4)}
#: a learned factor belongs to a true factor when their |corr| exceeds this (several may split one true factor)
MATCH_R = 0.3


# -- building blocks ---------------------------------------------------------------------------------------------
def sparse_support(rng: np.random.Generator, d: int, n_factors: int, n_driven: int) -> np.ndarray:
    """Support (d × n_factors, bool): feature ``j < n_driven`` is driven by factor ``j mod n_factors`` and, with
    probability 1/2, by one more; the others by none.
    """
    support = np.zeros((d, n_factors), bool)
    for j in range(n_driven):
        k1 = j % n_factors
        support[j, k1] = True
        if rng.random() < 0.5:
            support[j, rng.choice([k for k in range(n_factors) if k != k1])] = True
    return support


def signed_weights(rng: np.random.Generator, support: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Weights ``±U(lo, hi)`` on ``support``, 0 elsewhere."""
    return support * rng.uniform(lo, hi, size=support.shape) * rng.choice([-1, 1], size=support.shape)


def as_anndata(x: np.ndarray, name: str, obs_names) -> ad.AnnData:
    """``x`` as float32 AnnData with features ``<name>0``, ``<name>1``, ..."""
    adata = ad.AnnData(np.asarray(x, dtype=np.float32), obs=pd.DataFrame(index=list(obs_names)))
    adata.var_names = [f"{name}{j}" for j in range(x.shape[1])]
    return adata


def _mudata(mods: dict[str, ad.AnnData]) -> md.MuData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return md.MuData(mods)


def to_mudata(data: dict[str, np.ndarray], obs: pd.DataFrame) -> md.MuData:
    """A MuData of the arrays ``data`` (every sample in every modality) with the sample annotations ``obs``."""
    mdata = _mudata({name: as_anndata(x, name, obs.index) for name, x in data.items()})
    mdata.obs = mdata.obs.join(obs)
    return mdata


def planted_factors(rng, n: int, n_factors: int = N_FACTORS, n_groups: int = N_GROUPS, shift: float = 1.5):
    """Balanced groups (shuffled) and factors ``N(0, I) + shift e_g`` (group g shifts factor g), centred."""
    groups = rng.permutation(np.arange(n) % n_groups)
    z = rng.normal(size=(n, n_factors))
    z[np.arange(n), groups] += shift
    return z - z.mean(0), groups


def gaussian_modalities(rng, z: np.ndarray, dims: dict[str, int], weight_range=(0.4, 0.8), noise: float = 1.0):
    """``{name: (n, d) data}`` and supports of Gaussian modalities ``x = z Wᵀ + noise · ε`` (20 % unlinked)."""
    data, supports = {}, {}
    for name, d in dims.items():
        support = sparse_support(rng, d, z.shape[1], d - int(round(0.2 * d)))
        data[name] = z @ signed_weights(rng, support, *weight_range).T + noise * rng.normal(size=(len(z), d))
        supports[name] = support
    return data, supports


# -- independent factors -------------------------------------------------------------------------------------------
def make_planted(n=300, n_factors=4, dims=(120, 80), noise=0.5, frac_null=0.25, weight_range=(0.7, 1.5), seed=0):
    """Two modalities ``a`` and ``b`` from ``n_factors`` independent factors: ``x = z Wᵀ + noise · ε``.

    The last ``frac_null`` of each modality's features are noise only.

    Returns
    -------
    mdata, z (n × n_factors), supports {modality: bool D × n_factors}, weights {modality: D × n_factors}

    """
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, n_factors))
    names = [f"s{i}" for i in range(n)]
    mods, supports, weights = {}, {}, {}
    for name, d in zip(("a", "b"), dims, strict=True):
        support = sparse_support(rng, d, n_factors, d - int(frac_null * d))
        w = signed_weights(rng, support, *weight_range)
        x = z @ w.T + noise * rng.normal(size=(n, d))
        mods[name], supports[name], weights[name] = as_anndata(x, name, names), support, w
    return _mudata(mods), z, supports, weights


def make_planted3(n: int = 300, n_factors: int = 4, seed: int = 0):
    """Three modalities from independent factors: ``a`` (120 features) and ``b`` (80), weights ±U(0.7, 1.5) and
    noise SD 0.5, and the near-noise ``c`` (60; weights ±U(0.05, 0.1), noise SD 1). A quarter of each modality's
    features are unlinked.

    Returns
    -------
    mdata, z (n × n_factors), supports {modality: bool D × n_factors}

    """
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, n_factors))
    names = [f"s{i}" for i in range(n)]
    spec = {"a": (120, (0.7, 1.5), 0.5), "b": (80, (0.7, 1.5), 0.5), "c": (60, (0.05, 0.1), 1.0)}
    mods, supports = {}, {}
    for name, (d, weight_range, noise) in spec.items():
        support = sparse_support(rng, d, n_factors, d - d // 4)
        w = signed_weights(rng, support, *weight_range)
        x = z @ w.T + noise * rng.normal(size=(n, d))
        mods[name], supports[name] = as_anndata(x, name, names), support
    return _mudata(mods), z, supports


def make_linked(seed: int, n: int = 200, n_factors: int = 8):
    """Two modalities, ``a`` (160 features) and ``b`` (120), each feature driven by at most one of ``n_factors``
    factors (60 % are), weights ±U(0.4, 1.0), noise SD 1: "linked" pairs across the modalities are unambiguous.

    Returns
    -------
    mdata, z (n × n_factors), supports {modality: bool D × n_factors}

    """
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, n_factors))
    mods, supports = {}, {}
    for name, d in (("a", 160), ("b", 120)):
        support = np.zeros((d, n_factors), bool)
        driven = rng.random(d) < 0.6
        support[np.flatnonzero(driven), rng.integers(n_factors, size=driven.sum())] = True
        w = signed_weights(rng, support, 0.4, 1.0)
        x = z @ w.T + rng.normal(size=(n, d))
        mods[name], supports[name] = as_anndata(x, name, [f"s{i}" for i in range(n)]), support
    return _mudata(mods), z, supports


# -- correlated, cluster-structured factors (how many factors a model keeps) -----------------------------------------
def make_structured(
    seed: int,
    n: int = 300,
    n_factors: int = 4,
    n_clusters: int = 3,
    dims: tuple[int, int, int] = (200, 150, 60),
    missing: float = 0.15,
    noise: float = 0.7,
):
    """Three modalities from ``n_factors`` correlated, cluster-structured factors, with samples missing a modality.

    Factor scores: ``n_clusters`` balanced clusters (shuffled) with centres ``N(0, 1.2²)`` per factor, plus
    correlated noise (covariance ``0.6 I + 0.4 AAᵀ/K``, A standard normal), standardised. Modalities ``a`` and ``b``
    (``dims[:2]`` features, weights ±U(0.5, 1.2)) and the near-noise ``c`` (``dims[2]``, weights ±U(0.03, 0.08)),
    ``x = z Wᵀ + noise · ε``; in each, the first three quarters of the features are driven by factor ``j mod K`` and,
    with probability 0.3, one more. A share ``missing`` of the samples (at random) lack modality ``b``.

    Returns
    -------
    mdata (``obs["cluster"]``), z (n × n_factors, every sample), supports {modality: bool D × n_factors}

    """
    rng = np.random.default_rng(seed)
    clusters = rng.permutation(np.arange(n) % n_clusters)
    centres = rng.normal(0, 1.2, size=(n_clusters, n_factors))
    a = rng.normal(size=(n_factors, n_factors))
    cov = 0.6 * np.eye(n_factors) + 0.4 * (a @ a.T) / n_factors
    z = centres[clusters] + rng.multivariate_normal(np.zeros(n_factors), cov, size=n)
    z = (z - z.mean(0)) / z.std(0)
    names = np.array([f"s{i}" for i in range(n)])
    mods, supports = {}, {}
    spec = {"a": (dims[0], (0.5, 1.2)), "b": (dims[1], (0.5, 1.2)), "c": (dims[2], (0.03, 0.08))}
    for name, (d, weight_range) in spec.items():
        support = np.zeros((d, n_factors), bool)
        for j in range(d - d // 4):
            k1 = j % n_factors
            support[j, k1] = True
            if rng.random() < 0.3:
                support[j, rng.choice([k for k in range(n_factors) if k != k1])] = True
        w = signed_weights(rng, support, *weight_range)
        x = z @ w.T + noise * rng.normal(size=(n, d))
        keep = np.ones(n, bool) if name != "b" else rng.random(n) >= missing
        mods[name], supports[name] = as_anndata(x[keep], name, names[keep]), support
    mdata = _mudata(mods)
    mdata.obs["cluster"] = pd.Categorical(clusters.astype(str))
    return mdata, z, supports


# -- grouped factors: likelihoods and batches ----------------------------------------------------------------------
def _scaled(dims: dict[str, int], scale: float) -> dict[str, int]:
    return {k: max(10, int(v * scale)) for k, v in dims.items()}


def _planted_start(seed: int, n: int, n_features: int, scale: float, weight_range: tuple[float, float]):
    """What :func:`make_counts` and :func:`make_binary` draw first, in this order: the factors and groups, the
    Gaussian modalities, then the support and weights of the modality under test.

    Returns ``rng, z, data, supports, obs, support, w``.
    """
    rng = np.random.default_rng(seed)
    z, groups = planted_factors(rng, n)
    data, supports = gaussian_modalities(rng, z, _scaled(GAUSSIAN_MODS, scale))
    d = max(10, int(n_features * scale))
    support = sparse_support(rng, d, N_FACTORS, d - int(round(0.2 * d)))
    w = signed_weights(rng, support, *weight_range)
    obs = pd.DataFrame({"group": pd.Categorical(groups.astype(str))}, index=[f"s{i}" for i in range(n)])
    return rng, z, data, supports, obs, support, w


def make_counts(seed: int, n: int = 300, n_genes: int = 300, scale: float = 1.0, depth=DEPTHS["counts"]):
    """Counts ``rna`` (negative binomial, dispersion 0.1) beside the Gaussian modalities ``prot`` and ``meth``.

    Five factors ``N(0, I) + 1.5 e_g`` for 3 balanced groups; weights ±U(0.3, 0.8); a gene's baseline log-abundance
    ``N(0, 2²)`` clipped to ±5, as a share of the library; library sizes log-uniform on ``depth``; mean
    ``ℓ_i p_j exp(2 tanh(z_i W_jᵀ / 2))``. ``scale`` shrinks every modality's feature count (at least 10).

    Returns the modalities' data ``{name: array}``, the library sizes, obs (``group``), z and the supports.
    """
    rng, z, data, supports, obs, support, w = _planted_start(seed, n, n_genes, scale, (0.3, 0.8))
    d = len(support)
    b = np.clip(rng.normal(0.0, 2.0, size=d), -5, 5)
    share = np.exp(b) / np.exp(b).sum()
    library = np.exp(rng.uniform(np.log(depth[0]), np.log(depth[1]), size=n))
    mean = library[:, None] * share[None, :] * np.exp(2.0 * np.tanh(z @ w.T / 2.0))
    dispersion = 0.1
    lam = rng.gamma(shape=1.0 / dispersion, scale=mean * dispersion)
    data["rna"] = rng.poisson(lam).astype(np.float64)
    supports["rna"] = support
    return data, library, obs, z, supports


def make_binary(seed: int, n: int = 300, n_features: int = 100, scale: float = 1.0):
    """A 0/1 modality ``mut`` beside the Gaussian modalities of :func:`make_counts`: weights ±U(1, 2) on the logit
    scale, base rates U(0.05, 0.30), ``P(x = 1) = sigmoid(logit(base_j) + z_i W_jᵀ)``.

    Returns the modalities' data ``{name: array}``, obs (``group``), z and the supports.
    """
    rng, z, data, supports, obs, support, w = _planted_start(seed, n, n_features, scale, (1.0, 2.0))
    d = len(support)
    base = rng.uniform(0.05, 0.30, size=d)
    logits = np.log(base / (1 - base)) + z @ w.T
    data["mut"] = (rng.random((n, d)) < 1 / (1 + np.exp(-logits))).astype(np.float64)
    supports["mut"] = support
    return data, obs, z, supports


def make_batched(seed: int, n: int = 300, scale: float = 1.0, shift_sd: float = 2.0, frac_shifted: float = 0.7):
    """Gaussian modalities ``a`` (150 features) and ``b`` (100) from 4 factors with 3 planted groups (shift 3), and a
    strong shift in batch ``b1``: within each group half of the samples, at random; in each modality a share
    ``frac_shifted`` of the features move by ``±shift_sd`` of their SD.

    Returns the MuData (``obs``: ``group``, ``batch``) and the true factors.
    """
    rng = np.random.default_rng(seed)
    z, groups = planted_factors(rng, n, n_factors=4, shift=3.0)
    batch = np.zeros(n, dtype=int)
    for g in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == g))
        batch[members[: len(members) // 2]] = 1
    data, _ = gaussian_modalities(rng, z, _scaled({"a": 150, "b": 100}, scale))
    for name, x in data.items():
        shifted = rng.random(x.shape[1]) < frac_shifted
        delta = shift_sd * x.std(0) * rng.choice([-1, 1], size=x.shape[1]) * shifted
        data[name] = x + batch[:, None] * delta[None, :]
    obs = pd.DataFrame(
        {"group": pd.Categorical(groups.astype(str)), "batch": pd.Categorical(np.where(batch == 1, "b1", "b0"))},
        index=[f"s{i}" for i in range(n)],
    )
    return to_mudata(data, obs), z


# -- mixed likelihoods with covariates (tests) -----------------------------------------------------------------------
def make_mixed_mudata(n: int = 80, seed: int = 0, batch_shift: float = 0.0) -> md.MuData:
    """A small cohort with one modality per likelihood, driven by 3 factors: ``rna`` negative binomial counts
    (library sizes varying 4-fold, 30 genes), ``prot`` Gaussian (20), ``mut`` 0/1 (15).

    ``obs["batch"]`` (A/B, alternating) adds ``batch_shift`` to the log-means and to prot; ``obs["age"]`` is
    continuous, ``obs["group"]`` the sign of factor 1, ``obs["library"]`` the total counts.
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 3))
    batch = np.arange(n) % 2
    w_rna = rng.normal(size=(3, 30)) * (rng.random((3, 30)) < 0.4)
    library = rng.uniform(2e5, 8e5, size=n)
    log_share = z @ w_rna * 0.6 + rng.normal(-3.5, 0.5, size=30) + batch_shift * batch[:, None]
    share = np.exp(log_share) / np.exp(log_share).sum(1, keepdims=True)
    mu = share * library[:, None]
    counts = rng.negative_binomial(10, 10 / (10 + mu)).astype(np.float32)
    prot = (z @ rng.normal(size=(3, 20)) + rng.normal(size=(n, 20)) + batch_shift * batch[:, None]).astype(np.float32)
    logits = z @ (rng.normal(size=(3, 15)) * 1.5) - 0.5
    mut = (rng.random((n, 15)) < 1 / (1 + np.exp(-logits))).astype(np.float32)
    names = [f"s{i}" for i in range(n)]
    mods = {}
    for key, x in {"rna": counts, "prot": prot, "mut": mut}.items():
        a = ad.AnnData(x)
        a.obs_names = names
        a.var_names = [f"{key}_{j}" for j in range(x.shape[1])]
        mods[key] = a
    mdata = md.MuData(mods)
    mdata.obs["batch"] = np.where(batch == 1, "B", "A")
    mdata.obs["age"] = rng.normal(60, 10, size=n)
    mdata.obs["group"] = np.where(z[:, 0] > 0, "high", "low")
    mdata.obs["library"] = counts.sum(1)
    return mdata


# -- recovery scores -------------------------------------------------------------------------------------------------
def match_factors(z_true: np.ndarray, z_learned: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Learned factor matched to each true factor (Hungarian on |corr|) and the matched |corr|; where fewer factors
    were learned than planted, a true factor left without one gets -1 and |corr| 0 (see :func:`matched_columns`).
    """
    k = z_true.shape[1]
    c = np.nan_to_num(np.abs(np.corrcoef(z_true.T, z_learned.T)[:k, k:]))
    rows, cols = linear_sum_assignment(c, maximize=True)
    matched, r = np.full(k, -1), np.zeros(k)
    matched[rows], r[rows] = cols, c[rows, cols]
    return matched, r


def matched_columns(w: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The columns ``cols`` (from :func:`match_factors`) of ``w``, a column of zeros where ``cols`` is -1."""
    out = np.zeros((w.shape[0], len(cols)), dtype=w.dtype)
    ok = cols >= 0
    out[:, ok] = w[:, cols[ok]]
    return out


def grouped_auroc(z_true, z_learned, loadings, supports, mods=None) -> tuple[float, list[float]]:
    """Recovery scored so that a true factor split over several learned factors counts.

    Each learned factor belongs to the true factor it correlates with most, when that |corr| exceeds
    :data:`MATCH_R`; a feature's score for true factor f is the largest |W| over the learned factors that belong to
    f (0 if none); AUROC of that score against f's planted support over the features of ``mods`` (default: all),
    averaged over the true factors. (With correlated true factors, a learned factor passes the threshold for several
    of them; it counts for its best match only.) Returns the mean and the per-factor AUROCs.
    """
    mods = list(supports) if mods is None else list(mods)
    k_true = z_true.shape[1]
    corr = np.nan_to_num(np.abs(np.corrcoef(z_true.T, z_learned.T)[:k_true, k_true:]))
    owner = corr.argmax(0)
    member = corr.max(0) > MATCH_R
    aurocs = []
    for f in range(k_true):
        matched = np.flatnonzero(member & (owner == f))
        y = np.concatenate([supports[m][:, f] for m in mods])
        if matched.size == 0:
            score = np.zeros(len(y))
        else:
            score = np.concatenate([np.abs(loadings[m][:, matched]).max(1) for m in mods])
        aurocs.append(roc_auc_score(y, score))
    return float(np.mean(aurocs)), aurocs
