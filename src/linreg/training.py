"""The training step and the training loop: the second half of the heart.

Gradient descent in one paragraph
---------------------------------
The loss (model.py) is a bowl-shaped surface over the parameters W and b: high
where the line is bad, lowest at the best line. The gradient of the loss is
the direction in which the loss rises fastest, so a small move in the
*opposite* direction lowers it. Training repeats that move:

    W  <-  W - learning_rate * dLoss/dW
    b  <-  b - learning_rate * dLoss/db

until the gradient is (almost) zero, which is the bottom of the bowl.

Everything below is one of three pieces:
    loss_and_gradients   measure the loss and, with a GradientTape, its gradient
    train_step           ... and then move W and b downhill with assign_sub
    run_epochs           repeat the step, record the history, stop when it
                         diverges or converges
and one driver, `train`, which runs that same loop eagerly (line by line,
the way you read it), as a TensorFlow graph (`tf.function`), or as a graph
compiled by XLA. The math exists once; the drivers only change how it runs.
"""
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from linreg.errors import DivergenceError, LinregError
from linreg.model import mean_squared_error

# How the loop runs. "none", "function" and "xla" are the three ways to run
# it (explained above `_DRIVERS` below); "auto" picks one of them for the
# problem at hand (see `resolve_compile`). Every choice runs the same step.
COMPILE_MODES = ("none", "function", "xla")
COMPILE_CHOICES = ("auto",) + COMPILE_MODES

# How run_epochs ended (an integer, so it can live inside a compiled graph).
RAN_ALL_EPOCHS, CONVERGED, DIVERGED = 0, 1, 2

# "The loss keeps growing" means: it rose this many epochs in a row and is now
# above where training started. Plain gradient descent with a safe learning
# rate never does that on a linear model (its loss falls every epoch), while a
# too-large rate makes the loss grow geometrically, so this fires quickly.
GROWTH_EPOCHS = 10


def loss_and_gradients(model, x, y):
    """The loss of the model on (x, y) and its gradient with respect to W and b.

    `tf.GradientTape` is TensorFlow's automatic differentiation. While the
    `with` block runs, the tape records every operation that touches a
    watched value -- and trainable `tf.Variable`s are watched automatically.
    Here it records: matvec(x, W), + b, y - ..., square, mean.

    Once the block has ended the recording is complete, and
    `tape.gradient(loss, [W, b])` plays it backwards (backpropagation): it
    applies the chain rule to each recorded operation, from the loss back to
    the variables, and returns dLoss/dW and dLoss/db. The gradients exist
    only after the forward pass, because the tape can differentiate only what
    it has seen happen. For the mean squared error they are, worked out by
    hand,
        dLoss/dW = -2 · mean(x · (y - ŷ))      (one number per feature)
        dLoss/db = -2 · mean(y - ŷ)
    -- the tests check the tape against exactly these formulas.
    """
    with tf.GradientTape() as tape:
        loss = mean_squared_error(y, model(x))
    dW, db = tape.gradient(loss, [model.W, model.b])
    return loss, dW, db


class Momentum(tf.Module):
    """Momentum and Nesterov momentum, for valleys that are long and narrow.

    On badly scaled or correlated features the bowl is a narrow ravine: the
    gradient points mostly across it, so plain descent zig-zags and crawls.
    Momentum keeps a running "velocity" -- a decaying sum of past gradients --
    and steps along that instead: the zig-zags cancel out, the steady
    downhill component adds up.

        velocity <- beta · velocity + gradient
        step      = velocity                          (heavy ball)
        step      = gradient + beta · velocity        (Nesterov: look ahead)

    With beta = 0 the velocity is just the gradient and both become plain
    gradient descent. The update itself is still written by hand in
    train_step with `assign_sub`.
    """

    def __init__(self, model, beta=0.9, nesterov=False):
        super().__init__(name="momentum")
        self.beta = tf.constant(beta, model.W.dtype)
        self.nesterov = nesterov
        self.velocity = [tf.Variable(tf.zeros_like(v)) for v in (model.W, model.b)]

    def direction(self, gradients):
        steps = []
        for velocity, gradient in zip(self.velocity, gradients):
            velocity.assign(self.beta * velocity + gradient)
            steps.append(gradient + self.beta * velocity if self.nesterov else velocity.read_value())
        return steps


