"""Training checkpoints that a killed run resumes from, ending with the same parameters as an uninterrupted run.

``train(checkpoint_dir=DIR, checkpoint_every=N)`` keeps DIR holding, every N epochs, a loadable model folder (the
latest parameters: ``POEMS.load(DIR, mdata)`` works on it) plus what resuming needs, in the same plain formats (no
pickles; Lightning's ``.ckpt`` files are pickles):

* ``poems_resume.json`` — epoch and optimizer-step counts, the arguments of the run, the restart index and the
  runs before it, early-stopping state, the best-state bookkeeping, numpy's and Python's RNG states, the link-path
  counters of the decoders, the metrics logged so far;
* ``poems_resume.pt`` — tensors only (``weights_only=True``): the optimizer state, torch's RNG state, the best-so-far
  and last-finite copies of the module, the decoders' stored dense gradients, and the kept earlier restart.

The folder is replaced atomically. A checkpoint is taken at the start of an epoch, once validation, early stopping
and the best-state copy of the one before have run, and the resumed run restores everything at the same point,
before its first epoch draws a random number, so on CPU the resumed run retraces the uninterrupted one exactly.
When training ends, DIR holds the final model, marked complete.
"""

from __future__ import annotations

import json
import os
import random

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback

from poems_mu._model_files import (
    JSON_FILE,
    SPLIT_ATTRS,
    InvalidModelFolder,
    from_plain,
    history_from_plain,
    history_to_plain,
    model_record,
    read_model_files,
    to_plain,
    write_folder,
    write_model_files,
)

RESUME_JSON, RESUME_STATE = "poems_resume.json", "poems_resume.pt"
RESUME_FORMAT = "poems_mu.resume"


def context(signature: dict, restart: int, runs: list, kept: tuple | None) -> dict:
    """What a checkpoint of restart ``restart`` records besides the run itself: its arguments, the runs before it
    and the earlier restart kept so far (``(criterion, restart, state_dict, history)``).
    """
    plain = {"signature": signature, "restart": restart, "runs_before": list(runs)}
    plain.update(kept_value=None, kept_restart=None, kept_history=None)
    if kept is not None:
        plain.update(kept_value=kept[0], kept_restart=kept[1], kept_history=history_to_plain(kept[3] or {}))
    return {"plain": plain, "kept_state": None if kept is None else kept[2]}


def _set_counts(progress, n: int) -> None:
    for tracker in (progress.total, progress.current):
        for field in ("ready", "started", "processed", "completed"):
            if hasattr(tracker, field):
                setattr(tracker, field, n)


