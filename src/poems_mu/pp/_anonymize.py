"""Keyed pseudonyms for sharing a cohort: sample names, feature names and listed obs/var values."""

from __future__ import annotations

import hashlib
import hmac
import secrets as _secrets
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData

from poems_mu.data import drop_setup_ids

KEY_COLUMNS = ("kind", "pseudonym", "original")
PREFIX = {"sample": "S_", "feature": "F_", "value": "V_"}


def _pseudonym(secret: bytes, kind: str, scope: str, name: str) -> str:
    digest = hmac.new(secret, f"{kind}\x00{scope}\x00{name}".encode(), hashlib.sha256).hexdigest()
    return PREFIX[kind] + digest[:20]


def _secret_bytes(secret) -> bytes:
    if secret is None:
        return _secrets.token_bytes(32)
    if isinstance(secret, str):
        secret = secret.encode()
    if not isinstance(secret, bytes) or len(secret) < 16:
        raise ValueError("`secret` must be a str or bytes of at least 16 bytes (or None for a fresh random one).")
    return secret


def _listed_columns(mdata: MuData, columns: Sequence[str]) -> list[tuple[str, pd.DataFrame]]:
    """``(where, frame)`` for every obs/var table that holds a listed column; unknown names are an error."""
    tables = [("obs", mdata.obs)]
    for m, ad in mdata.mod.items():
        tables += [(f"mod['{m}'].obs", ad.obs), (f"mod['{m}'].var", ad.var)]
    found = {c: [] for c in columns}
    for where, frame in tables:
        for c in columns:
            if c in frame.columns:
                found[c].append(where)
    missing = [c for c, places in found.items() if not places]
    if missing:
        raise KeyError(f"`columns` {missing} are not columns of mdata.obs, nor of any modality's obs or var.")
    return [(where, frame) for where, frame in tables if any(c in frame.columns for c in columns)]


def _replace(obj, mapping: Mapping[str, str]):
    """``obj`` (uns values: dicts, lists, arrays, DataFrames, strings) with every string found in ``mapping``
    replaced, dict keys included; other values unchanged.
    """
    if isinstance(obj, str):
        return mapping.get(obj, obj)
    if isinstance(obj, Mapping):
        return {_replace(k, mapping): _replace(v, mapping) for k, v in obj.items()}
    if isinstance(obj, pd.DataFrame):
        out = obj.copy()
        out.index = [_replace(i, mapping) for i in out.index]
        out.columns = [_replace(c, mapping) for c in out.columns]
        for c in out.columns:
            if out[c].dtype == object or isinstance(out[c].dtype, pd.CategoricalDtype | pd.StringDtype):
                out[c] = [_replace(v, mapping) for v in out[c].astype(object)]
        return out
    if isinstance(obj, np.ndarray) and obj.dtype.kind in "OUS":
        flat = [_replace(v.decode() if isinstance(v, bytes) else v, mapping) for v in obj.ravel()]
        return np.array(flat, dtype=object if obj.dtype.kind == "O" else str).reshape(obj.shape)
    if isinstance(obj, list | tuple):
        return type(obj)(_replace(v, mapping) for v in obj)
    return obj


def _map_column(frame: pd.DataFrame, col: str, mapping: Mapping[str, str]) -> None:
    values = frame[col]
    if isinstance(values.dtype, pd.CategoricalDtype):
        frame[col] = values.cat.rename_categories([mapping.get(str(c), c) for c in values.cat.categories])
    else:
        frame[col] = [v if pd.isna(v) else mapping.get(str(v), v) for v in values.astype(object)]


def _base_column(col: str, modalities) -> str:
    """A global obs/var column pulled from a modality is named ``"<modality>:<column>"``."""
    head, sep, tail = col.partition(":")
    return tail if sep and head in modalities else col


