"""Every way of running the loop gives the eager loop's answer.

The compiled modes change how the loop runs, never what it computes: the
history (loss, W, b and both gradients per epoch) and the final W and b must
match the eager run to float32 rounding, with and without momentum, and a
diverging run must be caught in every mode. Nothing here is timed.
"""
import numpy as np
import pytest
import tensorflow as tf

from conftest import train

from linreg.core.model import LinearModel
from linreg.core.optimizers import Momentum, Nesterov
from linreg.engine import driver
from linreg.errors import DivergenceError, LinregError

COMPILED = ("function", "xla")


def data(n=200, d=3, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    W = np.linspace(-2.0, 3.0, d).astype(np.float32)
    y = (x @ W + 0.5 + 0.1 * rng.standard_normal(n)).astype(np.float32)
    return tf.constant(x), tf.constant(y)


def run(mode, x, y, rate=0.1, epochs=40, tol=0.0, momentum=None):
    model = LinearModel(int(x.shape[1]))
    rule = None
    if momentum is not None:
        rule = (Nesterov if momentum.get("nesterov") else Momentum)(model, rate, momentum["beta"])
    result = train(model, x, y, rate, epochs, tol=tol, optimizer=rule, compile=mode)
    return result, model


def assert_same(result, model, reference, reference_model):
    assert result.epochs == reference.epochs
    for name in ("loss", "gradient_norm", "W", "b"):
        np.testing.assert_allclose(
            getattr(result.history, name), getattr(reference.history, name), rtol=1e-5, atol=1e-6, err_msg=name
        )
    np.testing.assert_allclose(model.W.numpy(), reference_model.W.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.b.numpy(), reference_model.b.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", COMPILED)
@pytest.mark.parametrize(
    "momentum", [None, {"beta": 0.9}, {"beta": 0.8, "nesterov": True}], ids=["plain", "heavy-ball", "nesterov"]
)
def test_compiled_history_matches_eager(mode, momentum):
    x, y = data()
    reference, reference_model = run("none", x, y, momentum=momentum)
    result, model = run(mode, x, y, momentum=momentum)
    assert result.compile == mode
    assert_same(result, model, reference, reference_model)


@pytest.mark.parametrize("mode", COMPILED)
def test_single_feature_matches_eager(mode):
    x, y = data(n=1000, d=1, seed=2)
    reference, reference_model = run("none", x, y, rate=0.3, epochs=25)
    result, model = run(mode, x, y, rate=0.3, epochs=25)
    assert_same(result, model, reference, reference_model)


@pytest.mark.parametrize("mode", COMPILED)
def test_convergence_stops_at_the_same_epoch(mode):
    x, y = data(seed=3)
    reference, reference_model = run("none", x, y, epochs=500, tol=1e-3)
    result, model = run(mode, x, y, epochs=500, tol=1e-3)
    assert reference.converged and result.converged
    assert_same(result, model, reference, reference_model)


@pytest.mark.parametrize("mode", driver.COMPILE_MODES)
def test_divergence_is_caught_in_every_mode(mode):
    x, y = data(seed=4)
    with pytest.raises(DivergenceError, match="diverged"):
        run(mode, x, y, rate=5.0, epochs=200)


def test_compile_choices():
    assert driver.COMPILE_CHOICES == ("auto", "none", "function", "xla")
    x, y = data(n=20, d=1)
    with pytest.raises(LinregError, match="compile must be one of auto, none, function, xla"):
        run("jit", x, y)


def test_auto_resolves_by_problem_size_and_length():
    resolve = driver.resolve_compile
    # A short run: compiling would cost more than it saves.
    assert resolve("auto", 1_000, 1, 50) == "none"
    assert resolve("auto", 1_000, 16, 200) == "none"
    assert resolve("auto", 10_000_000, 16, 5) == "none"
    # Long enough to repay the compile: on large data that takes few epochs.
    assert resolve("auto", 1_000, 1, 10_000) == "xla"
    assert resolve("auto", 1_000, 16, 10_000) == "xla"
    assert resolve("auto", 10_000_000, 1, 50) == "xla"
    # Dominated by a large matrix-vector product: the graph's kernels.
    assert resolve("auto", 10_000_000, 16, 50) == "function"
    assert resolve("auto", 100_000, 16, 10_000) == "xla"
    # An explicit choice is kept as it is.
    for mode in driver.COMPILE_MODES:
        assert resolve(mode, 10, 1, 1) == mode


def test_auto_is_the_default_and_reports_what_ran():
    x, y = data(n=50, d=2)
    model = LinearModel(2)
    result = train(model, x, y, 0.1, 10)
    assert result.compile == "none"
    reference, _ = run("none", x, y, epochs=10)
    np.testing.assert_allclose(result.history.loss, reference.history.loss, rtol=1e-6)
