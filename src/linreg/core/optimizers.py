"""Learning rules: which way each step goes, and how far.

Every rule is one class with the same four parts:
    its state, in `tf.Variable`s (so checkpoints save it and graphs update it);
    `direction(gradients)`: where the step goes (train_step subtracts
        learning_rate · direction with assign_sub);
    `tuned(largest, smallest)`: a learning rate (and more) that provably
        converges, from the extreme eigenvalues λ of the loss's Hessian;
    `stable_rate(largest)`: the learning rate above which it diverges.
A new rule is one more class and one line in REGISTRY.

Why the eigenvalues decide everything: the loss is a quadratic bowl, so
descent acts on each eigen-direction of its Hessian on its own. With rate r,
the distance to the bottom along a direction of curvature λ is multiplied by
(1 - r·λ) each epoch. It shrinks only while |1 - r·λ| < 1, so r < 2/λ_max;
and the flattest direction then shrinks by only 1 - λ_min/λ_max = 1 - 1/κ per
epoch: plain descent needs about κ·ln(1/ε) epochs to reach a relative error ε.
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
        # and never oscillates, and a λ_max estimated a little low (power
        # iteration approaches it from below) still leaves a factor-2 margin.
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
        self.velocity = [tf.Variable(tf.zeros_like(v), trainable=False, name="velocity") for v in (model.W, model.b)]

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


REGISTRY = {"gd": GradientDescent, "momentum": Momentum, "nesterov": Nesterov}


def make(name, model, largest=None, smallest=None, learning_rate="auto"):
    """The optimizer `name` for `model`: tuned from the curvature, with the
    learning rate replaced by the user's when one is given."""
    rule = REGISTRY[name]
    settings = rule.tuned(largest, max(smallest, largest * 1e-16)) if largest else {}
    if learning_rate != "auto":
        settings["learning_rate"] = learning_rate
    return rule(model, **settings)
