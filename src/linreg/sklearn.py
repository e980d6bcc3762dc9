"""`LinearRegression`: linreg as a scikit-learn estimator, for Pipeline,
GridSearchCV and cross_val_score (`pip install linreg[sklearn]`).

    from linreg.sklearn import LinearRegression
    model = make_pipeline(StandardScaler(), LinearRegression(optimizer="momentum"))
    model.fit(X, y).predict(X_new)
    model[-1].fit_.summary()   # linreg's statistics: standard errors, p-values

The name is scikit-learn's own (`sklearn.linear_model.LinearRegression`):
code written for that estimator switches to this one by changing the import.
The same attributes come out -- `coef_`, `intercept_`, `n_features_in_`,
`feature_names_in_` -- plus `fit_`, the whole `linreg.Fit`.

The constructor's parameters are `linreg.fit()`'s training options, with
scikit-learn's `fit_intercept` for its `intercept`. Input is checked by
scikit-learn's validation, so bad arrays get scikit-learn's messages. The rows
are fitted in memory, with no progress line; linreg's warnings become Python
warnings, and a fit that has not converged warns with a ConvergenceWarning.

Where linreg and scikit-learn's estimator part ways, this one keeps linreg's
rules and says so rather than answering with another method: it refuses
(LinregValueError, a ValueError) a constant target, a constant feature beside
the intercept, a feature that is a linear combination of others, and no
more rows than coefficients (scikit-learn's estimator answers these, with a
minimum-norm solution where the coefficients are not determined). A sample
weight of 0 leaves its row out, which is what such a weight means in least
squares; `fit_` then describes the rows with positive weights (its n counts
them).
"""
import warnings

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

import linreg
from linreg.plan import DEFAULT_EPOCHS
from linreg.errors import LinregError


class LinregValueError(LinregError, ValueError):
    """linreg refused the data or the parameters: a ValueError to scikit-learn."""


class LinearRegression(RegressorMixin, BaseEstimator):
    """Least squares trained by linreg's TensorFlow loop, as a scikit-learn regressor.

    fit_intercept: fit an intercept (linreg.fit's `intercept`)
    dtype, optimizer, learning_rate, epochs, tol, compile: as linreg.fit()
    penalty, alpha, l1_ratio, standardize, alphas, cv, cv_seed, select: as linreg.fit(), whose
        penalized fit (fit_ a linreg.PenalizedFit) is scikit-learn's ElasticNet(CV) objective

    After fit: coef_ [n_features], intercept_ (0.0 without one),
    n_features_in_, feature_names_in_ (X a data frame with string column
    names), and fit_, the linreg.Fit (its features named as in X, or x0, x1,
    ... as scikit-learn names unnamed columns).
    """

    def __init__(self, *, fit_intercept=True, dtype="float64", optimizer="auto", learning_rate="auto",
                 epochs=DEFAULT_EPOCHS, tol=None, compile="auto", penalty="none", alpha=None, l1_ratio=None,
                 standardize=True, alphas=None, cv=None, cv_seed=0, select="min"):
        self.fit_intercept = fit_intercept
        self.dtype = dtype
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.epochs = epochs
        self.tol = tol
        self.compile = compile
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.standardize = standardize
        self.alphas = alphas
        self.cv = cv
        self.cv_seed = cv_seed
        self.select = select

    def fit(self, X, y, sample_weight=None):
        name = getattr(y, "name", None)  # a pandas Series', gone after validation
        # Every fit needs two rows at least; scikit-learn's message for fewer.
        X, y = validate_data(self, X, y, dtype=np.float64, y_numeric=True, ensure_min_samples=2)
        weights = None
        if sample_weight is not None:
            weights = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
            kept = weights > 0
            X, y, weights = X[kept], y[kept], weights[kept]
        features = list(getattr(self, "feature_names_in_", [f"x{j}" for j in range(X.shape[1])]))
        try:
            self.fit_ = linreg.fit(
                (X, y), _target_name(name, features), features=features, dtype=self.dtype, optimizer=self.optimizer,
                learning_rate=self.learning_rate, epochs=self.epochs, tol=self.tol, compile=self.compile,
                progress=False, intercept=self.fit_intercept, weights=weights, engine="memory", warn=_warn,
                penalty=self.penalty, alpha=self.alpha, l1_ratio=self.l1_ratio, standardize=self.standardize,
                alphas=self.alphas, cv=self.cv, cv_seed=self.cv_seed, select=self.select,
            )
        except LinregError as error:
            raise LinregValueError(str(error)) from error
        if not self.fit_.converged:
            warnings.warn(f"linreg's fit has not converged after {self.fit_.epochs} epochs; {self.fit_.advice()}",
                          ConvergenceWarning, stacklevel=2)
        coefficients = self.fit_.coefficients
        self.coef_ = np.array([coefficients[feature] for feature in features])
        self.intercept_ = coefficients.get("intercept", 0.0)
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.fit_.predict(X)


def _target_name(name, features):
    """The target's name in fit_'s report: y's own, or "y", primed until no
    feature has it (linreg refuses a target among the features)."""
    name = name if isinstance(name, str) else "y"
    while name in features:
        name += "'"
    return name


def _warn(message):
    warnings.warn(message, UserWarning, stacklevel=4)  # at the line that called LinearRegression.fit
