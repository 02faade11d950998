"""Training of a POEMS model: scvi's trainer with early stopping, best-state restore and restarts."""

from __future__ import annotations

import copy
import logging
import math
import os
import warnings

import numpy as np
import scvi
import torch
from scvi.dataloaders._data_splitting import validate_data_split
from scvi.model.base import UnsupervisedTrainingMixin

from poems_mu._arguments import check_positive_int, is_int, is_real
from poems_mu._model_files import SPLIT_ATTRS, history_from_plain, read_model_files
from poems_mu.train import _checkpoint as ckpt

from ._factors import order_factors
from ._starts import start_factors
from ._train_run import EARLY_STOPPING_MONITOR, train_run

logger = logging.getLogger(__name__)


def restart_seed(seed: int | None, restart: int) -> int:
    """Torch seed of restart ``restart`` (≥ 1) of a run seeded with ``scvi.settings.seed``."""
    return int(np.random.SeedSequence([int(seed or 0), int(restart)]).generate_state(1)[0])


def check_train_args(max_epochs, lr, batch_size, train_size, n_restarts) -> None:
    """Ranges of the main training arguments, checked before Lightning or torch sees them."""
    check_positive_int(max_epochs, "max_epochs")
    if not is_real(lr) or not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr (learning rate) must be a finite number > 0, got {lr!r}.")
    check_positive_int(batch_size, "batch_size")
    if not is_real(train_size) or not 0 < train_size <= 1:
        raise ValueError(f"train_size must be in (0, 1], got {train_size!r}.")
    check_positive_int(n_restarts, "n_restarts")


def check_checkpoint_args(checkpoint_dir, checkpoint_every, resume) -> None:
    """``checkpoint_dir``, ``checkpoint_every`` and ``resume`` of :meth:`~poems_mu.POEMS.train`."""
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, str | os.PathLike):
        raise TypeError(f"checkpoint_dir must be a path, got {type(checkpoint_dir).__name__}.")
    if not is_int(checkpoint_every) or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be a positive number of epochs, got {checkpoint_every!r}.")
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False, got {resume!r}.")
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True needs the checkpoint_dir of the run to continue.")
    ckpt.check_checkpoint_dir(checkpoint_dir, resume)


def read_resume(model, checkpoint_dir: str, signature: dict) -> dict | None:
    """The checkpoint to resume from, checked against ``model`` and the run's arguments (``None``: none there)."""
    saved = ckpt.read_checkpoint(checkpoint_dir)
    if saved is None:
        warnings.warn(
            f"resume=True, but {checkpoint_dir} holds no checkpoint: training from the start.",
            UserWarning,
            stacklevel=3,
        )
        return None
    ckpt.check_resume(saved, signature, model, checkpoint_dir)
    record, state, arrays = read_model_files(checkpoint_dir, "", type(model).__name__)
    saved.update(state=state, arrays=arrays)
    return saved


def load_run(model, run: tuple) -> None:
    """Put a kept restart back into ``model``: ``(criterion, restart, state_dict, history)``."""
    model.module.load_state_dict(run[2])
    model.history_ = run[3]


