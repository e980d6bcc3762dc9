"""Learning rules: which way each step goes, and how far.

Every rule is one class with the same four parts:
    its state, in `tf.Variable`s (so checkpoints save it and graphs update it);
    `direction(gradients)`: where the step goes (train_step subtracts
        learning_rate · direction with assign_sub);
    `tuned(largest, smallest)`: a learning rate (and more) that provably
        converges, from the extreme eigenvalues λ of the loss's Hessian;
    `stable_rate(largest)`: the learning rate above which it diverges.
A new rule is one more class and one line in REGISTRY. The rules, in the
order below: plain descent ("gd"), heavy-ball momentum ("momentum"),
Nesterov momentum tuned from κ ("nesterov"), Nesterov with restarts for when
λ_min is not known ("nesterov-restart") and conjugate gradients ("cg").

Why the eigenvalues decide everything: the loss is a quadratic bowl, so
descent acts on each eigen-direction of its Hessian on its own. With rate r,
the distance to the bottom along a direction of curvature λ is multiplied by
(1 - r·λ) each epoch. It shrinks only while |1 - r·λ| < 1, so r < 2/λ_max;
and the flattest direction then shrinks by only 1 - λ_min/λ_max = 1 - 1/κ per
epoch: plain descent needs about κ·ln(1/ε) epochs to reach a relative error ε.
Momentum cuts that to about √κ·ln(1/ε); the default method makes κ = 1 by
changing coordinates instead (precondition.py, `orthogonalize`).
"""
import math

import tensorflow as tf


class GradientDescent(tf.Module):
    """Plain descent: step along the gradient itself."""

    def __init__(self, model, learning_rate):
        super().__init__(name=type(self).__name__.lower())
        dtype = model.W.dtype
        self.learning_rate = tf.Variable(learning_rate, dtype=dtype, trainable=False, name="learning_rate")

    def direction(self, gradients):
        return gradients

    @staticmethod
    def tuned(largest, smallest):
        # Half the divergence limit: the steepest direction lands in one step
        # and never oscillates, and a λ_max estimated a little low (over
        # files too wide for xᵀx, Lanczos approaches it from below) still
        # leaves a factor-2 margin.
        return {"learning_rate": 1.0 / largest}

    def stable_rate(self, largest):
        return 2.0 / largest


class Momentum(GradientDescent):
    """Heavy-ball momentum, for long narrow valleys.

    On correlated or badly scaled data the bowl is a ravine: the gradient
    points mostly across it, so plain descent zig-zags and crawls along it.
    Momentum steps along a velocity, a decaying sum of past gradients,
        velocity <- beta · velocity + gradient,
    in which the zig-zags cancel and the steady downhill part adds up.
    """

    def __init__(self, model, learning_rate, beta):
        super().__init__(model, learning_rate)
        self.beta = tf.Variable(beta, dtype=model.W.dtype, trainable=False, name="beta")
        self.velocity = [tf.Variable(tf.zeros_like(v), trainable=False, name="velocity") for v in model.trainable_variables]

    def direction(self, gradients):
        for velocity, gradient in zip(self.velocity, gradients):
            velocity.assign(self.beta * velocity + gradient)
        return [velocity.read_value() for velocity in self.velocity]

    @staticmethod
    def tuned(largest, smallest):
        # The classical best pair for a quadratic makes every direction
        # shrink by √beta ≈ 1 - 2/√κ per epoch: √κ/2 epochs per factor e
        # instead of κ. With exactly those values the steepest direction sits
        # on a repeated root and first grows for dozens of epochs, enough to
        # look like divergence; tuning for a λ_max 10% larger avoids that.
        largest *= 1.1
        root_kappa = math.sqrt(largest / smallest)
        beta = ((root_kappa - 1.0) / (root_kappa + 1.0)) ** 2
        return {"learning_rate": 4.0 / (math.sqrt(largest) + math.sqrt(smallest)) ** 2, "beta": beta}

    def stable_rate(self, largest):
        # Along one direction (h = rate·λ) distance and velocity evolve by the
        # roots of z² - (1 + beta - h)·z + beta; both lie inside the unit
        # circle exactly when h < 2·(1 + beta).
        return 2.0 * (1.0 + float(self.beta)) / largest


