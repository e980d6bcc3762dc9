"""The train stage: the heart's model trained by the heart's loop.

In: the plan (engine, method, workers), the standardized problem, its
preconditioning and the run's settings (dtype, learning rate, epochs, tol,
compile mode, checkpoint folder, TensorBoard folder, progress line).
Out: engine/solve.py's Solution -- the standardized-space weights, the
training result (epochs, verdict, history) and the rule that trained.

The stopping tolerance is settled here (`default_tol`: from the dtype and
the conditioning), then the run's listeners (progress line,
TensorBoard) and checkpoints are set up and the engine's driver runs:
engine/solve.py for the rows or the statistics in memory,
engine/streamed.py for engine stream (every epoch a pass over the files).
"""
import math
from dataclasses import dataclass

import numpy as np

from linreg.analysis.precision import EPSILON, MAX_DIGITS
from linreg.errors import LinregError

# A float32 fit expected to give fewer digits than this gets a warning.
FEW_DIGITS = 5

# Convergence of the direct optimizers: stop when the gradient's norm has
# fallen to `tol` times its first value. Near the minimum the coefficients'
# relative error is at most about κ·(relative gradient norm), so each factor of
# ten in tol is one more digit -- until rounding noise in the gradient takes
# over. Measured floors on generated data: 1e-9 to 1.4e-7 in float32, below
# 1e-16 in float64.
#   float64: 1e-15, a factor of ten above the floor.
#   float32: aim for a relative error of 1e-4, tol = 1e-4/κ, kept between
#            1e-9 and 1e-6 so that it stays above the floor.
FLOAT64_TOL = 1e-15
FLOAT32_TARGET_ERROR, FLOAT32_TOL_RANGE = 1e-4, (1e-9, 1e-6)


def default_tol(dtype, condition_number):
    """condition_number None: unknown (too many features), and float32 stops
    at the loosest tol of its range rather than hope for more."""
    if dtype == "float64":
        return FLOAT64_TOL
    low, high = FLOAT32_TOL_RANGE
    if condition_number is None:
        return high
    return min(max(FLOAT32_TARGET_ERROR / condition_number, low), high)


def float32_warning(method, condition_number):
    """The warning to give before a float32 fit, or None. κ may be infinite.

    The orthogonal method's refinement brings float32 to float64's digits (its
    rounds shrink the fitted values' error by about ε(float32) each, whatever
    κ), so only the direct optimizers are warned: rounding the data to
    float32 alone moves their answer by about κ·ε(float32) of the weights'
    norm, before the residual and the stopping add theirs (error_bounds)."""
    if method == "orthogonal":
        return None
    error = condition_number * EPSILON["float32"]
    expected = 0.0 if not error < 1 else min(-math.log10(error), MAX_DIGITS)
    if expected >= FEW_DIGITS:
        return None
    return (
        f"the standardized data's condition number is {condition_number:.3g}, so float32 with optimizer "
        f"{method} can give about {math.floor(expected)} correct digits; use float64 (--dtype float64) for more"
    )


@dataclass
class Settings:
    dtype: str
    optimizer: str  # as the user named it ("auto" too)
    learning_rate: object  # "auto" or a number
    epochs: int
    tol: object  # None: from the dtype and the conditioning
    compile: str
    checkpoint: object
    logdir: object
    progress: object
    batch_rows: object


def tolerance(settings, plan, pre):
    """The run's tol: the user's, or `default_tol`."""
    if settings.tol is not None:
        return float(settings.tol)
    kappa_h = pre.curvature.condition_number if pre.ortho is not None else None  # None: unknown
    return default_tol(settings.dtype, 1.0 if plan.method == "orthogonal" else kappa_h)


def warning(settings, plan, pre):
    """The float32 warning for this conditioning, or None."""
    if settings.dtype == "float32" and pre.ortho is not None:
        return float32_warning(plan.method, pre.condition_number)
    return None


