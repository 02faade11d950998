"""A change that is not meant to alter results does not: seeded fits equal the recorded ones.

The fits (``tests/_scripts/reference_fit.py``) run in a subprocess with one CPU thread, as they were recorded, and
every array they return must match the recorded one to 1e-5: the same arithmetic, in the same order, from the same
random draws. The reorganisation into scvi-tools' layout was checked this way against the fits of commit 398a579
(bit-identical); the files were rewritten when the factor penalty and its defaults, then the PCA start and
lambda0 = 15, and then the training schedule changed the results on purpose. A change that means to alter results
rewrites them with that script and says so in its commit.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parents[1]
REFERENCE = {"breast": "breast_tcga_fit.npz", "mixed": "mixed_fit.npz"}


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
    expected, got = np.load(TESTS / "_reference" / REFERENCE[fit]), np.load(out)
    assert sorted(got.files) == sorted(expected.files)
    for key in expected.files:
        np.testing.assert_allclose(got[key], expected[key], rtol=0, atol=1e-5, err_msg=key)
