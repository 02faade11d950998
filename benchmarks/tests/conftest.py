import importlib.util
import logging
import os
import sys
from pathlib import Path

import pytest
import torch

BENCHMARKS = Path(__file__).resolve().parents[1]
torch.set_num_threads(int(os.environ.get("POEMS_TEST_THREADS", "1")))
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)


def _load_benchmark(name: str):
    """Import ``benchmarks/<name>.py`` as module ``name`` (the benchmarks are scripts, not a package)."""
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def load_benchmark():
    """:func:`_load_benchmark` as a fixture."""
    return _load_benchmark
