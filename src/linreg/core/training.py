"""The training loop: the step, repeated, until the bottom of the bowl.

First the loop as the tutorial tells it, then the same loop grown up: its
state kept in variables and run a chunk of epochs at a time, so that a driver
can watch it, save it and stop it between chunks (engine/driver.py).
"""
import numpy as np
import tensorflow as tf

from linreg.core.step import loss_and_gradients, train_step


def train_plainly(model, optimizer, x, y, epochs):
    """The whole idea in three lines: measure, step, repeat.

    Returns each epoch's loss with the W and b it was measured at (before
    that epoch's step), which is what the demo prints and plots.
    """
    history = []
    for _ in range(epochs):
        W, b = model.W.numpy(), model.b.numpy()
        loss, _ = train_step(model, optimizer, x, y)
        history.append((float(loss), W, b))
    return history


# How a run stands (an integer, so it can live in a variable and in a graph).
# STALLED is converged too: the gradient stopped falling at the rounding floor.
RUNNING, CONVERGED, DIVERGED, STALLED = 0, 1, 2, 3

# "Diverging" means the loss rose this many epochs in a row and is above where
# it started. Descent with a safe rate never does that on a linear model, and a
# rate that is too large makes the loss grow geometrically, so it fires fast.
GROWTH_EPOCHS = 10


class LoopState(tf.Module):
    """Everything the loop carries from one epoch to the next, as variables.

    Variables, not Python numbers, so the same loop can be checkpointed and
    resumed (tf.train.Checkpoint saves every variable of a tf.Module), and
    a compiled chunk can update them in place.
    """

    # epoch: epochs run; status: RUNNING (0) or how the run ended; growth:
    # epochs in a row the loss rose; stall: epochs since the lowest gradient norm
    COUNTERS = ("epoch", "status", "growth", "stall")  # start at 0
    NUMBERS = ("previous_loss", "first_loss", "first_gradient_norm", "best_gradient_norm")  # start at infinity

    def __init__(self, dtype):
        super().__init__(name="loop")
        for name in self.COUNTERS:
            setattr(self, name, tf.Variable(0, dtype=tf.int64 if name == "epoch" else tf.int32, trainable=False, name=name))
        for name in self.NUMBERS:
            setattr(self, name, tf.Variable(np.inf, dtype=dtype, trainable=False, name=name))
        # Kept for `reset`, which every run calls: turning 0 and infinity into
        # tensors each time would cost more than the eight assignments.
        self._start = self.read()

    def reset(self):
        """Back to the state before the first epoch."""
        for name, value in self._start.items():
            getattr(self, name).assign(value, read_value=False)

    def read(self):
        """The state as plain tensors, {name: tensor}: inside a compiled loop a
        tensor is cheaper to carry than a variable to access, every access
        being an operation of its own. `write` puts them back once, at the end."""
        return {name: getattr(self, name).read_value() for name in self.COUNTERS + self.NUMBERS}

    def write(self, carried):
        for name, value in carried.items():
            getattr(self, name).assign(value)

    def pack(self, carried):
        """The state as two vectors: the counters (as int64) and the numbers.

        Under XLA on the CPU each scalar a loop carries to its next iteration
        is computed by a small kernel of its own, and at N = 1,000 eight such
        kernels cost about 15% of the epoch. A stacked vector is one
        kernel, with the judging that feeds it fused in. Elsewhere packing
        would cost operations of its own: only the XLA loop packs."""
        return (tf.stack([tf.cast(carried[name], tf.int64) for name in self.COUNTERS]),
                tf.stack([carried[name] for name in self.NUMBERS]))

    def unpack(self, packed):
        """`pack` undone: {name: tensor}, each counter in its variable's type."""
        counters, numbers = packed
        return {**{name: tf.cast(counters[k], getattr(self, name).dtype) for k, name in enumerate(self.COUNTERS)},
                **{name: numbers[k] for k, name in enumerate(self.NUMBERS)}}


# A patience no run reaches: the stall rule off.
NO_STALL = 2**31 - 1


