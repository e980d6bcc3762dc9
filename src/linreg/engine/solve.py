"""Methods: which optimizer trains on which coordinates, and how results come back.

    direct      an optimizer from core/optimizers.py trains W and b on the
                standardized data;
    orthogonal  plain descent trains φ and b on the orthogonalized data
                (data/scaling.py), where the loss's bowl is round (κ = 1),
                then rounds of refinement on extended-precision residuals.
"auto" picks orthogonal: at any conditioning it is at least as accurate as
QR-based least squares, in a handful of epochs (docs/accuracy.md has the
measurements behind the choice).
"""
import math
import os
from dataclasses import dataclass, field, replace

import numpy as np

from linreg.analysis.precision import EXTENDED
from linreg.core import optimizers
from linreg.core.model import LinearModel
from linreg.core.step import loss_and_gradients, update
from linreg.engine import driver
from linreg.rowwise import TENSOR_ALIGNMENT

# Every direction of the orthogonalized bowl has curvature 2: a step of 1/2 lands.
LANDING_RATE = 0.5
# Refinement rounds go on while each shrinks the correction to at most half
# the one before (they shrink it by about ε of the training dtype); this many
# is a cap that a working refinement never reaches. A round whose correction
# is below this share of the answer (an eighth of float64's ε, in the fitted
# values and in the weights) could not change the float64 answer that is
# returned, so it ends the rounds as one that stopped shrinking does.
MAX_REFINEMENTS = 30
BELOW_FLOAT64 = float(np.finfo(np.float64).eps) / 8
# Arrays this large are shared with their tensor rather than copied (_tensor).
SHARED_BYTES = 2**20
# Rows of extended-precision data made at a time: about this many numbers
# (4 MiB of long doubles: a block is made, multiplied and multiplied again
# while it is still in the cache; blocks of 2**20 numbers took 1.1 times as long).
BLOCK_NUMBERS = 2**18
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


def patience_for(condition_number):
    root = math.sqrt(condition_number) if math.isfinite(condition_number) else math.inf
    return int(min(max(10 * root, MIN_PATIENCE), MAX_PATIENCE))


@dataclass
class Solution:
    W: np.ndarray  # standardized-space weights, float64
    b: float
    result: driver.TrainResult  # epochs and history: over every round, W in the standardized space
    optimizer: object  # the rule that trained (its learning rate, its bound)
    method: str
    rounds: int  # training runs: 1, plus refinements
    first_converged: bool = False  # (orthogonal) the first run converged, so refinement rounds could follow
    refined: bool = False  # the refinement ran until its rounds stopped shrinking
    correction: tuple = (0.0, 0.0)  # (W, b): the change the last refinement round made
    largest: float = 2.0  # the steepest curvature the rule stepped on (2: the orthogonalized bowl)
    # What a report says of the run, settled here as plain values: the rule
    # that ran (for nesterov without λ_min the restarted one, `make`), its
    # learning rate and the rate above which it diverges.
    name: str = field(init=False)
    learning_rate: float = field(init=False)
    divergence_rate: float = field(init=False)

    def __post_init__(self):
        if self.method == "orthogonal":
            self.name = "orthogonal + refinement" if self.rounds > 1 else "orthogonal"
        else:
            self.name = RULE_NAMES.get(type(self.optimizer), self.method)
        self.learning_rate = float(self.optimizer.learning_rate)
        self.divergence_rate = float(self.optimizer.stable_rate(self.largest))


RULE_NAMES = {optimizers.RestartedNesterov: "nesterov with restarts"}