def _renamed(
    mdata: MuData,
    obs_map: Mapping[str, str],
    var_map: Mapping[str, str],
    value_maps: Mapping[str, Mapping[str, str]],
    text_map: Mapping[str, str],
) -> MuData:
    """A new MuData with samples, features, the values of ``value_maps``' columns and ``uns`` strings renamed.

    Built from renamed copies of the modalities; the MuData's own obs/var columns, obsm/varm/obsp/varp and uns are
    carried over in the new order (mudata does not follow a renaming of its modalities' names by itself).
    """
    mods = {}
    for m, ad in mdata.mod.items():
        a = ad.copy()
        a.obs_names = [obs_map[str(x)] for x in a.obs_names]
        a.var_names = [var_map[str(x)] for x in a.var_names]
        for frame in (a.obs, a.var):
            frame.index.name = None
            for c in frame.columns:
                if c in value_maps:
                    _map_column(frame, c, value_maps[c])
        a.uns = _replace(dict(a.uns), text_map)
        mods[m] = a
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = MuData(mods)
    for axis, names_map in (("obs", obs_map), ("var", var_map)):
        old = getattr(mdata, f"{axis}_names")
        new = pd.Index([names_map[str(x)] for x in old])
        here = getattr(out, f"{axis}_names")
        pos = new.get_indexer(here)
        if (pos < 0).any() or len(here) != len(old):
            raise RuntimeError(f"Renaming changed the MuData's {axis} names; nothing was written.")
        frame, target = getattr(mdata, axis), getattr(out, axis)
        for c in frame.columns:
            if c in target.columns:
                continue
            col = frame[c].iloc[pos].set_axis(here)
            target[c] = col
            base = _base_column(c, mods)
            if base in value_maps:
                _map_column(target, c, value_maps[base])
        for k, v in getattr(mdata, f"{axis}m").items():
            if k in getattr(out, f"{axis}m"):
                continue
            getattr(out, f"{axis}m")[k] = v.iloc[pos].set_axis(here) if isinstance(v, pd.DataFrame) else v[pos]
        for k, v in getattr(mdata, f"{axis}p").items():
            getattr(out, f"{axis}p")[k] = v[pos][:, pos]
    out.uns = _replace(dict(mdata.uns), text_map)
    drop_setup_ids(out)  # they name the original's registration, not data: the copy is set up anew
    return out


def anonymize(
    mdata: MuData, secret: str | bytes | None = None, columns: Sequence[str] = ()
) -> tuple[MuData, pd.DataFrame]:
    """A copy of the MuData with keyed pseudonyms for sample names, feature names and the listed columns' values.

    Each name is replaced by ``S_`` / ``F_`` / ``V_`` and the first 20 hex digits of its HMAC-SHA256 under
    ``secret``: the same secret gives the same pseudonyms (cohorts anonymised apart can be joined), and without
    the secret a pseudonym cannot be recomputed from a guessed name. The values of the obs/var ``columns`` listed
    (string or categorical; e.g. a patient or centre id) are replaced the same way, and so is every string in
    ``uns`` (and in its dict keys) that equals an original name or value. Nothing else changes: data, layers,
    other columns, and ``obsm`` / ``varm`` (their rows follow the names). scvi's registration ids are left out of
    ``uns``: call ``POEMS.setup_mudata`` on the copy to train on it.

    This is **pseudonymisation, not anonymisation**: the measured values themselves (a genotype, a rare expression
    profile) and the columns not listed can still re-identify a person. Share the anonymised file; keep ``key``
    (and the secret) apart from it.

    Parameters
    ----------
    mdata
        The MuData to share; it is not modified.
    secret
        At least 16 bytes (a str is UTF-8 encoded). ``None`` draws a fresh random secret, returned in
        ``key.attrs["secret"]`` so that later batches can use the same pseudonyms.
    columns
        Names of ``obs`` / ``var`` columns (of the MuData or of any modality) whose values are names too.

    Returns
    -------
    ``(anonymised copy, key)``. ``key`` is a DataFrame with columns ``kind`` (``"sample"``, ``"feature"`` or
    ``"value:<column>"``), ``pseudonym`` and ``original``; :func:`deanonymize` uses it to map results back.

    """
    if not isinstance(mdata, MuData):
        raise TypeError(f"`mdata` must be a MuData, got {type(mdata).__name__}.")
    if isinstance(columns, str):
        columns = [columns]
    columns = list(columns)
    generated = secret is None
    key_bytes = _secret_bytes(secret)
    tables = _listed_columns(mdata, columns)
    rows = []
    samples = {str(s): _pseudonym(key_bytes, "sample", "", str(s)) for s in mdata.obs_names}
    rows += [("sample", p, o) for o, p in samples.items()]
    features = {}
    for ad in mdata.mod.values():
        for f in map(str, ad.var_names):
            features.setdefault(f, _pseudonym(key_bytes, "feature", "", f))
    rows += [("feature", p, o) for o, p in features.items()]
    values: dict[str, dict[str, str]] = {}
    for c in columns:
        seen = {}
        for where, frame in tables:
            if c not in frame.columns:
                continue
            col = frame[c]
            if pd.api.types.is_numeric_dtype(col) and not isinstance(col.dtype, pd.CategoricalDtype):
                raise ValueError(
                    f"Column {c!r} of {where} is numeric: pseudonyms are for names. Drop it or bin it into "
                    "categories before sharing."
                )
            for v in col.dropna().astype(str).unique():
                seen.setdefault(v, _pseudonym(key_bytes, "value", c, v))
        values[c] = seen
        rows += [(f"value:{c}", p, o) for o, p in seen.items()]
    key = pd.DataFrame(rows, columns=list(KEY_COLUMNS))
    if key["pseudonym"].duplicated().any():  # 80-bit digests: practically never
        raise RuntimeError("Two names got the same pseudonym; call again with another secret.")

    everything = {**samples, **features, **{o: p for v in values.values() for o, p in v.items()}}
    out = _renamed(mdata, samples, features, values, everything)
    if generated:
        key.attrs["secret"] = key_bytes.hex()
    return out, key


