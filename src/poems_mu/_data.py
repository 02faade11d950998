"""Minibatches from a MuData whose modalities need not cover every sample.

scvi's stock loader indexes every modality with the same row numbers, which is only right for fully paired MuData.
Here each modality's rows are gathered through ``mdata.obsmap[mod]`` (0 = the sample lacks the modality); absent
rows are zero-filled inside the minibatch and flagged in an explicit observed mask. The user's AnnData objects
are never padded or copied.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from scvi.data import AnnDataManager
from scvi.dataloaders import BatchDistributedSampler, DataSplitter
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, SequentialSampler

from ._constants import INDEX_KEY, mask_key, x_key


def registered_modalities(adata_manager: AnnDataManager) -> list[str]:
    """Modality names registered by :meth:`POEMS.setup_mudata`, in registry order."""
    return list(adata_manager.registry["setup_args"]["modalities"])


def all_nan_rows(data) -> np.ndarray:
    """Boolean mask of the rows of ``data`` that are entirely NaN."""
    if sparse.issparse(data):
        data = data.toarray()
    data = np.asarray(data)
    if not np.issubdtype(data.dtype, np.floating):
        return np.zeros(data.shape[0], dtype=bool)
    return np.isnan(data).all(axis=1)


def modality_rows(mdata, modality: str, data=None, nan_rows_as_missing: bool = False) -> np.ndarray:
    """Row of each MuData sample in ``mdata[modality]``; −1 where the sample lacks the modality.

    With ``nan_rows_as_missing``, a sample whose whole row in ``data`` is NaN also counts as lacking it.
    """
    rows = np.asarray(mdata.obsmap[modality]).astype(np.int64).ravel() - 1
    if nan_rows_as_missing and data is not None:
        nan_rows = np.flatnonzero(all_nan_rows(data))
        rows[np.isin(rows, nan_rows)] = -1
    return rows


def observed_rows(adata_manager: AnnDataManager) -> list[np.ndarray]:
    """:func:`modality_rows` of every registered modality, honouring ``nan_rows_as_missing``."""
    mdata = adata_manager.adata
    nan_missing = bool(adata_manager.registry["setup_args"].get("nan_rows_as_missing", False))
    return [
        modality_rows(mdata, m, adata_manager.get_from_registry(x_key(m)), nan_missing)
        for m in registered_modalities(adata_manager)
    ]


class MultiModalDataset(Dataset):
    """Samples ``indices`` of a registered MuData; ``dataset[list_of_positions]`` returns a whole minibatch.

    Parameters
    ----------
    adata_manager
        Manager of a MuData registered with :meth:`POEMS.setup_mudata`.
    indices
        Positions (in the MuData) of the samples this dataset serves.

    """

    def __init__(self, adata_manager: AnnDataManager, indices: np.ndarray):
        self.indices = np.asarray(indices, dtype=np.int64)
        self.modalities = registered_modalities(adata_manager)
        self.data = [adata_manager.get_from_registry(x_key(m)) for m in self.modalities]
        self.rows = [rows[self.indices] for rows in observed_rows(adata_manager)]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, positions) -> dict[str, torch.Tensor]:
        positions = np.atleast_1d(np.asarray(positions, dtype=np.int64))
        batch = {INDEX_KEY: torch.from_numpy(self.indices[positions])}
        for mod, data, rows in zip(self.modalities, self.data, self.rows, strict=True):
            r = rows[positions]
            observed = r >= 0
            x = np.zeros((len(positions), data.shape[1]), dtype=np.float32)
            if observed.any():
                block = data[r[observed]]
                if sparse.issparse(block):
                    block = block.toarray()
                x[observed] = np.asarray(block, dtype=np.float32)
            batch[x_key(mod)] = torch.from_numpy(x)
            batch[mask_key(mod)] = torch.from_numpy(observed.astype(np.float32))
        return batch


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
        **kwargs,
    ):
        if indices is None:
            indices = np.arange(adata_manager.adata.n_obs)
        indices = np.asarray(indices)
        if indices.dtype == bool:
            indices = np.flatnonzero(indices)
        for key in ("load_sparse_tensor", "data_and_attributes", "iter_ndarray", "sampler"):
            kwargs.pop(key, None)
        self.indices = indices
        dataset = MultiModalDataset(adata_manager, indices)
        if distributed_sampler:
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
    """scvi's train/validation/test splitter, loading with :class:`POEMSDataLoader`."""

    data_loader_cls = POEMSDataLoader
