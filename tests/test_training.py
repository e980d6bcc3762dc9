"""The step and the loop: the tape's gradients, convergence, divergence, reproducibility."""
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conftest import train

from linreg.analysis.curvature import hessian, largest_eigenvalue
from linreg.analysis.ols import least_squares
from linreg.core.model import LinearModel
from linreg.core.optimizers import GradientDescent, Momentum, Nesterov
from linreg.core.step import loss_and_gradients, train_step
from linreg.core.training import STALLED, LoopState, train_plainly
from linreg.data.synthetic import synthetic
from linreg.errors import DivergenceError


def max_stable_learning_rate(x, y):
    return GradientDescent(LinearModel(1), 0.1).stable_rate(largest_eigenvalue(x, y))

finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False)


@st.composite
def problems(draw):
    n = draw(st.integers(1, 40))
    d = draw(st.integers(1, 4))
    x = draw(arrays(np.float64, (n, d), elements=finite))
    y = draw(arrays(np.float64, (n,), elements=finite))
    W = draw(arrays(np.float64, (d,), elements=finite))
    b = draw(finite)
    return x, y, W, b


@settings(max_examples=60, deadline=None)
@given(problems())
def test_tape_gradients_equal_the_analytic_gradients(problem):
    x, y, W, b = problem
    model = LinearModel(x.shape[1], W=W, b=b, dtype=tf.float64)
    loss, (dW, db) = loss_and_gradients(model, tf.constant(x), tf.constant(y))

    residual = y - (x @ W + b)
    expected_dW = -2 * np.mean(x * residual[:, None], axis=0)  # -2·mean(x·(y - ŷ))
    expected_db = -2 * np.mean(residual)  # -2·mean(y - ŷ)
    scale = 1 + np.max(np.abs(x)) * np.max(np.abs(residual))
    np.testing.assert_allclose(loss.numpy(), np.mean(residual**2), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(dW.numpy(), expected_dW, rtol=1e-9, atol=1e-12 * scale)
    np.testing.assert_allclose(db.numpy(), expected_db, rtol=1e-9, atol=1e-12 * scale)


def test_a_step_moves_each_variable_against_its_gradient():
    x, y = synthetic(100, seed=3)
    model = LinearModel(1, W=5.0, b=0.0)
    W0, b0 = model.W.numpy().copy(), model.b.numpy().copy()
    loss, (dW, db) = train_step(model, GradientDescent(model, 0.1), x, y)
    np.testing.assert_allclose(model.W.numpy(), W0 - 0.1 * dW.numpy(), rtol=1e-6)
    np.testing.assert_allclose(model.b.numpy(), b0 - 0.1 * db.numpy(), rtol=1e-6)
    assert float(loss_and_gradients(model, x, y)[0]) < float(loss)


def test_without_noise_training_recovers_the_true_line():
    x, y = synthetic(1000, true_w=3.0, true_b=2.0, noise=0.0, seed=4)
    model = LinearModel(1, W=5.0)
    train(model, x, y, learning_rate=0.1, epochs=300)
    assert abs(model.W.numpy()[0] - 3.0) < 1e-4
    assert abs(model.b.numpy() - 2.0) < 1e-4


def test_with_noise_training_reaches_the_least_squares_solution():
    x, y = synthetic(1000, noise=1.0, seed=5)
    W_ls, b_ls = least_squares(x, y)
    model = LinearModel(1, W=5.0)
    result = train(model, x, y, learning_rate=0.1, epochs=300)
    assert abs(model.W.numpy()[0] - W_ls[0]) < 1e-4
    assert abs(model.b.numpy() - b_ls) < 1e-4
    # ... which is not the true line: the noise moved the best fit.
    assert abs(W_ls[0] - 3.0) > 1e-3 or abs(b_ls - 2.0) > 1e-3
    assert result.history.loss[-1] <= result.history.loss[0]


def test_least_squares_matches_numpy():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(200, 3)) * [1.0, 10.0, 0.1]
    y = x @ [1.0, -2.0, 3.0] + 0.5 + rng.normal(size=200)
    W, b = least_squares(x, y)
    expected = np.linalg.lstsq(np.column_stack([x, np.ones(200)]), y, rcond=None)[0]
    np.testing.assert_allclose(np.append(W, b), expected, rtol=1e-10)


