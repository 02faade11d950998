"""Feature sets given to a POEMS model: checked, matched to the features of each modality, and written as plain lists.

A set is one ``source`` of decoupler's long format (``source``, ``target``): the same ``source`` in several
modalities is one set, and becomes one annotated factor of the model, named by that string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

#: how free factors are named; a set may not take such a name
FREE_FACTOR_PREFIX = "factor_"
#: largest |W| of an annotated factor's starting links (its set's first principal component). Started like a free
#: factor (random links to its members at the usual scale), a set loses its signal to the free factors, whose random
#: starts reach every feature; at 0.5 a set still lost its factor on some planted seeds. 1.0 is the smallest of 0.5,
#: 1 and 2 with which every planted set kept its factor (``benchmarks/accuracy/feature_sets_planted.py``, data seeds
#: 10-13, not the seeds of its results file)
START_SCALE = 1.0
#: fewest samples with all of a set's modalities for one principal component over them (else one per modality)
MIN_JOINT_SAMPLES = 10
#: the start's test of a set: random feature sets of its size drawn (``COHERENCE_DRAWS``) and the level. A set starts
#: as its first principal component only when that component explains a larger share of its members' variance than
#: for all but a share ``COHERENCE_LEVEL`` of the random sets; otherwise it starts as a free factor does, and a set
#: whose members co-vary no more than random features do (a decoy) no longer takes a factor the free ones would carry
#: (``benchmarks/results/feature_sets_planted.md``)
COHERENCE_DRAWS = 199
COHERENCE_LEVEL = 0.05
#: fewest members (in a group of modalities) and samples for the test; smaller sets start untested
MIN_TESTED = 3


def started(p: np.ndarray | float) -> np.ndarray | bool:
    """Whether a set with the start's p-value ``p`` gets its head start (NaN: too small to test, started)."""
    return ~(np.asarray(p) > COHERENCE_LEVEL)


class SetStarts(NamedTuple):
    """What :meth:`FeatureSets.starts` returns."""

    links: list[np.ndarray]
    """Per modality ``(n_features, n_sets)``: the starting links, NaN where a set starts as a free factor."""
    coherence_p: np.ndarray
    """Per set, the p-value of the start's test (the smallest over its groups of modalities; NaN: untested)."""
    scores: np.ndarray
    """``(n_samples, n_sets)``: each started set's first-component scores, standardised (the mean over its groups of
    modalities where it has several); NaN for a set not started and for the samples without its modalities."""


