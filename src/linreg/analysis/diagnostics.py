"""The rest of statsmodels' OLS summary: the F test, the likelihood and the
information criteria, the residual tests, and the condition numbers.

Everything is computed from the standardized data (data/scaling.py) and the
fit on it, then put in the original units through σ_y alone: the residuals in
original units are σ_y times the standardized ones, so unit-free numbers
(F, p-values, Durbin-Watson, skew, kurtosis, the normality tests) are the same
on both, and the log-likelihood only needs log(σ_y). That keeps data near
1e-300 or 1e300 from underflowing or overflowing.
"""
import math
import warnings
from dataclasses import dataclass

import numpy as np

from linreg.analysis.ols import column_means, is_exact, standardized_residuals

# statsmodels adds its "condition number is large" note above this.
RAW_CONDITION_LARGE = 1e3
# The usual rule of thumb (Belsley, Kuh and Welsch): condition numbers of
# scaled data above about 30 mean strong collinearity.
STANDARDIZED_CONDITION_LARGE = 30.0


@dataclass
class Diagnostics:
    """What statsmodels' OLS summary shows besides the coefficient table.

    f_statistic, f_p_value
        The F test of "all weights are zero" (the model against a flat line
        at the mean of y), with df_model = d and df_resid = n - d - 1 degrees
        of freedom. A small p-value: the features explain more of y than
        chance would.
    log_likelihood, aic, bic
        How probable the data are under the fit with Gaussian noise, and the
        Akaike and Bayesian information criteria, -2·log_likelihood plus a
        penalty of 2 or log(n) per coefficient (d + 1, intercept included).
        Only differences between models fitted to the same y mean anything;
        lower AIC/BIC is better. They depend on the units of y.
    durbin_watson
        Whether neighbouring residuals (in row order) move together: about 2
        when they do not, towards 0 when they do (positive autocorrelation,
        e.g. a trend the model misses in time-ordered data), towards 4 when
        they alternate. Meaningless if the row order means nothing.
    omnibus, omnibus_p_value
        D'Agostino and Pearson's test that the residuals are normal, from
        their skew and kurtosis together. A small p-value: they are not, and
        the p-values and intervals of the coefficients are less trustworthy
        in small samples. Not computed (nan) below 8 rows; approximate below 20.
    jarque_bera, jarque_bera_p_value
        Another test of normal residuals, n/6·(skew² + (kurtosis - 3)²/4),
        chi-squared with 2 degrees of freedom for large n.
    skew, kurtosis
        The residuals' asymmetry (0 for a normal distribution) and
        tail-heaviness (3 for a normal distribution; not the excess).
    condition_number_raw
        statsmodels' "Cond. No.": the ratio of the largest to the smallest
        singular value of the raw design [1, x]. It changes with the units
        and offsets of the columns (measuring a column in millimetres instead
        of metres changes it), so a large value often means only that.
    condition_number_standardized
        The same ratio for the standardized columns (mean 0, SD 1): what is
        left is collinearity alone. 1 for uncorrelated features; large values
        mean some combination of features is nearly constant, so their
        weights are poorly determined (large standard errors) and sensitive
        to small changes in the data. linreg fits on standardized data, so
        this is also the one that limits the fit's accuracy.
    n, df_model, df_resid
        Rows, weights (d), and n - d - 1.
    exact
        The residuals are zero to rounding (as in ols.OLSStatistics.exact).
        Then f_statistic is inf and f_p_value 0 (nan if df_resid ≤ 0);
        log_likelihood is inf and aic, bic are -inf (the limit as the
        residuals go to zero, and what statsmodels gives for zero residuals);
        durbin_watson, the normality tests, skew and kurtosis are nan
        (residuals that are only rounding have no shape to test).

    Values that cannot be computed are nan (e.g. the F test when
    df_resid ≤ 0); none of the numbers is JSON-safe when inf or nan.
    """

    f_statistic: float
    f_p_value: float
    log_likelihood: float
    aic: float
    bic: float
    durbin_watson: float
    omnibus: float
    omnibus_p_value: float
    jarque_bera: float
    jarque_bera_p_value: float
    skew: float
    kurtosis: float
    condition_number_raw: float
    condition_number_standardized: float
    n: int
    df_model: int
    df_resid: int
    exact: bool = False
    condition_note: str = ""  # advice about the condition numbers, like statsmodels' notes; '' if none


def _condition_note(raw, standardized):
    """Advice about the condition numbers, like statsmodels' notes; '' if none."""
    notes = []
    if standardized > STANDARDIZED_CONDITION_LARGE:
        notes.append(
            f"The condition number of the standardized data is large ({standardized:.2g}): "
            "strong multicollinearity; the weights of the correlated features are poorly "
            "determined and sensitive to small changes in the data."
        )
    elif raw > RAW_CONDITION_LARGE:
        notes.append(
            f"The condition number of the raw design is large ({raw:.2g}), but that of "
            f"the standardized data is only {standardized:.2g}: the large number comes "
            "from the units and offsets of the columns, not from multicollinearity."
        )
    return " ".join(notes)


