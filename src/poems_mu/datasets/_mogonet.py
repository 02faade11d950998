"""Reader for the MOGONET multi-omics folder format."""

from __future__ import annotations

import gzip
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd

DEFAULT_MODALITY_NAMES: tuple[str, ...] = ("mrna", "methylation", "mirna")


def _locate(folder: Path, stem: str, what: str) -> Path:
    """Return ``folder/stem`` or its gzip-compressed variant ``folder/stem.gz``."""
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"MOGONET folder {str(folder)!r} is missing the file {stem!r} ({what}).")


def _read_matrix(path: Path) -> np.ndarray:
    """Read a header-less, comma-separated numeric matrix as float32."""
    try:
        frame = pd.read_csv(path, header=None, dtype=np.float64)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path.name}: the file is empty.") from None
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path.name}: could not parse the file as a numeric matrix without header ({err}).") from err
    return frame.to_numpy(dtype=np.float64).astype(np.float32)


def _read_labels(path: Path) -> np.ndarray:
    """Read a MOGONET label file (one integer-valued number per line) as int64 codes."""
    values = _read_matrix(path).astype(np.float64)
    if values.shape[1] != 1:
        raise ValueError(f"{path.name}: expected one label per line, found {values.shape[1]} columns.")
    values = values[:, 0]
    if not np.all(np.isfinite(values)) or np.any(values != np.round(values)) or np.any(values < 0):
        raise ValueError(f"{path.name}: labels must be non-negative integer codes (0, 1, 2, ...).")
    return values.astype(np.int64)