@dataclass(frozen=True)
class FeatureSets:
    """Feature sets matched to a model's modalities.

    Attributes
    ----------
    names
        The sets, in order of first appearance (modalities in the model's order): the annotated factors' names.
    members
        Per modality, a boolean ``(n_features, n_sets)`` matrix: feature j is a member of set k.
    listed
        Per modality, a boolean ``(n_sets,)`` vector: the set has an entry in this modality (otherwise its links
        there keep the uninformed prior).
    record
        ``{modality: {"source": [...], "target": [...]}}``: the members found in the data, as plain lists (what a
        saved model keeps, and what :class:`~poems_mu.POEMS` accepts again).

    """

    names: list[str]
    members: dict[str, np.ndarray]
    listed: dict[str, np.ndarray]
    record: dict[str, dict[str, list[str]]]

    def prior_members(self, modality: str) -> np.ndarray:
        """``(n_features, n_sets)``: 1 for a member, 0 for another feature, NaN in the columns of the sets with no
        entry in ``modality`` (the module's ``set_members``).
        """
        return np.where(self.listed[modality][None, :], self.members[modality].astype(np.float64), np.nan)

    def starts(self, views: Mapping[str, np.ndarray], scale: float = START_SCALE) -> SetStarts:
        """Starting links of the annotated factors, per modality ``(n_features, n_sets)``: each set's first principal
        component over its members (``views``: for each modality that lists a set, the encoders' standardised view
        with the registered covariates regressed out, :func:`poems_mu.model._starts.set_starts`; NaN rows for absent
        samples), scaled so that its largest entry is ``scale``; 0 off the set.

        The component is taken over the samples that have every modality the set lists (one sign for all), or per
        modality when fewer than :data:`MIN_JOINT_SAMPLES` have them all. It is used only where the members co-vary
        more than random features do: its share of the members' variance is compared with the same share for
        :data:`COHERENCE_DRAWS` random sets of the same size per modality (same samples; a fixed random stream, so
        the start does not depend on the seed), and the set starts there only when the p-value is at most
        :data:`COHERENCE_LEVEL`; elsewhere its links are NaN (the module starts them as a free factor's). The scores of
        the started sets' components are returned for the encoders' start
        (:func:`poems_mu.module._starts.start_encoder_units`).
        """
        mods = list(self.members)
        out = {m: np.zeros(self.members[m].shape) for m in mods}
        pvals = np.full(len(self.names), np.nan)
        n_obs = len(next(iter(views.values())))
        score_sum, score_n = np.zeros((n_obs, len(self.names))), np.zeros((n_obs, len(self.names)))
        rng = np.random.default_rng(0)
        for k in range(len(self.names)):
            cols = {m: np.flatnonzero(self.members[m][:, k]) for m in mods if self.listed[m][k]}
            complete = np.logical_and.reduce([~np.isnan(views[m][:, 0]) for m in cols])
            groups = [list(cols)] if complete.sum() >= MIN_JOINT_SAMPLES else [[m] for m in cols]
            for group in groups:
                rows = np.logical_and.reduce([~np.isnan(views[m][:, 0]) for m in group])
                block = {m: views[m][rows] for m in group}
                x = np.concatenate([block[m][:, cols[m]] for m in group], axis=1)
                p = _coherence_p(x, block, {m: len(cols[m]) for m in group}, rng)
                pvals[k] = np.fmin(pvals[k], p)
                start = np.full(x.shape[1], np.nan)
                if started(p):
                    start = scale * _first_component(x)
                    score = (x - x.mean(0)) @ start
                    score = (score - score.mean()) / max(float(score.std()), np.finfo(float).tiny)
                    score_sum[rows, k] += score
                    score_n[rows, k] += 1
                offset = 0
                for m in group:
                    out[m][cols[m], k] = start[offset : offset + len(cols[m])]
                    offset += len(cols[m])
        with np.errstate(invalid="ignore"):
            scores = score_sum / score_n  # NaN where a set has no started group
        return SetStarts([out[m] for m in mods], pvals, scores)


def _coherence_p(x: np.ndarray, block: dict[str, np.ndarray], sizes: dict[str, int], rng) -> float:
    """Permutation p-value of the share of ``x``'s variance on its first principal component, against random column
    sets of the same ``sizes`` drawn from each modality's ``block``; NaN when ``x`` is too small to test.
    """
    if x.shape[1] < MIN_TESTED or x.shape[0] < MIN_TESTED:
        return np.nan
    observed = _first_share(x)
    hits = 0
    for _ in range(COHERENCE_DRAWS):
        draw = [block[m][:, rng.choice(block[m].shape[1], n, replace=False)] for m, n in sizes.items()]
        hits += _first_share(np.concatenate(draw, axis=1)) >= observed
    return (1 + hits) / (1 + COHERENCE_DRAWS)


def _first_share(x: np.ndarray) -> float:
    """Share of the (centred) variance of ``x`` on its first principal component: the largest eigenvalue of the
    smaller Gram matrix over its trace (a few times faster than a singular value decomposition).
    """
    x = x - x.mean(0)
    gram = x.T @ x if x.shape[0] >= x.shape[1] else x @ x.T
    eig = np.linalg.eigvalsh(gram)
    total = float(eig.sum())
    return float(eig[-1] / total) if total > 0 else 0.0


def _first_component(x: np.ndarray) -> np.ndarray:
    """First principal direction of ``x`` (centred), scaled to largest |entry| 1, its largest entry positive; equal
    entries for fewer than two samples or a constant block.
    """
    x = x - x.mean(0) if len(x) else x
    if len(x) < 2 or not np.any(x):
        return np.ones(x.shape[1])
    v = np.linalg.svd(x, full_matrices=False)[2][0]
    v = v / np.abs(v).max()
    return v if v[np.argmax(np.abs(v))] > 0 else -v


