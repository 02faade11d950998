"""Graph auto-encoder refinement of a cross-omic association graph (seed 003's bipartite GCN, done properly)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from mudata import MuData
from sklearn.metrics import average_precision_score, roc_auc_score

from ._common import check_positive_int, effective_source, is_model, loadings_source

PAIR_COLUMNS = ("feature_a", "modality_a", "feature_b", "modality_b", "rho", "significant")


def _node_features(data, modality: str, mdata) -> pd.DataFrame:
    """Per feature: its |W| row, p* row and effective-loading row (the model's view of the feature)."""
    w, p = loadings_source(data, modality)
    e = effective_source(data, modality, mdata)
    parts = [w.abs(), p] + ([] if e is None else [e])
    return pd.concat([pd.DataFrame(np.asarray(x, dtype=np.float32), index=w.index) for x in parts], axis=1)


def _check_pairs(pairs: pd.DataFrame) -> tuple[str, str, pd.DataFrame]:
    if not isinstance(pairs, pd.DataFrame) or not set(PAIR_COLUMNS) <= set(pairs.columns):
        raise ValueError(
            f"`pairs` must be the table of pm.tl.cross_omic_associations (columns {', '.join(PAIR_COLUMNS)})."
        )
    if pairs.empty:
        raise ValueError("`pairs` is empty: there is no association graph to refine.")
    mod_pairs = pairs[["modality_a", "modality_b"]].drop_duplicates()
    if len(mod_pairs) != 1:
        raise ValueError(
            f"`pairs` holds {len(mod_pairs)} modality pairs; refine one at a time, e.g. "
            "pairs[(pairs.modality_a == 'mrna') & (pairs.modality_b == 'mirna')]."
        )
    mod_a, mod_b = mod_pairs.iloc[0]
    edges = pairs[pairs["significant"].astype(bool)]
    if edges["feature_a"].nunique() < 2 or edges["feature_b"].nunique() < 2:
        raise ValueError(
            "The association graph is one-sided: refinement needs significant pairs with at least two features on "
            "each side (lower `min_abs_rho` or raise `n_top` in cross_omic_associations)."
        )
    return mod_a, mod_b, edges


def _negatives(n_a: int, n_b: int, k: int, forbid: set, gen: torch.Generator) -> torch.Tensor:
    """``k`` random (a, b) index pairs that are not in ``forbid`` (bipartite negative sampling)."""
    out = []
    while len(out) < k:
        a = torch.randint(n_a, (2 * k,), generator=gen)
        b = torch.randint(n_b, (2 * k,), generator=gen)
        out += [(int(i), int(j)) for i, j in zip(a, b, strict=True) if (int(i), int(j)) not in forbid]
    return torch.tensor(out[:k], dtype=torch.long).T


def refine_associations(
    pairs: pd.DataFrame,
    model=None,
    mdata: MuData | None = None,
    *,
    hidden: int = 32,
    out_dim: int = 16,
    epochs: int = 200,
    lr: float = 0.01,
    test_fraction: float = 0.1,
    n_new: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """Score every candidate pair with a graph auto-encoder trained on the significant associations.

    The graph is bipartite: the features of the two modalities of ``pairs`` are nodes; each significant pair is one
    edge (``cross_omic_associations`` already gives one row per feature pair, its ``factor`` being the factor that
    contributes most to the pair's score), weighted by ``|rho|``. A node's features are the model's view of it:
    its ``|W|`` row, its slab probabilities p* and its effective loadings (K each, standardised), plus its
    modality. A 2-layer graph convolutional encoder (PyTorch Geometric's ``GCNConv``) with an inner-product edge
    decoder is trained on the edges, with as many random non-edges between the two modalities as negatives per
    epoch; ``test_fraction`` of the edges are held out of training and scored against as many non-edges.

    ``result.attrs["link_auroc"]`` and ``["link_ap"]`` are measured on those held-out edges: a **self-consistency**
    figure (can the graph predict its own edges from its structure and node features? degree bias helps it), not a
    validation of the associations. Whether the refined score ranks truly linked pairs better than the raw
    correlation is measured on planted links in the documentation; read that before trusting the score.

    Parameters
    ----------
    pairs
        The table of :func:`cross_omic_associations` for one modality pair (not modified).
    model
        The trained :class:`~poems_mu.POEMS` model (or a MuData with stored results) whose loadings give the node
        features.
    mdata
        With a model: the MuData for the effective loadings (default: the training MuData).
    hidden, out_dim
        Widths of the two graph convolutions.
    epochs, lr
        Full-batch Adam steps and learning rate.
    test_fraction
        Share of the edges held out for ``link_auroc`` / ``link_ap`` (at least one edge).
    n_new
        Also return the ``n_new`` best-scoring pairs that are not in ``pairs`` in ``result.attrs["new_pairs"]``.
    seed
        Seed of the initialisation, the edge split and the negative samples (the global RNG is not touched).

    Returns
    -------
    A copy of ``pairs`` with a column ``refined_score`` in [0, 1] (the decoder's probability of an edge, with the
    encoder run on every significant edge), and ``attrs`` ``link_auroc``, ``link_ap``, ``n_edges``,
    ``n_held_out`` (and ``new_pairs``).

    """
    try:
        from torch_geometric.nn import GCNConv
    except ImportError as err:  # pragma: no cover - the extra is part of test and doc
        raise ImportError("refine_associations needs PyTorch Geometric: pip install 'poems_mu[graph]'.") from err

    if model is None:
        raise ValueError("Pass the trained model (or the MuData with its stored results) as `model`.")
    if not (is_model(model) or isinstance(model, MuData)):
        raise TypeError(f"`model` must be a POEMS model or a MuData with stored results, got {type(model).__name__}.")
    mod_a, mod_b, edges = _check_pairs(pairs)
    for name, value in (("hidden", hidden), ("out_dim", out_dim), ("epochs", epochs)):
        check_positive_int(value, name)
    if not 0 < test_fraction < 1:
        raise ValueError(f"`test_fraction` must be in (0, 1), got {test_fraction!r}.")
    for mod, col in ((mod_a, "feature_a"), (mod_b, "feature_b")):  # before the costly effective loadings
        unknown = sorted(set(pairs[col]) - set(loadings_source(model, mod)[0].index))
        if unknown:
            raise KeyError(f"`pairs` names features that modality {mod!r} lacks (e.g. {unknown[:3]}).")
    with torch.random.fork_rng(devices=[]):  # the effective loadings run the model
        feats_a = _node_features(model, mod_a, mdata)
        feats_b = _node_features(model, mod_b, mdata)
    n_a, n_b = len(feats_a), len(feats_b)
    x = np.concatenate([feats_a.to_numpy(), feats_b.to_numpy()])
    sd = x.std(0)
    x = (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)
    side = np.r_[np.zeros(n_a), np.ones(n_b)][:, None]
    x = torch.tensor(np.hstack([x, side, 1 - side]), dtype=torch.float32)
    pos_a = {f: i for i, f in enumerate(feats_a.index)}
    pos_b = {f: i for i, f in enumerate(feats_b.index)}
    ia = torch.tensor([pos_a[f] for f in edges["feature_a"]], dtype=torch.long)
    ib = torch.tensor([pos_b[f] for f in edges["feature_b"]], dtype=torch.long)
    weight = torch.tensor(np.abs(edges["rho"].to_numpy(dtype=np.float64)), dtype=torch.float32)
    forbid = set(zip(ia.tolist(), ib.tolist(), strict=True))
    if len(forbid) >= n_a * n_b:
        raise ValueError("Every pair of the two modalities' features is an edge: there are no non-edges to learn from.")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        n_edges = len(ia)
        n_test = max(1, int(round(test_fraction * n_edges)))
        perm = torch.randperm(n_edges, generator=gen)
        test, train = perm[:n_test], perm[n_test:]

        def graph(sel):
            src, dst = ia[sel], ib[sel] + n_a
            return torch.stack([torch.cat([src, dst]), torch.cat([dst, src])]), torch.cat([weight[sel]] * 2)

        conv1, conv2 = GCNConv(x.shape[1], hidden), GCNConv(hidden, out_dim)
        params = list(conv1.parameters()) + list(conv2.parameters())
        opt = torch.optim.Adam(params, lr=lr)

        def encode(edge_index, edge_weight):
            return conv2(torch.relu(conv1(x, edge_index, edge_weight)), edge_index, edge_weight)

        def logits(h, a, b):
            return (h[a] * h[b + n_a]).sum(-1)

        train_graph = graph(train)
        for _ in range(epochs):
            opt.zero_grad()
            h = encode(*train_graph)
            neg = _negatives(n_a, n_b, len(train), forbid, gen)
            pos_l, neg_l = logits(h, ia[train], ib[train]), logits(h, neg[0], neg[1])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                torch.cat([pos_l, neg_l]), torch.cat([torch.ones_like(pos_l), torch.zeros_like(neg_l)])
            )
            loss.backward()
            opt.step()
        with torch.no_grad():
            h = encode(*train_graph)
            neg = _negatives(n_a, n_b, n_test, forbid, gen)
            scores = torch.sigmoid(torch.cat([logits(h, ia[test], ib[test]), logits(h, neg[0], neg[1])])).numpy()
            labels = np.r_[np.ones(n_test), np.zeros(n_test)]
            h = encode(*graph(torch.arange(n_edges)))
            logit = (h[:n_a].double() @ h[n_a:].double().T).numpy()
    prob = 0.5 * (1.0 + np.tanh(0.5 * logit))  # the sigmoid, in float64

    result = pairs.copy()
    result["refined_score"] = prob[
        [pos_a[f] for f in pairs["feature_a"]], [pos_b[f] for f in pairs["feature_b"]]
    ].astype(np.float64)
    result.attrs["link_auroc"] = float(roc_auc_score(labels, scores))
    result.attrs["link_ap"] = float(average_precision_score(labels, scores))
    result.attrs["n_edges"] = int(n_edges)
    result.attrs["n_held_out"] = int(n_test)
    if n_new:
        n_new = check_positive_int(n_new, "n_new")
        seen = np.zeros_like(prob, dtype=bool)
        seen[[pos_a[f] for f in pairs["feature_a"]], [pos_b[f] for f in pairs["feature_b"]]] = True
        cand = np.where(seen, -np.inf, prob).ravel()
        top = np.argsort(-cand, kind="stable")[:n_new]
        top = top[np.isfinite(cand[top])]
        result.attrs["new_pairs"] = pd.DataFrame(
            {
                "feature_a": feats_a.index[top // n_b],
                "modality_a": mod_a,
                "feature_b": feats_b.index[top % n_b],
                "modality_b": mod_b,
                "refined_score": prob.ravel()[top].astype(np.float64),
            }
        )
    return result
