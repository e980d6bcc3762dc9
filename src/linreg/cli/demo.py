"""Learn y = 3x + 2 from noisy synthetic data, step by step, with plots.

The story `python main.py` (or `linreg demo`) tells, in the order it happens:
make data, make a model with a wrong guess, find how large a learning rate
can be, train with the seed's loop as core/training.py shows it first
(`train_plainly`: tape, gradient, assign_sub, once per epoch), compare the
result with the true line and with the exact least-squares line, draw the
figures.
"""
import math
from collections import namedtuple

from linreg.cli.flags import finite_float, int_at_least, non_negative_float, output_dir, output_file, positive_float

# Where training starts. Far enough from (3, 2) that the plots show a journey.
START_W, START_B = 5.0, 0.0

# Defaults: with x ~ N(0, 1) the loss's Hessian is about 2·I, so a rate of 0.1
# shrinks the distance to the optimum by about (1 - 0.1·2) = 0.8 per epoch;
# 50 epochs take it from ~2 to ~3e-5, inside the promised 1e-3, while the
# first ten epochs still show the loss falling visibly.
EPOCHS, LEARNING_RATE, SAMPLES = 50, 0.1, 1000

PLOTS = {
    "data": "data_and_fit.png",
    "loss": "loss.png",
    "parameters": "parameters.png",
    "surface": "loss_surface.png",
}


def add_arguments(parser):
    parser.add_argument("--epochs", type=int_at_least(1), default=EPOCHS, help=f"training epochs (default {EPOCHS})")
    parser.add_argument(
        "--learning-rate", type=positive_float, default=LEARNING_RATE, help=f"step size (default {LEARNING_RATE})"
    )
    parser.add_argument("--samples", type=int_at_least(2), default=SAMPLES, help=f"data points (default {SAMPLES})")
    parser.add_argument("--noise", type=non_negative_float, default=1.0, help="noise standard deviation (default 1.0)")
    parser.add_argument("--seed", type=int_at_least(0), default=0, help="random seed for the data (default 0)")
    parser.add_argument("--true-w", type=finite_float, default=3.0, help="the W the data is made with (default 3.0)")
    parser.add_argument("--true-b", type=finite_float, default=2.0, help="the b the data is made with (default 2.0)")
    parser.add_argument("--out", type=output_dir, default="outputs", help="folder for the plots (default outputs/)")
    parser.add_argument("--json", type=output_file, metavar="PATH", help="write the run's summary as JSON")
    parser.add_argument("--keras", action="store_true", help="also train with Keras' fit and compare")
    parser.add_argument("--quiet", action="store_true", help="print nothing; still write plots and JSON")
    parser.set_defaults(run=run)


