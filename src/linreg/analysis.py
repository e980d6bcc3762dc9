"""Independent answers about a fit: the exact least-squares solution and the
curvature of the loss, which decides which learning rates work.

Everything here is computed in float64 and another way than training does it,
so it can serve as the reference the trained model is checked against.
"""
import math
from dataclasses import dataclass

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
    return curvature(x, y).largest


def max_stable_learning_rate(x, y, momentum=0.0, nesterov=False):
    """The learning rate above which gradient descent diverges on (x, y).

    Along the Hessian's steepest direction (eigenvalue λ) one step multiplies
    the distance to the minimum by (1 - rate·λ). That shrinks the distance
    only while |1 - rate·λ| < 1, that is rate < 2/λ. With heavy-ball momentum
    beta the limit widens to 2·(1 + beta)/λ; with Nesterov momentum (which
    adds beta·velocity to the gradient step) it narrows to
    2·(1 + beta)/((1 + 2·beta)·λ), see stable_rate_factor.
    """
    return stable_rate_factor(momentum, nesterov) / largest_eigenvalue(x, y)


def stable_rate_factor(beta=0.0, nesterov=False):
    """c such that descent converges exactly when rate·λ_max < c.

    Along one eigen-direction (eigenvalue λ, h = rate·λ) the distance e to
    the minimum and the velocity evolve linearly; the step is stable when
    both roots of its characteristic polynomial lie inside the unit circle:
        heavy ball:  z² - (1 + beta - h)·z + beta           -> h < 2·(1 + beta)
        Nesterov:    z² - (1 + beta)(1 - h)·z + beta·(1 - h) -> h < 2·(1 + beta)/(1 + 2·beta)
    With beta = 0 both are plain gradient descent: h < 2.
    """
    return 2.0 * (1.0 + beta) / (1.0 + 2.0 * beta) if nesterov else 2.0 * (1.0 + beta)


# --- curvature for large d: Hessian-vector products and power iteration ------

# Up to this many features the full Hessian (d + 1 Hessian-vector products,
# vectorized by `jacobian`, then an exact eigen-decomposition) is cheap; above
# it, power iteration needs only a few hundred products and never forms the
# (d + 1) x (d + 1) matrix.
FULL_HESSIAN_MAX_FEATURES = 100


def hessian_vector_product(model, x, y, v_W, v_b):
    """H·v for the loss of `model` on (x, y), without forming H.

    Two nested tapes again, as in `hessian`, but the outer one differentiates
    one number -- the gradient's component along v, g·v -- instead of every
    component of the gradient. The derivative of g·v with respect to the
    parameters is H·v: a whole matrix-vector product for the price of about
    two gradients.
    """
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            loss = mean_squared_error(y, model(x))
        dW, db = inner.gradient(loss, [model.W, model.b])
        along_v = tf.reduce_sum(dW * v_W) + db * v_b
    return outer.gradient(along_v, [model.W, model.b])


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


@dataclass
class Curvature:
    """The extreme eigenvalues of the loss's Hessian and how they were found."""

    largest: float
    smallest: float
    method: str

    @property
    def condition_number(self):
        return self.largest / self.smallest if self.smallest > 0 else math.inf


