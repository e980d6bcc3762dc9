"""linreg.sklearn.LinearRegression: scikit-learn's estimator checks, and the
estimator inside Pipeline, GridSearchCV and cross_val_score, checked against
numpy's least squares, scikit-learn's LinearRegression and statsmodels' WLS."""
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from sklearn import linear_model
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from linreg.errors import LinregError
from linreg.sklearn import LinearRegression, LinregValueError

# Each fit takes milliseconds eagerly; compiling would cost more than the few epochs it saves.
QUICK = dict(compile="none")
RTOL = 1e-10

# Checks that need a fit linreg refuses; scikit-learn's estimator answers them
# with a minimum-norm solution, which is not the least-squares fit linreg promises.
EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": (
        "it fits 30 features to 15 rows (27 once repeated): fewer rows than coefficients, which linreg refuses; "
        "test_integer_weights_are_repeated_rows_and_zero_weights_left_out checks the same equivalence on a "
        "problem with more rows than coefficients"
    ),
    "check_array_api_input": (
        "it fits make_classification's data, whose redundant columns are linear combinations of the informative "
        "ones, which linreg refuses; scikit-learn skips the check anyway unless SCIPY_ARRAY_API=1 is set before "
        "scipy is imported"
    ),
}


# The defaults, and a descent optimizer (conjugate gradients) for the other way linreg trains.
@parametrize_with_checks(
    [LinearRegression(), LinearRegression(optimizer="cg", **QUICK)],
    expected_failed_checks=lambda estimator: EXPECTED_FAILURES,
    xfail_strict=True,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def make_data(n=60, seed=3):
    """Three correlated features of different scales and offsets, a large intercept, and noise."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, 3)) @ np.array([[1.0, 0.5, 0.1], [0.0, 1.0, 0.4], [0.0, 0.0, 1.0]])
    X = z * np.array([50.0, 2.0, 0.1]) + np.array([300.0, 5.0, 1.0])
    y = X @ np.array([0.4, -3.0, 20.0]) + 100.0 + 2.0 * rng.standard_normal(n)
    return X, y


def lstsq(X, y):
    """numpy's float64 least squares on [1, X]: (intercept, coefficients)."""
    solution = np.linalg.lstsq(np.column_stack([np.ones(len(y)), X]), y, rcond=None)[0]
    return solution[0], solution[1:]


def test_coefficients_are_the_least_squares_ones():
    X, y = make_data()
    model = LinearRegression(**QUICK).fit(X, y)
    intercept, coef = lstsq(X, y)
    np.testing.assert_allclose(model.coef_, coef, rtol=RTOL)
    assert model.intercept_ == pytest.approx(intercept, rel=RTOL)
    np.testing.assert_allclose(model.predict(X), intercept + X @ coef, rtol=RTOL)
    residuals = y - intercept - X @ coef
    assert model.score(X, y) == pytest.approx(1 - residuals @ residuals / np.sum((y - y.mean()) ** 2), rel=RTOL)
    # Without an intercept: the least squares through the origin, as scikit-learn's estimator gives it.
    through_origin = LinearRegression(fit_intercept=False, **QUICK).fit(X, y)
    np.testing.assert_allclose(through_origin.coef_, np.linalg.lstsq(X, y, rcond=None)[0], rtol=RTOL)
    assert through_origin.intercept_ == 0.0


def test_in_a_pipeline_after_standard_scaler():
    X, y = make_data()
    pipeline = make_pipeline(StandardScaler(), LinearRegression(**QUICK)).fit(X, y)
    reference = make_pipeline(StandardScaler(), linear_model.LinearRegression()).fit(X, y)
    intercept, coef = lstsq((X - X.mean(axis=0)) / X.std(axis=0), y)  # StandardScaler by hand
    np.testing.assert_allclose(pipeline[-1].coef_, coef, rtol=RTOL)
    assert pipeline[-1].intercept_ == pytest.approx(intercept, rel=RTOL)
    X_new, _ = make_data(n=10, seed=4)
    np.testing.assert_allclose(pipeline.predict(X_new), reference.predict(X_new), rtol=RTOL)


def test_grid_search_over_the_intercept_and_the_optimizer():
    X, y = make_data()
    grid = {"fit_intercept": [True, False], "optimizer": ["auto", "cg"]}
    search = GridSearchCV(LinearRegression(**QUICK), grid, cv=KFold(4)).fit(X, y)
    reference = GridSearchCV(linear_model.LinearRegression(), {"fit_intercept": [True, False]}, cv=KFold(4)).fit(X, y)
    # Both optimizers reach the least squares, so each has scikit-learn's scores for its fit_intercept.
    expected = dict(zip(reference.cv_results_["param_fit_intercept"], reference.cv_results_["mean_test_score"]))
    for params, score in zip(search.cv_results_["params"], search.cv_results_["mean_test_score"]):
        assert score == pytest.approx(expected[params["fit_intercept"]], rel=RTOL), params
    assert search.best_params_["fit_intercept"] is reference.best_params_["fit_intercept"] is True
    np.testing.assert_allclose(search.best_estimator_.coef_, lstsq(X, y)[1], rtol=RTOL)


def test_cross_val_score_and_each_folds_coefficients():
    X, y = make_data()
    folds = KFold(5, shuffle=True, random_state=0)
    scores = cross_val_score(LinearRegression(**QUICK), X, y, cv=folds)
    np.testing.assert_allclose(scores, cross_val_score(linear_model.LinearRegression(), X, y, cv=folds), rtol=RTOL)
    fitted = cross_validate(LinearRegression(**QUICK), X, y, cv=folds, return_estimator=True)["estimator"]
    for model, (train, _) in zip(fitted, folds.split(X)):
        np.testing.assert_allclose(model.coef_, lstsq(X[train], y[train])[1], rtol=RTOL)


def weighted_data():
    X, y = make_data(n=40, seed=5)
    weights = np.random.default_rng(6).uniform(0.2, 3.0, len(y))
    return X, y, weights


def test_sample_weight_is_weighted_least_squares_with_its_statistics():
    X, y, weights = weighted_data()
    model = LinearRegression(**QUICK).fit(X, y, sample_weight=weights)
    wls = sm.WLS(y, sm.add_constant(X), weights=weights).fit()
    np.testing.assert_allclose([model.intercept_, *model.coef_], wls.params, rtol=RTOL)
    # fit_ is linreg's Fit: the inference scikit-learn's estimator does not give.
    np.testing.assert_allclose(list(model.fit_.std_errors.values()), wls.bse, rtol=1e-8)
    np.testing.assert_allclose(list(model.fit_.p_values.values()), wls.pvalues, rtol=1e-6)
    assert model.fit_.r_squared == pytest.approx(wls.rsquared, rel=1e-10)


def test_integer_weights_are_repeated_rows_and_zero_weights_left_out():
    X, y, _ = weighted_data()
    counts = np.random.default_rng(7).integers(0, 4, len(y))
    weighted = LinearRegression(**QUICK).fit(X, y, sample_weight=counts)
    repeated = LinearRegression(**QUICK).fit(X.repeat(counts, axis=0), y.repeat(counts))
    wls = sm.WLS(y, sm.add_constant(X), weights=counts).fit()
    for model in (weighted, repeated):
        np.testing.assert_allclose([model.intercept_, *model.coef_], wls.params, rtol=RTOL)
    assert weighted.fit_.n == np.count_nonzero(counts) < len(y)  # the rows that count


def test_bad_weights_get_scikit_learns_messages():
    X, y, weights = weighted_data()
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        LinearRegression(**QUICK).fit(X, y, sample_weight=-weights)
    with pytest.raises(ValueError, match="sample_weight.shape == "):
        LinearRegression(**QUICK).fit(X, y, sample_weight=weights[:-1])


def refused_data():
    """What scikit-learn's estimator fits (with a minimum-norm answer) and linreg refuses, with the word it uses."""
    X, y = make_data(n=12)
    few_rows = (X[:4], y[:4], "4 data rows but the model has 4 coefficients")
    combination = (np.column_stack([X, X[:, 0] - 2 * X[:, 2]]), y, "'x3' is an exact linear combination of 'x0', 'x2'")
    constant = (np.column_stack([X[:, :2], np.full(len(y), 7.0)]), y, "'x2' is constant")
    flat_target = (X, np.full(len(y), 3.0), "target column 'y' is constant")
    return [few_rows, combination, constant, flat_target]


@pytest.mark.parametrize("X, y, words", refused_data(), ids=["few rows", "combination", "constant", "flat target"])
def test_refuses_with_linregs_message_as_a_value_error(X, y, words):
    linear_model.LinearRegression().fit(X, y)  # where scikit-learn's estimator gives an answer
    with pytest.raises(LinregValueError, match=words) as caught:
        LinearRegression(**QUICK).fit(X, y)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, LinregError)


