"""Fit the linear model to your own CSV by gradient descent, with statistics.

    linreg fit DATA.csv --target COL [--features A,B,...]

The same LinearModel, step and loop as the demo, on d standardized features,
full batch; the learning rate comes from the loss's curvature; the result is
reported the way statistical software reports an ordinary least-squares fit,
beside the closed-form solution.
"""
import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from linreg import analysis, data, export, plots, training
from linreg.cli import int_at_least, non_negative_float, output_dir, output_file, positive_float
from linreg.files import make_dir, write_json
from linreg.model import LinearModel

DTYPES = {"float32": tf.float32, "float64": tf.float64}
OPTIMIZERS = ("gd", "momentum", "nesterov")
DEFAULT_EPOCHS = 100_000

# Convergence: stop when the gradient's norm has fallen to `tol` times its
# norm at the start (training.run_epochs). Near the minimum the coefficients'
# relative error is at most about κ·(relative gradient norm), κ being the
# condition number printed with the eigenvalues, so each factor of ten in tol
# is one more correct digit -- until rounding noise in the gradient takes
# over, after which the gradient stops falling. We measured that floor on
# generated data between 1e-9 and 1.4e-7 in float32, and below 1e-16 in
# float64. A tol below the floor is never met: training then runs all
# --epochs and says it did not converge.
#   float64: 1e-15, a factor of ten above the floor; κ·1e-15 leaves 10 or
#            more correct digits up to κ = 10⁵.
#   float32: aim for a relative error of 1e-4 (about what float32 can reach
#            on hard data, see FEW_DIGITS below), that is tol = 1e-4/κ,
#            kept between 1e-9 and 1e-6 so that it stays above the floor.
FLOAT64_TOL = 1e-15
FLOAT32_TARGET_ERROR, FLOAT32_TOL_RANGE = 1e-4, (1e-9, 1e-6)


def default_tol(dtype, condition_number):
    if dtype == "float64":
        return FLOAT64_TOL
    low, high = FLOAT32_TOL_RANGE
    return min(max(FLOAT32_TARGET_ERROR / condition_number, low), high)


# float32 keeps about 7 significant digits (machine epsilon 1.2e-7). Rounding
# the data and every product to float32 moves the least-squares solution by
# about √κ·epsilon (relative), κ being the condition number of the
# standardized Hessian (√κ is the condition number of the data matrix
# itself). That estimate matched our measurements on generated data to
# within a digit. Below FEW_DIGITS expected digits we say so and suggest
# float64.
FLOAT32_EPSILON = float(np.finfo(np.float32).eps)
FEW_DIGITS = 5

PLOTS = {"actual": "predicted_vs_actual.png", "residuals": "residuals_vs_fitted.png", "loss": "loss.png"}


def add_arguments(parser):
    parser.add_argument("data", type=Path, metavar="DATA.csv", help="CSV file with a header row")
    parser.add_argument("--target", required=True, metavar="COL", help="the column to predict")
    parser.add_argument(
        "--features", type=feature_list, metavar="A,B,...", help="columns to predict from (default: all others)"
    )
    parser.add_argument(
        "--learning-rate",
        type=learning_rate,
        default="auto",
        help="step size in the standardized space, or 'auto' (default): chosen from the largest "
        "eigenvalue of the loss's Hessian",
    )
    parser.add_argument(
        "--tol",
        type=non_negative_float,
        help="stop when the gradient norm has fallen to tol times its first value "
        f"(default: {FLOAT64_TOL:g} for float64; for float32 {FLOAT32_TARGET_ERROR:g}/condition number, "
        f"kept between {FLOAT32_TOL_RANGE[0]:g} and {FLOAT32_TOL_RANGE[1]:g}; 0: never stop early)",
    )
    parser.add_argument(
        "--epochs", type=int_at_least(1), default=DEFAULT_EPOCHS, help=f"most epochs to run (default {DEFAULT_EPOCHS})"
    )
    parser.add_argument(
        "--dtype", choices=tuple(DTYPES), default="float32", help="training precision (default float32)"
    )
    parser.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="gd",
        help="plain gradient descent (default), heavy-ball momentum or Nesterov momentum",
    )
    parser.add_argument(
        "--compile",
        choices=training.COMPILE_CHOICES,
        default="auto",
        help="run the loop eagerly (none), as a tf.function graph, compiled by XLA, "
        "or let the data size decide (auto, the default)",
    )
    parser.add_argument("--json", type=output_file, metavar="PATH", help="write the fit's results as JSON")
    parser.add_argument("--logdir", type=output_dir, metavar="DIR", help="write TensorBoard scalars per epoch")
    parser.add_argument("--export", type=output_dir, metavar="DIR", help="save the model as a TensorFlow SavedModel")
    parser.add_argument("--force", action="store_true", help="replace an existing --export folder")
    parser.add_argument("--out", type=output_dir, metavar="DIR", help="folder for the plots")
    parser.set_defaults(run=run)


