"""Penalized least squares from the statistics: ridge, lasso, elastic net, a
path of penalties with warm starts, and K-fold cross-validation -- one read.

The objective is scikit-learn's (ElasticNet), with the intercept b never penalized:

    (1/2n)·‖y - X·w - b‖² + α·ρ·‖w‖₁ + α·(1 - ρ)/2·‖w‖²         (ρ = l1_ratio)

ρ = 0 is ridge, ρ = 1 the lasso. With `standardize` (the default, as glmnet)
w is the coefficients of the standardized columns, and the answer is
reported in the original units; without, those of the columns as they are
(as scikit-learn does).

How the heart trains it. Every fit works in the coordinates of
data/moments.py's `standardized`: z_j = (x_j - x̄_j)/σ_j, ỹ = (y - ȳ)/s_y and
coefficients u, with w_j = s_y·u_j/σ_j in the original units (so that the
step size suits every column, whatever the penalty is measured on). Then
b = ȳ - x̄·w, and the objective divided by s_y²/2 is

    (1/n)·‖ỹ - Z·u‖² + Σ_j l2_j·u_j² + Σ_j l1_j·|u_j|,
    l1_j = 2·α·ρ·c_j/s_y,   l2_j = α·(1 - ρ)·c_j²,

with c_j = 1 when the standardized columns are penalized and 1/σ_j when the
original ones are. The factor 2 turns scikit-learn's 1/(2n) into the heart's
mean squared error (1/n)·‖r‖². The first two terms are smooth: they are
(1/n)·vᵀ(S + n·diag(l2, 0))·v for v = [-u, 1] and S the standardized
cross-products -- ridge is least squares on data whose columns have n·l2_j
more spread, uncorrelated with anything -- so `pseudo_rows` of that matrix
give 2(d + 1) rows on which the heart's model and mean squared error are
exactly that part, and the tape differentiates it. The L1 term is the
proximal step of core/optimizers.py's ProximalGradient, at the rate
1/λ_max, λ_max = 2·λ_max((S_xx + n·diag(l2))/n), the largest curvature of
the smooth part. Each iteration costs O(d²), whatever n is.

Cross-validation. data/folds.py gives each fold's Moments from the same
pass; a fold's training statistics are the merge of the others, and the
held-out error of any w is exact from the fold's own statistics.
"""
import functools
import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from linreg.core.model import LinearModel
from linreg.core.optimizers import ProximalGradient
from linreg.core.step import train_step
from linreg.data.folds import check_folds, training_moments, validation_error
from linreg.data.moments import merge_all, pseudo_rows, standardized
from linreg.data.scaling import Standardized
from linreg.errors import LinregError

# The proximal point's largest move, relative to its largest coefficient, at
# which a fit stops. FISTA with restarts converges linearly once the zeros are
# found, and the float64 iteration settles within a few ulps, so this is near
# the floor; it gives the 1e-6 agreement with other solvers in the tests.
# Coefficients smaller than 1 (in standardized units: 1 is the target's whole
# spread) are judged against 1 instead: a step rounds at ε times the gradient,
# which is of that order, so a coefficient on the edge of zero -- at the
# largest alpha of a path -- would flicker between 0 and 1e-18 for ever.
TOL = 1e-13
MAX_ITER = 200_000


def check(alphas=(), l1_ratios=()):
    """Refuse penalties and mixes that mean nothing."""
    for alpha in np.ravel(alphas):
        if not (np.isfinite(alpha) and alpha >= 0):
            raise LinregError(f"alpha must be a finite number >= 0, not {alpha}; 0 means no penalty")
    for ratio in np.ravel(l1_ratios):
        if not 0 <= ratio <= 1:
            raise LinregError(f"l1_ratio must lie in [0, 1] (0: ridge, 1: lasso), not {ratio}")


def alpha_max(moments, l1_ratio, standardize=True):
    """The smallest α at which every coefficient is 0: max_j |x_jᵀ(y - ȳ)|/(n·ρ)
    on the penalized columns (standardized ones: x_j/σ_j)."""
    check(l1_ratios=l1_ratio)
    if l1_ratio == 0:
        raise LinregError("ridge (l1_ratio = 0) never sets a coefficient to 0, so it has no largest alpha; give the alphas")
    e = moments.exponents
    xy = np.ldexp(moments.C[:-1, -1], e[:-1] + e[-1])
    if standardize:
        xy = xy / np.ldexp(np.sqrt(np.diag(moments.C)[:-1] / moments.weight), e[:-1])
    return float(np.max(np.abs(xy))) / (moments.weight * l1_ratio)


def alpha_grid(moments, l1_ratio, n_alphas=100, eps=1e-3, standardize=True):
    """n_alphas α's, evenly spaced in log from alpha_max down to alpha_max·eps."""
    top = alpha_max(moments, l1_ratio, standardize)
    if not (math.isfinite(top) and top * eps > 0):
        raise LinregError(f"the alpha at which every coefficient is 0 is {top:g}, beyond float64's reach for a grid "
                          "below it: rescale the columns (multiply or divide by a power of ten) or give the alphas")
    return np.geomspace(top, top * eps, n_alphas)


