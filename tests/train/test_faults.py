"""Faults and data integrity: non-finite losses, interrupts, store_results and save never lose anything."""

import copy
import hashlib
import os
import signal
import warnings

import anndata as ad
import lightning.pytorch as pl
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import scvi
import torch

import poems_mu as pm

#: what scvi-tools writes into the MuData it registers (documented by scvi)
SCVI_UNS_KEYS = {"_scvi_uuid", "_scvi_manager_uuid"}
SMALL = {"n_latent": 3, "n_hidden_encoder": 16, "n_hidden_decoder": 8, "n_hidden_gate": 8}
QUIET = {"enable_progress_bar": False}


def _mdata(n=40, n_b=30, seed=0):
    """'a' dense float32 on all samples, 'b' CSR on the first n_b; annotations everywhere a user might put them."""
    rng = np.random.default_rng(seed)
    names = [f"s{i}" for i in range(n)]
    z = rng.normal(size=(n, 2))
    xa = (z @ rng.normal(size=(2, 6)) + 0.3 * rng.normal(size=(n, 6))).astype(np.float32)
    xb = np.abs(z[:n_b] @ rng.normal(size=(2, 5)) + 0.3 * rng.normal(size=(n_b, 5)))
    xb[xb < 0.3] = 0
    a = ad.AnnData(
        xa,
        obs=pd.DataFrame({"batch": pd.Categorical(rng.choice(["x", "y"], n))}, index=names),
        var=pd.DataFrame({"chrom": [f"chr{j}" for j in range(6)]}, index=[f"g{j}" for j in range(6)]),
        layers={"counts": rng.poisson(3, size=(n, 6)).astype(np.int32)},
        obsm={"X_pca": rng.normal(size=(n, 2))},
        varm={"PCs": rng.normal(size=(6, 2))},
        uns={"note": "user data"},
    )
    b = ad.AnnData(
        sp.csr_matrix(xb.astype(np.float32)),
        obs=pd.DataFrame({"depth": rng.uniform(size=n_b)}, index=names[:n_b]),
        var=pd.DataFrame(index=[f"p{j}" for j in range(5)]),
        obsp={"distances": sp.random(n_b, n_b, density=0.1, format="csr", random_state=0)},
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mdata = md.MuData({"a": a, "b": b})
    mdata.obs["label"] = pd.Categorical(np.where(z[:, 0] > 0, "up", "down"))
    mdata.obsm["X_umap"] = rng.normal(size=(n, 2))
    mdata.uns["colors"] = np.array(["red", "blue"])
    mdata.uns["nested"] = {"k": [1, 2, 3], "v": {"deep": np.arange(3)}}
    return mdata


def _copy(x):
    if sp.issparse(x):
        return x.copy()
    if isinstance(x, pd.DataFrame | pd.Series | pd.Index):
        return x.copy(deep=True)
    if isinstance(x, np.ndarray):
        return x.copy()
    return copy.deepcopy(x)


def _frozen(mdata, skip=()):
    """Deep copy of everything a user can reach on the MuData (keys in ``skip`` left out, as ``where:key``)."""

    def store(where, mapping):
        return {k: _copy(v) for k, v in mapping.items() if f"{where}:{k}" not in skip}

    state = {
        "mod_order": list(mdata.mod.keys()),
        "shape": mdata.shape,
        "obs": mdata.obs.drop(columns=[c for c in mdata.obs.columns if f"obs:{c}" in skip]).copy(),
        "var": mdata.var.copy(),
        "obsm": store("obsm", mdata.obsm),
        "varm": store("varm", mdata.varm),
        "obsp": store("obsp", mdata.obsp),
        "varp": store("varp", mdata.varp),
        "obsmap": store("obsmap", mdata.obsmap),
        "varmap": store("varmap", mdata.varmap),
        "uns": {k: _copy(v) for k, v in mdata.uns.items() if k not in SCVI_UNS_KEYS and f"uns:{k}" not in skip},
    }
    for m, a in mdata.mod.items():
        state[f"mod:{m}"] = {
            "X": _copy(a.X),
            "layers": store(f"{m}.layers", a.layers),
            "obs": a.obs.copy(),
            "var": a.var.drop(columns=[c for c in a.var.columns if f"{m}.var:{c}" in skip]).copy(),
            "obsm": store(f"{m}.obsm", a.obsm),
            "varm": store(f"{m}.varm", a.varm),
            "obsp": store(f"{m}.obsp", a.obsp),
            "varp": store(f"{m}.varp", a.varp),
            "uns": {k: _copy(v) for k, v in a.uns.items()},
            "raw": None if a.raw is None else _copy(a.raw.X),
        }
    return state


def _assert_same(a, b, path="mdata"):
    assert type(a) is type(b), f"{path}: {type(a).__name__} became {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{path}: keys {list(a)} became {list(b)}"
        for k in a:
            _assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=path)
    elif sp.issparse(a):
        assert a.format == b.format and a.dtype == b.dtype and a.shape == b.shape, path
        np.testing.assert_array_equal(a.toarray(), b.toarray(), err_msg=path)
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.flags["C_CONTIGUOUS"] == b.flags["C_CONTIGUOUS"], path
        np.testing.assert_array_equal(a, b, err_msg=path)
    else:
        assert a == b, f"{path}: {a!r} became {b!r}"