def train_step(model, x, y, learning_rate, momentum=None):
    """One epoch of full-batch gradient descent: measure, then move downhill.

    Full batch: x and y are the whole data set, so every step sees every
    example and the gradient is the exact gradient of the loss. Mini-batch
    training (what large data sets and Keras' `fit` usually do) would compute
    the gradient on a slice of the data per step: cheaper steps, but noisy
    ones. With the whole set as the batch, one step is one epoch -- one pass
    over all the data.

    `assign_sub(v)` means "variable <- variable - v", done in place on the
    variable. We subtract because the gradient points uphill and we want to
    go down. The learning rate is the size of the move: too small and
    training crawls; too large and each step overshoots the bottom of the
    valley by more than it started from, so the loss grows without bound
    (analysis.py computes where "too large" begins).

    Returns the loss and gradients *before* the move, which is what the
    history records for this epoch.
    """
    loss, dW, db = loss_and_gradients(model, x, y)
    step_W, step_b = (dW, db) if momentum is None else momentum.direction([dW, db])
    model.W.assign_sub(learning_rate * step_W)
    model.b.assign_sub(learning_rate * step_b)
    return loss, dW, db


def run_epochs(model, x, y, learning_rate, epochs, tol, momentum=None):
    """Repeat train_step for up to `epochs` epochs and record what happened.

    Written once, run three ways (see `train`): in eager mode this is an
    ordinary Python loop; inside `tf.function`, AutoGraph turns the `while`
    over a tensor condition into a graph loop (`tf.while_loop`) that runs
    without returning to Python between epochs. That is also why the
    history goes into `tf.TensorArray`s (lists that can grow inside a graph)
    and why the stopping rules are written with tensors.

    Stopping rules:
      * diverged: the loss is NaN or infinite, or it has grown
        GROWTH_EPOCHS epochs in a row and is above where it started;
      * converged (only when tol > 0): the gradient's norm has fallen to
        `tol` times its norm at the start -- the relative gradient norm.

    History entry k is the state after k epochs (entry 0 is the starting
    guess); there are epochs_run + 1 entries.
    """
    dtype = model.W.dtype
    size = epochs + 1
    history = {
        "loss": tf.TensorArray(dtype, size=size),
        "W": tf.TensorArray(dtype, size=size),
        "b": tf.TensorArray(dtype, size=size),
        "grad_W": tf.TensorArray(dtype, size=size),
        "grad_b": tf.TensorArray(dtype, size=size),
    }

    def record(entries, k, loss, W, b, dW, db):
        values = {"loss": loss, "W": W, "b": b, "grad_W": dW, "grad_b": db}
        return {name: entries[name].write(k, values[name]) for name in entries}

    status = tf.constant(RAN_ALL_EPOCHS)
    epoch = tf.constant(0)
    growth = tf.constant(0)
    previous_loss = tf.constant(np.inf, dtype)
    first_loss = tf.constant(np.inf, dtype)
    first_gradient_norm = tf.constant(np.inf, dtype)

    # The stopping rules are computed as tensors (`&`, `|`, `tf.where`)
    # rather than with Python `if`/`and`/`or` and `break`. In eager mode the
    # two read the same; in a graph every Python `if` on a tensor becomes a
    # conditional (`tf.cond`) and every `and`/`or` another one, nested, which
    # the compiled loop would have to branch through each epoch. Written this
    # way the whole epoch is straight-line arithmetic and the only decision
    # is the loop's own condition: keep going while there are epochs left and
    # nothing has stopped training.
    while (epoch < epochs) & (status == RAN_ALL_EPOCHS):
        # Read W and b before the step moves them: entry `epoch` pairs them
        # with the loss and gradients measured at exactly these values.
        W, b = model.W.read_value(), model.b.read_value()
        loss, dW, db = train_step(model, x, y, learning_rate, momentum)
        history = record(history, epoch, loss, W, b, dW, db)

        gradient_norm = tf.sqrt(tf.reduce_sum(tf.square(dW)) + tf.square(db))
        first_loss = tf.where(epoch == 0, loss, first_loss)
        first_gradient_norm = tf.where(epoch == 0, gradient_norm, first_gradient_norm)
        growth = tf.where(loss > previous_loss, growth + 1, 0)
        previous_loss = loss

        diverged = ~tf.math.is_finite(loss) | ((growth >= GROWTH_EPOCHS) & (loss > first_loss))
        converged = (tol > 0) & (gradient_norm <= tol * first_gradient_norm)
        status = tf.where(diverged, DIVERGED, tf.where(converged, CONVERGED, RAN_ALL_EPOCHS))
        epoch += 1
    epochs_run = epoch

    # The state the last step left behind, measured but not moved.
    loss, dW, db = loss_and_gradients(model, x, y)
    history = record(history, epochs_run, loss, model.W.read_value(), model.b.read_value(), dW, db)
    return {name: entries.stack() for name, entries in history.items()}, epochs_run, status


