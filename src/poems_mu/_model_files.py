"""Model folders that loading cannot turn into running code.

scvi-tools saves a model as one pickle (``model.pt``, read with ``torch.load(weights_only=False)``), so loading a
folder from someone else can run anything. A POEMS folder holds only plain formats:

* ``poems_model.json`` — format tag and version, model class, registry (numpy arrays through a tagged codec),
  init arguments, feature names, training summary, history, and whatever else the model keeps;
* ``poems_state.pt`` — the module's state dict, tensors only, read with ``torch.load(weights_only=True)``;
* ``poems_arrays.npz`` — the sample split, read with ``allow_pickle=False``;
* ``mdata.h5mu`` — with ``save(save_anndata=True)``, the MuData.

Anything that does not read back as exactly that is "not a valid poems_mu model folder", with the file named. A
scvi-tools folder (``model.pt``, a pickle) is refused without being opened.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
import torch

FORMAT = "poems_mu.model"
FORMAT_VERSION = 1
JSON_FILE, STATE_FILE, ARRAYS_FILE, MDATA_FILE = "poems_model.json", "poems_state.pt", "poems_arrays.npz", "mdata.h5mu"
SCVI_FILE = "model.pt"
#: the model's attributes that are arrays (npz: the sample split) and the ones written as JSON
SPLIT_ATTRS = ("train_indices_", "validation_indices_", "test_indices_")
JSON_ATTRS = ("is_trained_", "training_summary_", "run_id_", "run_name_", "get_normalized_function_name_")
_ARRAY_DTYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64", "object"}


class InvalidModelFolder(ValueError):
    """A folder that is not, or no longer, a poems_mu model folder; nothing in it was run."""

    def __init__(self, path: str, why: str):
        super().__init__(f"{path} is not a valid poems_mu model folder: {why}")


# -- a plain codec for the registry and the attributes -----------------------------------------------------------
def to_plain(obj):
    """``obj`` as JSON-able values; numpy arrays and scalars tagged so that :func:`from_plain` restores them."""
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "OUS":
            return {"__ndarray__": [str(v) for v in obj.ravel().tolist()], "dtype": "object", "shape": list(obj.shape)}
        return {"__ndarray__": obj.ravel().tolist(), "dtype": obj.dtype.name, "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    raise TypeError(f"cannot write a {type(obj).__name__} into a model folder")


def from_plain(obj):
    """Inverse of :func:`to_plain`."""
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            dtype = obj.get("dtype")
            if dtype not in _ARRAY_DTYPES:
                raise ValueError(f"array of unknown dtype {dtype!r}")
            return np.asarray(obj["__ndarray__"], dtype=dtype).reshape(obj["shape"])
        return {k: from_plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_plain(v) for v in obj]
    return obj


def history_to_plain(history: Mapping[str, pd.DataFrame]) -> dict:
    return {k: to_plain(df.to_dict(orient="split")) for k, df in history.items()}


def history_from_plain(history: Mapping[str, dict]) -> dict[str, pd.DataFrame]:
    out = {}
    for k, d in history.items():
        df = pd.DataFrame(d["data"], index=d["index"], columns=d["columns"], dtype=float)
        df.index.name = "epoch"
        out[k] = df
    return out


def _json_constant(name: str):
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[name]


# -- writing ------------------------------------------------------------------------------------------------------
def model_record(model) -> tuple[dict, dict[str, torch.Tensor], dict[str, np.ndarray]]:
    """What a model folder holds: the JSON record, the module's tensors, the sample-split arrays."""
    state = {k: v.detach().cpu().clone() for k, v in model.module.state_dict().items()}
    attrs = {a: getattr(model, a) for a in JSON_ATTRS if hasattr(model, a)}
    arrays = {a: np.asarray(getattr(model, a)) for a in SPLIT_ATTRS if getattr(model, a, None) is not None}
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_class": type(model).__name__,
        "poems_mu_version": _version(),
        "registry": to_plain(model.adata_manager.registry),
        "init_params": to_plain(model.init_params_),
        "var_names": {m: [str(v) for v in model.adata.mod[m].var_names] for m in model.modalities},
        "attributes": to_plain(attrs),
        "history": history_to_plain(getattr(model, "history_", None) or {}),
    }
    return record, state, arrays


def _version() -> str:
    from poems_mu import __version__

    return __version__