class Solver:
    """One model and one FISTA rule, reused for every fit of d coefficients
    (every α, fold and l1_ratio): one compiled loop for them all."""

    def __init__(self, d, tol=TOL, max_iter=MAX_ITER):
        # No intercept in the model: in centred coordinates it is 0 at the bottom.
        self.model = LinearModel(d, dtype=tf.float64, intercept=False)
        self.rule = ProximalGradient(self.model, 1.0)
        self.tol, self.max_iter = tf.constant(tol, tf.float64), tf.constant(max_iter)
        self._run = tf.function(self._loop, jit_compile=True)

    def _loop(self, x, y):
        """Proximal steps until the proximal point stops moving; how many."""
        i, done = tf.constant(0), tf.constant(False)
        while (i < self.max_iter) & ~done:
            train_step(self.model, self.rule, x, y)
            done = self.rule.change <= self.tol * tf.maximum(self.rule.size, 1.0)
            i += 1
        return i

    def fit(self, problem, alpha, l1_ratio, start=None):
        """u (standardized coordinates) minimizing the objective, and the iterations."""
        n, d = problem.weight, len(problem.penalized)
        l1 = 2.0 * alpha * l1_ratio * problem.penalized / problem.scaled.y_scale
        l2 = alpha * (1.0 - l1_ratio) * problem.penalized**2
        # Ridge makes column j's curvature 1 + l2_j instead of 1: very uneven when
        # the original columns, of different spreads, are penalized. Training on
        # u_j·√(1 + l2_j) evens it out again (an exact change of units, which the
        # L1 thresholds follow).
        D = np.append(1.0 / np.sqrt(1.0 + l2), 1.0)
        S = problem.S * np.outer(D, D)
        S[np.arange(d), np.arange(d)] += n * l2 * D[:-1] ** 2
        x, y = pseudo_rows(S, n)
        self.rule.learning_rate.assign(1.0 / (2.0 * np.linalg.eigvalsh(S[:-1, :-1] / n)[-1]))
        self.rule.l1.assign(l1 * D[:-1])
        self.model.W.assign(np.zeros(d) if start is None else start / D[:-1])
        self.rule.start()
        iterations = int(self._run(tf.constant(x), tf.constant(y)))
        if iterations >= self.max_iter:
            raise LinregError(f"the penalized fit at alpha = {alpha:g}, l1_ratio = {l1_ratio:g} did not converge in "
                              f"{self.max_iter} iterations; give a larger alpha")
        return self.rule.point[0].numpy() * D[:-1], iterations


@functools.lru_cache(maxsize=8)
def solver_for(d, tol=TOL, max_iter=MAX_ITER):
    """The Solver for d coefficients, kept: a process that fits again (a path, the
    folds, another fit of the same width) compiles its loop once."""
    return Solver(d, tol, max_iter)


@dataclass
class Problem:
    """The statistics in the solver's coordinates (see the module's notes)."""

    scaled: Standardized  # means and scales, and the way back to the original units
    S: np.ndarray  # [d + 1, d + 1] standardized cross-products of [x, y]
    weight: float  # n
    penalized: np.ndarray  # [d] c_j: 1, or 1/σ_j when the original columns are penalized

    @classmethod
    def of(cls, moments, standardize=True):
        if moments.rows < 2:
            raise LinregError(f"a penalized fit needs at least 2 rows, not {moments.rows} (with --cv, the rows outside "
                              "one fold: use fewer folds)")
        mean, scale, S = standardized(moments)
        if not np.all(scale > 0):  # a constant column: nothing to standardize, nothing to learn from
            j = int(np.argmin(scale))
            what = "the target" if j == len(scale) - 1 else f"feature {j + 1}"
            raise LinregError(f"{what} is constant, so it cannot be standardized; leave that column out")
        scaled = Standardized(mean[:-1], scale[:-1], float(mean[-1]), float(scale[-1]), None, None, represents=moments.rows)
        penalized = np.ones(len(scale) - 1) if standardize else 1.0 / scale[:-1]
        return cls(scaled, S, moments.weight, penalized)


def path(moments, alphas, l1_ratio, standardize=True, warm=True, solver=None):
    """Fits along `alphas` (in their order): coefficients [N, d] and intercepts [N]
    in the original units, and the iterations each took. With `warm`, each fit
    starts from the last one's answer -- near it when the α's are close.
    One α is one fit: path(moments, [alpha], l1_ratio)."""
    check(alphas, l1_ratio)
    problem = Problem.of(moments, standardize)
    solver = solver or solver_for(len(problem.penalized))
    u, coefficients, intercepts, iterations = None, [], [], []
    for alpha in alphas:
        u, k = solver.fit(problem, alpha, l1_ratio, u if warm else None)
        W, b = problem.scaled.coefficients(u, 0.0)
        coefficients.append(W)
        intercepts.append(b)
        iterations.append(k)
    return np.array(coefficients), np.array(intercepts), np.array(iterations)


