"""`linreg.fit()` and `linreg.load()`: the one entry point the CLI and notebooks share.

    import linreg
    fit = linreg.fit("houses.csv", target="price", optimizer="momentum")
    fit.coefficients["area"], fit.p_values["area"], fit.conf_int()
    print(fit.summary())
    fit.export("houses-model")
    linreg.load("houses-model").predict(x)

A fit walks its stages once, in order, each a module that says what comes in
and what goes out:

    plan          plan.py                 engine, reader, workers, method; every refusal
    read, design  data/read.py            the rows, checked, as a Table (or one streamed
                                          pass gathering the statistics)
    scale         data/scaling.py         one standardization, undone for the report
    precondition  precondition.py         QR, or the curvature the optimizers step by
    train         train.py                the heart (core/) run by the engine's drivers
    infer         infer.py                statistics, diagnostics, expected digits
    result        results.py              Fit and Model

The seconds each stage took are in `Fit.timings`.
"""
import time

from linreg import penalized as penalizing, plan as planning
from linreg.errors import LinregError  # noqa: F401  (re-exported: the errors a fit raises)
from linreg.plan import DEFAULT_EPOCHS, MAX_LEVELS
from linreg.results import Fit, Model, NotConvergedError  # noqa: F401  (the public results)


def fit(
    data,
    target=None,
    *,
    features=None,
    formula=None,
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
    cov_type="nonrobust",
    cov_kwds=None,
    penalty="none", alpha=None, l1_ratio=None, standardize=True, alphas=None, cv=None, cv_seed=0, select="min",
):
    """Fit y = x·W + b by gradient descent on the standardized data; return a Fit.

    data:          a CSV path, a data frame (with `target`), or a tuple (x, y)
    features:      the columns to use (default: every column but the target; one name may be a string)
    formula:       instead of target, features and categorical: "y ~ x1 + C(g) + np.log(x2) + x1:x2"
                   (formulaic's; "- 1" leaves the intercept out), designed again on new rows by predict
    dtype:         "float64" (default) or "float32", the training precision
    optimizer:     "auto" (default: "orthogonal", plain descent on the
                   orthogonalized data, refined on extended-precision
                   residuals; on rows in memory whose statistics show a
                   condition number below 40, on their pseudo-rows), or one of
                   core/optimizers.py's rules on the standardized data:
                   "gd", "momentum", "nesterov", "cg" (plan.py holds the registry)
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
    cov_type:      the coefficients' covariance (statsmodels' names): "nonrobust" (default), "HC0"-"HC3",
                   "cluster" (cov_kwds={"groups": a column's name or one label per row}) or "HAC"
                   (cov_kwds={"maxlags": L}); standard errors, tests, intervals and F follow it (any engine)
    penalty, alpha, l1_ratio, standardize, alphas, cv, cv_seed, select: a PenalizedFit, see penalized.py

    Raises LinregError for bad input, DivergenceError if training blows up,
    Interrupted on SIGINT/SIGTERM (after saving the checkpoint).
    """
    clock = _Clock()
    planning.check_arguments(dtype, optimizer, learning_rate, epochs, tol, compile, progress, intercept, checkpoint,
                             logdir, max_levels, batch_rows, missing, penalty)
    features, categorical = planning.names(features, "features"), planning.names(categorical, "categorical")
    if formula is not None:  # its target and intercept, checked before any data is read
        from linreg.data import formula as formulas

        formula = formulas.parse(formula, target, features, categorical, intercept)
        target, intercept = formula.target, formula.intercept
    cov = planning.covariance(cov_type, cov_kwds)
    penalized = planning.penalty(penalty, alpha, l1_ratio, standardize, alphas, cv, cv_seed, select, cov[0], intercept)
    plan = planning.plan(data, engine, target, weights, categorical, optimizer, cov, penalized is not None)
    if formula is not None and plan.engine != "memory":  # designed batch by batch: data/formula_stream.py
        formulas.check_streamed(plan, penalized is not None)
    clock.lap("plan")

    from linreg.data import read

    reading = read.Reading(target, features, weights, missing, intercept, categorical, max_levels, batch_rows, formula)
    if penalized is not None:  # its own stages and result
        return penalizing.fit(penalized, plan, data, reading, formula, warn or _print("note"), clock)
    if plan.engine == "memory":
        if formula is not None:
            table = formulas.table(data, plan.source, formula, missing, weights, max_levels)
        else:
            table = read.read_table(data, plan.source, target, features, missing, categorical, weights, intercept,
                                    max_levels, column_major=plan.statistics)
        cov = read.cluster_groups(cov, data, plan.source, table)  # a column's labels, read with the rows
        clock.lap("read")
        from linreg.data.scaling import scale_table

        scaled = scale_table(table, intercept, planning.STATISTICS_LINE if plan.statistics else None)
        clock.lap("scale")
    else:  # one streamed pass gathers the statistics, already standardized
        table, scaled = read.read_moments(plan, reading)
        cov = read.cluster_groups(cov, data, plan.source, table)  # named: read in the pass after training
        clock.lap("read")
    for note in table.notes:
        (warn or _print("note"))(note)
    from linreg.precondition import precondition

    pre = precondition(scaled, lambda: read.largest_curvature(plan, reading, table, scaled), table,
                       plan.method == "orthogonal" and scaled.represents is None)
    clock.lap("precondition")

    from linreg import train
    from linreg.infer import infer

    settings = train.Settings(dtype, optimizer, learning_rate, epochs, tol, compile, checkpoint, logdir, progress,
                              batch_rows)
    tol = train.tolerance(settings, plan, pre)
    if message := train.warning(settings, plan, pre):
        (warn or _print("warning"))(message)
    solution, checkpoints = train.train(plan, table, scaled, pre, settings, tol, reading)
    clock.lap("train")

    inference = infer(table, scaled, pre, solution, dtype, cov)
    if note := inference.covariance.note:
        (warn or _print("note"))(note)
    clock.lap("infer")
    resumed_at = None if checkpoints is None else checkpoints.restored_from
    return Fit(plan, table, scaled, pre, solution, inference, settings, tol, clock.laps, resumed_at)


def load(path):
    """Load a folder written by `Fit.export` or `linreg fit --export`."""
    return Model(path)


class _Clock:
    """The seconds of each stage, in the order they ran."""

    def __init__(self):
        self.laps, self.last = {}, time.perf_counter()

    def lap(self, stage):
        now = time.perf_counter()
        self.laps[stage], self.last = now - self.last, now


def _print(kind):
    def show(message):
        import sys

        print(f"{kind}: {message}", file=sys.stderr)

    return show
