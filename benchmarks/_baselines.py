"""The subtyping protocol of the POEMS paper (Appendix A) and the baselines: PCA and MOFA+ on z-scored views.

The bundled cohorts with their labels (:func:`load_dataset`), the paper's split (:func:`paper_split`), the methods
under it and the scores (:func:`evaluate`). Every method is *fitted on the train-split samples only* and then embeds
every sample (train and test): POEMS set up and trained on the train split (:func:`fit_poems`), the baselines with
fixed (untuned) settings on views z-scored per feature with the mean and SD of the train-split samples that have
the view; a sample lacking a view has NaN there (MOFA+ handles NaN natively; PCA imputes the missing block with the
train mean, i.e. 0 after z-scoring). The baselines run as their users run them: PCA with 32 components; MOFA+
(mofapy2) with MOFA's usual 15 factors and its own dropping of inactive factors (``dropR2=0.001``, the threshold of
mofapy2's getting-started notebook), scored on the factors it keeps (:data:`MOFA_SETTINGS`); MOFA-FLEX with its MOFA
preset (:data:`MOFAFLEX_MODEL`). Nothing here imports ``poems_mu`` at import time (``tuning/v01_reference.py``
puts another checkout first).
"""

from __future__ import annotations

import contextlib
import io
import time

import numpy as np
from mudata import MuData
from scipy import sparse
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split

_TOL = 1e-8
BASELINES = ("PCA", "MOFA+", "MOFA-FLEX")
#: label column of the bundled data sets
LABEL_KEYS = {"rosmap": "label", "breast_tcga": "subtype"}
SCOPES = ("all", "test", "train")
#: PCA components
N_COMPONENTS = 32
#: MOFA+ (mofapy2) as its users run it: MOFA's usual 15 factors (the default of the MOFA2 R package's
#: ``get_default_model_options``; mofapy2's ``set_model_options`` and ``mofa()`` default to 10), inactive factors
#: dropped during training, one per iteration, when no view has more than ``dropR2`` of its variance explained by
#: them (0.001, as in mofapy2's ``notebooks/getting_started_python.ipynb``: ``set_train_options(convergence_mode=
#: "fast", dropR2=0.001, ...)``; mofapy2's own default, ``dropR2=None``, drops nothing), ``convergence_mode="fast"``
#: and at most 1000 iterations (mofapy2's defaults).
MOFA_FACTORS = 15
MOFA_DROP_R2 = 0.001
MOFA_MAX_ITER = 1000
MOFA_SETTINGS = {
    "factors": MOFA_FACTORS,
    "dropR2": MOFA_DROP_R2,
    "startDrop": 1,
    "freqDrop": 1,
    "max_iter": MOFA_MAX_ITER,
    "convergence_mode": "fast",
    "likelihoods": "gaussian",
    "scale_views": False,
    "center_groups": True,
    "input": "views z-scored per feature with the train-split statistics",
    "embedding": "every sample projected onto the factors kept (posterior mean of z given E[W], E[tau])",
    "drop_threshold_source": "mofapy2 notebooks/getting_started_python.ipynb, set_train_options(dropR2=0.001)",
}


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


def pca_embedding(views: dict[str, np.ndarray], fit_mask: np.ndarray, n_components: int = N_COMPONENTS) -> np.ndarray:
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
    n_factors: int = MOFA_FACTORS,
    seed: int = 0,
    max_iter: int = MOFA_MAX_ITER,
    convergence_mode: str = "fast",
    drop_r2: float | None = MOFA_DROP_R2,
):
    """The fitted mofapy2 model of the ``fit_mask`` samples (NaN = missing).

    :data:`MOFA_SETTINGS`: ``n_factors`` factors at the start, a factor dropped while training once it explains no
    more than ``drop_r2`` of any view's variance (mofapy2's ``set_train_options(dropR2=...)``, checked from the
    first iteration on, one factor at a time; ``None`` drops nothing), Gaussian likelihoods, one group, ARD and
    spike-and-slab on the weights, ``convergence_mode="fast"``, at most ``max_iter`` iterations (mofapy2's own
    default is 1000 as well).
    """
    from mofapy2.run.entry_point import entry_point

    names = list(views)
    data = [[v[fit_mask]] for v in views.values()]
    n_factors = min(n_factors, int(fit_mask.sum()) - 1, sum(v.shape[1] for v in views.values()))
    with contextlib.redirect_stdout(io.StringIO()):
        ent = entry_point()
        ent.set_data_options(scale_views=False, center_groups=True)
        ent.set_data_matrix(data, views_names=names, likelihoods=["gaussian"] * len(names))
        ent.set_model_options(factors=n_factors)
        ent.set_train_options(
            iter=max_iter,
            convergence_mode=convergence_mode,
            dropR2=drop_r2,
            seed=seed,
            quiet=True,
            verbose=False,
        )
        ent.build()
        ent.run()
    return ent.model


