"""Training plan: scvi's ELBO training, the proximal spike-and-slab step, best-state restore and fault handling.

Sparsity: the spike-and-slab lasso penalty on each ``W`` is not in the autograd loss. After every optimizer step the
plan soft-thresholds ``W`` (the proximal operator of ``Σ λ*_jk |w_jk| / n``) at the step size Adam just used for
each entry, ``lr / (√v̂_jk + ε)`` with Adam's own ε, then runs the E-step. At a fixed point an entry is non-zero
only where Adam's first-moment estimate of its per-sample data gradient reaches ``λ*_jk / n``, the optimality
condition of the penalised objective, whatever the preconditioner (``prox_eps`` sets another ε, which scales the
thresholds of entries with small gradients by ``(√v̂ + ε_Adam) / (√v̂ + prox_eps)``). ``W`` gets no weight decay.
The prior warms up over ``n_epochs_sparsity_warmup`` epochs (default: those of the KL warm-up): by default the
strength of the penalty rises linearly from 0 (``sparsity_warmup="scale"``), so the encoders learn before links are
cut, and p* and θ stay at their starting values until the warm-up ends (an E-step on a fresh, small W drives θ to 0
within a few steps, after which almost no link can reach the slab).

Pruning: after the sparsity warm-up, a factor whose column of W is 0 in every modality at the end of
:data:`PRUNE_PATIENCE` epochs in a row is pruned (:func:`~poems_mu.module._factors.prune_empty_factors`) and stays
out of the model.

Best state: after the warm-ups, the plan keeps in memory a copy of the parameters and buffers at the epoch with the
lowest held-out criterion (``elbo_per_sample_validation``, computed at the posterior means, so without sampling
noise) and restores it when training ends normally.

Faults: a non-finite loss or non-finite parameters restore the module to the last state known to give finite losses
(a copy taken at the first minibatch of every epoch) and raise :class:`~poems_mu.train.NonFiniteLossError`; a
Ctrl+C stop request of the run's :class:`~poems_mu.train.TrainingGuard` ends training after the current minibatch.

Metrics: each minibatch's metrics are summed on the device and logged once per epoch
(:class:`~poems_mu.train.EpochMetrics`).
"""

from __future__ import annotations

from typing import Literal

import torch
from scvi.train import TrainingPlan

from poems_mu.module._factors import prune_empty_factors

from ._epoch_metrics import EpochMetrics
from ._guard import NonFiniteLossError, TrainingGuard, max_abs

#: epochs in a row at whose end a factor must have no link in any modality before it is pruned
PRUNE_PATIENCE = 5


