"""Independent answers about a fit: the exact least-squares solution and the
statistics of an ordinary least-squares fit, in float64.
"""
import math
from dataclasses import dataclass

import numpy as np


def least_squares(x, y):
    """The W and b that minimise the mean squared error, in closed form (float64).

    Centering x and y first removes the intercept from the problem (the best
    line always passes through the point of means). Scaling each centred
    column to unit length makes "small" mean the same for every column: an
    SVD-based solver's accuracy depends on the columns' relative sizes, and
    on raw polynomial columns (x, ..., x¹⁰) it loses every digit. numpy's
    `lstsq` (LAPACK's SVD solver) then works on the data's columns, not on
    the normal equations, so it does not square their condition number.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    x_mean, y_mean = x.mean(axis=0), float(y.mean())
    centred = x - x_mean
    lengths = np.linalg.norm(centred, axis=0)
    W = np.linalg.lstsq(centred / lengths, y - y_mean, rcond=None)[0] / lengths
    return W, y_mean - float(x_mean @ W)


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


# An exact fit: the residuals are below this fraction of the target's spread,
# which is the rounding of y itself, not noise. Its standard errors are 0 and
# t and p are not meaningful (0/0); they are reported as such, not as t ≈ 1e16.
EXACT_RTOL = 1e-9


def ols_statistics(x, y, W, b, confidence=0.95):
    """Standard errors, t, p, confidence intervals and R² for the fit (W, b).

    The textbook formulas, in float64:
        residual variance  s² = Σ residual² / (n - p),  p = d + 1 coefficients
        Cov(W)             = s² (X_cᵀX_c)⁻¹       (X_c: x with column means removed)
        Var(b)             = s² (1/n + x̄ᵀ (X_cᵀX_c)⁻¹ x̄)
        t = coefficient / standard error, p-value from Student's t with n - p
        degrees of freedom, interval = coefficient ± t_(0.975, n-p) · SE.
    (X_cᵀX_c)⁻¹ comes from the SVD of X_c with unit-length columns (never
    forming X_cᵀX_c, which would square its condition number), so features
    of very different scales cost no accuracy.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    W = np.asarray(W, np.float64)
    n, d = x.shape
    df = n - (d + 1)
    residuals = y - (x @ W + b)
    rss = float(residuals @ residuals)
    tss = float(np.sum((y - y.mean()) ** 2))
    exact = rss <= EXACT_RTOL**2 * tss
    if exact:
        rss = 0.0
    s2 = rss / df
    x_mean = x.mean(axis=0)
    centred = x - x_mean
    lengths = np.linalg.norm(centred, axis=0)
    # QR first: R (d x d) has the same singular values and right singular
    # vectors as the N x d matrix, and its SVD is cheap.
    R = np.linalg.qr(centred / lengths, mode="r")
    _, singular, Vt = np.linalg.svd(R)
    inverse = (Vt.T / singular**2) @ Vt / np.outer(lengths, lengths)
    variances = np.concatenate([[1.0 / n + x_mean @ inverse @ x_mean], np.diag(inverse)]) * s2
    coefficients = np.concatenate([[b], W])
    std_errors = np.sqrt(variances)
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
        adj_r_squared=1.0 - (1.0 - r_squared) * (n - 1) / df,
        residual_sd=math.sqrt(s2),
        n=n,
        df_residual=df,
        exact=exact,
    )
