"""What the data did to the feature sets given to a model (``POEMS(feature_sets=...)``): per feature and per set."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mudata import MuData

from poems_mu.data._feature_sets import started
from poems_mu.module._sparsity import LINK_THRESHOLD

from ._common import is_model
from ._factors import active_factors
from ._top_features import pstar_threshold

COLUMNS = ("set", "modality", "feature", "in_set", "status", "W", "p_star", "effective")
STATUSES = ("kept", "dropped", "added")


def _check_model(model) -> None:
    if not is_model(model):
        raise TypeError(
            f"`model` must be a trained poems_mu.POEMS model (the sets live in the model), got {type(model).__name__}."
        )
    if not model.is_trained_:
        raise ValueError("The model is not trained yet: call `model.train()` first.")
    if not model.feature_set_names:
        raise ValueError("The model has no feature sets: train one with `POEMS(mdata, feature_sets=...)`.")


def refined_sets(model, mdata: MuData | None = None, *, threshold: float | None = None) -> pd.DataFrame:
    """Each feature set as the model refined it: its members, and the features the data added.

    An annotated factor's links start from the set (``feature_set_confidence``); training moves them. Per set and per
    modality where the set lists members, a row for every member found in the data and for every other feature the
    data added:

    * ``kept``: a member whose link is as strong as the slab needs at even prior odds,
      ``|W| > log(λ0/λ1) / (λ0 − λ1)`` (where ``p*`` would pass 0.5 with θ = 0.5; 0.193 at the defaults);
    * ``dropped``: a member whose link is weaker (often exactly 0). Its ``p*`` may still be high: at the defaults a
      member's prior (``feature_set_confidence``) keeps ``p*`` above 0.5 even at ``W = 0``, so ``p*`` cannot decide;
    * ``added``: a feature outside the set whose link passes the same threshold although its prior was
      ``1 − feature_set_confidence``: the data gave it the weight of a member.

    One threshold for all three calls, set by the spike and slab rates and not by the set's prior.

    In modalities where a set has no entry its factor's links follow the uninformed prior: read them with
    :func:`~poems_mu.tl.top_features`.

    Parameters
    ----------
    model
        A trained :class:`~poems_mu.POEMS` model with ``feature_sets``.
    mdata
        MuData the effective loadings are computed over (default: the training MuData).
    threshold
        ``|W|`` above which a link counts (kept or added); default ``log(λ0/λ1) / (λ0 − λ1)`` of the model.

    Returns
    -------
    DataFrame with ``set``, ``modality``, ``feature``, ``in_set``, ``status`` (``kept``, ``dropped``, ``added``),
    ``W`` (signed loading), ``p_star`` and ``effective`` (the unsigned effective loading, as in
    :func:`~poems_mu.tl.top_features`), sorted by set, modality, status and ``effective``.

    """
    _check_model(model)
    rows = []
    for mod, calls in _calls(model, threshold).items():
        if not calls:  # no set listed here: no pass over the data for its effective loadings
            continue
        P = model.get_slab_probabilities(mod)
        E = model.get_effective_loadings(mod, mdata)
        for name, (w, inset, status) in calls.items():
            keep = status != ""
            rows.append(
                pd.DataFrame(
                    {
                        "set": name,
                        "modality": mod,
                        "feature": w.index[keep].astype(str),
                        "in_set": inset[keep],
                        "status": status[keep],
                        "W": w.to_numpy()[keep],
                        "p_star": P[name].to_numpy()[keep],
                        "effective": E[name].to_numpy()[keep],
                    }
                )
            )
    names = model.feature_set_names
    table = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=list(COLUMNS))
    order = {s: i for i, s in enumerate(names)}
    table = table.assign(
        _set=table["set"].map(order),
        _mod=table["modality"].map({m: i for i, m in enumerate(model.modalities)}),
        _status=table["status"].map({s: i for i, s in enumerate(STATUSES)}),
    )
    table = table.sort_values(["_set", "_mod", "_status", "effective"], ascending=[True, True, True, False])
    table = table.drop(columns=["_set", "_mod", "_status"]).reset_index(drop=True)
    table["status"] = pd.Categorical(table["status"], categories=list(STATUSES))
    return table


def feature_set_summary(model, mdata: MuData | None = None, *, threshold: float | None = None) -> pd.DataFrame:
    """One row per feature set: whether its factor is active, how much variance it explains, and what the data did
    to its members (the counts of :func:`refined_sets`).

    Parameters
    ----------
    model
        A trained :class:`~poems_mu.POEMS` model with ``feature_sets``.
    mdata
        MuData the variance and activity are computed over (default: the training MuData).
    threshold
        As in :func:`refined_sets`.

    Returns
    -------
    DataFrame indexed by set (the annotated factors, in the model's order) with ``active`` (the default rule of
    :func:`~poems_mu.tl.active_factors`), ``r2_<m>`` per modality (leave-one-factor-out share of variance),
    ``members`` (found in the data), ``kept``, ``dropped``, ``added``, ``links_<m>`` (the factor's links,
    ``|W| > 0.01``, per modality, in and out of the set), ``start_p`` (the p-value of the start's test: do the
    members co-vary more than random features? NaN for a set too small to test) and ``started`` (the factor started
    as the set's first principal component; otherwise as a free factor, see the user guide's "Feature sets in the
    prior").

    """
    _check_model(model)
    act = active_factors(model, mdata)
    names = list(model.feature_set_names)
    out = pd.DataFrame(index=pd.Index(names, name="set"))
    out["active"] = act.loc[names, "active"].to_numpy(dtype=bool)
    for mod in model.modalities:
        out[f"r2_{mod}"] = act.loc[names, f"r2_{mod}"].to_numpy(dtype=np.float64)
    counts = pd.DataFrame(0, index=names, columns=list(STATUSES))
    for calls in _calls(model, threshold).values():
        for name, (_, _, status) in calls.items():
            for s in STATUSES:
                counts.loc[name, s] += int((status == s).sum())
    out["members"] = (counts["kept"] + counts["dropped"]).to_numpy()
    for status in STATUSES:
        out[status] = counts[status].to_numpy()
    for mod in model.modalities:
        w = model.get_loadings(mod)[names].to_numpy()
        out[f"links_{mod}"] = (np.abs(w) > LINK_THRESHOLD).sum(0)
    out["start_p"] = model.module.set_start_p.detach().cpu().numpy().astype(np.float64)
    out["started"] = started(out["start_p"].to_numpy())
    return out


def _calls(model, threshold: float | None) -> dict[str, dict[str, tuple[pd.Series, np.ndarray, np.ndarray]]]:
    """Per modality and per set listed there: the set's column of W, its members (bool) and each feature's status
    (``kept``, ``dropped``, ``added`` or ``""``) at ``threshold`` (default ``log(λ0/λ1) / (λ0 − λ1)``).
    """
    if threshold is None:
        h = model.module.hparams
        threshold = float(pstar_threshold(0.5, h.lambda0, h.lambda1)[()])
    if not (np.isfinite(threshold) and threshold >= 0):
        raise ValueError(f"`threshold` must be a finite number >= 0, got {threshold!r}.")
    sets = model._feature_sets  # resolved once, when the model was built
    out = {}
    for mod in model.modalities:
        W = model.get_loadings(mod)
        out[mod] = {}
        for k, name in enumerate(sets.names):
            if not sets.listed[mod][k]:
                continue
            w, inset = W[name], sets.members[mod][:, k]
            linked = np.abs(w.to_numpy()) > threshold
            status = np.where(inset, np.where(linked, "kept", "dropped"), np.where(linked, "added", ""))
            out[mod][name] = (w, inset, status)
    return out
