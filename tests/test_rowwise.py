"""The row-block helpers give what the plain numpy expressions give."""
import numpy as np
import pytest

from linreg.rowwise import column_extremes, stacked, weighted_sums


@pytest.mark.parametrize("n, d", [(0, 3), (1, 1), (255, 4), (10_001, 7), (5000, 300)])
def test_stacked_is_column_stack_and_extremes_are_min_and_max(n, d):
    rng = np.random.default_rng(n + d)
    columns = [rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300) for _ in range(d)]
    x = stacked(columns, n)
    assert x.shape == (n, d) and x.flags.c_contiguous
    expected = np.column_stack(columns) if n else np.empty((0, d))
    assert np.array_equal(x, expected)
    low, high = column_extremes(x)
    if n:
        assert np.array_equal(low, x.min(axis=0)) and np.array_equal(high, x.max(axis=0))
    else:
        assert np.all(low == np.inf) and np.all(high == -np.inf)


def test_extremes_see_every_row_nan_and_infinity():
    x = np.zeros((1000, 3))
    x[999, 0], x[517, 1], x[3, 2] = -5.0, np.inf, np.nan  # the last, partial block too
    low, high = column_extremes(x)
    assert low[0] == -5.0 and high[1] == np.inf and np.isnan(low[2]) and np.isnan(high[2])


def test_weighted_sums_match_the_whole_product():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20_000, 5)) * [1e-200, 1.0, 1e200, 3.0, 7.0]
    u = rng.uniform(0.5, 1.5, 20_000)
    peak = np.abs(x).max(axis=0)
    np.testing.assert_allclose(weighted_sums(u, x, peak), u @ (x / peak), rtol=1e-13)
    np.testing.assert_allclose(weighted_sums(u, x, peak, square=True), u @ (x / peak) ** 2, rtol=1e-13)
