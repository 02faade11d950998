"""Tests for poems_mu.datasets (bundled data sets, MOGONET reader, TCGA BRCA download logic)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import shutil
import warnings
from pathlib import Path

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pooch
import pytest
import requests

from poems_mu import datasets
from poems_mu.datasets import _bundled, _download
from poems_mu.datasets._mogonet import build_mudata

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("POEMS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
BRCA_NAMES = ["Normal-like", "Basal-like", "HER2-enriched", "Luminal A", "Luminal B"]


def _mudata_options() -> dict:
    from mudata._core.config import OPTIONS

    return dict(OPTIONS)


def write_mogonet(
    folder: Path,
    n_tr: int = 6,
    n_te: int = 4,
    n_features: tuple[int, ...] = (5, 3, 4),
    n_classes: int = 2,
    gz: bool = False,
    seed: int = 0,
) -> dict:
    """Write a small random MOGONET-format folder; return the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".csv.gz" if gz else ".csv"

    def dump(name: str, text: str) -> None:
        data = text.encode()
        (folder / f"{name}{suffix}").write_bytes(gzip.compress(data) if gz else data)

    def matrix_text(x: np.ndarray) -> str:
        return "".join(",".join(f"{v:.18e}" for v in row) + "\n" for row in x)

    out = {"labels_tr": np.arange(n_tr) % n_classes, "labels_te": (np.arange(n_te) + 1) % n_classes}
    dump("labels_tr", "".join(f"{v:.18e}\n" for v in out["labels_tr"]))
    dump("labels_te", "".join(f"{v:.18e}\n" for v in out["labels_te"]))
    for i, p in enumerate(n_features, start=1):
        out[f"{i}_tr"] = rng.random((n_tr, p))
        out[f"{i}_te"] = rng.random((n_te, p))
        out[f"{i}_featname"] = [f"m{i}_feat{j}" for j in range(p)]
        dump(f"{i}_tr", matrix_text(out[f"{i}_tr"]))
        dump(f"{i}_te", matrix_text(out[f"{i}_te"]))
        dump(f"{i}_featname", "".join(name + "\n" for name in out[f"{i}_featname"]))
    return out


# --------------------------------------------------------------------------------------------------------------------
# bundled data sets


def test_public_api():
    assert set(datasets.__all__) == {"read_mogonet", "breast_tcga", "breast_tcga_feature_sets", "rosmap", "tcga_brca"}
    for name in datasets.__all__:
        doc = getattr(datasets, name).__doc__
        assert doc and "Returns\n    -------" in doc


def test_rosmap():
    mdata = datasets.rosmap()
    assert isinstance(mdata, md.MuData)
    assert mdata.shape == (351, 600)
    assert list(mdata.mod) == ["mrna", "methylation", "mirna"]
    for adata in mdata.mod.values():
        assert adata.shape == (351, 200)
        assert adata.X.dtype == np.float32
        assert adata.X.min() >= 0 and adata.X.max() <= 1
        assert adata.var_names.is_unique
    assert mdata.obs_names.is_unique
    assert mdata["mrna"].var_names[0].startswith("ENSG")
    assert mdata["methylation"].var_names[0].startswith("cg")
    assert mdata["mirna"].var_names[0].startswith("hsa-")
    assert mdata.obs["split"].value_counts().to_dict() == {"train": 245, "test": 106}
    assert list(mdata.obs["label"].cat.categories) == ["NC", "AD"]
    assert list(mdata.obs["split"].cat.categories) == ["train", "test"]
    assert mdata.obs_names[0] == "train_0" and mdata.obs_names[-1] == "test_105"
    assert set(mdata.obs["label"]) == {"NC", "AD"}
    assert not any(":" in column for column in mdata.obs.columns)