def _train(mdata, seed=0, **train_kwargs):
    scvi.settings.seed = seed
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    kwargs = {"max_epochs": 4, "batch_size": 16, "train_size": 0.9, "early_stopping": False} | train_kwargs
    model.train(**QUIET, **kwargs)
    return model


def _state(model):
    return {k: v.detach().clone() for k, v in model.module.state_dict().items()}


def _assert_state(model, expected):
    got = model.module.state_dict()
    assert list(got) == list(expected)
    for k, v in expected.items():
        torch.testing.assert_close(got[k], v, rtol=0, atol=0, equal_nan=False, msg=k)


class _AtStep(pl.Callback):
    """Calls ``action(plan)`` once, at the end of training minibatch ``batch`` of epoch ``epoch`` (0-based)."""

    def __init__(self, epoch, batch, action):
        self.epoch, self.batch, self.action = epoch, batch, action
        self.state_at_epoch_start = None

    def on_train_epoch_start(self, trainer, plan):
        if trainer.current_epoch == self.epoch:
            self.state_at_epoch_start = {k: v.detach().clone() for k, v in plan.module.state_dict().items()}

    def on_train_batch_end(self, trainer, plan, outputs, batch, batch_idx):
        if trainer.current_epoch == self.epoch and batch_idx == self.batch:
            self.action(plan)


def _poison(plan):
    with torch.no_grad():
        plan.module.decoders[0].W[0, 0] = float("nan")


# --- non-finite losses ------------------------------------------------------------------------------------------
def test_a_huge_learning_rate_stops_with_a_clear_error_and_the_model_is_restored():
    mdata = _mdata()
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    start = _state(model)
    with pytest.raises(FloatingPointError) as info:
        model.train(max_epochs=30, lr=1e4, batch_size=16, train_size=0.9, **QUIET)
    message = str(info.value)
    for fragment in ("Training stopped: the", "epoch", "optimizer steps", "lr=10000", "learning rate too high"):
        assert fragment in message
    assert "restored to its state before this training run" in message
    _assert_state(model, start)
    assert not model.is_trained and not model.module.training
    # a sane learning rate afterwards trains normally
    model.train(max_epochs=3, lr=1e-3, batch_size=16, train_size=0.9, early_stopping=False, **QUIET)
    assert model.is_trained and np.isfinite(model.get_latent_representation()).all()


def test_a_non_finite_loss_mid_training_restores_the_last_finite_epoch():
    mdata = _mdata()
    cb = _AtStep(epoch=3, batch=0, action=_poison)  # 36 training samples in 3 minibatches of 16
    with pytest.raises(pm.NonFiniteLossError) as info:
        _train(mdata, max_epochs=10, callbacks=[cb])
    message = str(info.value)
    # losses are checked once per epoch: the fault is reported at the end of epoch 4 (after all its 3 steps)
    assert "the loss became non-finite in the training pass of epoch 4 (after 12 optimizer steps" in message
    assert "restored to its state after epoch 3 of this run" in message
    assert isinstance(info.value, FloatingPointError)