def stalled_far(result, condition_number):
    """`result`, not converged if it stalled far from the minimum.

    A stall is convergence only near the minimum. The weights are within
    κ(H)·(relative gradient) of it (relative), so when that bound is not
    small the floor was reached far from the answer: plain descent on
    κ(H) = 1e18 makes no measurable progress per epoch long before it
    arrives. (κ unknown: the stall is taken as it is.)"""
    norms = result.history.gradient_norm
    if result.stalled and condition_number * float(norms[-1] / norms[0]) > STALL_FAR:
        return replace(result, converged=False)
    return result


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
    result = stalled_far(result, curvature.condition_number)
    return Solution(model.W.numpy().astype(np.float64), float(model.b.numpy()), result, rule, name, 1,
                    largest=curvature.largest)


def train_orthogonal(scaled, ortho, dtype, learning_rate, epochs, tol, compile, listeners, checkpoints, data=None):
    """data: the (x, y, weights) that `scaled` standardizes, for the refinement's
    extended-precision residuals (None: streamed statistics, used as they are).

    `epochs` caps the whole run: the first run's epochs and the refinement's
    rounds, a step each. A refinement the cap stops is not converged."""
    d = len(scaled.x_mean)
    model = LinearModel(d, dtype=dtype, intercept=scaled.train_intercept)
    rule = optimizers.GradientDescent(model, LANDING_RATE if learning_rate == "auto" else learning_rate)
    # A few epochs suffice, so compiling would not pay (driver.resolve_compile).
    compile = driver.resolve_compile(compile, len(scaled.y), d, epochs=10)
    q = _tensor(ortho.q, dtype)  # one copy of the N x d factor for the first run and every round
    first = driver.train(model, rule, q, scaled.y, epochs, tol=tol, compile=compile, listeners=listeners,
                         checkpoints=checkpoints, patience=ORTHOGONAL_PATIENCE)
    # The history's W from the orthogonalized coordinates φ to the standardized ones.
    history = replace(first.history, W=weights_of(ortho, first.history.W.astype(np.float64).T).T)
    W, b = weights_of(ortho, model.W.numpy()), float(model.b.numpy())
    result, rounds, correction = replace(first, history=history, converged=False), 0, (0.0, 0.0)
    if first.converged:
        W, b, rows, correction, refined = refine(model, scaled, ortho, Extended(scaled, *(data or ())), W, b,
                                                 epochs - first.epochs, q)
        rounds = len(rows) - 1  # the last row is where the refinement ended, not a step
        steps = driver.History.join([history[:-1], rows])
        result = replace(first, history=steps, epochs=first.epochs + rounds, converged=refined)
    return Solution(W, b, result, rule, "orthogonal", 1 + rounds, first_converged=first.converged,
                    refined=result.converged, correction=correction)


def weights_of(ortho, phi):
    """The standardized-space W for the orthogonal-space φ (precondition.
    Orthogonalized): W = √N·R⁻¹·φ, one triangular solve. φ [d] or [d, k]."""
    from scipy.linalg import solve_triangular

    return math.sqrt(len(ortho.q)) * solve_triangular(ortho.R, np.asarray(phi, np.float64))