def test_hessian_from_nested_tapes_is_two_over_n_times_the_gram_matrix():
    rng = np.random.default_rng(7)
    x = rng.normal(size=(50, 2))
    y = rng.normal(size=50)
    design = np.column_stack([x, np.ones(50)])
    np.testing.assert_allclose(hessian(x, y), 2 / 50 * design.T @ design, rtol=1e-12)
    np.testing.assert_allclose(
        max_stable_learning_rate(x, y), 2 / np.linalg.eigvalsh(2 / 50 * design.T @ design)[-1], rtol=1e-12
    )


@pytest.mark.parametrize("factor", [0.95, 1.05])
def test_the_computed_bound_separates_convergence_from_divergence(factor):
    x, y = synthetic(500, seed=8)
    bound = max_stable_learning_rate(x, y)
    model = LinearModel(1, W=5.0)
    if factor < 1:
        train(model, x, y, learning_rate=factor * bound, epochs=600)
        W_ls, b_ls = least_squares(x, y)
        assert abs(model.W.numpy()[0] - W_ls[0]) < 1e-3
        assert abs(model.b.numpy() - b_ls) < 1e-3
    else:
        with pytest.raises(DivergenceError) as caught:
            train(model, x, y, learning_rate=factor * bound, epochs=600)
        message = str(caught.value)
        assert "diverged at epoch" in message and f"{bound:.4g}" in message
        assert caught.value.exit_code == 3
        suggested = float(message.rsplit("--learning-rate ", 1)[1])
        assert suggested < bound
        train(LinearModel(1, W=5.0), x, y, learning_rate=suggested, epochs=100)  # and it works


def test_an_infinite_loss_stops_training_at_once():
    x, y = synthetic(100, seed=9)
    with pytest.raises(DivergenceError) as caught:
        train(LinearModel(1, W=5.0), x, y, learning_rate=1e6, epochs=1000)
    history = caught.value.history
    assert len(history.loss) < 200 and not np.isfinite(history.loss[-1])


def test_the_same_seed_gives_an_identical_history():
    def history(seed):
        x, y = synthetic(300, seed=seed)
        return train(LinearModel(1, W=5.0), x, y, learning_rate=0.1, epochs=20).history

    first, again, other = history(11), history(11), history(12)
    for name in ("loss", "gradient_norm", "W", "b"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.loss, other.loss)


def test_history_records_the_start_and_every_epoch():
    x, y = synthetic(100, seed=13)
    result = train(LinearModel(1, W=5.0, b=0.0), x, y, learning_rate=0.1, epochs=7)
    h = result.history
    assert result.epochs == 7 and len(h.loss) == 8 and h.W.shape == (8, 1)
    assert h.W[0, 0] == 5.0 and h.b[0] == 0.0
    # entry k+1 is entry k moved against the analytic gradient at entry k
    x, y = x.numpy().astype(np.float64), y.numpy().astype(np.float64)
    residual = y[None, :] - (h.W[:, :1] * x[None, :, 0] + h.b[:, None])
    grad_W, grad_b = -2 * np.mean(x[None, :, 0] * residual, axis=1), -2 * np.mean(residual, axis=1)
    np.testing.assert_allclose(h.W[1:, 0], h.W[:-1, 0] - 0.1 * grad_W[:-1], rtol=1e-5)
    np.testing.assert_allclose(h.b[1:], h.b[:-1] - 0.1 * grad_b[:-1], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h.gradient_norm, np.hypot(grad_W, grad_b), rtol=1e-4)