class TrainingMixin(UnsupervisedTrainingMixin):
    """``train`` for POEMS: held-out early stopping, best-state restore, restarts keeping the best held-out ELBO.

    The model class provides, as scvi's model classes do, ``_module_cls`` and ``_module_inputs`` (the keyword
    arguments its module was built with): each restart builds a fresh module from them.
    """

    def train(
        self,
        max_epochs: int = 500,
        lr: float = 5e-3,
        batch_size: int = 1024,
        train_size: float = 0.8,
        validation_size: float | None = None,
        early_stopping: bool = True,
        early_stopping_patience: int = 50,
        n_epochs_kl_warmup: int | None = 100,
        n_restarts: int = 1,
        weight_decay: float = 1e-6,
        load_on_device: bool | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 10,
        resume: bool = False,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        plan_kwargs: dict | None = None,
        **kwargs,
    ):
        """Train with scvi's trainer (Lightning); defaults suited to bulk cohorts of tens to thousands of samples.

        The spike-and-slab penalty is applied as a proximal step after each optimizer step; its strength rises from
        0 over the KL warm-up, and the E-step (p*, θ) starts when the warm-up ends (see
        :class:`~poems_mu.train.POEMSTrainingPlan`).
        After the warm-up the model keeps, in memory, the state of the epoch with the lowest held-out criterion and
        returns to it when training ends normally (early stop or ``max_epochs``); a Ctrl+C stop keeps the
        parameters reached, a non-finite loss restores the last finite state.

        Parameters
        ----------
        max_epochs
            Maximum number of passes over the training samples.
        lr
            Learning rate (AdamW). It was chosen with the warm-up, the patience and the minibatch size by a
            label-free rule (held-out fit of samples training never sees, planted factor counts, batch removal,
            feature-set correction, agreement between seeds; the model page, "The training schedule").
        batch_size
            Minibatch size: cohorts of up to 1024 training samples train on one minibatch per epoch. A last
            minibatch of one sample is fine (no BatchNorm). It moves the number of factors kept: larger minibatches
            prune more (the model page, "How many factors: K is a cap").
        train_size
            Share of samples used for training; the rest is the validation set (20 % by default, as in the
            paper's protocol) for early stopping, the best state and the choice among restarts.
        validation_size
            Share of samples for validation (default: ``1 - train_size``).
        early_stopping
            Stop when the held-out criterion (``elbo_per_sample_validation``: per-sample reconstruction at the
            posterior means + β·KL of the validation samples) has not improved for ``early_stopping_patience``
            epochs after the warm-up. Needs a non-empty validation set.
        early_stopping_patience
            Epochs without improvement before stopping.
        n_epochs_kl_warmup
            Epochs over which the KL weight rises linearly from 0 to ``kl_weight`` (and, unless
            ``plan_kwargs["n_epochs_sparsity_warmup"]`` says otherwise, the strength of the sparsity penalty).
        n_restarts
            Train this many initialisations and keep the one with the best held-out criterion (MOFA+'s practice).
            The first continues from the model's current parameters, the others start from fresh ones drawn from
            ``scvi.settings.seed`` and the restart index; all use the same train/validation split. Every run's
            criterion goes to ``training_summary_`` (and ``uns["poems"]`` through :meth:`store_results`).
        weight_decay
            AdamW weight decay (never applied to ``W``: the spike-and-slab prior is its regulariser).
        load_on_device
            Hold the training and validation samples on the training device and draw minibatches there (no data
            copied from the host per step): ``None`` does so on a GPU when they take at most a quarter of its free
            memory (single process); ``True`` whenever training runs in one process; ``False`` never. The
            minibatches are the same either way.
        checkpoint_dir
            Keep this directory holding a checkpoint of the run: a model folder with the latest parameters
            (``POEMS.load(checkpoint_dir, mdata)`` works on it, e.g. after a crash) plus what resuming needs, in
            plain files (no pickles), replaced atomically. When training ends it holds the final model.
        checkpoint_every
            Epochs between checkpoints.
        resume
            Continue the run checkpointed in ``checkpoint_dir`` (call ``train`` with the same arguments and
            ``scvi.settings.seed``); on CPU the result is the same, bit for bit, as an uninterrupted run's. A
            checkpoint of a finished run just gives its final model back; an empty ``checkpoint_dir`` starts
            afresh (with a warning).
        accelerator, devices
            Lightning's device selection (e.g. ``accelerator="gpu", devices=2, strategy="ddp"``).
        plan_kwargs
            Extra arguments of ``POEMSTrainingPlan`` / :class:`scvi.train.TrainingPlan` (they
            override the ones above), e.g. ``prox_eps``, ``n_epochs_sparsity_warmup``, ``restore_best``.
        **kwargs
            Passed to :meth:`scvi.model.base.UnsupervisedTrainingMixin.train` and on to the Lightning trainer.

        """
        check_train_args(max_epochs, lr, batch_size, train_size, n_restarts)
        check_checkpoint_args(checkpoint_dir, checkpoint_every, resume)
        plan = {
            "lr": lr,
            "weight_decay": weight_decay,
            "optimizer": "AdamW",
            "n_epochs_kl_warmup": n_epochs_kl_warmup,
            "n_steps_kl_warmup": None,
        }
        plan.update(plan_kwargs or {})
        n_val = validate_data_split(self.adata.n_obs, train_size, validation_size)[1]
        has_validation = n_val > 0
        if early_stopping and not has_validation:
            raise ValueError(
                f"early_stopping needs a validation set, but train_size={train_size} leaves none of the "
                f"{self.adata.n_obs} samples: use a smaller train_size or early_stopping=False."
            )
        if n_restarts > 1 and not has_validation:
            raise ValueError(
                f"n_restarts={n_restarts} chooses among runs by their held-out criterion, but train_size={train_size} "
                "leaves no validation samples: use a smaller train_size or n_restarts=1."
            )
        if early_stopping:
            kwargs.setdefault("early_stopping_monitor", EARLY_STOPPING_MONITOR)
            kwargs.setdefault("early_stopping_patience", early_stopping_patience)
            # while the KL weight and the sparsity penalty rise the held-out criterion is not comparable across epochs
            kl_warmup = plan.get("n_epochs_kl_warmup") or 0
            sparsity_warmup = plan.get("n_epochs_sparsity_warmup")
            warmup = max(kl_warmup, kl_warmup if sparsity_warmup is None else sparsity_warmup)
            kwargs.setdefault("early_stopping_warmup_epochs", warmup)
        if has_validation:  # Lightning fails on a validation loop without a validation set
            kwargs.setdefault("check_val_every_n_epoch", 1)
        kwargs["datasplitter_kwargs"] = {"load_on_device": load_on_device, **(kwargs.get("datasplitter_kwargs") or {})}
        train_kwargs = {
            "max_epochs": max_epochs,
            "accelerator": accelerator,
            "devices": devices,
            "train_size": train_size,
            "validation_size": validation_size,
            "batch_size": batch_size,
            "early_stopping": early_stopping,
            "plan_kwargs": plan,
            **kwargs,
        }
        signature = {
            "max_epochs": max_epochs,
            "lr": lr,
            "batch_size": batch_size,
            "train_size": train_size,
            "validation_size": validation_size,
            "early_stopping": early_stopping,
            "early_stopping_patience": early_stopping_patience,
            "n_epochs_kl_warmup": n_epochs_kl_warmup,
            "n_restarts": n_restarts,
            "weight_decay": weight_decay,
            "plan_kwargs": plan_kwargs or {},
            "seed": scvi.settings.seed,
        }
        saved = read_resume(self, checkpoint_dir, signature) if resume else None
        if saved is not None and saved["info"]["complete"]:
            ckpt.restore_complete(self, checkpoint_dir)
            logger.info("The run checkpointed in %s had finished; the model holds its final state.", checkpoint_dir)
            return None
        runs, best, first = [], None, 0
        if saved is not None:
            info = saved["info"]
            first, runs = int(info["restart"]), list(info["runs_before"])
            if info.get("kept_restart") is not None:
                history = history_from_plain(info["kept_history"])
                best = (info["kept_value"], info["kept_restart"], saved["tensors"]["kept_state"], history)
            split = [np.asarray(saved["arrays"][k]) for k in SPLIT_ATTRS]
            train_kwargs["datasplitter_kwargs"] = {**train_kwargs["datasplitter_kwargs"], "external_indexing": split}
        user_callbacks = list(train_kwargs.pop("callbacks", None) or [])
        start_views = None  # the encoder views the starts read, once for all restarts of this call
        for restart in range(first, n_restarts):
            if restart > 0:
                seed = restart_seed(scvi.settings.seed, restart)
                torch.manual_seed(seed)
                self.module = self._module_cls(**self._module_inputs)
                start_views = start_factors(self, start_views)  # the sets' and the free factors' starts, afresh
                self.is_trained_ = False
            run_kwargs = dict(train_kwargs, callbacks=list(user_callbacks))  # scvi appends to the list it gets
            if checkpoint_dir is not None:
                resuming = saved if restart == first else None
                if resuming is not None:
                    self.module.load_state_dict(resuming["state"])
                context = ckpt.context(signature, restart, runs, best)
                cb = ckpt.TrainingCheckpoint(self, checkpoint_dir, checkpoint_every, context, resume=resuming)
                run_kwargs["callbacks"] = [*user_callbacks, cb]
            try:
                record = train_run(self, run_kwargs)
            except BaseException:
                if best is not None:  # a later restart failed or was aborted: give back the best finished one
                    load_run(self, best)
                    self.is_trained_ = True
                    logger.warning("Restart %d failed; the model keeps restart %d.", restart, best[1])
                raise
            record["restart"] = restart
            runs.append(record)
            if n_restarts > 1:
                value = record["validation_criterion"]
                # an interrupted run has moved on since its last criterion: it is kept only if it is the only one
                comparable = not record["interrupted"] and value is not None
                if best is None or (comparable and (best[0] is None or value < best[0])):
                    state = copy.deepcopy(self.module.state_dict())
                    best = (value if comparable else None, restart, state, self.history_)
                if record["interrupted"]:
                    break
        chosen = restart
        if best is not None and best[1] != restart:
            load_run(self, best)
            chosen = best[1]
        factor_r2 = order_factors(self)
        self.module.eval()
        self.training_summary_ = {
            "runs": runs,
            "chosen_restart": chosen,
            "n_restarts": n_restarts,
            "factor_r2": [float(r) for r in factor_r2],
        }
        if checkpoint_dir is not None and not (runs and runs[-1]["interrupted"]):
            ckpt.write_checkpoint(self, checkpoint_dir, ckpt.context(signature, n_restarts, runs, None))
        return None