def test_bad_parameters_are_refused_at_fit_with_linregs_message():
    X, y = make_data()
    model = LinearRegression(optimizer="adam", **QUICK)
    assert model.get_params()["optimizer"] == "adam"  # stored as given
    with pytest.raises(ValueError, match="optimizer must be one of"):
        model.fit(X, y)
    with pytest.raises(ValueError, match="intercept must be True or False"):
        LinearRegression(fit_intercept="yes", **QUICK).fit(X, y)


def test_data_frame_names_the_features_and_the_target():
    X, y = make_data()
    frame = pd.DataFrame(X, columns=["area", "y", "age"])  # a feature named like the default target
    model = LinearRegression(**QUICK).fit(frame, pd.Series(y, name="price"))
    assert list(model.feature_names_in_) == ["area", "y", "age"] and model.n_features_in_ == 3
    assert model.fit_.target == "price" and model.fit_.features == ["area", "y", "age"]
    intercept, coef = lstsq(X, y)
    np.testing.assert_allclose(list(model.fit_.coefficients.values()), [intercept, *coef], rtol=RTOL)
    unnamed = LinearRegression(**QUICK).fit(frame, y)
    assert unnamed.fit_.target not in unnamed.fit_.features
    with pytest.raises(ValueError, match="feature names should match"):
        model.predict(frame[["age", "y", "area"]])
    arrays = LinearRegression(**QUICK).fit(X, y)  # unnamed columns: scikit-learn's names
    assert arrays.fit_.features == ["x0", "x1", "x2"] and not hasattr(arrays, "feature_names_in_")


def test_a_fit_that_has_not_converged_warns():
    X, y = make_data()
    with pytest.warns(ConvergenceWarning, match="not converged after 2 epochs"):
        model = LinearRegression(optimizer="gd", epochs=2, **QUICK).fit(X, y)
    assert not model.fit_.converged
    intercept, coef = lstsq(X, y)
    assert np.max(np.abs(model.coef_ - coef) / np.abs(coef)) > 1e-3  # far from the least squares, as it says


def test_linregs_warnings_are_python_warnings(capsys):
    X, y = make_data()
    X = np.column_stack([X, X[:, 0] + np.random.default_rng(8).normal(0, 0.05, len(y))])  # nearly collinear
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        LinearRegression(dtype="float32", optimizer="momentum", epochs=10, **QUICK).fit(X, y)
    assert any(issubclass(w.category, UserWarning) and "float32" in str(w.message) for w in caught)
    assert capsys.readouterr().err == ""