def objective(moments, W, b, alpha, l1_ratio, standardize=True):
    """scikit-learn's objective at (W, b) in the original units, from the statistics."""
    penalized = np.asarray(W) * (standardized(moments)[1][:-1] if standardize else 1.0)
    return (0.5 * validation_error(moments, W, b) + alpha * l1_ratio * np.sum(np.abs(penalized))
            + 0.5 * alpha * (1 - l1_ratio) * np.sum(penalized**2))


@dataclass
class PenaltyResult:
    """A penalty path with K-fold cross-validation. Axis 0 of every table is l1_ratio.

    alphas:        [L, N] each l1_ratio's α's, largest first
    coefficients:  [L, N, d] the path on all the data, original units; intercepts [L, N]
    cv_mean:       [L, N] the mean over folds of each fold's held-out mean squared error
    cv_error:      [L, N] its standard error: the folds' standard deviation / √K
    cv_folds:      [L, N, K] each fold's held-out mean squared error
    iterations:    [L, N] proximal iterations per α on all the data, with warm starts;
                   cold_iterations the same from zero
    best, one_se:  (l1_ratio, alpha) with the least mean error, and the largest α of that
                   l1_ratio whose mean error is within one standard error of that least
    W, b:          the fit on all the data at `best`; W_one_se, b_one_se at `one_se`
    """

    l1_ratios: np.ndarray
    alphas: np.ndarray
    coefficients: np.ndarray
    intercepts: np.ndarray
    cv_mean: np.ndarray
    cv_error: np.ndarray
    cv_folds: np.ndarray
    iterations: np.ndarray
    cold_iterations: np.ndarray
    best: tuple
    one_se: tuple
    W: np.ndarray
    b: float
    W_one_se: np.ndarray
    b_one_se: float


def cross_validate(folds, l1_ratio=1.0, alphas=None, n_alphas=100, eps=1e-3, standardize=True, tol=TOL, max_iter=MAX_ITER):
    """The path and its K-fold cross-validation from the folds' Moments (data/folds.py).

    l1_ratio: one number or a list, each cross-validated; alphas: an explicit list
    (used for every l1_ratio), or None for each l1_ratio's grid of n_alphas from its
    alpha_max on all the data down to eps times it. Every fit is on statistics: the
    rows are not read again.
    """
    K = len(folds)
    check_folds(K, sum(part.rows for part in folds))
    l1_ratios = np.atleast_1d(np.asarray(l1_ratio, np.float64))
    check(alphas if alphas is not None else (), l1_ratios)
    total = merge_all(folds)
    if alphas is None:
        grid = np.array([alpha_grid(total, ratio, n_alphas, eps, standardize) for ratio in l1_ratios])
    else:
        grid = np.tile(np.sort(np.atleast_1d(np.asarray(alphas, np.float64)))[::-1], (len(l1_ratios), 1))
    solver = solver_for(total.C.shape[0] - 1, tol, max_iter)
    training = training_moments(folds)
    errors = np.empty(grid.shape + (K,))
    for i, ratio in enumerate(l1_ratios):
        for k in range(K):
            W, b, _ = path(training[k], grid[i], ratio, standardize, solver=solver)
            errors[i, :, k] = [validation_error(folds[k], w, c) for w, c in zip(W, b)]
    if not np.all(np.isfinite(errors)):
        raise LinregError("the folds' validation errors overflow float64 (squares of the target's values): divide the "
                          "target by a power of ten")
    mean, error = errors.mean(axis=2), errors.std(axis=2, ddof=1) / np.sqrt(K)
    runs = [path(total, grid[i], ratio, standardize, solver=solver) for i, ratio in enumerate(l1_ratios)]
    cold = [path(total, grid[i], ratio, standardize, warm=False, solver=solver)[2] for i, ratio in enumerate(l1_ratios)]
    coefficients, intercepts, iterations = (np.array(column) for column in zip(*runs))
    # The first least in (l1_ratio, α) order, as scikit-learn's ElasticNetCV picks.
    i, j = np.unravel_index(np.argmin(mean), mean.shape)
    j_se = int(np.flatnonzero(mean[i] <= mean[i, j] + error[i, j])[0])  # α's largest first
    return PenaltyResult(
        l1_ratios, grid, coefficients, intercepts, mean, error, errors, iterations, np.array(cold),
        (float(l1_ratios[i]), float(grid[i, j])), (float(l1_ratios[i]), float(grid[i, j_se])),
        coefficients[i, j], float(intercepts[i, j]), coefficients[i, j_se], float(intercepts[i, j_se]),
    )  # fmt: skip