def run(args):
    from linreg.analysis.curvature import largest_eigenvalue
    from linreg.analysis.ols import least_squares
    from linreg.core.model import LinearModel
    from linreg.core.optimizers import GradientDescent
    from linreg.core.training import train_plainly
    from linreg.data.synthetic import synthetic
    from linreg.engine.driver import divergence_error
    from linreg.io.files import make_dir, write_json

    say = (lambda *lines: None) if args.quiet else (lambda *lines: print(*lines, sep="\n"))

    # 1. Data: points scattered around a known line.
    x, y = synthetic(args.samples, args.true_w, args.true_b, args.noise, args.seed)
    say(
        "linreg demo: fit f(x) = x·W + b by gradient descent, written out by hand",
        "",
        "1. Data",
        f"   {args.samples} points: x ~ N(0, 1), y = {args.true_w:g}·x + {args.true_b:g} + {args.noise:g}·N(0, 1)"
        f"   (seed {args.seed})",
    )

    # 2. Model: W and b as variables, starting from a wrong guess.
    model = LinearModel(1, W=START_W, b=START_B)
    say(
        "",
        "2. Model",
        f"   start from the wrong guess W = {START_W:g}, b = {START_B:g};"
        f" its mean squared error on the data is {_loss(model, x, y):.4f}",
    )

    # 3. The learning rate, against the largest one that converges.
    optimizer = GradientDescent(model, args.learning_rate)
    bound = optimizer.stable_rate(largest_eigenvalue(x, y))
    say(
        "",
        "3. Learning rate",
        f"   the loss's Hessian (second derivatives, from nested GradientTapes) has largest eigenvalue"
        f" {2 / bound:.4f},",
        f"   so gradient descent converges for learning rates below 2 / {2 / bound:.4f} = {bound:.4f};"
        f" using {args.learning_rate:g}",
    )

    # 4. Training: the seed's loop, one GradientTape step per epoch.
    say("", f"4. Training: {args.epochs} epochs, full batch, one step per epoch",
        "   epoch        loss           W           b")
    history = _path(train_plainly(model, optimizer, x, y, args.epochs), model, x, y)
    blown_up = _diverged_after(history.loss[:-1])  # the losses the steps saw
    if blown_up is not None:
        say(*_log_lines(history, blown_up + 1))
        raise divergence_error(optimizer, blown_up, largest_eigenvalue(x, y))
    say(*_log_lines(history))

    # 5. How good is the result? Against the truth and against the exact answer.
    # Gradient descent minimises the loss on the data it is given, so the
    # best it can do is the least-squares line of *these* points. The noise
    # added to every y has, by chance, a slight slope and offset of its own
    # over these particular x's, and the least-squares line absorbs them: it
    # sits near (true_w, true_b), off by roughly noise/√N, never exactly on
    # it. Training longer only approaches that line more closely; a larger or
    # quieter sample moves the line itself towards the truth.
    ls_W, ls_b = least_squares(x, y)
    ls_W = float(ls_W[0])
    W, b = float(history.W[-1]), float(history.b[-1])
    gap = max(abs(W - ls_W), abs(b - ls_b))
    say("", *_summary_lines(args, W, b, ls_W, ls_b, gap, float(history.loss[-1])))

    keras_result = None
    if args.keras:
        keras_result = _keras_fit(x, y, args)
        diff = max(abs(keras_result["W"] - W), abs(keras_result["b"] - b))
        say(
            "",
            "6. The same model through Keras: Dense(1), SGD, batch_size = all samples, shuffle off",
            f"   Keras: W = {keras_result['W']:.6f}, b = {keras_result['b']:.6f};"
            f" largest difference from the loop above: {diff:.2g}",
            "   `model.fit` ran the same tape, gradient and assign_sub for us: its optimizer's",
            "   `apply_gradients` is the `assign_sub(learning_rate * gradient)` we wrote by hand.",
        )

    # 6. Figures and the JSON summary.
    out = make_dir(args.out)
    paths = _draw(out, x, y, history, args, (ls_W, ls_b))
    say("", "Plots:", *(f"   {path}" for path in paths))
    if args.json:
        write_json(args.json, _summary(args, history, ls_W, ls_b, bound, keras_result))
        say(f"Summary: {args.json}")
    return 0


def _loss(model, x, y):
    from linreg.core.model import mean_squared_error

    return float(mean_squared_error(y, model(x)))


# Per epoch k (0 = the start): arrays of the loss, W and b before step k; the
# last row is where training ended, so there are epochs + 1 rows.
Path = namedtuple("Path", "loss W b")


def _path(history, model, x, y):
    """train_plainly's history, with the state training ended in appended."""
    import numpy as np

    rows = [(loss, float(W[0]), float(b)) for loss, W, b in history]
    rows.append((_loss(model, x, y), float(model.W[0]), float(model.b)))
    return Path(*(np.array(column) for column in zip(*rows)))


def _diverged_after(losses):
    """The epochs run when the loss blew up, or None.

    train_plainly runs every epoch it is asked for. The drivers of
    `linreg fit` stop a run by the loop's own rule (core/training.judge);
    replayed here on the losses, it names the same epoch they would.
    """
    import tensorflow as tf

    from linreg.core.training import DIVERGED, NO_STALL, LoopState, judge

    carried, unknown_gradient = LoopState(tf.float32).read(), tf.constant(0.0)
    for loss in tf.constant(losses, tf.float32):
        carried = judge(carried, loss, unknown_gradient, tol=0.0, patience=NO_STALL)
        if carried["status"] == DIVERGED:
            return int(carried["epoch"])
    return None


def _log_lines(history, rows=None):
    return [f"   {k:5d}  {loss:10.6f}  {W:10.6f}  {b:10.6f}" for k, (loss, W, b) in
            enumerate(zip(history.loss[:rows], history.W[:rows], history.b[:rows]))]