def diagnostics(scaled, W_s, b_s, raw_x=None, raw_weights=None, singular_values=None, log_weights=None,
                mean_square=None, R=None, raw_y=None):
    """The Diagnostics of the fit (W_s, b_s) on the standardized data `scaled`
    (a data.scaling.Standardized), with the definitions statsmodels' OLS uses.

    Never raises or warns on account of the numbers (an exact fit, few rows):
    what cannot be computed is inf or nan, as described in Diagnostics.
    Fitted from streamed statistics (scaled.represents), the residuals
    themselves were never held, so the tests of their shape are nan, unless
    the rows are at hand all the same (raw_x and raw_y: rows in memory solved
    from their statistics); Σ log w comes as `log_weights` instead of the
    weights. Without even the
    statistics' cross-products (scaled.cross_products False) the fit's mean
    squared error `mean_square` stands in for the residuals, and the
    condition numbers are nan. R: the QR factor of the standardized rows,
    when the fit made one, so that the rows are not factored again.
    """
    from scipy import stats  # imported here, as in ols.py: it takes 0.4 s

    y = scaled.y
    W_s = np.asarray(W_s, np.float64).reshape(-1)
    n, d = scaled.rows, len(scaled.x_mean)
    rows_at_hand = raw_x is not None and raw_y is not None
    streamed = scaled.represents is not None and not rows_at_hand
    known = scaled.cross_products
    constant = 1 if scaled.intercept else 0
    df_model, df_resid = d, n - d - constant
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        residuals = standardized_residuals(scaled, W_s, float(b_s))  # standardized: σ_y times smaller
        ssr = scaled.multiplicity * float(residuals @ residuals) if known else n * mean_square
        # y is centred (weighted, with weights) with an intercept: the F test is
        # against the intercept-only model; without one, against y = 0 (Σy²).
        # Standardized, either sum is N (y_s has mean square 1).
        tss = scaled.multiplicity * float(y @ y) if known else float(n)
        exact = is_exact(scaled, ssr)

        # F test against the intercept-only model.
        if df_resid <= 0 or df_model <= 0:
            f_statistic = f_p_value = math.nan
        elif exact:
            f_statistic, f_p_value = math.inf, 0.0
        else:
            f_statistic = ((tss - ssr) / df_model) / (ssr / df_resid)
            f_p_value = float(stats.f.sf(f_statistic, df_model, df_resid))

        # Gaussian log-likelihood at the fit, in original units:
        # log(ssr_original) = 2·log(σ_y) + log(ssr_standardized).
        if exact:
            log_likelihood = math.inf
        else:
            # With weights: Σw·r² for the weights as given, and their own term (as statsmodels' WLS).
            log_ssr = 2.0 * math.log(scaled.y_scale) + math.log(ssr) + math.log(scaled.weight_mean)
            log_likelihood = -n / 2.0 * (math.log(2.0 * math.pi) + log_ssr - math.log(n) + 1.0)
            if raw_weights is not None or log_weights is not None:
                log_likelihood += 0.5 * (float(np.sum(np.log(raw_weights))) if log_weights is None else log_weights)
        k = df_model + constant
        aic = -2.0 * log_likelihood + 2.0 * k
        bic = -2.0 * log_likelihood + math.log(n) * k

        # The shape of the residuals: unit-free, so the standardized ones do.
        if rows_at_hand and scaled.represents is not None:  # the rows', not the pseudo-rows'
            residuals = _row_residuals(scaled, W_s, b_s, raw_x, raw_y, raw_weights)
            ssr_rows = float(residuals @ residuals)
        else:
            ssr_rows = ssr
        if exact or streamed:
            dw = omnibus = omnibus_p = jb = jb_p = skew = kurtosis = math.nan
        else:
            dw = _squared_steps(residuals) / ssr_rows if ssr_rows > 0 else math.nan  # (residuals all 0)
            skew, kurtosis = shape(residuals)
            jb = n / 6.0 * (skew**2 + (kurtosis - 3.0) ** 2 / 4.0)
            jb_p = float(stats.chi2.sf(jb, 2))
            if n < 8:  # as statsmodels' omni_normtest (the skew's test needs 8 rows)
                omnibus = omnibus_p = math.nan
            else:
                omnibus = skew_z(skew, n) ** 2 + kurtosis_z(kurtosis, n) ** 2
                omnibus_p = float(stats.chi2.sf(omnibus, 2))

        if singular_values is None and known:  # a fit passes those of its orthogonalization
            singular_values = np.linalg.svd(np.linalg.qr(scaled.x, mode="r"), compute_uv=False)
        standardized = _ratio(singular_values) if known else math.nan
        if not known:
            raw = math.nan
        elif scaled.intercept and not scaled.weighted:
            raw = _raw_condition_number(scaled, R)
        elif raw_x is None:
            raw = math.nan  # streamed: the raw design was never held
        else:  # statsmodels' number for its (weighted) design, [1, x] or x
            design = np.column_stack([np.ones(n)] * constant + [raw_x])
            if raw_weights is not None:
                design = design * np.sqrt(raw_weights)[:, None]
            raw = _ratio(np.linalg.svd(np.linalg.qr(design, mode="r"), compute_uv=False))

    return Diagnostics(
        f_statistic=float(f_statistic),
        f_p_value=float(f_p_value),
        log_likelihood=float(log_likelihood),
        aic=float(aic),
        bic=float(bic),
        durbin_watson=dw,
        omnibus=omnibus,
        omnibus_p_value=omnibus_p,
        jarque_bera=float(jb),
        jarque_bera_p_value=jb_p,
        skew=skew,
        kurtosis=kurtosis,
        condition_number_raw=raw,
        condition_number_standardized=standardized,
        n=n,
        df_model=df_model,
        df_resid=df_resid,
        exact=bool(exact),
        condition_note=_condition_note(raw, standardized),
    )