def run_chunk(model, optimizer, state, x, y, tol, max_epochs, chunk, patience=NO_STALL, packed=False):
    """Run up to `chunk` epochs (fewer if training stops or reaches max_epochs).

    Returns this chunk's history -- for each epoch the loss, the gradient's
    norm, W and b before its step -- in arrays of `chunk` rows, how many
    rows are filled and, if training ended in this chunk, the loss and the
    gradient's norm where it ended (NaN if it goes on). `chunk` is a Python
    number: a compiled chunk is made once per data shape and reused for
    every chunk of every run (tol, max_epochs and patience are tensors for
    the same reason).

    The history is one row per epoch, [loss, gradient norm, W..., b]: one
    write, where four would each cost a kernel under XLA. `packed` (for XLA)
    carries the state as two vectors for the same reason (LoopState.pack).
    """
    rows = tf.TensorArray(model.W.dtype, size=chunk, element_shape=[model.W.shape[0] + 3])
    encode, decode = (state.pack, state.unpack) if packed else (dict, dict)  # dict: as it is

    def running(carried):
        return (carried["epoch"] < max_epochs) & (carried["status"] == RUNNING)

    carried = encode(state.read())
    i = tf.constant(0)
    while (i < chunk) & running(decode(carried)):
        W, b = model.W.read_value(), model.b.read_value()
        # forward, backward, update
        loss, gradients = train_step(model, optimizer, x, y)
        gradient_norm = norm(gradients)
        rows = rows.write(i, tf.concat([[loss, gradient_norm], W, [b]], axis=0))
        # termination conditions
        carried = encode(judge(decode(carried), loss, gradient_norm, tol, patience))
        i += 1
    state.write(decode(carried))
    # Where training ended, for the history's last row. Measured here, by the
    # chunk that ends the run (a conditional: the others skip it), it costs
    # no call of its own.
    nan = tf.constant(np.nan, model.W.dtype)
    final = tf.cond(running(decode(carried)), lambda: (nan, nan), lambda: measure(model, x, y))
    rows = rows.stack()
    return [rows[:, 0], rows[:, 1], rows[:, 2:-1], rows[:, -1]], i, final


def norm(gradients):
    """The gradient's length: the root of the sum of squares over all its parts (W's and b's)."""
    return tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in gradients]))


def measure(model, x, y):
    """The loss and the gradient's norm where the model stands (no step)."""
    loss, gradients = loss_and_gradients(model, x, y)
    return loss, norm(gradients)


def judge(carried, loss, gradient_norm, tol, patience):
    """The loop's state (as `LoopState.read` gives it) after one more epoch,
    whose step saw `loss` and `gradient_norm`; its status says whether to stop.

    Every driver -- eager, compiled, streamed, distributed -- calls this after
    each epoch, so where a run stops depends on its epochs alone, not on
    how they were chunked, interrupted or resumed. The rules:
      diverged:  the loss is NaN or infinite, or has grown GROWTH_EPOCHS
                 epochs in a row and is above its first value;
      converged: (tol > 0) the gradient's norm has fallen to tol times its
                 first value -- at the bottom the gradient is zero;
      stalled:   (also converged) the gradient's norm has made no new low for
                 `patience` epochs while the loss is not above its first
                 value. Computed in floating point the gradient never reaches
                 zero: near the bottom it is rounding noise that no step can
                 reduce, so a tol below that floor could never be met. Far
                 from it, descent lowers the norm at every epoch (momentum at
                 least once per oscillation, which patience outlasts), so a
                 long stall means the floor is reached. A blow-up makes no new
                 lows either, but its loss climbs, while rounding noise stays
                 within a few ulps of the first loss.
    How much patience a method needs, and whether a stall far from the answer
    is still convergence, depends on the method: engine/solve.py says.
    They are written with tensor arithmetic (`&`, `|`, `tf.where`), not
    Python `if`, so that a compiled epoch is straight-line code.
    """
    first = carried["epoch"] == 0
    first_loss = tf.where(first, loss, carried["first_loss"])
    first_gradient_norm = tf.where(first, gradient_norm, carried["first_gradient_norm"])
    growth = tf.where(loss > carried["previous_loss"], carried["growth"] + 1, 0)
    stall = tf.where(gradient_norm < carried["best_gradient_norm"], 0, carried["stall"] + 1)
    diverged = ~tf.math.is_finite(loss) | ((growth >= GROWTH_EPOCHS) & (loss > first_loss))
    converged = (tol > 0) & (gradient_norm <= tol * first_gradient_norm)
    calm = loss <= first_loss * (1 + 64 * np.finfo(loss.dtype.as_numpy_dtype).eps)
    stalled = (stall >= patience) & calm
    status = tf.where(diverged, DIVERGED, tf.where(converged, CONVERGED, tf.where(stalled, STALLED, RUNNING)))
    return {
        "epoch": carried["epoch"] + 1, "status": status, "growth": growth, "stall": stall,
        "previous_loss": loss, "first_loss": first_loss, "first_gradient_norm": first_gradient_norm,
        "best_gradient_norm": tf.minimum(carried["best_gradient_norm"], gradient_norm),
    }
