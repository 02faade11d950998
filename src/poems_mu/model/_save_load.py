"""Saving and loading a POEMS model as plain files that loading cannot turn into running code."""

from __future__ import annotations

import contextvars
import os
import warnings

from mudata import MuData

from poems_mu._model_files import (
    MDATA_FILE,
    STATE_FILE,
    InvalidModelFolder,
    model_record,
    read_model_files,
    write_folder,
    write_model_files,
)
from poems_mu.data._checks import check_mudata, check_same_features

#: True while :meth:`SaveLoadMixin.load` builds a model: what construction would compute from the data only to start
#: training (the feature sets' starting links and their test) is skipped, the saved state replaces it
LOADING: contextvars.ContextVar[bool] = contextvars.ContextVar("poems_mu_loading", default=False)


class SaveLoadMixin:
    """``save`` and ``load`` in plain files (JSON, tensors, npz; no pickles): see :mod:`poems_mu._model_files`."""

    def save(
        self,
        dir_path: str,
        prefix: str | None = None,
        overwrite: bool = False,
        save_anndata: bool = False,
        **anndata_write_kwargs,
    ) -> None:
        """Save the model as plain files (JSON, tensors, npz): loading it can never run code.

        The folder is written next to ``dir_path`` and moved into place at the end, so a crash mid-save leaves an
        earlier save intact.

        Parameters
        ----------
        dir_path
            Directory to write.
        prefix
            Prefix of the file names.
        overwrite
            Replace an existing directory.
        save_anndata
            Also write the MuData (``mdata.h5mu``).
        **anndata_write_kwargs
            Passed to :meth:`mudata.MuData.write`.

        """
        prefix = prefix or ""
        record, state, arrays = model_record(self)

        def write(tmp: str) -> None:
            write_model_files(tmp, prefix, record, state, arrays)
            if save_anndata:
                self.adata.write(os.path.join(tmp, prefix + MDATA_FILE), **anndata_write_kwargs)

        write_folder(dir_path, write, overwrite)

    @classmethod
    def load(
        cls,
        dir_path: str,
        adata: MuData | None = None,
        prefix: str | None = None,
        accelerator: str = "auto",
        device: int | str = "auto",
    ):
        """Load a model saved by :meth:`save` (or a training checkpoint), checking ``adata`` against its features.

        Parameters
        ----------
        dir_path
            Directory written by :meth:`save` or by ``train(checkpoint_dir=...)``.
        adata
            MuData with the same modalities and features (in the same order) as the training data; ``None`` loads
            the MuData saved with the model.
        prefix
            Prefix of the file names.
        accelerator, device
            Where to put the model (scvi's device selection).

        """
        from scvi.model.base._save_load import _initialize_model

        prefix = prefix or ""
        dir_path = os.fspath(dir_path)
        record, state, arrays = read_model_files(dir_path, prefix, cls.__name__)
        registry = record["registry"]
        modalities = list(registry["setup_args"]["modalities"])
        if adata is None:
            mdata_path = os.path.join(dir_path, prefix + MDATA_FILE)
            if not os.path.exists(mdata_path):
                raise ValueError(f"{dir_path} holds no MuData (saved without save_anndata=True); pass `adata`.")
            import mudata

            adata = mudata.read_h5mu(mdata_path)
        check_mudata(adata)
        check_same_features(adata, modalities, record["var_names"])
        cls.setup_mudata(adata, source_registry=registry, **registry["setup_args"])
        attrs = {"init_params_": record["init_params"], **record["attributes"]}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*constant.*")  # told at training time already
            token = LOADING.set(True)
            try:
                model = _initialize_model(cls, adata, registry, attrs, None)
            finally:
                LOADING.reset(token)
        for name, value in arrays.items():
            setattr(model, name, value)
        model.history_ = record["history"]
        try:
            model.module.load_state_dict(state)
        except RuntimeError as err:
            raise InvalidModelFolder(
                dir_path, f"{prefix + STATE_FILE} does not fit the model it describes ({err})"
            ) from None
        _, _, device = _parse_device(accelerator, device)
        model.to_device(device)
        model.module.eval()
        return model


def _parse_device(accelerator, device):
    from scvi.model._utils import parse_device_args

    return parse_device_args(
        accelerator=accelerator, devices=device, return_device="torch", validate_single_device=True
    )