def feature_list(text):
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected column names separated by commas, got {text!r}")
    return names


def learning_rate(text):
    return text if text == "auto" else positive_float(text)


# --- choosing the step ---------------------------------------------------------


def step_size(curvature, optimizer):
    """(learning rate, momentum beta) that provably converge on this loss.

    The loss is a quadratic bowl, so gradient descent acts on each eigen-
    direction of its Hessian separately: with rate r, the distance to the
    minimum along an eigenvector with eigenvalue λ is multiplied by (1 - r·λ)
    every epoch. All directions shrink exactly when r < 2/λ_max
    (analysis.stable_rate_factor). How fast the slowest one, λ_min, shrinks is
    set by the condition number κ = λ_max/λ_min.

    gd:        r = 1/λ_max. Half the divergence limit: the steepest direction
               is solved in one step and never oscillates, and an eigenvalue
               estimate that is a little low (power iteration approaches λ_max
               from below) still leaves a factor-2 margin. Slowest factor
               1 - 1/κ per epoch: about κ epochs per factor e.
    momentum:  heavy ball with the classical best pair for a quadratic,
               r = 4/(√λ_max + √λ_min)², beta = ((√κ - 1)/(√κ + 1))², which
               makes every direction shrink by √beta ≈ 1 - 2/√κ per epoch:
               about √κ/2 epochs per factor e instead of κ. With exactly
               these values the steepest direction sits on a repeated root,
               where its distance first grows for dozens of epochs before it
               shrinks -- enough for the loop's divergence check (loss rising
               ten epochs in a row) to stop training. Computing the pair for
               a λ_max 10% larger than measured moves that direction off the
               edge, at a small cost in speed.
    nesterov:  r = 1/λ_max, beta = (√κ - 1)/(√κ + 1): the textbook choice for
               strongly convex problems, about √κ epochs per factor e, with
               the steepest direction far inside its limit
               (r·λ_max = 1 < 2(1 + beta)/(1 + 2 beta)).
    """
    largest, smallest = curvature.largest, max(curvature.smallest, curvature.largest * 1e-16)
    if optimizer == "gd":
        return 1.0 / largest, 0.0
    if optimizer == "momentum":
        largest *= 1.1
        kappa = largest / smallest
        beta = ((math.sqrt(kappa) - 1.0) / (math.sqrt(kappa) + 1.0)) ** 2
        return 4.0 / (math.sqrt(largest) + math.sqrt(smallest)) ** 2, beta
    kappa = largest / smallest
    return 1.0 / largest, (math.sqrt(kappa) - 1.0) / (math.sqrt(kappa) + 1.0)


def momentum_for(curvature, optimizer):
    """beta for a momentum optimizer when the user sets the learning rate."""
    return 0.0 if optimizer == "gd" else step_size(curvature, optimizer)[1]


# --- the command ---------------------------------------------------------------


