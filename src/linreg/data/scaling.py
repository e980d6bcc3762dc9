"""The scale stage: every column to mean 0 and standard deviation 1.

In: the design's columns, target and weights. Out: a Standardized -- the
standardized rows, the means and spreads, and the way back to the original
units. It keeps the model, the loss and the step as they are and changes
only the coordinates they work in, so that one learning rate suits every
coefficient. The one definition (`to_standardized` and its inverse
`from_standardized`) serves the rows in memory, the batches read from files
and an exported model's graph; data/moments.py finds the same means and
spreads from streamed statistics. The next change of variables, which makes
the bowl perfectly round, is the precondition stage's (precondition.py).
"""
import math
from dataclasses import dataclass, field

import numpy as np

from linreg.rowwise import aligned_empty, block_rows, column_extremes, weighted_sums


def to_standardized(values, mean, scale):
    """Values in the standardized coordinates. Plain arithmetic, so numpy
    arrays of any float type and TensorFlow tensors alike."""
    return (values - mean) / scale


def from_standardized(values, mean, scale):
    """The inverse: standardized values back in the original units."""
    return values * scale + mean


@dataclass
class Standardized:
    """Data moved to zero mean and unit standard deviation, and the way back.

    x_mean, x_scale : [d]   each feature's mean and standard deviation
    y_mean, y_scale : ()    the target's
    x, y            : the standardized data, float64
    """

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: float
    y_scale: float
    x: np.ndarray
    y: np.ndarray
    intercept: bool = True  # False: a fit through the origin, nothing centred
    weight_mean: float = 1.0  # the mean observation weight (1 when unweighted)
    weighted: bool = False
    # When x and y are not the data but rows that stand for it -- the pseudo-rows
    # of streamed statistics (data/moments.py) -- the number of rows they stand
    # for. Means over them equal means over the data; sums are `multiplicity`
    # times theirs.
    represents: int = None
    # False when only the columns' means and spreads are known -- streamed data
    # with too many features to gather their (d + 1)² cross-products: x and y
    # are then empty, and nothing that needs xᵀx (standard errors, the
    # closed-form answer, the condition number) can be computed.
    cross_products: bool = True
    # Pseudo-rows from statistics gathered beyond float64 (data/moments.py):
    # the same rows as x and y, [x, y] in extended precision, which the
    # refinement's residuals use (engine/solve.Extended); and the relative
    # rounding of their cross-products (float64's ε when None: the rows
    # themselves, or statistics summed in float64).
    extended_rows: np.ndarray = None
    cross_epsilon: float = None

    # Settled when made, as plain values, so later stages read them without
    # calling back into this one:
    rows: int = field(init=False)  # N, the number of data rows (for degrees of freedom)
    multiplicity: float = field(init=False)  # how many data rows each row here stands for
    # Whether training moves b. With weights the intercept is taken out by
    # weighted centring instead: at the minimum b = 0 in these coordinates.
    train_intercept: bool = field(init=False)
    # (q, R), when the precondition stage made its factor q = √N·Q in the
    # memory of x (x_s = q·R/√N; precondition.py): x is then gone, and made
    # again from the data, the same numbers, for whoever asks for it (a
    # robust covariance, a checkpoint's fingerprint, a user).
    factor: tuple = field(init=False)

    def __post_init__(self):
        self.factor = None
        self.rows = len(self.y) if self.represents is None else self.represents
        self.multiplicity = self.rows / len(self.y) if self.y is not None and len(self.y) else math.nan
        self.train_intercept = self.intercept and not self.weighted

    def __getattr__(self, name):  # called only for an attribute not set: x, given to the factor
        if name == "x" and self.__dict__.get("factor") is not None:
            self.x = rows_again(self)
            return self.x
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def transform(self, x, y, weights=None):
        """New rows of the original data (batches read from files) in these
        coordinates, as `standardize` put the rows it was given: columns
        centred and scaled, and, when the problem is weighted, every row
        times √(w/mean w). The rows keep their number type."""
        x, y = to_standardized(x, self.x_mean, self.x_scale), to_standardized(y, self.y_mean, self.y_scale)
        return _weighted(x, y, weights / self.weight_mean) if self.weighted else (x, y)

    def coefficients(self, W, b):
        """Standardized-space (W, b) in the original units, float64.

        The model learned  (y - y_mean)/y_scale = Σ W_j (x_j - x_mean_j)/x_scale_j + b.
        Multiplying out: y = Σ (y_scale W_j / x_scale_j) x_j
                             + y_mean + y_scale b - Σ (y_scale W_j / x_scale_j) x_mean_j.
        """
        W = np.asarray(W, np.float64) * self.y_scale / self.x_scale
        # The intercept is a difference of terms that can be far larger than
        # it (large means, small intercept): summed in extended precision, so
        # that its own rounding is one float64 rounding, not one per term.
        wide = np.longdouble
        b = wide(self.y_mean) + wide(self.y_scale) * wide(float(b)) - np.dot(W.astype(wide), np.asarray(self.x_mean, wide))
        return W, float(b)