@pytest.mark.parametrize("nesterov", [False, True])
def test_momentum_reaches_least_squares_and_stops_on_tolerance(nesterov):
    x, y = synthetic(400, seed=14)
    W_ls, b_ls = least_squares(x, y)
    model = LinearModel(1, W=5.0)
    rule = (Nesterov if nesterov else Momentum)(model, 0.1, 0.5)
    result = train(model, x, y, 0.1, 1000, tol=1e-6, optimizer=rule)
    assert result.converged and result.epochs < 1000
    assert abs(model.W.numpy()[0] - W_ls[0]) < 1e-4 and abs(model.b.numpy() - b_ls) < 1e-4
    assert result.history.gradient_norm[-2] <= 1e-6 * result.history.gradient_norm[0]


def test_a_blow_up_below_the_bound_is_not_blamed_on_the_rate():
    x, y = synthetic(100, seed=15)
    y = y * 1e20  # its square overflows float32: the loss is infinite at once
    bound = max_stable_learning_rate(x, y)
    with pytest.raises(DivergenceError) as caught:
        train(LinearModel(1), x, y, learning_rate=0.1, epochs=10)
    message = str(caught.value)
    assert "diverged at epoch 1" in message and "below" in message and "above" not in message
    assert float(message.rsplit("--learning-rate ", 1)[1]) == pytest.approx(min(bound, 0.1) / 2, rel=1e-2)


def test_the_plain_loop_and_the_chunked_loop_take_the_same_steps():
    x, y = synthetic(200, seed=16)
    plain, chunked = LinearModel(1, W=5.0), LinearModel(1, W=5.0)
    losses, W, b = zip(*train_plainly(plain, GradientDescent(plain, 0.1), x, y, 30))
    result = train(chunked, x, y, 0.1, 30, compile="none")
    np.testing.assert_array_equal(result.history.loss[:-1], np.array(losses, np.float32))
    np.testing.assert_array_equal(result.history.W[:-1], np.array(W))
    np.testing.assert_array_equal(result.history.b[:-1], np.array(b))
    np.testing.assert_array_equal(plain.W.numpy(), chunked.W.numpy())
    np.testing.assert_array_equal(plain.b.numpy(), chunked.b.numpy())


