"""Independent answers about a fit: the exact least-squares solution and the
curvature of the loss, which decides which learning rates work.

Everything here is computed in float64 and another way than training does it,
so it can serve as the reference the trained model is checked against.
"""
import numpy as np
import tensorflow as tf

from linreg.model import LinearModel, mean_squared_error


def least_squares(x, y):
    """The W and b that minimise the mean squared error, in closed form (float64).

    Centering x and y first removes the intercept from the problem (the best
    line always passes through the point of means), which keeps the solve
    accurate; `tf.linalg.lstsq(fast=False)` then solves the centred system by
    an orthogonal decomposition rather than the normal equations, so it does
    not square the data's condition number.
    """
    x = tf.cast(x, tf.float64)
    y = tf.cast(y, tf.float64)
    x_mean = tf.reduce_mean(x, axis=0)
    y_mean = tf.reduce_mean(y)
    W = tf.linalg.lstsq(x - x_mean, (y - y_mean)[:, None], fast=False)[:, 0]
    b = y_mean - tf.tensordot(x_mean, W, 1)
    return W.numpy(), float(b)


def hessian(x, y):
    """The matrix of second derivatives of the loss over (W_1..W_d, b), float64.

    Computed the way the gradient is, by automatic differentiation -- twice.
    The inner tape gives the gradient; the outer tape watched the inner one
    work, so it can differentiate the gradient once more (`jacobian`), giving
    one row of second derivatives per parameter. For this loss the Hessian is
    2/N · [x 1]ᵀ[x 1] and does not depend on W and b: the bowl has the same
    shape everywhere.
    """
    x = tf.cast(x, tf.float64)
    y = tf.cast(y, tf.float64)
    model = LinearModel(int(x.shape[1]), dtype=tf.float64)
    with tf.GradientTape(persistent=True) as outer:
        with tf.GradientTape() as inner:
            loss = mean_squared_error(y, model(x))
        dW, db = inner.gradient(loss, [model.W, model.b])
        gradient = tf.concat([dW, db[None]], axis=0)
    H_W, H_b = outer.jacobian(gradient, [model.W, model.b])
    return tf.concat([H_W, H_b[:, None]], axis=1).numpy()


def largest_eigenvalue(x, y):
    """The loss's steepest curvature: the Hessian's largest eigenvalue."""
    return float(np.linalg.eigvalsh(hessian(x, y))[-1])


def max_stable_learning_rate(x, y, momentum=0.0):
    """The learning rate above which gradient descent diverges on (x, y).

    Along the Hessian's steepest direction (eigenvalue λ) one step multiplies
    the distance to the minimum by (1 - rate·λ). That shrinks the distance
    only while |1 - rate·λ| < 1, that is rate < 2/λ. With heavy-ball momentum
    beta the limit widens to 2·(1 + beta)/λ.
    """
    return 2.0 * (1.0 + momentum) / largest_eigenvalue(x, y)