def curvature(x, y):
    """λ_max and λ_min of the Hessian of the mean squared error on (x, y).

    Small d: the full Hessian from nested tapes, eigenvalues by eigvalsh.
    Large d: λ_max by power iteration on Hessian-vector products. λ_min is
    the hard one -- power iteration would need a number of steps that grows
    with the condition number -- so it comes from the Lanczos method
    (scipy's eigsh), which works from the same Hessian-vector products and
    builds its answer from all the vectors seen so far, not just the last.
    """
    x = tf.cast(x, tf.float64)
    y = tf.cast(y, tf.float64)
    d = int(x.shape[1])
    if d <= FULL_HESSIAN_MAX_FEATURES:
        eigenvalues = np.linalg.eigvalsh(hessian(x, y))
        return Curvature(float(eigenvalues[-1]), float(eigenvalues[0]), "full Hessian")
    model = LinearModel(d, dtype=tf.float64)
    product = tf.function(lambda v_W, v_b: hessian_vector_product(model, x, y, v_W, v_b))

    def H(v):
        v = np.asarray(v, np.float64).ravel()
        dW, db = product(tf.constant(v[:-1]), tf.constant(v[-1]))
        return np.concatenate([dW.numpy(), [db.numpy()]])

    largest = power_iteration(H, d + 1)
    from scipy.sparse.linalg import LinearOperator, eigsh  # only fits with many features need it

    operator = LinearOperator((d + 1, d + 1), matvec=H, dtype=np.float64)
    start = np.random.default_rng(0).standard_normal(d + 1)
    smallest = float(eigsh(operator, k=1, which="SA", v0=start, tol=1e-10, return_eigenvectors=False)[0])
    method = "power iteration and Lanczos on Hessian-vector products"
    return Curvature(largest, max(smallest, 0.0), method)


# --- the statistics of an ordinary least-squares fit --------------------------


@dataclass
class OLSStatistics:
    """What statsmodels' OLS summary shows, for coefficients (intercept, W_1..W_d).

    Every array is ordered [intercept, feature 1, ..., feature d].
    """

    coefficients: np.ndarray
    std_errors: np.ndarray
    t: np.ndarray
    p_values: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    r_squared: float
    adj_r_squared: float
    residual_sd: float
    n: int
    df_residual: int


def ols_statistics(x, y, W, b, confidence=0.95):
    """Standard errors, t, p, confidence intervals and R² for the fit (W, b).

    The textbook formulas, in float64:
        residual variance  s² = Σ residual² / (n - p),  p = d + 1 coefficients
        Cov(W)             = s² (X_cᵀX_c)⁻¹       (X_c: x with column means removed)
        Var(b)             = s² (1/n + x̄ᵀ (X_cᵀX_c)⁻¹ x̄)
        t = coefficient / standard error, p-value from Student's t with n - p
        degrees of freedom, interval = coefficient ± t_(0.975, n-p) · SE.
    (X_cᵀX_c)⁻¹ comes from the SVD of X_c with unit-length columns (never
    forming X_cᵀX_c, which would square its condition number), so features
    of very different scales cost no accuracy.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    W = np.asarray(W, np.float64)
    n, d = x.shape
    df = n - (d + 1)
    residuals = y - (x @ W + b)
    rss = float(residuals @ residuals)
    s2 = rss / df
    x_mean = x.mean(axis=0)
    centred = x - x_mean
    lengths = np.linalg.norm(centred, axis=0)
    # QR first: R (d x d) has the same singular values and right singular
    # vectors as the N x d matrix, and its SVD is cheap.
    R = np.linalg.qr(centred / lengths, mode="r")
    _, singular, Vt = np.linalg.svd(R)
    inverse = (Vt.T / singular**2) @ Vt / np.outer(lengths, lengths)
    variances = np.concatenate([[1.0 / n + x_mean @ inverse @ x_mean], np.diag(inverse)]) * s2
    coefficients = np.concatenate([[b], W])
    std_errors = np.sqrt(variances)
    t = coefficients / std_errors
    from scipy import stats  # imported here: the demo never needs it, and it takes 0.4 s

    p_values = 2.0 * stats.t.sf(np.abs(t), df)
    half_width = stats.t.ppf(0.5 + confidence / 2.0, df) * std_errors
    tss = float(np.sum((y - y.mean()) ** 2))
    r_squared = 1.0 - rss / tss
    return OLSStatistics(
        coefficients=coefficients,
        std_errors=std_errors,
        t=t,
        p_values=p_values,
        ci_low=coefficients - half_width,
        ci_high=coefficients + half_width,
        r_squared=r_squared,
        adj_r_squared=1.0 - (1.0 - r_squared) * (n - 1) / df,
        residual_sd=math.sqrt(s2),
        n=n,
        df_residual=df,
    )