def test_non_finite_loss_restores_exact_state_and_leaves_a_usable_model():
    mdata = _mdata()
    cb = _AtStep(epoch=3, batch=0, action=_poison)
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    with pytest.raises(FloatingPointError, match="of epoch 4"):
        model.train(max_epochs=10, batch_size=16, train_size=0.9, early_stopping=False, callbacks=[cb], **QUIET)
    _assert_state(model, cb.state_at_epoch_start)
    assert model.is_trained and not model.module.training
    latent = model.get_latent_representation()
    assert np.isfinite(latent).all()
    np.testing.assert_array_equal(latent, model.get_latent_representation())  # eval mode: deterministic
    assert np.isfinite(model.history["elbo_train"].to_numpy(dtype=float)).all()


def test_a_non_finite_validation_loss_is_caught_too():
    mdata = _mdata()
    cb = _AtStep(epoch=1, batch=2, action=_poison)  # the last minibatch of epoch 2: validation sees it first
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    with pytest.raises(FloatingPointError, match=r"in the validation pass of epoch 2 \(after 6 optimizer steps"):
        model.train(max_epochs=10, batch_size=16, train_size=0.9, callbacks=[cb], **QUIET)
    _assert_state(model, cb.state_at_epoch_start)


def test_non_finite_parameters_after_the_very_last_step_are_caught():
    mdata = _mdata()
    cb = _AtStep(epoch=2, batch=2, action=_poison)  # last step of the last epoch, no validation set
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    with pytest.raises(FloatingPointError, match="non-finite after the last optimizer step") as info:
        model.train(max_epochs=3, batch_size=16, train_size=1.0, early_stopping=False, callbacks=[cb], **QUIET)
    assert "restored to its state after epoch 2 of this run" in str(info.value)
    _assert_state(model, cb.state_at_epoch_start)
    assert np.isfinite(model.get_loadings("a").to_numpy()).all()


# --- interrupts -------------------------------------------------------------------------------------------------
def _raise_keyboard_interrupt(plan):
    raise KeyboardInterrupt


def test_a_keyboard_interrupt_leaves_a_usable_model_and_the_sigint_handler():
    mdata = _mdata()
    handler = signal.getsignal(signal.SIGINT)
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    start = _state(model)
    with pytest.raises(KeyboardInterrupt, match=r"interrupted in epoch 3 after 7 optimizer steps.*is_trained=True"):
        model.train(
            max_epochs=10, batch_size=16, train_size=0.9, callbacks=[_AtStep(2, 0, _raise_keyboard_interrupt)], **QUIET
        )
    # Lightning ignores SIGINT after a KeyboardInterrupt and exits the interpreter; neither may reach the user
    assert signal.getsignal(signal.SIGINT) is handler
    assert model.is_trained and not model.module.training
    assert any(not torch.equal(v, start[k]) for k, v in model.module.state_dict().items())
    latent = model.get_latent_representation()
    assert np.isfinite(latent).all()
    np.testing.assert_array_equal(latent, model.get_latent_representation())
    model.store_results()
    assert mdata.obsm["X_poems"].shape == (40, 3)
    model.train(max_epochs=2, batch_size=16, train_size=0.9, early_stopping=False, **QUIET)  # training can resume
    assert model.is_trained


def test_an_interrupt_before_the_first_step_leaves_the_model_untrained():
    class InterruptAtStart(pl.Callback):
        def on_train_start(self, trainer, plan):
            raise KeyboardInterrupt

    mdata = _mdata()
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    with pytest.raises(KeyboardInterrupt, match="after 0 optimizer steps"):
        model.train(max_epochs=3, callbacks=[InterruptAtStart()], **QUIET)
    assert not model.is_trained
    with pytest.raises(RuntimeError, match="train"):
        model.get_latent_representation()


