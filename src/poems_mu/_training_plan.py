"""Training plan: scvi's ELBO training, the spike-and-slab E-step after every optimizer step, and fault handling.

Faults leave a usable model:

- a non-finite loss (training or validation) or non-finite parameters stop training with
  :class:`NonFiniteLossError`, after the module is restored to the last state known to give finite losses (a copy
  taken at the first minibatch of every epoch; ~0.1 ms for the ~0.2 M parameters of a breast_tcga model);
- Ctrl+C (SIGINT) during :meth:`POEMS.train` asks training to stop after the current minibatch and returns
  normally; a second Ctrl+C, or a ``KeyboardInterrupt`` raised in code (which Lightning ≥ 2.1 turns into
  ``sys.exit(1)``), stops at once and reaches the caller as ``KeyboardInterrupt``, with the model in eval mode and
  its parameters as they were.
"""

from __future__ import annotations

import logging
import signal
import threading
import warnings

import torch
from scvi.train import TrainingPlan

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """Training produced a non-finite loss or non-finite parameters; the model was restored to a finite state."""


def _max_abs(tensors: list[torch.Tensor]) -> float:
    """Largest ``|value|`` over the tensors; ``nan`` if any is NaN."""
    floats = [t for t in tensors if t.is_floating_point() and t.numel()]
    if not floats:
        return 0.0
    return float(torch.stack(torch._foreach_norm(floats, ord=float("inf"))).max())


class POEMSTrainingPlan(TrainingPlan):
    """:class:`scvi.train.TrainingPlan` with the E-step after each optimizer step and non-finite-loss handling.

    Under DDP every process holds the same W after the gradient all-reduce, so every process computes the same
    p* and θ: no extra communication is needed.
    """

    # -- last finite state -------------------------------------------------------------------------------------
    def on_train_start(self):
        """Put the module in training mode and copy the starting state (restored if the first loss is non-finite).

        A model trained before, or loaded, sits in eval mode, and Lightning keeps a submodule's mode: without this a
        second ``train()`` would run with dropout off.
        """
        super().on_train_start()
        self.module.train()
        self._live = list(self.module.state_dict().values())  # share storage with the parameters and buffers
        self._good = [t.detach().clone() for t in self._live]
        self._good_epoch = 0  # completed epochs (of this run) that the copy reflects
        guard = TrainingGuard.active
        if guard is not None:
            guard.plan = self

    def _restore(self) -> str:
        if not hasattr(self, "_good"):
            return "its state before training (no finite state was recorded)"
        with torch.no_grad():
            torch._foreach_copy_(self._live, self._good)
        if self._good_epoch == 0:
            return "its state before this training run"
        return f"its state after epoch {self._good_epoch} of this run, the last with finite losses"

    def _fault(self, what: str, cause: BaseException | None = None):
        stage = "training" if self.trainer.training else "validation"
        epoch, steps = self.current_epoch + 1, self.global_step
        restored = self._restore()
        raise NonFiniteLossError(
            f"Training stopped: {what} in a {stage} minibatch at epoch {epoch} (after {steps} optimizer steps). "
            f"The model was restored to {restored}. Likely causes: a learning rate too high (lr={self.lr:g}; try "
            "a 10x smaller one), or data with extreme values or on very different scales (log-transform counts, "
            "e.g. with `poems_mu.pp.log1p`, and check for outliers)."
        ) from cause

    def forward(self, *args, **kwargs):
        """Module forward pass; a non-finite loss restores the last finite state and raises NonFiniteLossError."""
        try:
            out = super().forward(*args, **kwargs)
        except ValueError as err:
            # torch.distributions rejects a NaN posterior before any loss exists
            if "invalid values" not in str(err):
                raise
            self._fault("the posterior became non-finite (NaN)", err)
        if isinstance(out, tuple) and len(out) == 3 and hasattr(out[2], "loss"):
            loss = out[2].loss
            if not bool(torch.isfinite(loss).all()):
                self._fault(f"the loss became {loss.detach().float().cpu().max().item()}")
        return out

    def training_step(self, batch, batch_idx):
        """Run scvi's training step; the first minibatch of an epoch also records the state as the last finite one."""
        loss = super().training_step(batch, batch_idx)
        if batch_idx == 0 and self.current_epoch > 0:
            # the parameters (before this step's update) gave finite losses on the last epoch, its validation and
            # this minibatch
            with torch.no_grad():
                torch._foreach_copy_(self._good, self._live)
            self._good_epoch = self.current_epoch
        return loss

    def compute_and_log_metrics(self, loss_output, metrics, mode):
        """Log the metrics as scvi does, but under ``no_grad`` instead of scvi's ``inference_mode``.

        Under DDP (``sync_dist``), Lightning creates the running state of each logged extra metric (our
        ``elbo_per_sample``, θ, W density, ...) on its first log; made inside ``inference_mode`` it is an inference
        tensor, and the cross-process sync at the end of the epoch, which updates it in place outside that mode,
        fails ("Inplace update to inference tensor outside InferenceMode").
        """
        with torch.no_grad():
            TrainingPlan.compute_and_log_metrics.__wrapped__(self, loss_output, metrics, mode)

    def _honour_stop_request(self):
        guard = TrainingGuard.active
        if guard is not None and guard.stop_requested and not self.trainer.should_stop:
            self.trainer.should_stop = True
            guard.stopped_at = (self.current_epoch + 1, self.global_step)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        """E-step: update p* and θ from the freshly updated W; honour a Ctrl+C stop request."""
        self.module.e_step()
        self._honour_stop_request()

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        """Honour a Ctrl+C stop request made during validation (training stops before the next epoch)."""
        self._honour_stop_request()

    def on_train_end(self):
        """The last update has no later loss to check it: check the parameters themselves."""
        super().on_train_end()
        if not torch.isfinite(torch.tensor(_max_abs(self._live))):
            self._fault("the parameters became non-finite after the last optimizer step")