class TrainingCheckpoint(Callback):
    """Writes the checkpoint every ``every`` epochs; with ``resume`` (a read checkpoint), restores it first.

    Both happen at the start of an epoch, when everything of the epoch before has run (the plan's end-of-epoch
    bookkeeping and early stopping come after a callback's ``on_train_epoch_end``) and nothing of the next one has.
    (Not a Lightning ``Checkpoint``: scvi would then add its own, which writes into ``scvi_log/``.)
    """

    def __init__(self, model, dir_path: str, every: int, context: dict, resume: dict | None = None):
        self.model, self.dir_path, self.every = model, dir_path, int(every)
        self.context = context  # signature, restart, runs before, kept earlier restart
        self.resume = resume
        self._pending, self._resumed_at = None, None

    # -- resuming ------------------------------------------------------------------------------------------------
    def on_train_start(self, trainer, plan):
        if self.resume is None:
            return
        info = self.resume["info"]
        loop = trainer.fit_loop
        _set_counts(loop.epoch_progress, info["epoch"])
        _set_counts(loop.epoch_loop.automatic_optimization.optim_progress.optimizer.step, info["global_step"])
        loop.epoch_loop._batches_that_stepped = info["batches_that_stepped"]
        es = next((cb for cb in trainer.callbacks if hasattr(cb, "wait_count")), None)
        if es is not None and info["early_stopping"] is not None:
            state = dict(info["early_stopping"])
            state["best_score"] = self.resume["tensors"]["es_best_score"]
            current_step = state.pop("_current_step", None)
            es.load_state_dict(state)
            if current_step is not None:
                es._current_step = current_step
        if trainer.logger is not None and hasattr(trainer.logger, "experiment"):
            trainer.logger.experiment.data = {k: v.astype(object) for k, v in info["logger_history"].items()}
        self._pending = self.resume
        self.resume = None

    def on_train_epoch_start(self, trainer, plan):
        # after the plan's on_train_start (which resets its copies), before the epoch draws its permutation
        if self._pending is None:
            done = trainer.current_epoch  # completed epochs
            if done > 0 and done % self.every == 0 and done != self._resumed_at:
                write_checkpoint(self.model, self.dir_path, self.context, trainer=trainer, plan=plan)
            return
        saved, self._pending = self._pending, None
        self._resumed_at = saved["info"]["epoch"]
        info, tensors = saved["info"], saved["tensors"]
        optimizer = plan.optimizers()
        getattr(optimizer, "optimizer", optimizer).load_state_dict(tensors["optimizer"])
        with torch.no_grad():  # (saved on the host; the copies live on the training device)
            for good, t in zip(plan._good, tensors["good"], strict=True):
                good.copy_(t)
            if tensors.get("best") is not None:
                plan._best = [t.to(live.device, copy=True) for t, live in zip(tensors["best"], plan._live, strict=True)]
        p = info["plan"]
        plan._good_epoch, plan.best_epoch, plan.best_value = p["good_epoch"], p["best_epoch"], p["best_value"]
        weights = plan.module.sparse_weights()
        plan._last_step = {id(w): t for w, t in zip(weights, p["last_step"], strict=False) if t is not None}
        plan.epoch_metrics.table = {k: {int(e): v for e, v in d.items()} for k, d in info["epoch_table"].items()}
        for dec, d, grad in zip(plan.module.decoders, info["decoders"], tensors["dense_grad"], strict=True):
            if d is not None:
                dec._passes, dec._use_links = d["passes"], d["use_links"]
                dec._dense_grad.copy_(grad)
        torch.set_rng_state(tensors["rng_torch"])
        if torch.cuda.is_available() and tensors.get("rng_cuda") is not None:
            torch.cuda.set_rng_state_all(list(tensors["rng_cuda"]))
        name, *rest = info["rng_numpy"]
        np.random.set_state((name, tensors["rng_numpy"].numpy().astype(np.uint32), *rest))
        version, state, gauss = info["rng_python"]
        random.setstate((version, tuple(state), gauss))


def _logger_history(trainer) -> dict:
    logger = trainer.logger
    return dict(getattr(logger, "history", {}) or {}) if logger is not None else {}


