"""Column work on row-major matrices without a pass over memory per column
(used by the read and scale stages).

A fit keeps its design matrix row-major (a row is d numbers side by side):
the matrix products of the later stages want it so. But the reader hands
over columns, and checks run column by column. Done naively, writing or
reading one column of a row-major [N, d] matrix touches a cache line (64
bytes, eight numbers of eight different columns) per row, so d columns
move the whole matrix through the cache d times. The helpers here work on
a block of rows at a time (or fold rows together), so the matrix passes
through the cache once; `aligned_empty` gives memory a tensor can share.
"""
import numpy as np

# Rows per block: 4096 rows of 64 float64 columns are 2 MiB, which stays in
# a core's cache while every column is written into it.
BLOCK_BYTES = 2**21


def block_rows(d):
    """Rows of d float64 numbers in a block of BLOCK_BYTES."""
    return max(1, BLOCK_BYTES // (8 * max(1, d)))


def stacked(columns, n):
    """The row-major [n, len(columns)] float64 matrix of 1-D columns of n
    numbers (what np.column_stack gives), filled a block of rows at a time."""
    if not columns:
        return np.empty((n, 0))
    rows = Filling(len(columns))
    rows.add(columns, n)
    return rows.matrix()


class Filling:
    """A row-major (or column-major) [rows, d] float64 matrix filled piece
    by piece from columns, as a reader hands them over: each piece is
    written in place at the end of the rows so far, a block of rows at a
    time, so the rows need not be gathered column by column first and then
    copied again.

    The matrix is made when the first piece comes, for as many rows as the
    caller expects in all: memory the rows never reach is never touched,
    so a generous guess costs nothing. More rows than expected move the
    rows so far into a matrix twice as large (or as large as asked)."""

    def __init__(self, d, column_major=False):
        # column_major: each column's numbers side by side instead (an [N, d]
        # array in Fortran order): a piece is then d plain copies, for work
        # that goes column by column (the statistics, data/extended.py).
        self.d, self.rows, self._x, self.order = d, 0, None, "F" if column_major else "C"

    def add(self, columns, expected):
        """Append the rows of `columns` (d 1-D arrays of one length);
        `expected`: the rows the matrix will hold in all, as best known."""
        columns = [np.asarray(column, np.float64) for column in columns]
        k = len(columns[0]) if columns else 0
        if not k:
            return  # (nothing to guess the rows to come from)
        if self._x is None or self.rows + k > len(self._x):
            grown = 0 if self._x is None else 2 * len(self._x)
            x = np.empty((max(expected, grown, self.rows + k), self.d), order=self.order)
            if self._x is not None:
                x[: self.rows] = self._x[: self.rows]
            self._x = x
        if self.order == "F":
            for j, column in enumerate(columns):
                self._x[self.rows : self.rows + k, j] = column
            self.rows += k
            return
        step = block_rows(self.d)
        for start in range(0, k, step):
            block = self._x[self.rows + start : self.rows + min(k, start + step)]
            for j, column in enumerate(columns):
                block[:, j] = column[start : start + step]
        self.rows += k

    def matrix(self):
        """The rows so far (a view: the rows expected but never reached are
        memory the process never touched)."""
        return np.empty((0, self.d)) if self._x is None else self._x[: self.rows]


def column_extremes(values, rows=256):
    """(min, max) of each column of a row-major [N, d] array. A reduction
    down the columns runs its inner loop along one row (d numbers); folding
    `rows` rows into one makes that loop rows·d long, several times faster."""
    n, d = values.shape
    whole = n - n % rows
    blocks = values[:whole].reshape(whole // rows, rows * d)
    rest = values[whole:]
    low = np.minimum(blocks.min(axis=0, initial=np.inf).reshape(rows, d).min(axis=0), rest.min(axis=0, initial=np.inf))
    high = np.maximum(blocks.max(axis=0, initial=-np.inf).reshape(rows, d).max(axis=0), rest.max(axis=0, initial=-np.inf))
    return low, high


def varying_columns(values, head=4096):
    """Which columns of an [N, d] array of numbers hold more than one value.
    A column that varies almost always does so within its first rows: only
    the columns that do not are compared with their first value all the way
    down."""
    first = values[:1]
    varies = (values[:head] != first).any(axis=0)
    if not varies.all():
        rest = np.flatnonzero(~varies)
        varies[rest] = (values[head:, rest] != first[:, rest]).any(axis=0)
    return varies


def weighted_sums(u, values, divisor, square=False):
    """Σ_i u_i·(values_ij / divisor_j) -- or of its square -- for each column j
    of a row-major [N, d] array, the quotients made a block of rows at a
    time in one reused buffer instead of a whole new copy of the rows."""
    n, d = values.shape
    rows = block_rows(d)
    total, buffer = np.zeros(d), np.empty((min(rows, n), d))
    for start in range(0, n, rows):
        block = buffer[: len(values[start : start + rows])]
        np.divide(values[start : start + rows], divisor, out=block)
        if square:
            block *= block
        total += u[start : start + rows] @ block
    return total


# TensorFlow's kernels assume a tensor's memory starts at a multiple of this
# many bytes (its allocator's alignment); numpy guarantees 16.
TENSOR_ALIGNMENT = 64


def aligned_empty(shape):
    """An uninitialized row-major float64 array whose memory starts at a
    multiple of TENSOR_ALIGNMENT bytes, so that a tensor can share it."""
    size = int(np.prod(shape)) * 8
    raw = np.empty(size + TENSOR_ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % TENSOR_ALIGNMENT
    return raw[start : start + size].view(np.float64).reshape(shape)
