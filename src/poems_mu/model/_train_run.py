"""One training run of a POEMS model: scvi's trainer under a :class:`~poems_mu.train.TrainingGuard`."""

from __future__ import annotations

import warnings

from scvi.model.base import UnsupervisedTrainingMixin

from poems_mu.train import TrainingGuard

#: held-out criterion: per-sample negative ELBO of the validation samples (reconstruction + β·KL) at the posterior
#: means, logged by the module
EARLY_STOPPING_MONITOR = "elbo_per_sample_validation"


def train_run(model, train_kwargs: dict) -> dict:
    """Train ``model`` once with scvi's trainer (``train_kwargs``: those of scvi's ``train``) under a guard.

    Returns what the run measured: epochs, the best epoch restored, the held-out criterion, whether Ctrl+C ended it.
    """
    guard = TrainingGuard(model)
    train_kwargs = {**train_kwargs, "plan_kwargs": {**train_kwargs["plan_kwargs"], "guard": guard}}
    try:
        with warnings.catch_warnings(), guard:
            # scvi warns about a last minibatch of one sample because of BatchNorm; POEMS has none
            warnings.filterwarnings("ignore", message="Last batch will have a small size")
            UnsupervisedTrainingMixin.train(model, **train_kwargs)
    finally:  # the metrics not logged through Lightning join scvi's history, also after a fault
        plan = guard.plan
        if plan is not None and getattr(model, "history_", None) is not None:
            model.history_ = {**model.history_, **plan.epoch_metrics.history()}
    hist = getattr(model, "history_", None) or {}
    epochs = len(hist["elbo_train"]) if "elbo_train" in hist else None
    last = None
    if EARLY_STOPPING_MONITOR in hist and len(hist[EARLY_STOPPING_MONITOR]):
        last = float(hist[EARLY_STOPPING_MONITOR].iloc[-1, 0])
    restored = bool(plan is not None and plan.restored_best)
    return {
        "epochs": epochs,
        "best_epoch": plan.best_epoch if restored else None,
        "restored_best": restored,
        "validation_criterion": plan.best_value if restored else last,
        "last_validation_criterion": last,
        "interrupted": guard.stop_requested,
    }
