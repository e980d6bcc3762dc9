"""The learning rules (core/optimizers.py): a new rule through the registry,
each rule's step against its recursion computed in numpy, the tuned settings
and the divergence bound against the iteration's own spectral radius and
against training, and the rules' state in checkpoints."""
import math

import numpy as np
import pytest
import tensorflow as tf

from conftest import train

import linreg
from linreg.core import optimizers
from linreg.core.model import LinearModel
from linreg.core.step import train_step
from linreg.errors import DivergenceError

NAMES = ["gd", "momentum", "nesterov"]


def lstsq(x, y):
    A = np.column_stack([np.ones(len(y)), x])
    return np.linalg.lstsq(A, y, rcond=None)[0]


def standardized(x, y):
    """Centred and divided by the (population) standard deviation, in numpy."""
    return (x - x.mean(axis=0)) / x.std(axis=0), (y - y.mean()) / y.std()


def hessian_eigenvalues(x):
    """Eigenvalues of the mean squared error's Hessian 2/N [x 1]ᵀ[x 1], ascending."""
    A = np.column_stack([x, np.ones(len(x))])
    return np.linalg.eigvalsh(2.0 / len(x) * A.T @ A)


def rule_settings(name, learning_rate, beta=0.7):
    return {"learning_rate": learning_rate} if name == "gd" else {"learning_rate": learning_rate, "beta": beta}


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((50, 2)) @ np.array([[1.0, 0.7], [0.0, 1.0]]) * np.array([3.0, 0.5]) + np.array([1.0, -2.0])
    y = x @ np.array([2.0, -4.0]) + 1.5 + 0.3 * rng.standard_normal(50)
    return x, y


# --- a new rule through the registry ------------------------------------------------


class Averaged(optimizers.GradientDescent):
    """Heavy ball with an exponential average instead of a sum:
        average <- beta · average + (1 - beta) · gradient,  direction = average.
    The same iteration as Momentum with rate·(1 - beta), so the same tuning and
    bound with the rate divided by (1 - beta). Counts its calls in a variable."""

    def __init__(self, model, learning_rate, beta):
        super().__init__(model, learning_rate)
        dtype = model.W.dtype
        self.beta = tf.Variable(beta, dtype=dtype, trainable=False, name="beta")
        self.average = [tf.Variable(tf.zeros_like(v), trainable=False, name="average") for v in (model.W, model.b)]
        self.calls = tf.Variable(0, dtype=tf.int64, trainable=False, name="calls")

    def direction(self, gradients):
        self.calls.assign_add(1)
        for average, gradient in zip(self.average, gradients):
            average.assign(self.beta * average + (1 - self.beta) * gradient)
        return [average.read_value() for average in self.average]

    @staticmethod
    def tuned(largest, smallest):
        largest *= 1.1
        root_kappa = math.sqrt(largest / smallest)
        beta = ((root_kappa - 1.0) / (root_kappa + 1.0)) ** 2
        rate = 4.0 / (math.sqrt(largest) + math.sqrt(smallest)) ** 2
        return {"learning_rate": rate / (1.0 - beta), "beta": beta}

    def stable_rate(self, largest):
        beta = float(self.beta)
        return 2.0 * (1.0 + beta) / ((1.0 - beta) * largest)


def test_a_rule_added_to_the_registry_is_used_by_fit(problem, monkeypatch):
    x, y = problem
    with pytest.raises(linreg.LinregError, match="optimizer"):
        linreg.fit((x, y), optimizer="mine", dtype="float64", progress=False)
    monkeypatch.setitem(optimizers.REGISTRY, "mine", Averaged)

    fit = linreg.fit((x, y), optimizer="mine", dtype="float64", progress=False)
    assert fit.converged
    np.testing.assert_allclose(list(fit.coefficients.values()), lstsq(x, y), rtol=1e-9)
    # Its direction ran once per epoch, compiled or not.
    assert fit.epochs > 1
    assert int(fit.optimizer.calls) == fit.epochs
    # Its settings are its own tuning from the Hessian's extreme eigenvalues.
    eigenvalues = hessian_eigenvalues(standardized(x, y)[0])
    settings = Averaged.tuned(eigenvalues[-1], eigenvalues[0])
    assert float(fit.optimizer.learning_rate) == pytest.approx(settings["learning_rate"], rel=1e-9)
    assert float(fit.optimizer.beta) == pytest.approx(settings["beta"], rel=1e-9)
    assert fit.to_dict()["optimizer"] == "mine"