def write_folder(dir_path: str, write: Callable[[str], None], overwrite: bool) -> None:
    """Fill a new folder with ``write(tmp)``, then put it at ``dir_path`` atomically (an older one kept on error)."""
    dir_path = os.path.abspath(dir_path)
    if os.path.exists(dir_path) and not overwrite:
        raise ValueError(f"{dir_path} already exists; pass overwrite=True or choose another directory.")
    parent = os.path.dirname(dir_path)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(dir_path)}.tmp-{uuid.uuid4().hex}")
    backup = None
    try:
        os.makedirs(tmp)
        write(tmp)
        if os.path.exists(dir_path):
            backup = f"{tmp}.old"
            os.replace(dir_path, backup)
        os.replace(tmp, dir_path)
    except BaseException:
        if backup is not None and os.path.exists(backup) and not os.path.exists(dir_path):
            os.replace(backup, dir_path)  # the new save failed after the old one was moved aside: put it back
        raise
    finally:
        if os.path.exists(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    if backup is not None:
        shutil.rmtree(backup, ignore_errors=True)


def write_model_files(path: str, prefix: str, record: dict, state: dict, arrays: dict, extra: Mapping | None = None):
    """Write the three files of a model folder into the existing directory ``path``."""
    if extra:
        record = {**record, **extra}
    with open(os.path.join(path, prefix + JSON_FILE), "w") as f:
        json.dump(record, f)
    torch.save(state, os.path.join(path, prefix + STATE_FILE))
    np.savez(os.path.join(path, prefix + ARRAYS_FILE), **arrays)


# -- reading ------------------------------------------------------------------------------------------------------
def read_model_files(dir_path: str, prefix: str, model_class: str) -> tuple[dict, dict, dict]:
    """``(record, state, arrays)`` of a model folder, each file checked; :class:`InvalidModelFolder` otherwise."""
    dir_path = os.fspath(dir_path)
    if not os.path.isdir(dir_path):
        raise InvalidModelFolder(dir_path, "no such directory")
    json_path = os.path.join(dir_path, prefix + JSON_FILE)
    if not os.path.exists(json_path):
        if os.path.exists(os.path.join(dir_path, prefix + SCVI_FILE)):
            raise InvalidModelFolder(
                dir_path,
                f"it holds {prefix + SCVI_FILE}, a pickle (a scvi-tools model folder), and no {prefix + JSON_FILE}. "
                "Loading a pickle can run any code it contains, so poems_mu never opens one.",
            )
        raise InvalidModelFolder(dir_path, f"{prefix + JSON_FILE} is missing")
    try:
        with open(json_path) as f:
            record = json.load(f, parse_constant=_json_constant)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InvalidModelFolder(dir_path, f"{prefix + JSON_FILE} does not read as JSON ({err})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InvalidModelFolder(dir_path, f"{prefix + JSON_FILE} is not a poems_mu model record")
    if record.get("format_version") != FORMAT_VERSION:
        raise InvalidModelFolder(
            dir_path, f"format version {record.get('format_version')!r}; this poems_mu reads {FORMAT_VERSION}"
        )
    if record.get("model_class") != model_class:
        raise InvalidModelFolder(dir_path, f"it holds a {record.get('model_class')!r} model, not a {model_class!r} one")
    for key in ("registry", "init_params", "var_names", "attributes", "history"):
        if key not in record:
            raise InvalidModelFolder(dir_path, f"{prefix + JSON_FILE} lacks {key!r}")
    try:
        record["registry"] = from_plain(record["registry"])
        record["init_params"] = from_plain(record["init_params"])
        record["attributes"] = from_plain(record["attributes"])
        record["history"] = history_from_plain(record["history"])
    except (TypeError, ValueError, KeyError) as err:
        raise InvalidModelFolder(dir_path, f"{prefix + JSON_FILE} holds malformed values ({err})") from None
    state_path = os.path.join(dir_path, prefix + STATE_FILE)
    try:
        # weights_only: tensors and plain containers only; any other pickled object is refused, never built
        state = torch.load(state_path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - every failure means the same thing here
        raise InvalidModelFolder(dir_path, f"{prefix + STATE_FILE} does not read as tensors ({err})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InvalidModelFolder(dir_path, f"{prefix + STATE_FILE} is not a state dict of tensors")
    arrays_path = os.path.join(dir_path, prefix + ARRAYS_FILE)
    try:
        with np.load(arrays_path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as err:  # noqa: BLE001
        raise InvalidModelFolder(dir_path, f"{prefix + ARRAYS_FILE} does not read as arrays ({err})") from None
    return record, state, arrays
