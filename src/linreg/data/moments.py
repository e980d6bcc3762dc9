"""Sufficient statistics: all a linear least-squares fit needs to know about the data.

Expand the square in the mean squared error. With z = [x, y] a row, v = [-W, 1]
and the means z̄,

    Σ_i (y_i - x_i·W - b)² = Σ_i (v·(z_i - z̄) + (ȳ - x̄·W - b))²
                          = vᵀ·C·v + n·(ȳ - x̄·W - b)²,

where C = Σ_i (z_i - z̄)(z_i - z̄)ᵀ is the matrix of centred cross-products (the
cross term vanishes because Σ_i (z_i - z̄) = 0). So the loss -- and with it the
gradient, the Hessian, the least-squares solution and every statistic of the
fit -- depends on the N rows only through n, the d + 1 means and the
(d + 1)² numbers of C. However many rows there are, one pass that gathers
these is enough; afterwards an epoch costs O(d²), not O(N·d). Spark MLlib's
"normal" solver works the same way.

Why centred? The plain sums Σ z_i z_iᵀ would do too in exact arithmetic, but
in floating point Σ x² - n·x̄² cancels catastrophically when the mean is large
beside the spread (a column of years, 2024 ± 3): most of its digits would be
rounding. Centring each batch on its own mean first, and merging the batches
with the update of Chan, Golub and LeVeque (1979),

    n = n_a + n_b,  δ = z̄_b - z̄_a,  z̄ = z̄_a + δ·n_b/n,
    C = C_a + C_b + δδᵀ·n_a·n_b/n,

keeps every sum of squares a sum of small, same-signed numbers. The sums
themselves are made beyond float64's rounding (`Moments.of`): the normal
equations square the condition number κ, so float64 sums, good to about ε,
would leave the coefficients κ²·ε, where QR on the rows leaves κ·ε; sums
good to about 1e-19 give QR's digits wherever κ²·1e-19 is below float64's
own rounding (docs/engine-line.md measures where). With
observation weights w, n counts the weight (Σw), z̄ and C are weighted, and
the formulas are the same. The merge is exact algebra, so a pass may be split
into any batches, files or workers; in floating point the result depends on
the order of the merges, which is why several workers always merge in the
order of their ranks (engine/cluster.py).
"""
from dataclasses import dataclass

import numpy as np

from linreg.data import extended
from linreg.data.extended import EXTENDED, EXTENDED_EPSILON, pair


