"""The statistics of a fit against statsmodels' OLS, and the curvature and
step-size bounds against numpy's eigenvalues and against actual training."""
import math

import numpy as np
import pytest
import statsmodels.api as sm
import tensorflow as tf

from conftest import train

from linreg.analysis import curvature as analysis
from linreg.analysis import ols as linreg_ols
from linreg.core import optimizers
from linreg.engine import solve
from linreg.core.model import LinearModel
from linreg import precondition
from linreg.data.scaling import from_standardized, standardize
from linreg.data.synthetic import correlated
from linreg.errors import DivergenceError


@pytest.fixture(scope="module")
def problem():
    x, y, _, _ = correlated(400, 6, correlation=0.9, noise=2.0, seed=3)
    return x, y


def _statistics(x, y):
    """The fit's path to its statistics: standardize, solve, then the formulas."""
    scaled = standardize(x, y)
    W_s = np.linalg.lstsq(scaled.x, scaled.y, rcond=None)[0]
    return linreg_ols.standardized_statistics(scaled, W_s, 0.0)


def test_ols_statistics_match_statsmodels(problem):
    x, y = problem
    ols = sm.OLS(y, sm.add_constant(x)).fit()
    stats = _statistics(x, y)
    ci = ols.conf_int(alpha=0.05)
    np.testing.assert_allclose(stats.coefficients, ols.params, rtol=1e-7)
    np.testing.assert_allclose(stats.std_errors, ols.bse, rtol=1e-7)
    np.testing.assert_allclose(stats.t, ols.tvalues, rtol=1e-7)
    np.testing.assert_allclose(stats.p_values, ols.pvalues, rtol=1e-6, atol=1e-300)
    np.testing.assert_allclose(stats.ci_low, ci[:, 0], rtol=1e-7)
    np.testing.assert_allclose(stats.ci_high, ci[:, 1], rtol=1e-7)
    np.testing.assert_allclose(stats.covariance, ols.cov_params(), rtol=1e-7)
    assert stats.r_squared == pytest.approx(ols.rsquared, rel=1e-10)
    assert stats.adj_r_squared == pytest.approx(ols.rsquared_adj, rel=1e-10)
    assert stats.residual_sd == pytest.approx(math.sqrt(ols.scale), rel=1e-10)
    assert stats.n == len(y) and stats.df_residual == int(ols.df_resid)


def test_ols_statistics_from_their_formulas():
    """One feature: the school-book formulas, written out independently."""
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 10, 30)
    y = 1.5 * x - 4 + rng.normal(0, 3, 30)
    sxx = np.sum((x - x.mean()) ** 2)
    slope = np.sum((x - x.mean()) * (y - y.mean())) / sxx
    intercept = y.mean() - slope * x.mean()
    residuals = y - slope * x - intercept
    s = math.sqrt(np.sum(residuals**2) / 28)
    se_slope = s / math.sqrt(sxx)
    se_intercept = s * math.sqrt(1 / 30 + x.mean() ** 2 / sxx)
    stats = _statistics(x[:, None], y)
    np.testing.assert_allclose(stats.coefficients, [intercept, slope], rtol=1e-12)
    np.testing.assert_allclose(stats.std_errors, [se_intercept, se_slope], rtol=1e-10)
    assert stats.residual_sd == pytest.approx(s, rel=1e-12)
    r = np.corrcoef(x, y)[0, 1]
    assert stats.r_squared == pytest.approx(r**2, rel=1e-10)


def test_least_squares_from_rows_and_from_streamed_statistics_match_numpy():
    from linreg.data.moments import Moments
    from linreg.data.moments import problem as from_statistics

    rng = np.random.default_rng(8)
    x = rng.standard_normal((200, 3)) * [1.0, 10.0, 0.1] + [5.0, -3.0, 100.0]
    y = x @ [1.0, 2.0, 3.0] + 4.0 + rng.standard_normal(200)
    expected = np.linalg.lstsq(np.column_stack([np.ones(len(y)), x]), y, rcond=None)[0]
    W, b = linreg_ols.least_squares(x, y)
    np.testing.assert_allclose([b, *W], expected, rtol=1e-10)
    W, b = linreg_ols.solve(from_statistics(Moments.of(x, y), ["a", "b", "c"], "y"))
    np.testing.assert_allclose([b, *W], expected, rtol=1e-10)


def test_curvature_full_hessian_matches_numpy(problem):
    x, y = problem
    scaled = standardize(*problem)
    A = np.column_stack([scaled.x, np.ones(len(y))])
    expected = np.linalg.eigvalsh(2.0 / len(y) * A.T @ A)
    found = analysis.curvature(scaled.x, scaled.y)
    assert found.method == "full Hessian"
    assert found.largest == pytest.approx(expected[-1], rel=1e-10)
    assert found.smallest == pytest.approx(expected[0], rel=1e-10)


def test_power_iteration_on_hessian_vector_products(monkeypatch):
    """Force the large-d path on a problem small enough to check exactly."""
    x, y, _, _ = correlated(300, 8, correlation=0.99, seed=5)
    scaled = standardize(x, y)
    A = np.column_stack([scaled.x, np.ones(len(y))])
    expected = np.linalg.eigvalsh(2.0 / len(y) * A.T @ A)
    monkeypatch.setattr(analysis, "FULL_HESSIAN_MAX_FEATURES", 4)
    monkeypatch.setattr(analysis, "hessian", None)  # the full Hessian is not formed
    found = analysis.largest_eigenvalue(scaled.x, scaled.y)
    assert found == pytest.approx(expected[-1], rel=1e-6)
    assert found <= expected[-1] * (1 + 1e-12)  # approached from below


