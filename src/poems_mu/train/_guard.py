"""The guard of a training run: Ctrl+C stops it gracefully, and faults leave a usable model.

- A non-finite loss (training or validation) or non-finite parameters stop training with
  :class:`NonFiniteLossError`, after the training plan restores the module to the last state known to give finite
  losses (a copy taken at the first minibatch of every epoch).
- Ctrl+C (SIGINT) during training asks it to stop after the current minibatch and returns normally; a second Ctrl+C,
  or a ``KeyboardInterrupt`` raised in code (which Lightning ≥ 2.1 turns into ``sys.exit(1)``), stops at once and
  reaches the caller as ``KeyboardInterrupt``, with the model in eval mode and its parameters as they were.
"""

from __future__ import annotations

import logging
import signal
import threading
import warnings

import torch

logger = logging.getLogger(__name__)


class NonFiniteLossError(FloatingPointError):
    """Training produced a non-finite loss or non-finite parameters; the model was restored to a finite state."""


def max_abs(tensors: list[torch.Tensor]) -> float:
    """Largest ``|value|`` over the tensors; ``nan`` if any is NaN."""
    floats = [t for t in tensors if t.is_floating_point() and t.numel()]
    if not floats:
        return 0.0
    return float(torch.stack(torch._foreach_norm(floats, ord=float("inf"))).max())


class TrainingGuard:
    """Context of one training run: graceful Ctrl+C, and a usable model after faults and interrupts.

    The run's training plan gets the guard as its ``guard`` argument and reports to it: it registers itself
    (:attr:`plan`) when training starts and reads :attr:`stop_requested` after every minibatch.

    Parameters
    ----------
    model
        The model being trained.

    """

    def __init__(self, model):
        self.model = model
        self.plan = None  # the POEMSTrainingPlan of the run, once it starts
        self.stop_requested = False
        self.stopped_at: tuple[int, int] | None = None
        self.was_trained = bool(model.is_trained_)
        self._handler = None

    def __enter__(self) -> TrainingGuard:
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
        if self.plan is not None and not torch.isfinite(torch.tensor(max_abs(self.plan._live))):
            self.plan._restore()
        model.is_trained_ = self.was_trained or steps > 0
        raise KeyboardInterrupt(
            f"Training interrupted in epoch {epoch} after {steps} optimizer steps; the model keeps the parameters "
            f"it reached (is_trained={model.is_trained_})."
        ) from None
