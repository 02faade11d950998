"""The sparse decoder's link path: same outputs and gradients as the dense path, and the zero entries' gradient."""

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scvi
import torch

import poems_mu as pm
from poems_mu.nn._sparse_decoder import _ChunkedSparseDecode, _unit_rows
from poems_mu.nn._sparse_links import _SparseLinkDecode, link_lists

from _helpers import sparse_decoder

QUIET = {"enable_progress_bar": False}


def _inputs(density, n_batch=9, n_feat=23, n_latent=6, n_hidden=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(n_feat, n_latent, generator=g, dtype=torch.float64)
    w = w * (torch.rand(n_feat, n_latent, generator=g, dtype=torch.float64) < density)
    w[:2] = 0  # features without any link
    w[:, 0] = 0  # a factor without any link
    z = torch.randn(n_batch, n_latent, generator=g, dtype=torch.float64)
    a = _unit_rows(torch.randn(n_latent, n_hidden, generator=g, dtype=torch.float64))
    d = torch.randn(n_hidden, generator=g, dtype=torch.float64) * 0.5
    c = _unit_rows(torch.randn(n_feat, n_hidden, generator=g, dtype=torch.float64))
    return [t.requires_grad_() for t in (z, w, a, d, c)]


@pytest.mark.parametrize("density", [0.0, 0.1, 0.4, 1.0])
@pytest.mark.parametrize("chunk", [1, 4, 100])
def test_link_path_matches_the_dense_path_in_output_and_gradients(density, chunk):
    ins = _inputs(density)
    grad_out = torch.randn(9, 23, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    dense = _ChunkedSparseDecode.apply(*ins, 7)
    links = _SparseLinkDecode.apply(*ins, chunk)
    torch.testing.assert_close(links, dense, rtol=1e-12, atol=1e-12)
    g_dense = torch.autograd.grad(dense, ins, grad_out)
    g_links = torch.autograd.grad(links, ins, grad_out)
    nonzero = ins[1].detach() != 0
    for name, gd, gl in zip("zwadc", g_dense, g_links, strict=True):
        if name == "w":  # the link path computes the gradient of the non-zero links only
            torch.testing.assert_close(gl[nonzero], gd[nonzero], rtol=1e-10, atol=1e-12)
            assert (gl[~nonzero] == 0).all()
            assert (gd[~nonzero] != 0).any()  # which the dense path does give
        else:
            torch.testing.assert_close(gl, gd, rtol=1e-10, atol=1e-12, msg=name)


def test_link_path_passes_gradcheck():
    z, w, a, d, c = _inputs(0.4, n_batch=4, n_feat=7, n_latent=4, n_hidden=3)
    # W's zero pattern is the link list, so W is held fixed here (its non-zero gradients are checked above)
    assert torch.autograd.gradcheck(lambda z, a, d, c: _SparseLinkDecode.apply(z, w.detach(), a, d, c, 3), (z, a, d, c))


def test_link_lists_cover_every_non_zero_entry_once_and_sort_features_by_link_count():
    w = _inputs(0.3)[1].detach()
    lists, empty = link_lists(w, chunk=5)
    seen = torch.zeros_like(w, dtype=torch.int64)
    counts = []
    for feats, links in lists:
        assert len(feats) <= 5
        for f, row in zip(feats.tolist(), links, strict=True):
            listed = row[w[f, row] != 0]
            seen[f, listed] += 1
            counts.append(int((w[f] != 0).sum()))
    assert torch.equal(seen, (w != 0).long())
    assert counts == sorted(counts)
    assert set(empty.tolist()) == set(torch.nonzero((w != 0).sum(1) == 0).flatten().tolist())


def _decoder(links, density=0.3, dense_every=3):
    torch.manual_seed(0)
    dec = sparse_decoder(11, 4, 5, links=links, links_dense_every=dense_every).double()
    with torch.no_grad():
        dec.W.mul_((torch.rand_like(dec.W) < density).double())
    return dec


def test_zero_entries_get_the_gradient_of_the_last_dense_pass():
    dec, ref = _decoder("sparse"), _decoder("dense")
    zero = dec.W.detach() == 0
    z = [torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    grads = []
    for zi in z:
        for m in (dec, ref):
            m.W.grad = None
            m(zi).square().sum().backward()
        grads.append((dec.W.grad.clone(), ref.W.grad.clone()))
    # pass 0 is dense: every entry's exact gradient
    torch.testing.assert_close(grads[0][0], grads[0][1])
    for link, exact in grads[1:]:  # passes 1 and 2 run over the links
        torch.testing.assert_close(link[~zero], exact[~zero])
        torch.testing.assert_close(link[zero], grads[0][1][zero])  # the zero entries: pass 0's gradient
        assert not torch.allclose(link[zero], exact[zero])


def test_auto_takes_the_link_path_only_below_the_density_threshold(monkeypatch):
    calls = []
    monkeypatch.setattr(_SparseLinkDecode, "apply", lambda *a: calls.append(1) or _ChunkedSparseDecode.apply(*a))
    z = torch.randn(5, 4, dtype=torch.float64)
    with torch.no_grad():
        _decoder("auto", density=0.5).eval()(z)
        assert calls == []
        _decoder("auto", density=0.0).eval()(z)
        assert calls == [1]
        _decoder("dense", density=0.0).eval()(z)
        assert calls == [1]


def _mdata(n=40, seed=0):
    rng = np.random.default_rng(seed)
    names = [f"s{i}" for i in range(n)]
    z = rng.normal(size=(n, 2))
    mods = {}
    for name, d in (("a", 12), ("b", 9)):
        x = (z @ rng.normal(size=(2, d)) + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
        mods[name] = ad.AnnData(
            x, obs=pd.DataFrame(index=names), var=pd.DataFrame(index=[f"{name}{j}" for j in range(d)])
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return md.MuData(mods)


def _trained(links, dense_every, **train):
    mdata = _mdata()
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(
        mdata,
        n_latent=4,
        n_hidden_encoder=16,
        n_hidden_decoder=8,
        n_hidden_gate=8,
        decoder_links=links,
        links_dense_every=dense_every,
    )
    model.train(max_epochs=8, batch_size=16, n_epochs_kl_warmup=2, early_stopping=False, **QUIET, **train)
    return model


def test_training_on_the_link_path_with_every_pass_dense_is_the_dense_training():
    dense = _trained("dense", 1, train_size=1.0)
    links = _trained("sparse", 1, train_size=1.0)
    for (name, p), q in zip(dense.module.state_dict().items(), links.module.state_dict().values(), strict=True):
        torch.testing.assert_close(q, p, rtol=0, atol=0, msg=name)


def test_training_on_the_link_path_keeps_w_sparse_and_outputs_match_the_dense_path():
    model = _trained("sparse", 4)
    assert all((dec.W == 0).any() for dec in model.module.decoders)
    z = model.get_latent_representation()  # the kept factors; the pruned ones, last and without links, at 0
    z = torch.as_tensor(np.pad(z, ((0, 0), (0, model.module.n_latent - z.shape[1]))))
    x_links = [dec(z) for dec in model.module.decoders]
    for dec in model.module.decoders:
        dec.links = "dense"
    x_dense = [dec(z) for dec in model.module.decoders]
    for a, b in zip(x_links, x_dense, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"decoder_links": "csr"}, "decoder_links must be 'dense', 'sparse' or 'auto'"),
        ({"links_dense_every": 0}, "links_dense_every must be a positive integer"),
        ({"links_dense_every": 2.5}, "links_dense_every must be a positive integer"),
    ],
)
def test_bad_link_arguments_are_refused_by_name(kwargs, message):
    mdata = _mdata()
    pm.POEMS.setup_mudata(mdata)
    with pytest.raises(ValueError, match=message):
        pm.POEMS(mdata, **kwargs)
