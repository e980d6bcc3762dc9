"""Methods: which optimizer trains on which coordinates, and how results come back.

    direct      an optimizer from core/optimizers.py trains W and b on the
                standardized data;
    orthogonal  plain descent trains φ and b on the orthogonalized data
                (data/scaling.py), where the loss's bowl is round (κ = 1),
                then rounds of refinement on float64 residuals.
"auto" picks orthogonal: its accuracy is that of QR-based least squares at
any conditioning, in a handful of epochs (docs/accuracy.md has the
measurements behind the choice).
"""
import math
from dataclasses import dataclass, replace

import numpy as np

from linreg.core import optimizers
from linreg.core.model import LinearModel
from linreg.engine import driver

METHODS = ("auto", "orthogonal", "gd", "momentum", "nesterov", "cg")

# Refinement: at most this many extra rounds, stopping once a round changes W
# by less than REFINE_RTOL relative (a few float64 roundings), or by more than
# half the change before it (what is left is rounding that rounds cannot remove).
MAX_REFINEMENTS = 6
REFINE_RTOL = 4 * float(np.finfo(np.float64).eps)
# Patience of the stall rule (core/training.py): for momentum methods the
# oscillations last about √κ epochs, so patience grows with √κ. On the round
# bowl of the orthogonalized data one step lands and the next ones only move
# rounding noise: a few epochs without progress say the floor is reached.
MIN_PATIENCE, MAX_PATIENCE, ORTHOGONAL_PATIENCE = 100, 20_000, 5
# With κ unknown (engine stream past 4096 features, every epoch a pass over
# the files) restarted Nesterov makes a new low every few epochs while it
# is far from the bottom; this many epochs without one mean the rounding
# floor. (A float32 fit on 5000 x 6 rows, κ(H) = 634, with tol 1e-9 and
# the 20,000 epochs of patience an infinite κ gets, ran 20,910 epochs;
# with float32's loosest tol, 1e-6, it stopped after 134, its intercept
# as far from float64's as before: 1.2e-3 against 1.0e-3.)
UNKNOWN_PATIENCE = 200


def make(name, model, largest=None, smallest=None, learning_rate="auto", **extra):
    """The optimizer `name` for `model`: tuned from the curvature, with the
    learning rate replaced by the user's when one is given. smallest=None:
    λ_min is unknown, and nesterov restarts instead of being tuned by κ."""
    rule = optimizers.REGISTRY[name]
    if smallest is None:
        rule, smallest = (optimizers.RestartedNesterov if name == "nesterov" else rule), 0.0
        if rule not in (optimizers.GradientDescent, optimizers.RestartedNesterov):
            raise ValueError(f"{name} needs the smallest eigenvalue of the Hessian")
    settings = rule.tuned(largest, max(smallest, largest * 1e-16)) if largest else {}
    if learning_rate != "auto":
        settings["learning_rate"] = learning_rate
    return rule(model, **settings, **extra)


# Past this bound on the weights' relative error, a stall is not convergence.
STALL_FAR = 0.1


def resolve(method):
    """"auto" means orthogonal; anything else is the optimizer of that name."""
    return "orthogonal" if method == "auto" else method


def patience_for(condition_number):
    root = math.sqrt(condition_number) if math.isfinite(condition_number) else math.inf
    return int(min(max(10 * root, MIN_PATIENCE), MAX_PATIENCE))


@dataclass
class Solution:
    W: np.ndarray  # standardized-space weights, float64
    b: float
    result: driver.TrainResult  # epochs: over every round
    optimizer: object  # the rule that trained (its learning rate, its bound)
    method: str
    rounds: int  # training runs: 1, plus refinements
    history_W: object  # maps the history's W rows to standardized-space W


