"""The exercises' solutions, and the checks of your answers.

Each exercise has a solution (one way to answer it) and a check that finds
the right answer another way -- a numpy recursion where the solution ran the
heart's loop, the heart where the solution used a formula -- so that a
wrong solution fails its check too.

    check("1.2", answer_1_2, xs=xs, ys=ys)

prints "correct" or raises AssertionError with a hint. With no answer yet
(None) it says so and moves on, so that a lesson runs top to bottom; when the
environment sets LINREG_LESSONS_SOLUTIONS=1, as the tests and lessons/run.py
do, the solution below stands in for the answer and must pass the check.
"""
import math
import os

import numpy as np


def check(exercise, answer, **data):
    solve, verify = EXERCISES[exercise]
    if answer is None:
        if os.environ.get("LINREG_LESSONS_SOLUTIONS") != "1":
            print(f"Exercise {exercise}: no answer yet. Write it in the cell above and run both cells again.")
            return
        answer, whose = solve(**data), "the solution in solutions.py"
    else:
        whose = "your answer"
    problem = verify(answer, **data)
    if problem:
        raise AssertionError(f"Exercise {exercise}: {whose} is not right yet: {problem}")
    print(f"Exercise {exercise}: {whose} is correct.")


def _off(answer, right, rtol):
    """None when answer is a number within rtol of right (relative), else a
    hint that does not give the right answer away."""
    try:
        error = (float(answer) - right) / abs(right)
    except (TypeError, ValueError):
        return f"expected a number, got {answer!r}"
    if not math.isfinite(error):
        return f"expected a finite number, got {answer!r}"
    if abs(error) <= rtol:
        return None
    return f"{answer!r} is {abs(error):.2g} (relative) too {'large' if error > 0 else 'small'}"


def _epochs_off(answer, epochs):
    """None when answer is within one epoch of epochs: float32 training, or a
    rounding, may cross a threshold one epoch apart from this float64 count."""
    return _off(answer, epochs, 1.0 / epochs)


def _one_step_by_tape(xs, ys, W, b, rate):
    import tensorflow as tf

    from linreg.core.model import LinearModel
    from linreg.core.optimizers import GradientDescent
    from linreg.core.step import train_step

    model = LinearModel(1, W=W, b=b, dtype=tf.float64)
    _, (dW, db) = train_step(model, GradientDescent(model, rate), tf.constant(xs[:, None]), tf.constant(ys))
    return float(model.W[0]), float(model.b), float(dW[0]), float(db)


# --- lesson 1 -------------------------------------------------------------------


def solve_1_1(xs, ys):
    return -2 * np.mean(ys - (0.0 * xs + 0.0))


def verify_1_1(answer, xs, ys):
    return _off(answer, _one_step_by_tape(xs, ys, 0.0, 0.0, 0.0)[3], 1e-9)


def solve_1_2(xs, ys):
    import tensorflow as tf

    from linreg.core.model import LinearModel
    from linreg.core.optimizers import GradientDescent
    from linreg.core.step import train_step

    W_ls = np.polyfit(xs, ys, 1)[0]
    x, y = tf.constant(xs[:, None], tf.float32), tf.constant(ys, tf.float32)
    model = LinearModel(1, W=5.0, b=0.0)
    optimizer = GradientDescent(model, 0.1)
    epochs = 0
    while abs(float(model.W[0]) - W_ls) >= 1e-3:
        train_step(model, optimizer, x, y)
        epochs += 1
    return epochs


def verify_1_2(answer, xs, ys):
    # Gradient descent as the float64 recursion it is: θ <- θ - r·(Hθ - g), with
    # H = 2/N·AᵀA and g = 2/N·Aᵀy for A = [x 1].
    A = np.column_stack([xs, np.ones_like(xs)])
    H, g = 2 * A.T @ A / len(ys), 2 * A.T @ ys / len(ys)
    W_ls = np.linalg.solve(H, g)[0]
    theta, epochs = np.array([5.0, 0.0]), 0
    while abs(theta[0] - W_ls) >= 1e-3:
        theta, epochs = theta - 0.1 * (H @ theta - g), epochs + 1
    return _epochs_off(answer, epochs)


def solve_1_3(xs, ys):
    error = ys - 5.0 * xs
    return 5.0 - 0.3 * (-2 * np.mean(xs * error))


def verify_1_3(answer, xs, ys):
    return _off(answer, _one_step_by_tape(xs, ys, 5.0, 0.0, 0.3)[0], 1e-9)


# --- lesson 2 -------------------------------------------------------------------


def _hessian_by_hand(xs):
    A = np.column_stack([xs, np.ones_like(xs)])
    return 2 * A.T @ A / len(xs)


def solve_2_1(xs, ys):
    from linreg.analysis.curvature import curvature

    return 2 / curvature(10 * xs[:, None], ys).largest


def verify_2_1(answer, xs, ys):
    return _off(answer, 2 / np.linalg.eigvalsh(_hessian_by_hand(10 * xs))[-1], 1e-9)