def test_breast_tcga_shapes_and_missing_protein():
    mdata = datasets.breast_tcga()
    assert mdata.n_obs == 220
    assert list(mdata.mod) == ["mrna", "mirna", "protein"]
    assert mdata["mrna"].shape == (220, 200)
    assert mdata["mirna"].shape == (220, 184)
    assert mdata["protein"].shape == (150, 142)
    for adata in mdata.mod.values():
        assert adata.X.dtype == np.float32
        assert np.isfinite(adata.X).all()
    test = mdata.obs_names[mdata.obs["split"] == "test"]
    train = mdata.obs_names[mdata.obs["split"] == "train"]
    assert len(train) == 150 and len(test) == 70
    # the 70 test samples are absent from the protein modality (not padded), and obsmap marks them with 0
    obsmap = pd.Series(np.asarray(mdata.obsmap["protein"]), index=mdata.obs_names)
    assert (obsmap == 0).sum() == 70
    assert (obsmap[test] == 0).all() and (obsmap[train] > 0).all()
    assert set(mdata["protein"].obs_names) == set(train)
    assert (np.asarray(mdata.obsmap["mrna"]) > 0).all() and (np.asarray(mdata.obsmap["mirna"]) > 0).all()
    assert not any(column.startswith(f"{mod}:") for mod in mdata.mod for column in mdata.obs.columns)


def test_breast_tcga_labels():
    mdata = datasets.breast_tcga()
    obs = mdata.obs
    assert {"subtype", "label", "split"} <= set(obs.columns)
    for column in ("subtype", "label", "split"):
        assert isinstance(obs[column].dtype, pd.CategoricalDtype)
    assert obs["subtype"].value_counts().to_dict() == {"LumA": 110, "Basal": 66, "Her2": 44}
    assert (obs["label"].astype(str) == obs["subtype"].astype(str)).all()
    assert obs["split"].value_counts().to_dict() == {"train": 150, "test": 70}
    counts = pd.crosstab(obs["split"], obs["subtype"])
    assert counts.loc["train"].to_dict() == {"Basal": 45, "Her2": 30, "LumA": 75}
    assert counts.loc["test"].to_dict() == {"Basal": 21, "Her2": 14, "LumA": 35}
    assert obs.index[0] == "A0FJ"  # TCGA short ids from the CSVs


@pytest.mark.parametrize("loader", [datasets.rosmap, datasets.breast_tcga])
def test_fresh_object_each_call(loader):
    a, b = loader(), loader()
    assert a is not b and a["mrna"] is not b["mrna"]
    a["mrna"].X[:] = -1.0
    a.obs["label"] = "x"
    assert not np.array_equal(a["mrna"].X, b["mrna"].X)
    assert (b.obs["label"] != "x").all()


@pytest.mark.parametrize("loader", [datasets.rosmap, datasets.breast_tcga, datasets.read_mogonet])
def test_loading_leaves_mudata_options_alone_and_is_quiet(loader, tmp_path):
    if loader is datasets.read_mogonet:
        write_mogonet(tmp_path)
        args = (tmp_path,)
    else:
        args = ()
    before = _mudata_options()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        loader(*args)
    assert _mudata_options() == before


@pytest.mark.parametrize("new_update_behaviour", [True, False])
@pytest.mark.parametrize("loader", [datasets.rosmap, datasets.breast_tcga])
def test_h5mu_roundtrip_keeps_obs(loader, new_update_behaviour, tmp_path):
    mdata = loader()
    path = tmp_path / "data.h5mu"
    if new_update_behaviour:
        with md.set_options(pull_on_update=False):
            mdata.write(path, compression="gzip")
            back = md.read_h5mu(path)
    else:  # mudata's default (0.3.x warns that the default will change)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            mdata.write(path, compression="gzip")
            back = md.read_h5mu(path)
            back.update()
    assert list(back.obs.columns) == list(mdata.obs.columns)
    assert list(back.mod) == list(mdata.mod)
    assert back.obs_names.equals(mdata.obs_names)
    for column in mdata.obs.columns:
        assert column in back.obs.columns
        assert isinstance(back.obs[column].dtype, pd.CategoricalDtype)
        assert (back.obs[column].astype(str) == mdata.obs[column].astype(str)).all()
    for name in mdata.mod:
        assert back[name].obs_names.equals(mdata[name].obs_names)
        np.testing.assert_array_equal(back[name].X, mdata[name].X)
        np.testing.assert_array_equal(np.asarray(back.obsmap[name]), np.asarray(mdata.obsmap[name]))