def train(plan, table, scaled, pre, settings, tol, reading):
    """The Solution, and the Checkpoints (None without a folder). reading:
    the arguments that read the files again (engine stream, the
    fingerprint of a streamed checkpoint)."""
    import tensorflow as tf

    dtype = tf.as_dtype(settings.dtype)
    checkpoints = _checkpoints(plan, table, scaled, settings, tol, reading)
    run = dict(epochs=settings.epochs, tol=tol, compile=settings.compile,
               listeners=_listeners(table, scaled, pre, plan, settings), checkpoints=checkpoints)
    from linreg.engine import solve

    if plan.engine == "stream":
        from linreg.engine.streamed import train_streamed

        files = (plan.source, reading.target, table.features, reading.weights, reading.missing, plan.cluster,
                 settings.batch_rows)
        solution = train_streamed(plan.method, scaled, pre.curvature, files, dtype, settings.learning_rate, **run)
    elif plan.method == "orthogonal":
        # The refinement's residuals: of the rows, or of the statistics' pseudo-rows.
        given = None if table.x is None or scaled.represents is not None else (table.x, table.y, table.weights)
        solution = solve.train_orthogonal(scaled, pre.ortho, dtype, settings.learning_rate, **run, data=given)
    else:
        solution = solve.train_direct(plan.method, scaled, pre.curvature, dtype, settings.learning_rate, **run)
    if plan.cluster.size > 1:
        # Every worker trained on the same numbers in the same order, so all hold
        # the same coefficients; checked bit for bit, never assumed.
        rows = plan.cluster.gather(np.append(solution.W, solution.b))
        if not np.all(rows == rows[0]):
            raise LinregError("the workers' coefficients differ; their TensorFlow or numpy versions may differ")
    return solution, checkpoints


def _listeners(table, scaled, pre, plan, settings):
    listeners = []
    from linreg.io import progress

    if progress.wanted(settings.progress):
        listeners.append(progress.Progress(settings.epochs))
    if settings.logdir is not None:
        from linreg.io.tensorboard import TensorBoard

        from linreg.engine.solve import weights_of

        def original_units(W, b):
            if plan.method == "orthogonal":  # W is φ, which R⁻¹ maps to the standardized space
                W = [weights_of(pre.ortho, W_k) for W_k in W]
            return np.array([original(scaled, W_k, b_k) for W_k, b_k in zip(W, b)])

        listeners.append(TensorBoard(settings.logdir, ["intercept", *table.features], original_units))
    return listeners


def _checkpoints(plan, table, scaled, settings, tol, reading):
    if settings.checkpoint is None:
        return None
    from linreg.data.scaling import row_blocks
    from linreg.engine.checkpoint import Checkpoints, Rows, files, fingerprint

    if plan.engine == "memory":  # the standardized rows' bytes (block by block, when they went to the factor)
        rows = Rows(np.dtype(np.float64), (len(scaled.y), len(scaled.x_mean)), row_blocks(scaled))
        data = fingerprint(rows, scaled.y, np.array([scaled.y_mean, scaled.y_scale, scaled.rows]))
    else:
        # The streamed statistics' last bits depend on the batches and workers
        # that summed them, so the files and the columns read identify the data.
        data = fingerprint(files(plan.source.paths), reading.target, table.features, reading.weights,
                           reading.missing, scaled.intercept)
    # Neither the epoch cap nor --batch-rows: a rerun may change them and
    # continue. The compile mode is added by the driver, which resolves it.
    kept = {"data": data, "dtype": settings.dtype, "optimizer": plan.method, "learning_rate": settings.learning_rate,
            "tol": tol, "engine": plan.engine, "rows": scaled.rows}
    return Checkpoints(settings.checkpoint, kept, writer=plan.cluster.is_chief)


def original(scaled, W, b):
    """(b, W...) in the data's original units."""
    W, b = scaled.coefficients(W, b)
    return np.concatenate([[b], W])
