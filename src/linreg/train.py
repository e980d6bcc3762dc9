"""The train stage: the heart's model trained by the heart's loop.

In: the plan (engine, method, workers), the standardized problem, its
preconditioning and the run's settings (dtype, learning rate, epochs, tol,
compile mode, checkpoint folder, TensorBoard folder, progress line).
Out: engine/solve.py's Solution -- the standardized-space weights, the
training result (epochs, verdict, history) and the rule that trained.

The stopping tolerance is settled here (analysis/precision.py: from the
dtype and the conditioning), then the run's listeners (progress line,
TensorBoard) and checkpoints are set up and the engine's driver runs:
engine/solve.py for the rows or the statistics in memory,
engine/streamed.py for engine stream (every epoch a pass over the files).
"""
from dataclasses import dataclass

import numpy as np

from linreg.analysis.precision import default_tol, float32_warning
from linreg.errors import LinregError

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
    """The run's tol: the user's, or analysis/precision.py's default."""
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
        given = None if table.x is None else (table.x, table.y, table.weights)  # for the refinement
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

        to_standardized = pre.to_standardized(plan.method)

        def original_units(W, b):
            return np.array([original(scaled, to_standardized(W_k), b_k) for W_k, b_k in zip(W, b)])

        listeners.append(TensorBoard(settings.logdir, ["intercept", *table.features], original_units))
    return listeners


def _checkpoints(plan, table, scaled, settings, tol, reading):
    if settings.checkpoint is None:
        return None
    from linreg.engine.checkpoint import Checkpoints, files, fingerprint

    if plan.engine == "memory":
        data = fingerprint(scaled.x, scaled.y, np.array([scaled.y_mean, scaled.y_scale, scaled.rows]))
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
