"""The trained toy model shared by the tests of ``tests/tl`` (:mod:`_tl_toy`), once per test module."""

import pytest
from _tl_toy import trained_toy


@pytest.fixture(scope="module")
def trained():
    return trained_toy()