def scale_table(table, intercept=True, statistics_line=None):
    """The scale stage for rows in memory: the Standardized rows, or, given
    `statistics_line`, the pseudo-rows of their statistics when the
    condition number those reveal is below it (`from_statistics`)."""
    from linreg.data.design import scale_refusal

    if statistics_line is not None and (scaled := from_statistics(table, intercept, statistics_line)) is not None:
        return scaled
    if table.x is not None and not table.x.flags.c_contiguous:  # read for the statistics: QR wants rows
        table.x = np.ascontiguousarray(table.x)
    try:
        return standardize(table.x, table.y, intercept=intercept, weights=table.weights)
    except ScaleError as error:
        raise scale_refusal(table, error) from None


def from_statistics(table, intercept, line):
    """The rows of a Table as the Standardized pseudo-rows of their statistics
    (data/moments.py), when the condition number of the standardized columns
    those reveal is below `line` -- where the normal equations from
    statistics made beyond float64 give QR's digits (docs/engine-line.md);
    else None, and for whatever the rows' own checks must say (a constant
    column, one a combination of others), where numpy's long double is no
    wider than float64, or past the columns whose factor is made in it."""
    from linreg.data.extended import EXTENDED, EXTENDED_EPSILON, EXTENDED_FACTOR_COLUMNS
    from linreg.data.moments import checked_columns, problem
    from linreg.errors import LinregError

    if table.x is None or not len(table.y) or EXTENDED_EPSILON >= np.finfo(np.float64).eps:
        return None
    if table.x.shape[1] + 1 > EXTENDED_FACTOR_COLUMNS:  # the pseudo-rows' factor would be float64's
        return None
    names = [f"x{j}" for j in range(table.x.shape[1])]  # (for messages only, which lead to None)
    moments = _statistics_of(table.x, table.y, table.weights)
    try:
        S = checked_columns(moments, names, "y", intercept, "the rows", extended=True)[2]
    except LinregError:
        return None
    values = np.linalg.eigvalsh((S[:-1, :-1] / EXTENDED(moments.weight)).astype(np.float64))
    if not (len(values) and values[0] > 0 and math.sqrt(values[-1] / values[0]) < line):
        return None
    return problem(moments, names, "y", intercept, table.weights is not None)