def refine(model, scaled, ortho, data, W, b, max_rounds=MAX_REFINEMENTS, q=None):
    """At most `max_rounds` rounds of refinement on `data` (Extended); returns
    W, b, the History of the rounds (a row per round's step, and one for
    where they ended), the last one's correction (W, b) and whether they
    stopped shrinking (not hit a cap).

    A row holds W and b before the round's step, the norm of the gradient
    that step saw (of the loss on f, in the training dtype) and, as loss,
    the mean square of y − (x·W + b) = f + r̂ in extended precision: the
    least-squares problem's own loss, where the first run's rows have it in
    the training dtype.

    The weights carry the rounding of the training dtype, of the QR and of the
    triangular solve. Training the same model on the residual y − (x·W + b)
    would give the correction, but with noisy data the residual is mostly the
    noise no weights can explain, and a float32 step rounds it at ε(float32)
    of its size: the correction can never be finer than that. So each round
    also keeps r̂, the running estimate of that unexplained part (Björck's
    refinement for least squares), and trains on what neither explains:
        f = y − r̂ − (x·W + b),    small once W and r̂ are nearly right;
        xᵀr̂                      what the columns could still explain of r̂,
                                  zero at the least-squares residual;
    both made from the standardized data in extended precision. One step of
    the model on f lands at qᵀf/N (rate 1/2, curvature 2); R⁻ᵀ·xᵀr̂/√N is the
    same for r̂, computed through the columns themselves. Their sum corrects
    the weights, and whatever of f the step did not explain joins r̂. Each
    round shrinks the fitted values' error by about ε of the training dtype;
    the weights' error is at most κ times theirs (R, in float64, maps one to
    the other), a fixed factor, so float32 rounds end where float64 ones do,
    even where κ·ε(float32) > 1 (docs/accuracy.md). W and r̂ are kept in
    extended precision, so the rounds stop only at its rounding.
    """
    from scipy.linalg import solve_triangular

    n, dtype = len(scaled.y), model.W.dtype
    q = _tensor(ortho.q, dtype) if q is None else q
    landing = optimizers.GradientDescent(model, LANDING_RATE)
    W, b, r_hat = W.astype(EXTENDED), EXTENDED(b), np.zeros(n, EXTENDED)
    previous, last, rows = (math.inf, math.inf), (np.zeros(len(W)), 0.0), []
    cap = min(max_rounds, MAX_REFINEMENTS)
    for rounds in range(1, cap + 2):
        f, gradient = data.unexplained(W, b, r_hat)
        model.W.assign(np.zeros(model.W.shape, dtype.as_numpy_dtype))
        model.b.assign(np.zeros((), dtype.as_numpy_dtype))
        _, gradients = loss_and_gradients(model, q, _tensor(f, dtype))
        norm = math.sqrt(sum(float(np.sum(np.square(g))) for g in gradients))
        rows.append((float(np.mean(np.square(f + r_hat))), norm, W.astype(np.float64), float(b)))
        if rounds > cap:
            break  # stopped by a cap: the state it left, measured, no step
        update(model, landing, gradients)
        phi = model.W.numpy().astype(np.float64) + solve_triangular(ortho.R, gradient, trans="T") / math.sqrt(n)
        beta = float(model.b.numpy()) + (float(np.mean(r_hat)) if scaled.train_intercept else 0.0)
        fitted, last = ortho.q @ phi + beta, (weights_of(ortho, phi), beta)
        change = f - fitted
        # The round's size twice: in the fitted values (with r̂'s change) and in
        # the weights, where directions the data hardly see converge slower.
        sizes = (math.sqrt(float(np.mean(change * change)) + float(np.mean(fitted * fitted))),
                 float(np.linalg.norm(last[0]) / max(np.linalg.norm(W), np.finfo(np.float64).tiny)))
        if max(sizes) < BELOW_FLOAT64:
            # Too small to show in float64 as a whole -- but a coefficient far
            # smaller than the others, or an intercept that is a difference of
            # large terms, can still see it: taken, and the rounds end here.
            W, b = W + last[0], b + EXTENDED(beta)
            end = (*rows[-1][:2], W.astype(np.float64), float(b))
            return W.astype(np.float64), float(b), _rounds_history([*rows, end]), last, True
        if not any(size < before / 2 for size, before in zip(sizes, previous)):
            # No longer shrinking: the round moved only rounding. It is left
            # out, and what it would have moved says how far that goes. Where
            # the rounds ended is where this one started.
            return W.astype(np.float64), float(b), _rounds_history(rows + rows[-1:]), last, True
        W, b, r_hat, previous = W + last[0], b + EXTENDED(beta), r_hat + change, sizes
    return W.astype(np.float64), float(b), _rounds_history(rows), last, False


