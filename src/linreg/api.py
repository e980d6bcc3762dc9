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
import copy
import math
import numbers
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import tensorflow as tf

from linreg.analysis import ols, precision
from linreg.analysis.diagnostics import diagnostics
from linreg.analysis.curvature import Curvature
from linreg.analysis.precision import default_tol, float32_warning
from linreg.core import optimizers
from linreg.core.model import LinearModel
from linreg.data.table import load as load_table
from linreg.data.scaling import orthogonalize, standardize
from linreg.data.table import MAX_LEVELS, frame_design, read_design, real_array
from linreg.engine import driver, solve
from linreg.errors import LinregError

DTYPES = {"float32": tf.float32, "float64": tf.float64}
DEFAULT_EPOCHS = 100_000
MAX_EPOCHS = 10**15  # the loop counts epochs in int64; 1e15 epochs would take years anyway

def _real(value):
    """A finite real number, and not a bool (True is 1 to Python, never to a user)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _one_of(value, choices):
    return isinstance(value, str) and value in choices


def _check_arguments(dtype, optimizer, learning_rate, epochs, tol, compile, progress, intercept=True, checkpoint=None,
                     logdir=None, max_levels=MAX_LEVELS):
    if not _one_of(dtype, DTYPES):
        raise LinregError(f"dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    if not (_one_of(optimizer, solve.METHODS) or _one_of(optimizer, optimizers.REGISTRY)):
        raise LinregError(f"optimizer must be one of {', '.join(solve.METHODS)}, not {optimizer!r}")
    if learning_rate != "auto" and not (_real(learning_rate) and learning_rate > 0):
        raise LinregError(f"learning_rate must be 'auto' or a number greater than 0, not {learning_rate!r}")
    if learning_rate != "auto" and optimizer == "cg":
        raise LinregError("optimizer cg finds its step length itself at every step; leave learning_rate at 'auto'")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or not 1 <= epochs <= MAX_EPOCHS:
        raise LinregError(f"epochs must be a whole number from 1 to {MAX_EPOCHS:.0e}, not {epochs!r}")
    if tol is not None and not (_real(tol) and tol >= 0):
        raise LinregError(f"tol must be a number of at least 0, not {tol!r}")
    if not _one_of(compile, driver.COMPILE_CHOICES):
        raise LinregError(f"compile must be one of {', '.join(driver.COMPILE_CHOICES)}, not {compile!r}")
    if not (intercept is True or intercept is False):
        raise LinregError(f"intercept must be True or False, not {intercept!r}")
    if not (progress is True or progress is False or progress == "auto"):
        raise LinregError(f"progress must be True, False or 'auto', not {progress!r}")
    for name, folder in (("checkpoint", checkpoint), ("logdir", logdir)):
        if folder is not None and not isinstance(folder, (str, os.PathLike)):
            raise LinregError(f"{name} must be a folder's path (a string or a Path), not {folder!r}")
    if isinstance(max_levels, bool) or not isinstance(max_levels, numbers.Integral) or max_levels < 2:
        raise LinregError(f"max_levels must be a whole number of at least 2, not {max_levels!r}")


def _names(value, what):
    """None, or the list of column names `value` gives: one name, or a list (any iterable) of them."""
    if value is None or isinstance(value, str):
        return value if value is None else [value]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, Mapping)):
        names = list(value)
        # A frame's column labels may be whole numbers.
        if all(isinstance(name, (str, numbers.Integral)) and not isinstance(name, bool) for name in names):
            return names
    raise LinregError(f"{what} must be a column name or a list of column names, not {value!r}")


def fit(
    data,
    target=None,
    *,
    features=None,
    dtype="float64",
    optimizer="auto",
    learning_rate="auto",
    epochs=DEFAULT_EPOCHS,
    tol=None,
    compile="auto",
    checkpoint=None,
    logdir=None,
    progress="auto",
    missing="error",
    categorical=None,
    intercept=True,
    weights=None,
    engine="auto",
    batch_rows=None,
    warn=None,
    max_levels=MAX_LEVELS,
):
    """Fit y = x·W + b by gradient descent on the standardized data; return a Fit.

    data:          a CSV path, a data frame (with `target`), or a tuple (x, y)
    features:      the columns to use (default: every column but the target; one name may be a string)
    dtype:         "float64" (default) or "float32", the training precision
    optimizer:     "auto" (default: "orthogonal", plain descent on the
                   orthogonalized data, refined on extended-precision
                   residuals), or one of
                   core/optimizers.py's rules on the standardized data:
                   "gd", "momentum", "nesterov", "cg"
    learning_rate: "auto" (from the Hessian's eigenvalues) or a number, in the
                   space the optimizer works in
    epochs:        the most epochs to run; tol: stop when the gradient's norm
                   is tol times its first (default from dtype and conditioning)
    compile:       "auto", "none", "function" or "xla"
    checkpoint:    a folder: resume from it if it holds this run, save to it
    logdir:        a folder for TensorBoard scalars, written as training goes
    progress:      a refreshing line on stderr: True, False or "auto" (on a terminal)
    missing:       "error" (default: a missing value -- an empty cell, NA, NaN,
                   null -- stops the fit) or "drop" (its row is left out)
    categorical:   feature columns to one-hot code (drop-first, levels sorted);
                   columns of text that is not numbers are coded anyway, with a note
    intercept:     False for a fit through the origin (R² then as statsmodels
                   defines it without a constant: against Σy², not Σ(y - ȳ)²)
    weights:       observation weights (weighted least squares): a column's
                   name (CSV, data frame) or an array of N positive numbers
    engine:        where the data lives while fitting (a file, folder or glob
                   of CSV or Parquet files; frames and arrays are in memory):
                   "memory" (the rows in memory), "moments" (one streamed pass
                   gathers the sufficient statistics, training runs on them),
                   "stream" (every epoch streams the files), or "auto"
                   (default: memory when the data fits in half the available
                   memory, otherwise moments; stream past 4096 features,
                   with coefficients, R² and residual SD but no standard
                   errors). With TF_CONFIG naming several
                   workers, this process is one of them (engine/cluster.py).
    batch_rows:    rows per batch read from files (default: about 64 MiB of
                   numbers); what a streamed engine holds at a time
    warn:          called with a warning's text (default: printed to stderr)
    max_levels:    the most levels a categorical column may have (default
                   1000): past it the column is refused, as its one-hot
                   columns (rows x levels x 8 bytes) could fill the memory

    Raises LinregError for bad input, DivergenceError if training blows up,
    Interrupted on SIGINT/SIGTERM (after saving the checkpoint).
    """
    _check_arguments(dtype, optimizer, learning_rate, epochs, tol, compile, progress, intercept, checkpoint, logdir,
                     max_levels)
    if batch_rows is not None and (isinstance(batch_rows, bool) or not isinstance(batch_rows, numbers.Integral) or batch_rows < 1):
        raise LinregError(f"batch_rows must be a whole number of at least 1, not {batch_rows!r}")
    features, categorical = _names(features, "features"), _names(categorical, "categorical")
    engine, source, cluster = _plan(data, engine, target, weights, categorical, optimizer)
    pass_seconds = None  # the streamed pass that gathers the statistics, when there is one
    if engine == "memory":
        table = _in_memory(data, source, target, features, missing, categorical, weights, intercept, max_levels)
        for note in table.notes:
            (warn or _print_note)(note)
        scaled = standardize(table.x, table.y, intercept=intercept, weights=table.weights)
    else:
        started = time.perf_counter()
        table, scaled = _streamed(source, target, features, weights, missing, intercept, cluster, batch_rows, engine)
        pass_seconds = time.perf_counter() - started
    method = solve.resolve(optimizer) if engine != "stream" else ("nesterov" if optimizer == "auto" else optimizer)
    if scaled.cross_products:
        ortho = orthogonalize(scaled.x)
        # The Hessian of the standardized loss is 2/N·[x_sᵀx_s, 0; 0, N] (the
        # columns are centred), so its eigenvalues are 2·s²/N for the singular
        # values s of x_s -- those of R -- and 2 for the intercept.
        s2 = 2.0 * ortho.singular_values**2 / len(scaled.y)
        b2 = [2.0] if scaled.train_intercept else []  # the intercept's own curvature, when it is trained
        curvature = Curvature(max([s2[0], *b2]), min([s2[-1], *b2]), "from the singular values of the standardized data")
        kappa = ortho.condition_number
    else:  # too many features for xᵀx: λ_max from passes over the files, λ_min unknown
        from linreg.engine.streamed import largest_curvature

        if method not in ("gd", "nesterov"):
            raise LinregError(
                f"with more than {_max_moments_features()} features engine stream trains with gd or nesterov "
                f"(default); {method} needs the smallest eigenvalue of the Hessian, which needs their cross-products"
            )
        largest = largest_curvature(source, target, table.features, weights, missing, scaled, cluster, batch_rows)
        curvature = Curvature(largest, 0.0, "Lanczos over the files (the smallest eigenvalue is not known)")
        ortho, kappa = None, math.nan
    kappa_h = curvature.condition_number if scaled.cross_products else None  # None: unknown
    tol = default_tol(dtype, 1.0 if method == "orthogonal" else kappa_h) if tol is None else float(tol)
    if dtype == "float32" and scaled.cross_products and (message := float32_warning(method, kappa)):
        (warn or _print_warning)(message)
    to_standardized = ortho.weights if method == "orthogonal" else (lambda W: W)

    listeners = []
    from linreg.io import progress as progress_bar

    if progress_bar.wanted(progress):
        listeners.append(progress_bar.Progress(epochs))
    if logdir is not None:
        from linreg.io.tensorboard import TensorBoard

        def original_units(W, b):
            return np.array([_original(scaled, to_standardized(W_k), b_k) for W_k, b_k in zip(W, b)])

        listeners.append(TensorBoard(logdir, ["intercept", *table.features], original_units))
    checkpoints = None
    if checkpoint is not None:
        from linreg.engine.checkpoint import Checkpoints, files, fingerprint

        if engine == "memory":
            data = fingerprint(scaled.x, scaled.y, np.array([scaled.y_mean, scaled.y_scale, scaled.rows]))
        else:
            # The streamed statistics' last bits depend on the batches and workers
            # that summed them, so the files and the columns read identify the data.
            data = fingerprint(files(source.paths), target, table.features, weights, missing, intercept)
        # Neither the epoch cap nor --batch-rows: a rerun may change them and
        # continue. The compile mode is added by the driver, which resolves it.
        settings = {"data": data, "dtype": dtype, "optimizer": method, "learning_rate": learning_rate, "tol": tol,
                    "engine": engine, "rows": scaled.rows}
        checkpoints = Checkpoints(checkpoint, settings, writer=cluster.is_chief)

    started = time.perf_counter()
    run = dict(epochs=epochs, tol=tol, compile=compile, listeners=listeners, checkpoints=checkpoints)
    if engine == "stream":
        solution = _train_streamed(method, source, target, table, weights, missing, scaled, curvature, cluster,
                                   DTYPES[dtype], learning_rate, batch_rows=batch_rows, **run)
    elif method == "orthogonal":
        given = None if table.x is None else (table.x, table.y, table.weights)  # for the refinement
        solution = solve.train_orthogonal(scaled, ortho, DTYPES[dtype], learning_rate, **run, data=given)
    else:
        solution = solve.train_direct(method, scaled, curvature, DTYPES[dtype], learning_rate, **run)
    seconds = time.perf_counter() - started
    if cluster.size > 1:
        # Every worker trained on the same numbers in the same order, so all hold
        # the same coefficients; checked bit for bit, never assumed.
        rows = cluster.gather(np.append(solution.W, solution.b))
        if not np.all(rows == rows[0]):
            raise LinregError("the workers' coefficients differ; their TensorFlow or numpy versions may differ")
    result = Fit(table, scaled, curvature, kappa, solution, optimizer, dtype, tol, seconds,
                 resumed_at=None if checkpoints is None else checkpoints.restored_from, ortho=ortho)
    result.engine, result.cluster, result.pass_seconds = engine, cluster, pass_seconds
    return result


ENGINES = ("auto", "memory", "moments", "stream")
# "auto" keeps the rows in memory when the reader's copy (about this many times
# the CSV's bytes, measured, or 8 bytes a number for Parquet, times 4) takes at
# most this share of the memory available.
CSV_MEMORY_FACTOR, PARQUET_MEMORY_FACTOR, MEMORY_SHARE = 13, 4, 0.5


def _plan(data, engine, target, weights, categorical, optimizer):
    """(engine, source, cluster): which engine reads `data`, from where, on how many workers."""
    from linreg.engine import cluster as clusters

    if not _one_of(engine, ENGINES):
        raise LinregError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    # Settled from TF_CONFIG's size alone: a refused combination never joins a cluster.
    config = clusters.read_config()
    is_path = isinstance(data, (str, Path)) and str(data) != "-"
    if not is_path:
        if engine in ("moments", "stream") or config.size > 1:
            raise LinregError(
                f"engine {engine if engine != 'auto' else 'moments'} streams files: give a CSV or Parquet path (a file, "
                "a folder or a glob); data frames, arrays and standard input are fitted in memory"
            )
        return "memory", None, clusters.current(config)
    if target is None:
        raise LinregError("target is required with a CSV file: name the column to predict")
    if weights is not None and not isinstance(weights, str):
        raise LinregError("with a file, weights is the name of its weights column")
    from linreg.data import stream

    source = stream.open_source(data)
    if engine == "auto":
        if config.size > 1:
            engine = "moments"
        else:
            factor = CSV_MEMORY_FACTOR if source.format == "csv" else PARQUET_MEMORY_FACTOR * 8 * len(source.header)
            need = factor * (source.bytes if source.format == "csv" else stream.count_rows(source))
            engine = "memory" if need <= MEMORY_SHARE * _available_memory() else "moments"
        if engine == "moments" and len(source.header) - 1 > _max_moments_features():
            engine = "stream"
    if engine == "memory" and config.size > 1:
        raise LinregError("several workers (TF_CONFIG) share the data with --engine moments or stream, not memory")
    if engine != "memory":
        if categorical:
            raise LinregError(
                f"engine {engine} reads numeric columns only; one-hot code {categorical[0]!r} in the files, "
                "or use --engine memory"
            )
        if engine == "stream" and optimizer not in ("auto", "gd", "momentum", "nesterov"):
            raise LinregError(f"engine stream trains with gd, momentum or nesterov (default), not {optimizer}")
    return engine, source, clusters.current(config)


def _max_moments_features():
    from linreg.engine import streamed

    return streamed.MAX_MOMENTS_FEATURES


def _available_memory():
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 8 * 2**30


def _in_memory(data, source, target, features, missing, categorical, weights, intercept=True, max_levels=MAX_LEVELS):
    """The checked Table. Files are read through the streaming reader (pyarrow,
    in parallel) and concatenated; a single CSV that it cannot read as numbers
    -- text to code as categories, or an error to report -- is read again by
    data/table.py, row by row, which codes text columns and words every
    message. Frames, arrays and standard input go to data/table.py directly."""
    if source is None:
        return load_table(data, target, features, missing, categorical, weights, intercept, max_levels)
    single_csv = source.format == "csv" and len(source.paths) == 1
    if single_csv and categorical:
        return load_table(source.paths[0], target, features, missing, categorical, weights, intercept, max_levels)
    if categorical:
        raise LinregError(f"{source.describe()}: one-hot coding needs a single CSV file; code {categorical[0]!r} in the files")
    try:
        return _read_all(source, target, features, missing, weights, intercept)
    except LinregError:
        if not single_csv:
            raise
        return load_table(source.paths[0], target, features, missing, categorical, weights, intercept, max_levels)


def _read_all(source, target, features, missing, weights, intercept=True):
    from linreg.data import stream
    from linreg.data.table import Table, check_fittable, check_weights

    features = stream.check_columns(source, target, features, weights)
    parts = list(stream.batches(source, target, features, weights, missing))
    x = np.concatenate([p.x for p in parts]) if parts else np.zeros((0, len(features)))
    y = np.concatenate([p.y for p in parts]) if parts else np.zeros(0)
    table = Table(source.describe(), features, target, x, y, None, sum(p.dropped for p in parts), columns=features)
    if weights is not None:
        table.weights, table.weights_column = np.concatenate([p.w for p in parts]), weights
    check_weights(table)
    check_fittable(table, intercept)
    return table


def _streamed(source, target, features, weights, missing, intercept, cluster, batch_rows=None, engine="moments"):
    """(table, scaled) from one streamed pass: the statistics, checked, as
    pseudo-rows; for engine stream past MAX_MOMENTS_FEATURES features, only
    the means and spreads (data/moments.py, `problem`)."""
    from linreg.data import moments as statistics
    from linreg.data import stream
    from linreg.data.table import Table
    from linreg.engine.streamed import gather_moments

    features = stream.check_columns(source, target, features, weights)
    diagonal = engine == "stream" and len(features) > _max_moments_features()
    moments, dropped = gather_moments(source, target, features, weights, missing, cluster, batch_rows, diagonal)
    if moments.rows == 0 and dropped:
        raise LinregError(f"{source.describe()}: every row has a missing value in the columns used; nothing is left to fit")
    scaled = statistics.problem(moments, features, target, intercept, weights is not None, source.describe())
    table = Table(source.describe(), features, target, None, None, None, dropped, columns=features,
                  weights_column=weights)
    table.log_weights = moments.log_weights if weights is not None else None
    return table, scaled


def _train_streamed(method, source, target, table, weights, missing, scaled, curvature, cluster, dtype, learning_rate,
                    epochs, tol, compile, listeners, checkpoints, batch_rows=None):
    """Descent with an epoch per pass over the files (engine/streamed.py)."""
    from linreg.engine.streamed import StreamedEpochs, diverged

    model = LinearModel(scaled.x.shape[1], dtype=dtype, intercept=scaled.train_intercept)
    smallest = curvature.smallest if scaled.cross_products else None  # None: unknown
    rule = solve.make(method, model, curvature.largest, smallest, learning_rate)
    epochs_run = StreamedEpochs(model, rule, source, target, table.features, weights, missing, scaled, cluster, tol,
                                batch_rows)
    patience = solve.patience_for(curvature.condition_number) if scaled.cross_products else solve.UNKNOWN_PATIENCE
    result = driver.loop(model, rule, epochs_run.run, epochs_run.measure, diverged(rule), epochs, "stream",
                         listeners, checkpoints=checkpoints, patience=patience)
    return solve.Solution(model.W.numpy().astype(np.float64), float(model.b.numpy()), result, rule, method, 1,
                          lambda rows: rows)


def _original(scaled, W, b):
    W, b = scaled.coefficients(W, b)
    return np.concatenate([[b], W])


def _print_warning(message, kind="warning"):
    import sys

    print(f"{kind}: {message}", file=sys.stderr)


def _print_note(message):
    _print_warning(message, "note")


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

    def __init__(self, table, scaled, curvature, condition_number, solution, optimizer_name, dtype, tol, seconds,
                 resumed_at=None, ortho=None):
        self.table, self.scaled, self.curvature = table, scaled, curvature
        self.condition_number = condition_number  # κ of the standardized data (the Hessian's is its square)
        self.solution, self.result, self.optimizer = solution, solution.result, solution.optimizer
        self.optimizer_name, self.method, self.dtype, self.tol = optimizer_name, solution.method, dtype, tol
        self.training_seconds, self.resumed_at = seconds, resumed_at
        self.engine, self.cluster, self.pass_seconds = "memory", None, None
        self.features, self.target = list(table.features), table.target
        R, singular_values = (None, None) if ortho is None else (ortho.R, ortho.singular_values)
        # Without the cross-products (engine stream, many features) the fit's
        # own mean squared error, measured over the files where training
        # ended, gives R², the residual SD and the likelihood; nothing else.
        mean_square = None if scaled.cross_products else float(self.result.history.loss[-1])
        if scaled.cross_products:
            self.stats = ols.standardized_statistics(scaled, solution.W, solution.b, R=R)
        else:
            self.stats = ols.loss_statistics(scaled, solution.W, solution.b, mean_square)
        self.diagnostics = diagnostics(scaled, solution.W, solution.b, table.x, table.weights, singular_values,
                                       getattr(table, "log_weights", None), mean_square=mean_square)
        if table.x is not None:
            ls_W, ls_b = ols.least_squares(table.x, table.y, scaled.intercept, table.weights)
        elif scaled.cross_products:  # streamed: the closed form from the statistics' pseudo-rows
            ls_W, ls_b = scaled.coefficients(np.linalg.lstsq(scaled.x, scaled.y, rcond=None)[0], 0.0)
        else:  # no closed form without xᵀx
            ls_W, ls_b = np.full(len(self.features), math.nan), math.nan
        reference = np.concatenate([[ls_b], ls_W])
        self.least_squares = self._by_name(reference)
        self.relative_difference = np.abs(self.stats.coefficients - reference) / np.maximum(
            np.abs(reference), np.finfo(np.float64).tiny
        )
        norms = self.result.history.gradient_norm
        self.relative_gradient = float(norms[-1] / norms[0]) if norms[0] > 0 else 0.0
        # What the coefficients can be trusted to (analysis/precision.py); a fit
        # that cannot promise one correct digit has not converged to anything.
        self.bounds = precision.error_bounds(
            self.method, dtype, scaled, R, solution.W, solution.b, final_gradient=float(norms[-1]),
            correction=solution.correction, refined=solution.refined,
        ) if scaled.cross_products else None  # κ unknown
        self.estimated_digits = math.nan if self.bounds is None else self.bounds.digits
        if self.estimated_digits < precision.MIN_DIGITS:
            self.result = replace(self.result, converged=False)
        # The model as it is exported: the final float64 coefficients in the standardized space.
        self.model = LinearModel(len(self.features), W=solution.W, b=solution.b, dtype=tf.float64)

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
                f"past {_max_moments_features()} features; the coefficients, R² and residual SD are known"
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
        if not (_real(alpha) and 0 < alpha < 1):
            raise LinregError(f"alpha must be between 0 and 1, not {alpha!r}")
        from scipy import stats

        half = stats.t.ppf(1 - alpha / 2, self.stats.df_residual) * self.stats.std_errors
        low, high = self._by_name(self.stats.coefficients - half), self._by_name(self.stats.coefficients + half)
        return {name: (low[name], high[name]) for name in self.names}

    r_squared = property(lambda self: self.stats.r_squared)
    adj_r_squared = property(lambda self: self.stats.adj_r_squared)
    residual_sd = property(lambda self: self.stats.residual_sd)
    n = property(lambda self: self.stats.n)
    epochs = property(lambda self: self.result.epochs)
    converged = property(lambda self: self.result.converged)
    compile = property(lambda self: self.result.compile)

    @property
    def history(self):
        """Per epoch of the first training run (0 = the start): the loss and
        gradient norm of the problem trained, and the coefficients in original
        units [k, d+1]; the last row is the final fit, after any refinement."""
        h = self.result.history
        W = self.solution.history_W(h.W.astype(np.float64))
        coefficients = np.array([_original(self.scaled, W_k, b_k) for W_k, b_k in zip(W, h.b)])
        coefficients[-1] = self.stats.coefficients
        if not self.scaled.intercept:
            coefficients = coefficients[:, 1:]
        return {
            "loss": h.loss.astype(np.float64),
            "gradient_norm": h.gradient_norm.astype(np.float64),
            "coefficients": coefficients,
        }

    def predict(self, x, interval=None, alpha=0.05):
        """Predictions for x: an array [N, d], a data frame with the feature
        columns, or a CSV path with them. With interval="confidence" (for the
        mean at x) or "prediction" (for a new observation at x), also the
        1 - alpha interval: returns (prediction, low, high)."""
        x = _features(x, self.features, self.table.columns, self.table.categories)
        mean = self.stats.coefficients[0] + x @ self.stats.coefficients[1:]
        if interval is None:
            return mean
        self._valid("intervals")
        return _interval(mean, x, self.stats.covariance, self.stats.residual_sd, self.stats.df_residual,
                         interval, alpha)

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
        """Save as a TensorFlow SavedModel folder (see `linreg.load`); not for a fit that has not converged."""
        from linreg.io import export

        self._valid("export", statistics=False)
        statistics = self.stats if self.scaled.cross_products else None
        export.save(path, self.model, self.scaled, self.features, self.target, force=force, statistics=statistics,
                    columns=self.table.columns, categories=self.table.categories)

    def __repr__(self):
        state = "converged" if self.converged else "NOT converged"
        return f"<linreg.Fit {self.target!r} ~ {len(self.features)} features, n={self.n}, {state} after {self.epochs} epochs>"

    # --- pickling --------------------------------------------------------------

    def __getstate__(self):
        """What pickle saves: the whole fit (its TensorFlow variables pickle as
        their values) but for what served only the training run and cannot be
        pickled -- the function from the history's weights to the standardized
        ones (the history is saved mapped), cg's product with the data's
        Hessian (the rule takes no more steps) and the workers' connections
        (their number is kept)."""
        from linreg.engine.cluster import Single

        state = self.__dict__.copy()
        history = self.result.history
        mapped = replace(history, W=self.solution.history_W(history.W.astype(np.float64)))
        state["result"] = replace(self.result, history=mapped)
        if getattr(self.optimizer, "hvp", None) is not None:
            state["optimizer"] = copy.copy(self.optimizer)
            state["optimizer"].hvp = None
        state["solution"] = replace(self.solution, result=replace(self.solution.result, history=mapped),
                                    optimizer=state["optimizer"], history_W=_unchanged)  # fmt: skip
        if self.cluster is not None and type(self.cluster) is not Single:
            workers = self.cluster
            state["cluster"] = SimpleNamespace(rank=workers.rank, size=workers.size, is_chief=workers.is_chief)
        return state


def _unchanged(rows):
    return rows


def _features(x, features, columns=None, categories=None):
    """x as a float64 [N, d] array with the model's features. A file, folder or
    glob of files (read as `linreg fit` reads them) or a data frame is read by
    its `columns` (default: the features), categorical ones coded with the
    fit's levels; an array must hold the features already."""
    columns, categories = columns or features, categories or {}
    if isinstance(x, (str, Path)):
        if str(x) == "-":  # standard input: a CSV, read whole
            return read_design(x, columns, categories)
        from linreg.data import stream

        source = stream.open_source(x)
        if not categories:
            return stream.read_columns(source, columns)
        if source.format == "csv" and len(source.paths) == 1:
            return read_design(source.paths[0], columns, categories)
        raise LinregError(
            f"{source.describe()}: the model codes {next(iter(categories))!r} as categories, which are read from "
            "a single CSV file only; give one"
        )
    if hasattr(x, "columns") and hasattr(x, "to_numpy"):
        x = frame_design(x, columns, categories)
    x = real_array(x, "x")
    if not np.all(np.isfinite(x)):
        raise LinregError("x holds NaN or infinite values; predictions need finite numbers")
    x = x[:, None] if x.ndim == 1 and len(features) == 1 else x
    if x.ndim != 2 or x.shape[1] != len(features):
        raise LinregError(f"x must have shape [N, {len(features)}] (features {', '.join(features)}), got {list(x.shape)}")
    return x


INTERVALS = ("confidence", "prediction")


def _interval(mean, x, covariance, residual_sd, df, interval, alpha):
    """(mean, low, high): the interval for the mean at each row x (confidence),
    or for a new observation there (prediction, which adds the residual
    variance), from the coefficients' covariance and Student's t with df."""
    if interval not in INTERVALS:
        raise LinregError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    if not (_real(alpha) and 0 < alpha < 1):
        raise LinregError(f"alpha must be between 0 and 1, not {alpha!r}")
    from scipy import stats

    design = np.column_stack([np.ones(len(x)), x])
    variance = np.einsum("ij,jk,ik->i", design, np.asarray(covariance), design)
    if interval == "prediction":
        variance = variance + residual_sd**2
    half = stats.t.ppf(1 - alpha / 2, df) * np.sqrt(np.maximum(variance, 0.0))
    return mean, mean - half, mean + half


class Model:
    """An exported model, loaded: `predict(x)` like Fit's, through the SavedModel."""

    def __init__(self, path):
        from linreg.io import export

        self.path = Path(path)
        self._serve, self.metadata = export.load(path)
        self.features, self.target = list(self.metadata["features"]), self.metadata["target"]

    def predict(self, x, interval=None, alpha=0.05):
        """Predictions through the SavedModel; with interval= as Fit.predict,
        from the coefficients' covariance stored in the export."""
        x = _features(x, self.features, self.metadata.get("columns"), self.metadata.get("categories"))
        inputs = {key: tf.constant(x[:, j]) for j, key in enumerate(self.metadata["inputs"])}
        mean = self._serve(**inputs)["prediction"].numpy()
        if interval is None:
            return mean
        if "covariance" not in self.metadata:
            raise LinregError(f"the export {self.path} holds no covariance; export the fit again for intervals")
        meta = self.metadata
        return _interval(mean, x, meta["covariance"], meta["residual_sd"], meta["df_residual"], interval, alpha)

    def __repr__(self):
        return f"<linreg.Model {self.target!r} ~ {', '.join(self.features)} from {self.path}>"


def load(path):
    """Load a folder written by `Fit.export` or `linreg fit --export`."""
    return Model(path)