def _statistics_of(x, y, weights):
    """Moments.of the rows, the halves of many rows on two cores (one
    matrix-multiply thread each), merged in order: the same bits however many
    cores there are."""
    from linreg.data.moments import Moments

    n = len(y)
    if n < PARALLEL_ROWS:
        return Moments.of(x, y, weights)
    import threading

    from linreg.threads import one_blas_thread

    def of(rows):
        return Moments.of(x[rows], y[rows], None if weights is None else weights[rows])

    first = {}

    def first_half():
        try:
            first["half"] = of(slice(0, n // 2))
        except BaseException as error:  # (a MemoryError): raised again on this thread
            first["error"] = error

    with one_blas_thread():
        # The first half on a thread of its own, the second on this one: one
        # thread started, not two (a start waits for the new thread to take
        # the interpreter's lock, which the other half's thread holds often).
        thread = threading.Thread(target=first_half, daemon=True)
        thread.start()
        second = of(slice(n // 2, n))
        thread.join()
    if "error" in first:
        raise first["error"]
    return first["half"].merge(second)


# From this many rows the statistics of rows in memory are gathered in two halves at once.
PARALLEL_ROWS = 2**17


def standardize(x, y, intercept=True, weights=None):
    """Centre every column on its mean and divide by its standard deviation.

    Why gradient descent needs this: the learning rate is one number for all
    coefficients, but a feature measured in the hundred-thousands makes the
    loss millions of times steeper along its coefficient than a feature
    measured in tenths. A rate small enough not to explode along the steep
    direction then barely moves the flat one. After standardizing, every
    feature has the same spread, the bowl is as round as the correlations
    between features allow, and one rate suits all directions. Centring
    also separates the intercept from the weights (its Hessian block becomes
    independent of theirs) and removes the large common offset before any
    rounding happens. The target is standardized too, so the loss starts
    near 1 whatever the units of y.

    This is done once, in float64, before training; the coefficients are
    converted back to the original units afterwards (Standardized.coefficients).

    Without an intercept nothing is centred (the fit must pass through the
    origin) and columns are divided by their root mean square. With
    observation weights w the means and spreads are weighted, and every row
    is multiplied by √(w/mean w): the plain mean squared error of these rows
    is the weighted one of the original rows (weighted least squares).
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    u = None if weights is None else np.asarray(weights, np.float64) / np.mean(weights)
    x_mean, x_scale, x_s, steps = _standardize_columns(x, first_column=1, centre=intercept, weights=u)
    y_mean, y_scale, y_s, _ = _standardize_columns(y[:, None], first_column=0, centre=intercept, weights=u)
    y_s = y_s[:, 0]
    root = None if u is None else np.sqrt(u)
    if root is not None:
        x_s *= root[:, None]  # rows times √u: see _weighted
        y_s = y_s * root
    scaled = Standardized(
        x_mean, x_scale, float(y_mean[0]), float(y_scale[0]), x_s, y_s, intercept,
        1.0 if weights is None else float(np.mean(weights)), weights is not None,
    )  # fmt: skip
    scaled._steps = (x, *steps, x_scale, root)  # what rows_again needs to make x_s once more
    return scaled


def rows_again(scaled, rows=slice(None)):
    """The standardized rows of `standardize` (those of `rows`, a slice),
    made again from the data with the same steps, so the same numbers
    (Standardized.factor)."""
    x, first, shift, scale, root = scaled._steps
    x = x[rows]
    out = aligned_empty(x.shape)
    np.subtract(x, first, out=out)
    if shift is not None:
        out -= shift
    out /= scale
    if root is not None:
        out *= root[rows][:, None]
    return out


def row_blocks(scaled, rows=None):
    """The standardized rows, `rows` at a time (a cache's worth by default),
    without holding them all again when they went to the factor."""
    if "x" in scaled.__dict__ or scaled.factor is None:
        yield scaled.x
        return
    rows = rows or block_rows(len(scaled.x_mean))
    for start in range(0, len(scaled.y), rows):
        yield rows_again(scaled, slice(start, start + rows))


def _weighted(x, y, u):
    """Rows times √u (u = w/mean w): the plain mean squared error of these
    rows is the weighted one of the original rows."""
    root = np.sqrt(u)
    return x * root[:, None], y * root


class ScaleError(ValueError):
    """A column whose numbers float64 arithmetic cannot centre and scale.

    `column` counts from 0 over [y, x_1, ..., x_d]."""

    def __init__(self, column, problem):
        super().__init__(problem)
        self.column, self.problem = column, problem


def _standardize_columns(values, first_column, centre=True, weights=None):
    # Means and standard deviations computed on columns divided by their
    # largest magnitude first: squares of 1e-300 would underflow to 0 and
    # sums of 1e307 overflow to infinity, while the divided numbers are near 1.
    # (The divided numbers are made a block of rows at a time, and the
    # centred rows are standardized in place: one new copy of the rows.)
    n = len(values)
    u = np.ones(n) if weights is None else weights  # mean 1
    shift = None
    with np.errstate(all="ignore"):
        peak = _nonzero(_largest_magnitudes(values))
        first = weighted_sums(u, values, peak) / n * peak if centre else np.zeros(values.shape[1])
        centred = aligned_empty(values.shape)  # that the precondition stage can make its factor in it
        np.subtract(values, first, out=centred)
        mean = first
        if centre:
            # A second pass: the mean of 1e9 + noise of 1e-6 is known to a few
            # 1e-7 only, so the centred column keeps a remainder of that size;
            # taking it out of the centred numbers leaves their mean at rounding.
            shift = (u @ centred) / n
            centred -= shift
            mean = first + shift
        spread = _largest_magnitudes(centred)  # infinite where centring overflowed
        unit = _nonzero(spread)
        scale = np.sqrt(weighted_sums(u, centred, unit, square=True) / n) * unit
        centred /= scale  # now the standardized columns
    for j in range(values.shape[1]):
        if not (np.isfinite(spread[j]) and np.isfinite(scale[j])):
            raise ScaleError(first_column + j, "its values differ by more than float64 can hold (about 1.8e308)")
        if not scale[j] >= np.finfo(np.float64).tiny:
            raise ScaleError(first_column + j, "its spread is too small for float64 arithmetic")
    return mean, scale, centred, (first, shift)


def _nonzero(magnitudes):
    """1 in place of 0, so that a constant column divides by something."""
    return np.where(magnitudes > 0, magnitudes, 1.0)


def _largest_magnitudes(values):
    """max |value| of each column (0 for no rows)."""
    low, high = column_extremes(values)
    return np.maximum(np.maximum(high, -low), 0.0)
