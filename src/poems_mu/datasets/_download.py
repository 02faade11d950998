"""Download of MOGONET's TCGA BRCA data set (the POEMS paper's main benchmark)."""

from __future__ import annotations

import os
from pathlib import Path

import mudata as md
import numpy as np
import pooch

from ._mogonet import DEFAULT_MODALITY_NAMES, read_mogonet

BRCA_LABEL_NAMES: tuple[str, ...] = ("Normal-like", "Basal-like", "HER2-enriched", "Luminal A", "Luminal B")

MOGONET_REPO = "txWang/MOGONET"
MOGONET_COMMIT = "32d9066b7fe289b3f7cdb496a5668834079c274c"
BRCA_BASE_URL = f"https://raw.githubusercontent.com/{MOGONET_REPO}/{MOGONET_COMMIT}/BRCA/"
BRCA_FOLDER_URL = f"https://github.com/{MOGONET_REPO}/tree/{MOGONET_COMMIT}/BRCA"

# SHA-256 of the files of MOGONET's BRCA folder. The hashes were computed from the file contents as stored in a
# public-code index (the download could not be made from the machine this package was written on); they were checked
# against the published sizes, line counts and class counts (115/131/46/436/147). That index does not hold the six
# data matrices (6-15 MB each), so no hash could be recorded for them: they are downloaded from the URL pinned to the
# full commit hash above (content-addressed by git, so it cannot change) and then checked by shape and finiteness in
# ``_check_brca`` (a truncated or damaged download fails there). To record their hashes, download the folder and
# run ``python scripts/make_bundled_datasets.py --hash-mogonet BRCA``.
BRCA_REGISTRY: dict[str, str | None] = {
    "1_featname.csv": "sha256:54852a67a02d8d1f4d5163ff263d394007abe6b9e2b10b70424731c63a9713a6",
    "2_featname.csv": "sha256:18def517171adc99f25c87838f293814e58a94343daf032b4c8c476dd4d5a130",
    "3_featname.csv": "sha256:8611468fc59e71ec3a970611d0d2060b84f8af1d27c5caeb65739e895467516e",
    "labels_tr.csv": "sha256:0c18a7a7f270b86190ec32706329cfefed23c17b61806521a01199fea5e53a63",
    "labels_te.csv": "sha256:35dcd5a03854891d145deed501af40343bd460057a1ab89dcc4c6dd6b82895fe",
    "1_tr.csv": None,
    "1_te.csv": None,
    "2_tr.csv": None,
    "2_te.csv": None,
    "3_tr.csv": None,
    "3_te.csv": None,
}

# Published layout of the set: 612 training and 263 test samples; mRNA, DNA methylation and miRNA features.
BRCA_N_OBS: dict[str, int] = {"train": 612, "test": 263}
BRCA_N_VARS: dict[str, int] = {"mrna": 1000, "methylation": 1000, "mirna": 503}


def _cache_dir() -> Path:
    return Path(pooch.os_cache("poems_mu")) / f"mogonet_brca_{MOGONET_COMMIT[:8]}"


def _download_brca(folder: Path) -> None:
    """Fetch every file of the BRCA folder into ``folder`` (files already there and valid are not fetched again)."""
    for fname, known_hash in BRCA_REGISTRY.items():
        url = BRCA_BASE_URL + fname
        try:
            pooch.retrieve(url, known_hash=known_hash, fname=fname, path=folder, progressbar=False)
        except ValueError as err:  # pooch's SHA-256 mismatch
            raise ValueError(
                f"The downloaded MOGONET BRCA file {fname!r} failed its integrity check ({err}). Delete "
                f"{str(folder)!r} and retry, or pass path= to a local copy of {BRCA_FOLDER_URL}."
            ) from err
        except OSError as err:  # requests' ConnectionError, Timeout and HTTPError are OSErrors
            raise ConnectionError(
                f"Could not download {url}: {err}\nThis machine seems to be offline (or cannot reach GitHub). "
                f"Download MOGONET's BRCA folder ({BRCA_FOLDER_URL}: 1_tr.csv ... labels_te.csv) on a machine with "
                "internet access and call poems_mu.datasets.tcga_brca(path='/path/to/BRCA')."
            ) from err


def _check_brca(mdata: md.MuData, folder: Path) -> None:
    """Check a downloaded BRCA set against the published shapes."""
    problems = []
    counts = mdata.obs["split"].value_counts()
    for split, n in BRCA_N_OBS.items():
        if counts.get(split, 0) != n:
            problems.append(f"{counts.get(split, 0)} {split} samples instead of {n}")
    for name, n in BRCA_N_VARS.items():
        adata = mdata.mod[name]
        if adata.n_vars != n:
            problems.append(f"{adata.n_vars} {name} features instead of {n}")
        if not np.all(np.isfinite(adata.X)):
            problems.append(f"non-finite {name} values")
    if problems:
        raise ValueError(
            f"The MOGONET BRCA files in {str(folder)!r} do not match the published data set ({'; '.join(problems)}). "
            "Delete that folder to download them again."
        )


def tcga_brca(path: str | os.PathLike | None = None) -> md.MuData:
    """TCGA breast invasive carcinoma (BRCA) PAM50 subtype data set, as preprocessed by MOGONET.

    The benchmark of the POEMS paper: 875 samples (612 train, 263 test as published) with three fully paired
    modalities, ``"mrna"`` (1000 genes), ``"methylation"`` (1000 genes) and ``"mirna"`` (503 miRNAs), and five PAM50
    subtypes: Normal-like (115), Basal-like (131), HER2-enriched (46), Luminal A (436) and Luminal B (147). Source:
    the ``BRCA`` folder of txWang/MOGONET (commit 32d9066b, MIT licence); Wang et al., Nat. Commun. 12, 3445 (2021).

    Parameters
    ----------
    path : str or os.PathLike, optional
        Local folder in MOGONET format (e.g. a copy of MOGONET's ``BRCA`` folder) to read instead of downloading.
        Without it the files (about 50 MB) are downloaded once from GitHub, pinned to the commit above, into
        ``pooch.os_cache("poems_mu")`` and reused from there; known SHA-256 hashes are checked, and the data are
        checked against the published shapes.

    Returns
    -------
    :class:`~mudata.MuData`
        As returned by :func:`~poems_mu.datasets.read_mogonet`: float32 ``.X``, samples ``"train_0"``, ...,
        ``"test_0"``, ...; ``mdata.obs["label"]`` categorical with the five subtype names (in MOGONET's code order)
        and ``mdata.obs["split"]`` categorical ``"train"``/``"test"``.

    Raises
    ------
    ConnectionError
        If the download fails (e.g. no internet access); pass ``path`` then.
    FileNotFoundError, ValueError
        As :func:`~poems_mu.datasets.read_mogonet`, or if a download fails its integrity checks.

    Examples
    --------
    >>> import poems_mu
    >>> mdata = poems_mu.datasets.tcga_brca()  # doctest: +SKIP
    >>> mdata = poems_mu.datasets.tcga_brca(path="MOGONET/BRCA")  # doctest: +SKIP

    """
    if path is not None:
        return read_mogonet(path, modality_names=DEFAULT_MODALITY_NAMES, label_names=BRCA_LABEL_NAMES)
    folder = _cache_dir()
    _download_brca(folder)
    mdata = read_mogonet(folder, modality_names=DEFAULT_MODALITY_NAMES, label_names=BRCA_LABEL_NAMES)
    _check_brca(mdata, folder)
    return mdata