def run(args):
    started = time.perf_counter()
    if args.export is not None:
        export.check_destination(args.export, args.force)  # before training, not after

    # 1. Data: read, check, standardize (in float64; see data.standardize).
    table = data.read_table(args.data, args.target, args.features)
    scaled = data.standardize(table.x, table.y)
    n, d = table.x.shape

    # 2. Curvature of the loss in the standardized space, and the step.
    curvature = analysis.curvature(scaled.x, scaled.y)
    if args.learning_rate == "auto":
        rate, beta = step_size(curvature, args.optimizer)
    else:
        rate, beta = args.learning_rate, momentum_for(curvature, args.optimizer)
    tol = default_tol(args.dtype, curvature.condition_number) if args.tol is None else args.tol
    expected_digits = -math.log10(math.sqrt(curvature.condition_number) * FLOAT32_EPSILON)

    # 3. Train: the same model, step and loop as the demo.
    model = LinearModel(d, dtype=DTYPES[args.dtype])
    momentum = None
    if args.optimizer != "gd":
        momentum = training.Momentum(model, beta, nesterov=args.optimizer == "nesterov")
    if args.dtype == "float32" and expected_digits < FEW_DIGITS:
        print(
            f"warning: the standardized data's condition number is {curvature.condition_number:.3g}, so float32 "
            f"can give at best about {max(math.floor(expected_digits), 0)} correct digits; "
            "use --dtype float64 for more",
            file=sys.stderr,
        )
    training_started = time.perf_counter()
    result = training.train(
        model, scaled.x, scaled.y, rate, args.epochs, tol=tol, momentum=momentum, compile=args.compile
    )
    training_seconds = time.perf_counter() - training_started

    # 4. Back to the original units, and the independent answers.
    W, b = scaled.coefficients(model.W.numpy(), model.b.numpy())
    ls_W, ls_b = analysis.least_squares(table.x, table.y)
    stats = analysis.ols_statistics(table.x, table.y, W, b)
    gd = np.concatenate([[b], W])
    ls = np.concatenate([[ls_b], ls_W])
    difference = relative_difference(gd, ls)
    gradient_norm = np.sqrt(np.sum(result.history.grad_W**2, axis=1) + result.history.grad_b**2)
    relative_gradient = gradient_norm / gradient_norm[0]

    fit = {
        "table": table,
        "args": args,
        "tol": tol,
        "rate": rate,
        "beta": beta,
        "curvature": curvature,
        "result": result,
        "stats": stats,
        "ls": ls,
        "difference": difference,
        "relative_gradient": relative_gradient,
        "training_seconds": training_seconds,
    }
    print(report(fit))

    # 5. Outputs, each written whole or not at all.
    if args.json is not None:
        write_json(args.json, summary(fit))
    if args.logdir is not None:
        write_tensorboard(args.logdir, table.features, scaled, result.history, rate)
    if args.out is not None:
        draw(args.out, table, W, b, result.history.loss)
    if args.export is not None:
        export.save(args.export, model, scaled, table.features, table.target, force=args.force)
    print(f"done in {time.perf_counter() - started:.2f} s")
    return 0


def relative_difference(values, reference):
    """|values - reference| / |reference|, element by element."""
    return np.abs(values - reference) / np.maximum(np.abs(reference), np.finfo(np.float64).tiny)


def names(features):
    return ["intercept", *features]


def report(fit):
    table, args, result, stats, curvature = fit["table"], fit["args"], fit["result"], fit["stats"], fit["curvature"]
    n, d = table.x.shape
    labels = names(table.features)
    width = max(12, *(len(label) for label in labels))
    how = "auto, " if args.learning_rate == "auto" else ""
    momentum = "" if args.optimizer == "gd" else f", momentum beta {fit['beta']:.6g}"
    if result.converged:
        ending = f"converged after {result.epochs} epochs"
    else:
        advice = "raise --epochs" if args.optimizer != "gd" else "raise --epochs or try --optimizer momentum"
        if args.dtype == "float32":
            advice += " (or, if float32 rounding keeps the gradient from falling further, raise --tol or use float64)"
        ending = (
            f"NOT converged after {result.epochs} epochs (relative gradient norm "
            f"{fit['relative_gradient'][-1]:.3g} > tol {fit['tol']:g}); {advice}"
        )
    lines = [
        f"linreg fit: {table.path}, target {table.target!r}, {d} feature{'s' if d > 1 else ''}, {n} rows",
        f"  features and target standardized; {args.dtype}; optimizer {args.optimizer}; compile {result.compile}",
        f"  Hessian eigenvalues ({curvature.method}): largest {curvature.largest:.6g}, smallest "
        f"{curvature.smallest:.6g}, condition number {curvature.condition_number:.4g}",
        f"  learning rate {fit['rate']:.6g} ({how}divergence above "
        f"{analysis.stable_rate_factor(fit['beta'], args.optimizer == 'nesterov') / curvature.largest:.6g}){momentum}",
        f"  {ending}; {fit['training_seconds']:.2f} s"
        + (f" (stop: gradient norm <= tol {fit['tol']:g} x its first value)" if result.converged else ""),
        "",
        f"{'':<{width}} {'coef':>14} {'std err':>11} {'t':>9} {'P>|t|':>9} {'[0.025':>14} {'0.975]':>14}",
    ]
    for i, label in enumerate(labels):
        lines.append(
            f"{label:<{width}} {stats.coefficients[i]:>14.7g} {stats.std_errors[i]:>11.4g} {stats.t[i]:>9.3f} "
            f"{stats.p_values[i]:>9.3g} {stats.ci_low[i]:>14.7g} {stats.ci_high[i]:>14.7g}"
        )
    lines += [
        "",
        f"R²  {stats.r_squared:.6f}   adjusted R²  {stats.adj_r_squared:.6f}   residual SD  {stats.residual_sd:.6g}"
        f"   n  {stats.n}   df  {stats.df_residual}",
        "",
        "gradient descent beside the closed-form least-squares solution (float64):",
        f"{'':<{width}} {'gradient descent':>22} {'least squares':>22} {'rel. difference':>16}",
    ]
    for i, label in enumerate(labels):
        lines.append(
            f"{label:<{width}} {stats.coefficients[i]:>22.15g} {fit['ls'][i]:>22.15g} {fit['difference'][i]:>16.3g}"
        )
    worst = float(np.max(fit["difference"]))
    digits = -math.log10(worst) if worst > 0 else math.inf
    lines.append(f"largest relative difference {worst:.3g} (about {digits:.1f} matching digits)")
    return "\n".join(lines)


