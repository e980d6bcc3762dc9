"""The result: what a user holds after a fit, and after loading an export.

Fit: the coefficients and statistics in original units, the verdict, the
history of training, and the reports and exports made from them. Model: an
exported SavedModel loaded again, predicting like Fit. Both take new data
through the design of the fit (the same columns and category levels). A Fit
names its statistics as statsmodels' results do, and shows in a notebook as
their summary does (io/html.py).
"""
import copy
import math
from dataclasses import replace
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from linreg.data.cells import bad_weight
from linreg.data.frames import frame_design, real_array
from linreg.data.read import read_design
from linreg.errors import LinregError
from linreg.plan import MAX_MOMENTS_FEATURES, real
from linreg.quiet import import_tensorflow
from linreg.train import original

# Every way into the library's TensorFlow code (linreg.fit, linreg.load, Fit,
# Model) imports this module first: TensorFlow comes in here, without its
# log lines on stderr.
import_tensorflow()


class NotConvergedError(LinregError):
    """Asked for statistics of a fit that has not converged (exit code 4)."""

    exit_code = 4


class Fit:
    """A fitted linear model: coefficients, statistics, and what training did.

    Every per-coefficient mapping has the key "intercept" first, then each
    feature's name, in the original units of the data. A fit that has not
    converged has coefficients but no statistics: asking for its standard
    errors, t, p or intervals raises NotConvergedError, since they would
    describe a point that is not the least-squares solution.
    """

    def __init__(self, plan, table, scaled, pre, solution, inference, settings, tol, timings, resumed_at=None):
        self.table, self.scaled, self.curvature = table, scaled, pre.curvature
        self.condition_number = pre.condition_number  # κ of the standardized data (the Hessian's is its square)
        self.solution, self.result, self.optimizer = solution, solution.result, solution.optimizer
        self.optimizer_name, self.method, self.dtype, self.tol = settings.optimizer, solution.method, settings.dtype, tol
        self.engine, self.cluster, self.resumed_at = plan.engine, plan.cluster, resumed_at
        self.timings = timings  # {stage: seconds}, in the order the stages ran
        self.training_seconds = timings.get("train", 0.0)
        self.pass_seconds = timings.get("read") if plan.engine != "memory" else None
        self.features, self.target = list(table.features), table.target
        self.formula = getattr(table, "formula", None)  # data/formula.py's, when the fit was given one
        self.stats, self.diagnostics, self.bounds = inference.stats, inference.diagnostics, inference.bounds
        # The covariance type's (analysis/covariance.py): its distribution is that of the tests and intervals.
        self.covariance, self.cov_kwds = inference.covariance, inference.cov_kwds
        self.cov_type = self.covariance.cov_type
        self.least_squares = self._by_name(inference.reference)
        self.relative_difference = inference.relative_difference
        self.relative_gradient = inference.relative_gradient
        # What the coefficients can be trusted to (analysis/precision.py); a fit
        # that cannot promise one correct digit has not converged to anything.
        self.estimated_digits, self.zero_to_rounding = inference.digits, inference.zero
        if not inference.converged:
            self.result = replace(self.result, converged=False)

    @cached_property
    def model(self):
        """The model as it is exported: the final float64 coefficients in the standardized space
        (made when first asked for: a fit that is not exported needs no TensorFlow variables)."""
        from linreg.core.model import LinearModel

        return LinearModel(len(self.features), W=self.solution.W, b=self.solution.b, dtype="float64")

    # --- the numbers -----------------------------------------------------------

    @property
    def names(self):
        return ["intercept", *self.features] if self.scaled.intercept else list(self.features)

    def _by_name(self, values):
        """{name: value} from an array ordered (intercept, features...)."""
        first = 0 if self.scaled.intercept else 1  # no intercept: its slot (0) is left out
        return {name: float(value) for name, value in zip(self.names, values[first:])}

    def _valid(self, what, statistics=True):
        if statistics and not self.scaled.cross_products:
            raise LinregError(
                f"no {what}: they need the cross-products of the features, which engine stream does not gather "
                f"past {MAX_MOMENTS_FEATURES} features; the coefficients, R² and residual SD are known"
            )
        if not self.converged:
            raise NotConvergedError(
                f"the fit has not converged after {self.epochs} epochs, so its {what} would describe a point that "
                f"is not the least-squares solution; {self.advice()}"
            )

    def advice(self):
        """What to try when the fit has not converged."""
        if self.solution.result.converged:  # trained, to a point not known to one digit
            if self.method == "orthogonal":
                return "leave out near-duplicate columns (see the condition number)"
            return "use the default optimizer auto" + (" or float64 (--dtype float64)" if self.dtype == "float32" else "")
        if self.method == "orthogonal":
            return "raise epochs (--epochs), or check the data for near-duplicate columns"
        return "use the default optimizer auto, or raise epochs (--epochs)"

    @property
    def coefficients(self):
        return self._by_name(self.stats.coefficients)

    @property
    def std_errors(self):
        self._valid("standard errors")
        return self._by_name(self.stats.std_errors)

    @property
    def t_values(self):
        """t statistics; NaN for an exact fit (zero residuals), where they are not meaningful."""
        self._valid("t values")
        return self._by_name(self.stats.t)

    @property
    def p_values(self):
        """p-values; NaN for an exact fit (zero residuals), where they are not meaningful."""
        self._valid("p-values")
        return self._by_name(self.stats.p_values)

    @property
    def exact(self):
        """Whether the residuals are zero to rounding (an exact fit)."""
        return self.stats.exact

    def conf_int(self, alpha=0.05):
        """{name: (low, high)}: the 1 - alpha confidence interval of each coefficient."""
        self._valid("confidence intervals")
        if not (real(alpha) and 0 < alpha < 1):
            raise LinregError(f"alpha must be between 0 and 1, not {alpha!r}")
        half = self.covariance.distribution.ppf(1 - alpha / 2) * self.stats.std_errors
        low, high = self._by_name(self.stats.coefficients - half), self._by_name(self.stats.coefficients + half)
        return {name: (low[name], high[name]) for name in self.names}

    r_squared = rsquared = property(lambda self: self.stats.r_squared)
    adj_r_squared = rsquared_adj = property(lambda self: self.stats.adj_r_squared)
    residual_sd = property(lambda self: self.stats.residual_sd)
    n = property(lambda self: self.stats.n)
    epochs = property(lambda self: self.result.epochs)
    converged = property(lambda self: self.result.converged)
    compile = property(lambda self: self.result.compile)

    def _diagnostic(name, what, rows=False):  # noqa: N805  (builds the properties below)
        """A statistic of statsmodels' results. F, the likelihood and the
        information criteria come from the loss, known to every engine; the
        others need the cross-products (rows=True), and a streamed engine,
        which never held the rows, may not know them at all."""

        def get(self):
            self._valid(what, statistics=rows)
            value = getattr(self.diagnostics, name)
            if rows and self.engine != "memory" and math.isnan(value):
                raise LinregError(f"no {what}: engine {self.engine} gathers statistics of the rows, not the rows "
                                  "themselves, which it needs; fit with engine memory for it")
            return value

        return property(get, doc=f"The {what}, as statsmodels' OLS (WLS when weighted) results give it.")

    f_statistic = _diagnostic("f_statistic", "F statistic")  # a Wald F for a robust covariance, as statsmodels'
    f_pvalue = _diagnostic("f_p_value", "F test's p-value")
    log_likelihood = _diagnostic("log_likelihood", "log-likelihood")
    aic = _diagnostic("aic", "AIC")
    bic = _diagnostic("bic", "BIC")
    durbin_watson = _diagnostic("durbin_watson", "Durbin-Watson statistic", rows=True)
    # statsmodels' condition_number (of the raw design, weighted); condition_number is the standardized data's.
    condition_number_raw = _diagnostic("condition_number_raw", "condition number of the raw design", rows=True)
    del _diagnostic

    @property
    def history(self):
        """A row per step of every round, and a last row for the final fit:
        the loss of the standardized least-squares problem and the gradient
        norm the step saw (a refinement round's: of its loss on what is left
        unexplained), the coefficients in original units [k, d+1] before the
        step, and the round (0: the first run, k: refinement round k)."""
        h = self.result.history
        coefficients = np.array([original(self.scaled, W_k, b_k) for W_k, b_k in zip(h.W.astype(np.float64), h.b)])
        coefficients[-1] = self.stats.coefficients
        if not self.scaled.intercept:
            coefficients = coefficients[:, 1:]
        return {
            "loss": h.loss.astype(np.float64),
            "gradient_norm": h.gradient_norm.astype(np.float64),
            "coefficients": coefficients,
            "round": h.round,
        }

    def predict(self, x, interval=None, alpha=0.05, weights=None):
        """Predictions for x: an array [N, d], a data frame with the feature
        columns, or a CSV path with them. With interval="confidence" (for the
        mean at x) or "prediction" (for a new observation at x), also the
        1 - alpha interval: returns (prediction, low, high). weights: the new
        rows' observation weights (N numbers, or the name of a column of x),
        for prediction intervals, where a new observation's variance is σ²/w;
        a weighted fit's prediction intervals need them."""
        raw = x
        x = _features(x, self.features, self.table.columns, self.table.categories, self.formula)
        mean = self.stats.coefficients[0] + x @ self.stats.coefficients[1:]
        weights = _new_weights(raw, weights, len(x), self.scaled.weighted, interval)
        if interval is None:
            return mean
        self._valid("intervals")
        return _interval(mean, x, self.stats.covariance, self.stats.residual_sd, self.covariance.distribution,
                         interval, alpha, weights)

    # --- reports ---------------------------------------------------------------

    def summary(self):
        """The text table `linreg fit` prints: a str, shown as HTML tables in a notebook."""
        from linreg.io.html import Summary

        return Summary.of(self)

    def _repr_html_(self):
        """What a notebook shows for the fit: its summary's tables."""
        return self.summary()._repr_html_()

    def to_dict(self):
        """The document `linreg fit --json` writes."""
        from linreg.io.report import document

        return document(self)

    def export(self, path, force=False):
        """Save as a TensorFlow SavedModel folder (see `linreg.load`); not for a fit that has not converged."""
        from linreg.io import export

        self._valid("export", statistics=False)
        statistics = self.stats if self.scaled.cross_products else None
        export.save(path, self.model, self.scaled, self.features, self.target, force=force, statistics=statistics,
                    columns=self.table.columns, categories=self.table.categories, formula=self.formula,
                    covariance=self.covariance if self.scaled.cross_products else None,
                    weighted=self.scaled.weighted)

    def __repr__(self):
        state = "converged" if self.converged else "NOT converged"
        return f"<linreg.Fit {self.target!r} ~ {len(self.features)} features, n={self.n}, {state} after {self.epochs} epochs>"

    # --- pickling --------------------------------------------------------------

    def __getstate__(self):
        """What pickle saves: the whole fit (its TensorFlow variables pickle as
        their values) but for what served only the training run and cannot be
        pickled -- cg's product with the data's Hessian (the rule takes no
        more steps) and the workers' connections (their number is kept)."""
        from linreg.engine.cluster import Single

        state = self.__dict__.copy()
        if getattr(self.optimizer, "hvp", None) is not None:
            state["optimizer"] = copy.copy(self.optimizer)
            state["optimizer"].hvp = None
            state["solution"] = replace(self.solution, optimizer=state["optimizer"])
        if self.cluster is not None and type(self.cluster) is not Single:
            workers = self.cluster
            state["cluster"] = SimpleNamespace(rank=workers.rank, size=workers.size, is_chief=workers.is_chief)
        return state


