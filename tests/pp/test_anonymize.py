"""pp.anonymize / pp.deanonymize: keyed pseudonyms, nothing original in the written file, an exact inverse."""

import h5py
import mudata
import numpy as np
import pandas as pd
import pytest
import scvi

import poems_mu as pm

SECRET = "a secret of at least sixteen bytes"


@pytest.fixture(scope="module")
def cohort(breast_trained):
    mdata, model = breast_trained
    out = mdata.copy()
    model.store_results(out, overwrite=True)
    out.mod["protein"].obs["patient"] = ["P-" + s for s in out.mod["protein"].obs_names]
    out.uns["shortlist"] = {"genes": list(out["mrna"].var_names[:4]), out.obs_names[0]: "first sample"}
    return out


def _strings_in(path) -> list[str]:
    """Every name, attribute and string value stored in an HDF5 file."""
    found = []

    def visit(name, obj):
        found.extend(name.split("/"))
        for k, v in obj.attrs.items():
            found.append(str(k))
            found.extend(str(x) for x in np.atleast_1d(v).ravel())
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "OSU":
            found.extend(x.decode() if isinstance(x, bytes) else str(x) for x in np.atleast_1d(obj[()]).ravel())

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return found


def test_the_written_file_holds_no_original_name_and_deanonymize_inverts_it(cohort, tmp_path):
    before = cohort.copy()
    anon, key = pm.pp.anonymize(cohort, SECRET, columns=["patient", "subtype", "label"])
    # the user's MuData is untouched
    assert cohort.obs_names.equals(before.obs_names) and cohort.obs["subtype"].equals(before.obs["subtype"])
    anon.write(tmp_path / "shared.h5mu")
    strings = _strings_in(tmp_path / "shared.h5mu")
    exact = set(strings)
    blob = "\n".join(strings)
    samples = set(cohort.obs_names)
    features = {f for ad in cohort.mod.values() for f in ad.var_names}
    values = set(cohort.obs["subtype"]) | set(cohort.obs["label"]) | set(cohort.mod["protein"].obs["patient"])
    assert not samples & exact and not any(s in blob for s in samples)
    assert not features & exact and not values & exact
    assert len(exact & set(key["pseudonym"])) > len(samples)  # the pseudonyms are what is stored
    # the data, the embedding and the results are the same, row for row
    back = pm.pp.deanonymize(mudata.read_h5mu(tmp_path / "shared.h5mu"), key)
    assert back.obs_names.equals(cohort.obs_names)
    for m, ad in cohort.mod.items():
        assert back[m].obs_names.equals(ad.obs_names) and back[m].var_names.equals(ad.var_names)
        np.testing.assert_array_equal(np.asarray(back[m].X), np.asarray(ad.X))
        np.testing.assert_array_equal(back[m].varm["poems_W"], ad.varm["poems_W"])
    np.testing.assert_array_equal(back.obsm["X_poems"], cohort.obsm["X_poems"])
    pd.testing.assert_frame_equal(back.obs[["subtype"]], cohort.obs[["subtype"]], check_categorical=False)
    assert list(back["protein"].obs["patient"]) == list(cohort["protein"].obs["patient"])
    assert list(back.uns["shortlist"]["genes"]) == list(cohort.uns["shortlist"]["genes"])
    assert back.uns["shortlist"][cohort.obs_names[0]] == "first sample"
    np.testing.assert_array_equal(back.obsmap["protein"], cohort.obsmap["protein"])


def test_pseudonyms_are_keyed_and_stable(cohort):
    a, key_a = pm.pp.anonymize(cohort, SECRET)
    # scvi's registration ids stay with the original: the copy is set up anew, without clobbering the original's
    assert "_scvi_uuid" in cohort.uns and "_scvi_uuid" not in a.uns
    b, _ = pm.pp.anonymize(cohort, SECRET)
    c, _ = pm.pp.anonymize(cohort, SECRET + "!")
    assert a.obs_names.equals(b.obs_names) and not set(a.obs_names) & set(c.obs_names)
    assert "secret" not in key_a.attrs
    d, key_d = pm.pp.anonymize(cohort)  # a fresh random secret, returned with the key
    e, _ = pm.pp.anonymize(cohort, bytes.fromhex(key_d.attrs["secret"]))
    assert d.obs_names.equals(e.obs_names) and not set(d.obs_names) & set(a.obs_names)
    assert set(key_a["kind"]) == {"sample", "feature"}


def test_results_computed_on_shared_data_map_back(cohort):
    anon, key = pm.pp.anonymize(cohort, SECRET)
    pm.POEMS.setup_mudata(anon)
    scvi.settings.seed = 0
    model = pm.POEMS(anon, n_latent=3)
    model.train(max_epochs=5, enable_progress_bar=False)
    top = pm.tl.top_features(model, "mrna", n=5, with_corr=False, include_inactive=True)
    assert top["feature"].str.startswith("F_").all()
    named = pm.pp.deanonymize(top, key)
    assert set(named["feature"]) <= set(cohort["mrna"].var_names)
    assert top["feature"].map(dict(zip(key["pseudonym"], key["original"], strict=True))).tolist() == list(
        named["feature"]
    )


def test_bad_input(cohort):
    anon, key = pm.pp.anonymize(cohort, SECRET)
    _, other_key = pm.pp.anonymize(cohort, SECRET + "?")
    with pytest.raises(ValueError, match="does not match the key"):
        pm.pp.deanonymize(anon, other_key)
    with pytest.raises(ValueError, match="does not match the key"):
        pm.pp.deanonymize(pd.DataFrame({"feature": ["RTN2"]}), key)
    with pytest.raises(ValueError, match="pm.pp.anonymize"):
        pm.pp.deanonymize(anon, key.drop(columns="original"))
    with pytest.raises(ValueError, match="16 bytes"):
        pm.pp.anonymize(cohort, "short")
    with pytest.raises(KeyError, match="not columns"):
        pm.pp.anonymize(cohort, SECRET, columns=["centre"])
    numeric = cohort.copy()
    numeric.obs["age"] = np.arange(numeric.n_obs, dtype=float)
    with pytest.raises(ValueError, match="numeric"):
        pm.pp.anonymize(numeric, SECRET, columns=["age"])
    with pytest.raises(TypeError, match="MuData"):
        pm.pp.anonymize(cohort["mrna"], SECRET)