@dataclass
class Moments:
    """n, the means and the centred cross-products of the rows [x, y].

    rows:        how many rows (for degrees of freedom)
    weight:      Σw, the rows' total weight (= rows without weights)
    mean:        [d + 1] the (weighted) means of x_1..x_d and y, in units of 2**exponents
    C:           [d + 1, d + 1] Σ w·(z - z̄)(z - z̄)ᵀ, in units of 2**(exponent_j + exponent_k);
                 or, gathered with diagonal=True, only its diagonal [d + 1], the
                 sums of squares Σ w·(z_j - z̄_j)² (d + 1 numbers instead of (d + 1)²)
    log_weights: Σ log w (the weighted log-likelihood needs it); 0 without weights
    exponents:   [d + 1] each column's power of two (see below and data/extended.py's UNIT_RANGE)
    mean_low, C_low: what mean and C (float64) leave out of the statistics
                 gathered beyond float64: `extended_mean` = mean + mean_low,
                 `extended_C` = C + C_low, in extended precision (data/extended.py's `sums`)

    Why the powers of two: a column of numbers near 1e-160 has squares near
    1e-320, below the smallest normal float64, where digits are lost; one near
    1e200 has squares that overflow. Such a column is counted in units of a
    power of two near its size -- an exact change of units, since multiplying
    by 2**k only changes the exponent -- so its products stay near 1.
    """

    rows: int
    weight: float
    mean: np.ndarray
    C: np.ndarray
    log_weights: float = 0.0
    exponents: np.ndarray = None
    mean_low: np.ndarray = None
    C_low: np.ndarray = None

    def __post_init__(self):
        if self.exponents is None:
            self.exponents = np.zeros(len(self.mean), np.int64)
        self.mean_low = np.zeros_like(self.mean) if self.mean_low is None else self.mean_low
        self.C_low = np.zeros_like(self.C) if self.C_low is None else self.C_low

    @classmethod
    def extended(cls, rows, weight, mean, C, log_weights=0.0, exponents=None):
        """Moments from extended-precision mean and C, kept as float64 pairs."""
        (mean, mean_low), (C, C_low) = pair(mean), pair(C)
        return cls(rows, weight, mean, C, log_weights, exponents, mean_low, C_low)

    @property
    def extended_mean(self):
        return self.mean.astype(EXTENDED) + self.mean_low

    @property
    def extended_C(self):
        return self.C.astype(EXTENDED) + self.C_low

    @property
    def diagonal(self):
        """Whether only the sums of squares were gathered, not the cross-products."""
        return self.C.ndim == 1

    @property
    def sums_of_squares(self):
        return self.C if self.diagonal else np.diag(self.C)

    @classmethod
    def empty(cls, width, diagonal=False):
        return cls(0, 0.0, np.zeros(width), np.zeros(width if diagonal else (width, width)))

    @classmethod
    def of(cls, x, y, w=None, diagonal=False):
        """The statistics of one batch, beyond float64's own rounding
        (data/extended.py's `sums`)."""
        width = x.shape[1] + 1
        if len(y) == 0:
            return cls.empty(width, diagonal)
        return cls.extended(len(y), *extended.sums(x, y, w, diagonal))

    def _in_units(self, exponents):
        """The same statistics counted in units of 2**exponents (each at least self's)."""
        shift = self.exponents - exponents
        if not np.any(shift):
            return self
        scale = np.ldexp(1.0, shift)
        squares = scale * scale if self.diagonal else np.outer(scale, scale)
        return Moments(self.rows, self.weight, self.mean * scale, self.C * squares, self.log_weights, exponents,
                       self.mean_low * scale, self.C_low * squares)

    def merge(self, other):
        """The statistics of both sets of rows together (Chan, Golub and
        LeVeque), in extended precision."""
        if other.rows == 0:
            return self
        if self.rows == 0:
            return other
        units = np.maximum(self.exponents, other.exponents)
        a, b = self._in_units(units), other._in_units(units)
        weight = a.weight + b.weight
        mean_a = a.extended_mean
        delta = b.extended_mean - mean_a
        mean = mean_a + delta * (EXTENDED(b.weight) / EXTENDED(weight))
        with np.errstate(all="ignore"):
            product = delta * delta if a.diagonal else np.outer(delta, delta)
            C = a.extended_C + b.extended_C + product * (EXTENDED(a.weight) * EXTENDED(b.weight) / EXTENDED(weight))
        return Moments.extended(a.rows + b.rows, weight, mean, C, a.log_weights + b.log_weights, units)

    # --- one vector, for an all-reduce between workers ---------------------------

    def pack(self):
        return np.concatenate([[self.rows, self.weight, self.log_weights], self.exponents, self.mean, self.mean_low,
                               self.C.ravel(), self.C_low.ravel()])

    @classmethod
    def unpack(cls, vector, width):
        rows, weight, log_weights = vector[:3]
        exponents = vector[3 : 3 + width].astype(np.int64)
        mean, mean_low = vector[3 + width : 3 + 2 * width], vector[3 + 2 * width : 3 + 3 * width]
        C, C_low = np.split(vector[3 + 3 * width :], 2)
        shape = (width,) if len(C) == width else (width, width)  # diagonal: d + 1 numbers
        return cls(int(rows), float(weight), mean.copy(), C.reshape(shape).copy(), float(log_weights), exponents,
                   mean_low.copy(), C_low.reshape(shape).copy())


def merge_all(parts):
    """Merge a sequence of Moments left to right (the order fixes the rounding)."""
    total = None
    for part in parts:
        total = part if total is None else total.merge(part)
    return total


def of_batches(batches, width, diagonal=False):
    """The Moments of `batches` (each with x, y, w and the rows it dropped),
    merged in their order, and the rows dropped."""
    from linreg.threads import one_blas_thread

    total, dropped = Moments.empty(width, diagonal), 0
    # One BLAS thread: a batch's (d + 1)² products are quick on one core while
    # the reader's thread fills the next batch on the other (linreg/threads.py).
    with one_blas_thread():
        for batch in batches:
            total = total.merge(Moments.of(batch.x, batch.y, batch.w, diagonal))
            dropped += batch.dropped
    return total, dropped


def gathered(cluster, parts, dropped):
    """Every worker's list of Moments `parts` (a total, or one per fold)
    merged part by part in rank order, and the rows dropped on all: the same
    Moments, bit for bit, on every worker and in a single process that merges
    the same shards in the same order."""
    if cluster.size == 1:
        return parts, dropped
    width = len(parts[0].mean)
    rows = cluster.gather(np.concatenate([*(part.pack() for part in parts), [dropped]]))
    pieces = [np.split(row[:-1], len(parts)) for row in rows]
    return [merge_all(Moments.unpack(mine[k], width) for mine in pieces) for k in range(len(parts))], int(rows[:, -1].sum())