def solve_2_2(xs, ys):
    from linreg.analysis.curvature import curvature

    c = curvature(xs[:, None], ys)
    return math.ceil(math.log(1e-6) / math.log(1 - c.smallest / c.largest))


def verify_2_2(answer, xs, ys):
    # The recursion e <- (I - H/λ_max)·e, from the flattest eigen-direction.
    H = _hessian_by_hand(xs)
    lambdas, V = np.linalg.eigh(H)
    e, epochs = V[:, 0].copy(), 0
    while np.linalg.norm(e) > 1e-6:
        e, epochs = e - H @ e / lambdas[-1], epochs + 1
    return _epochs_off(answer, epochs)


def solve_2_3(xs, ys):
    from linreg.analysis.curvature import curvature

    return 2 * (1 + 0.5) / curvature(xs[:, None], ys).largest


def verify_2_3(answer, xs, ys):
    import tensorflow as tf

    from linreg.core.model import LinearModel
    from linreg.core.optimizers import Momentum
    from linreg.core.step import train_step

    if answer is None or not answer > 0:
        return f"expected a positive learning rate, got {answer}"
    x, y = tf.constant(xs[:, None]), tf.constant(ys)

    def final_loss(rate):
        model = LinearModel(1, W=5.0, b=0.0, dtype=tf.float64)
        optimizer = Momentum(model, rate, beta=0.5)
        for _ in range(300):
            loss, _ = train_step(model, optimizer, x, y)
        return float(loss)

    start = float(np.mean((ys - 5.0 * xs) ** 2))
    if not final_loss(0.97 * answer) < start:
        return "it diverges at 0.97 times your rate: the limit is lower"
    if not final_loss(1.03 * answer) > 1e3 * start:
        return "it still converges at 1.03 times your rate: the limit is higher"
    return None


# --- lesson 3 -------------------------------------------------------------------


def solve_3_1():
    rho, d = 0.9, 10
    return (1 + (d - 1) * rho) / (1 - rho)


def verify_3_1(answer):
    # The standardized Hessian is 2·diag(C, 1) with C the correlation matrix.
    C = np.full((10, 10), 0.9) + 0.1 * np.eye(10)
    eigenvalues = np.linalg.eigvalsh(2 * np.block([[C, np.zeros((10, 1))], [np.zeros((1, 10)), np.ones((1, 1))]]))
    return _off(answer, eigenvalues[-1] / eigenvalues[0], 1e-9)


def solve_3_2(x, y):
    from linreg.analysis.curvature import curvature

    kappa = curvature(x, y).condition_number
    return math.ceil(math.log(1e-4) / math.log(1 - 1 / kappa))


def verify_3_2(answer, x, y):
    # Plain descent as the float64 recursion θ <- θ - (Hθ - g)/λ_max from θ = 0.
    A = np.column_stack([x, np.ones(len(y))])
    H, g = 2 * A.T @ A / len(y), 2 * A.T @ y / len(y)
    theta_star, rate = np.linalg.solve(H, g), 1 / np.linalg.eigvalsh(H)[-1]
    theta, epochs = np.zeros(len(g)), 0
    while np.linalg.norm(theta - theta_star) > 1e-4 * np.linalg.norm(theta_star):
        theta, epochs = theta - rate * (H @ theta - g), epochs + 1
    return _off(answer, epochs, 0.1)


def solve_3_3():
    return math.sqrt(1e4) * math.log(1e6)


def verify_3_3(answer):
    import tensorflow as tf

    from linreg.core.model import LinearModel
    from linreg.core.optimizers import Nesterov
    from linreg.core.training import LoopState, run_chunk

    # Two centred orthogonal columns of root mean squares 1 and 0.01: the
    # Hessian 2·diag(1, 1e-4, 1) has κ = 1e4.
    z = np.random.default_rng(0).standard_normal((200, 2))
    q, _ = np.linalg.qr(z - z.mean(axis=0))  # orthonormal columns, centred like z's
    x = math.sqrt(200) * q * [1.0, 0.01]
    y = x @ [1.0, 1.0] + 1.0
    model = LinearModel(2, dtype=tf.float64)
    optimizer = Nesterov(model, **Nesterov.tuned(2.0, 2e-4))
    epochs, loop = 5000, tf.function(run_chunk)
    (_, _, W, b), done, _ = loop(model, optimizer, LoopState(tf.float64), tf.constant(x), tf.constant(y), 0.0, epochs, epochs)
    theta = np.column_stack([W.numpy(), b.numpy()])[: int(done)]
    error = np.linalg.norm(theta - [1.0, 1.0, 1.0], axis=1) / math.sqrt(3)
    return _off(answer, int(np.argmax(error < 1e-6)), 0.3)


# --- lesson 4 -------------------------------------------------------------------


def _statsmodels_fit(x, y, cov_type="nonrobust"):
    import statsmodels.api as sm

    return sm.OLS(y, sm.add_constant(x)).fit(cov_type=cov_type)