def _read_lines(path: Path) -> list[str]:
    """Read one name per line (no CSV parsing, so names such as ``NA`` stay strings)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline=None) as handle:
        lines = [line.rstrip("\r\n") for line in handle]
    while lines and lines[-1].strip() == "":
        lines.pop()
    return lines


def _check_modality_names(modality_names: Sequence[str]) -> list[str]:
    if isinstance(modality_names, str):
        raise TypeError("modality_names must be a sequence of names, not a single string.")
    names = [str(name) for name in modality_names]
    if len(names) == 0:
        raise ValueError("modality_names must contain at least one name.")
    if any(name == "" or ":" in name for name in names):
        raise ValueError(f"modality_names must be non-empty and must not contain ':', got {names}.")
    if len(set(names)) != len(names):
        raise ValueError(f"modality_names must be unique, got {names}.")
    return names


def _labels_to_categorical(
    codes: np.ndarray, label_names: Sequence[str] | None, files: tuple[str, str]
) -> pd.Categorical:
    if label_names is None:
        categories = [str(code) for code in np.unique(codes)]
        return pd.Categorical([str(code) for code in codes], categories=categories)
    if isinstance(label_names, str):
        raise TypeError("label_names must be a sequence of names, not a single string.")
    names = [str(name) for name in label_names]
    if len(set(names)) != len(names):
        raise ValueError(f"label_names must be unique, got {names}.")
    if codes.size and codes.max() >= len(names):
        raise ValueError(
            f"{files[0]} / {files[1]} contain the label code {int(codes.max())}, but only {len(names)} "
            f"label_names were given ({names}); codes must lie in 0..{len(names) - 1}."
        )
    return pd.Categorical.from_codes(codes, categories=names)


def _make_unique(names: list[str], context: str) -> list[str]:
    index = pd.Index(names)
    if index.is_unique:
        return names
    warnings.warn(f"{context}: feature names are not unique; duplicates get suffixes '-1', '-2', ...", stacklevel=3)
    return list(ad.utils.make_index_unique(index))


def build_mudata(modalities: dict[str, ad.AnnData], obs: pd.DataFrame) -> md.MuData:
    """Assemble a :class:`~mudata.MuData` and set its global ``obs`` columns.

    The ``pull_on_update`` option of mudata is set to ``False`` only while the object is built (which silences
    mudata 0.3's FutureWarning and keeps modality columns out of the global ``obs``); the previous value is restored.

    Parameters
    ----------
    modalities : dict[str, anndata.AnnData]
        Mapping from modality name to :class:`~anndata.AnnData` (observations may differ between modalities).
    obs : pandas.DataFrame
        Global observation annotations, indexed by observation name; must cover the union of the modalities'
        observations.

    Returns
    -------
    :class:`~mudata.MuData`
        The assembled object, observations in the order of ``obs``.

    """
    with md.set_options(pull_on_update=False):
        mdata = md.MuData(modalities)
        if not obs.index.is_unique:
            raise ValueError("obs must have unique observation names.")
        if set(mdata.obs_names) != set(obs.index):
            raise ValueError("obs must hold exactly the union of the modalities' observations.")
        if not mdata.obs_names.equals(obs.index):
            mdata = mdata[obs.index].copy()
        for column in obs.columns:
            mdata.obs[column] = obs[column].reindex(mdata.obs_names)
    return mdata


def read_mogonet(
    folder: str | os.PathLike,
    modality_names: Sequence[str] = DEFAULT_MODALITY_NAMES,
    label_names: Sequence[str] | None = None,
) -> md.MuData:
    """Read a multi-omics data set stored in the MOGONET folder format.

    The format, used by MOGONET (Wang et al., Nat. Commun. 2021) for its ROSMAP and TCGA BRCA sets, holds for each
    modality ``i = 1..V`` the files ``{i}_tr.csv`` and ``{i}_te.csv`` (samples × features, comma-separated, no
    header) and ``{i}_featname.csv`` (one feature name per line), plus ``labels_tr.csv`` and ``labels_te.csv`` (one
    integer class code per line). Every file may also be gzip-compressed (``{i}_tr.csv.gz``, ...). All modalities
    hold all samples (the format is fully paired).

    Parameters
    ----------
    folder : str or os.PathLike
        Path to the folder holding the files.
    modality_names : sequence of str, default ``("mrna", "methylation", "mirna")``
        Names given to modalities ``1..V``, in file order; ``V = len(modality_names)`` must equal the number of
        modalities in the folder. The default fits MOGONET's ROSMAP and BRCA folders.
    label_names : sequence of str, optional
        Optional class names: code ``k`` in the label files becomes ``label_names[k]``. Without them the label is the
        string of the integer code.

    Returns
    -------
    :class:`~mudata.MuData`
        One float32 :class:`~anndata.AnnData` per modality (all samples, features named from ``{i}_featname.csv``).
        Samples are named ``"train_0"``, ``"train_1"``, ..., ``"test_0"``, ... in file order. ``mdata.obs`` holds
        ``"label"`` (categorical; categories in code order, all ``label_names`` when given) and ``"split"``
        (categorical, ``"train"``/``"test"``).

    Raises
    ------
    FileNotFoundError
        If the folder or one of the expected files is missing (the message names the file).
    ValueError
        If the folder holds more modalities than ``modality_names``, a file cannot be parsed, row counts of data
        and labels disagree, column counts of the train and test files disagree, the number of feature names differs
        from the number of columns, or a label code has no entry in ``label_names``.

    Examples
    --------
    >>> mdata = read_mogonet("MOGONET/ROSMAP", label_names=("NC", "AD"))  # doctest: +SKIP
    >>> mdata.obs["label"].value_counts()  # doctest: +SKIP

    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"MOGONET folder {str(folder)!r} does not exist or is not a directory.")
    names = _check_modality_names(modality_names)
    n_mod = len(names)

    for extra in (f"{n_mod + 1}_tr.csv", f"{n_mod + 1}_tr.csv.gz"):
        if (folder / extra).exists():
            raise ValueError(
                f"MOGONET folder {str(folder)!r} holds {extra!r}, i.e. more than the {n_mod} modalities named in "
                f"modality_names={tuple(names)}; pass one name per modality."
            )

    labels_tr_path = _locate(folder, "labels_tr.csv", "training labels")
    labels_te_path = _locate(folder, "labels_te.csv", "test labels")
    paths = {}
    for i, name in enumerate(names, start=1):
        for kind, what in (("tr", "training data"), ("te", "test data"), ("featname", "feature names")):
            paths[i, kind] = _locate(folder, f"{i}_{kind}.csv", f"{what} of modality {i} {name!r}")

    labels_tr = _read_labels(labels_tr_path)
    labels_te = _read_labels(labels_te_path)
    n_tr, n_te = labels_tr.shape[0], labels_te.shape[0]

    obs_names = [f"train_{j}" for j in range(n_tr)] + [f"test_{j}" for j in range(n_te)]
    modalities: dict[str, ad.AnnData] = {}
    for i, name in enumerate(names, start=1):
        x_tr = _read_matrix(paths[i, "tr"])
        x_te = _read_matrix(paths[i, "te"])
        for x, path, labels_path, n in (
            (x_tr, paths[i, "tr"], labels_tr_path, n_tr),
            (x_te, paths[i, "te"], labels_te_path, n_te),
        ):
            if x.shape[0] != n:
                raise ValueError(f"{path.name} has {x.shape[0]} rows but {labels_path.name} has {n} labels.")
        if x_te.shape[1] != x_tr.shape[1]:
            raise ValueError(
                f"{paths[i, 'te'].name} has {x_te.shape[1]} columns but {paths[i, 'tr'].name} has {x_tr.shape[1]}."
            )
        features = _read_lines(paths[i, "featname"])
        if len(features) != x_tr.shape[1]:
            raise ValueError(
                f"{paths[i, 'featname'].name} lists {len(features)} feature names but {paths[i, 'tr'].name} has "
                f"{x_tr.shape[1]} columns."
            )
        features = _make_unique(features, paths[i, "featname"].name)
        modalities[name] = ad.AnnData(
            X=np.concatenate([x_tr, x_te], axis=0),
            obs=pd.DataFrame(index=pd.Index(obs_names)),
            var=pd.DataFrame(index=pd.Index(features)),
        )

    label = _labels_to_categorical(
        np.concatenate([labels_tr, labels_te]), label_names, (labels_tr_path.name, labels_te_path.name)
    )
    obs = pd.DataFrame(
        {
            "label": label,
            "split": pd.Categorical(["train"] * n_tr + ["test"] * n_te, categories=["train", "test"]),
        },
        index=pd.Index(obs_names),
    )
    return build_mudata(modalities, obs)