def test_the_compiled_loop_records_every_epoch_of_a_wide_model():
    """Under XLA the history travels as one row per epoch: each column must land where it belongs."""
    rng = np.random.default_rng(18)
    x, y = rng.normal(size=(150, 3)), rng.normal(size=150)
    result = train(LinearModel(3, W=[1.0, -2.0, 0.5], b=0.25, dtype=tf.float64), tf.constant(x), tf.constant(y),
                   0.05, 12, compile="xla")
    h = result.history
    assert result.compile == "xla" and result.epochs == 12 and h.W.shape == (13, 3)
    assert list(h.W[0]) == [1.0, -2.0, 0.5] and h.b[0] == 0.25
    # every row from numpy's own gradient at the row before it
    residual = y[None, :] - (h.W @ x.T + h.b[:, None])
    grad_W, grad_b = -2 * residual @ x / len(y), -2 * residual.mean(axis=1)
    np.testing.assert_allclose(h.loss, (residual**2).mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(h.gradient_norm, np.sqrt((grad_W**2).sum(axis=1) + grad_b**2), rtol=1e-12)
    np.testing.assert_allclose(h.W[1:], h.W[:-1] - 0.05 * grad_W[:-1], rtol=1e-12)
    np.testing.assert_allclose(h.b[1:], h.b[:-1] - 0.05 * grad_b[:-1], rtol=1e-12)


@pytest.mark.parametrize("mode", ["none", "xla"])
def test_a_run_with_no_epoch_to_run_records_where_it_stands(mode):
    """No chunk runs, so none measures the final state: the driver does."""
    x, y = synthetic(50, seed=19)
    result = train(LinearModel(1, W=2.0, b=0.5), x, y, 0.1, 0, compile=mode)
    x, y = x.numpy()[:, 0].astype(np.float64), y.numpy().astype(np.float64)
    residual = y - (2.0 * x + 0.5)
    assert result.epochs == 0 and len(result.history) == 1
    assert result.loss == pytest.approx(np.mean(residual**2), rel=1e-5)
    assert result.history.gradient_norm[0] == pytest.approx(np.hypot(2 * np.mean(x * residual), 2 * residual.mean()),
                                                            rel=1e-4)


def test_the_packed_loop_state_unpacks_to_every_value_in_its_type():
    state = LoopState(tf.float64)
    values = {"epoch": 2**40 + 3, "status": STALLED, "growth": 5, "stall": 7, "previous_loss": 1.5,
              "first_loss": 2.5, "first_gradient_norm": np.inf, "best_gradient_norm": 4.5}
    state.write({name: tf.constant(value, getattr(state, name).dtype) for name, value in values.items()})
    unpacked = state.unpack(state.pack(state.read()))
    assert sorted(unpacked) == sorted(values)
    for name, value in values.items():
        assert unpacked[name].dtype == getattr(state, name).dtype and unpacked[name].numpy() == value, name
    state.reset()
    assert all(int(getattr(state, name)) == 0 for name in LoopState.COUNTERS)
    assert all(np.isinf(getattr(state, name).numpy()) for name in LoopState.NUMBERS)


@pytest.mark.parametrize("rule", ["gd", "momentum", "cg"])
def test_a_model_without_intercept_trains_a_line_through_the_origin(rule):
    from linreg.analysis.curvature import hessian_vector_product
    from linreg.core.optimizers import ConjugateGradients

    rng = np.random.default_rng(17)
    x = rng.normal(size=(80, 2)) + 3.0  # off-centre: an intercept would matter
    y = x @ [1.5, -0.5] + 2.0 + rng.normal(size=80)
    expected = np.linalg.lstsq(x, y, rcond=None)[0]  # through the origin
    x, y = tf.constant(x), tf.constant(y)
    model = LinearModel(2, dtype=tf.float64, intercept=False)
    assert [v.name.split(":")[0] for v in model.trainable_variables] == ["W"]
    optimizer = {
        "gd": lambda: GradientDescent(model, 0.02),
        "momentum": lambda: Momentum(model, 0.02, 0.5),
        "cg": lambda: ConjugateGradients(model, lambda *v: hessian_vector_product(model, x, y, *v)),
    }[rule]()
    result = train(model, x, y, 0.02, 20_000, tol=1e-12, optimizer=optimizer, compile="none" if rule == "cg" else "auto")
    assert result.converged
    np.testing.assert_allclose(model.W.numpy(), expected, rtol=1e-8)
    assert model.b.numpy() == 0.0


# --- the default method's accounting: epochs, rounds, history, names -------------------


def round_bowl(n=120, d=3, seed=21):
    """Columns centred, orthogonal and of one length: standardized, the loss's bowl is round (κ = 1)."""
    rng = np.random.default_rng(seed)
    columns = rng.normal(size=(n, d))
    q, _ = np.linalg.qr(columns - columns.mean(axis=0))  # combinations of centred columns: centred too
    x = q * 10.0 + 3.0
    return x, x @ np.arange(1.0, d + 1) + 0.5 + rng.normal(size=n)


@pytest.fixture
def steps(monkeypatch):
    """How many times a rule moved the model: every step, of the loop and of the refinement, asks its direction."""
    calls = []
    direction = GradientDescent.direction

    def counted(self, gradients):
        calls.append(1)
        return direction(self, gradients)

    monkeypatch.setattr(GradientDescent, "direction", counted)
    return calls


def test_the_default_counts_the_steps_it_took_on_a_round_bowl(steps):
    import linreg

    x, y = round_bowl()
    fit = linreg.fit((x, y), compile="none", progress=False)
    assert fit.condition_number == pytest.approx(1.0, abs=1e-12)
    rounds = fit.history["round"]
    assert fit.converged and fit.epochs == len(steps) == len(rounds) - 1  # a row per step, and the end
    # One step lands, one more sees it landed, and a step for each refinement round.
    assert np.count_nonzero(rounds[:-1] == 0) == 2
    assert fit.epochs == 2 + fit.solution.rounds - 1 < 10


def test_epochs_cap_the_whole_run_refinement_included(steps):
    import linreg

    x, y = round_bowl()
    full = linreg.fit((x, y), compile="none", progress=False)
    for cap in range(1, full.epochs + 2):
        steps.clear()
        fit = linreg.fit((x, y), compile="none", progress=False, epochs=cap)
        assert fit.epochs == len(steps) == min(cap, full.epochs)
        assert fit.converged == (cap >= full.epochs)
    short = linreg.fit((x, y), compile="none", progress=False, epochs=full.epochs - 1)
    assert "NOT converged after" in short.summary() and "the epoch cap stopped the refinement" in short.summary()


def test_the_cli_exits_4_when_the_cap_stops_the_refinement(tmp_path, capsys):
    from linreg.cli import main

    x, y = round_bowl()
    path = tmp_path / "round.csv"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="a,b,c,y", comments="", fmt="%.17g")
    assert main(["fit", str(path), "--target", "y", "--epochs", "3", "--quiet"]) == 4
    assert "the epoch cap stopped the refinement after 1 round," in capsys.readouterr().out


