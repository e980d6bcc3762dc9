"""The model f(x) = x·W + b and the loss that judges it.

Shapes everywhere in the project: x is [N, d] (N rows, d features), y is [N],
W is [d] and b is a scalar. With d = 1 this is the school line y = 3x + 2;
with d = 16 it is a plane in 16 dimensions, and nothing below changes.
"""
import numpy as np
import tensorflow as tf


class LinearModel(tf.Module):
    """f(x) = x·W + b, with W and b held in `tf.Variable`s.

    Why variables? A tensor (what `tf.constant` and every operation make) can
    never change once made, yet training is nothing but changing W and b many
    times. A `tf.Variable` is TensorFlow's mutable box: `assign_sub` rewrites
    it in place. A GradientTape watches trainable variables by itself, and
    `tf.Module` finds every variable on `self`, which is how checkpoints and
    SavedModel know what to save.
    """

    def __init__(self, n_features=1, W=0.0, b=0.0, dtype=tf.float32, intercept=True, name="linear_model"):
        super().__init__(name=name)
        # The starting guess. The loss of a linear model is one bowl with one
        # bottom, so no start can trap descent; a far start only takes longer.
        dtype = tf.as_dtype(dtype)
        self.W = tf.Variable(np.broadcast_to(np.asarray(W, dtype.as_numpy_dtype), [n_features]), name="W")
        # Without an intercept (a line through the origin) b stays 0: a variable
        # that is not trainable, so the tape ignores it and no step moves it.
        self.b = tf.Variable(np.asarray(b if intercept else 0.0, dtype.as_numpy_dtype), trainable=intercept, name="b")

    def __call__(self, x):
        # matvec turns each row into x_i1·W_1 + ... + x_id·W_d; adding the
        # scalar b adds it to all N rows (broadcasting). One call, no Python loop.
        return tf.linalg.matvec(x, self.W) + self.b


def mean_squared_error(y, y_pred):
    """The loss: the average of the squared errors, one number.

    `y - y_pred` is each row's error; `tf.square` squares each on its own, so
    overshoots and undershoots cannot cancel and a big miss costs more than
    several small ones; `tf.reduce_mean` averages the N squares. The mean, not
    the sum, keeps the loss -- and so a good learning rate -- independent of N.
    Its minimum is the least-squares line of the textbooks; descent is another
    road to the same point.
    """
    return tf.reduce_mean(tf.square(y - y_pred))