class POEMSTrainingPlan(TrainingPlan):
    """:class:`scvi.train.TrainingPlan` with the proximal step and E-step, the best state and non-finite-loss handling.

    Under DDP every process holds the same W and Adam state after the gradient all-reduce, so every process takes
    the same proximal step and computes the same p* and θ; the held-out criterion of the best state is summed
    across processes.

    Parameters
    ----------
    module
        The POEMS module.
    prox_eps
        ε of the proximal step size ``lr / (√v̂ + ε)``; ``None`` uses the optimizer's own ε (scvi's default 0.01),
        so that the threshold is applied at exactly the step Adam took.
    n_epochs_sparsity_warmup
        Epochs over which the spike-and-slab prior warms up; ``None`` uses ``n_epochs_kl_warmup`` (0 if that is
        ``None`` too).
    sparsity_warmup
        How it warms up: ``"scale"`` (the whole penalty rises linearly from 0), ``"lambda0"`` (the spike rate
        rises from λ1 to λ0) or ``"both"``.
    restore_best
        Restore the parameters of the epoch with the best held-out criterion when training ends normally.
    guard
        The :class:`~poems_mu.train.TrainingGuard` of the ``train`` call this plan runs in, to report to (Ctrl+C
        requests, the last finite state); ``None`` outside one.
    **kwargs
        Passed to :class:`scvi.train.TrainingPlan`.

    """

    def __init__(
        self,
        module,
        *,
        prox_eps: float | None = None,
        n_epochs_sparsity_warmup: int | None = None,
        restore_best: bool = True,
        sparsity_warmup: Literal["scale", "lambda0", "both"] = "scale",
        guard: TrainingGuard | None = None,
        **kwargs,
    ):
        super().__init__(module, **kwargs)
        self.guard = guard
        self.epoch_metrics = EpochMetrics()
        if sparsity_warmup not in ("scale", "lambda0", "both"):
            raise ValueError(f"sparsity_warmup must be 'scale', 'lambda0' or 'both', got {sparsity_warmup!r}.")
        self.sparsity_warmup = sparsity_warmup
        self.prox_eps = None if prox_eps is None else float(prox_eps)
        self._last_step: dict[int, float] = {}
        if n_epochs_sparsity_warmup is None:
            n_epochs_sparsity_warmup = self.n_epochs_kl_warmup or 0
        self.n_epochs_sparsity_warmup = int(n_epochs_sparsity_warmup)
        self.restore_best = bool(restore_best)
        self.best_epoch: int | None = None
        self.best_value: float | None = None
        self.restored_best = False

    @property
    def warmup_epochs(self) -> int:
        """Epochs during which the held-out criterion is not comparable (KL weight or sparsity penalty still rising)."""
        return max(self.n_epochs_kl_warmup or 0, self.n_epochs_sparsity_warmup)

    @property
    def in_warmup(self) -> bool:
        """Whether the current epoch is in the warm-ups (neither the best state nor a metric scheduler reads it)."""
        return self.current_epoch + 1 <= self.warmup_epochs

    # -- optimizer: W without weight decay ---------------------------------------------------------------------
    def configure_optimizers(self):
        """Scvi's optimizer, with every ``W`` in a parameter group of its own without weight decay."""
        sparse = {id(p) for p in self.module.sparse_weights()}
        params = [p for p in self.module.parameters() if p.requires_grad]
        groups = [{"params": [p for p in params if id(p) not in sparse]}]
        if sparse:
            groups.append({"params": [p for p in params if id(p) in sparse], "weight_decay": 0.0})
        config = super().configure_optimizers()
        optimizer = self.get_optimizer_creator()(groups)
        config["optimizer"] = optimizer
        if "lr_scheduler" in config:  # the scheduler was made for scvi's optimizer: point it at ours
            config["lr_scheduler"]["scheduler"].optimizer = optimizer
        return config

    def lr_scheduler_step(self, scheduler, metric) -> None:
        """Step the learning-rate scheduler.

        One that reads a metric (``reduce_lr_on_plateau``) waits for the warm-up's end: the held-out ELBO rises while
        the KL weight and the penalty do, which it would read as a plateau.
        """
        if metric is not None and self.in_warmup:
            return
        super().lr_scheduler_step(scheduler, metric)

    def _prox_step_sizes(self) -> list[torch.Tensor | float] | None:
        """Per-entry step size of the optimizer step just taken on each W; ``None`` if it took none.

        No step is taken on minibatches that only accumulate gradients (``accumulate_grad_batches``) or whose update
        a mixed-precision grad scaler skipped: Adam's step count tells.
        """
        optimizer = self.optimizers()
        optimizer = getattr(optimizer, "optimizer", optimizer)
        steps = []
        for w in self.module.sparse_weights():
            group = next(g for g in optimizer.param_groups if any(p is w for p in g["params"]))
            lr = group["lr"]
            state = optimizer.state.get(w, {})
            if "betas" in group and "exp_avg_sq" not in state:  # Adam before its first step
                return None
            if "exp_avg_sq" in state:  # Adam(W): the per-entry step it just took, lr / (√v̂ + ε)
                t = float(state["step"])
                if self._last_step.get(id(w)) == t:
                    return None
                self._last_step[id(w)] = t
                beta2 = group["betas"][1]
                eps = group.get("eps", 1e-8) if self.prox_eps is None else self.prox_eps
                v_hat = state["exp_avg_sq"] / (1.0 - beta2**t)
                steps.append(lr / (v_hat.sqrt() + eps))
            else:  # plain gradient steps
                steps.append(lr)
        return steps

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
        self._best = None
        self.best_epoch, self.best_value, self.restored_best = None, None, False
        if self.guard is not None:
            self.guard.plan = self

    def _restore(self) -> str:
        if not hasattr(self, "_good"):
            return "its state before training (no finite state was recorded)"
        with torch.no_grad():
            torch._foreach_copy_(self._live, self._good)
        self.module.refresh_factors()
        if self._good_epoch == 0:
            return "its state before this training run"
        return f"its state after epoch {self._good_epoch} of this run, the last with finite losses"

    def _fault(self, what: str, cause: BaseException | None = None, stage: str | None = None):
        if stage is None:
            where = f"in a {'training' if self.trainer.training else 'validation'} minibatch"
        else:  # found by the once-per-epoch check of the losses
            where = f"in the {'training' if stage == 'train' else 'validation'} pass"
        epoch, steps = self.current_epoch + 1, self.global_step
        restored = self._restore()
        raise NonFiniteLossError(
            f"Training stopped: {what} {where} of epoch {epoch} (after {steps} optimizer steps; losses are checked "
            f"once per epoch). The model was restored to {restored}. Likely causes: a learning rate too high "
            f"(lr={self.lr:g}; try "
            "a 10x smaller one), or data with extreme values or on very different scales (log-transform counts, "
            "e.g. with `poems_mu.pp.log1p`, and check for outliers)."
        ) from cause

    def forward(self, *args, **kwargs):
        """Module forward pass; a NaN posterior restores the last finite state and raises NonFiniteLossError."""
        try:
            return super().forward(*args, **kwargs)
        except ValueError as err:
            # torch.distributions rejects a NaN posterior before any loss exists (when argument validation is on)
            if "invalid values" not in str(err):
                raise
            self._fault("the posterior became non-finite (NaN)", err)

    def training_step(self, batch, batch_idx):
        """One ELBO step; its metrics and a non-finite-loss flag are summed on the device (read once per epoch)."""
        if "kl_weight" in self.loss_kwargs:
            self.loss_kwargs.update({"kl_weight": self.kl_weight})
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self.epoch_metrics.accumulate(loss_output, "train")
        return loss_output.loss

    def on_train_epoch_start(self):
        """Reset the epoch's metric sums and set the strength of the spike-and-slab prior for the epoch.

        The prior acts in the proximal step, after the optimizer step, not in the loss.
        """
        self.epoch_metrics.reset("train", self.device)
        n = self.n_epochs_sparsity_warmup
        self.module.anneal_sparsity(1.0 if n <= 0 else self.current_epoch / n, self.sparsity_warmup)

    def _log_epoch_metrics(self, mode: str, n_total: int | None) -> dict[str, float] | None:
        """Log the epoch means of ``mode``'s metrics (summed across processes first under DDP) and return them.

        Only the metrics that a callback, scheduler or the progress bar reads pass through Lightning's ``log``; the
        others are kept in :attr:`epoch_metrics` (its ``history()`` joins the model's history after training).
        """
        reduce = self.trainer.strategy.reduce if self.use_sync_dist else None
        out = self.epoch_metrics.epoch_means(mode, n_total, self.device, reduce)
        if out is None:
            return None
        out.update({f"{k}_{mode}": float(v) for k, v in self.module.sparsity_metrics().items()})  # at epoch end
        read = self._monitored_metrics()
        self.log_dict({k: v for k, v in out.items() if k in read}, on_step=False, on_epoch=True, sync_dist=False)
        self.epoch_metrics.record({k: v for k, v in out.items() if k not in read}, self.current_epoch)
        return out

    def _monitored_metrics(self) -> set[str]:
        """Metrics read during training: the losses (progress bar) and those callbacks or schedulers monitor."""
        keys = {"train_loss", "validation_loss"}
        for cb in self.trainer.callbacks or []:
            monitor = getattr(cb, "monitor", None)
            if isinstance(monitor, str):
                keys.add(monitor)
        for config in getattr(self.trainer, "lr_scheduler_configs", None) or []:
            if getattr(config, "monitor", None):
                keys.add(config.monitor)
        return keys

    def _check_epoch(self, mode: str) -> None:
        """Raise NonFiniteLossError (after restoring the last finite state) if a loss of this pass was non-finite."""
        if self.epoch_metrics.nonfinite(mode):
            self._fault("the loss became non-finite", stage=mode)

    def on_train_epoch_end(self):
        """Check the epoch's losses, log its metrics, and record the state as the last finite one.

        Validation has run by now (when there is a validation set), so the parameters of the last update gave
        finite losses on it too.
        """
        self._check_epoch("train")
        if not torch.isfinite(torch.tensor(max_abs(self._live))):
            self._fault("the parameters became non-finite after the last optimizer step of the epoch", stage="train")
        if self.n_epochs_sparsity_warmup <= 0 or self.current_epoch + 1 >= self.n_epochs_sparsity_warmup:
            # after the warm-up, a factor with no link left for PRUNE_PATIENCE epochs leaves the model
            prune_empty_factors(self.module, PRUNE_PATIENCE)
        self._log_epoch_metrics("train", self.n_obs_training)
        with torch.no_grad():
            torch._foreach_copy_(self._good, self._live)
        self._good_epoch = self.current_epoch + 1

    def _honour_stop_request(self):
        guard = self.guard
        if guard is not None and guard.stop_requested and not self.trainer.should_stop:
            self.trainer.should_stop = True
            guard.stopped_at = (self.current_epoch + 1, self.global_step)

    def on_train_batch_end(self, outputs, batch, batch_idx):
        """Proximal step on every W and E-step (p*, θ) after the optimizer step; honour a Ctrl+C stop request."""
        if self.module.sparse_weights():
            steps = self._prox_step_sizes()
            if steps is not None:
                warm = self.n_epochs_sparsity_warmup <= 0 or self.current_epoch >= self.n_epochs_sparsity_warmup
                n = max(1, int(self.n_obs_training or 1))
                self.module.proximal_step(steps, n_obs=n, e_step=warm)
        self._honour_stop_request()

    # -- validation at the posterior means, and the best state ------------------------------------------------
    def validation_step(self, batch, batch_idx):
        """Validation with ``z`` at the posterior means (a held-out criterion without sampling noise)."""
        at_mean = {"use_mean": True}
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs, inference_kwargs=at_mean)
        self.epoch_metrics.accumulate(loss_output, "validation")

    def on_validation_epoch_start(self):
        """Reset the validation pass's metric sums."""
        self.epoch_metrics.reset("validation", self.device)

    def on_validation_epoch_end(self):
        """Check and log the pass's losses; keep a copy of the state if the held-out criterion is the best so far.

        The best state is considered only after the warm-ups.
        """
        if self.trainer.sanity_checking:
            return
        self._check_epoch("train")  # this epoch's training losses, if validation follows them
        self._check_epoch("validation")
        logged = self._log_epoch_metrics("validation", self.n_obs_validation)
        value = (logged or {}).get("elbo_per_sample_validation")
        if not self.restore_best or value is None or self.in_warmup:
            return
        if not torch.isfinite(torch.tensor(value)):
            return
        if self.best_value is None or value < self.best_value:
            self.best_value, self.best_epoch = value, self.current_epoch + 1
            with torch.no_grad():
                if self._best is None:
                    self._best = [t.detach().clone() for t in self._live]
                else:
                    torch._foreach_copy_(self._best, self._live)

    def on_validation_batch_end(self, outputs, batch, batch_idx, dataloader_idx=0):
        """Honour a Ctrl+C stop request made during validation (training stops before the next epoch)."""
        self._honour_stop_request()

    def on_train_end(self):
        """Check the parameters of the last update, then restore the best state (unless stopped by Ctrl+C)."""
        super().on_train_end()
        if not torch.isfinite(torch.tensor(max_abs(self._live))):
            self._fault("the parameters became non-finite after the last optimizer step")
        interrupted = self.guard is not None and self.guard.stop_requested
        if self._best is not None and not interrupted:
            with torch.no_grad():
                torch._foreach_copy_(self._live, self._best)
            self.module.refresh_factors()
            self.restored_best = True
