"""Shared by the tests: TensorFlow imported once, quietly, the way the CLI does it,
and `train`, the driver with plain gradient descent as most tests use it."""
from linreg.cli import import_tensorflow_quietly

import_tensorflow_quietly()

from linreg.core.optimizers import GradientDescent  # noqa: E402
from linreg.engine import driver  # noqa: E402


def train(model, x, y, learning_rate, epochs, tol=0.0, compile="auto", optimizer=None, **kwargs):
    optimizer = GradientDescent(model, learning_rate) if optimizer is None else optimizer
    return driver.train(model, optimizer, x, y, epochs, tol=tol, compile=compile, **kwargs)