def train_direct(name, scaled, curvature, dtype, learning_rate, epochs, tol, compile, listeners, checkpoints):
    model = LinearModel(scaled.x.shape[1], dtype=dtype, intercept=scaled.train_intercept)
    extra = {}
    if name == "cg":
        import tensorflow as tf

        from linreg.analysis.curvature import hessian_vector_product

        x, y = tf.constant(scaled.x, dtype), tf.constant(scaled.y, dtype)
        extra["hessian_vector_product"] = lambda *v: hessian_vector_product(model, x, y, *v)
        # It needs about d + 1 steps (a few times that after rounding), too few to repay compiling.
        compile = driver.resolve_compile(compile, len(scaled.y), scaled.x.shape[1], min(epochs, 4 * (scaled.x.shape[1] + 1)))
    rule = make(name, model, curvature.largest, curvature.smallest, learning_rate, **extra)
    # Conjugate gradients reach the bottom in about d + 1 steps, a few times
    # that after rounding; past that, no new low means the floor is reached.
    patience = MIN_PATIENCE if name == "cg" else patience_for(curvature.condition_number)
    result = driver.train(model, rule, scaled.x, scaled.y, epochs, tol=tol, compile=compile, listeners=listeners,
                          checkpoints=checkpoints, patience=patience)
    # A stall is convergence only near the minimum. The weights are within
    # κ(H)·(relative gradient) of it (relative), so when that bound is not
    # small the floor was reached far from the answer: plain descent on
    # κ(H) = 1e18 makes no measurable progress per epoch long before it arrives.
    norms = result.history.gradient_norm
    if result.stalled and curvature.condition_number * float(norms[-1] / norms[0]) > STALL_FAR:
        result = replace(result, converged=False)
    W = model.W.numpy().astype(np.float64)
    return Solution(W, float(model.b.numpy()), result, rule, name, 1, lambda rows: rows)


def train_orthogonal(scaled, ortho, dtype, learning_rate, epochs, tol, compile, listeners, checkpoints):
    d = scaled.x.shape[1]
    model = LinearModel(d, dtype=dtype, intercept=scaled.train_intercept)
    # Every direction of the round bowl has curvature 2: rate 1/2 lands in one step.
    rule = optimizers.GradientDescent(model, 0.5 if learning_rate == "auto" else learning_rate)
    # A few epochs suffice, so compiling would not pay (driver.resolve_compile).
    compile = driver.resolve_compile(compile, len(scaled.y), d, epochs=10)
    first = driver.train(model, rule, ortho.q, scaled.y, epochs, tol=tol, compile=compile, listeners=listeners,
                         checkpoints=checkpoints, patience=ORTHOGONAL_PATIENCE)
    W, b = ortho.weights(model.W.numpy()), float(model.b.numpy())
    results, previous = [first], math.inf
    # Refinement: the weights carry the rounding of the working dtype and of
    # the triangular solve. The residual of the original standardized problem,
    # computed in float64, is the part of y they do not yet explain; training
    # the same model on it (from zero) gives the correction. Each round
    # shrinks the error by about κ(q)·ε = ε of the working dtype: one round in
    # float64, two or three from float32 to float64's accuracy.
    for _ in range(MAX_REFINEMENTS if first.converged else 0):
        residual = scaled.y - (scaled.x @ W + b)
        model.W.assign(np.zeros(d, model.W.dtype.as_numpy_dtype))
        model.b.assign(np.zeros((), model.b.dtype.as_numpy_dtype))
        more = driver.train(model, rule, ortho.q, residual, epochs, tol=tol, compile=compile, patience=ORTHOGONAL_PATIENCE)
        results.append(more)
        change = ortho.weights(model.W.numpy())
        W, b = W + change, b + float(model.b.numpy())
        size = np.linalg.norm(change)
        if not more.converged or size <= REFINE_RTOL * np.linalg.norm(W) or size > 0.5 * previous:
            break
        previous = size
    result = replace(
        first,
        epochs=sum(r.epochs for r in results),
        converged=all(r.converged for r in results),
        stalled=any(r.stalled for r in results),
    )
    return Solution(W, b, result, rule, "orthogonal", len(results), lambda rows: ortho.weights(np.asarray(rows).T).T)
