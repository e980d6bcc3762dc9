"""Covariance types of the coefficients: the classical one and the robust
"sandwiches" econometrics and A/B-testing users ask for, named, corrected and
tested as statsmodels' `get_robustcov_results` does.

In:  the design X (rows of x, with the intercept's column of ones first when
     there is one), the residuals e, the observation weights w, a covariance
     type and its keywords (statsmodels' names):
        nonrobust                s² (XᵀWX)⁻¹, s² = Σ w e² / (n - k)
        HC0, HC1, HC2, HC3       heteroskedasticity-robust (White; MacKinnon and White)
        cluster   groups=...     errors correlated within clusters (CRV1)
        HAC       maxlags=L      heteroskedasticity and autocorrelation (Newey-West)
     or, streamed, the rows batch by batch (analysis/sandwich.py gathers them).
Out: `Covariance`: the k × k matrix, the standard errors, the z or t tests,
     intervals and the Wald F test of "all slopes are zero" that follow it.

Every robust type is bread · meat · bread,

    V = (XᵀWX)⁻¹ · Σ_i Σ_j K_ij u_i u_jᵀ · (XᵀWX)⁻¹,    u_i = √w_i x_i e_i,

the rows whitened by √w as weighted least squares does. HC0 keeps i = j
(K = I); HC1 multiplies by n/(n - k); HC2 and HC3 divide u_i u_iᵀ by
(1 - h_i) and (1 - h_i)², h_i the row's leverage, which undoes the way
least squares pulls each fitted value towards its own y; cluster keeps every
pair in the same cluster (the meat is Σ_g s_g s_gᵀ, s_g the sum of u_i over
cluster g), times G/(G - 1)·(n - 1)/(n - k); HAC keeps pairs up to L rows
apart, weighted 1 - |i - j|/(L + 1) (Bartlett's kernel, which keeps the
matrix positive semi-definite), times n/(n - k) only with use_correction.

Inference, as statsmodels by default: the normal distribution (z) for the
robust types, Student's t with n - k degrees of freedom for nonrobust
(`use_t` chooses). The F test is the Wald test β_sᵀ V_s⁻¹ β_s / J of the J
slopes (every coefficient without an intercept), referred to F(J, n - k), or
F(J, G - 1) for cluster (statsmodels' df_correction, on by default).
"""
import math
from dataclasses import dataclass

import numpy as np

# Weights of lags 0..L, for each of plan.py's HAC_KERNELS (the types, their
# keywords and the checks of both are the plan's: plan.covariance).
KERNELS = {
    "bartlett": lambda lags: 1.0 - np.arange(lags + 1) / (lags + 1),
    "uniform": lambda lags: np.ones(lags + 1),
}
# Below about this many clusters, cluster-robust standard errors are too small
# and their tests too optimistic (Cameron and Miller, "A practitioner's guide to
# cluster-robust inference", 2015).
FEW_CLUSTERS = 30


@dataclass
class Inference:
    """Per coefficient: z or t statistic, two-sided p-value, confidence interval."""

    statistic: np.ndarray
    p_values: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    distribution: str  # "t" or "normal"


@dataclass
class WaldTest:
    """The F test that all slopes are zero: statistic, degrees of freedom, p-value."""

    statistic: float
    df_num: int
    df_denom: int
    p_value: float


@dataclass
class Covariance:
    """The covariance of the coefficients, in the design's column order, and what follows from it."""

    cov_type: str
    matrix: np.ndarray  # [k, k]
    use_t: bool  # Student's t (else the normal) for the coefficients' tests
    df: int  # for t and the F test's denominator: n - k, or G - 1 for cluster
    intercept: bool  # the design's first column is the intercept's
    clusters: int = None  # G, for cluster

    @property
    def std_errors(self):
        return np.sqrt(np.diag(self.matrix))

    @property
    def distribution(self):
        """What the tests and intervals refer to: Student's t with df degrees of freedom, or the normal."""
        from scipy import stats

        return stats.t(self.df) if self.use_t else stats.norm()

    @property
    def note(self):
        """A line for the report when the standard errors deserve caution, else None."""
        if self.clusters is not None and self.clusters < FEW_CLUSTERS:
            return (f"Only {self.clusters} clusters: with fewer than about {FEW_CLUSTERS}, cluster-robust standard "
                    "errors tend to be too small and their p-values too optimistic.")
        return None

    def inference(self, coefficients, confidence=0.95):
        """The z (or t) statistics, two-sided p-values and `confidence` intervals of `coefficients`."""
        coefficients = np.asarray(coefficients, np.float64)
        se = self.std_errors
        with np.errstate(invalid="ignore", divide="ignore"):
            statistic = coefficients / se
        distribution = self.distribution
        half_width = distribution.ppf(0.5 + confidence / 2.0) * se
        return Inference(statistic, 2.0 * distribution.sf(np.abs(statistic)), coefficients - half_width,
                         coefficients + half_width, "t" if self.use_t else "normal")

    def wald_test(self, coefficients):
        """F = β_sᵀ V_s⁺ β_s / J over the slopes, as statsmodels' `fvalue` for every type
        (for nonrobust it equals the classical mean-square ratio); nan without slopes."""
        from scipy import stats

        slopes = slice(1 if self.intercept else 0, None)
        beta = np.asarray(coefficients, np.float64)[slopes]
        V = self.matrix[slopes, slopes]
        # The pseudo-inverse and rank, as statsmodels: a cluster covariance has
        # rank at most G - 1, and fewer clusters than slopes leave it singular.
        J = int(np.linalg.matrix_rank(V)) if len(beta) else 0
        if J == 0:  # no slopes, or nothing varies (an exact fit)
            return WaldTest(math.nan, J, self.df, math.nan)
        statistic = float(beta @ np.linalg.pinv(V) @ beta) / J
        return WaldTest(statistic, J, self.df, float(stats.f.sf(statistic, J, self.df)))