def mofa_embedding(views: dict[str, np.ndarray], fit_mask: np.ndarray, **settings) -> tuple[np.ndarray, dict]:
    """MOFA+ (mofapy2) fitted on the ``fit_mask`` samples (:func:`fit_mofa` with ``settings``), then all samples
    projected onto its factors. Missing views are NaN.

    The embedding of every sample (train and test) is the posterior mean of ``z`` under MOFA's N(0, I) factor
    prior given the fitted weights and noise precisions,
    ``(I + Σ_v E[W_v]ᵀ T_v E[W_v])⁻¹ Σ_v E[W_v]ᵀ T_v x_v`` over the views the sample has — MOFA+'s own
    variational update of ``Z`` with the weights fixed at their means. For the train samples it agrees closely
    with MOFA+'s fitted factors (checked in the returned ``info["train_corr"]``).

    Returns
    -------
    The ``(n_obs, K)`` embedding (``K``: the factors MOFA+ kept) and a dict with the number of iterations, the
    factors at the start and kept, and the median absolute correlation between projected and fitted train factors.
    """
    model = fit_mofa(views, fit_mask, **settings)
    max_iter = settings.get("max_iter", MOFA_MAX_ITER)
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
        "n_factors_start": int(model.train_stats["number_factors"][0]),
        "n_factors": int(K),
        "train_corr_median": float(np.median(corr)) if corr else float("nan"),
    }
    return Z, info


#: MOFA-FLEX's MOFA preset (bioFAM's successor of MOFA+): 15 factors, horseshoe weights, Normal factors and likelihoods
MOFAFLEX_FACTORS = 15
MOFAFLEX_MODEL = {
    "n_factors": MOFAFLEX_FACTORS,
    "weight_prior": "Horseshoe",
    "factor_prior": "Normal",
    "likelihoods": "Normal",
}


def fit_mofaflex(views: dict[str, np.ndarray], fit_mask: np.ndarray, seed: int = 0, max_epochs: int = 10_000):
    """MOFA-FLEX (``mofaflex``) with its MOFA preset fitted on the ``fit_mask`` samples of the z-scored ``views``
    (NaN = missing; a sample lacking a view is left out of that view's AnnData, MOFA-FLEX's union of samples).

    ``DataOptions(plot_data_overview=False, subset_var=None, scale_per_group=False)`` keeps every feature as given and
    draws nothing; ``TrainingOptions(lr=0.05, device="cpu", save_path=False)`` writes nothing to disk.
    """
    import anndata as ad
    import mudata as md
    from mofaflex import MOFAFLEX, DataOptions, ModelOptions, TrainingOptions

    rows = np.flatnonzero(fit_mask)
    mods = {}
    for name, v in views.items():
        x = v[rows]
        has = ~np.isnan(x).all(1)
        mods[name] = ad.AnnData(x[has].astype(np.float32))
        mods[name].obs_names = [f"s{i}" for i in rows[has]]
        mods[name].var_names = [f"{name}_{j}" for j in range(x.shape[1])]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        model = MOFAFLEX(
            md.MuData(mods),
            DataOptions(plot_data_overview=False, subset_var=None, scale_per_group=False),
            ModelOptions(**MOFAFLEX_MODEL),
            TrainingOptions(lr=0.05, device="cpu", save_path=False, seed=seed, max_epochs=max_epochs),
        )
    return model