# --- from the statistics to a problem the heart can train on -------------------


def standardized(moments, intercept=True, extended=False):
    """Means, scales and the standardized cross-products Σ w·z_s z_sᵀ of [x, y].

    As data/scaling.py does for rows in memory: every column centred on its
    (weighted) mean and divided by its standard deviation, or, without an
    intercept, not centred and divided by its root mean square. Without an
    intercept the uncentred cross-products are C + Σw·z̄z̄ᵀ. From diagonal
    statistics S is None: only the means and scales are known. Computed in
    extended precision from the statistics' extended values; returned as
    float64, or, `extended`, the means and S in extended precision (the
    scales are float64 either way: the units the coefficients go back by,
    S divided by exactly those).
    """
    C, mean, weight = moments.extended_C, moments.extended_mean, EXTENDED(moments.weight)
    with np.errstate(all="ignore"):
        if not intercept:
            C = C + weight * (mean * mean if moments.diagonal else np.outer(mean, mean))
            mean = np.zeros_like(mean)
        scale = np.sqrt((C if moments.diagonal else np.diag(C)) / weight).astype(np.float64)
        wide = scale.astype(EXTENDED)  # (a product of two float64 scales rounded to float64 would undo the rest)
        S = None if moments.diagonal else C / np.outer(wide, wide)  # free of units: the powers of two cancel
    # Means and scales back in the data's own units.
    mean, scale = np.ldexp(mean, moments.exponents), np.ldexp(scale, moments.exponents)
    if extended:
        return mean, scale, S
    return mean.astype(np.float64), scale, None if S is None else S.astype(np.float64)


def pseudo_rows(S, weight):
    """2(d + 1) rows whose mean squared error is the loss of all the data.

    The loss in standardized units is (1/Σw)·vᵀSv + b², for v = [-W, 1] and S
    the standardized cross-products. Factor S = RᵀR (Cholesky: R is
    (d + 1) × (d + 1)); then vᵀSv = ‖R·v‖², the sum of squares of d + 1 "rows"
    of R -- each a row [x, y] of a data set that has exactly the
    cross-products of the real one. Those rows and their negatives,
    multiplied by c = √((d + 1)/Σw), are 2(d + 1) rows with column means 0
    (so b's term is b², as for the centred data) whose mean squared error is

        (1/(2(d + 1)))·2c²·‖R·v‖² + b² = (1/Σw)·vᵀSv + b²,

    the loss of all N rows, for every W and b. Training on them is training
    on the quadratic form: the same model, the same loss written as a mean of
    squares, the same tape, step and loop, whatever N was.
    """
    rows = _rows(S, weight)
    return rows[:, :-1].astype(np.float64), rows[:, -1].astype(np.float64)


def _rows(S, weight):
    """The pseudo-rows [x, y] of `pseudo_rows`, in S's precision where the
    factor could be made in it (data/extended.py's `factor`)."""
    R = extended.factor(S)
    return np.sqrt(R.dtype.type(len(S)) / R.dtype.type(weight)) * np.vstack([R, -R])


# How far a standardized column may lie from the span of the others before it
# counts as an exact combination of them. From the statistics the distance is
# known to about √ε ≈ 1e-8 only (the cross-products square every number), so
# the threshold sits above that; data/design.py, which keeps the rows, resolves
# far closer (1e-12).
COMBINATION_TOLERANCE = 1e-7


def problem(moments, features, target, intercept=True, weighted=False, source="the data"):
    """The Standardized problem (data/scaling.py) the statistics stand for, with
    pseudo-rows as its x and y, after the checks data/design.py makes on rows.

    From diagonal statistics (too many features for the cross-products) it
    has no rows at all: its means and scales say how to standardize each
    batch read, and `cross_products` is False -- there is nothing from which
    to check for collinear columns or to compute standard errors.
    """
    from linreg.data.scaling import Standardized

    mean, scale, S = _checked(moments, features, target, intercept, source)
    n, d = moments.rows, len(features)
    rounded = mean.astype(np.float64)
    if moments.diagonal:
        return Standardized(
            rounded[:-1], scale[:-1], float(rounded[-1]), float(scale[-1]), np.zeros((0, d)), np.zeros(0), intercept,
            moments.weight / n, weighted, represents=n, cross_products=False,
        )  # fmt: skip
    _check_combinations((S[:-1, :-1] / EXTENDED(moments.weight)).astype(np.float64), features, source)
    rows = _rows(S, moments.weight)
    rows_extended = None
    if rows.dtype == EXTENDED and EXTENDED_EPSILON < np.finfo(np.float64).eps:
        # The refinement's rows. The model is centred on the float64 means
        # the coefficients go back by, which miss the statistics' own by a
        # rounding: the rows sit that far off centre (in standardized
        # units), so that the intercept the refinement finds makes up for
        # it. (With weights the intercept is not trained: left centred.)
        offset = np.zeros(d + 1, EXTENDED) if weighted else (mean - rounded) / scale
        rows_extended = rows + offset
    return Standardized(
        rounded[:-1], scale[:-1], float(rounded[-1]), float(scale[-1]), rows[:, :-1].astype(np.float64),
        rows[:, -1].astype(np.float64), intercept, moments.weight / n, weighted, represents=n,
        extended_rows=rows_extended, cross_epsilon=extended.statistics_epsilon(n, d + 1, rows_extended is not None),
    )  # fmt: skip