def test_ctrl_c_stops_after_the_current_minibatch_and_returns():
    mdata = _mdata()
    handler = signal.getsignal(signal.SIGINT)
    cb = _AtStep(epoch=2, batch=1, action=lambda plan: signal.raise_signal(signal.SIGINT))
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    with pytest.warns(UserWarning, match=r"interrupted \(Ctrl\+C\) in epoch 3 after 8 optimizer steps"):
        model.train(max_epochs=50, batch_size=16, train_size=0.9, early_stopping=False, callbacks=[cb], **QUIET)
    assert signal.getsignal(signal.SIGINT) is handler
    assert model.is_trained and not model.module.training
    assert model.trainer.current_epoch <= 3
    assert np.isfinite(model.get_latent_representation()).all()


# --- the user's MuData ------------------------------------------------------------------------------------------
def test_setup_train_and_outputs_leave_the_mudata_exactly_as_it_was(tmp_path):
    mdata = _mdata()
    before = _frozen(mdata)
    objects = {m: (mdata.mod[m], mdata.mod[m].X) for m in mdata.mod}
    model = _train(mdata, max_epochs=3, early_stopping=True, early_stopping_patience=1)
    model.get_latent_representation()
    model.get_gating_weights()
    model.get_contributions()
    for m in ("a", "b"):
        model.get_effective_loadings(m)
        model.get_loadings(m)
        model.get_slab_probabilities(m)
        model.get_feature_sigma(m)
    model.save(tmp_path / "m")
    pm.POEMS.load(tmp_path / "m", mdata).get_latent_representation()
    _assert_same(before, _frozen(mdata))
    for m, (adata, x) in objects.items():
        assert mdata.mod[m] is adata and mdata.mod[m].X is x  # never copied, padded or converted


def test_store_results_adds_only_the_documented_keys():
    mdata = _mdata()
    before = _frozen(mdata)
    model = _train(mdata)
    model.store_results()
    documented = {
        "obsm:X_poems",
        "obsm:poems_gates",
        "obsm:poems_contributions",
        "uns:poems",
        *(f"obs:poems_gate_{m}" for m in ("a", "b")),
        *(f"{m}.var:poems_sigma" for m in ("a", "b")),
        *(
            f"{m}.varm:{k}"
            for m in ("a", "b")
            for k in ("poems_W", "poems_pstar", "poems_effective", "poems_effective_signed")
        ),
    }
    for key in documented:
        where, name = key.split(":")
        if where.endswith(".var"):
            assert name in mdata[where.split(".")[0]].var
        elif where.endswith(".varm"):
            assert name in mdata[where.split(".")[0]].varm
        else:
            assert name in getattr(mdata, where)
    _assert_same(before, _frozen(mdata, skip=documented))


@pytest.mark.parametrize(
    ("plant", "named"),
    [
        (lambda m: m.obsm.__setitem__("X_poems", np.zeros((40, 1))), "obsm['X_poems']"),
        (lambda m: m.obs.__setitem__("poems_gate_b", 1.0), "obs['poems_gate_b']"),
        (lambda m: m["b"].varm.__setitem__("poems_W", np.ones((5, 2))), "mod['b'].varm['poems_W']"),
        (lambda m: m["a"].var.__setitem__("poems_sigma", 2.0), "mod['a'].var['poems_sigma']"),
        (lambda m: m.uns.__setitem__("poems", {"mine": 1, "factors": ["f"]}), "uns['poems']['factors']"),
        (lambda m: m.uns.__setitem__("poems", "not a mapping"), "uns['poems']"),
    ],
)
def test_store_results_writes_nothing_when_any_key_exists(plant, named):
    mdata = _mdata()
    model = _train(mdata, max_epochs=1)
    plant(mdata)
    before = _frozen(mdata)
    with pytest.raises(ValueError, match=r"already exist.*overwrite=True") as info:
        model.store_results()
    assert named in str(info.value)
    _assert_same(before, _frozen(mdata))


def test_store_results_overwrite_replaces_only_its_own_keys():
    mdata = _mdata()
    model = _train(mdata, max_epochs=1)
    mdata.uns["poems"] = {"variance_explained": [0.5]}
    mdata.obsm["X_poems"] = np.zeros((40, 1))
    model.store_results(overwrite=True)
    assert mdata.obsm["X_poems"].shape == (40, 3)
    assert mdata.uns["poems"]["variance_explained"] == [0.5]  # what tl functions stored survives
    assert mdata.uns["poems"]["modalities"] == ["a", "b"]
    assert mdata.uns["nested"]["v"]["deep"].tolist() == [0, 1, 2]