def test_the_first_step_of_the_added_rule_is_damped_by_1_minus_beta(problem, monkeypatch):
    """From W = b = 0 momentum moves by rate·g; the averaged rule by rate·(1 - beta)·g."""
    x, y = problem
    monkeypatch.setitem(optimizers.REGISTRY, "mine", Averaged)
    xs, ys = standardized(x, y)
    g_W = -2.0 * np.mean(xs * ys[:, None], axis=0)  # the gradient at W = b = 0 (ŷ = 0); its b part is 0
    for name, damping in (("mine", True), ("momentum", False)):
        fit = linreg.fit((x, y), optimizer=name, dtype="float64", epochs=1, progress=False)
        rate, beta = float(fit.optimizer.learning_rate), float(fit.optimizer.beta)
        factor = rate * (1.0 - beta) if damping else rate
        W = -factor * g_W  # standardized coefficients after the step, in original units:
        W = W * y.std() / x.std(axis=0)
        expected = np.concatenate([[y.mean() - W @ x.mean(axis=0)], W])
        np.testing.assert_allclose(fit.history["coefficients"][1], expected, rtol=1e-12)
        np.testing.assert_allclose(list(fit.coefficients.values()), expected, rtol=1e-12)
        if damping:
            assert int(fit.optimizer.calls) == 1


# --- one step of each rule, against its recursion in numpy ----------------------------


@pytest.mark.parametrize("name", NAMES)
def test_train_step_moves_by_rate_times_direction(problem, name):
    x, y = problem
    W, b = np.array([0.5, -1.0]), 0.25
    rate, beta = 0.01, 0.7
    model = LinearModel(2, W=W, b=b, dtype=tf.float64)
    rule = optimizers.REGISTRY[name](model, **rule_settings(name, rate, beta))
    v_W, v_b = np.zeros(2), 0.0
    for _ in range(3):
        residual = y - (x @ W + b)
        g_W = -2.0 * np.mean(x * residual[:, None], axis=0)  # -2·mean(x·(y - ŷ))
        g_b = -2.0 * np.mean(residual)  # -2·mean(y - ŷ)
        if name == "gd":
            d_W, d_b = g_W, g_b
        else:
            v_W, v_b = beta * v_W + g_W, beta * v_b + g_b  # velocity <- beta·velocity + gradient
            if name == "momentum":
                d_W, d_b = v_W, v_b
            else:  # Nesterov: the gradient plus beta times the new velocity
                d_W, d_b = g_W + beta * v_W, g_b + beta * v_b
        W, b = W - rate * d_W, b - rate * d_b

        loss, (dW, db) = train_step(model, rule, tf.constant(x), tf.constant(y))
        np.testing.assert_allclose(loss.numpy(), np.mean(residual**2), rtol=1e-12)
        np.testing.assert_allclose(dW.numpy(), g_W, rtol=1e-12)
        np.testing.assert_allclose(db.numpy(), g_b, rtol=1e-12)
        np.testing.assert_allclose(model.W.numpy(), W, rtol=1e-12)
        np.testing.assert_allclose(model.b.numpy(), b, rtol=1e-12)
        if name != "gd":
            np.testing.assert_allclose(rule.velocity[0].numpy(), v_W, rtol=1e-12)
            np.testing.assert_allclose(rule.velocity[1].numpy(), v_b, rtol=1e-12)


# --- tuned settings and the divergence bound -----------------------------------------


def iteration_matrix(name, rate, beta, eigenvalue):
    """The map (error, velocity) -> next along one eigen-direction of curvature λ,
    written from the rule's definition: g = λ·error, then the rule's step."""
    h = rate * eigenvalue
    if name == "gd":
        return np.array([[1.0 - h]])
    if name == "momentum":  # v' = beta·v + λe;  e' = e - rate·v'
        return np.array([[1.0 - h, -rate * beta], [eigenvalue, beta]])
    # Nesterov: v' = beta·v + λe;  e' = e - rate·(λe + beta·v')
    return np.array([[1.0 - h - beta * h, -rate * beta**2], [eigenvalue, beta]])


def spectral_radius(name, rate, beta, eigenvalues):
    return max(np.max(np.abs(np.linalg.eigvals(iteration_matrix(name, rate, beta, lam)))) for lam in eigenvalues)


def known_quadratic(curvatures=(4.0, 0.25), n=60, seed=3):
    """Two features whose loss has Hessian eigenvalues exactly 2·curvatures and 2.

    Columns orthogonal to each other and to the constant (so centred), scaled
    so that xᵀx/N = diag(curvatures): the Hessian 2/N [x 1]ᵀ[x 1] is then
    diag(2·curvatures, 2)."""
    rng = np.random.default_rng(seed)
    raw = rng.standard_normal((n, 2))
    q, _ = np.linalg.qr(np.column_stack([np.ones(n), raw]))
    x = q[:, 1:] * np.sqrt(n * np.asarray(curvatures))
    y = x @ np.array([1.5, -3.0]) + 0.7 + 0.2 * rng.standard_normal(n)
    return x, y


def test_the_known_quadratic_has_the_eigenvalues_it_should():
    x, _ = known_quadratic()
    np.testing.assert_allclose(hessian_eigenvalues(x), [0.5, 2.0, 8.0], rtol=1e-12)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kappa", [1.0, 1.5, 16.0, 1e3, 1e6, 1e12])