class Nesterov(Momentum):
    """Nesterov momentum: look ahead along the velocity before stepping."""

    def direction(self, gradients):
        velocity = super().direction(gradients)
        return [gradient + self.beta * v for gradient, v in zip(gradients, velocity)]

    @staticmethod
    def tuned(largest, smallest):
        # The textbook choice for strongly convex problems: about √κ epochs
        # per factor e, with the steepest direction far inside its limit.
        root_kappa = math.sqrt(largest / smallest)
        return {"learning_rate": 1.0 / largest, "beta": (root_kappa - 1.0) / (root_kappa + 1.0)}

    def stable_rate(self, largest):
        # Characteristic polynomial z² - (1 + beta)(1 - h)·z + beta·(1 - h):
        # stable exactly when h < 2·(1 + beta)/(1 + 2·beta).
        beta = float(self.beta)
        return 2.0 * (1.0 + beta) / ((1.0 + 2.0 * beta) * largest)


class RestartedNesterov(Nesterov):
    """Nesterov momentum for when λ_min is unknown (engine stream, d > 4096).

    The tuned beta above needs κ = λ_max/λ_min, and λ_min is the eigenvalue
    that a few passes over the files cannot find (a Krylov method needs more
    of them the worse the conditioning). Without it, beta grows with the step
    count k as beta_k = k/(k + 3) -- Nesterov's schedule for any convex bowl
    -- and restarts from 0 whenever the gradient turns against the
    velocity (g·velocity < 0): the ball has rolled past the bottom of the
    valley and would climb the far side. O'Donoghue and Candès (2015) showed
    that this restart recovers the √κ rate of the tuned rule without knowing κ.
    The rate stays 1/λ_max, inside this rule's limit for any beta (4/(3λ) at
    beta = 1).
    """

    def __init__(self, model, learning_rate):
        super().__init__(model, learning_rate, beta=0.0)
        self.steps = tf.Variable(0.0, dtype=model.W.dtype, trainable=False, name="steps_since_restart")

    def direction(self, gradients):
        against = tf.add_n([tf.reduce_sum(g * v) for g, v in zip(gradients, self.velocity)]) < 0
        for velocity in self.velocity:
            velocity.assign(tf.where(against, tf.zeros_like(velocity), velocity))
        self.steps.assign(tf.where(against, tf.zeros_like(self.steps), self.steps + 1))
        self.beta.assign(self.steps / (self.steps + 3.0))
        return super().direction(gradients)

    @staticmethod
    def tuned(largest, smallest=None):
        return {"learning_rate": 1.0 / largest}


class ConjugateGradients(GradientDescent):
    """Conjugate gradients: each step exactly to the bottom along a new direction.

    The direction mixes the gradient with the last one, p = g + β·p_old with
    β = |g|²/|g_old|², which makes successive directions conjugate (pᵀHp_old
    = 0), so no step undoes an earlier one; on a quadratic in n variables the
    bottom is reached in at most n steps, in exact arithmetic. The step length
    is the exact minimum of the quadratic along p, α = g·p / pᵀHp, with H·p
    from `hessian_vector_product` (nested tapes, analysis/curvature.py): the
    learning rate is recomputed every step. Every n steps β is reset to 0,
    since rounding slowly spoils the conjugacy.
    """

    def __init__(self, model, hessian_vector_product, learning_rate=0.0):
        super().__init__(model, learning_rate)
        self.hvp, self.n = hessian_vector_product, sum(int(tf.size(v)) for v in model.trainable_variables)
        self.p = [tf.Variable(tf.zeros_like(v), trainable=False, name="direction") for v in model.trainable_variables]
        self.g_squared = tf.Variable(tf.zeros([], model.W.dtype), trainable=False, name="g_squared")
        self.steps = tf.Variable(0, trainable=False, name="steps")

    def direction(self, gradients):
        dot = lambda a, b: sum(tf.reduce_sum(u * v) for u, v in zip(a, b))  # noqa: E731
        g_squared = dot(gradients, gradients)
        restart = (self.steps % self.n == 0) | (self.g_squared == 0)
        zero, one = tf.zeros_like(g_squared), tf.ones_like(g_squared)
        beta = tf.where(restart, zero, g_squared / tf.where(restart, one, self.g_squared))
        p = [g + beta * p_old for g, p_old in zip(gradients, self.p)]
        curvature = dot(p, self.hvp(*p))  # pᵀHp; 0 only when p = 0, at the bottom
        self.learning_rate.assign(tf.where(curvature > 0, dot(gradients, p) / tf.where(curvature > 0, curvature, one), zero))
        for variable, value in zip(self.p, p):
            variable.assign(value)
        self.g_squared.assign(g_squared)
        self.steps.assign_add(1)
        return p

    @staticmethod
    def tuned(largest, smallest):
        return {}  # the step length is found exactly at every step

    def stable_rate(self, largest):
        return math.inf  # an exact line search never overshoots


