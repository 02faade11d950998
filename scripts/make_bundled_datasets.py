#!/usr/bin/env python
"""Regenerate the data files shipped in ``src/poems_mu/datasets/_data`` from the shared real-data folder.

The shipped files are byte-for-byte gzip copies of the source CSVs (written reproducibly: no file name, mtime 0),
so ``gunzip -c`` gives back the published files; the SHA-256 of every uncompressed file is recorded in
``_data/checksums.csv``, which the test suite checks.

Usage::

    python scripts/make_bundled_datasets.py [SHARED_DATA_DIR]

``SHARED_DATA_DIR`` defaults to ``../shared/data`` relative to the repository root and must hold ``rosmap/`` (MOGONET
format) and ``breast_tcga/`` (see its README). With ``--hash-mogonet FOLDER`` the script instead prints the SHA-256
of every file of a local MOGONET folder (e.g. a download of MOGONET's ``BRCA``), in the form used by the registry
in ``poems_mu/datasets/_download.py``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = REPO_ROOT / "src" / "poems_mu" / "datasets" / "_data"

FILES = {
    "rosmap": [
        *(f"{i}_{kind}.csv" for i in (1, 2, 3) for kind in ("tr", "te", "featname")),
        "labels_tr.csv",
        "labels_te.csv",
    ],
    "breast_tcga": [
        "mrna_train.csv",
        "mrna_test.csv",
        "mirna_train.csv",
        "mirna_test.csv",
        "protein_train.csv",
        "labels.csv",
    ],
}
MAX_BYTES = 2 * 1024 * 1024


def sha256(data: bytes) -> str:
    """Return the hex SHA-256 digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def gzip_bytes(data: bytes) -> bytes:
    """Compress ``data`` reproducibly (no file name, mtime 0, level 9)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, compresslevel=9, mtime=0) as handle:
        handle.write(data)
    return buffer.getvalue()


def build(shared: Path, out_dir: Path = OUT_DIR) -> list[tuple[str, str, int, int]]:
    """Write the gzip copies and ``checksums.csv``; return ``(relative path, sha256, raw size, gz size)`` rows."""
    rows = []
    for dataset, names in FILES.items():
        (out_dir / dataset).mkdir(parents=True, exist_ok=True)
        for name in names:
            source = shared / dataset / name
            if not source.is_file():
                raise FileNotFoundError(f"missing source file {source}")
            data = source.read_bytes()
            packed = gzip_bytes(data)
            if len(packed) > MAX_BYTES:
                raise ValueError(f"{dataset}/{name}.gz would be {len(packed)} bytes (> {MAX_BYTES})")
            (out_dir / dataset / f"{name}.gz").write_bytes(packed)
            rows.append((f"{dataset}/{name}", sha256(data), len(data), len(packed)))
    with open(out_dir / "checksums.csv", "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file", "sha256"])
        writer.writerows((path, digest) for path, digest, _, _ in rows)
    return rows


def check(out_dir: Path = OUT_DIR) -> None:
    """Load the rebuilt data sets through the package and print them (needs poems_mu importable)."""
    sys.path.insert(0, str(REPO_ROOT / "src"))
    from poems_mu import datasets

    for loader in (datasets.rosmap, datasets.breast_tcga):
        mdata = loader()
        print(f"{loader.__name__}:\n{mdata}\n{mdata.obs.value_counts(['split', 'label']).sort_index()}\n")


def hash_folder(folder: Path) -> None:
    """Print the SHA-256 of every file in ``folder`` as Python dict entries."""
    for path in sorted(folder.iterdir()):
        if path.is_file():
            print(f'    "{path.name}": "sha256:{sha256(path.read_bytes())}",')


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "shared",
        nargs="?",
        type=Path,
        default=REPO_ROOT.parent / "shared" / "data",
        help="folder with rosmap/ and breast_tcga/ (default: ../shared/data relative to the repository root)",
    )
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: the package's _data)")
    parser.add_argument("--no-check", action="store_true", help="skip loading the results through poems_mu")
    parser.add_argument("--hash-mogonet", type=Path, metavar="FOLDER", help="only print SHA-256 of FOLDER's files")
    args = parser.parse_args(argv)

    if args.hash_mogonet is not None:
        hash_folder(args.hash_mogonet)
        return 0
    rows = build(args.shared.resolve(), args.out)
    for path, digest, raw, packed in rows:
        print(f"{path:32s} {raw:>9d} -> {packed:>8d} bytes  sha256 {digest}")
    print(f"total shipped: {sum(r[3] for r in rows)} bytes in {args.out}")
    if not args.no_check and args.out.resolve() == OUT_DIR.resolve():
        check(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
