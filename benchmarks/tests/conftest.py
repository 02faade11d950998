import importlib
import importlib.util
import logging
import os
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1]
GROUPS = ("accuracy", "performance", "tuning")
torch.set_num_threads(int(os.environ.get("POEMS_TEST_THREADS", "1")))
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


def _load_benchmark(name: str):
    """Import the script ``benchmarks/<group>/<name>.py`` as module ``name`` (the benchmarks are scripts, not a
    package); ``benchmarks/`` goes on ``sys.path`` for ``_common`` and ``_baselines``, as each script does."""
    _shared("_common")  # first: it sets the thread count, as each script imports it first
    (path,) = [BENCHMARKS / group / f"{name}.py" for group in GROUPS if (BENCHMARKS / group / f"{name}.py").exists()]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark():
    """:func:`_load_benchmark` as a fixture."""
    return _load_benchmark


def _shared(name: str):
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


@pytest.fixture(scope="session")
def common():
    """``benchmarks/_common.py``: threads, arguments, planted data, writer, tables."""
    return _shared("_common")


@pytest.fixture(scope="session")
def baselines():
    """``benchmarks/_baselines.py``: the paper's subtyping protocol, PCA and MOFA+."""
    return _shared("_baselines")