def test_the_history_holds_every_round_with_the_least_squares_loss():
    import linreg

    x, y = round_bowl(seed=22)
    fit = linreg.fit((x, y), progress=False)
    h, scaled = fit.result.history, fit.scaled
    rounds = fit.solution.rounds - 1
    assert rounds >= 2 and len(h.loss) == fit.epochs + 1
    np.testing.assert_array_equal(h.round, [0, 0, *range(1, rounds + 1), rounds])
    # Each row's loss is the standardized least-squares loss at its W and b, in float64.
    residuals = scaled.y[None, :] - (h.W @ scaled.x.T + h.b[:, None])
    np.testing.assert_allclose(h.loss, np.mean(residuals**2, axis=1), rtol=1e-12)
    # After the landing step W is the least-squares answer of the standardized data.
    expected = np.linalg.lstsq(scaled.x, scaled.y, rcond=None)[0]
    np.testing.assert_allclose(h.W[1], expected, rtol=1e-12)
    # Fit.history keeps every row and says which round took it.
    assert len(fit.history["loss"]) == len(h.loss) and list(fit.history["round"]) == list(h.round)


@pytest.mark.parametrize("optimizer, name", [("auto", "orthogonal + refinement"), ("gd", "gd"),
                                             ("momentum", "momentum"), ("cg", "cg")])
def test_the_report_names_the_method_that_ran(optimizer, name):
    import linreg

    x, y = round_bowl(seed=23)
    text = linreg.fit((x, y), optimizer=optimizer, progress=False).summary()
    header = next(line for line in text.splitlines() if "beside the closed-form" in line)
    assert header == f"{name} beside the closed-form least-squares solution (float64):"
    assert "gradient descent beside" not in text
    if optimizer == "auto":
        assert "orthogonalized by QR, where descent from zero landed in 1 step" in text


def test_nesterov_without_the_smallest_eigenvalue_is_named_as_restarted():
    from linreg.core import optimizers
    from linreg.engine import solve

    model = LinearModel(2, dtype=tf.float64)
    rule = solve.make("nesterov", model, largest=4.0, smallest=None)
    assert type(rule) is optimizers.RestartedNesterov
    solution = solve.Solution(np.zeros(2), 0.0, None, rule, "nesterov", 1)
    assert solution.name == "nesterov with restarts"
    tuned = solve.make("nesterov", model, largest=4.0, smallest=1.0)
    assert solve.Solution(np.zeros(2), 0.0, None, tuned, "nesterov", 1).name == "nesterov"
