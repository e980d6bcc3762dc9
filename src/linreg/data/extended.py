"""Arithmetic beyond float64 for the statistics (data/moments.py).

The normal equations square the condition number κ of the standardized
columns: from cross-products good to float64's ε ≈ 1.1e-16 the coefficients
keep κ²·ε, where QR on the rows keeps κ·ε. Cross-products good to about
1e-19 give QR's digits wherever κ²·1e-19 stays below float64's own rounding
(docs/engine-line.md measures where: κ below about 42). Here they are made
so, and cheaply: the matrix-multiply kernel still does the work, on columns
split so that it adds their products exactly (`sums`), the rest carried in
numpy's long double (64 bits of mantissa on x86; float64 elsewhere, and
`statistics_epsilon` then says so), as is the Cholesky factor the
pseudo-rows are made from (`cholesky`).
"""
import math

import numpy as np

# Numpy's long double: 64 bits of mantissa where the platform has them (x86),
# float64 elsewhere.
EXTENDED = np.longdouble
EXTENDED_EPSILON = float(np.finfo(EXTENDED).eps)

# Columns whose largest magnitude lies outside this range are counted in units
# of their own power of two; inside it, squares and sums of up to 1e15 of them
# neither underflow nor overflow.
UNIT_RANGE = (2.0**-300, 2.0**300)


def sums(x, y, w=None, diagonal=False):
    """(Σw, the means, C, Σ log w, the columns' powers of two) of the rows
    [x, y] (data/moments.py's Moments), means and C in extended precision.

    The cross-products of float64 numbers summed in float64 keep about
    16 digits of C, and the normal equations lose κ² of them, where QR on
    the rows loses κ. So the sums are made exact, or nearly, with the
    matrix-multiply kernel all the same. Each column is centred on its
    float64 mean (the shift) with the subtraction's rounding kept
    (Knuth's two-sum: z + e is the difference exactly), then split as
    z + e = h + l: h the values rounded to β bits of the column's largest
    magnitude (adding and subtracting a power of two does it, exactly),
    l the rest. A product of two h's has at most 2β bits and a sum of n
    of them at most 2β + log2(n), so with β = (53 − log2 n)/2 every sum
    in Σ h·hᵀ is exact, in whatever order the kernel adds. The rest of

        Σ (z + e)(z + e)ᵀ = Σ h·hᵀ + Σ h·lᵀ + Σ l·hᵀ + Σ l·lᵀ

    has l about 2^-β of z: its float64 rounding is 2^-β smaller than
    Σ z·zᵀ's own would be. The parts are added in extended precision
    (numpy's long double), as are the merges. With weights the left
    factor w·z is made exact first, as the sum of its float64 product
    and that product's rounding error (Dekker's two-product). The rows
    go through in blocks that stay in the processor's cache, so the
    extra arithmetic costs little beyond one read of the batch.
    """
    width, n = x.shape[1] + 1, len(y)
    # Columns as rows ([d, rows], contiguous when x comes column by column,
    # as the reader gives it), so that a block of rows is a slice.
    columns = np.asarray(x, np.float64).T
    y = np.asarray(y, np.float64)
    w = None if w is None else np.asarray(w, np.float64)
    with np.errstate(all="ignore"):  # what overflows is found by the checks (`problem`)
        if w is None:
            weight, log_weights = float(n), 0.0
        else:
            weight, log_weights = float(w.sum()), float(np.sum(np.log(w)))
        # A first pass, a block at a time (the blocks are contiguous copies,
        # whatever the layout of x): each column's extremes and float64 mean.
        # A column far from 1 (see UNIT_RANGE) is counted in units of its own
        # power of two, and its mean found again in them.
        units = np.ones(width)
        blocks = _Blocks(columns, y, w, units)
        highest, lowest, shift = blocks.extremes_and_mean(weight)
        peaks = np.maximum(highest, -lowest)
        exponents = np.where((peaks > 0) & ((peaks < UNIT_RANGE[0]) | (peaks > UNIT_RANGE[1])), np.frexp(peaks)[1], 0)
        if np.any(exponents):
            units[:] = np.ldexp(1.0, -exponents)
            highest, lowest, shift = blocks.extremes_and_mean(weight)
        # The largest |z| (and |w·z|) bound the split's powers of two.
        reach = np.maximum(highest - shift, shift - lowest) * (1 + 8 * np.finfo(np.float64).eps)
        bits = split_bits(n)
        sigma = _sigma(reach, bits)
        sigma_left = sigma if w is None else _sigma(reach * w.max() * (1 + 8 * np.finfo(np.float64).eps), bits)
        totals = np.zeros(width, EXTENDED)
        shape = (2, width) if diagonal else (2 * width, 2 * width)
        exact, rest = np.zeros(shape), np.zeros(shape, EXTENDED)
        for values, weights in blocks:
            right, z, error = blocks.split(values, shift, sigma)  # [h; l]: z + its error is h + l
            left = right if w is None else blocks.weighted(z, error, weights, sigma_left)
            totals += left[:width].sum(axis=1)
            totals += left[width:].sum(axis=1)
            # One product gives Σ h·hᵀ (every sum exact: the block's and
            # the running total), Σ h·lᵀ and Σ l·hᵀ, Σ l·lᵀ. Without
            # weights it is one symmetric product, [h; l]·[h; l]ᵀ, which numpy
            # hands to BLAS's syrk: half the flops of a general product
            # (so the sums of h and l are not folded into it with a row of
            # ones: measured, 8-10 ms slower on 1e6 x 8).
            if diagonal:
                product = np.stack([np.einsum("ij,ij->i", left[:width], right[:width]),
                                    np.einsum("ij,ij->i", left[:width], right[width:])
                                    + np.einsum("ij,ij->i", left[width:], right[:width] + right[width:])])
                exact[0] += product[0]
                rest[1] += product[1]
            else:
                product = left @ right.T
                exact[:width, :width] += product[:width, :width]
                rest += product
                rest[:width, :width] = 0
        if diagonal:
            products = exact[0].astype(EXTENDED) + rest[1]
        else:
            products = exact[:width, :width].astype(EXTENDED) + rest[:width, width:] + rest[width:, :width] + rest[width:, width:]
        C = products - (totals * totals if diagonal else np.outer(totals, totals)) / EXTENDED(weight)
        if not diagonal:
            C = (C + C.T) / 2  # the two Σ h·lᵀ round apart; C is symmetric
        mean = shift.astype(EXTENDED) + totals / EXTENDED(weight)
    return weight, mean, C, log_weights, exponents