# Residuals a block of the residual tests' passes takes: 256 KiB, so that its
# few arrays stay in the cache, and no array of all the rows' size is made.
BLOCK = 2**15


def shape(residuals):
    """(skew, kurtosis) of the residuals: m3/m2^1.5 and m4/m2² of their
    central moments (divided by n, as scipy.stats' skew and kurtosis with
    bias=True; the kurtosis is not the excess), from their mean and one pass
    of three dot products a block at a time, instead of passes over the
    residuals per power and per test."""
    n = len(residuals)
    mean = np.mean(residuals)
    m2 = m3 = m4 = 0.0
    centred, square = np.empty(min(n, BLOCK)), np.empty(min(n, BLOCK))
    for start in range(0, n, BLOCK):
        block = residuals[start : start + BLOCK]
        c, q = centred[: len(block)], square[: len(block)]
        np.subtract(block, mean, out=c)
        np.multiply(c, c, out=q)
        m2, m3, m4 = m2 + float(np.sum(q)), m3 + float(q @ c), m4 + float(q @ q)
    if not m2 > 0:
        return math.nan, math.nan
    m2 /= n
    return m3 / n / m2**1.5, m4 / n / m2**2


def _squared_steps(residuals):
    """Σ (r_i+1 − r_i)², Durbin–Watson's numerator, a block at a time."""
    total, steps = 0.0, np.empty(min(len(residuals), BLOCK))
    for start in range(0, len(residuals) - 1, BLOCK):
        block = residuals[start : start + BLOCK + 1]
        step = steps[: len(block) - 1]
        np.subtract(block[1:], block[:-1], out=step)
        total += float(step @ step)
    return total


def skew_z(skew, n):
    """The skew as a standard normal number under normal residuals
    (D'Agostino 1970): the sample skew of n normal numbers is symmetric
    about 0 with a known variance and kurtosis, and a Johnson SU transform
    of it, fitted to those, is close to N(0, 1)."""
    spread = skew * math.sqrt((n + 1) * (n + 3) / (6.0 * (n - 2)))
    # The kurtosis of the sample skew's distribution, and the transform's parameters from it.
    beta = 3.0 * (n * n + 27 * n - 70) * (n + 1) * (n + 3) / ((n - 2.0) * (n + 5) * (n + 7) * (n + 9))
    w2 = math.sqrt(2.0 * (beta - 1.0)) - 1.0
    delta, alpha = 1.0 / math.sqrt(0.5 * math.log(w2)), math.sqrt(2.0 / (w2 - 1.0))
    # (scipy's skewtest puts 1 in place of an exact 0 here; a skew of exactly
    # zero is 0 standard deviations from normal's, and so it is here.)
    return delta * math.asinh(spread / alpha)