def _features(x, features, columns=None, categories=None, formula=None):
    """x as a float64 [N, d] array with the model's features. A file, folder or
    glob of files (read as `linreg fit` reads them) or a data frame is read by
    its `columns` (default: the features), categorical ones coded with the
    fit's levels, or designed by the fit's `formula` from its raw columns; an
    array must hold the features already."""
    if formula is not None and (isinstance(x, (str, Path)) or hasattr(x, "columns")):
        return formula.design(x)
    columns, categories = columns or features, categories or {}
    if isinstance(x, (str, Path)):  # a file, folder or glob, or "-" for standard input
        return read_design(x, columns, categories)
    if hasattr(x, "columns") and hasattr(x, "to_numpy"):
        x = frame_design(x, columns, categories)
    x = real_array(x, "x")
    if not np.all(np.isfinite(x)):
        raise LinregError("x holds NaN or infinite values; predictions need finite numbers")
    x = x[:, None] if x.ndim == 1 and len(features) == 1 else x
    if x.ndim != 2 or x.shape[1] != len(features):
        raise LinregError(f"x must have shape [N, {len(features)}] (features {', '.join(features)}), got {list(x.shape)}")
    return x


def _new_weights(x, weights, rows, weighted, interval):
    """The new rows' weights as float64 [rows] (None: all 1), from an array or
    a column of x (a file or a data frame), checked against the interval asked."""
    if weights is None:
        if weighted and interval == "prediction":
            raise LinregError("the model was fitted with weights, so a new observation's variance is σ²/w: give the "
                              "new rows' weights (weights=, or --weights COLUMN) for prediction intervals")
        return None
    if interval != "prediction":
        raise LinregError("weights only set the width of prediction intervals; ask for interval=\"prediction\" "
                          "(--interval prediction) or leave the weights out")
    if isinstance(weights, str):  # a column of the new rows, read as their features were
        if str(x) == "-":
            raise LinregError(f"the weights' column {weights!r} would be a second reading of standard input, which "
                              "has been read; save the rows to a file and give its path")
        if isinstance(x, (str, Path)):
            weights = read_design(x, [weights], {})[:, 0]
        elif hasattr(x, "columns") and hasattr(x, "to_numpy"):
            weights = frame_design(x, [weights], {})[:, 0]
        else:
            raise LinregError(f"weights names the column {weights!r}, but x is an array; give the weights as an array")
    weights = real_array(weights, "weights")
    if weights.shape != (rows,):
        raise LinregError(f"weights must be {rows} numbers, one per row of x; got shape {list(weights.shape)}")
    bad = np.flatnonzero(~(np.isfinite(weights) & (weights > 0)))
    if len(bad):
        raise bad_weight(f"row {bad[0] + 1} of the new data", weights[bad[0]])
    return weights


