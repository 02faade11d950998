"""The getters of a trained POEMS model: latents, gates, contributions, loadings, per-feature parameters, factors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from mudata import MuData

from poems_mu._constants import feature_parameter_key
from poems_mu.nn import likelihood_with_parameter

from ._factors import MIN_LINK_WEIGHT, MIN_SCORE_VARIANCE, active_table, check_thresholds
from ._inference import collect, contributions_frame, effective_loadings


def modality_index(model, modality: str) -> int:
    """Position of ``modality`` among the model's modalities; an error naming them otherwise."""
    if modality not in model.modalities:
        raise ValueError(f"Modality {modality!r} is not in this model; its modalities are {model.modalities}.")
    return model.modalities.index(modality)


def sparse_only(model, what: str) -> None:
    """``what`` (loadings, slab probabilities, ...) needs the sparse decoder."""
    if model.module.decoder_type != "sparse":
        raise ValueError(f"{what} exist only with decoder='sparse'; this model uses a dense decoder.")


class GettersMixin:
    """Getters of a trained model's results as numpy arrays and DataFrames (copies, never views of parameters).

    Reads the model's ``module``, ``modalities``, ``likelihoods`` and training MuData (``adata``).
    """

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
        res = collect(self, adata, batch_size, ["qz_mean", "qz_scale", "z"], samples=names)
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
        res = collect(self, mdata, batch_size, ["alpha"])
        return pd.DataFrame(res["alpha"], index=res["obs_names"].copy(), columns=list(self.modalities))

    def factor_names(self) -> list[str]:
        """Names of the factors in use, in order: the feature sets' (annotated factors, named by their ``source``)
        first, then the free factors ``factor_1, factor_2, …``.
        """
        sets = list(self.feature_set_names)
        return sets + [f"factor_{k + 1}" for k in range(self.module.n_factors - len(sets))]

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
        v = modality_index(self, modality)
        sparse_only(self, "Loadings")
        w = self.module.decoders[v].W.detach().index_select(1, self.module.factor_index()).cpu().numpy()
        return pd.DataFrame(w, index=self.adata.mod[modality].var_names.copy(), columns=self.factor_names())

    def get_slab_probabilities(self, modality: str) -> pd.DataFrame:
        """Posterior slab probabilities ``p*`` of one modality's loadings (features × factors)."""
        v = modality_index(self, modality)
        sparse_only(self, "Slab probabilities")
        p = self.module.priors[v].p_star.detach().index_select(1, self.module.factor_index()).cpu().numpy()
        return pd.DataFrame(p, index=self.adata.mod[modality].var_names.copy(), columns=self.factor_names())

    def get_feature_sigma(self, modality: str) -> pd.Series:
        """Per-feature residual SD of a Gaussian modality, in the units of the input data."""
        return self._feature_parameter(modality, "sigma", "A residual SD")

    def get_nb_theta(self, modality: str) -> pd.Series:
        """Per-feature inverse dispersion θ of a negative binomial modality (count variance ``μ + μ²/θ``)."""
        return self._feature_parameter(modality, "nb_theta", "An inverse dispersion")

    def _feature_parameter(self, modality: str, parameter: str, what: str) -> pd.Series:
        likelihood = self.module.likelihoods[modality_index(self, modality)]
        if likelihood.feature_parameter != parameter:
            raise ValueError(
                f"{what} exists only for modalities modelled with likelihood "
                f"{likelihood_with_parameter(parameter).name!r}; modality {modality!r} uses {likelihood.name!r}."
            )
        values = likelihood.feature_parameter_values()
        return pd.Series(values, index=self.adata.mod[modality].var_names.copy(), name=feature_parameter_key(parameter))

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
        res = collect(self, mdata, batch_size, ["contributions"])
        return contributions_frame(self.modalities, res["contributions"], res["obs_names"])

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
        v = modality_index(self, modality)
        sparse_only(self, "Effective loadings")
        z = collect(self, mdata, batch_size, ["qz_mean"])["qz_mean"]
        return effective_loadings(self, v, z, batch_size, signed)

    def sparsity_summary(self) -> pd.DataFrame:
        """How sparse each modality's W is: the share of ``|W| > 0.01`` (the paper's threshold) over all K columns
        (``density``, pruned factors included) and over the kept factors (``density_kept``), the links
        (``|W| > 0.01``) per feature, the share of exact zeros and of slab links (``p* > 0.5``), and the number of
        factors with at least one non-zero loading.

        Returns
        -------
        DataFrame ``modalities × [density, density_kept, links_per_feature, zeros, slab, active_factors]``.

        """
        sparse_only(self, "Sparsity summaries")
        rows = {
            m: {
                "density": float(s["density"]),
                "density_kept": float(s["density_kept"]),
                "links_per_feature": float(s["links_per_feature"]),
                "zeros": float(s["zeros"]),
                "slab": float(s["slab"]),
                "active_factors": int(s["factors"]),
            }
            for m, s in self.module.sparsity_statistics().items()
        }
        return pd.DataFrame.from_dict(rows, orient="index")

    def active_factors(
        self,
        mdata: MuData | None = None,
        batch_size: int | None = None,
        min_variance: float = MIN_SCORE_VARIANCE,
        min_weight: float = MIN_LINK_WEIGHT,
    ) -> pd.DataFrame:
        """Which factors the model uses, with the evidence for each.

        Rule: factor k is **active** when the variance over samples of its posterior mean exceeds ``min_variance``
        (the active-unit rule of Burda et al., 2016: a factor the encoders do not move stays at the prior's mean 0
        for every sample) **and**, with the sparse decoder, at least one feature of some modality has
        ``|W[j, k]| > min_weight``: a factor that reaches no feature explains nothing. At the defaults (0 and 0) the
        rule is the model's own pruning, so every factor it kept is active; raise them to ask more of a factor (e.g.
        ``min_weight=0.01``, the paper's link threshold). The latents are in prior units (N(0, 1)).

        Parameters
        ----------
        mdata
            MuData whose samples the variance is taken over (default: the training MuData).
        batch_size
            Minibatch size for inference.
        min_variance
            Threshold on the variance over samples of the posterior mean.
        min_weight
            Threshold on ``|W|`` for a link to count.

        Returns
        -------
        DataFrame indexed by factor: ``score_variance``; per modality ``links_<modality>`` (features with
        ``|W| > min_weight``), ``slab_<modality>`` (features with slab probability p* > 0.5) and ``theta_<modality>``
        (the prior's slab share θ_k) with the sparse decoder; ``active`` (bool).

        """
        check_thresholds(min_variance, min_weight)
        z = collect(self, mdata, batch_size, ["qz_mean"])["qz_mean"]
        return active_table(self, z, min_variance, min_weight)