def solve_4_1(x, y):
    from scipy import stats

    X = np.column_stack([np.ones(len(y)), x])
    beta, rss = np.linalg.lstsq(X, y, rcond=None)[:2]
    se = np.sqrt(rss[0] / (len(y) - 2) * np.linalg.inv(X.T @ X)[1, 1])
    return beta[1] + stats.t.ppf(0.95, len(y) - 2) * se


def verify_4_1(answer, x, y):
    return _off(answer, _statsmodels_fit(x, y).conf_int(alpha=0.10)[1, 1], 1e-9)


def solve_4_2(x, y):
    from scipy import stats

    X = np.column_stack([np.ones(len(y)), x])
    beta, rss = np.linalg.lstsq(X, y, rcond=None)[:2]
    s2 = rss[0] / (len(y) - 2)
    x0 = np.array([1.0, 10.0])
    return 2 * stats.t.ppf(0.975, len(y) - 2) * np.sqrt(s2 * x0 @ np.linalg.inv(X.T @ X) @ x0 + s2)


def verify_4_2(answer, x, y):
    frame = _statsmodels_fit(x, y).get_prediction(np.array([[1.0, 10.0]])).summary_frame(alpha=0.05)
    return _off(answer, float(frame["obs_ci_upper"].iloc[0] - frame["obs_ci_lower"].iloc[0]), 1e-9)


def solve_4_3(x, y):
    X = np.column_stack([np.ones(len(y)), x])
    bread = np.linalg.inv(X.T @ X)
    u = X * (y - X @ bread @ X.T @ y)[:, None]
    return np.sqrt((bread @ u.T @ u @ bread)[1, 1])


def verify_4_3(answer, x, y):
    return _off(answer, _statsmodels_fit(x, y, "HC0").bse[1], 1e-9)


# --- lesson 5 -------------------------------------------------------------------


def solve_5_1(x, y):
    from linreg.data.moments import Moments

    a, b = Moments.of(x[:400], y[:400]), Moments.of(x[400:], y[400:])
    delta = b.mean[-1] - a.mean[-1]
    return a.C[-1, -1] + b.C[-1, -1] + delta**2 * a.rows * b.rows / (a.rows + b.rows)


def verify_5_1(answer, x, y):
    return _off(answer, len(y) * np.var(y), 1e-10)


def solve_5_2(x, y):
    from linreg.data.moments import Moments

    C = Moments.of(x, y).C
    d = x.shape[1]
    residual = C[d, d] - C[:d, d] @ np.linalg.solve(C[:d, :d], C[:d, d])
    return 1 - residual / C[d, d]


def verify_5_2(answer, x, y):
    import statsmodels.api as sm

    return _off(answer, sm.OLS(y, sm.add_constant(x)).fit().rsquared, 1e-10)


def solve_5_3(x, y):
    from linreg.data.moments import Moments

    m = Moments.of(x, y)
    return m.C[-1, -1] / m.rows + m.mean[-1] ** 2  # the spread of y about its mean, and the mean's square


def verify_5_3(answer, x, y):
    return _off(answer, float(np.mean(y**2)), 1e-12)


# --- lesson 6 -------------------------------------------------------------------


def _standardized_columns(x, y):
    """x's columns centred and divided by their SD (over n), and y centred."""
    return (x - x.mean(axis=0)) / x.std(axis=0), y - y.mean()


def solve_6_1(x, y):
    from linreg.data.moments import Moments
    from linreg.engine.penalty import alpha_max

    return alpha_max(Moments.of(x, y), l1_ratio=0.5)


def verify_6_1(answer, x, y):
    Z, yc = _standardized_columns(x, y)
    return _off(answer, np.max(np.abs(Z.T @ yc)) / (len(y) * 0.5), 1e-10)


def solve_6_2(x, y):
    import linreg

    return linreg.fit((x, y), penalty="l2", alpha=1.0, progress=False).coef_[0]


def verify_6_2(answer, x, y):
    Z, yc = _standardized_columns(x, y)
    n, d = Z.shape
    u = np.linalg.solve(Z.T @ Z / n + np.eye(d), Z.T @ yc / n)
    return _off(answer, u[0] / x[:, 0].std(), 1e-8)


EXERCISES = {
    "1.1": (solve_1_1, verify_1_1),
    "1.2": (solve_1_2, verify_1_2),
    "1.3": (solve_1_3, verify_1_3),
    "2.1": (solve_2_1, verify_2_1),
    "2.2": (solve_2_2, verify_2_2),
    "2.3": (solve_2_3, verify_2_3),
    "3.1": (solve_3_1, verify_3_1),
    "3.2": (solve_3_2, verify_3_2),
    "3.3": (solve_3_3, verify_3_3),
    "4.1": (solve_4_1, verify_4_1),
    "4.2": (solve_4_2, verify_4_2),
    "4.3": (solve_4_3, verify_4_3),
    "5.1": (solve_5_1, verify_5_1),
    "5.2": (solve_5_2, verify_5_2),
    "5.3": (solve_5_3, verify_5_3),
    "6.1": (solve_6_1, verify_6_1),
    "6.2": (solve_6_2, verify_6_2),
}
