"""The rest of statsmodels' OLS summary (analysis/diagnostics.py) against
statsmodels itself, at ordinary scales, near 1e-300 and 1e300, and on an
exact fit."""
import math
import warnings

import mpmath
import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.stattools import durbin_watson, jarque_bera, omni_normtest

from linreg.analysis.diagnostics import Diagnostics, diagnostics
from linreg.data.scaling import standardize
from linreg.data.synthetic import correlated

RTOL = 1e-8
# Powers of two, so that scaling the data by them is exact and the scaled
# problem has exactly the residuals of the unscaled one, times the factor.
TINY = 2.0**-994  # about 6e-300
HUGE = 2.0**997  # about 1.3e300


def fit(x, y):
    scaled = standardize(x, y)
    W_s = np.linalg.lstsq(scaled.x, scaled.y, rcond=None)[0]
    return diagnostics(scaled, W_s, 0.0)


def expected(x, y):
    """statsmodels' numbers for (x, y), as a dict of Diagnostics fields."""
    results = sm.OLS(y, sm.add_constant(x)).fit()
    omnibus, omnibus_p = omni_normtest(results.resid)
    jb, jb_p, skew, kurtosis = jarque_bera(results.resid)
    return dict(
        f_statistic=results.fvalue,
        f_p_value=results.f_pvalue,
        log_likelihood=results.llf,
        aic=results.aic,
        bic=results.bic,
        durbin_watson=durbin_watson(results.resid),
        omnibus=omnibus,
        omnibus_p_value=omnibus_p,
        jarque_bera=jb,
        jarque_bera_p_value=jb_p,
        skew=skew,
        kurtosis=kurtosis,
        condition_number_raw=results.condition_number,
    )


# The residual-shape statistics: statsmodels computes the residuals from the
# raw design, whose condition number here is ~1e8, so its own residuals carry
# relative rounding errors near 1e-8 (ours come from the standardized design,
# condition number ~7). Against the same statsmodels on the equivalent
# design [1, x_s] (same column space, same residuals) they agree to 1e-10.
RESIDUAL_SHAPE = {"durbin_watson", "omnibus", "omnibus_p_value", "jarque_bera", "jarque_bera_p_value", "skew", "kurtosis"}


def assert_matches(diag, reference, rtol=RTOL, shape_rtol=RTOL, skip=()):
    for name, value in reference.items():
        if name in skip:
            continue
        tolerance = shape_rtol if name in RESIDUAL_SHAPE else rtol
        assert getattr(diag, name) == pytest.approx(value, rel=tolerance), name


def raw_condition_number(x):
    """σ_max/σ_min of [1, x] from the Gram matrix's eigenvalues in 700-digit
    arithmetic: exact for the float data (the eigenvalues' absolute errors,
    ~1e-700 of the largest, are far below even the smallest, ~1e-600 of it,
    for a column near 1e-300), and no exponent limits."""
    with mpmath.workdps(700):
        design = mpmath.matrix(np.column_stack([np.ones(len(x)), x]).tolist())
        eigenvalues = sorted(mpmath.eigsy(design.T * design, eigvals_only=True))
        return float(mpmath.sqrt(eigenvalues[-1] / eigenvalues[0]))


@pytest.fixture(scope="module")
def problem():
    x, y, _, _ = correlated(200, 4, correlation=0.9, noise=2.0, seed=3)
    return x, y


def test_moderate_problem_matches_statsmodels(problem):
    x, y = problem
    diag = fit(x, y)
    assert (diag.n, diag.df_model, diag.df_resid, diag.exact) == (200, 4, 195, False)
    assert_matches(diag, expected(x, y), shape_rtol=1e-7)
    # statsmodels on the equivalent standardized design: the same residuals,
    # computed without the raw design's rounding.
    assert_matches(diag, expected(standardize(x, y).x, y), rtol=1e-10, skip={"condition_number_raw"})
    # statsmodels' condition number itself is rounded at ~1e-10 (its smallest
    # singular value is accurate only relative to the largest); ours is exact.
    assert diag.condition_number_raw == pytest.approx(raw_condition_number(x), rel=1e-12)
    scaled = standardize(x, y)
    assert diag.condition_number_standardized == pytest.approx(np.linalg.cond(scaled.x), rel=1e-10)
    # The raw number is large only because of units and offsets.
    assert diag.condition_number_raw > 1e3 > 30 > diag.condition_number_standardized
    assert "units and offsets" in diag.condition_note