def test_hessian_vector_product_is_the_hessian_times_v(problem):
    x, y = problem
    v = np.random.default_rng(0).standard_normal(x.shape[1] + 1)
    model = LinearModel(x.shape[1], dtype=tf.float64)
    dW, db = analysis.hessian_vector_product(model, tf.constant(x), tf.constant(y), tf.constant(v[:-1]), v[-1])
    expected = analysis.hessian(x, y) @ v
    np.testing.assert_allclose(np.concatenate([dW.numpy(), [db.numpy()]]), expected, rtol=1e-9)


RULES = {"gd": {}, "momentum": {"beta": 0.8}, "nesterov": {"beta": 0.8}}


@pytest.mark.parametrize("name", RULES)
def test_stable_rate_is_where_training_starts_to_diverge(name):
    """Just below each optimizer's bound the loss falls; just above it training diverges."""
    x = np.linspace(-1.0, 1.0, 64)[:, None]
    y = 2.0 * x[:, 0] + 1.0  # both directions start away from the minimum
    rule = optimizers.REGISTRY[name]
    bound = rule(LinearModel(1, dtype=tf.float64), 0.1, **RULES[name]).stable_rate(analysis.largest_eigenvalue(x, y))

    def final_loss(rate):
        model = LinearModel(1, W=0.0, dtype=tf.float64)
        try:
            return train(model, x, y, rate, 400, optimizer=rule(model, rate, **RULES[name]), compile="function").loss
        except DivergenceError:
            return math.inf

    assert final_loss(0.97 * bound) < 1e-6
    assert final_loss(1.03 * bound) == math.inf


@pytest.mark.parametrize("optimizer", ["gd", "momentum", "nesterov"])
def test_auto_step_is_inside_the_stability_bound(optimizer):
    rule = solve.make(optimizer, LinearModel(1, dtype=tf.float64), 40.0, 0.02)
    assert 0 < float(rule.learning_rate) < rule.stable_rate(40.0)
    assert (float(getattr(rule, "beta", 0.0)) > 0.9) == (optimizer != "gd")


def test_standardize_and_back():
    x, y, _, _ = correlated(200, 4, seed=2)
    scaled = standardize(x, y)
    np.testing.assert_allclose(scaled.x.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(scaled.x.std(axis=0), 1, rtol=1e-12)
    # The least-squares fit in the standardized space, taken back to the
    # original units, is the least-squares fit of the original data.
    # Any (W_s, b_s), not only the least-squares one (whose b_s is 0), maps
    # to the same predictions in the original units.
    W_s, b_s = np.array([0.3, -1.2, 0.7, 2.0]), 0.37
    W, b = scaled.coefficients(W_s, b_s)
    prediction = x @ W + b
    np.testing.assert_allclose(prediction, scaled.y_mean + scaled.y_scale * (scaled.x @ W_s + b_s), rtol=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
def test_rows_read_later_are_standardized_as_the_rows_in_memory(weighted):
    """Batches read from files (engine stream) go through `transform`; the
    weighted means and spreads and the √(w/mean w) rows, written out in numpy."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((60, 3)) * [2.0, 0.5, 30.0] + [1.0, -4.0, 1e3]
    y = x @ [0.5, -1.0, 0.01] + rng.standard_normal(60)
    w = rng.uniform(0.5, 3.0, 60) if weighted else None
    scaled = standardize(x, y, weights=w)
    u = np.ones(60) if w is None else w / w.mean()
    mean = u @ x / 60
    expected_x = (x - mean) / np.sqrt(u @ (x - mean) ** 2 / 60) * np.sqrt(u)[:, None]
    for found_x, found_y in [(scaled.x, scaled.y), scaled.transform(x[:40], y[:40], None if w is None else w[:40])]:
        np.testing.assert_allclose(found_x, expected_x[: len(found_x)], rtol=1e-12, atol=1e-12)
        y_mean = u @ y / 60
        expected_y = (y - y_mean) / np.sqrt(u @ (y - y_mean) ** 2 / 60) * np.sqrt(u)
        np.testing.assert_allclose(found_y, expected_y[: len(found_y)], rtol=1e-12, atol=1e-12)
    # and back: a prediction made in these coordinates, in the original units
    unweighted, W_s = standardize(x, y), np.array([0.3, -0.2, 0.1])
    W, b = unweighted.coefficients(W_s, 0.0)
    back = from_standardized(unweighted.x @ W_s, unweighted.y_mean, unweighted.y_scale)
    np.testing.assert_allclose(back, x @ W + b, rtol=1e-10)


def test_linear_combination_is_found_and_named():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4))
    assert precondition.linear_combination(standardize(x, x[:, 0]).x) is None
    x[:, 2] = 3 * x[:, 0] - x[:, 3] + 7  # column 2 made from 0 and 3 ...
    x[:, [2, 3]] = x[:, [3, 2]]  # ... and moved last, so it is the one named
    assert precondition.linear_combination(standardize(x, x[:, 0]).x) == (3, [0, 2])