def _rounds_history(rows):
    """The History of the refinement's rows (loss, gradient norm, W, b): round
    k's step in row k - 1, and last where the rounds ended, labelled with the
    last round (0 if none ran)."""
    loss, norm, W, b = (np.array(column) for column in zip(*rows))
    return driver.History(loss, norm, W, b, np.minimum(np.arange(1, len(rows) + 1), len(rows) - 1))


def _tensor(values, dtype):
    """values (any float type, extended precision too) as a tensor of dtype.

    tf.constant copies its array. The factor q (N x d, the largest array of
    a fit) is made for training and never changed, so where its memory is
    aligned as TensorFlow's kernels require (precondition.orthogonalize
    makes it so) the tensor shares it instead, through DLPack."""
    import tensorflow as tf

    values = np.asarray(values, dtype.as_numpy_dtype)
    if values.nbytes >= SHARED_BYTES and values.flags.c_contiguous and values.ctypes.data % TENSOR_ALIGNMENT == 0:
        return tf.experimental.dlpack.from_dlpack(values.__dlpack__())
    return tf.constant(values)


class Extended:
    """The standardized data in extended precision, a block of rows at a time.

    Made from the data as given with the means and spreads of `scaled`, the
    ones that carry the coefficients back to the original units, so no
    rounding of the standardized numbers enters the residuals. Without the
    data (streamed statistics) its float64 pseudo-rows are what there is.
    """

    def __init__(self, scaled, x=None, y=None, weights=None):
        self.scaled, self.x, self.y, self.weights = scaled, x, y, weights
        # Dividing the columns by their spreads is left to the weights (W/s):
        # one pass over the rows in extended precision fewer, the slowest kind.
        self.spread = np.ones(len(scaled.x_mean), EXTENDED) if x is None else np.asarray(scaled.x_scale, EXTENDED)

    def slices(self):
        """The blocks of rows: about BLOCK_NUMBERS numbers each."""
        n, d = len(self.scaled.y), len(self.scaled.x_mean)
        step = max(1, BLOCK_NUMBERS // d)
        return [slice(start, start + step) for start in range(0, n, step)]

    def block(self, rows):
        """The `rows` (a slice): the standardized columns times their spreads, and y standardized."""
        s = self.scaled
        if self.x is None:
            if s.extended_rows is not None:  # statistics gathered beyond float64
                return s.extended_rows[rows, :-1], s.extended_rows[rows, -1]
            return s.x[rows].astype(EXTENDED), s.y[rows].astype(EXTENDED)
        x = self.x[rows].astype(EXTENDED) - s.x_mean
        y = (self.y[rows].astype(EXTENDED) - s.y_mean) / s.y_scale
        if self.weights is not None:
            root = np.sqrt(self.weights[rows].astype(EXTENDED) / s.weight_mean)
            x, y = x * root[:, None], y * root
        return x, y

    def unexplained(self, W, b, r_hat):
        """f = y − r̂ − (x·W + b), and xᵀr̂ (as float64)."""
        f = np.empty(len(r_hat), EXTENDED)
        W = W / self.spread

        def part(rows):  # (einsum: numpy's matmul has no fast loop for long doubles)
            x, y = self.block(rows)
            f[rows] = y - r_hat[rows] - (np.einsum("ij,j->i", x, W) + b)
            return np.einsum("i,ij->j", r_hat[rows], x)

        # The blocks' parts of xᵀr̂ are added in the blocks' order, so the sum
        # has the same bits however many threads made them.
        gradient = np.zeros(len(W), EXTENDED)
        for piece in _on_every_core(part, self.slices()):
            gradient += piece
        return f, (gradient / self.spread).astype(np.float64)


def _on_every_core(function, items):
    """function(item) for each item, in order, on as many threads as this
    process has cores. Long doubles have no vector instructions, so these
    loops are bound by the arithmetic, and numpy lets go of the interpreter
    lock while it runs them."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if cores < 2 or len(items) < 2:
        return [function(item) for item in items]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(min(cores, len(items))) as pool:
        return list(pool.map(function, items))
