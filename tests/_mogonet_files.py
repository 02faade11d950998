"""A small MOGONET-format folder for the tests of the data set loaders (``tests/datasets``)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np


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
