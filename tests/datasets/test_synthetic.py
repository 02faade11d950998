"""The planted-data scorers of poems_mu.datasets._synthetic (used by the tests and the benchmarks)."""

import numpy as np

from poems_mu.datasets._synthetic import match_factors, matched_columns


def test_factors_are_matched_one_to_one_and_a_missing_one_is_marked():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 3))
    learned = np.column_stack([-z[:, 2], z[:, 0] + 0.1 * rng.normal(size=200), rng.normal(size=200)])
    cols, r = match_factors(z, learned)
    assert list(cols) == [1, 2, 0]  # true 0 -> learned 1, true 2 -> learned 0 (negated), true 1 -> the noise one
    assert r[0] > 0.9 and r[2] == 1.0
    # two learned factors for three true ones: the worst-matched true factor is left without one
    cols, r = match_factors(z, learned[:, :2])
    assert list(cols) == [1, -1, 0] and r[1] == 0.0
    w = np.arange(8.0).reshape(4, 2) + 1
    out = matched_columns(w, cols)
    np.testing.assert_array_equal(out[:, 0], w[:, 1])
    np.testing.assert_array_equal(out[:, 1], 0.0)
    np.testing.assert_array_equal(out[:, 2], w[:, 0])
