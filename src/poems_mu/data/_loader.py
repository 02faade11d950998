"""Minibatches from a MuData whose modalities need not cover every sample: dataset, loader and splitter.

scvi's stock loader indexes every modality with the same row numbers, which is only right for fully paired MuData.
Here each modality's rows are gathered through ``mdata.obsmap[mod]`` (0 = the sample lacks the modality); absent
rows are zero-filled inside the minibatch and flagged in an explicit observed mask. The user's AnnData objects
are never padded or copied.

On an accelerator, a cohort that fits (a quarter of the free device memory at most) is copied to the device once
per training run and minibatches are drawn there: each epoch's shuffle is one permutation (drawn exactly as
torch's ``RandomSampler`` draws it, so the minibatches are the same as from host memory) sent to the device once,
and no data crosses from the host per step.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import sparse
from scvi.data import AnnDataManager
from scvi.dataloaders import BatchDistributedSampler, DataSplitter
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from poems_mu._constants import COVARIATES_KEY, INDEX_KEY, library_key, mask_key, x_key

from ._covariates import covariate_matrix, registered_covariates
from ._registry import observed_rows, registered_modalities, registered_size_factors


class MultiModalDataset(Dataset):
    """Samples ``indices`` of a registered MuData; ``dataset[list_of_positions]`` returns a whole minibatch.

    Parameters
    ----------
    adata_manager
        Manager of a MuData registered with :meth:`POEMS.setup_mudata`.
    indices
        Positions (in the MuData) of the samples this dataset serves.

    A minibatch holds each modality's data and observed mask, the samples' positions, and, when the MuData was set
    up with them, the encoded covariates (``"covariates"``, samples × C) and the library sizes of ``size_factor_key``
    (``"L_<modality>"``).

    """

    def __init__(self, adata_manager: AnnDataManager, indices: np.ndarray, device: torch.device | str | None = None):
        modalities = registered_modalities(adata_manager)
        data = [adata_manager.get_from_registry(x_key(m)) for m in modalities]
        covariates = covariate_matrix(adata_manager.adata, registered_covariates(adata_manager))
        self._setup(
            modalities,
            data,
            [d.shape[1] for d in data],
            observed_rows(adata_manager),
            indices,
            device,
            covariates,
            registered_size_factors(adata_manager),
        )

    @classmethod
    def from_arrays(
        cls,
        modalities: Sequence[str],
        data: Sequence,
        n_features: Sequence[int],
        rows: Sequence[np.ndarray],
        indices,
        covariates: np.ndarray | None = None,
        size_factors: dict[str, np.ndarray] | None = None,
    ) -> MultiModalDataset:
        """A dataset over plain matrices: ``data[v]`` (``None`` for a modality no sample has) and ``rows[v]``, the
        row of each sample in it (−1 where the sample lacks the modality), for samples at ``indices``; the encoded
        ``covariates`` and the ``size_factors`` (per modality) are given for every sample.
        """
        self = cls.__new__(cls)
        self._setup(list(modalities), list(data), list(n_features), list(rows), indices, None, covariates, size_factors)
        return self

    def _setup(self, modalities, data, n_features, rows, indices, device, covariates=None, size_factors=None) -> None:
        self.indices = np.asarray(indices, dtype=np.int64)
        self.modalities = modalities
        self.data = data
        self.n_features = n_features
        self.rows = [r[self.indices] for r in rows]
        self.covariates = None if covariates is None else np.asarray(covariates, dtype=np.float32)[self.indices]
        # 1 where the sample lacks the modality (never used), filled once here rather than per minibatch
        self.size_factors = {
            m: np.where(self.rows[modalities.index(m)] >= 0, np.asarray(f)[self.indices], 1.0).astype(np.float32)
            for m, f in (size_factors or {}).items()
        }
        self.resident = None
        if device is not None:  # every served sample, once, on the device
            whole = self._gather(np.arange(len(self.indices)))
            self.resident = {k: v.to(device) for k, v in whole.items()}

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, positions) -> dict[str, torch.Tensor]:
        if self.resident is not None:
            if not isinstance(positions, torch.Tensor):
                positions = torch.as_tensor(np.atleast_1d(positions), dtype=torch.int64)
            positions = positions.to(self.resident[INDEX_KEY].device)
            return {k: v[positions] for k, v in self.resident.items()}
        return self._gather(positions)

    def _gather(self, positions) -> dict[str, torch.Tensor]:
        positions = np.atleast_1d(np.asarray(positions, dtype=np.int64))
        batch = {INDEX_KEY: torch.from_numpy(self.indices[positions])}
        if self.covariates is not None:
            batch[COVARIATES_KEY] = torch.from_numpy(self.covariates[positions])
        for mod, factors in self.size_factors.items():
            batch[library_key(mod)] = torch.from_numpy(factors[positions])
        for mod, data, n_feat, rows in zip(self.modalities, self.data, self.n_features, self.rows, strict=True):
            r = rows[positions]
            observed = r >= 0
            x = np.zeros((len(positions), n_feat), dtype=np.float32)
            if observed.any():
                block = data[r[observed]]
                if sparse.issparse(block):
                    block = block.toarray()
                x[observed] = np.asarray(block, dtype=np.float32)
            batch[x_key(mod)] = torch.from_numpy(x)
            batch[mask_key(mod)] = torch.from_numpy(observed.astype(np.float32))
        return batch


def resident_bytes(adata_manager: AnnDataManager, n_samples: int) -> int:
    """Bytes of ``n_samples`` samples held densely on a device (float32 data and masks, the indices)."""
    n_features = sum(
        adata_manager.get_from_registry(x_key(m)).shape[1] + 2 for m in registered_modalities(adata_manager)
    )
    n_features += adata_manager.summary_stats.get("n_covariates", 0)
    return n_samples * (4 * n_features + 8)


class DeviceBatchSampler:
    """Minibatches of positions as index tensors on the dataset's device; the shuffle is one permutation per epoch.

    The permutation is drawn as :class:`torch.utils.data.RandomSampler` draws it (a seed from torch's global
    generator, then ``randperm`` on the host), so the minibatches equal those of the host loader for the same seed.
    """

    def __init__(self, n: int, batch_size: int, shuffle: bool, drop_last: bool, device):
        self.n, self.batch_size, self.shuffle, self.drop_last, self.device = n, batch_size, shuffle, drop_last, device

    def __len__(self) -> int:
        return self.n // self.batch_size if self.drop_last else -(-self.n // self.batch_size)

    def __iter__(self):
        if self.shuffle:
            seed = int(torch.empty((), dtype=torch.int64).random_().item())
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed))
        else:
            order = torch.arange(self.n)
        order = order.to(self.device)
        for i in range(len(self)):
            yield order[i * self.batch_size : (i + 1) * self.batch_size]


class POEMSDataLoader(DataLoader):
    """Minibatch loader over a :class:`MultiModalDataset` (same arguments as scvi's ``AnnDataLoader``).

    Parameters
    ----------
    adata_manager
        Manager of a registered MuData.
    indices
        Positions or boolean mask of the samples to load; ``None`` loads all.
    batch_size
        Minibatch size (per process with ``distributed_sampler``).
    shuffle
        Shuffle the samples each epoch.
    drop_last
        Drop a last incomplete minibatch.
    distributed_sampler
        Split minibatches across DDP processes with scvi's ``BatchDistributedSampler``.
    device
        Hold the samples on this device and draw minibatches there (:class:`DeviceBatchSampler`); ``None`` reads
        each minibatch from the registered data. Not with ``distributed_sampler``.
    **kwargs
        Passed to :class:`torch.utils.data.DataLoader`; scvi-only options that do not apply here are ignored.

    """

    def __init__(
        self,
        adata_manager: AnnDataManager,
        indices=None,
        batch_size: int = 128,
        shuffle: bool = False,
        drop_last: bool = False,
        distributed_sampler: bool = False,
        drop_dataset_tail: bool = False,
        device: torch.device | str | None = None,
        **kwargs,
    ):
        if device is not None and distributed_sampler:
            raise ValueError("device (samples held on the device) does not combine with distributed_sampler.")
        if indices is None:
            indices = np.arange(adata_manager.adata.n_obs)
        indices = np.asarray(indices)
        if indices.dtype == bool:
            indices = np.flatnonzero(indices)
        for key in ("load_sparse_tensor", "data_and_attributes", "iter_ndarray", "sampler"):
            kwargs.pop(key, None)
        self.indices = indices
        dataset = MultiModalDataset(adata_manager, indices, device=device)
        if device is not None:
            sampler = DeviceBatchSampler(len(dataset), batch_size, shuffle, drop_last, device)
            kwargs["num_workers"] = 0  # the data is on the device already
            kwargs.pop("pin_memory", None)
        elif distributed_sampler:
            sampler = BatchDistributedSampler(
                dataset,
                batch_size=batch_size,
                drop_last=drop_last,
                drop_dataset_tail=drop_dataset_tail,
                shuffle=shuffle,
            )
        else:
            base = RandomSampler(dataset) if shuffle else SequentialSampler(dataset)
            sampler = BatchSampler(base, batch_size=batch_size, drop_last=drop_last)
        super().__init__(dataset, sampler=sampler, batch_size=None, **kwargs)


class POEMSDataSplitter(DataSplitter):
    """scvi's train/validation/test splitter, loading with :class:`POEMSDataLoader`.

    Parameters
    ----------
    *args, **kwargs
        Those of :class:`scvi.dataloaders.DataSplitter`.
    load_on_device
        Hold the training and validation samples on the training device: ``None`` (default) does so on an
        accelerator when they take at most a quarter of its free memory, in single-process training; ``True``
        does so whenever training runs in one process (also on CPU, where it saves little: the data is in host
        memory already); ``False`` never.

    """

    data_loader_cls = POEMSDataLoader

    def __init__(self, *args, load_on_device: bool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if load_on_device not in (None, True, False):
            raise ValueError(f"load_on_device must be None, True or False, got {load_on_device!r}.")
        self.load_on_device = load_on_device

    def _device(self):
        """The device to hold the samples on, or ``None``."""
        trainer = getattr(self, "trainer", None)
        if self.load_on_device is False or trainer is None or trainer.world_size > 1:
            return None
        device = trainer.strategy.root_device
        if self.load_on_device:
            return device
        if device.type != "cuda":
            return None
        need = resident_bytes(self.adata_manager, len(self.train_idx) + len(self.val_idx))
        return device if need <= torch.cuda.mem_get_info(device)[0] // 4 else None

    def train_dataloader(self):
        """Training loader (held on the device when :meth:`_device` says so)."""
        return self.data_loader_cls(
            self.adata_manager,
            indices=self.train_idx,
            shuffle=True,
            drop_last=self.drop_last,
            pin_memory=self.pin_memory,
            device=self._device(),
            **self.data_loader_kwargs,
        )

    def val_dataloader(self):
        """Validation loader, or ``None`` without validation samples."""
        if len(self.val_idx) == 0:
            return None
        return self.data_loader_cls(
            self.adata_manager,
            indices=self.val_idx,
            shuffle=False,
            drop_last=False,
            pin_memory=self.pin_memory,
            device=self._device(),
            **self.data_loader_kwargs,
        )
