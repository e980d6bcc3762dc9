"""TensorBoard scalars per epoch through tf.summary, written as training goes.

After every chunk the driver hands over the epochs it ran; they are written
in one graph call (a Python loop of eager tf.summary calls would cost more
than training) and flushed, so TensorBoard shows the run while it goes.
"""
import numpy as np
import tensorflow as tf

from linreg.engine.driver import Listener
from linreg.io.files import make_dir


class TensorBoard(Listener):
    """Scalars: loss, gradient_norm, learning_rate and coefficient/<name>.

    `coefficients(W, b)` maps the model's (W [k, d], b [k]) to the values to
    show, [k, len(names)] (for a fit: the coefficients in original units)."""

    def __init__(self, logdir, names, coefficients):
        self.logdir = make_dir(logdir)
        self.tags = ["coefficient/" + name for name in names]
        self.coefficients = coefficients
        self.writer = None

    def started(self, epoch, optimizer):
        self.learning_rate = float(optimizer.learning_rate)
        self.writer = tf.summary.create_file_writer(str(self.logdir))

    def chunk(self, epoch, new, first_gradient_norm):
        start = epoch - len(new.loss)
        self._write(start, new.loss, new.gradient_norm, self.coefficients(new.W, new.b))

    def finished(self, epoch, history):
        # The final state, measured after the last step.
        last = history.loss[-1:], history.gradient_norm[-1:], self.coefficients(history.W[-1:], history.b[-1:])
        self._write(epoch, *last)
        self.writer.close()

    def _write(self, start, loss, gradient_norm, coefficients):
        if not len(loss):
            return
        with self.writer.as_default():
            _write_all(
                tf.constant(start, tf.int64),
                tf.constant(np.asarray(loss, np.float64)),
                tf.constant(np.asarray(gradient_norm, np.float64)),
                tf.constant(np.asarray(coefficients, np.float64)),
                tf.constant(self.learning_rate, tf.float64),
                self.tags,
            )
        self.writer.flush()


@tf.function
def _write_all(start, loss, gradient_norm, coefficients, learning_rate, tags):
    for k in tf.range(tf.shape(loss)[0]):
        step = start + tf.cast(k, tf.int64)
        # The graph loop opens a name scope ("while/") that tf.summary would
        # prefix to every tag; the empty scope keeps the tags as named.
        with tf.name_scope(""):
            tf.summary.scalar("loss", loss[k], step=step)
            tf.summary.scalar("gradient_norm", gradient_norm[k], step=step)
            tf.summary.scalar("learning_rate", learning_rate, step=step)
            for j, tag in enumerate(tags):
                tf.summary.scalar(tag, coefficients[k, j], step=step)
