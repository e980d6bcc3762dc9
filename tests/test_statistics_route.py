"""Optimizer auto on rows in memory: solved from their statistics (gathered
beyond float64) when the condition number they reveal is below
plan.STATISTICS_LINE, by QR on the rows above it -- as many digits as QR
either way, against the exact answer in rationals, and every statistic of
statsmodels' OLS, the residual tests included (the rows are at hand)."""
import sys
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.stats.stattools import durbin_watson, jarque_bera, omni_normtest

import linreg
from linreg.plan import STATISTICS_LINE

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import digits_family  # noqa: E402 (the examples are scripts, not a package)

accuracy = digits_family.load_accuracy()
wide = np.finfo(np.longdouble).eps < np.finfo(np.float64).eps


def design(correlation, seed=0, n=400):
    """Three columns far from one (1e6 + ..., 1e-3 ...), noise 10 times the signal."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((n, 3))
    x = base.copy()
    x[:, 1] = correlation * base[:, 0] + np.sqrt(1 - correlation**2) * base[:, 1]
    x = x * [1.0, 1e-3, 50.0] + [1e6, 0.0, -3.0]
    y = x @ [2.0, -3e3, 0.1] + 10 * rng.standard_normal(n) * np.std(x @ [2.0, -3e3, 0.1])
    return x, y


@pytest.mark.skipif(not wide, reason="numpy's long double is float64 here: QR always")
@pytest.mark.parametrize("weighted", [False, True])
def test_below_the_line_the_statistics_give_qrs_digits_and_statsmodels_statistics(weighted):
    x, y = design(0.5)
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(y)) if weighted else None
    fit = linreg.fit((x, y), weights=w, progress=False, compile="none")
    qr = linreg.fit((x, y), weights=w, optimizer="orthogonal", progress=False, compile="none")
    assert fit.condition_number < STATISTICS_LINE
    assert fit.scaled.represents is not None and qr.scaled.represents is None  # the two routes ran
    if not weighted:  # (the rational reference is unweighted)
        reference = accuracy.exact_least_squares(x, y)
        digits = accuracy.correct_digits(fit.stats.coefficients, reference)
        assert digits >= accuracy.correct_digits(qr.stats.coefficients, reference) - 0.5
        assert digits >= fit.estimated_digits - 0.5
    # statsmodels on the centred columns (on the raw ones, whose condition number
    # is 1e10, it keeps about 8 digits): the same slopes, residuals and tests.
    centred = sm.add_constant(x - x.mean(axis=0))
    model = (sm.WLS(y, centred, weights=w) if weighted else sm.OLS(y, centred)).fit()
    assert np.allclose(fit.stats.coefficients[1:], model.params[1:], rtol=1e-10)
    assert np.allclose(fit.stats.std_errors[1:], model.bse[1:], rtol=1e-9)
    assert fit.r_squared == pytest.approx(model.rsquared, rel=1e-10)
    resid, found = model.wresid, fit.diagnostics  # the residual tests: of the rows, not of pseudo-rows
    assert fit.durbin_watson == pytest.approx(durbin_watson(resid), rel=1e-9)
    assert found.omnibus == pytest.approx(omni_normtest(resid)[0], rel=1e-8)
    jb, _, skew, kurtosis = jarque_bera(resid)
    assert (found.jarque_bera, found.skew, found.kurtosis) == pytest.approx((jb, skew, kurtosis), rel=1e-8)
    assert "trained on their statistics" in fit.summary() and "Durbin-Watson  " in fit.summary()
    assert fit.to_dict()["trained_on"] == "statistics" and qr.to_dict()["trained_on"] == "rows"


def test_above_the_line_qr_on_the_rows():
    x, y = design(0.9999)
    fit = linreg.fit((x, y), progress=False, compile="none")
    assert fit.condition_number > STATISTICS_LINE and fit.scaled.represents is None
    reference = accuracy.exact_least_squares(x, y)
    assert accuracy.correct_digits(fit.stats.coefficients, reference) >= fit.estimated_digits - 0.5


def test_past_the_columns_factored_in_extended_precision_qr_on_the_rows(monkeypatch):
    """Past extended.EXTENDED_FACTOR_COLUMNS the pseudo-rows' factor would be
    float64's, whose κ²·ε the line was not measured for: QR on the rows."""
    from linreg.data import extended

    x, y = design(0.5)
    monkeypatch.setattr(extended, "EXTENDED_FACTOR_COLUMNS", x.shape[1])  # x and y: one column too many
    fit = linreg.fit((x, y), progress=False, compile="none")
    assert fit.condition_number < STATISTICS_LINE and fit.scaled.represents is None
