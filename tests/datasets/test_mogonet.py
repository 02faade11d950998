"""``datasets.read_mogonet`` and ``datasets.tcga_brca``: MOGONET-format folders, their checks and the pinned
download."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pooch
import pytest
import requests
from _mogonet_files import write_mogonet

from poems_mu import datasets
from poems_mu.datasets import _download
from poems_mu.datasets._mogonet import build_mudata

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("POEMS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
BRCA_NAMES = ["Normal-like", "Basal-like", "HER2-enriched", "Luminal A", "Luminal B"]


# --------------------------------------------------------------------------------------------------------------------
# read_mogonet


@pytest.mark.parametrize("gz", [False, True])
def test_read_mogonet_synthetic(tmp_path, gz):
    arrays = write_mogonet(tmp_path, gz=gz)
    mdata = datasets.read_mogonet(tmp_path, modality_names=("a", "b", "c"), label_names=("neg", "pos"))
    assert list(mdata.mod) == ["a", "b", "c"]
    assert mdata.n_obs == 10
    assert list(mdata.obs_names) == [f"train_{i}" for i in range(6)] + [f"test_{i}" for i in range(4)]
    for i, name in enumerate(("a", "b", "c"), start=1):
        adata = mdata[name]
        assert adata.n_obs == 10
        assert adata.X.dtype == np.float32
        expected = np.concatenate([arrays[f"{i}_tr"], arrays[f"{i}_te"]]).astype(np.float32)
        np.testing.assert_array_equal(adata.X, expected)
        assert list(adata.var_names) == arrays[f"{i}_featname"]
    codes = np.concatenate([arrays["labels_tr"], arrays["labels_te"]])
    assert list(mdata.obs["label"]) == [("neg", "pos")[c] for c in codes]
    assert list(mdata.obs["label"].cat.categories) == ["neg", "pos"]
    assert list(mdata.obs["split"]) == ["train"] * 6 + ["test"] * 4
    assert list(mdata.obs["split"].cat.categories) == ["train", "test"]


def test_read_mogonet_default_labels_and_names(tmp_path):
    write_mogonet(tmp_path, n_classes=3)
    mdata = datasets.read_mogonet(str(tmp_path))
    assert list(mdata.mod) == ["mrna", "methylation", "mirna"]
    assert list(mdata.obs["label"].cat.categories) == ["0", "1", "2"]
    assert mdata.obs["label"].iloc[:3].tolist() == ["0", "1", "2"]


def test_read_mogonet_keeps_feature_names_verbatim(tmp_path):
    write_mogonet(tmp_path, n_features=(3,))
    (tmp_path / "1_featname.csv").write_text("NA\n?|90288\nnull\n")
    mdata = datasets.read_mogonet(tmp_path, modality_names=("x",))
    assert list(mdata["x"].var_names) == ["NA", "?|90288", "null"]


@pytest.mark.parametrize("missing", ["2_te.csv", "labels_tr.csv", "3_featname.csv", "1_tr.csv"])
def test_read_mogonet_missing_file(tmp_path, missing):
    write_mogonet(tmp_path)
    (tmp_path / missing).unlink()
    with pytest.raises(FileNotFoundError, match=missing.replace(".", r"\.")):
        datasets.read_mogonet(tmp_path)


def test_read_mogonet_too_many_modality_names(tmp_path):
    write_mogonet(tmp_path, n_features=(3, 3))
    with pytest.raises(FileNotFoundError, match=r"3_tr\.csv"):
        datasets.read_mogonet(tmp_path, modality_names=("a", "b", "c"))


def test_read_mogonet_too_few_modality_names(tmp_path):
    write_mogonet(tmp_path, n_features=(3, 3, 3))
    with pytest.raises(ValueError, match=r"3_tr\.csv.*more than the 2 modalities"):
        datasets.read_mogonet(tmp_path, modality_names=("a", "b"))


def test_read_mogonet_row_count_mismatch(tmp_path):
    write_mogonet(tmp_path)
    lines = (tmp_path / "2_tr.csv").read_text().splitlines(keepends=True)
    (tmp_path / "2_tr.csv").write_text("".join(lines[:-1]))
    with pytest.raises(ValueError, match=r"2_tr\.csv has 5 rows but labels_tr\.csv has 6 labels"):
        datasets.read_mogonet(tmp_path)


def test_read_mogonet_label_count_mismatch(tmp_path):
    write_mogonet(tmp_path)
    with open(tmp_path / "labels_te.csv", "a") as handle:
        handle.write("1.0\n")
    with pytest.raises(ValueError, match=r"1_te\.csv has 4 rows but labels_te\.csv has 5 labels"):
        datasets.read_mogonet(tmp_path)


def test_read_mogonet_featname_count_mismatch(tmp_path):
    write_mogonet(tmp_path)
    (tmp_path / "3_featname.csv").write_text("a\nb\n")
    with pytest.raises(ValueError, match=r"3_featname\.csv lists 2 feature names but 3_tr\.csv has 4 columns"):
        datasets.read_mogonet(tmp_path)


def test_read_mogonet_column_mismatch(tmp_path):
    write_mogonet(tmp_path)
    x = np.ones((4, 2))
    (tmp_path / "1_te.csv").write_text("".join(",".join(map(str, row)) + "\n" for row in x))
    with pytest.raises(ValueError, match=r"1_te\.csv has 2 columns but 1_tr\.csv has 5"):
        datasets.read_mogonet(tmp_path)


def test_read_mogonet_label_out_of_range(tmp_path):
    write_mogonet(tmp_path, n_classes=3)
    with pytest.raises(ValueError, match=r"label code 2.*only 2 label_names"):
        datasets.read_mogonet(tmp_path, label_names=("NC", "AD"))


def test_read_mogonet_bad_labels(tmp_path):
    write_mogonet(tmp_path)
    (tmp_path / "labels_tr.csv").write_text("0\n1.5\n0\n1\n0\n1\n")
    with pytest.raises(ValueError, match=r"labels_tr\.csv: labels must be non-negative integer codes"):
        datasets.read_mogonet(tmp_path)


def test_read_mogonet_unparsable_matrix(tmp_path):
    write_mogonet(tmp_path)
    text = (tmp_path / "1_tr.csv").read_text()
    (tmp_path / "1_tr.csv").write_text("oops," + text)
    with pytest.raises(ValueError, match=r"1_tr\.csv: could not parse"):
        datasets.read_mogonet(tmp_path)


def test_read_mogonet_bad_arguments(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.read_mogonet(tmp_path / "nope")
    write_mogonet(tmp_path)
    with pytest.raises(ValueError, match="unique"):
        datasets.read_mogonet(tmp_path, modality_names=("a", "a", "b"))
    with pytest.raises(TypeError):
        datasets.read_mogonet(tmp_path, modality_names="abc")


def test_build_mudata_reorders_to_obs():
    a = ad.AnnData(np.arange(6, dtype=np.float32).reshape(3, 2), obs=pd.DataFrame(index=["x", "y", "z"]))
    b = ad.AnnData(np.ones((2, 1), dtype=np.float32), obs=pd.DataFrame(index=["z", "x"]))
    b.var_names = ["b0"]
    obs = pd.DataFrame({"label": pd.Categorical(["l1", "l2", "l3"])}, index=["z", "y", "x"])
    mdata = build_mudata({"a": a, "b": b}, obs)
    assert list(mdata.obs_names) == ["z", "y", "x"]
    assert list(mdata.obs["label"]) == ["l1", "l2", "l3"]
    assert mdata["a"].X[0, 0] == 4  # row of "z"
    assert (np.asarray(mdata.obsmap["b"]) == 0).sum() == 1


# --------------------------------------------------------------------------------------------------------------------
# tcga_brca


def test_tcga_brca_from_local_folder(tmp_path):
    arrays = write_mogonet(tmp_path, n_classes=5, n_tr=7, n_te=5)
    mdata = datasets.tcga_brca(path=tmp_path)
    assert list(mdata.mod) == ["mrna", "methylation", "mirna"]
    assert list(mdata.obs["label"].cat.categories) == BRCA_NAMES
    codes = np.concatenate([arrays["labels_tr"], arrays["labels_te"]])
    assert list(mdata.obs["label"]) == [BRCA_NAMES[c] for c in codes]
    assert mdata.obs["split"].value_counts().to_dict() == {"train": 7, "test": 5}


def test_tcga_brca_registry_is_pinned():
    assert len(_download.MOGONET_COMMIT) == 40 and _download.MOGONET_COMMIT.startswith("32d9066b")
    assert _download.MOGONET_COMMIT in _download.BRCA_BASE_URL
    expected = {f"{i}_{kind}.csv" for i in (1, 2, 3) for kind in ("tr", "te", "featname")}
    assert set(_download.BRCA_REGISTRY) == expected | {"labels_tr.csv", "labels_te.csv"}
    for fname in ("labels_tr.csv", "labels_te.csv", "1_featname.csv", "2_featname.csv", "3_featname.csv"):
        digest = _download.BRCA_REGISTRY[fname]
        assert digest.startswith("sha256:") and len(digest) == len("sha256:") + 64
    assert tuple(BRCA_NAMES) == _download.BRCA_LABEL_NAMES


def test_tcga_brca_offline_error(tmp_path, monkeypatch):
    calls = []

    def offline(url, known_hash=None, fname=None, path=None, **kwargs):
        calls.append(url)
        raise requests.exceptions.ConnectionError("Failed to resolve 'raw.githubusercontent.com'")

    monkeypatch.setattr(pooch, "os_cache", lambda project: tmp_path / project)
    monkeypatch.setattr(pooch, "retrieve", offline)
    with pytest.raises(ConnectionError, match=r"(?s)seems to be offline.*tcga_brca\(path="):
        datasets.tcga_brca()
    assert len(calls) == 1 and calls[0].startswith(_download.BRCA_BASE_URL)


def test_tcga_brca_download_path(tmp_path, monkeypatch):
    """Simulated download: files come from a local synthetic folder; shapes are checked after reading."""
    source = tmp_path / "source"
    write_mogonet(source, n_classes=5, n_tr=8, n_te=4, n_features=(6, 5, 3))
    requested = {}

    def fake_retrieve(url, known_hash=None, fname=None, path=None, **kwargs):
        requested[fname] = (url, known_hash)
        Path(path).mkdir(parents=True, exist_ok=True)
        shutil.copy(source / fname, Path(path) / fname)
        return str(Path(path) / fname)

    monkeypatch.setattr(pooch, "os_cache", lambda project: tmp_path / "cache" / project)
    monkeypatch.setattr(pooch, "retrieve", fake_retrieve)
    # the synthetic files do not have the published shapes: rejected
    with pytest.raises(ValueError, match="do not match the published data set"):
        datasets.tcga_brca()
    assert set(requested) == set(_download.BRCA_REGISTRY)
    for fname, (url, known_hash) in requested.items():
        assert url == _download.BRCA_BASE_URL + fname
        assert known_hash == _download.BRCA_REGISTRY[fname]
    # with the expected shapes of the synthetic folder, the cached files are read into a MuData
    monkeypatch.setattr(_download, "BRCA_N_OBS", {"train": 8, "test": 4})
    monkeypatch.setattr(_download, "BRCA_N_VARS", {"mrna": 6, "methylation": 5, "mirna": 3})
    mdata = datasets.tcga_brca()
    assert mdata.n_obs == 12 and mdata["mirna"].n_vars == 3
    assert list(mdata.obs["label"].cat.categories) == BRCA_NAMES