# What compiling changes
# ---------------------
# The three drivers run the very same Python function, run_epochs, and so the
# very same train_step, loss_and_gradients, model and loss. What differs is
# who executes it and how much work each epoch costs besides the arithmetic.
#
# "none" (eager). Python executes run_epochs line by line. Every TensorFlow
#   operation -- the matvec, the subtraction, the square, the mean, each piece
#   of the backward pass the tape replays, each assign_sub, each history write
#   -- is a separate call from Python into TensorFlow's C++ runtime, which
#   checks its inputs, picks a kernel, allocates the output and runs it. That
#   costs a few microseconds per operation and there are several dozen per
#   epoch, so a small data set spends almost all its time on bookkeeping:
#   about 1 to 2 ms per epoch on 1,000 examples, where the arithmetic itself
#   takes a few microseconds. It is also the only mode in which you can put a
#   print() or a breakpoint inside the loop and see real numbers, which is why
#   it stays the teaching path.
#
# "function" (`tf.function`). The first call *traces* run_epochs: Python runs
#   it once with symbolic tensors, and AutoGraph rewrites the `while` over a
#   tensor condition into graph control flow (a `tf.while_loop` whose body is
#   one epoch, about a hundred graph nodes). The result is a dataflow graph of the
#   whole training run. Later calls hand that graph to the C++ executor, which
#   runs every epoch without coming back to Python: the per-operation Python
#   cost disappears, and Grappler (TensorFlow's graph optimiser) prunes and
#   folds what it can. The kernels are still TensorFlow's own, one per
#   operation, each reading its inputs from memory and writing its output
#   back: at large N every elementwise operation is a separate pass over an
#   array of N numbers. Those kernels (Eigen's) are vectorised and use both
#   cores, which is why this mode wins when the matrix-vector products over
#   many features dominate the epoch. Tracing costs a fraction of a second,
#   once per new combination of shapes and dtypes, and once per new model
#   object (the model is a Python argument, so a new one means a new trace).
#
# "xla" (`tf.function(jit_compile=True)`). The traced graph is handed to XLA,
#   a compiler: it sees the whole loop at once, turns the TensorArrays and
#   variables into buffers updated in place, fuses chains of elementwise operations (x·W + b - y,
#   then the square) into single loops that do not write intermediate arrays,
#   and emits machine code for this exact shape. The epoch loop becomes a
#   native loop, so a small problem costs about two microseconds per epoch,
#   hundreds of times less than eager. The price: a compile of a few tenths
#   of a second, repeated for every new shape and every new epoch count (the
#   history arrays have epochs + 1 rows, and XLA needs every size fixed at
#   compile time). And on the CPU XLA does not fuse the three reductions
#   the tape needs (the loss, dW, db) into one pass: each recomputes the
#   residual from x and y, writes an array of N numbers and reads it back,
#   and its own matrix-vector code is slower than Eigen's at many features;
#   so at large N the data still crosses memory several times per epoch
#   (docs/performance.md has the measurements).
#
# The compiled versions are made once, here, so that repeated calls reuse the
# traced graph (and XLA's compiled code) instead of starting over.
_DRIVERS = {
    "none": run_epochs,
    "function": tf.function(run_epochs),
    "xla": tf.function(run_epochs, jit_compile=True),
}