class TrainingGuard:
    """Context of one :meth:`POEMS.train` call: graceful Ctrl+C, and a usable model after faults and interrupts.

    Parameters
    ----------
    model
        The model being trained.

    """

    #: the guard of the training run in progress (the training plan reports to it)
    active: TrainingGuard | None = None

    def __init__(self, model):
        self.model = model
        self.plan: POEMSTrainingPlan | None = None
        self.stop_requested = False
        self.stopped_at: tuple[int, int] | None = None
        self.was_trained = bool(model.is_trained_)
        self._handler = None
        self._previous = None

    def __enter__(self) -> TrainingGuard:
        self._previous, TrainingGuard.active = TrainingGuard.active, self
        if threading.current_thread() is threading.main_thread():
            self._handler = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._on_sigint)
        return self

    def _on_sigint(self, signum, frame):
        if self.stop_requested or self.plan is None:
            raise KeyboardInterrupt
        self.stop_requested = True
        logger.warning("Ctrl+C: stopping after the current minibatch (press Ctrl+C again to abort at once).")

    def _progress(self) -> tuple[int, int]:
        if self.stopped_at is not None:
            return self.stopped_at
        plan = self.plan
        return (0, 0) if plan is None else (plan.current_epoch + 1, plan.global_step)

    def __exit__(self, exc_type, exc, tb):
        TrainingGuard.active = self._previous
        if self._handler is not None:
            # Lightning ignores SIGINT for good after a KeyboardInterrupt; give the caller its handler back
            signal.signal(signal.SIGINT, self._handler)
        model = self.model
        epoch, steps = self._progress()
        if exc is None:
            if self.stop_requested:
                warnings.warn(
                    f"Training was interrupted (Ctrl+C) in epoch {epoch} after {steps} optimizer steps; the model "
                    "keeps the parameters it reached.",
                    UserWarning,
                    stacklevel=3,
                )
            return False
        model.module.eval()
        if isinstance(exc, NonFiniteLossError):
            model.is_trained_ = self.was_trained or (self.plan is not None and self.plan._good_epoch > 0)
            return False
        interrupted = isinstance(exc, KeyboardInterrupt) or (
            isinstance(exc, SystemExit) and isinstance(exc.__context__, KeyboardInterrupt)
        )
        if not interrupted:
            return False
        if self.plan is not None and not torch.isfinite(torch.tensor(_max_abs(self.plan._live))):
            self.plan._restore()
        model.is_trained_ = self.was_trained or steps > 0
        raise KeyboardInterrupt(
            f"Training interrupted in epoch {epoch} after {steps} optimizer steps; the model keeps the parameters "
            f"it reached (is_trained={model.is_trained_})."
        ) from None
