"""Training metrics summed on the device and logged once per epoch.

scvi's training plan hands every metric of every minibatch to Lightning's ``self.log`` (about 1 ms each on CPU for
the ~20 metrics of a three-modality model: a third of the wall time of a breast_tcga epoch), and checks each loss
on the host. Here each minibatch adds its metrics to one vector on the device, together with a flag of non-finite
losses; the vector is read (and, under DDP, summed across processes) once per epoch, and the epoch means go to
Lightning's logging then. Only the metrics a callback or the progress bar reads (``train_loss``,
``validation_loss``, and whatever an early-stopping, checkpoint or LR-scheduler callback monitors) pass through
Lightning's ``self.log``, which costs ~0.5 ms per metric and epoch before scvi's logger adds a pandas row per value;
the others are kept in a plain table (:meth:`EpochMetricsMixin.epoch_history`) that the model merges into
``history`` after training. The logged values are the ones scvi logs: per-sample metrics are means weighted by
minibatch size, ``kl_global`` is the mean per minibatch and ``elbo`` is
``reconstruction_loss + kl_local + kl_global / n``.
"""

from __future__ import annotations

import pandas as pd
import torch

_MODES = ("train", "validation")
#: the loss-level metrics of scvi, in the order they are summed (after them come the module's extra metrics)
_BASE = ("loss", "reconstruction_loss", "kl_local", "kl_global")


class EpochMetricsMixin:
    """Accumulate a training plan's metrics on the device and log them at the end of each epoch.

    The plan calls :meth:`_reset_epoch_metrics` at the start of an epoch (or validation pass),
    :meth:`_accumulate_metrics` after each minibatch and :meth:`_log_epoch_metrics` at its end.
    """

    def _reset_epoch_metrics(self, mode: str) -> None:
        if not hasattr(self, "_metric_sums"):
            self._metric_sums, self._metric_counts, self._metric_names = {}, {}, {}
            self._nonfinite = {}
        self._metric_sums[mode] = None
        self._metric_counts[mode] = [0, 0]  # samples, minibatches
        self._nonfinite[mode] = torch.zeros((), dtype=torch.bool, device=self.device)

    def _accumulate_metrics(self, loss_output, mode: str) -> None:
        """Add one minibatch's metrics to the epoch sums, and flag a non-finite loss (no host synchronisation)."""
        n = int(loss_output.n_obs_minibatch)
        loss = loss_output.loss.detach()
        extra = {
            k: v.detach() for k, v in loss_output.extra_metrics.items() if isinstance(v, torch.Tensor) and v.dim() == 0
        }
        if mode not in self._metric_names:
            self._metric_names[mode] = (*_BASE, *extra)
        per_sample = torch.stack([loss, *extra.values()]).float() * n
        sums = torch.cat(
            [
                per_sample[:1],
                torch.stack([loss_output.reconstruction_loss_sum, loss_output.kl_local_sum, loss_output.kl_global_sum])
                .detach()
                .float(),
                per_sample[1:],
            ]
        )
        self._metric_sums[mode] = sums if self._metric_sums[mode] is None else self._metric_sums[mode] + sums
        self._metric_counts[mode][0] += n
        self._metric_counts[mode][1] += 1
        self._nonfinite[mode] |= ~torch.isfinite(loss).all()

    def _epoch_nonfinite(self, mode: str) -> bool:
        """Whether any loss of this epoch's ``mode`` pass was non-finite (one read of a device flag)."""
        flag = self._nonfinite.get(mode) if hasattr(self, "_nonfinite") else None
        return flag is not None and bool(flag)

    def _log_epoch_metrics(self, mode: str, n_total: int | None) -> dict[str, float] | None:
        """Log the epoch means of ``mode``'s metrics (summed across processes first under DDP) and return them."""
        names = self._metric_names.get(mode) or self._metric_names.get("train")
        if names is None:
            return None
        sums = self._metric_sums.get(mode)
        if sums is None:  # a process without samples in this pass still takes part in the reduction
            sums = torch.zeros(len(names), device=self.device)
        counts = sums.new_tensor(self._metric_counts.get(mode, [0, 0]))
        if self.use_sync_dist:
            both = self.trainer.strategy.reduce(torch.cat([sums, counts]), reduce_op="sum")
            sums, counts = both[: len(names)], both[len(names) :]
        values, (n, n_batches) = sums.tolist(), counts.tolist()
        if n == 0:
            return None
        means = {name: value / n for name, value in zip(names, values, strict=True)}
        means["kl_global"] = values[names.index("kl_global")] / max(n_batches, 1)
        out = {"train_loss" if mode == "train" else "validation_loss": means.pop("loss")}
        means["elbo"] = means["reconstruction_loss"] + means["kl_local"] + means["kl_global"] / max(n_total or 1, 1)
        out.update({f"{name}_{mode}": value for name, value in means.items()})
        out.update({f"{k}_{mode}": float(v) for k, v in self.module.sparsity_metrics().items()})  # states, at epoch end
        read = self._monitored_metrics()
        self.log_dict({k: v for k, v in out.items() if k in read}, on_step=False, on_epoch=True, sync_dist=False)
        table = self.__dict__.setdefault("_epoch_table", {})
        for key, value in out.items():
            if key not in read:
                table.setdefault(key, {})[self.current_epoch] = value
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

    def epoch_history(self) -> dict[str, pd.DataFrame]:
        """The metrics not logged through Lightning, as scvi's history frames (index ``epoch``, one column)."""
        out = {}
        for key, values in getattr(self, "_epoch_table", {}).items():
            index = pd.Index(list(values), name="epoch")
            out[key] = pd.DataFrame({key: list(values.values())}, index=index, dtype=float)
        return out
