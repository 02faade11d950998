"""Passes of a trained model over a MuData's samples: the posterior and its summaries, and the fit to the data.

Every getter, ``store_results``, ``impute``, the active-factor rule and the tools of :mod:`poems_mu.tl` that need the
module's outputs read them through these functions, so that only ``model/`` touches the torch module.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from mudata import MuData

from poems_mu.data._query import minibatches, query_dataset


@torch.inference_mode()
def collect(
    model,
    mdata: MuData | None,
    batch_size: int | None,
    keys: Sequence[str],
    samples: Sequence[str] | None = None,
    condition_on: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Inference outputs ``keys`` for ``samples`` of ``mdata`` (which may lack trained modalities), in order.

    ``keys`` are entries of :meth:`~poems_mu.module.POEMSModule.inference` (``"z"``, ``"alpha"``,
    ``"contributions"``) or ``"qz_mean"`` / ``"qz_scale"`` (the posterior's mean and SD); ``"obs_names"`` is added.
    """
    dataset, obs_names = query_dataset(model, mdata, samples, condition_on)
    module = model.module
    module.eval()
    picks = {"qz_mean": lambda r: r["qz"].loc, "qz_scale": lambda r: r["qz"].scale}
    out: dict[str, list] = {k: [] for k in keys}
    for tensors in minibatches(dataset, batch_size):
        res = module.inference(**module._get_inference_input(tensors))
        for k in keys:
            out[k].append(picks[k](res).cpu().numpy() if k in picks else res[k].detach().cpu().numpy())
    return {"obs_names": obs_names, **{k: np.concatenate(v) for k, v in out.items()}}


def contributions_frame(modalities: Sequence[str], shares: np.ndarray, obs_names: pd.Index) -> pd.DataFrame:
    """Each modality's share of the fused precision (samples × V[+1], the prior expert last) as the DataFrame of
    :meth:`~poems_mu.POEMS.get_contributions`: modality shares normalised among themselves, the prior's share apart.
    """
    shares = shares.astype(np.float64)
    n_mod = len(modalities)
    mods = shares[:, :n_mod]
    total = mods.sum(1, keepdims=True)
    df = pd.DataFrame(
        np.divide(mods, total, out=np.zeros_like(mods), where=total > 0),
        index=obs_names.copy(),
        columns=list(modalities),
    )
    if shares.shape[1] > n_mod:
        df["prior"] = shares[:, n_mod]
    return df


@torch.inference_mode()
def effective_loadings(model, v: int, z: np.ndarray, batch_size: int | None, signed: bool = False) -> pd.DataFrame:
    """Effective loadings of modality ``v`` (features × factors) from posterior means ``z`` (samples × K)."""
    if len(z) == 0:
        raise ValueError("The MuData has no samples to average the effective loadings over.")
    dec = model.module.decoders[v]
    zt = torch.as_tensor(z, dtype=dec.W.dtype, device=dec.W.device)
    step = batch_size or 128
    kept = model.module.kept_factors()
    total = sum(dec.jacobian_sum(zt[i : i + step], signed, kept) for i in range(0, len(zt), step))
    eff = (total / len(zt) * zt.std(0, unbiased=False)).cpu().numpy().astype(np.float64)
    modality = model.modalities[v]
    return pd.DataFrame(eff, index=model.adata.mod[modality].var_names.copy(), columns=model.factor_names())


@torch.inference_mode()
def residual_sums_of_squares(model, mdata: MuData, batch_size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Residual sums of squares of each modality on its encoders' standardised view, and their total sums.

    Returns ``ssr`` (V × (K + 1)): column k with factor k set to its mean over the samples, the last column with the
    full posterior means; and ``sst`` (V): the sums of squares about each feature's mean over the samples that have
    the modality (NaN where none has it). Constant features are left out. ``mdata`` must be registered.
    """
    module = model.module
    module.eval()
    n_latent = module.n_factors
    # pass 1: posterior means of every sample (needed for the factor means)
    zs = []
    for tensors in model._make_data_loader(adata=mdata, batch_size=batch_size, shuffle=False):
        zs.append(module.inference(**module._get_inference_input(tensors))["qz"].loc)
    z_all = torch.cat(zs)
    z_mean = z_all.mean(0)
    # pass 2: residual sums of squares with the full z and with each factor at its mean
    n_var = len(model.modalities)
    ssr = np.zeros((n_var, n_latent + 1))
    sum_x, sum_x2 = [None] * n_var, [None] * n_var
    n_obs = np.zeros(n_var)
    start = 0
    for tensors in model._make_data_loader(adata=mdata, batch_size=batch_size, shuffle=False):
        inf = module.inference(**module._get_inference_input(tensors))
        observed = inf["observed"]
        z = z_all[start : start + observed.shape[0]].to(observed.device)
        start += observed.shape[0]
        xs, masks, weights = [], [], []
        for v in range(n_var):
            m = observed[:, v]
            x = inf["xs_std"][v][m].double()
            weight = module.likelihoods[v].feature_mask.double()
            xs.append(x)
            masks.append(m)
            weights.append(weight)
            n_obs[v] += x.shape[0]
            s1, s2 = (x * weight).sum(0), (x.pow(2) * weight).sum(0)
            sum_x[v] = s1 if sum_x[v] is None else sum_x[v] + s1
            sum_x2[v] = s2 if sum_x2[v] is None else sum_x2[v] + s2
        for col in range(n_latent + 1):
            zk = z
            if col < n_latent:
                zk = z.clone()
                zk[:, col] = z_mean[col]
            px = module.generative(zk, inf["covariates"])["px_means"]
            for v in range(n_var):
                pred = module.likelihoods[v].expected_view(px[v][masks[v]]).double()
                res = (xs[v] - pred).pow(2) * weights[v]
                ssr[v, col] += float(res.sum())
    sst = np.array(
        [
            float((sum_x2[v] - sum_x[v].pow(2) / max(n_obs[v], 1.0)).sum()) if n_obs[v] > 0 else np.nan
            for v in range(n_var)
        ]
    )
    return ssr, sst


def leave_one_factor_out_r2(model, mdata: MuData, batch_size: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Per modality the share of variance each factor explains (V × K: the loss of R² when the factor is set to its
    mean, clipped at 0) and the share all of them explain together (V), from :func:`residual_sums_of_squares`.
    """
    ssr, sst = residual_sums_of_squares(model, mdata, batch_size)
    k = ssr.shape[1] - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        r2_full = 1.0 - ssr[:, k] / sst
        r2_drop = 1.0 - ssr[:, :k] / sst[:, None]
    return np.clip(r2_full[:, None] - r2_drop, 0.0, None), r2_full


@torch.inference_mode()
def negative_elbo_per_sample(model, mdata: MuData, n_draws: int, batch_size: int | None) -> float:
    """Monte Carlo negative ELBO per sample (reconstruction + β·KL, nats, ``n_draws`` posterior draws) of a
    registered ``mdata``.
    """
    module = model.module
    module.eval()
    total, count = 0.0, 0
    for tensors in model._make_data_loader(adata=mdata, batch_size=batch_size, shuffle=False):
        _, _, lo = module(tensors, inference_kwargs={"n_samples": n_draws}, loss_kwargs={"n_obs": mdata.n_obs})
        n = len(next(iter(lo.reconstruction_loss.values())))
        total += float(lo.extra_metrics["elbo_per_sample"]) * n
        count += n
    return total / count
