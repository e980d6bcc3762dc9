"""The model and its loss: f(x) = x·W + b, judged by the mean squared error.

This file is the first half of the heart of the project (training.py is the
second). It is meant to be read top to bottom.

Shapes used everywhere in the project
-------------------------------------
    x : [N, d]   N examples (rows), d features (columns)
    y : [N]      one target number per example
    W : [d]      one weight per feature
    b : []       one bias, a plain number

With d = 1 this is the school-book line y = 3x + 2; with d = 16 it is a plane
in 16 dimensions. The code below does not care which: that is why W is a
vector and not a single number.
"""
import numpy as np
import tensorflow as tf


class LinearModel(tf.Module):
    """f(x) = x·W + b, with W and b held in `tf.Variable`s.

    Why variables and not constants?
        A TensorFlow tensor -- what `tf.constant` makes and what every
        operation returns -- can never change after it has been created.
        Training, though, is nothing but changing W and b a little, many
        times. A `tf.Variable` is TensorFlow's one mutable container: it holds
        a tensor and lets us overwrite it in place (`assign`, `assign_add`,
        `assign_sub`) without creating a new object. Two more things come with
        it for free: a `tf.GradientTape` watches variables automatically (so
        we can ask for "the gradient with respect to W"), and `tf.Module`
        finds every variable stored on `self`, which is how checkpoints and
        SavedModel exports know what to save.

    Why `tf.Module`?
        It is the smallest base class TensorFlow offers for "a bundle of
        variables plus the code that uses them". `model.trainable_variables`
        lists W and b without us keeping that list by hand.
    """

    def __init__(self, n_features=1, W=0.0, b=0.0, dtype=tf.float32, name="linear_model"):
        super().__init__(name=name)
        # The starting guess. Gradient descent will move it; where it starts
        # only changes how far it has to travel (the loss of a linear model
        # has a single valley, so there is no "wrong" start that traps it).
        # `W` may be one number (repeated for every feature) or one per feature.
        dtype = tf.as_dtype(dtype)
        W0 = np.broadcast_to(np.asarray(W, dtype.as_numpy_dtype), [n_features])
        self.W = tf.Variable(W0, name="W")
        self.b = tf.Variable(np.asarray(b, dtype.as_numpy_dtype), name="b")

    @property
    def n_features(self):
        return int(self.W.shape[0])

    def __call__(self, x):
        """The prediction ŷ = x·W + b for every row of x at once.

        `tf.linalg.matvec(x, W)` multiplies the [N, d] matrix by the [d]
        vector: row i becomes x_i1·W_1 + ... + x_id·W_d, one number per
        example. Adding the scalar b adds it to all N of them (broadcasting).
        Nothing here loops over examples in Python: one call handles the
        whole data set, which is what makes it fast.
        """
        return tf.linalg.matvec(x, self.W) + self.b


def mean_squared_error(y, y_pred):
    """The loss: how wrong the predictions are, as one number.

    Read it from the inside out:
      * `y - y_pred`     the error (residual) of each example, a vector of N;
      * `tf.square(...)` squares every element on its own -- it does not sum
                         or mix them. Squaring makes every error positive (an
                         overshoot and an undershoot must not cancel) and
                         punishes one big error more than several small ones;
      * `tf.reduce_mean` collapses the N squares into their average, a single
                         number (a scalar tensor).
    Average of squared errors = mean squared error. Its minimum, over W and b,
    is exactly the least-squares line that statistics textbooks derive in
    closed form; training by gradient descent is another road to that same
    point. Using the mean (not the sum) keeps the loss's size, and so a good
    learning rate, independent of how many examples there are.
    """
    return tf.reduce_mean(tf.square(y - y_pred))