def pair(values):
    """Extended-precision values as two float64 arrays, high and low."""
    high = np.asarray(values).astype(np.float64)
    return high, (values - high).astype(np.float64)


def split_bits(rows):
    """β: the bits of the high parts whose products summed over `rows` rows stay exact."""
    return max(1, (53 - max(1, math.ceil(math.log2(max(rows, 2))))) // 2)


def _sigma(reach, bits):
    """Per row, the number whose addition and subtraction round every |v| <
    reach to `bits` bits of 2^e ≥ reach: 1.5·2^(e + 52 − bits), whose last
    bit is worth 2^(e − bits)."""
    return np.ldexp(0.75, np.frexp(np.where(np.isfinite(reach), reach, 0.0))[1] + 53 - bits)[:, None]


# Numbers in a block of rows of `Moments.of`: 1 MiB each, so that the few
# arrays of a block stay in the cache between the steps that make them, while
# the dozen numpy calls per block are few enough that two threads summing
# halves of the rows (scaling._statistics_of) rarely wait for each other's
# turn at the interpreter's lock. Measured on 1e6 x 8 rows (one thread /
# two halves): 51 / 46 ms with blocks of 2^15 numbers, 41 / 31 with 2^17,
# 44 / 42 with 2^19.
BLOCK_NUMBERS = 2**17


class _Blocks:
    """A batch's rows [x, y] a block at a time, in their units, in buffers
    made once: (values [width, rows], weights or None) per block."""

    def __init__(self, columns, y, w, units):
        self.columns, self.y, self.w, self.units = columns, y, w, units
        width, n = len(units), len(y)
        self.step = min(n, max(1024, BLOCK_NUMBERS // width))
        # values, z, the two-sum's two helpers (and with weights w·z and its
        # two-product error); [h; l] of z (and of w·z).
        self.buffers = np.empty((4 if w is None else 6, width, self.step))
        self.stacked = np.empty((1 if w is None else 2, 2 * width, self.step))

    def __iter__(self):
        values = self.buffers[0]
        for start in range(0, len(self.y), self.step):
            rows = slice(start, start + self.step)
            count = len(self.y[rows])
            block = values[:, :count]
            np.multiply(self.columns[:, rows], self.units[:-1, None], out=block[:-1])
            np.multiply(self.y[rows], self.units[-1], out=block[-1])
            yield block, None if self.w is None else self.w[rows]

    def extremes_and_mean(self, weight):
        """Each row's largest and least value and (weighted) mean, in the units."""
        width = len(self.units)
        highest, lowest, total = np.full(width, -np.inf), np.full(width, np.inf), np.zeros(width)
        for values, weights in self:
            np.maximum(highest, values.max(axis=1), out=highest)
            np.minimum(lowest, values.min(axis=1), out=lowest)
            total += values.sum(axis=1) if weights is None else values @ weights
        return highest, lowest, total / weight

    def split(self, values, shift, sigma):
        """[h; l] with h + l = values − shift exactly (see `sums`), and z =
        fl(values − shift) and its error (for `weighted`)."""
        width, count = values.shape
        z, back, error = (buffer[:, :count] for buffer in self.buffers[1:4])
        stacked = self.stacked[0][:, :count]
        high, low = stacked[:width], stacked[width:]
        np.subtract(values, shift[:, None], out=z)
        # Knuth's two-sum: the error of z = fl(values − shift).
        np.subtract(z, values, out=back)  # what was subtracted, as float64 saw it
        np.subtract(z, back, out=error)
        np.subtract(values, error, out=error)  # what of values the difference lost
        np.subtract(-shift[:, None], back, out=back)  # what of the shift it lost
        error += back
        np.add(z, sigma, out=high)
        high -= sigma
        np.subtract(z, high, out=low)
        low += error
        return stacked, z, error

    def weighted(self, z, error, weights, sigma):
        """[h; l] of w·(z + error): w·z exactly (Dekker's two-product), w·error
        rounded, at ε of a number ε smaller than w·z."""
        width, count = z.shape
        product, product_error = (buffer[:, :count] for buffer in self.buffers[4:6])
        stacked = self.stacked[1][:, :count]
        high, low = stacked[:width], stacked[width:]
        np.multiply(z, weights, out=product)
        z_high, z_low = _halves(z)
        w_high, w_low = _halves(weights)
        np.multiply(z_high, w_high, out=product_error)
        product_error -= product
        product_error += z_high * w_low
        product_error += z_low * w_high
        product_error += z_low * w_low
        product_error += error * weights
        np.add(product, sigma, out=high)
        high -= sigma
        np.subtract(product, high, out=low)
        low += product_error
        return stacked


def _halves(values):
    big = values * 134217729.0  # 2^27 + 1
    high = big - (big - values)
    return high, values - high


def factor(S):
    """An R with RᵀR = S: Cholesky's, or, when S is singular (an exact fit makes
    y a combination of the columns), one from the eigenvalues, S = V·Λ·Vᵀ.

    S in extended precision (streamed statistics) gets its Cholesky factor
    in extended precision too, up to EXTENDED_FACTOR_COLUMNS columns: rounded
    to float64, R would carry float64's rounding back into RᵀR, and the
    normal equations would lose κ² of float64's digits after all. Past that
    width (its O(d³) long-double loop grows slow) and for a singular S the
    factor is float64's."""
    if S.dtype == EXTENDED and len(S) <= EXTENDED_FACTOR_COLUMNS:
        try:
            return cholesky(S)
        except np.linalg.LinAlgError:
            pass
    S = S.astype(np.float64)
    try:
        return np.linalg.cholesky(S).T
    except np.linalg.LinAlgError:
        values, vectors = np.linalg.eigh(S)
        return np.sqrt(np.clip(values, 0.0, None))[:, None] * vectors.T


EXTENDED_FACTOR_COLUMNS = 512


def cholesky(S):
    """The upper Cholesky factor of S row by row in numpy's long doubles
    (its linear algebra has none): R_jj² + Σ_k<j R_kj² = S_jj, and the rest
    of row j from the rows above it. The last pivot, y's, is the residual's
    size, and may be zero (an exact fit)."""
    width = len(S)
    R = np.zeros_like(S)
    for j in range(width):
        rest = S[j, j:] - R[:j, j] @ R[:j, j:]
        if j == width - 1 and not rest[0] > 0 and rest[0] > -16 * EXTENDED_EPSILON * S[j, j]:
            rest[0] = 0  # y in the span of the columns, to rounding
        elif not rest[0] > 0:
            raise np.linalg.LinAlgError("not positive definite")
        R[j, j] = np.sqrt(rest[0])
        R[j, j + 1 :] = rest[1:] / R[j, j] if R[j, j] > 0 else 0
    return R


def statistics_epsilon(rows, width, extended):
    """The relative rounding of the standardized cross-products S the
    training sees: float64's ε from float64 sums; from the split sums (`of`),
    Σ h·lᵀ's float64 rounding, 2^-β beside ε, grown like √rows, and the
    extended precision of the merges and the factor, grown like the width."""
    eps = np.finfo(np.float64).eps
    if not extended:
        return float(eps)
    return float(eps * 2.0 ** -split_bits(rows) * math.sqrt(rows) + width * EXTENDED_EPSILON)
