"""The curvature of the loss: its Hessian from nested tapes, and the extreme
eigenvalues that decide which learning rates work (core/optimizers.py).

Computed in float64 and another way than training computes anything, so it
can also serve as a reference in the tests.
"""

import numpy as np
import tensorflow as tf

from linreg.core.model import LinearModel, mean_squared_error
from linreg.precondition import Curvature


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


def curvature(x, y):
    """λ_max and λ_min of the Hessian of the mean squared error on (x, y):
    the full Hessian from nested tapes, its eigenvalues by eigvalsh."""
    eigenvalues = np.linalg.eigvalsh(hessian(x, y))
    return Curvature(float(eigenvalues[-1]), float(eigenvalues[0]), "full Hessian")


# --- the steepest curvature for large d: Hessian-vector products -------------

# Up to this many features the full Hessian (d + 1 Hessian-vector products,
# vectorized by `jacobian`, then an exact eigen-decomposition) is cheap; above
# it, power iteration needs only a few hundred products and never forms the
# (d + 1) x (d + 1) matrix.
FULL_HESSIAN_MAX_FEATURES = 100


def largest_eigenvalue(x, y):
    """The loss's steepest curvature, λ_max: from the full Hessian for few
    features, by power iteration on Hessian-vector products for many."""
    x = tf.cast(x, tf.float64)
    y = tf.cast(y, tf.float64)
    d = int(x.shape[1])
    if d <= FULL_HESSIAN_MAX_FEATURES:
        return curvature(x, y).largest
    model = LinearModel(d, dtype=tf.float64)
    product = tf.function(lambda v_W, v_b: hessian_vector_product(model, x, y, v_W, v_b))

    def H(v):
        dW, db = product(tf.constant(v[:-1]), tf.constant(v[-1]))
        return np.concatenate([dW.numpy(), [db.numpy()]])

    return power_iteration(H, d + 1)


def hessian_vector_product(model, x, y, *v):
    """H·v for the loss of `model` on (x, y), without forming H.

    Two nested tapes again, as in `hessian`, but the outer one differentiates
    one number -- the gradient's component along v, g·v -- instead of every
    component of the gradient. The derivative of g·v with respect to the
    parameters is H·v: a whole matrix-vector product for the price of about
    two gradients. `v` has one part per trainable variable: (v_W, v_b), or
    (v_W,) for a model without an intercept.
    """
    variables = model.trainable_variables
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss = mean_squared_error(y, model(x))
        gradients = inner.gradient(loss, variables)
        along_v = tf.add_n([tf.reduce_sum(g * u) for g, u in zip(gradients, v)])
    return outer.gradient(along_v, variables)


def power_iteration(apply, size, iterations=2000, rtol=1e-9, seed=0):
    """The largest eigenvalue of the symmetric positive semi-definite
    operator `apply` (a function v -> A·v on vectors of `size`).

    Multiplying any start vector by A again and again stretches its component
    along the top eigenvector most, so the vector turns towards it; the
    Rayleigh quotient vᵀAv of the unit vector then approaches λ_max from
    below. Stops when that estimate changes by less than rtol (relative).
    """
    v = np.random.default_rng(seed).standard_normal(size)
    v /= np.linalg.norm(v)
    estimate = 0.0
    for _ in range(iterations):
        Av = apply(v)
        previous, estimate = estimate, float(v @ Av)
        norm = np.linalg.norm(Av)
        if norm == 0.0:
            return 0.0
        v = Av / norm
        if abs(estimate - previous) <= rtol * abs(estimate):
            break
    return estimate