def test_shipped_files_match_recorded_checksums():
    table = _bundled.DATA_DIR / "checksums.csv"
    with open(table, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 17
    shipped = {p.relative_to(_bundled.DATA_DIR).as_posix() for p in _bundled.DATA_DIR.rglob("*.gz")}
    assert shipped == {f"{row['file']}.gz" for row in rows}
    for row in rows:
        path = _bundled.DATA_DIR / f"{row['file']}.gz"
        assert path.stat().st_size < 2 * 1024 * 1024
        assert hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == row["sha256"], row["file"]
    assert (_bundled.DATA_DIR / "README.md").is_file()


def test_shipped_data_equal_shared_csvs():
    """The one test that needs the shared real-data folder (POEMS_SHARED_DATA, default ../shared/data)."""
    if not (SHARED_DATA / "breast_tcga").is_dir() or not (SHARED_DATA / "rosmap").is_dir():
        pytest.skip(f"shared real-data folder not found at {SHARED_DATA}")
    # breast_tcga: values (as float32), sample ids and feature names equal the CSVs
    mdata = datasets.breast_tcga()
    labels = pd.read_csv(SHARED_DATA / "breast_tcga" / "labels.csv", dtype=str).set_index("sample")
    assert list(mdata.obs_names) == list(labels.index)
    assert (mdata.obs["subtype"].astype(str) == labels["subtype"]).all()
    assert (mdata.obs["split"].astype(str) == labels["split"]).all()
    for name in ("mrna", "mirna", "protein"):
        parts = [
            pd.read_csv(SHARED_DATA / "breast_tcga" / f"{name}_{split}.csv", index_col=0, dtype={"sample": str})
            for split in ("train", "test")
            if (SHARED_DATA / "breast_tcga" / f"{name}_{split}.csv").exists()
        ]
        expected = pd.concat(parts)
        assert list(mdata[name].obs_names) == list(expected.index)
        assert list(mdata[name].var_names) == list(expected.columns)
        np.testing.assert_array_equal(mdata[name].X, expected.to_numpy().astype(np.float32))
    # rosmap: identical to reading the shared MOGONET folder, and the shipped files are byte-identical copies
    shipped = datasets.rosmap()
    direct = datasets.read_mogonet(SHARED_DATA / "rosmap", label_names=("NC", "AD"))
    assert shipped.obs.equals(direct.obs)
    for name in direct.mod:
        np.testing.assert_array_equal(shipped[name].X, direct[name].X)
        assert shipped[name].var_names.equals(direct[name].var_names)
    for path in sorted((_bundled.DATA_DIR / "rosmap").glob("*.gz")) + sorted(
        (_bundled.DATA_DIR / "breast_tcga").glob("*.gz")
    ):
        source = SHARED_DATA / path.parent.name / path.name.removesuffix(".gz")
        assert gzip.decompress(path.read_bytes()) == source.read_bytes(), path.name


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


def test_breast_tcga_feature_sets_name_features_of_their_modality():
    table = datasets.breast_tcga_feature_sets()
    assert list(table.columns) == ["modality", "source", "target", "basis"]
    mdata = datasets.breast_tcga()
    for mod, rows in table.groupby("modality"):
        assert set(rows["target"]) <= set(mdata[mod].var_names), mod
        assert (rows.groupby("source").size() >= 5).all()  # every set passes tl.enrichment's default tmin
        assert not rows.duplicated(["source", "target"]).any()
    protein = datasets.breast_tcga_feature_sets("protein")
    assert set(protein["modality"]) == {"protein"} and {"ER-alpha", "GATA3", "HER2"} <= set(protein["target"])
    with pytest.raises(KeyError, match="choose from"):
        datasets.breast_tcga_feature_sets("rna")