def mofaflex_embedding(views: dict[str, np.ndarray], fit_mask: np.ndarray, seed: int = 0, max_epochs: int = 10_000):
    """MOFA-FLEX fitted on the ``fit_mask`` samples (:func:`fit_mofaflex`), then every sample projected onto its
    factors: the posterior mean of ``z`` under the N(0, I) factor prior given the weights' means and the noise
    variances, ``(I + Σ_v W_vᵀ T_v W_v)⁻¹ Σ_v W_vᵀ T_v x_v`` over the views a sample has, as for MOFA+.

    Returns the ``(n_obs, K)`` embedding and the median |correlation| between projected and fitted train factors.
    """
    model = fit_mofaflex(views, fit_mask, seed=seed, max_epochs=max_epochs)
    weights = model.get_weights(return_type="numpy")
    noise = model.get_dispersion(return_type="numpy")
    fitted = next(iter(model.get_factors(return_type="pandas").values()))
    k = fitted.shape[1]
    n = next(iter(views.values())).shape[0]
    z = np.zeros((n, k))
    for i in range(n):
        a, b = np.eye(k), np.zeros(k)
        for name, x in views.items():
            xi = x[i]
            ok = ~np.isnan(xi)
            if not ok.any():
                continue
            w = np.asarray(weights[name], dtype=np.float64).T[ok]  # (D, K)
            t = 1.0 / np.asarray(noise[name], dtype=np.float64)[ok]
            a += (w * t[:, None]).T @ w
            b += (w * t[:, None]).T @ xi[ok]
        z[i] = np.linalg.solve(a, b)
    rows = np.array([int(s[1:]) for s in fitted.index])
    corr = [
        abs(np.corrcoef(z[rows, j], fitted.to_numpy()[:, j])[0, 1]) for j in range(k) if fitted.iloc[:, j].std() > 0
    ]
    return z, {"n_factors": int(k), "train_corr_median": float(np.median(corr)) if corr else float("nan")}


def fit_baseline(method: str, mdata: MuData, split: dict[str, np.ndarray], seed: int, quick: bool = False):
    """PCA, MOFA+ or MOFA-FLEX fitted on ``split["train"]`` (z-scored with its statistics); all samples embedded.

    Returns the ``(n_obs, K)`` embedding and a dict of information (wall seconds: z-scoring + fit + projection;
    MOFA+'s iterations, factors kept and the agreement of its projection with its fitted factors). ``quick`` caps
    MOFA+ at 50 iterations and MOFA-FLEX at 50 epochs.
    """
    fit_mask = np.zeros(mdata.n_obs, dtype=bool)
    fit_mask[split["train"]] = True
    start = time.perf_counter()
    views = zscored_views(mdata, fit_mask)
    if method == "PCA":
        z, info = pca_embedding(views, fit_mask, n_components=N_COMPONENTS), {}
    elif method == "MOFA+":
        max_iter = 50 if quick else MOFA_MAX_ITER
        z, info = mofa_embedding(views, fit_mask, seed=seed, max_iter=max_iter)
    elif method == "MOFA-FLEX":
        z, info = mofaflex_embedding(views, fit_mask, seed=seed, max_epochs=50 if quick else 10_000)
    else:
        raise ValueError(f"Unknown baseline {method!r}.")
    info["wall_s"] = time.perf_counter() - start
    return z, info


def load_dataset(name: str):
    """A bundled data set (``rosmap``, ``breast_tcga``) or a MOGONET folder, with its label column."""
    import poems_mu as pm

    if name in LABEL_KEYS:
        return getattr(pm.datasets, name)(), LABEL_KEYS[name]
    return pm.datasets.read_mogonet(name), "label"


def paper_split(labels: np.ndarray, random_state: int = 1) -> dict[str, np.ndarray]:
    """The paper's split: 80/20 train/test, then 20 % of train for validation (stratified, ``random_state=1``).

    Returns sorted sample positions for ``train`` (= ``fit`` ∪ ``val``), ``fit``, ``val`` and ``test``.
    """
    labels = np.asarray(labels)
    idx = np.arange(len(labels))
    train, test = train_test_split(idx, test_size=0.2, random_state=random_state, stratify=labels)
    fit, val = train_test_split(train, test_size=0.2, random_state=random_state, stratify=labels[train])
    return {k: np.sort(v) for k, v in {"train": train, "fit": fit, "val": val, "test": test}.items()}