REGISTRY = {
    "gd": GradientDescent,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "nesterov-restart": RestartedNesterov,
    "cg": ConjugateGradients,
}


class ProximalGradient(GradientDescent):
    """FISTA with restarts: descent on the smooth loss, then the L1 penalty exactly.

    The lasso and the elastic net (engine/penalty.py) add Σ_j l1_j·|W_j| to
    the loss. That term has no gradient at W_j = 0 -- exactly where it
    matters, since it is what sets coefficients to zero -- so it is not put
    in the tape. Each step instead moves downhill on the smooth part
    (the tape's gradient g, rate r) and then solves the penalty exactly for
    the point it reached, z = W - r·g:

        argmin_W  |W - z|²/(2r) + Σ_j l1_j·|W_j|  =  sign(z)·max(|z| - r·l1, 0),

    soft-thresholding (the "proximal step"): every coefficient shrinks
    towards 0 by r·l1_j, and one closer than that becomes exactly 0. With
    r = 1/λ_max this never raises the penalized loss (ISTA). FISTA adds
    momentum as RestartedNesterov does: the gradient is taken at a point
    y = x + beta·(x - x_old) ahead of the last proximal point x, with the
    same beta_k = k/(k + 3), and restarts from beta = 0 when the step
    (y - x_new) turns against the last move (x_new - x): then it has rolled
    past the bottom (O'Donoghue and Candès, 2015). The intercept is never
    penalized (its threshold is 0).

    To fit this file's contract, `direction` returns (y - y_next)/r, so
    that train_step's `assign_sub` of r·direction lands the model on the
    next look-ahead point y_next; the proximal points x live in
    `self.point` and are the answer (they hold the exact zeros). It stays
    out of REGISTRY: it needs its thresholds, which the unpenalized fit has
    no use for.
    """

    def __init__(self, model, learning_rate, l1=0.0):
        super().__init__(model, learning_rate)
        dtype = model.W.dtype
        self.model_variables = model.trainable_variables
        self.l1 = tf.Variable(tf.broadcast_to(tf.cast(l1, dtype), model.W.shape), trainable=False, name="l1")
        self.point = [tf.Variable(v, trainable=False, name="point") for v in self.model_variables]
        self.steps = tf.Variable(0.0, dtype=dtype, trainable=False, name="steps_since_restart")
        # The largest move of the proximal point in the last step, and the largest
        # coefficient: the loop stops when the first is tiny beside the second.
        self.change = tf.Variable(tf.zeros([], dtype), trainable=False, name="change")
        self.size = tf.Variable(tf.zeros([], dtype), trainable=False, name="size")

    def start(self):
        """Restart from where the model is (a warm start, or new thresholds)."""
        for point, variable in zip(self.point, self.model_variables):
            point.assign(variable)
        self.steps.assign(tf.zeros_like(self.steps))

    def direction(self, gradients):
        rate = self.learning_rate
        here = [v.read_value() for v in self.model_variables]
        thresholds = [self.l1] + [tf.zeros_like(v) for v in here[1:]]  # [W, b]: b is never penalized
        new = []
        for y, g, t in zip(here, gradients, thresholds):
            z = y - rate * g
            new.append(tf.sign(z) * tf.maximum(tf.abs(z) - rate * t, 0))
        dot = lambda a, b: tf.add_n([tf.reduce_sum(u * v) for u, v in zip(a, b)])  # noqa: E731
        moves = [x - old for x, old in zip(new, self.point)]
        against = dot([y - x for y, x in zip(here, new)], moves) > 0
        self.steps.assign(tf.where(against, tf.zeros_like(self.steps), self.steps + 1))
        beta = self.steps / (self.steps + 3.0)
        self.change.assign(tf.reduce_max(tf.stack([tf.reduce_max(tf.abs(m)) for m in moves])))
        self.size.assign(tf.reduce_max(tf.stack([tf.reduce_max(tf.abs(x)) for x in new])))
        for point, x in zip(self.point, new):
            point.assign(x)
        return [(y - (x + beta * m)) / rate for y, x, m in zip(here, new, moves)]

    @staticmethod
    def tuned(largest, smallest=None):
        # 1/λ_max: the rate for which the proximal step provably never raises
        # the penalized loss, which FISTA's guarantee assumes.
        return {"learning_rate": 1.0 / largest}

    def stable_rate(self, largest):
        return 4.0 / (3.0 * largest)  # as RestartedNesterov: its limit at beta = 1
