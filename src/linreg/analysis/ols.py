"""Independent answers about a fit: the exact least-squares solution and the
statistics of an ordinary least-squares fit, in float64.
"""
import math
from dataclasses import dataclass

import numpy as np


def standardized_residuals(scaled, W, b):
    """y − (x·W + b) on the standardized rows, from the precondition stage's
    factor when it made one (x_s = q·R/√N: the rows' memory is q's now).
    Made once for the statistics, the diagnostics and the error bounds of
    one fit: kept with `scaled` for the W and b last asked (read-only)."""
    W = np.asarray(W, np.float64)
    key = (W.tobytes(), float(b))
    kept = scaled.__dict__.get("_residuals")
    if kept is not None and kept[0] == key:
        return kept[1]
    if scaled.factor is not None:
        q, R = scaled.factor
        residuals = scaled.y - (q @ (R @ W / math.sqrt(len(scaled.y))) + b)
    else:
        residuals = scaled.y - (scaled.x @ W + b)
    residuals.flags.writeable = False
    scaled._residuals = (key, residuals)
    return residuals


def column_means(scaled):
    """The standardized columns' means (0 to rounding, with an intercept)."""
    if scaled.factor is not None:
        q, R = scaled.factor
        return q.mean(axis=0) @ R / math.sqrt(len(scaled.y))
    return scaled.x.mean(axis=0)


def is_exact(scaled, rss_standardized):
    """Whether residuals with this sum of squares (standardized) are zero to rounding."""
    # ‖y‖² in standardized units: ‖y - ȳ‖² + N·ȳ², over σ_y² (‖y - ȳ‖² is N
    # there; computed from the rows when they are held).
    centred = scaled.multiplicity * float(scaled.y @ scaled.y) if scaled.cross_products else scaled.rows
    y_norm2 = centred + scaled.rows * (scaled.y_mean / scaled.y_scale) ** 2
    return rss_standardized <= EXACT_RTOL**2 * y_norm2


def least_squares(x, y, intercept=True, weights=None):
    """The W and b that minimise the mean squared error, in closed form (float64).

    Standardizing first (data/scaling.py) removes the intercept from the
    problem (the best line passes through the point of means) and gives
    every column the same size, so "small" means the same for all of them:
    an SVD-based solver's accuracy depends on the columns' relative sizes,
    and on raw polynomial columns (x, ..., x¹⁰) it loses every digit; and
    numbers near 1e-300 or 1e300 neither underflow nor overflow. numpy's
    `lstsq` (LAPACK's SVD solver) then works on the columns, not on the
    normal equations, so it does not square their condition number.
    """
    from linreg.data.scaling import standardize

    return solve(standardize(x, y, intercept, weights))


def solve(scaled):
    """`least_squares` of a problem already standardized (data/scaling.py's
    Standardized: rows, or streamed statistics' pseudo-rows), in original units.
    b is 0 at the minimum in these coordinates: the columns are centred, or
    there is no intercept."""
    W_s = np.linalg.lstsq(scaled.x, scaled.y, rcond=None)[0]
    return scaled.coefficients(W_s, 0.0)


# --- the statistics of an ordinary least-squares fit --------------------------


@dataclass
class OLSStatistics:
    """What statsmodels' OLS summary shows, for coefficients (intercept, W_1..W_d).

    Every array is ordered [intercept, feature 1, ..., feature d].
    """

    coefficients: np.ndarray
    std_errors: np.ndarray
    t: np.ndarray
    p_values: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    r_squared: float
    adj_r_squared: float
    residual_sd: float
    n: int
    df_residual: int
    exact: bool = False  # residuals zero to rounding: no error to estimate
    covariance: np.ndarray = None  # [d+1, d+1] of (intercept, W), original units


# An exact fit (is_exact): the residuals' norm is below this fraction of the target's
# norm -- a few thousand roundings of y itself, not noise. Its standard errors
# are 0 and t and p are not meaningful (0/0); they are reported as such, not
# as t ≈ 1e16. (Measured against y, not its spread: a noise of 1 on values
# near 1e9 is small beside the spread yet far above rounding.)
EXACT_RTOL = 1e-12


