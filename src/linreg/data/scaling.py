"""Changes of variables that make the loss's bowl round before training.

Both keep the model, the loss and the step as they are and change only the
coordinates they work in; the coefficients are mapped back afterwards.

standardize:   every column to mean 0 and standard deviation 1, so that one
               learning rate suits every coefficient (the one definition,
               `to_standardized` and its inverse `from_standardized`, used
               for rows in memory, for batches read from files, and inside
               an exported model's graph; data/moments.py finds the same
               means and spreads from streamed statistics);
orthogonalize: the standardized columns made orthogonal (QR), so that the
               bowl becomes perfectly round and one step of plain descent
               lands at its bottom, whatever the correlations.
"""
import math
from dataclasses import dataclass

import numpy as np


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

    @property
    def rows(self):
        """N, the number of data rows (for degrees of freedom)."""
        return len(self.y) if self.represents is None else self.represents

    @property
    def multiplicity(self):
        return self.rows / len(self.y)

    @property
    def train_intercept(self):
        """Whether training moves b. With weights the intercept is taken out by
        weighted centring instead: at the minimum b = 0 in these coordinates."""
        return self.intercept and not self.weighted

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
    x_mean, x_scale, x_s = _standardize_columns(x, first_column=1, centre=intercept, weights=u)
    y_mean, y_scale, y_s = _standardize_columns(y[:, None], first_column=0, centre=intercept, weights=u)
    y_s = y_s[:, 0]
    if u is not None:
        x_s, y_s = _weighted(x_s, y_s, u)
    return Standardized(
        x_mean, x_scale, float(y_mean[0]), float(y_scale[0]), x_s, y_s, intercept,
        1.0 if weights is None else float(np.mean(weights)), weights is not None,
    )  # fmt: skip


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
    # sums of 1e307 overflow to infinity, while the scaled numbers are near 1.
    u = np.ones(len(values)) if weights is None else weights  # mean 1
    with np.errstate(all="ignore"):
        peak = np.max(np.abs(values), axis=0)
        peak = np.where(peak > 0, peak, 1.0)
        mean = (u @ (values / peak)) / len(u) * peak if centre else np.zeros(values.shape[1])
        centred = values - mean
        if centre:
            # A second pass: the mean of 1e9 + noise of 1e-6 is known to a few
            # 1e-7 only, so the centred column keeps a remainder of that size;
            # taking it out of the centred numbers leaves their mean at rounding.
            shift = (u @ centred) / len(u)
            centred, mean = centred - shift, mean + shift
        spread = np.max(np.abs(centred), axis=0)
        spread = np.where(spread > 0, spread, 1.0)
        scale = np.sqrt((u @ (centred / spread) ** 2) / len(u)) * spread
        standardized = centred / scale
    # Whole columns checked at once (a column of a row-major array is strided).
    huge = ~(np.isfinite(centred).all(axis=0) & np.isfinite(scale))
    tiny = ~np.isfinite(standardized).all(axis=0) | ~(scale >= np.finfo(np.float64).tiny)
    for j in range(values.shape[1]):
        if huge[j]:
            raise ScaleError(first_column + j, "its values differ by more than float64 can hold (about 1.8e308)")
        if tiny[j]:
            raise ScaleError(first_column + j, "its spread is too small for float64 arithmetic")
    return mean, scale, standardized


@dataclass
class Orthogonalized:
    """The standardized columns made orthonormal, and the way back.

    Why: descent needs about κ·ln(1/ε) epochs, κ the condition number of the
    loss's Hessian (core/optimizers.py), and standardizing removes only the
    differences of scale. Correlated columns keep κ large: 1e5 on the hard
    generated sets, 1e19 on a degree-10 polynomial design.

    The cure is another change of variables. Factor the standardized design
    as x_s = Q·R (QR: Q [N, d] with orthonormal columns, R [d, d] upper
    triangular) and train the same model on q = √N·Q instead of x_s:
        ŷ = q·φ + b,   with   W = √N·R⁻¹·φ   giving the same predictions.
    The Hessian of the loss in (φ, b) is 2/N·[qᵀq, qᵀ1; 1ᵀq, N] = 2·I (the
    columns of x_s are centred, so those of Q are too): every direction has
    the same curvature, κ = 1, and plain descent with rate 1/λ = 1/2 lands
    at the bottom in one step, whatever the correlations were.

    Why not keep W and precondition the gradient (W ← W − r·(x_sᵀx_s)⁻¹·g)?
    The steps are the same in exact arithmetic, but that gradient is made
    from x_s and its rounding is amplified by κ(x_s)², the Hessian's
    condition number; the gradient with respect to φ is made from orthonormal
    columns, and only the final triangular solve costs accuracy, about
    κ(x_s)·ε -- the accuracy of QR-based least squares.
    """

    q: np.ndarray  # [N, d]: √N·Q
    R: np.ndarray  # [d, d]
    singular_values: np.ndarray  # of x_s (those of R), largest first

    @property
    def condition_number(self):
        """κ(x_s): how much relative errors in the data can grow in W."""
        s = self.singular_values
        return float(s[0] / s[-1]) if s[-1] > 0 else math.inf

    def weights(self, phi):
        """The standardized-space W for the orthogonal-space φ: one triangular solve."""
        from scipy.linalg import solve_triangular

        return math.sqrt(len(self.q)) * solve_triangular(self.R, np.asarray(phi, np.float64))


def orthogonalize(x_standardized):
    x = np.asarray(x_standardized, np.float64)
    Q, R = np.linalg.qr(x)  # Householder reflections (LAPACK): backward stable
    return Orthogonalized(math.sqrt(len(x)) * Q, R, np.linalg.svd(R, compute_uv=False))