def summary(fit):
    table, stats, result = fit["table"], fit["stats"], fit["result"]
    labels = names(table.features)

    def by_name(values):
        return {label: float(value) for label, value in zip(labels, values)}

    return {
        "target": table.target,
        "features": table.features,
        "coefficients": by_name(stats.coefficients),
        "std_errors": by_name(stats.std_errors),
        "t": by_name(stats.t),
        "p_values": by_name(stats.p_values),
        "ci_95": {label: [float(lo), float(hi)] for label, lo, hi in zip(labels, stats.ci_low, stats.ci_high)},
        "r_squared": stats.r_squared,
        "adj_r_squared": stats.adj_r_squared,
        "residual_sd": stats.residual_sd,
        "n": stats.n,
        "epochs": result.epochs,
        "converged": result.converged,
        "least_squares": by_name(fit["ls"]),
        "max_relative_difference": float(np.max(fit["difference"])),
        "learning_rate": fit["rate"],
        "momentum": fit["beta"],
        "optimizer": fit["args"].optimizer,
        "dtype": fit["args"].dtype,
        "tol": fit["tol"],
        "condition_number": fit["curvature"].condition_number,
        "training_seconds": fit["training_seconds"],
    }


# --- TensorBoard ---------------------------------------------------------------


def write_tensorboard(logdir, features, scaled, history, rate):
    """Per-epoch scalars from the training history, through tf.summary.

    Written after training, from the history run_epochs recorded, so the
    training loop itself stays free of logging. The events go to a temporary
    folder beside `logdir` and are moved in when complete.
    """
    logdir = make_dir(logdir)
    W, b = zip(*(scaled.coefficients(W_k, b_k) for W_k, b_k in zip(history.W, history.b)))
    coefficients = np.column_stack([np.array(b), np.array(W)])
    grad_W, grad_b = history.grad_W.astype(np.float64), history.grad_b.astype(np.float64)
    gradient_norm = np.sqrt(np.sum(grad_W**2, axis=1) + grad_b**2)
    tags = ["coefficient/" + label for label in names(features)]

    # One graph writes every epoch's scalars: a Python loop of eager
    # tf.summary calls would cost more than the training at 100,000 epochs.
    @tf.function
    def write_all(loss, gradient_norm, coefficients):
        for epoch in tf.range(tf.shape(loss)[0]):
            step = tf.cast(epoch, tf.int64)
            # The graph loop opens a name scope ("while/") that tf.summary
            # would prefix to every tag; the empty scope keeps tags as named.
            with tf.name_scope(""):
                tf.summary.scalar("loss", loss[epoch], step=step)
                tf.summary.scalar("gradient_norm", gradient_norm[epoch], step=step)
                tf.summary.scalar("learning_rate", tf.constant(rate, tf.float64), step=step)
                for j, tag in enumerate(tags):
                    tf.summary.scalar(tag, coefficients[epoch, j], step=step)

    tmp = Path(tempfile.mkdtemp(prefix=f".{logdir.name}.", dir=logdir.parent))
    try:
        writer = tf.summary.create_file_writer(str(tmp))
        with writer.as_default():
            write_all(
                tf.constant(history.loss, tf.float64),
                tf.constant(gradient_norm, tf.float64),
                tf.constant(coefficients, tf.float64),
            )
        writer.close()
        for event_file in tmp.iterdir():
            event_file.replace(logdir / event_file.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --- plots ---------------------------------------------------------------------


def draw(out, table, W, b, loss):
    out = make_dir(out)
    fitted = table.x @ W + b
    plots.predicted_vs_actual(out / PLOTS["actual"], table.y, fitted, table.target)
    plots.residuals_vs_fitted(out / PLOTS["residuals"], fitted, table.y - fitted, table.target)
    plots.loss_per_epoch(out / PLOTS["loss"], loss)