def test_tuned_rate_is_below_the_bound_and_contracts(name, kappa):
    largest = 8.0
    smallest = largest / kappa
    rule = optimizers.REGISTRY[name]
    settings = rule.tuned(largest, smallest)
    optimizer = rule(LinearModel(2, dtype=tf.float64), **settings)
    assert 0 < settings["learning_rate"] < optimizer.stable_rate(largest)
    beta = settings.get("beta", 0.0)
    assert 0 <= beta < 1
    radius = spectral_radius(name, settings["learning_rate"], beta, [smallest, largest, math.sqrt(smallest * largest)])
    assert radius < 1


@pytest.mark.parametrize("name", NAMES)
def test_stable_rate_is_where_the_iteration_stops_contracting(name):
    """Along the steepest direction the spectral radius is below 1 just under
    the bound and above 1 just over it (numpy's eigenvalues of the step's map)."""
    largest = 8.0
    for beta in (0.0, 0.3, 0.7, 0.95) if name != "gd" else (0.0,):
        rule = optimizers.REGISTRY[name](LinearModel(2, dtype=tf.float64), **rule_settings(name, 0.1, beta))
        bound = rule.stable_rate(largest)
        assert spectral_radius(name, 0.999 * bound, beta, [largest]) < 1
        assert spectral_radius(name, 1.001 * bound, beta, [largest]) > 1


@pytest.mark.parametrize("name", NAMES)
def test_tuned_settings_converge_on_the_known_quadratic(name):
    x, y = known_quadratic()
    eigenvalues = [0.5, 2.0, 8.0]
    rule = optimizers.REGISTRY[name]
    model = LinearModel(2, dtype=tf.float64)
    optimizer = rule(model, **rule.tuned(eigenvalues[-1], eigenvalues[0]))
    result = train(model, x, y, None, 20_000, tol=1e-13, compile="function", optimizer=optimizer)
    assert result.converged
    expected = lstsq(x, y)
    np.testing.assert_allclose(np.concatenate([[model.b.numpy()], model.W.numpy()]), expected, rtol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_training_diverges_just_above_stable_rate_and_not_just_below(name):
    x, y = known_quadratic()
    eigenvalues = [0.5, 2.0, 8.0]
    rule = optimizers.REGISTRY[name]
    settings = rule.tuned(eigenvalues[-1], eigenvalues[0])
    bound = rule(LinearModel(2, dtype=tf.float64), **settings).stable_rate(eigenvalues[-1])

    model = LinearModel(2, dtype=tf.float64)
    below = rule(model, **{**settings, "learning_rate": 0.97 * bound})
    result = train(model, x, y, None, 20_000, tol=1e-12, compile="function", optimizer=below)
    assert result.converged
    np.testing.assert_allclose(np.concatenate([[model.b.numpy()], model.W.numpy()]), lstsq(x, y), rtol=1e-8)

    model = LinearModel(2, dtype=tf.float64)
    above = rule(model, **{**settings, "learning_rate": 1.03 * bound})
    with pytest.raises(DivergenceError, match="above"):
        train(model, x, y, None, 20_000, tol=1e-12, compile="function", optimizer=above)


# --- state in variables ------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_saves_and_restores_the_rule_state(problem, name, tmp_path):
    x, y = tf.constant(problem[0]), tf.constant(problem[1])
    model = LinearModel(2, dtype=tf.float64)
    rule = optimizers.REGISTRY[name](model, **rule_settings(name, 0.02, 0.6))
    for _ in range(4):
        train_step(model, rule, x, y)
    saved = [variable.numpy().copy() for variable in rule.variables]
    assert len(saved) == (1 if name == "gd" else 4)  # rate; beta, velocity of W and of b
    path = tf.train.Checkpoint(model=model, optimizer=rule).save(str(tmp_path / "ckpt"))
    # Two more steps from the saved state, for comparison.
    for _ in range(2):
        train_step(model, rule, x, y)
    continued = model.W.numpy().copy(), model.b.numpy().copy()

    fresh_model = LinearModel(2, W=9.0, b=-9.0, dtype=tf.float64)
    fresh = optimizers.REGISTRY[name](fresh_model, **rule_settings(name, 0.5, 0.1))
    if name != "gd":
        for velocity in fresh.velocity:
            velocity.assign(tf.ones_like(velocity) * 123.0)
    tf.train.Checkpoint(model=fresh_model, optimizer=fresh).restore(path).assert_consumed()
    assert float(fresh.learning_rate) == 0.02
    if name != "gd":
        assert float(fresh.beta) == 0.6
        assert all(np.all(velocity.numpy() != 123.0) for velocity in fresh.velocity)
    restored = [variable.numpy() for variable in fresh.variables]
    assert len(restored) == len(saved)
    for now, then in zip(restored, saved):
        np.testing.assert_array_equal(now, then)
    # The restored rule carries on exactly as the original did.
    for _ in range(2):
        train_step(fresh_model, fresh, x, y)
    np.testing.assert_array_equal(fresh_model.W.numpy(), continued[0])
    np.testing.assert_array_equal(fresh_model.b.numpy(), continued[1])
