"""Faults during training: non-finite losses and interrupts leave a usable model and nothing half-done."""

import signal

import lightning.pytorch as pl
import numpy as np
import pytest
import scvi
import torch
from _user_mudata import QUIET, SMALL, train_small, user_mudata

import poems_mu as pm


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
    mdata = user_mudata()
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
    mdata = user_mudata()
    cb = _AtStep(epoch=3, batch=0, action=_poison)  # 36 training samples in 3 minibatches of 16
    with pytest.raises(pm.NonFiniteLossError) as info:
        train_small(mdata, max_epochs=10, callbacks=[cb])
    message = str(info.value)
    # losses are checked once per epoch: the fault is reported at the end of epoch 4 (after all its 3 steps)
    assert "the loss became non-finite in the training pass of epoch 4 (after 12 optimizer steps" in message
    assert "restored to its state after epoch 3 of this run" in message
    assert isinstance(info.value, FloatingPointError)


def test_non_finite_loss_restores_exact_state_and_leaves_a_usable_model():
    mdata = user_mudata()
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
    mdata = user_mudata()
    cb = _AtStep(epoch=1, batch=2, action=_poison)  # the last minibatch of epoch 2: validation sees it first
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    with pytest.raises(FloatingPointError, match=r"in the validation pass of epoch 2 \(after 6 optimizer steps"):
        model.train(max_epochs=10, batch_size=16, train_size=0.9, callbacks=[cb], **QUIET)
    _assert_state(model, cb.state_at_epoch_start)


def test_non_finite_parameters_after_the_very_last_step_are_caught():
    mdata = user_mudata()
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
    mdata = user_mudata()
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

    mdata = user_mudata()
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    with pytest.raises(KeyboardInterrupt, match="after 0 optimizer steps"):
        model.train(max_epochs=3, callbacks=[InterruptAtStart()], **QUIET)
    assert not model.is_trained
    with pytest.raises(RuntimeError, match="train"):
        model.get_latent_representation()


def test_ctrl_c_stops_after_the_current_minibatch_and_returns():
    mdata = user_mudata()
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


def test_ctrl_c_during_validation_stops_before_the_next_epoch():
    class CtrlCInValidation(pl.Callback):
        def on_validation_batch_end(self, trainer, plan, outputs, batch, batch_idx, dataloader_idx=0):
            if trainer.current_epoch == 1:
                signal.raise_signal(signal.SIGINT)

    mdata = user_mudata()
    scvi.settings.seed = 0
    pm.POEMS.setup_mudata(mdata)
    model = pm.POEMS(mdata, **SMALL)
    with pytest.warns(UserWarning, match=r"interrupted \(Ctrl\+C\) in epoch 2 after 6 optimizer steps"):
        model.train(
            max_epochs=50, batch_size=16, train_size=0.9, early_stopping=False, callbacks=[CtrlCInValidation()], **QUIET
        )
    assert len(model.history["elbo_train"]) == 2
    assert model.is_trained and np.isfinite(model.get_latent_representation()).all()
