"""Small real data sets shipped inside the package (see ``_data/README.md`` for provenance and licences)."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd

from ._mogonet import DEFAULT_MODALITY_NAMES, build_mudata, read_mogonet

DATA_DIR = Path(__file__).resolve().parent / "_data"

ROSMAP_LABEL_NAMES: tuple[str, ...] = ("NC", "AD")
BREAST_TCGA_SUBTYPES: tuple[str, ...] = ("Basal", "Her2", "LumA")
BREAST_TCGA_MODALITIES: tuple[str, ...] = ("mrna", "mirna", "protein")


def _shipped(relative: str) -> Path:
    path = DATA_DIR / relative
    if not path.exists():
        raise FileNotFoundError(
            f"The bundled data file {str(path)!r} is missing: the poems_mu installation is incomplete "
            "(reinstall the package, or run scripts/make_bundled_datasets.py in a source checkout)."
        )
    return path


def _read_sample_table(path: Path) -> pd.DataFrame:
    """Read a breast_tcga CSV (first column ``sample``, header row of feature names) as float32."""
    frame = pd.read_csv(path, index_col="sample", dtype={"sample": str})
    frame.index.name = None
    return frame.astype(np.float32)


def rosmap() -> md.MuData:
    """ROSMAP Alzheimer's disease vs normal control data set (MOGONET preprocessing), shipped with the package.

    351 samples (245 train, 106 test as published) with three fully paired modalities, each min-max scaled to
    [0, 1] per feature by the source: ``"mrna"`` (200 genes, Ensembl ids), ``"methylation"`` (200 CpG probes) and
    ``"mirna"`` (200 miRNAs). Read with :func:`~poems_mu.datasets.read_mogonet` from the copy of MOGONET's
    ``ROSMAP`` folder inside the package (txWang/MOGONET, commit 32d9066b, MIT licence).

    Returns
    -------
    :class:`~mudata.MuData`
        A new object on every call. ``mdata.obs["label"]`` is categorical with categories ``("NC", "AD")``,
        ``mdata.obs["split"]`` is categorical ``"train"``/``"test"``; samples are named ``"train_0"``, ...,
        ``"test_0"``, ...

    Examples
    --------
    >>> import poems_mu
    >>> mdata = poems_mu.datasets.rosmap()
    >>> mdata.n_obs
    351

    """
    return read_mogonet(_shipped("rosmap"), modality_names=DEFAULT_MODALITY_NAMES, label_names=ROSMAP_LABEL_NAMES)


def breast_tcga() -> md.MuData:
    """TCGA breast cancer subset of mixOmics (``breast.TCGA``), shipped with the package.

    220 samples of three PAM50 subtypes (LumA 110, Basal 66, Her2 44), split as published into 150 training and 70
    test samples. Modalities: ``"mrna"`` (220 × 200, log expression), ``"mirna"`` (220 × 184, log expression) and
    ``"protein"`` (150 × 142, reverse-phase protein array). The 70 test samples have no protein data: they are
    absent from the ``"protein"`` :class:`~anndata.AnnData` (not padded), so ``mdata.obsmap["protein"]`` is 0 for
    them — a real missing-modality case.

    Returns
    -------
    :class:`~mudata.MuData`
        A new object on every call, with float32 ``.X`` (values as published, rounded to float32). Samples are named by
        their TCGA short ids. ``mdata.obs`` holds the categorical columns ``"subtype"`` (categories
        ``("Basal", "Her2", "LumA")``), ``"label"`` (a copy of ``"subtype"`` for code expecting ``"label"``) and
        ``"split"`` (``"train"``/``"test"``).

    Examples
    --------
    >>> import poems_mu
    >>> mdata = poems_mu.datasets.breast_tcga()
    >>> mdata.n_obs, mdata["protein"].n_obs
    (220, 150)

    """
    folder = _shipped("breast_tcga")
    labels = pd.read_csv(_shipped("breast_tcga/labels.csv.gz"), dtype=str)
    if list(labels.columns) != ["sample", "subtype", "split"] or not labels["sample"].is_unique:
        raise ValueError("breast_tcga labels.csv must have the unique columns sample, subtype, split.")
    samples = {split: labels.loc[labels["split"] == split, "sample"].tolist() for split in ("train", "test")}

    modalities: dict[str, ad.AnnData] = {}
    for name in BREAST_TCGA_MODALITIES:
        parts = []
        for split in ("train", "test"):
            path = folder / f"{name}_{split}.csv.gz"
            if not path.exists():
                continue  # the protein modality has no test file: those samples have no protein data
            frame = _read_sample_table(path)
            if frame.index.tolist() != samples[split]:
                raise ValueError(f"{path.name}: sample ids differ from the {split} samples listed in labels.csv.")
            parts.append(frame)
        if not parts:
            raise FileNotFoundError(f"No bundled data file for the breast_tcga modality {name!r} in {str(folder)!r}.")
        frame = pd.concat(parts, axis=0)
        modalities[name] = ad.AnnData(
            X=frame.to_numpy(dtype=np.float32),
            obs=pd.DataFrame(index=pd.Index(frame.index.astype(str))),
            var=pd.DataFrame(index=pd.Index(frame.columns.astype(str))),
        )

    subtype = pd.Categorical(labels["subtype"], categories=list(BREAST_TCGA_SUBTYPES))
    if subtype.isna().any():
        raise ValueError(f"breast_tcga labels.csv holds subtypes outside {BREAST_TCGA_SUBTYPES}.")
    obs = pd.DataFrame(
        {
            "subtype": subtype,
            "label": subtype.copy(),
            "split": pd.Categorical(labels["split"], categories=["train", "test"]),
        },
        index=pd.Index(labels["sample"]),
    )
    return build_mudata(modalities, obs)