INTERVALS = ("confidence", "prediction")


def _interval(mean, x, covariance, residual_sd, distribution, interval, alpha, weights=None):
    """(mean, low, high): the interval for the mean at each row x (confidence),
    or for a new observation there (prediction, which adds the residual
    variance, over the row's weight when given), from the coefficients'
    covariance and `distribution` (scipy's: Student's t, or the normal for a
    robust covariance)."""
    if interval not in INTERVALS:
        raise LinregError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    if not (real(alpha) and 0 < alpha < 1):
        raise LinregError(f"alpha must be between 0 and 1, not {alpha!r}")
    design = np.column_stack([np.ones(len(x)), x])
    variance = np.einsum("ij,jk,ik->i", design, np.asarray(covariance), design)
    if interval == "prediction":
        variance = variance + residual_sd**2 / (1.0 if weights is None else weights)
    half = distribution.ppf(1 - alpha / 2) * np.sqrt(np.maximum(variance, 0.0))
    return mean, mean - half, mean + half


class Model:
    """An exported model, loaded: `predict(x)` like Fit's, through the SavedModel."""

    def __init__(self, path):
        from linreg.io import export

        self.path = Path(path)
        self._serve, self.metadata = export.load(path)
        self.features, self.target = list(self.metadata["features"]), self.metadata["target"]
        self.formula = None
        if "formula" in self.metadata:
            from linreg.data.formula import Formula

            self.formula = Formula.from_json(self.metadata["formula"], self.path)

    def predict(self, x, interval=None, alpha=0.05, weights=None):
        """Predictions through the SavedModel; with interval= and weights= as
        Fit.predict, from the coefficients' covariance stored in the export."""
        raw = x
        x = _features(x, self.features, self.metadata.get("columns"), self.metadata.get("categories"), self.formula)
        # An export that serves no intervals says so before the new rows' weights are read.
        if interval is not None and "penalty" in self.metadata:
            raise LinregError(f"the export {self.path} is a penalized fit, whose coefficients were chosen with the data: "
                              "it has no valid intervals; predict without an interval")
        if interval is not None and "covariance" not in self.metadata:
            raise LinregError(f"the export {self.path} holds no covariance; export the fit again for intervals")
        weights = _new_weights(raw, weights, len(x), self.metadata.get("weighted", False), interval)
        import tensorflow as tf

        inputs = {key: tf.constant(x[:, j]) for j, key in enumerate(self.metadata["inputs"])}
        mean = self._serve(**inputs)["prediction"].numpy()
        if interval is None:
            return mean
        meta = self.metadata
        from scipy import stats

        # A robust covariance's intervals use the normal (exports older than the
        # covariance types hold the classical one, with Student's t).
        distribution = stats.t(meta["df_residual"]) if meta.get("use_t", True) else stats.norm()
        return _interval(mean, x, meta["covariance"], meta["residual_sd"], distribution, interval, alpha, weights)

    def __repr__(self):
        return f"<linreg.Model {self.target!r} ~ {', '.join(self.features)} from {self.path}>"


def load(path):
    """Load a folder written by `Fit.export` or `linreg fit --export`."""
    return Model(path)
