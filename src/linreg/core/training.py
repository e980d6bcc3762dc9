"""The training loop: the step, repeated, until the bottom of the bowl.

First the loop as the tutorial tells it, then the same loop grown up: its
state kept in variables and run a chunk of epochs at a time, so that a driver
can watch it, save it and stop it between chunks (engine/driver.py).
"""
import numpy as np
import tensorflow as tf

from linreg.core.step import train_step


def train_plainly(model, optimizer, x, y, epochs):
    """The whole idea in three lines: measure, step, repeat; return the losses."""
    losses = []
    for _ in range(epochs):
        loss, _ = train_step(model, optimizer, x, y)
        losses.append(float(loss))
    return losses


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

    COUNTERS = ("epoch", "status", "growth", "stall")  # start at 0 (status 0 is RUNNING)
    NUMBERS = ("previous_loss", "first_loss", "first_gradient_norm", "best_gradient_norm")  # start at infinity

    def __init__(self, dtype):
        super().__init__(name="loop")
        # epoch: epochs run; growth: epochs in a row the loss rose; stall: epochs since the lowest gradient norm
        for name in self.COUNTERS:
            setattr(self, name, tf.Variable(0, dtype=tf.int64 if name == "epoch" else tf.int32, trainable=False, name=name))
        for name in self.NUMBERS:
            setattr(self, name, tf.Variable(np.inf, dtype=dtype, trainable=False, name=name))

    def reset(self):
        """Back to the state before the first epoch."""
        for name in self.COUNTERS:
            getattr(self, name).assign(0)
        for name in self.NUMBERS:
            getattr(self, name).assign(np.inf)


def run_chunk(model, optimizer, state, x, y, tol, max_epochs, chunk):
    """Run up to `chunk` epochs (fewer if training stops or reaches max_epochs).

    Returns this chunk's history -- for each epoch the loss, the gradient's
    norm, W and b before its step -- in arrays of `chunk` rows, and how many
    rows are filled. `chunk` is a Python number: a compiled chunk is made
    once per data shape and reused for every chunk of every run.

    Stopping rules, checked every epoch:
      diverged:  the loss is NaN or infinite, or has grown GROWTH_EPOCHS
                 epochs in a row and is above its first value;
      converged: (tol > 0) the gradient's norm has fallen to tol times its
                 first value -- at the bottom the gradient is zero;
    (and, checked between chunks, `stalled` below). They are written with
    tensor arithmetic (`&`, `|`, `tf.where`), not Python `if`, so that a
    compiled epoch is straight-line code without branches.
    """
    dtype = model.W.dtype
    history = [tf.TensorArray(dtype, size=chunk, element_shape=shape) for shape in ([], [], model.W.shape, [])]
    # The state is read into plain tensors for the loop and written back once
    # at the end: inside a compiled loop a tensor costs nothing to carry,
    # while every variable access is an operation of its own.
    epoch, status, growth = state.epoch.read_value(), state.status.read_value(), state.growth.read_value()
    previous_loss, first_loss = state.previous_loss.read_value(), state.first_loss.read_value()
    first_gradient_norm = state.first_gradient_norm.read_value()
    i = tf.constant(0)
    while (i < chunk) & (epoch < max_epochs) & (status == RUNNING):
        W, b = model.W.read_value(), model.b.read_value()
        # forward, backward, update
        loss, gradients = train_step(model, optimizer, x, y)
        gradient_norm = tf.sqrt(tf.add_n([tf.reduce_sum(tf.square(g)) for g in gradients]))
        history = [h.write(i, value) for h, value in zip(history, (loss, gradient_norm, W, b))]
        status, growth, first_loss, first_gradient_norm = judge(
            epoch, loss, gradient_norm, previous_loss, first_loss, first_gradient_norm, growth, tol
        )
        previous_loss = loss
        epoch += 1
        i += 1
    state.epoch.assign(epoch)
    state.status.assign(status)
    state.growth.assign(growth)
    state.previous_loss.assign(previous_loss)
    state.first_loss.assign(first_loss)
    state.first_gradient_norm.assign(first_gradient_norm)
    return [h.stack() for h in history], i


def judge(epoch, loss, gradient_norm, previous_loss, first_loss, first_gradient_norm, growth, tol):
    """The stopping rules after one epoch: the new status, growth and first values."""
    first_loss = tf.where(epoch == 0, loss, first_loss)
    first_gradient_norm = tf.where(epoch == 0, gradient_norm, first_gradient_norm)
    growth = tf.where(loss > previous_loss, growth + 1, 0)
    diverged = ~tf.math.is_finite(loss) | ((growth >= GROWTH_EPOCHS) & (loss > first_loss))
    converged = (tol > 0) & (gradient_norm <= tol * first_gradient_norm)
    status = tf.where(diverged, DIVERGED, tf.where(converged, CONVERGED, RUNNING))
    return status, growth, first_loss, first_gradient_norm


def stalled(state, loss, gradient_norm, patience):
    """Whether the gradient's norm has made no new low for `patience` epochs.

    Computed in floating point the gradient never reaches zero: near the
    bottom it is rounding noise that no step can reduce, so a tol below that
    floor could never be met. Far from it, descent lowers the norm at every
    epoch (momentum at least once per oscillation, which patience outlasts),
    so a long stall means the floor is reached. A blow-up makes no new lows
    either, but its loss climbs, while rounding noise stays within a few
    ulps of the first loss. Checked by the driver on each chunk's history
    (numpy, vectorized), which keeps these operations out of every epoch.
    """
    best, stall = float(state.best_gradient_norm), int(state.stall)
    lows = np.minimum.accumulate(np.concatenate([[best], gradient_norm]))
    new_low = gradient_norm < lows[:-1]
    k = np.arange(len(gradient_norm))
    last_low = np.maximum.accumulate(np.where(new_low, k, -1))
    stalls = np.where(last_low >= 0, k - last_low, stall + k + 1)
    calm = loss <= float(state.first_loss) * (1 + 64 * np.finfo(loss.dtype).eps)
    state.best_gradient_norm.assign(lows[-1])
    state.stall.assign(int(stalls[-1]) if len(stalls) else stall)
    return bool(np.any((stalls >= patience) & calm))