def write_checkpoint(model, dir_path: str, context: dict, trainer=None, plan=None) -> None:
    """The checkpoint: the model folder and the resume files (``trainer``/``plan`` of a run in progress, or none
    for the final, complete one).
    """
    record, state, arrays = model_record(model)
    complete = trainer is None
    info = {"format": RESUME_FORMAT, "complete": complete, **to_plain(context["plain"])}
    tensors: dict = {"kept_state": context.get("kept_state")}
    if not complete:
        splitter = trainer.datamodule
        split = (splitter.train_idx, splitter.val_idx, getattr(splitter, "test_idx", None))
        arrays = {
            k: np.asarray([] if v is None else v, dtype=np.int64) for k, v in zip(SPLIT_ATTRS, split, strict=True)
        }
        history = {**_logger_history(trainer), **plan.epoch_metrics.history()}
        record["history"] = history_to_plain(history)
        record["attributes"] = to_plain({**from_plain(record["attributes"]), "is_trained_": True})
        es = next((cb for cb in trainer.callbacks if hasattr(cb, "wait_count")), None)
        es_state = None
        if es is not None:
            es_state = {k: v for k, v in es.state_dict().items() if k != "best_score"}
            es_state["_current_step"] = getattr(es, "_current_step", None)
            tensors["es_best_score"] = torch.as_tensor(es.best_score).detach().cpu().clone()
        optimizer = plan.optimizers()
        optimizer = getattr(optimizer, "optimizer", optimizer)
        np_state = np.random.get_state()
        py_state = random.getstate()
        weights = plan.module.sparse_weights()
        info.update(
            {
                "epoch": trainer.current_epoch,  # completed epochs (written at the start of the next one)
                "global_step": int(trainer.global_step),
                "batches_that_stepped": int(trainer.fit_loop.epoch_loop._batches_that_stepped),
                "early_stopping": to_plain(es_state),
                "plan": {
                    "good_epoch": plan._good_epoch,
                    "best_epoch": plan.best_epoch,
                    "best_value": plan.best_value,
                    "last_step": [plan._last_step.get(id(w)) for w in weights],
                },
                "epoch_table": {k: {str(e): v for e, v in d.items()} for k, d in plan.epoch_metrics.table.items()},
                "decoders": [
                    {"passes": int(d._passes), "use_links": bool(d._use_links)} if hasattr(d, "_passes") else None
                    for d in plan.module.decoders
                ],
                "rng_numpy": [np_state[0], *[to_plain(x) for x in np_state[2:]]],
                "rng_python": [py_state[0], list(py_state[1]), py_state[2]],
                "logger_history": history_to_plain(_logger_history(trainer)),
            }
        )
        tensors.update(
            {
                "optimizer": optimizer.state_dict(),
                "good": [t.detach().cpu().clone() for t in plan._good],
                "best": None if plan._best is None else [t.detach().cpu().clone() for t in plan._best],
                "dense_grad": [
                    d._dense_grad.detach().cpu().clone() if hasattr(d, "_dense_grad") else torch.zeros(0)
                    for d in plan.module.decoders
                ],
                "rng_torch": torch.get_rng_state(),
                "rng_numpy": torch.from_numpy(np_state[1].astype(np.int64)),
                "rng_cuda": torch.stack(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else None,
            }
        )

    def write(tmp: str) -> None:
        write_model_files(tmp, "", record, state, arrays)
        with open(os.path.join(tmp, RESUME_JSON), "w") as f:
            json.dump(info, f)
        torch.save(tensors, os.path.join(tmp, RESUME_STATE))

    write_folder(dir_path, write, overwrite=True)


def read_checkpoint(dir_path: str) -> dict | None:
    """The resume files of ``dir_path`` (``None`` if it holds no checkpoint); :class:`InvalidModelFolder` if broken."""
    json_path = os.path.join(dir_path, RESUME_JSON)
    if not os.path.exists(json_path):
        return None
    try:
        with open(json_path) as f:
            info = json.load(f)
        if info.get("format") != RESUME_FORMAT:
            raise ValueError("not a poems_mu resume record")
        tensors = torch.load(os.path.join(dir_path, RESUME_STATE), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure means the same thing here
        raise InvalidModelFolder(dir_path, f"its resume files do not read back ({err})") from None
    info["logger_history"] = history_from_plain(info.get("logger_history") or {})
    info["runs_before"] = from_plain(info.get("runs_before") or [])
    return {"info": info, "tensors": tensors}


def check_resume(saved: dict, signature: dict, model, dir_path: str) -> None:
    """A checkpoint resumes only the run it was written by: same model, data features and train arguments."""
    with open(os.path.join(dir_path, JSON_FILE)) as f:
        record = json.load(f)
    if record.get("model_class") != type(model).__name__ or from_plain(record["init_params"]) != model.init_params_:
        raise ValueError(
            f"The checkpoint in {dir_path} was written by a model with other arguments; resume with the model "
            "built as before (same POEMS(...) arguments), or use another checkpoint_dir."
        )
    if record.get("var_names") != {m: [str(v) for v in model.adata.mod[m].var_names] for m in model.modalities}:
        raise ValueError(f"The checkpoint in {dir_path} was trained on other modalities or features than this model.")
    old = from_plain(saved["info"]["signature"])
    new = from_plain(to_plain(signature))
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if diff:
        details = ", ".join(f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in diff)
        raise ValueError(
            f"resume=True continues the run checkpointed in {dir_path}, which had other arguments ({details}). "
            "Call train() with the same arguments (and scvi.settings.seed), or start afresh in another checkpoint_dir."
        )


def restore_complete(model, dir_path: str) -> None:
    """Put the final model of a completed checkpointed run into ``model``."""
    record, state, arrays = read_model_files(dir_path, "", type(model).__name__)
    model.module.load_state_dict(state)
    for name, value in {**record["attributes"], **arrays}.items():
        setattr(model, name, value)
    model.history_ = record["history"]
    model.module.eval()


def check_checkpoint_dir(dir_path, resume: bool) -> None:
    """``checkpoint_dir`` may be new, empty, or this run's checkpoint: nothing else in it is ever replaced."""
    if dir_path is None or not os.path.exists(dir_path):
        return
    if not os.path.isdir(dir_path):
        raise ValueError(f"checkpoint_dir {dir_path} is a file; choose a directory.")
    entries = os.listdir(dir_path)
    if not entries:
        return
    if RESUME_JSON not in entries:
        raise ValueError(
            f"checkpoint_dir {dir_path} holds other files ({sorted(entries)[:3]}…), not a poems_mu checkpoint; "
            "choose a new or empty directory (checkpoints replace the whole directory)."
        )
    if not resume:
        raise ValueError(
            f"checkpoint_dir {dir_path} already holds a checkpoint. Pass resume=True to continue that run (or get "
            "its final model), or remove it / choose another directory to start a new one."
        )
