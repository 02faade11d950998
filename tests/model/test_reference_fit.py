"""A change that is not meant to alter results does not: seeded fits equal the recorded ones.

The fits (``tests/_scripts/reference_fit.py``) run in a subprocess with one CPU thread, as they were recorded, and
every array they return must match a recording to 1e-5: the same arithmetic, in the same order, from the same random
draws. Floating-point results are reproducible on one kind of CPU, not across kinds: torch, MKL and OpenBLAS pick
their kernels by the CPU's vendor and instruction set, and twenty epochs turn the last bits into visible differences
(on breast_tcga a near-tied pair of the PCA start's rotated components even comes out rotated). So each fit has one
recording per kind of CPU it was recorded on (``tests/_reference/<fit>_fit.<machine>.npz``, all from the same code),
and a fresh fit must equal every array of one of them. A machine of another kind matches none: the failure names its
arithmetic, and a recording for it is made with that script from a commit whose results are known to be the recorded
ones (run this test there on a recorded machine first).

The reorganisation into scvi-tools' layout was checked this way against the fits of commit 398a579 (bit-identical);
the recordings were rewritten when the factor penalty and its defaults, then the PCA start and lambda0 = 15, and then
the training schedule changed the results on purpose. A change that means to alter results rewrites every recording
(on each kind of machine it can reach, removing the others) and says so in its commit.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
REFERENCE = {"breast": "breast_tcga_fit", "mixed": "mixed_fit"}


def machine_arithmetic() -> str:
    """What decides the kernels here: the CPU vendor, torch's CPU capability and OpenBLAS's core type."""
    import torch
    from threadpoolctl import threadpool_info

    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.exists() else []
    vendor = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("vendor_id")), "unknown vendor")
    blas = sorted({str(i.get("architecture")) for i in threadpool_info() if i.get("internal_api") == "openblas"})
    return f"{vendor}, torch {torch.backends.cpu.get_cpu_capability()}, OpenBLAS {'/'.join(blas) or '–'}"


def mismatch(got, expected) -> str | None:
    """The first array of ``expected`` that ``got`` does not match to 1e-5, with its largest difference, or None."""
    if sorted(got.files) != sorted(expected.files):
        return f"arrays {sorted(set(got.files) ^ set(expected.files))} in one only"
    for key in expected.files:
        a, b = got[key], expected[key]
        if a.shape != b.shape:
            return f"{key}: shape {a.shape} against {b.shape}"
        if not np.allclose(a, b, rtol=0, atol=1e-5):
            return f"{key}: largest difference {float(np.abs(a - b).max()):.3g}"
    return None


def test_every_fit_has_recordings():
    for name in REFERENCE.values():
        assert sorted((TESTS / "_reference").glob(f"{name}.*.npz")), f"no recording of {name}"


@pytest.mark.slow
@pytest.mark.subprocess
@pytest.mark.parametrize("fit", sorted(REFERENCE))
def test_seeded_fit_matches_the_recorded_one(fit, tmp_path):
    out = tmp_path / f"{fit}.npz"
    env = {"OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, str(TESTS / "_scripts" / "reference_fit.py"), fit, str(out)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(out)
    recordings = sorted((TESTS / "_reference").glob(f"{REFERENCE[fit]}.*.npz"))
    misses = {path.name: mismatch(got, np.load(path)) for path in recordings}
    assert None in misses.values(), (
        f"the {fit} fit matches none of its recordings on this machine ({machine_arithmetic()}): "
        + "; ".join(f"{name}: {miss}" for name, miss in misses.items())
        + f". If the results are meant to be unchanged, a change altered them; if this kind of machine has no "
        f"recording yet, make one with `python tests/_scripts/reference_fit.py {fit} "
        f"tests/_reference/{REFERENCE[fit]}.<machine>.npz` from a commit that matches a recording elsewhere."
    )


def test_a_fit_must_match_every_array_of_one_recording(tmp_path):
    arrays = {"x": np.zeros(3), "y": np.ones(2)}
    recordings = {"same": arrays, "moved": {**arrays, "y": np.ones(2) + 1e-3}, "fewer": {"x": arrays["x"]}}
    for name, content in {"got": arrays, **recordings}.items():
        np.savez(tmp_path / f"{name}.npz", **content)
    got = np.load(tmp_path / "got.npz")
    assert mismatch(got, np.load(tmp_path / "same.npz")) is None
    assert mismatch(got, np.load(tmp_path / "moved.npz")).startswith("y: largest difference 0.001")
    assert "in one only" in mismatch(got, np.load(tmp_path / "fewer.npz"))