def _summary_lines(args, W, b, ls_W, ls_b, gap, loss):
    reached = "within" if gap <= 1e-3 else "NOT yet within"
    lines = [
        "5. Result",
        "                        W           b",
        f"   true          {args.true_w:10.6f}  {args.true_b:10.6f}   (what the data was made with)",
        f"   least squares {ls_W:10.6f}  {ls_b:10.6f}   (exact best fit to this data: closed form, float64)",
        f"   learned       {W:10.6f}  {b:10.6f}   (gradient descent, final loss {loss:.6f})",
        f"   the learned line is {reached} 1e-3 of the least-squares one (largest difference {gap:.2g})",
    ]
    if gap > 1e-3:
        lines.append("   train longer (--epochs) or with a larger --learning-rate below the bound to get there")
    if args.noise > 0:
        spread = args.noise / math.sqrt(args.samples)
        lines += [
            "   Why not exactly the true W and b? Training can only find the line that fits *these* points",
            f"   best, and the noise moved them: here that best line is off the truth by about noise/√N ≈ {spread:.2g}.",
            "   More samples or less noise bring it closer; more epochs cannot.",
        ]
    else:
        lines.append("   Without noise the best line for the data is the true line itself, so training recovers it.")
    return lines


def _draw(out, x, y, history, args, optimum):
    import numpy as np

    from linreg.io import plots

    x1, y_np = x.numpy()[:, 0], y.numpy()
    x64, y64 = x1.astype(np.float64), y_np.astype(np.float64)
    W_path, b_path = history.W, history.b
    paths = [out / PLOTS[name] for name in ("data", "loss", "parameters", "surface")]
    plots.data_and_lines(
        paths[0],
        x1,
        y_np,
        [
            ("start", W_path[0], b_path[0], "k:"),
            ("learned", W_path[-1], b_path[-1], "r-"),
            ("true", args.true_w, args.true_b, "g--"),
        ],
    )
    plots.loss_per_epoch(paths[1], history.loss, floor=_least_squares_loss(x64, y64, *optimum))
    plots.parameters_per_epoch(paths[2], W_path, b_path, args.true_w, args.true_b, optimum)

    # The loss on a grid of (W, b). Expanding the square,
    #   mean((y - W·x - b)²) = mean(y²) - 2W·mean(xy) - 2b·mean(y)
    #                          + W²·mean(x²) + 2Wb·mean(x) + b²,
    # so six averages of the data give the loss everywhere on the grid.
    m = {k: float(np.mean(v)) for k, v in
         {"yy": y64 * y64, "xy": x64 * y64, "y": y64, "xx": x64 * x64, "x": x64}.items()}

    def loss_fn(W, b):
        return m["yy"] - 2 * W * m["xy"] - 2 * b * m["y"] + W * W * m["xx"] + 2 * W * b * m["x"] + b * b

    plots.loss_surface(paths[3], loss_fn, W_path, b_path, optimum)
    return paths


def _least_squares_loss(x, y, W, b):
    return float(((y - (W * x + b)) ** 2).mean())


def _summary(args, h, ls_W, ls_b, bound, keras_result):
    summary = {
        "W": float(h.W[-1]),
        "b": float(h.b[-1]),
        "loss": float(h.loss[-1]),
        "least_squares": {"W": ls_W, "b": ls_b},
        "epochs": len(h.loss) - 1,
        "history": {"loss": h.loss.tolist(), "W": h.W.tolist(), "b": h.b.tolist()},
        "true": {"W": args.true_w, "b": args.true_b},
        "learning_rate": args.learning_rate,
        "max_stable_learning_rate": bound,
        "samples": args.samples,
        "noise": args.noise,
        "seed": args.seed,
    }
    if keras_result is not None:
        summary["keras"] = keras_result
    return summary


def _keras_fit(x, y, args):
    """The same model, loss and full-batch gradient descent through Keras' fit."""
    import keras

    model = keras.Sequential(
        [
            keras.Input(shape=(1,)),
            keras.layers.Dense(
                1,
                kernel_initializer=keras.initializers.Constant(START_W),
                bias_initializer=keras.initializers.Constant(START_B),
            ),
        ]
    )
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=args.learning_rate), loss="mean_squared_error")
    history = model.fit(x, y[:, None], batch_size=args.samples, epochs=args.epochs, shuffle=False, verbose=0)
    kernel, bias = model.layers[0].get_weights()
    return {"W": float(kernel[0, 0]), "b": float(bias[0]), "loss": history.history["loss"]}