# --- atomic save ------------------------------------------------------------------------------------------------
def _digest(folder):
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in sorted(os.listdir(folder))}


def _outputs(model):
    return model.get_latent_representation(), model.get_loadings("a").to_numpy()


def test_a_crash_while_writing_leaves_the_previous_save_intact(tmp_path, monkeypatch):
    mdata = _mdata()
    model = _train(mdata, max_epochs=2)
    target = tmp_path / "model"
    model.save(target)
    saved, expected = _digest(target), _outputs(model)
    model.train(max_epochs=2, batch_size=16, train_size=0.9, early_stopping=False, **QUIET)  # the model moves on

    def torch_save_crashing(obj, f, *args, **kwargs):
        with open(f, "wb") as fh:
            fh.write(b"half a model")
        raise OSError("No space left on device")

    monkeypatch.setattr(torch, "save", torch_save_crashing)
    with pytest.raises(OSError, match="No space left"):
        model.save(target, overwrite=True)
    monkeypatch.undo()
    assert _digest(target) == saved
    assert os.listdir(tmp_path) == ["model"]  # no temporary folder left behind
    loaded = pm.POEMS.load(target, mdata)
    for got, want in zip(_outputs(loaded), expected, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_crash_while_swapping_folders_puts_the_previous_save_back(tmp_path, monkeypatch):
    mdata = _mdata()
    model = _train(mdata, max_epochs=2)
    target = tmp_path / "model"
    model.save(target)
    saved = _digest(target)
    real_replace = os.replace

    def replace_failing_on_the_new_save(src, dst):
        if ".tmp-" in os.fspath(src) and not os.fspath(src).endswith(".old"):
            raise OSError("interrupted")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_failing_on_the_new_save)
    with pytest.raises(OSError, match="interrupted"):
        model.save(target, overwrite=True)
    monkeypatch.undo()
    assert _digest(target) == saved
    assert os.listdir(tmp_path) == ["model"]


def test_a_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    mdata = _mdata()
    model = _train(mdata, max_epochs=1)

    def fail(*args, **kwargs):
        raise OSError("disk gone")

    monkeypatch.setattr(torch, "save", fail)
    with pytest.raises(OSError, match="disk gone"):
        model.save(tmp_path / "new")
    assert os.listdir(tmp_path) == []


def test_returned_and_stored_results_do_not_change_when_training_goes_on():
    mdata = _mdata()
    model = _train(mdata, max_epochs=2)
    model.store_results()
    returned = (model.get_loadings("a"), model.get_slab_probabilities("b"), model.get_feature_sigma("a"))
    frozen_returned = [r.copy(deep=True) for r in returned]
    stored = _frozen(mdata)
    model.train(max_epochs=2, batch_size=16, train_size=0.9, early_stopping=False, **QUIET)
    assert not np.array_equal(model.get_loadings("a").to_numpy(), frozen_returned[0].to_numpy())  # it did move
    for got, want in zip(returned, frozen_returned, strict=True):
        pd.testing.assert_index_equal(got.index, want.index)
        np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())
    _assert_same(stored, _frozen(mdata))


def test_ctrl_c_during_validation_stops_before_the_next_epoch():
    class CtrlCInValidation(pl.Callback):
        def on_validation_batch_end(self, trainer, plan, outputs, batch, batch_idx, dataloader_idx=0):
            if trainer.current_epoch == 1:
                signal.raise_signal(signal.SIGINT)

    mdata = _mdata()
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    with pytest.warns(UserWarning, match=r"interrupted \(Ctrl\+C\) in epoch 2 after 6 optimizer steps"):
        model.train(
            max_epochs=50, batch_size=16, train_size=0.9, early_stopping=False, callbacks=[CtrlCInValidation()], **QUIET
        )
    assert len(model.history["elbo_train"]) == 2
    assert model.is_trained and np.isfinite(model.get_latent_representation()).all()