def _as_table(net, modality: str | None) -> pd.DataFrame:
    where = "`feature_sets`" if modality is None else f"`feature_sets[{modality!r}]`"
    if isinstance(net, pd.DataFrame):
        table = net
    elif isinstance(net, Mapping) and {"source", "target"} <= set(net):
        table = pd.DataFrame({"source": list(net["source"]), "target": list(net["target"])})
    else:
        raise TypeError(
            f"{where} must be a DataFrame with columns 'source' and 'target' (decoupler's long format), got "
            f"{type(net).__name__}."
        )
    needed = ["source", "target"] if modality is not None else ["modality", "source", "target"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise ValueError(
            f"{where} lacks the column(s) {missing}: it needs {needed} (decoupler's long format"
            + (", with the modality of each row)." if modality is None else ").")
        )
    return table


def _long_table(feature_sets) -> pd.DataFrame:
    """One table (modality, source, target) from either accepted form; the user's objects are not modified."""
    if isinstance(feature_sets, pd.DataFrame):
        table = _as_table(feature_sets, None)
        return pd.DataFrame(
            {"modality": table["modality"].to_numpy(), "source": table["source"].to_numpy(), "target": table["target"]}
        )
    if isinstance(feature_sets, Mapping):
        parts = []
        for mod, net in feature_sets.items():
            table = _as_table(net, str(mod))
            parts.append(
                pd.DataFrame(
                    {"modality": str(mod), "source": table["source"].to_numpy(), "target": table["target"].to_numpy()}
                )
            )
        if parts:
            return pd.concat(parts, ignore_index=True)
        return pd.DataFrame(columns=["modality", "source", "target"])
    raise TypeError(
        "`feature_sets` must be a mapping {modality: net} or one DataFrame with columns 'modality', 'source' and "
        f"'target', got {type(feature_sets).__name__}."
    )


def _check_values(table: pd.DataFrame, modalities: Sequence[str]) -> None:
    if table.empty:
        raise ValueError("`feature_sets` holds no set: pass None for a model without sets.")
    for col in ("modality", "source", "target"):
        bad = [v for v in table[col] if not isinstance(v, str) or not v]
        if bad:
            raise TypeError(f"Every {col!r} of `feature_sets` must be a non-empty string, got {bad[0]!r}.")
    unknown = sorted(set(table["modality"]) - set(modalities))
    if unknown:
        raise ValueError(
            f"`feature_sets` names modalities {unknown} that the model does not have (it has {list(modalities)})."
        )
    repeated = table[table.duplicated(["modality", "source", "target"], keep=False)]
    if len(repeated):
        row = repeated.iloc[0]
        raise ValueError(
            f"Set {row['source']!r} lists feature {row['target']!r} of modality {row['modality']!r} more than once; "
            "drop the repeated rows (e.g. `net.drop_duplicates(['source', 'target'])`)."
        )
    clash = sorted(
        {s for s in table["source"] if s.startswith(FREE_FACTOR_PREFIX) and s[len(FREE_FACTOR_PREFIX) :].isdigit()}
    )
    if clash:
        raise ValueError(
            f"Sets {clash} take the names of free factors ({FREE_FACTOR_PREFIX}1, {FREE_FACTOR_PREFIX}2, ...); "
            "rename them."
        )


def resolve_feature_sets(feature_sets, var_names: Mapping[str, Sequence[str]]) -> FeatureSets:
    """Check ``feature_sets`` and match it to the features ``var_names`` of each modality (in the model's order).

    Targets that are not features of their modality are left out; a set left with no feature in any modality is an
    error naming it.
    """
    modalities = list(var_names)
    table = _long_table(feature_sets)
    _check_values(table, modalities)
    order = {m: i for i, m in enumerate(modalities)}
    table = table.assign(_mod=table["modality"].map(order)).sort_values("_mod", kind="stable")
    names = list(dict.fromkeys(table["source"]))
    index = {s: k for k, s in enumerate(names)}
    members, listed, record = {}, {}, {}
    present = np.zeros(len(names), dtype=bool)
    for mod in modalities:
        rows = table[table["modality"] == mod]
        features = {str(f): j for j, f in enumerate(var_names[mod])}
        mat = np.zeros((len(features), len(names)), dtype=bool)
        kept_source, kept_target = [], []
        for source, target in zip(rows["source"], rows["target"], strict=True):
            j = features.get(target)
            if j is None:
                continue
            mat[j, index[source]] = True
            kept_source.append(source)
            kept_target.append(target)
        members[mod], listed[mod] = mat, mat.any(0)  # a set listed only with absent targets has no entry here
        present |= listed[mod]
        if kept_source:
            record[mod] = {"source": kept_source, "target": kept_target}
    empty = [s for s, ok in zip(names, present, strict=True) if not ok]
    if empty:
        raise ValueError(
            f"Feature sets {empty} name no feature of the data (their targets must be var_names of the modality "
            "they are listed for); drop them or map their identifiers to the features' names."
        )
    return FeatureSets(names=names, members=members, listed=listed, record=record)
