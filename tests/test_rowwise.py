"""The row-block helpers give what the plain numpy expressions give."""
import numpy as np
import pytest

from linreg.rowwise import Filling, column_extremes, stacked, weighted_sums


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


@pytest.mark.parametrize("column_major", [False, True])
def test_filling_keeps_every_piece_in_order_when_more_rows_come_than_expected(column_major):
    rng = np.random.default_rng(1)
    pieces = [rng.standard_normal((k, 3)) for k in (5, 0, 1, 700, 33)]
    filling = Filling(3, column_major)
    assert filling.matrix().shape == (0, 3)
    for piece in pieces:
        filling.add(list(piece.T), 8)  # far fewer rows expected than come: the matrix grows twice
    x = filling.matrix()
    assert np.array_equal(x, np.concatenate(pieces))
    # Row-major: each row's numbers side by side; column-major: each column's.
    assert x.strides[1 if column_major else 0] == 8 * (len(filling._x) if column_major else 3)
    assert x.strides[0 if column_major else 1] == 8


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


def test_an_aligned_factor_is_shared_with_its_tensor_and_any_other_array_is_copied():
    import tensorflow as tf

    from linreg.engine.solve import _tensor
    from linreg.rowwise import TENSOR_ALIGNMENT, aligned_empty

    shared = aligned_empty((100_000, 3))
    assert shared.ctypes.data % TENSOR_ALIGNMENT == 0 and shared.flags.c_contiguous
    shared[...] = 1.0
    tensor = _tensor(shared, tf.float64)
    shared[7, 2] = 5.0  # the fit never changes q; here the change shows the memory is one
    assert float(tensor[7, 2]) == 5.0 and float(tf.reduce_sum(tensor)) == 300_004.0
    # Memory TensorFlow's kernels could not use as it is (misaligned) is copied, and slicing it works.
    unaligned = np.empty(300_001)[1:].reshape(100_000, 3)
    unaligned[...] = 2.0
    copied = _tensor(unaligned, tf.float64)
    unaligned[7, 2] = 5.0
    assert unaligned.ctypes.data % TENSOR_ALIGNMENT != 0 and copied[7:9, 1:3].numpy().tolist() == [[2.0, 2.0]] * 2


@pytest.mark.parametrize("weighted", [False, True])
def test_the_factor_takes_the_standardized_rows_memory_and_they_come_back_the_same(weighted):
    import linreg
    from linreg.analysis.ols import column_means, standardized_residuals
    from linreg.data.scaling import standardize

    rng = np.random.default_rng(3)
    x = rng.standard_normal((5000, 6)) * [1, 1e3, 1e-3, 5, 1, 2] + [1e6, 0, 3, -7, 0, 1]
    y = x @ rng.standard_normal(6) + rng.standard_normal(5000)
    w = rng.uniform(0.5, 2.0, 5000) if weighted else None
    fit = linreg.fit((x, y), weights=w, optimizer="orthogonal", progress=False)  # QR on the rows, whatever κ
    alone = standardize(x, y, weights=w)
    assert fit.scaled.factor is not None and alone.factor is None
    # A checkpoint's fingerprint hashes the rows made again a block at a time
    # (none held whole): the digest of the whole array.
    from linreg.data.scaling import row_blocks
    from linreg.engine.checkpoint import Rows, fingerprint

    blocks = Rows(np.dtype(np.float64), alone.x.shape, row_blocks(fit.scaled, rows=777))
    assert fingerprint(blocks, 1.5) == fingerprint(alone.x, 1.5) == fingerprint(alone.x.copy(), 1.5)
    assert "x" not in vars(fit.scaled)
    # The factor q was made in the memory the standardized rows had. Asked
    # for, they are made again from the data: new memory, the same numbers.
    again = fit.scaled.x
    assert not np.shares_memory(again, fit.scaled.factor[0])
    assert np.array_equal(again.view(np.uint64), alone.x.view(np.uint64))
    # Residuals and means from the factor, beside those from the rows.
    W_s = rng.standard_normal(6)
    np.testing.assert_allclose(standardized_residuals(fit.scaled, W_s, 0.25), alone.y - (alone.x @ W_s + 0.25),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(column_means(fit.scaled), alone.x.mean(axis=0), rtol=0, atol=1e-15)


def test_varying_columns_looks_past_the_first_rows_only_for_columns_that_have_not_varied():
    from linreg.rowwise import varying_columns

    x = np.ones((10_000, 4))
    x[:, 0] = np.arange(10_000)  # varies at once
    x[9_999, 2] = 1 + 2**-52  # varies on its last row only
    x[:, 3] = 0.0
    x[5_000, 3] = -0.0  # -0 == 0: compared as numbers
    assert varying_columns(x).tolist() == [True, False, True, False]
    assert varying_columns(x[:3]).tolist() == [True, False, False, False]
    assert varying_columns(np.asfortranarray(x)).tolist() == [True, False, True, False]
