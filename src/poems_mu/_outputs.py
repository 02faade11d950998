"""Per-sample and per-feature outputs of a trained POEMS model: latents, gates, contributions, loadings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from mudata import MuData

from ._query import minibatches, query_dataset


class OutputsMixin:
    """Getters of a POEMS model's results as numpy arrays and DataFrames (copies, never views of parameters)."""

    @torch.inference_mode()
    def _collect(
        self,
        mdata: MuData | None,
        batch_size: int | None,
        keys: Sequence[str],
        samples: Sequence[str] | None = None,
        condition_on: Sequence[str] | None = None,
    ) -> dict[str, np.ndarray]:
        """Inference outputs ``keys`` for ``samples`` of ``mdata`` (which may lack trained modalities), in order."""
        dataset, obs_names = query_dataset(self, mdata, samples, condition_on)
        self.module.eval()
        picks = {"qz_mean": lambda r: r["qz"].loc, "qz_scale": lambda r: r["qz"].scale}
        out: dict[str, list] = {k: [] for k in keys}
        for tensors in minibatches(dataset, batch_size):
            res = self.module.inference(**self.module._get_inference_input(tensors))
            for k in keys:
                out[k].append(picks[k](res).cpu().numpy() if k in picks else res[k].detach().cpu().numpy())
        return {"obs_names": obs_names, **{k: np.concatenate(v) for k, v in out.items()}}

    def get_latent_representation(
        self,
        adata: MuData | None = None,
        indices: Sequence[int] | None = None,
        give_mean: bool = True,
        batch_size: int | None = None,
        return_dist: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Posterior of the latent factors, ``q(z | x)``, of each sample from the modalities it has.

        Parameters
        ----------
        adata
            MuData with the training features of any of the trained modalities (default: the training MuData); a
            new cohort may lack whole modalities, and each sample is placed from the ones it has.
        indices
            Positions of the samples to return (default all).
        give_mean
            Return the posterior means; otherwise one draw from the posterior.
        batch_size
            Minibatch size for inference.
        return_dist
            Return the posterior means and SDs ``(loc, scale)``.

        Returns
        -------
        Array ``samples × K`` (or the pair of them with ``return_dist``).

        """
        self._check_if_trained(warn=False)
        names = None if indices is None else (self.adata if adata is None else adata).obs_names[np.asarray(indices)]
        res = self._collect(adata, batch_size, ["qz_mean", "qz_scale", "z"], samples=names)
        if return_dist:
            return res["qz_mean"], res["qz_scale"]
        return res["qz_mean"] if give_mean else res["z"]

    def get_gating_weights(self, mdata: MuData | None = None, batch_size: int | None = None) -> pd.DataFrame:
        """Per-sample gating weights α.

        Parameters
        ----------
        mdata
            MuData with the training features of any of the trained modalities (default: the training MuData); a
            new cohort may lack whole modalities.
        batch_size
            Minibatch size for inference.

        Returns
        -------
        DataFrame ``samples × modalities``; each row sums to one over the modalities the sample has and is exactly
        0 for the ones it lacks.

        """
        res = self._collect(mdata, batch_size, ["alpha"])
        return pd.DataFrame(res["alpha"], index=res["obs_names"].copy(), columns=list(self.modalities))

    def _check_modality(self, modality: str) -> int:
        if modality not in self.modalities:
            raise ValueError(f"Modality {modality!r} is not in this model; its modalities are {self.modalities}.")
        return self.modalities.index(modality)

    def _sparse_only(self, what: str) -> None:
        if self.module.decoder_type != "sparse":
            raise ValueError(f"{what} exist only with decoder='sparse'; this model uses a dense decoder.")

    def factor_names(self) -> list[str]:
        """Names of the latent factors: ``factor_1 … factor_K``."""
        return [f"factor_{k + 1}" for k in range(self.module.n_latent)]

    def get_loadings(self, modality: str) -> pd.DataFrame:
        """Feature-to-factor matrix ``W`` of one modality.

        Parameters
        ----------
        modality
            Modality name.

        Returns
        -------
        DataFrame ``features × factors``. ``W[j, k] = 0`` means factor k does not reach feature j; ``|W[j, k]|``
        bounds the size of its effect on the standardised feature (:meth:`get_effective_loadings` gives the effect).

        """
        v = self._check_modality(modality)
        self._sparse_only("Loadings")
        w = self.module.decoders[v].W.detach().cpu().numpy().copy()  # a copy: never a view of the parameter
        return pd.DataFrame(w, index=self._var_names(modality), columns=self.factor_names())

    def get_slab_probabilities(self, modality: str) -> pd.DataFrame:
        """Posterior slab probabilities ``p*`` of one modality's loadings (features × factors)."""
        v = self._check_modality(modality)
        self._sparse_only("Slab probabilities")
        p = self.module.priors[v].p_star.detach().cpu().numpy().copy()
        return pd.DataFrame(p, index=self._var_names(modality), columns=self.factor_names())

    def _check_likelihood(self, modality: str, name: str, what: str) -> int:
        v = self._check_modality(modality)
        if self.likelihoods[modality] != name:
            raise ValueError(
                f"{what} exists only for modalities modelled with likelihood {name!r}; modality {modality!r} uses "
                f"{self.likelihoods[modality]!r}."
            )
        return v

    def get_feature_sigma(self, modality: str) -> pd.Series:
        """Per-feature residual SD of a Gaussian modality, in the units of the input data."""
        v = self._check_likelihood(modality, "gaussian", "A residual SD")
        _, scale, _ = self.module.feature_stats(v)
        sigma = (self.module.likelihoods[v].sigma * scale).detach().cpu().numpy()
        return pd.Series(sigma, index=self._var_names(modality), name="poems_sigma")

    def get_nb_theta(self, modality: str) -> pd.Series:
        """Per-feature inverse dispersion θ of a negative binomial modality (count variance ``μ + μ²/θ``)."""
        v = self._check_likelihood(modality, "nb", "An inverse dispersion")
        theta = self.module.likelihoods[v].theta.detach().cpu().numpy().astype(np.float64)
        return pd.Series(theta, index=self._var_names(modality), name="poems_nb_theta")

    def _var_names(self, modality: str) -> pd.Index:
        return self.adata.mod[modality].var_names.copy()

    def get_contributions(self, mdata: MuData | None = None, batch_size: int | None = None) -> pd.DataFrame:
        """Effective contribution of each modality to each sample's fused posterior.

        ``α_v τ_v / Σ_u α_u τ_u``, averaged over the factors: the share of the fused precision that modality v
        provides. The gate α alone does not say how much a modality moves the posterior (a modality with a
        large gate but a wide expert contributes little).

        Parameters
        ----------
        mdata
            MuData with the training features of any of the trained modalities (default: the training MuData); a
            new cohort may lack whole modalities.
        batch_size
            Minibatch size for inference.

        Returns
        -------
        DataFrame ``samples × modalities``; exactly 0 for a modality the sample lacks, and each row sums to 1 over
        the modalities. With the prior expert on, a column ``"prior"`` gives the prior's share of the whole fused
        precision (the modality columns are then normalised among themselves).

        """
        res = self._collect(mdata, batch_size, ["contributions"])
        return self._contributions_frame(res["contributions"], res["obs_names"])

    def _contributions_frame(self, shares: np.ndarray, obs_names: pd.Index) -> pd.DataFrame:
        """The DataFrame of :meth:`get_contributions` from the module's precision shares (samples × V[+1])."""
        shares = shares.astype(np.float64)
        n_mod = len(self.modalities)
        mods = shares[:, :n_mod]
        total = mods.sum(1, keepdims=True)
        df = pd.DataFrame(
            np.divide(mods, total, out=np.zeros_like(mods), where=total > 0),
            index=obs_names.copy(),
            columns=list(self.modalities),
        )
        if shares.shape[1] > n_mod:
            df["prior"] = shares[:, n_mod]
        return df

    @torch.inference_mode()
    def get_effective_loadings(
        self, modality: str, mdata: MuData | None = None, batch_size: int | None = None, signed: bool = False
    ) -> pd.DataFrame:
        """Effective loadings: mean over samples of ``∂η_ij/∂z_ik × sd(z_k)``, on the decoder's link scale.

        ``|W[j, k]|`` only bounds the effect of factor k on feature j (``∂x̂_j/∂z_k = W[j, k] ⟨c_j, A_k ⊙
        1[pre_j > 0]⟩``); this is the effect itself, at each sample's posterior mean, scaled by the spread of the
        factor over the samples, so it reads as "change of the feature for one SD of the factor" on the link scale:
        standardised units for a Gaussian modality, natural-log fold change of the expected count for a negative
        binomial one, log odds for a Bernoulli one. Exactly 0 where ``W[j, k] = 0``. Covariate effects are additive
        and do not enter.

        Parameters
        ----------
        modality
            Modality name.
        mdata
            MuData to average over (default: the training MuData).
        batch_size
            Minibatch size for inference.
        signed
            Average the signed derivative (its sign: does the feature rise with the factor?) instead of its
            magnitude. ``|signed|`` ≤ the unsigned value, with equality when the sign is the same for every sample.

        Returns
        -------
        DataFrame ``features × factors``.

        """
        v = self._check_modality(modality)
        self._sparse_only("Effective loadings")
        z = self._collect(mdata, batch_size, ["qz_mean"])["qz_mean"]
        return self._effective_loadings(v, z, batch_size, signed)

    @torch.inference_mode()
    def _effective_loadings(self, v: int, z: np.ndarray, batch_size: int | None, signed: bool = False) -> pd.DataFrame:
        """Effective loadings of modality ``v`` from the posterior means ``z`` (samples × K) already computed."""
        if len(z) == 0:
            raise ValueError("The MuData has no samples to average the effective loadings over.")
        dec = self.module.decoders[v]
        zt = torch.as_tensor(z, dtype=dec.W.dtype, device=dec.W.device)
        step = batch_size or 128
        total = sum(dec.jacobian_sum(zt[i : i + step], signed) for i in range(0, len(zt), step))
        eff = (total / len(zt) * zt.std(0, unbiased=False)).cpu().numpy().astype(np.float64)
        return pd.DataFrame(eff, index=self._var_names(self.modalities[v]), columns=self.factor_names())

    def sparsity_summary(self) -> pd.DataFrame:
        """How sparse each modality's W is: share of ``|W| > 0.01`` (the paper's threshold), of exact zeros and of
        slab links (``p* > 0.5``), and the number of factors with at least one non-zero loading.

        Returns
        -------
        DataFrame ``modalities × [density, zeros, slab, active_factors]``.

        """
        self._sparse_only("Sparsity summaries")
        rows = {}
        for v, m in enumerate(self.modalities):
            w = self.module.decoders[v].W.detach().cpu().numpy()
            p = self.module.priors[v].p_star.detach().cpu().numpy()
            rows[m] = {
                "density": float((np.abs(w) > 0.01).mean()),
                "zeros": float((w == 0).mean()),
                "slab": float((p > 0.5).mean()),
                "active_factors": int((w != 0).any(0).sum()),
            }
        return pd.DataFrame.from_dict(rows, orient="index")
