"""Scale: the chunked sparse decoder equals the one-pass definition (values and gradients), keeps no
(batch × features × H) activation for the backward pass, sizes its chunks from a memory budget, and a
full-dimensional MuData of the seed-003 shape (132,129 + 6,980 features, 21 samples) trains."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pytest
import scvi
import torch

import poems_mu as pm
from poems_mu.nn import SparseDecoder
from poems_mu.nn._reference import autograd_decode, feature_loop_decode
from poems_mu.nn._sparse_decoder import (
    DEFAULT_CHUNK_BYTES,
    DEFAULT_CHUNK_BYTES_ACCELERATOR,
    _ChunkedSparseDecode,
)

from _helpers import sparse_decoder


def _decoder(n_output=23, n_latent=5, n_hidden=6, seed=0, **kwargs) -> SparseDecoder:
    torch.manual_seed(seed)
    dec = sparse_decoder(n_output, n_latent, n_hidden, **kwargs)
    with torch.no_grad():  # a generic point: some W exactly 0, non-zero biases, A and c rows not at unit norm
        dec.W.normal_()
        dec.W[::3, 1] = 0.0
        dec.b.normal_()
        dec.A.mul_(3.0)
        dec.c.mul_(0.5)
    return dec


def _value_and_grads(dec: SparseDecoder, z: torch.Tensor, reference: bool = False):
    z = z.clone().requires_grad_()
    out = autograd_decode(dec, z) if reference else dec(z)
    weights = torch.linspace(-1, 2, out.numel()).view_as(out)  # a loss whose gradient differs per entry
    grads = torch.autograd.grad((out * weights).sum(), [z, dec.W, dec.A, dec.c, dec.b])
    return out.detach(), dict(zip(["z", "W", "A", "c", "b"], grads, strict=True))


@pytest.mark.parametrize("batch", [1, 9])
@pytest.mark.parametrize("chunk_size", [1, 4, 7, 23, 100])
def test_chunked_decoder_matches_one_pass_values_and_gradients(chunk_size, batch):
    dec = _decoder(chunk_size=chunk_size)
    z = torch.randn(batch, 5, generator=torch.Generator().manual_seed(1))
    out, grads = _value_and_grads(dec, z)
    ref_out, ref_grads = _value_and_grads(dec, z, reference=True)
    torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
    for name, grad in grads.items():
        torch.testing.assert_close(grad, ref_grads[name], rtol=1e-5, atol=1e-5, msg=f"gradient of {name}")
        assert grad.abs().sum() > 0, name
    torch.testing.assert_close(out, feature_loop_decode(dec, z), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk", [1, 3, 8])
def test_chunked_backward_passes_gradcheck(chunk):
    gen = torch.Generator().manual_seed(0)
    shapes = [(6, 4), (8, 4), (4, 5), (5,), (8, 5)]
    z, w, a, d, c = (torch.randn(*s, dtype=torch.float64, generator=gen) for s in shapes)
    w[::2, 0] = 0.0
    w[3] = 0.0  # an all-zero row: its gradient flows through the bias d
    inputs = [t.requires_grad_() for t in (z, w, a, d, c)]
    assert torch.autograd.gradcheck(lambda *x: _ChunkedSparseDecode.apply(*x, chunk), inputs)


def _saved_numels(fn) -> list[int]:
    sizes: list[int] = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sizes


def test_chunked_decoder_saves_only_its_inputs_for_backward():
    batch, n_features, n_latent, n_hidden = 64, 300, 8, 16
    dec = sparse_decoder(n_features, n_latent, n_hidden, chunk_size=32)
    z = torch.randn(batch, n_latent, requires_grad=True)
    activation = batch * n_features * n_hidden
    one_pass = _saved_numels(lambda: autograd_decode(dec, z))
    chunked = _saved_numels(lambda: dec(z))
    assert max(one_pass) >= activation  # the one-pass graph keeps (B, D, H) activations ...
    # ... the chunked one nothing bigger than its inputs (z, W, A, c and the row norms)
    assert max(chunked) <= max(batch * n_latent, n_features * n_hidden, n_features * n_latent)
    assert sum(chunked) < activation / 4


def test_chunk_size_comes_from_the_memory_budget_and_can_be_overridden():
    dec = sparse_decoder(1000, 32, 100)
    per_feature = 4 * (3 * 512 * 100 + 2 * 32 * 100)
    assert dec.resolve_chunk_size(512) == DEFAULT_CHUNK_BYTES // per_feature
    assert dec.resolve_chunk_size(512, "cuda") == min(1000, DEFAULT_CHUNK_BYTES_ACCELERATOR // per_feature)
    assert dec.resolve_chunk_size(8) > dec.resolve_chunk_size(512)  # smaller minibatch, more features per chunk
    dec.max_chunk_bytes = 3 * per_feature
    assert dec.resolve_chunk_size(512) == 3
    dec.max_chunk_bytes = 1  # a budget below one feature still decodes, one feature at a time
    assert dec.resolve_chunk_size(512) == 1
    dec.chunk_size = 250
    assert dec.resolve_chunk_size(512) == dec.resolve_chunk_size(2, "cuda") == 250
    dec.chunk_size = 10**6
    assert dec.resolve_chunk_size(512) == 1000


def _mdata(dims: dict[str, int], n: int, seed: int = 0) -> md.MuData:
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3)).astype(np.float32)
    mods = {}
    for name, d in dims.items():
        x = z @ rng.standard_normal((3, d), dtype=np.float32) + rng.standard_normal((n, d), dtype=np.float32)
        adata = ad.AnnData(x)
        adata.obs_names = [f"s{i}" for i in range(n)]
        adata.var_names = [f"{name}_{j}" for j in range(d)]
        mods[name] = adata
    return md.MuData(mods)


def test_model_passes_chunk_settings_and_the_loss_does_not_depend_on_them():
    mdata = _mdata({"rna": 40, "prot": 7}, n=12)
    pm.POEMS.setup_mudata(mdata)
    models = {
        "auto": pm.POEMS(mdata, n_latent=4),
        "chunk": pm.POEMS(mdata, n_latent=4, chunk_size=3),
        "budget": pm.POEMS(mdata, n_latent=4, max_chunk_bytes=2_000),
    }
    assert [d.chunk_size for d in models["chunk"].module.decoders] == [3, 3]
    assert [d.max_chunk_bytes for d in models["budget"].module.decoders] == [2_000, 2_000]
    assert models["budget"].module.decoders[0].resolve_chunk_size(12) < 40
    state = models["auto"].module.state_dict()
    batch = next(iter(models["auto"]._make_data_loader(adata=mdata, batch_size=12)))
    results = {}
    for name, model in models.items():
        module = model.module
        module.load_state_dict(state)
        module.eval()  # no dropout; the posterior sample is fixed by the seed
        torch.manual_seed(0)
        _, _, loss = module(batch)
        grads = torch.autograd.grad(loss.loss, list(module.parameters()))
        results[name] = (loss.loss.detach(), grads)
    for name in ("chunk", "budget"):
        torch.testing.assert_close(results[name][0], results["auto"][0], rtol=1e-5, atol=1e-5)
        for g, g_ref in zip(results[name][1], results["auto"][1], strict=True):
            torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)


def test_decoder_runs_in_float32_under_autocast():
    dec = _decoder(chunk_size=4)
    z = torch.randn(9, 5)
    with torch.no_grad():
        ref = dec(z)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = dec(z.bfloat16())
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, ref, rtol=1e-2, atol=2e-2)  # only z was rounded to bfloat16


@pytest.mark.slow
def test_one_epoch_at_the_seed_003_shape():
    """132,129 transcripts beside 6,980 metabolites for 21 samples (seeds/003), with the default model."""
    mdata = _mdata({"rna": 132_129, "metabolites": 6_980}, n=21)
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata)
    before = model.get_loadings("rna").to_numpy().copy()
    model.train(max_epochs=1, early_stopping=False, enable_progress_bar=False)
    assert model.history["elbo_train"].shape[0] == 1
    assert np.isfinite(model.history["elbo_train"].to_numpy(dtype=float)).all()
    after = model.get_loadings("rna").to_numpy()
    assert after.shape == (132_129, 32) and not np.array_equal(before, after)
    latent = model.get_latent_representation()
    assert latent.shape == (21, 32) and np.isfinite(latent).all()


def test_mixed_precision_training_runs_and_keeps_float32_parameters():
    """``precision="bf16-mixed"`` (Lightning's autocast) trains; W and the outputs stay float32."""
    mdata = _mdata({"rna": 40, "prot": 12}, n=60)
    pm.POEMS.setup_mudata(mdata)
    elbos = {}
    for precision in ("32-true", "bf16-mixed"):
        scvi.settings.seed = 0
        model = pm.POEMS(mdata, n_latent=4)
        model.train(
            max_epochs=3, precision=precision, accelerator="cpu", early_stopping=False, enable_progress_bar=False
        )
        assert model.trainer.precision == precision
        elbos[precision] = model.history["elbo_train"].to_numpy(dtype=float).ravel()
    # the same training up to bf16 rounding
    assert np.isfinite(elbos["bf16-mixed"]).all()
    np.testing.assert_allclose(elbos["bf16-mixed"], elbos["32-true"], rtol=0.02)
    assert all(dec.W.dtype == torch.float32 for dec in model.module.decoders)
    latent = model.get_latent_representation()
    assert latent.dtype == np.float32 and np.isfinite(latent).all()