def _key_maps(key: pd.DataFrame) -> dict[str, str]:
    if not isinstance(key, pd.DataFrame) or not set(KEY_COLUMNS) <= set(key.columns):
        raise ValueError("`key` must be the table returned by pm.pp.anonymize (columns kind, pseudonym, original).")
    return dict(zip(key["pseudonym"].astype(str), key["original"].astype(str), strict=True))


def deanonymize(obj, key: pd.DataFrame):
    """Map pseudonyms back to the original names, in a copy.

    Parameters
    ----------
    obj
        A DataFrame (e.g. from ``pm.tl``: index, columns and the values of text columns are mapped), or a MuData
        anonymised by :func:`anonymize` (sample and feature names, the listed columns and ``uns``).
    key
        The ``key`` returned by :func:`anonymize`.

    Returns
    -------
    A copy of ``obj`` with the original names. A MuData whose sample or feature names are not all in ``key``, and a
    DataFrame in which no pseudonym of ``key`` occurs, raise a ``ValueError`` (wrong key).

    """
    back = _key_maps(key)
    if isinstance(obj, pd.DataFrame):
        out = _replace(obj, back)
        if out.equals(obj) and list(out.index) == list(obj.index) and list(out.columns) == list(obj.columns):
            raise ValueError("No pseudonym of `key` occurs in this DataFrame: it does not match the key.")
        return out
    if isinstance(obj, MuData):
        names = [str(s) for s in obj.obs_names] + [str(f) for ad in obj.mod.values() for f in ad.var_names]
        unknown = [n for n in names if n not in back]
        if unknown:
            raise ValueError(
                f"{len(unknown)} sample/feature names of this MuData are not in `key` (e.g. {unknown[:3]}): it does "
                "not match the key."
            )
        value_cols = {k.split(":", 1)[1] for k in key["kind"].astype(str) if k.startswith("value:")}
        return _renamed(obj, back, back, dict.fromkeys(value_cols, back), back)
    if isinstance(obj, AnnData):
        raise TypeError("Pass the MuData (or a DataFrame of results), not one modality's AnnData.")
    raise TypeError(f"Expected a DataFrame or a MuData, got {type(obj).__name__}.")