def train_split_data(mdata, split: dict[str, np.ndarray]):
    """The train-split MuData (a copy) and the positions in it of the fit and validation samples."""
    train_data = mdata[mdata.obs_names[split["train"]]].copy()
    pos = {name: i for i, name in enumerate(train_data.obs_names)}
    fit_rows = np.array([pos[n] for n in mdata.obs_names[split["fit"]]])
    val_rows = np.array([pos[n] for n in mdata.obs_names[split["val"]]])
    return train_data, fit_rows, val_rows


def train_on_split(mdata, split: dict, seed: int, model_kwargs=None, train_kwargs=None, prepare=None):
    """POEMS set up on the train split only, trained on its fit part with early stopping on ``split["val"]``.

    ``prepare(model)`` runs before training. Returns the model, the train-split MuData, the validation rows in it
    and the seconds of ``model.train``.
    """
    import scvi

    import poems_mu as pm

    train_data, fit_rows, val_rows = train_split_data(mdata, split)
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(train_data)
    model = pm.POEMS(train_data, **(model_kwargs or {}))
    if prepare is not None:
        prepare(model)
    start = time.perf_counter()
    model.train(
        enable_progress_bar=False,
        datasplitter_kwargs={"external_indexing": [fit_rows, val_rows, np.array([], dtype=np.int64)]},
        **(train_kwargs or {}),
    )
    return model, train_data, val_rows, time.perf_counter() - start


def fit_poems(
    mdata, split: dict, seed: int, model_kwargs=None, train_kwargs=None, prepare=None
) -> tuple[np.ndarray, dict]:
    """:func:`train_on_split` (``prepare(model)`` runs before training), then every sample embedded by transferring
    the setup to the full MuData (the test samples touch nothing, not even the per-feature standardisation).
    ``wall_s``: set-up + training + embedding; ``train_s``: ``model.train`` alone."""
    import poems_mu as pm

    start = time.perf_counter()
    model, _, _, train_s = train_on_split(mdata, split, seed, model_kwargs, train_kwargs, prepare)
    full = mdata.copy()
    pm.POEMS.setup_mudata(full)
    z = model.get_latent_representation(full)
    hist = model.history
    info = {
        "wall_s": time.perf_counter() - start,
        "train_s": train_s,
        "epochs": len(hist["elbo_train"]),
        "n_factors": int(model.module.n_factors),
    }
    summary = model.training_summary_
    criterion = summary["runs"][summary["chosen_restart"]]["validation_criterion"]
    if criterion is not None:  # the restored state's: the history's minimum may fall in the warm-up (smaller KL weight)
        info["best_elbo_per_sample_validation"] = float(criterion)
    if model.module.decoder_type == "sparse":
        sparsity = model.sparsity_summary()
        info["W_density"] = float(sparsity["density"].mean())
        info["W_zeros"] = float(sparsity["zeros"].mean())
    return z, info


def evaluate(z: np.ndarray, labels: np.ndarray, split: dict[str, np.ndarray], scopes=SCOPES) -> dict:
    """``{scope: {metric: {"mean", "sd", "values"}}}`` of ``pm.tl.evaluate_subtyping`` over its evaluation seeds."""
    import poems_mu as pm

    out = {}
    for scope in scopes:
        mask = np.ones(len(labels), dtype=bool)
        if scope != "all":
            mask = np.zeros(len(labels), dtype=bool)
            mask[split[scope]] = True
        df = pm.tl.evaluate_subtyping(z, labels=labels, subset=mask)
        out[scope] = {
            m: {"mean": float(g.mean()), "sd": float(g.std(ddof=1)), "values": [float(v) for v in g]}
            for m, g in df.groupby("metric", sort=False)["value"]
        }
    return out


def run_method(method, mdata, labels, split, seed, model_kwargs, train_kwargs, quick=False, scopes=SCOPES) -> dict:
    """Fit POEMS (with ``model_kwargs``) or a baseline (``"PCA"``, ``"MOFA+"``) with one training seed and evaluate
    it; returns a JSON-able record."""
    if method in BASELINES:
        z, info = fit_baseline(method, mdata, split, seed, quick=quick)
    else:
        z, info = fit_poems(mdata, split, seed, model_kwargs, train_kwargs)
    if not np.isfinite(z).all():
        return {"method": method, "train_seed": seed, "info": info, "error": "non-finite embedding"}
    return {"method": method, "train_seed": seed, "info": info, "metrics": evaluate(z, labels, split, scopes)}
