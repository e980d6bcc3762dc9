"""`linreg.fit()` and `linreg.load()`: the one entry point the CLI and notebooks share.

    import linreg
    fit = linreg.fit("houses.csv", target="price", optimizer="momentum")
    fit.coefficients["area"], fit.p_values["area"], fit.conf_int()
    print(fit.summary())
    fit.export("houses-model")
    linreg.load("houses-model").predict(x)

fit() reads and checks the data, standardizes it, measures the loss's
curvature, picks the optimizer's step from it, trains the heart's model with
the heart's loop (core/) through the engine's driver, and returns a Fit with
the statistics of an ordinary least-squares fit beside the closed form.
"""
import math
import numbers
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from linreg.analysis import ols
from linreg.analysis.curvature import curvature as measure_curvature
from linreg.core import optimizers
from linreg.core.model import LinearModel
from linreg.data.table import load as load_table
from linreg.data.table import read_columns, standardize
from linreg.engine import driver
from linreg.errors import LinregError

DTYPES = {"float32": tf.float32, "float64": tf.float64}
DEFAULT_EPOCHS = 100_000

# Convergence: stop when the gradient's norm has fallen to `tol` times its
# first value. Near the minimum the coefficients' relative error is at most
# about κ·(relative gradient norm), κ the condition number, so each factor of
# ten in tol is one more digit -- until rounding noise in the gradient takes
# over. Measured floors on generated data: 1e-9 to 1.4e-7 in float32, below
# 1e-16 in float64.
#   float64: 1e-15, a factor of ten above the floor.
#   float32: aim for a relative error of 1e-4, tol = 1e-4/κ, kept between
#            1e-9 and 1e-6 so that it stays above the floor.
FLOAT64_TOL = 1e-15
FLOAT32_TARGET_ERROR, FLOAT32_TOL_RANGE = 1e-4, (1e-9, 1e-6)

# float32 keeps about 7 significant digits. Rounding the data to float32
# moves the least-squares solution by about √κ·epsilon (relative): below
# FEW_DIGITS expected digits we warn and suggest float64.
FLOAT32_EPSILON = float(np.finfo(np.float32).eps)
FEW_DIGITS = 5


def default_tol(dtype, condition_number):
    if dtype == "float64":
        return FLOAT64_TOL
    low, high = FLOAT32_TOL_RANGE
    return min(max(FLOAT32_TARGET_ERROR / condition_number, low), high)


def float32_warning(condition_number):
    """The warning to give before a float32 fit, or None."""
    expected = -math.log10(math.sqrt(condition_number) * FLOAT32_EPSILON) if math.isfinite(condition_number) else 0.0
    if expected >= FEW_DIGITS:
        return None
    return (
        f"the standardized data's condition number is {condition_number:.3g}, so float32 can give at best "
        f"about {max(math.floor(expected), 0)} correct digits; use float64 (--dtype float64) for more"
    )