def test_column_near_1e_300(problem):
    x, y = problem
    tiny = x.copy()
    tiny[:, 0] *= TINY
    assert 1e-301 < np.max(np.abs(tiny[:, 0])) < 1e-298
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diag = fit(tiny, y)
    # Scaling a column changes neither the residuals nor the unit-free
    # numbers; statsmodels cannot fit the tiny column itself (its pinv
    # drops it), so it gets the unscaled one.
    assert_matches(diag, expected(x, y), shape_rtol=1e-7, skip={"condition_number_raw"})
    # The raw condition number does change, to ~1e300; exact reference.
    assert diag.condition_number_raw > 1e290
    assert diag.condition_number_raw == pytest.approx(raw_condition_number(tiny), rel=1e-12)
    assert diag.condition_number_standardized == pytest.approx(fit(x, y).condition_number_standardized, rel=1e-12)


def test_target_near_1e300(problem):
    x, y = problem
    huge = y * HUGE
    assert np.max(np.abs(huge)) > 1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diag = fit(x, huge)
    reference = expected(x, y)
    # In units HUGE times larger the likelihood of every point is HUGE times
    # smaller: llf shifts by -n·log(HUGE), aic and bic by +2n·log(HUGE).
    shift = len(y) * math.log(HUGE)
    reference["log_likelihood"] -= shift
    reference["aic"] += 2 * shift
    reference["bic"] += 2 * shift
    assert_matches(diag, reference, shape_rtol=1e-7)
    assert math.isfinite(diag.log_likelihood) and diag.log_likelihood < -1e5


def test_exact_fit_neither_raises_nor_warns(problem):
    x, _ = problem
    y = x @ np.array([1.5, -2.0, 0.25, 3.0]) + 7.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diag = fit(x, y)
        note = diag.condition_note
    assert diag.exact
    assert diag.f_statistic == math.inf and diag.f_p_value == 0.0
    assert diag.log_likelihood == math.inf and diag.aic == -math.inf and diag.bic == -math.inf
    for name in RESIDUAL_SHAPE:
        assert math.isnan(getattr(diag, name)), name
    assert diag.condition_number_raw == pytest.approx(raw_condition_number(x), rel=1e-12)
    assert math.isfinite(diag.condition_number_standardized)
    assert isinstance(note, str)