# The "auto" rule, from measurements on a 2-core CPU (docs/performance.md):
#
# 1. Compile only when it pays. Compiling costs about COMPILE_SECONDS once
#    (tracing took 0.2-0.7 s, XLA's compile 0.3-0.45 s, for every new shape
#    and epoch count). What it saves is the eager mode's extra cost per epoch:
#    about 2 ms of Python and per-operation dispatch at any size, plus about
#    4 ns per example for the extra passes eager makes over arrays of N numbers
#    (measured: 2.2 ms per epoch saved at N = 1,000; 46-53 ms at N = 10
#    million). A run whose total saving is below the compile cost is fastest
#    eagerly: the demo's few hundred epochs on a thousand points, or a handful
#    of epochs on any data.
# 2. Otherwise XLA, whose fused whole-loop program is the fastest at small
#    and medium sizes and for few features ...
# 3. ... except when the epoch is dominated by matrix-vector products over a
#    large [N, d] matrix (d > 1 and N·d at least FUNCTION_MIN_ELEMENTS): there
#    Eigen's multi-threaded kernels, which the "function" mode uses, beat the
#    code XLA generates for them (51 against 109 ms per epoch at N = 10
#    million, d = 16).
COMPILE_SECONDS = 0.5
EAGER_SECONDS_PER_EPOCH = 2e-3
EAGER_SECONDS_PER_EXAMPLE = 4e-9
FUNCTION_MIN_ELEMENTS = 2**22


def resolve_compile(compile, n_examples, n_features, epochs):
    """The concrete mode ("none", "function" or "xla") that `compile` means here."""
    if compile != "auto":
        return compile
    saving = epochs * (EAGER_SECONDS_PER_EPOCH + EAGER_SECONDS_PER_EXAMPLE * n_examples)
    if saving < COMPILE_SECONDS:
        return "none"
    if n_features > 1 and n_examples * n_features >= FUNCTION_MIN_ELEMENTS:
        return "function"
    return "xla"


@dataclass
class History:
    """Per-epoch record; index k is the state after k epochs (0 = the start)."""

    loss: np.ndarray  # [k+1]
    W: np.ndarray  # [k+1, d]
    b: np.ndarray  # [k+1]
    grad_W: np.ndarray  # [k+1, d]
    grad_b: np.ndarray  # [k+1]


@dataclass
class TrainResult:
    history: History
    epochs: int  # epochs actually run
    converged: bool
    compile: str

    @property
    def loss(self):
        return float(self.history.loss[-1])


def train(model, x, y, learning_rate, epochs, tol=0.0, momentum=None, compile="auto"):
    """Train `model` on (x, y) in place and return its history.

    `compile` is one of COMPILE_CHOICES; "auto" picks the mode with
    `resolve_compile`, and the result's `compile` says which mode ran.

    Raises DivergenceError (exit code 3) when the loss blows up; its message
    gives the epoch, the rate used, the rate above which descent diverges on
    this data and a rate that works.
    """
    if compile not in COMPILE_CHOICES:
        raise LinregError(f"--compile must be one of {', '.join(COMPILE_CHOICES)}, not {compile!r}")
    dtype = model.W.dtype
    x = tf.cast(x, dtype)
    y = tf.cast(y, dtype)
    compile = resolve_compile(compile, int(x.shape[0]), int(x.shape[1]), epochs)
    history, epochs_run, status = _DRIVERS[compile](
        model,
        x,
        y,
        tf.constant(learning_rate, dtype),
        tf.constant(epochs, tf.int32),
        tf.constant(tol, dtype),
        momentum,
    )
    n = int(epochs_run) + 1
    history = History(**{name: values.numpy()[:n] for name, values in history.items()})
    if int(status) == DIVERGED:
        error = divergence_error(x, y, learning_rate, int(epochs_run), momentum)
        error.history = history  # what happened up to the blow-up, for the log
        raise error
    return TrainResult(history, int(epochs_run), int(status) == CONVERGED, compile)


def divergence_error(x, y, learning_rate, epoch, momentum=None):
    """The DivergenceError for a run that blew up: what happened, the rate at
    which descent stops converging on this data, and a rate to try instead."""
    from linreg.analysis import max_stable_learning_rate

    beta = 0.0 if momentum is None else float(momentum.beta)
    nesterov = momentum is not None and momentum.nesterov
    bound = max_stable_learning_rate(x, y, momentum=beta, nesterov=nesterov)
    limit = "the largest rate at which gradient descent converges on this data (from the largest eigenvalue of the loss's Hessian)"
    if learning_rate > bound:
        why = f"learning rate {learning_rate:g} is above {bound:.4g}, {limit}"
    else:
        # Below the bound the iteration converges in exact arithmetic; what
        # tripped the check is momentum's temporary rise or a loss too large
        # for the number type. A smaller rate helps with both.
        why = f"the loss blew up although learning rate {learning_rate:g} is below {bound:.4g}, {limit}"
    suggestion = min(bound, learning_rate) / 2
    return DivergenceError(f"training diverged at epoch {epoch}: {why}; try --learning-rate {suggestion:.3g}")