def describe_coefficients(d, intercept):
    """'the model has k coefficients (...)', for the messages on too few rows."""
    features = f"{d} feature{'s' if d != 1 else ''}"
    return (f"the model has {d + 1} coefficients (an intercept and {features})" if intercept
            else f"the model has {d} coefficient{'s' if d != 1 else ''} ({features}, no intercept)")


def _checked(moments, features, target, intercept, source):
    """`standardized(moments, extended=True)`, after the checks on the rows,
    the finite numbers, the constant columns and the spreads."""
    from linreg.errors import LinregError

    n, d = moments.rows, len(features)
    if n <= d + intercept:
        raise LinregError(f"{source} has {n} data row{'s' if n != 1 else ''} but {describe_coefficients(d, intercept)}; "
                          f"it needs at least {d + intercept + 1} rows")
    return checked_columns(moments, features, target, intercept, source, extended=True)


def checked_columns(moments, features, target, intercept, source, extended=False):
    """`standardized(moments)`, after the checks on the finite numbers, the
    constant columns and the spreads (a penalized fit needs these, not the
    rows' count)."""
    from linreg.errors import LinregError

    squares = moments.sums_of_squares
    if not (np.all(np.isfinite(moments.C)) and np.all(np.isfinite(moments.mean))):
        bad = [name for name, ok in zip([*features, target], np.isfinite(squares) & np.isfinite(moments.mean)) if not ok]
        raise LinregError(
            f"{source}: column {(bad or [target])[0]!r}: its values differ by more than float64 can hold "
            "(about 1.8e308); multiply or divide the column by a power of ten"
        )
    spread = np.sqrt(squares / moments.weight)
    # A column is constant when its spread is rounding beside its mean.
    constant = spread <= 16 * np.finfo(np.float64).eps * np.abs(moments.mean)
    for j, name in enumerate(features if intercept else []):  # without one, a constant is a column like any other
        if constant[j]:
            raise LinregError(
                f"{source}: feature column {name!r} is constant ({np.ldexp(moments.mean[j], moments.exponents[j]):g} on every row); "
                "the intercept already plays that role, so leave it out with --features"
            )
    if constant[-1]:
        raise LinregError(f"{source}: target column {target!r} is constant; there is nothing to fit")
    mean, scale, S = standardized(moments, intercept, extended)
    if np.any(scale < np.finfo(np.float64).tiny):
        j = int(np.argmin(scale))
        raise LinregError(f"{source}: column {[*features, target][j]!r}: its spread is too small for float64 arithmetic; "
                          "multiply the column by a power of ten")
    return mean, scale, S


def _check_combinations(correlation, features, source):
    """Refuse a feature column that is an exact linear combination of others."""
    from linreg.errors import LinregError

    d = len(features)
    try:
        diagonal = np.abs(np.diag(np.linalg.cholesky(correlation)))
    except np.linalg.LinAlgError:
        diagonal = np.zeros(d)
        diagonal[: _leading_definite(correlation)] = 1.0
    small = np.flatnonzero(diagonal < COMBINATION_TOLERANCE)
    if len(small):
        j = int(small[0])
        coefficients = np.linalg.lstsq(correlation[:j, :j], correlation[:j, j], rcond=None)[0] if j else np.zeros(0)
        names = ", ".join(repr(features[k]) for k in range(j) if abs(coefficients[k]) > 1e-6) or "the intercept"
        raise LinregError(
            f"{source}: feature column {features[j]!r} is an exact linear combination of {names} (to the "
            "accuracy of streamed statistics), so its coefficient cannot be told apart from theirs; "
            "leave it out with --features"
        )


def _leading_definite(matrix):
    """How many leading columns of a symmetric matrix are positive definite."""
    for k in range(len(matrix), 0, -1):
        try:
            np.linalg.cholesky(matrix[:k, :k])
            return k
        except np.linalg.LinAlgError:
            continue
    return 0