def test_few_rows():
    rng = np.random.default_rng(5)
    # 12 rows: scipy warns that the kurtosis test is approximate below 20;
    # the numbers are still statsmodels'.
    x = rng.standard_normal((12, 2))
    y = x @ [1.0, -1.0] + rng.standard_normal(12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diag = fit(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_matches(diag, expected(x, y))
    # 6 rows: too few for the omnibus test (nan, as statsmodels, silently).
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diag = fit(x[:6], y[:6])
    assert math.isnan(diag.omnibus) and math.isnan(diag.omnibus_p_value)
    assert math.isfinite(diag.jarque_bera) and math.isfinite(diag.f_statistic)
    # 3 rows, 2 features: no degrees of freedom left for the F test.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        diag = fit(x[:3], y[:3])
    assert diag.df_resid == 0 and diag.exact
    assert math.isnan(diag.f_statistic) and math.isnan(diag.f_p_value)


def test_condition_note():
    x, y, _, _ = correlated(200, 4, correlation=0.99999, noise=0.5, seed=1)
    diag = fit(x, y)
    assert diag.condition_number_standardized > 30
    assert "standardized data is large" in diag.condition_note
    rng = np.random.default_rng(2)
    x = rng.standard_normal((100, 3))
    diag = fit(x, x.sum(axis=1) + rng.standard_normal(100))
    assert diag.condition_number_raw < 1e3 and diag.condition_note == ""
    assert isinstance(diag, Diagnostics)


def test_the_fit_reports_them_as_statsmodels_does():
    import linreg
    import statsmodels.api as sm
    from statsmodels.stats.stattools import durbin_watson, jarque_bera

    x, y, _, _ = correlated(150, 3, correlation=0.8, noise=3.0, seed=21)
    fit = linreg.fit((x, y), progress=False)
    found = fit.to_dict()["diagnostics"]
    ols = sm.OLS(y, sm.add_constant(x)).fit()
    jb, jb_p, skew, kurtosis = jarque_bera(ols.resid)
    expected = {"f_statistic": ols.fvalue, "f_p_value": ols.f_pvalue, "log_likelihood": ols.llf, "aic": ols.aic,
                "bic": ols.bic, "durbin_watson": durbin_watson(ols.resid), "jarque_bera": jb,
                "jarque_bera_p_value": jb_p, "skew": skew, "kurtosis": kurtosis}  # fmt: skip
    for name, value in expected.items():
        assert found[name] == pytest.approx(value, rel=1e-7), name
    assert f"F-statistic  {ols.fvalue:.6g}" in fit.summary()


@pytest.mark.parametrize("n", [8, 9, 12, 20, 57, 1000, 100_000])
@pytest.mark.parametrize("kind", ["normal", "skewed", "heavy", "uniform", "nearly symmetric"])
def test_residual_shape_and_its_tests_match_scipy(n, kind):
    """The one-pass skew and kurtosis and their normal scores against
    scipy.stats' skew, kurtosis, skewtest, kurtosistest and normaltest."""
    from scipy import stats

    from linreg.analysis.diagnostics import kurtosis_z, shape, skew_z

    rng = np.random.default_rng(n)
    r = {
        "normal": lambda: rng.normal(size=n),
        "skewed": lambda: rng.exponential(size=n) * 1e3 + 5e6,
        "heavy": lambda: rng.standard_t(3, size=n) * 1e-30,
        "uniform": lambda: rng.uniform(-1, 1, size=n),
        "nearly symmetric": lambda: np.concatenate([v := rng.normal(size=n // 2), -v * (1 + 1e-6), [0.0] * (n % 2)]),
    }[kind]()
    skew, kurtosis = shape(r)
    assert skew == pytest.approx(stats.skew(r), rel=1e-9, abs=1e-12)
    assert kurtosis == pytest.approx(stats.kurtosis(r, fisher=False), rel=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's "kurtosistest only valid for n>=20"
        assert skew_z(skew, n) == pytest.approx(stats.skewtest(r).statistic, rel=1e-8, abs=1e-9)
        assert kurtosis_z(kurtosis, n) == pytest.approx(stats.kurtosistest(r).statistic, rel=1e-8, abs=1e-9)
        k2, p = stats.normaltest(r)
    assert skew_z(skew, n) ** 2 + kurtosis_z(kurtosis, n) ** 2 == pytest.approx(k2, rel=1e-8, abs=1e-12)


def test_residual_shape_of_constant_residuals_is_nan_and_a_zero_skew_scores_zero():
    from linreg.analysis.diagnostics import shape, skew_z

    assert all(math.isnan(v) for v in shape(np.full(50, 3.0)))
    assert skew_z(0.0, 50) == 0.0 and skew_z(1e-9, 50) > 0 > skew_z(-1e-9, 50)


@pytest.mark.parametrize("n", [1, 2, 3, 2**15, 2**15 + 1, 2**15 + 2, 100_001])
def test_durbin_watson_numerator_across_blocks(n):
    from linreg.analysis.diagnostics import _squared_steps

    r = np.random.default_rng(n).normal(size=n)
    assert _squared_steps(r) == pytest.approx(float(np.sum(np.diff(r) ** 2)), rel=1e-13, abs=0)
