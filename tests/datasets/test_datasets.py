"""Tests for poems_mu.datasets: the bundled data sets and their feature sets (the MOGONET reader and the TCGA BRCA
download: ``test_mogonet.py``)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import warnings
from pathlib import Path

import mudata as md
import numpy as np
import pandas as pd
import pytest
from _mogonet_files import write_mogonet

from poems_mu import datasets
from poems_mu.datasets import _bundled

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("POEMS_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
BRCA_NAMES = ["Normal-like", "Basal-like", "HER2-enriched", "Luminal A", "Luminal B"]


def _mudata_options() -> dict:
    from mudata._core.config import OPTIONS

    return dict(OPTIONS)


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