def standardized_statistics(scaled, W_s, b_s, confidence=0.95, R=None):
    """The statistics of the fit (W_s, b_s) on standardized data, in original units.

    The textbook formulas, in float64, on the standardized data x_s, y_s:
        residual variance  s² = Σ residual² / (n - p),  p = d + 1 coefficients
        Cov(W_s)           = s² (x_sᵀx_s)⁻¹
        Var(b)             = s² (1/n + zᵀ (x_sᵀx_s)⁻¹ z),  z = x̄/σ_x
        t = coefficient / standard error, p-value from Student's t with n - p
        degrees of freedom, interval = coefficient ± t_(0.975, n-p) · SE.
    Back in original units every W_j and its standard error are multiplied by
    σ_y/σ_xj, the intercept's by σ_y, the residual SD by σ_y; t, p and R² do
    not change with units. Working on standardized numbers (all near 1)
    keeps data near 1e-300 or 1e300 from underflowing or overflowing, and
    (x_sᵀx_s)⁻¹ comes from the SVD of the QR factor R of x_s (never forming
    x_sᵀx_s, which would square its condition number).
    """
    y = scaled.y
    W_s = np.asarray(W_s, np.float64)
    n, d = scaled.rows, len(scaled.x_mean)
    df = n - (d + 1 if scaled.intercept else d)
    residuals = standardized_residuals(scaled, W_s, b_s)
    # (Sums over pseudo-rows times their multiplicity are sums over the data.)
    rss = scaled.multiplicity * float(residuals @ residuals)
    tss = scaled.multiplicity * float(y @ y)  # y_s has (weighted) mean 0; without an intercept this is Σy², as statsmodels' R²
    exact = is_exact(scaled, rss)
    if exact:
        rss = 0.0
    s2 = rss / df
    # QR first: R (d x d) has the same singular values and right singular
    # vectors as the N x d matrix, and its SVD is cheap. (A fit passes the R
    # it orthogonalized with, rather than factor the data a second time.)
    R = (np.linalg.qr(scaled.x, mode="r") if R is None else R) * math.sqrt(scaled.multiplicity)
    _, singular, Vt = np.linalg.svd(R)
    inverse = (Vt.T / singular**2) @ Vt
    z = scaled.x_mean / scaled.x_scale
    variances_s = np.concatenate([[1.0 / n + z @ inverse @ z], np.diag(inverse)]) * s2
    units = scaled.y_scale / np.concatenate([[1.0], scaled.x_scale])  # per coefficient
    # The whole covariance of (b, W_s): Cov(W_s) = s²·inverse and, since b = ȳ - x̄ᵀW
    # with ȳ uncorrelated with W, Cov(b, W_s) = -s²·inverse·z; then to original units.
    covariance = np.empty((d + 1, d + 1))
    covariance[1:, 1:] = s2 * inverse
    covariance[0, 1:] = covariance[1:, 0] = -s2 * (inverse @ z)
    covariance[0, 0] = variances_s[0]
    if not scaled.intercept:  # no intercept: its slot holds 0 and nothing varies
        covariance[0, :] = covariance[:, 0] = 0.0
        variances_s[0] = 0.0
    with np.errstate(over="ignore"):
        covariance *= np.outer(units, units)
    W, b = scaled.coefficients(W_s, b_s)
    coefficients = np.concatenate([[b], W])
    std_errors = np.sqrt(variances_s) * units
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 in the slot of an intercept left out
        t = np.full_like(coefficients, np.nan) if exact else coefficients / std_errors
    from scipy import stats  # imported here: the demo never needs it, and it takes 0.4 s

    p_values = 2.0 * stats.t.sf(np.abs(t), df)
    half_width = stats.t.ppf(0.5 + confidence / 2.0, df) * std_errors
    r_squared = 1.0 - rss / tss
    return OLSStatistics(
        coefficients=coefficients,
        std_errors=std_errors,
        t=t,
        p_values=p_values,
        ci_low=coefficients - half_width,
        ci_high=coefficients + half_width,
        r_squared=r_squared,
        adj_r_squared=1.0 - (1.0 - r_squared) * (n - 1 if scaled.intercept else n) / df,
        # With weights, statsmodels' scale is Σ w·r²/df for the weights as given.
        residual_sd=math.sqrt(s2 * scaled.weight_mean) * scaled.y_scale,
        n=n,
        df_residual=df,
        exact=exact,
        covariance=covariance,
    )


def loss_statistics(scaled, W_s, b_s, mean_square, confidence=0.95):
    """What can be said of a fit known only by its loss: the coefficients,
    R², the residual SD; standard errors, t, p and intervals are nan.

    For data with too many features to gather xᵀx (engine stream past 4096
    features). In standardized units the target's mean square is 1, so the
    residual sum of squares is N·loss and the total is N: R² = 1 - loss.
    """
    n, d = scaled.rows, len(scaled.x_mean)
    df = n - (d + 1 if scaled.intercept else d)
    rss = n * mean_square
    exact = is_exact(scaled, rss)
    rss = 0.0 if exact else rss
    W, b = scaled.coefficients(W_s, b_s)
    coefficients = np.concatenate([[b], W])
    unknown = np.full_like(coefficients, np.nan)
    r_squared = 1.0 - rss / n
    return OLSStatistics(
        coefficients=coefficients, std_errors=unknown, t=unknown, p_values=unknown, ci_low=unknown, ci_high=unknown,
        r_squared=r_squared, adj_r_squared=1.0 - (1.0 - r_squared) * (n - 1 if scaled.intercept else n) / df,
        residual_sd=math.sqrt(rss / df * scaled.weight_mean) * scaled.y_scale, n=n, df_residual=df, exact=exact,
    )  # fmt: skip
