"""Training metrics summed on the device and read once per epoch.

scvi's training plan hands every metric of every minibatch to Lightning's ``self.log`` (about 1 ms each on CPU for
the ~20 metrics of a three-modality model: a third of the wall time of a breast_tcga epoch), and checks each loss
on the host. Here each minibatch adds its metrics to one vector on the device, together with a flag of non-finite
losses; the vector is read (and, under DDP, summed across processes) once per epoch. The training plan passes the
metrics a callback or the progress bar reads to Lightning's ``log`` and keeps the others in :attr:`EpochMetrics.table`,
which the model merges into ``history`` after training. The values are the ones scvi logs: per-sample metrics are
means weighted by minibatch size, ``kl_global`` is the mean per minibatch and ``elbo`` is
``reconstruction_loss + kl_local + kl_global / n``.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch

#: the loss-level metrics of scvi, in the order they are summed (after them come the module's extra metrics)
_BASE = ("loss", "reconstruction_loss", "kl_local", "kl_global")


class EpochMetrics:
    """The metric sums of the current epoch's training and validation passes, and the table of past epochs.

    The training plan calls :meth:`reset` at the start of a pass, :meth:`accumulate` after each minibatch and
    :meth:`epoch_means` at its end.
    """

    def __init__(self):
        self._sums: dict[str, torch.Tensor | None] = {}
        self._counts: dict[str, list[int]] = {}  # samples, minibatches
        self._names: dict[str, tuple[str, ...]] = {}
        self._nonfinite: dict[str, torch.Tensor] = {}
        #: ``{metric: {epoch: value}}`` of the metrics not logged through Lightning
        self.table: dict[str, dict[int, float]] = {}

    def reset(self, mode: str, device: torch.device) -> None:
        """Start the sums of a ``mode`` (``"train"`` or ``"validation"``) pass."""
        self._sums[mode] = None
        self._counts[mode] = [0, 0]
        self._nonfinite[mode] = torch.zeros((), dtype=torch.bool, device=device)

    def accumulate(self, loss_output, mode: str) -> None:
        """Add one minibatch's metrics to the pass's sums, and flag a non-finite loss (no host synchronisation)."""
        n = int(loss_output.n_obs_minibatch)
        loss = loss_output.loss.detach()
        extra = {
            k: v.detach() for k, v in loss_output.extra_metrics.items() if isinstance(v, torch.Tensor) and v.dim() == 0
        }
        if mode not in self._names:
            self._names[mode] = (*_BASE, *extra)
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
        self._sums[mode] = sums if self._sums[mode] is None else self._sums[mode] + sums
        self._counts[mode][0] += n
        self._counts[mode][1] += 1
        self._nonfinite[mode] |= ~torch.isfinite(loss).all()

    def nonfinite(self, mode: str) -> bool:
        """Whether any loss of the current ``mode`` pass was non-finite (one read of a device flag)."""
        flag = self._nonfinite.get(mode)
        return flag is not None and bool(flag)

    def epoch_means(
        self, mode: str, n_total: int | None, device: torch.device, reduce: Callable | None = None
    ) -> dict[str, float] | None:
        """The pass's metric means under scvi's names (``train_loss``, ``elbo_train``, ...); ``None`` if it saw no
        sample. ``reduce`` sums a tensor across processes (DDP); ``n_total`` is the number of samples of the pass.
        """
        names = self._names.get(mode) or self._names.get("train")
        if names is None:
            return None
        sums = self._sums.get(mode)
        if sums is None:  # a process without samples in this pass still takes part in the reduction
            sums = torch.zeros(len(names), device=device)
        counts = sums.new_tensor(self._counts.get(mode, [0, 0]))
        if reduce is not None:
            both = reduce(torch.cat([sums, counts]), reduce_op="sum")
            sums, counts = both[: len(names)], both[len(names) :]
        values, (n, n_batches) = sums.tolist(), counts.tolist()
        if n == 0:
            return None
        means = {name: value / n for name, value in zip(names, values, strict=True)}
        means["kl_global"] = values[names.index("kl_global")] / max(n_batches, 1)
        out = {"train_loss" if mode == "train" else "validation_loss": means.pop("loss")}
        means["elbo"] = means["reconstruction_loss"] + means["kl_local"] + means["kl_global"] / max(n_total or 1, 1)
        out.update({f"{name}_{mode}": value for name, value in means.items()})
        return out

    def record(self, values: dict[str, float], epoch: int) -> None:
        """Keep ``values`` as epoch ``epoch``'s row of :attr:`table`."""
        for key, value in values.items():
            self.table.setdefault(key, {})[epoch] = value

    def history(self) -> dict[str, pd.DataFrame]:
        """:attr:`table` as scvi's history frames (index ``epoch``, one column)."""
        out = {}
        for key, values in self.table.items():
            index = pd.Index(list(values), name="epoch")
            out[key] = pd.DataFrame({key: list(values.values())}, index=index, dtype=float)
        return out