def _check_arguments(dtype, optimizer, learning_rate, epochs, tol, compile, progress):
    if dtype not in DTYPES:
        raise LinregError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if optimizer not in optimizers.REGISTRY:
        raise LinregError(f"optimizer must be one of {', '.join(optimizers.REGISTRY)}, not {optimizer!r}")
    if learning_rate != "auto" and not (
        isinstance(learning_rate, numbers.Real) and math.isfinite(learning_rate) and learning_rate > 0
    ):
        raise LinregError(f"learning_rate must be 'auto' or a number greater than 0, not {learning_rate!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
        raise LinregError(f"epochs must be a whole number of at least 1, not {epochs!r}")
    if tol is not None and not (isinstance(tol, numbers.Real) and math.isfinite(tol) and tol >= 0):
        raise LinregError(f"tol must be a number of at least 0, not {tol!r}")
    if compile not in driver.COMPILE_CHOICES:
        raise LinregError(f"compile must be one of {', '.join(driver.COMPILE_CHOICES)}, not {compile!r}")
    if progress not in (True, False, "auto"):
        raise LinregError(f"progress must be True, False or 'auto', not {progress!r}")


def fit(
    data,
    target=None,
    *,
    features=None,
    dtype="float32",
    optimizer="gd",
    learning_rate="auto",
    epochs=DEFAULT_EPOCHS,
    tol=None,
    compile="auto",
    checkpoint=None,
    logdir=None,
    progress="auto",
    warn=None,
):
    """Fit y = x·W + b by gradient descent on the standardized data; return a Fit.

    data:          a CSV path, a data frame (with `target`), or a tuple (x, y)
    features:      the columns to use (default: every column but the target)
    dtype:         "float32" or "float64", the training precision
    optimizer:     "gd", "momentum" or "nesterov" (core/optimizers.py)
    learning_rate: "auto" (from the Hessian's eigenvalues) or a number, in the
                   standardized space
    epochs:        the most epochs to run; tol: stop when the gradient's norm
                   is tol times its first (default from dtype and conditioning)
    compile:       "auto", "none", "function" or "xla"
    checkpoint:    a folder: resume from it if it holds this run, save to it
    logdir:        a folder for TensorBoard scalars, written as training goes
    progress:      a refreshing line on stderr: True, False or "auto" (on a terminal)
    warn:          called with a warning's text (default: printed to stderr)

    Raises LinregError for bad input, DivergenceError if training blows up,
    Interrupted on SIGINT/SIGTERM (after saving the checkpoint).
    """
    _check_arguments(dtype, optimizer, learning_rate, epochs, tol, compile, progress)
    table = load_table(data, target, features)
    scaled = standardize(table.x, table.y)

    curvature = measure_curvature(scaled.x, scaled.y)
    tol = default_tol(dtype, curvature.condition_number) if tol is None else float(tol)
    if dtype == "float32" and (message := float32_warning(curvature.condition_number)):
        (warn or _print_warning)(message)

    model = LinearModel(table.x.shape[1], dtype=DTYPES[dtype])
    rule = optimizers.make(optimizer, model, curvature.largest, curvature.smallest, learning_rate)
    mode = driver.resolve_compile(compile, *table.x.shape, epochs)

    listeners = []
    from linreg.io import progress as progress_bar

    if progress_bar.wanted(progress):
        listeners.append(progress_bar.Progress(epochs))
    if logdir is not None:
        from linreg.io.tensorboard import TensorBoard

        def original_units(W, b):
            return np.array([_original(scaled, W_k, b_k) for W_k, b_k in zip(W, b)])

        listeners.append(TensorBoard(logdir, ["intercept", *table.features], original_units, float(rule.learning_rate)))
    checkpoints = None
    if checkpoint is not None:
        from linreg.engine.checkpoint import Checkpoints, fingerprint

        settings = {
            "data": fingerprint(scaled.x, scaled.y),
            "dtype": dtype,
            "optimizer": optimizer,
            "learning_rate": float(rule.learning_rate),
            "tol": tol,
            "compile": mode,
        }
        checkpoints = Checkpoints(checkpoint, settings)

    started = time.perf_counter()
    result = driver.train(model, rule, scaled.x, scaled.y, epochs, tol=tol, compile=mode,
                          listeners=listeners, checkpoints=checkpoints)
    seconds = time.perf_counter() - started
    return Fit(table, scaled, curvature, model, rule, optimizer, dtype, tol, result, seconds,
               resumed_at=None if checkpoints is None else checkpoints.restored_from)


def _original(scaled, W, b):
    W, b = scaled.coefficients(W, b)
    return np.concatenate([[b], W])


def _print_warning(message):
    import sys

    print(f"warning: {message}", file=sys.stderr)


class Fit:
    """A fitted linear model: coefficients, statistics, and what training did.

    Every per-coefficient mapping has the key "intercept" first, then each
    feature's name, in the original units of the data.
    """

    def __init__(self, table, scaled, curvature, model, optimizer, optimizer_name, dtype, tol, result, seconds,
                 resumed_at=None):
        self.table, self.scaled, self.curvature, self.model = table, scaled, curvature, model
        self.optimizer, self.optimizer_name, self.dtype, self.tol = optimizer, optimizer_name, dtype, tol
        self.result, self.training_seconds, self.resumed_at = result, seconds, resumed_at
        self.features, self.target = list(table.features), table.target
        W, b = scaled.coefficients(model.W.numpy(), model.b.numpy())
        self.stats = ols.ols_statistics(table.x, table.y, W, b)
        ls_W, ls_b = ols.least_squares(table.x, table.y)
        self.least_squares = self._by_name(np.concatenate([[ls_b], ls_W]))
        reference = np.concatenate([[ls_b], ls_W])
        self.relative_difference = np.abs(self.stats.coefficients - reference) / np.maximum(
            np.abs(reference), np.finfo(np.float64).tiny
        )
        norms = result.history.gradient_norm
        self.relative_gradient = float(norms[-1] / norms[0]) if norms[0] > 0 else 0.0

    # --- the numbers -----------------------------------------------------------

    @property
    def names(self):
        return ["intercept", *self.features]

    def _by_name(self, values):
        return {name: float(value) for name, value in zip(self.names, values)}

    @property
    def coefficients(self):
        return self._by_name(self.stats.coefficients)

    @property
    def std_errors(self):
        return self._by_name(self.stats.std_errors)

    @property
    def t_values(self):
        return self._by_name(self.stats.t)

    @property
    def p_values(self):
        return self._by_name(self.stats.p_values)

    def conf_int(self, alpha=0.05):
        """{name: (low, high)}: the 1 - alpha confidence interval of each coefficient."""
        if not 0 < alpha < 1:
            raise LinregError(f"alpha must be between 0 and 1, not {alpha!r}")
        from scipy import stats

        half = stats.t.ppf(1 - alpha / 2, self.stats.df_residual) * self.stats.std_errors
        return {n: (float(c - h), float(c + h)) for n, c, h in zip(self.names, self.stats.coefficients, half)}

    r_squared = property(lambda self: self.stats.r_squared)
    adj_r_squared = property(lambda self: self.stats.adj_r_squared)
    residual_sd = property(lambda self: self.stats.residual_sd)
    n = property(lambda self: self.stats.n)
    epochs = property(lambda self: self.result.epochs)
    converged = property(lambda self: self.result.converged)
    compile = property(lambda self: self.result.compile)

    @property
    def history(self):
        """Per epoch (0 = the start): the loss and gradient norm of the
        standardized problem, and the coefficients in original units [k, d+1]."""
        h = self.result.history
        return {
            "loss": h.loss.astype(np.float64),
            "gradient_norm": h.gradient_norm.astype(np.float64),
            "coefficients": np.array([_original(self.scaled, W, b) for W, b in zip(h.W, h.b)]),
        }

    def predict(self, x):
        """Predictions for x: an array [N, d], a data frame with the feature
        columns, or a CSV path with them."""
        return self.coefficients["intercept"] + _features(x, self.features) @ self.stats.coefficients[1:]

    # --- reports ---------------------------------------------------------------

    def summary(self):
        """The text table `linreg fit` prints."""
        from linreg.io.report import summary

        return summary(self)

    def to_dict(self):
        """The document `linreg fit --json` writes."""
        from linreg.io.report import document

        return document(self)

    def export(self, path, force=False):
        """Save as a TensorFlow SavedModel folder (see `linreg.load`)."""
        from linreg.io import export

        export.save(path, self.model, self.scaled, self.features, self.target, force=force)

    def __repr__(self):
        state = "converged" if self.converged else "NOT converged"
        return f"<linreg.Fit {self.target!r} ~ {len(self.features)} features, n={self.n}, {state} after {self.epochs} epochs>"


def _features(x, features):
    """x as a float64 [N, d] array with the model's feature columns."""
    if isinstance(x, (str, Path)):
        return read_columns(x, features)[0]
    if hasattr(x, "columns") and hasattr(x, "to_numpy"):
        missing = [name for name in features if name not in [str(c) for c in x.columns]]
        if missing:
            raise LinregError(f"the data frame has no column {missing[0]!r}; the model needs {', '.join(features)}")
        x = np.column_stack([np.asarray(x[name], dtype=np.float64) for name in features])
    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise LinregError("x must be an array of numbers") from None
    x = x[:, None] if x.ndim == 1 and len(features) == 1 else x
    if x.ndim != 2 or x.shape[1] != len(features):
        raise LinregError(f"x must have shape [N, {len(features)}] (features {', '.join(features)}), got {list(x.shape)}")
    return x


class Model:
    """An exported model, loaded: `predict(x)` like Fit's, through the SavedModel."""

    def __init__(self, path):
        from linreg.io import export

        self.path = Path(path)
        self._serve, self.metadata = export.load(path)
        self.features, self.target = list(self.metadata["features"]), self.metadata["target"]

    def predict(self, x):
        x = _features(x, self.features)
        inputs = {key: tf.constant(x[:, j]) for j, key in enumerate(self.metadata["inputs"])}
        return self._serve(**inputs)["prediction"].numpy()

    def __repr__(self):
        return f"<linreg.Model {self.target!r} ~ {', '.join(self.features)} from {self.path}>"


def load(path):
    """Load a folder written by `Fit.export` or `linreg fit --export`."""
    return Model(path)