def kurtosis_z(kurtosis, n):
    """The kurtosis (not the excess) as a standard normal number under normal
    residuals (Anscombe and Glynn 1983): standardized by its mean 3(n−1)/(n+1)
    and variance under normality, then a cube-root transform that takes its
    skewed distribution close to N(0, 1); nan where that is undefined."""
    mean = 3.0 * (n - 1) / (n + 1)
    variance = 24.0 * n * (n - 2) * (n - 3) / ((n + 1) * (n + 1.0) * (n + 3) * (n + 5))
    standard = (kurtosis - mean) / math.sqrt(variance)
    # The skewness of the kurtosis' distribution, and the transform's parameter from it.
    root_beta = 6.0 * (n * n - 5 * n + 2) / ((n + 7) * (n + 9)) * math.sqrt(6.0 * (n + 3) * (n + 5) / (n * (n - 2) * (n - 3)))
    a = 6.0 + 8.0 / root_beta * (2.0 / root_beta + math.sqrt(1.0 + 4.0 / root_beta**2))
    denominator = 1.0 + standard * math.sqrt(2.0 / (a - 4.0))
    if denominator == 0 or not math.isfinite(standard):
        return math.nan
    cube = math.copysign(abs((1.0 - 2.0 / a) / denominator) ** (1.0 / 3.0), denominator)
    return (1.0 - 2.0 / (9.0 * a) - cube) / math.sqrt(2.0 / (9.0 * a))


def _row_residuals(scaled, W_s, b_s, x, y, weights):
    """The rows' residuals in the standardized units (over σ_y, times √(w/w̄)
    with weights), for coefficients trained on pseudo-rows."""
    W, b = scaled.coefficients(W_s, b_s)
    residuals = x @ W  # (one array of the rows' size, the rest made in it)
    residuals += b
    np.subtract(y, residuals, out=residuals)
    residuals /= scaled.y_scale
    if weights is not None:
        residuals *= np.sqrt(weights / scaled.weight_mean)
    return residuals


def _ratio(singular_values):
    s = singular_values
    return float(s[0] / s[-1]) if s[-1] > 0 and np.isfinite(s[0] / s[-1]) else math.inf


def _raw_condition_number(scaled, R_x=None):
    """σ_max/σ_min of the raw design X = [1, x], without forming X.

    X = [1, x_s]·M with M = [[1, x̄ᵀ], [0, diag(σ_x)]]. With [1, x_s] = Q·R
    (built from R_x, the fit's factor of x_s, when given),
    X has the singular values of B = R·M, and
        κ(X) = σ_max(B) · σ_max(B⁻¹),   B⁻¹ = M⁻¹·R⁻¹,
        M⁻¹ = [[1, -(x̄/σ_x)ᵀ], [0, diag(1/σ_x)]].
    Largest singular values are accurate to rounding relative to themselves,
    whereas the smallest one of X, computed directly, is only accurate to
    rounding relative to the largest: statsmodels' own number loses about
    log10 κ(X) digits that way, and is inf or rounding noise once σ_min² of
    a column near 1e-300 underflows. Both matrices are scaled by their
    largest entry and the scales added back in logarithms, so nothing
    overflows unless κ itself does (then inf).
    """
    n, d = len(scaled.y), len(scaled.x_mean)
    if R_x is None:
        R = np.linalg.qr(np.column_stack([np.ones(n), scaled.x]), mode="r")
    else:
        # R_x is the factor of the centred x_s: the first column, 1, is
        # orthogonal to them (to rounding), so [1, x_s] = [1/√N, Q]·R with
        # R = [[√N, √N·mean(x_s)], [0, R_x]], no new pass over the rows.
        R = np.zeros((d + 1, d + 1))
        R[0, 0] = math.sqrt(n)
        R[0, 1:] = math.sqrt(n) * column_means(scaled)
        R[1:, 1:] = R_x
    M = np.zeros((d + 1, d + 1))
    M[0, 0] = 1.0
    M[0, 1:] = scaled.x_mean
    M[1:, 1:] = np.diag(scaled.x_scale)
    M_inv = np.zeros_like(M)
    M_inv[0, 0] = 1.0
    M_inv[0, 1:] = -scaled.x_mean / scaled.x_scale
    M_inv[1:, 1:] = np.diag(1.0 / scaled.x_scale)
    U, s, Vt = np.linalg.svd(R)
    if not (s[-1] > 0 and np.all(np.isfinite(M_inv))):
        return math.inf
    R_inv_scaled = Vt.T / s  # R⁻¹ = V·S⁻¹·Uᵀ; Uᵀ does not change singular values
    log_kappa = _log_norm(R, M, right=True) + _log_norm(R_inv_scaled, M_inv, right=False)
    return math.exp(log_kappa) if log_kappa < math.log(np.finfo(np.float64).max) else math.inf


def _log_norm(A, M, right):
    """log σ_max(A·M) if right else log σ_max(M·A), with M scaled to max |entry| 1."""
    c = float(np.max(np.abs(M)))
    product = A @ (M / c) if right else (M / c) @ A
    if not np.all(np.isfinite(product)):
        return math.inf
    return math.log(c) + math.log(float(np.linalg.svd(product, compute_uv=False)[0]))
