"""Fit the linear model to your own CSV by gradient descent, with statistics.

    linreg fit DATA.csv --target COL [--features A,B,...]

The same LinearModel, step and loop as the demo, on standardized features,
full batch; the learning rate comes from the loss's curvature; the result is
reported the way statistical software reports an ordinary least-squares fit,
beside the closed-form solution. This command only parses flags, calls
linreg.fit() and writes what was asked for.
"""
import argparse
import time
from pathlib import Path

from linreg.cli.flags import finite_float, int_at_least, non_negative_float, output_dir, output_file, positive_float

# The choices come from the one registry (plan.py), which needs no TensorFlow.
from linreg.plan import (COMPILE_CHOICES, DEFAULT_EPOCHS, DTYPES, ENGINES, MAX_EPOCHS, MAX_MOMENTS_FEATURES, MISSING,
                         OPTIMIZERS, PENALTIES, SELECTIONS)

PLOTS = {"actual": "predicted_vs_actual.png", "residuals": "residuals_vs_fitted.png", "loss": "loss.png"}
# A penalized fit's plots instead: the coefficients along the path of alphas, and the cross-validation curve.
PENALTY_PLOTS = {"path": "penalty_path.png", "cv": "cv_error.png"}


def add_arguments(parser):
    parser.add_argument(
        "data",
        type=Path,
        metavar="DATA",
        help="a CSV file with a header row, a Parquet file, or a folder or glob ('data/*.parquet') of files of one format",
    )
    parser.add_argument("--target", metavar="COL", help="the column to predict (required without --formula)")
    parser.add_argument(
        "--formula",
        metavar="'Y ~ A + C(G) + ...'",
        help="the model as a formula instead of --target, --features and --categorical: 'y ~ x1 + C(g) + "
        "np.log(x2) + x1:x2' (formulaic's; '- 1' leaves out the intercept); predict designs new rows alike",
    )
    parser.add_argument(
        "--features", type=feature_list, metavar="A,B,...", help="columns to predict from (default: all others)"
    )
    parser.add_argument(
        "--learning-rate",
        type=learning_rate,
        default="auto",
        help="step size in the standardized space, or 'auto' (default): chosen from the eigenvalues "
        "of the loss's Hessian",
    )
    parser.add_argument(
        "--tol",
        type=non_negative_float,
        help="stop when the gradient norm has fallen to tol times its first value "
        "(default: 1e-15 for float64; for float32 1e-4/condition number, kept between 1e-9 and 1e-6; "
        "0: never stop early); training also stops when the gradient stops falling at the rounding floor",
    )
    parser.add_argument(
        "--epochs",
        type=int_at_least(1, maximum=MAX_EPOCHS),
        default=DEFAULT_EPOCHS,
        help=f"most epochs to run (default {DEFAULT_EPOCHS}, at most 1e15)",
    )
    parser.add_argument("--dtype", choices=DTYPES, default="float64", help="training precision (default float64)")
    parser.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        default="auto",
        help="auto (default): orthogonal, plain descent on the orthogonalized (QR) data refined on extended-precision residuals "
        "(rows in memory with a condition number below 40: on the pseudo-rows of their statistics); "
        "or on the standardized data: plain gradient descent (gd), heavy-ball momentum, Nesterov momentum "
        "or conjugate gradients with exact steps (cg)",
    )
    parser.add_argument(
        "--compile",
        choices=COMPILE_CHOICES,
        default="auto",
        help="run the loop eagerly (none), as a tf.function graph, compiled by XLA, "
        "or let the data size decide (auto, the default)",
    )
    parser.add_argument(
        "--checkpoint", type=output_dir, metavar="DIR", help="save training here every few seconds; rerun to resume"
    )
    parser.add_argument(
        "--categorical",
        type=feature_list,
        metavar="A,B,...",
        help="feature columns to one-hot code (levels sorted, the first the baseline); columns of text "
        "that is not numbers are coded anyway, with a note",
    )
    parser.add_argument(
        "--max-levels",
        type=int_at_least(2),
        default=1000,
        metavar="N",
        help="refuse a categorical column with more levels than this (default 1000), as its one-hot columns take "
        "rows x levels x 8 bytes",
    )
    parser.add_argument(
        "--no-intercept",
        dest="intercept",
        action="store_false",
        help="fit a line through the origin (R² then as statsmodels defines it without a constant)",
    )
    parser.add_argument(
        "--weights", metavar="COL", help="observation weights (weighted least squares) from this column"
    )
    parser.add_argument(
        "--missing",
        choices=MISSING,
        default="error",
        help="a missing value (empty, NA, NaN, null) stops the fit (error, the default) or its row is left out (drop)",
    )
    parser.add_argument(
        "--cov",
        default="nonrobust",
        metavar="TYPE",
        help="the coefficients' covariance: nonrobust (default), HC0, HC1, HC2, HC3 (heteroskedasticity-robust), "
        "cluster:COL (errors correlated within the groups of column COL) or HAC:LAGS (Newey-West); standard "
        "errors, tests (z for the robust types), intervals and the F test follow it; on the streamed engines "
        "one more pass over the files",
    )
    parser.add_argument("--json", type=output_file, metavar="PATH", help="write the fit's results as JSON")
    parser.add_argument("--logdir", type=output_dir, metavar="DIR", help="write TensorBoard scalars as training goes")
    parser.add_argument("--export", type=output_dir, metavar="DIR", help="save the model as a TensorFlow SavedModel")
    parser.add_argument("--force", action="store_true", help="replace an existing --export folder")
    parser.add_argument("--out", type=output_dir, metavar="DIR", help="folder for the plots")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="auto",
        help="memory: the rows in memory; moments: one streamed pass gathers the sufficient statistics "
        "(n, means, cross-products) and training runs on them; stream: every epoch streams the files; "
        "auto (default): memory when the data fits in half the available memory, otherwise moments, "
        f"or stream past {MAX_MOMENTS_FEATURES} features (coefficients and R², no standard errors)",
    )
    parser.add_argument(
        "--workers",
        type=int_at_least(1, maximum=64),
        default=1,
        metavar="N",
        help="start N worker processes on this machine (tf.distribute, TF_CONFIG on 127.0.0.1), each reading "
        "its share of the files; on a real cluster set TF_CONFIG on each machine instead",
    )
    parser.add_argument(
        "--batch-rows",
        type=int_at_least(1),
        metavar="N",
        help="rows per batch read from files (default: about 64 MiB of numbers); what the streamed engines hold at a time",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line while training")
    add_penalty_arguments(parser.add_argument_group("penalized fits (scikit-learn's ElasticNet objective)"))
    parser.set_defaults(check=check, run=run, launch=launch)


def add_penalty_arguments(group):
    group.add_argument(
        "--penalty",
        choices=PENALTIES,
        default="none",
        help="minimize (1/2n)·|y - Xw - b|² + alpha·l1_ratio·|w|₁ + alpha·(1 - l1_ratio)/2·|w|² (the intercept "
        "is not penalized): l2 (ridge, l1_ratio 0), l1 (lasso, 1), elasticnet (--l1-ratio); none (default)",
    )
    group.add_argument("--alpha", type=finite_float, metavar="A", help="the penalty's weight (default 1)")
    group.add_argument(
        "--l1-ratio", type=number_list(finite_float), metavar="R[,R...]",
        help="elasticnet's mix of L1 in [0, 1] (default 0.5); several are chosen among by --cv",
    )  # fmt: skip
    group.add_argument(
        "--alphas", type=alphas, metavar="N|A,B,...",
        help="a path: N alphas evenly spaced in log from the least that zeroes every coefficient down to 1e-3 of "
        "it, or the alphas listed; fits warm-started along it",
    )  # fmt: skip
    group.add_argument("--cv", type=int, metavar="K", help="K-fold cross-validation along the path (folds by row number)")
    group.add_argument("--cv-seed", type=int, default=0, metavar="S", help="the folds' seed (default 0)")
    group.add_argument(
        "--select", choices=SELECTIONS, default="min",
        help="the model's alpha: least mean validation error (min, default) or the largest within one standard "
        "error of it (1se)",
    )  # fmt: skip
    group.add_argument(
        "--standardize", action=argparse.BooleanOptionalAction, default=True,
        help="penalize the standardized columns (default, as glmnet; reported in the original units) or the "
        "columns as they are (--no-standardize, as scikit-learn)",
    )  # fmt: skip


def number_list(kind):
    """One number, or several separated by commas (a list)."""

    def parse(text):
        values = [kind(part) for part in text.split(",")]
        return values if len(values) > 1 else values[0]

    return parse


def alphas(text):
    """--alphas: a whole number N (a grid of N), or alphas separated by commas."""
    return int(text) if text.strip().isdecimal() else [finite_float(part) for part in text.split(",")]


def check(args):
    """Before anything runs: no output may write over the data or another
    output, and the chief (the one process that writes) must be able to
    write each; an unwritable place is found now, not after training."""
    from linreg.errors import LinregError
    from linreg.io.files import check_apart, check_export, check_output

    if args.target is None and args.formula is None:
        raise LinregError("name the column to predict with --target COL, or give the model as --formula 'y ~ ...'")
    outputs = {"--json": args.json, "--out": args.out, "--logdir": args.logdir, "--checkpoint": args.checkpoint}
    # The plots are three files of known names: --out may be a folder that
    # holds other things, the data or the JSON among them.
    names = (PENALTY_PLOTS if args.penalty != "none" else PLOTS).values()
    plots = None if args.out is None else [args.out / name for name in names]
    check_apart({"the input": args.data}, {**outputs, "--out": plots, "--export": args.export})
    if not _is_chief():
        return
    for flag, path in outputs.items():
        if path is not None:
            check_output(path, flag, folder=flag != "--json")
    if args.export is not None:
        check_export(args.export, args.force)


def launch(args):
    from linreg.cli.launch import launch_workers
    from linreg.errors import LinregError

    if args.engine == "memory":
        raise LinregError("several workers share the data with --engine moments or stream, not memory")
    if args.penalty != "none" and args.engine == "stream":
        from linreg.plan import STREAM_PENALTY

        raise LinregError(STREAM_PENALTY)

    return launch_workers(args.argv, args.workers)


def feature_list(text):
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected column names separated by commas, got {text!r}")
    return names


def covariance(text):
    """--cov's TYPE or TYPE:VALUE as fit()'s cov_type and cov_kwds (cluster:COL, HAC:LAGS); fit() checks them."""
    from linreg.errors import LinregError

    name, colon, value = text.partition(":")
    if not colon:
        return {"cov_type": name}
    keyword = {"cluster": "groups", "hac": "maxlags"}.get(name.lower())
    if keyword is None:
        raise LinregError(f"--cov {name} takes no ':{value}'; only cluster:COL and HAC:LAGS name something")
    if keyword == "maxlags":  # a whole number of lags; anything else is refused by fit() with the text given
        value = int(value) if value.strip().isdecimal() else value
    return {"cov_type": name, "cov_kwds": {keyword: value}}


def learning_rate(text):
    return text if text == "auto" else positive_float(text)


def run(args):
    import linreg
    from linreg.io.files import write_json

    started = time.perf_counter()
    fit = linreg.fit(
        args.data,
        args.target,
        features=args.features,
        formula=args.formula,
        dtype=args.dtype,
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        tol=args.tol,
        compile=args.compile,
        checkpoint=args.checkpoint,
        progress=False if args.quiet else "auto",
        missing=args.missing,
        categorical=args.categorical,
        max_levels=args.max_levels,
        intercept=args.intercept,
        weights=args.weights,
        engine=args.engine,
        batch_rows=args.batch_rows,
        logdir=args.logdir if _is_chief() else None,
        **covariance(args.cov),
        **penalty(args),
    )
    if args.penalty != "none":
        return penalized_outputs(args, fit, started)
    if not fit.cluster.is_chief:
        return 0  # the same numbers as the chief's, which writes them
    print(fit.summary())
    # Outputs, each written whole or not at all. A fit that has not converged
    # still gets its JSON (which says so) and plots, never an export that a
    # server would use as if it were a result.
    if args.json is not None:
        write_json(args.json, fit.to_dict())
    if args.out is not None:
        draw(args.out, fit)
    if not fit.converged:
        from linreg.results import NotConvergedError

        skipped = f"; {args.export} was not written" if args.export is not None else ""
        raise NotConvergedError(f"the fit has NOT converged after {fit.epochs} epochs{skipped}; {fit.advice()}")
    if args.export is not None:
        fit.export(args.export, force=args.force)
    print(f"done in {time.perf_counter() - started:.2f} s")
    return 0


def _is_chief():
    """Whether this process writes the outputs: alone, or the first of several workers (engine/cluster.py)."""
    from linreg.engine.cluster import read_config

    return read_config().rank == 0


def draw(out, fit):
    from linreg.io import plots
    from linreg.io.files import make_dir

    out = make_dir(out)
    plots.loss_per_epoch(out / PLOTS["loss"], fit.history["loss"], rounds=fit.history["round"])
    if fit.table.x is None:
        return  # streamed: the rows were never held, so there is nothing to scatter
    fitted = fit.predict(fit.table.x)
    plots.predicted_vs_actual(out / PLOTS["actual"], fit.table.y, fitted, fit.target)
    plots.residuals_vs_fitted(out / PLOTS["residuals"], fitted, fit.table.y - fitted, fit.target)


def penalty(args):
    """The penalty's flags as fit()'s keywords (fit() checks them)."""
    return dict(penalty=args.penalty, alpha=args.alpha, l1_ratio=args.l1_ratio, alphas=args.alphas, cv=args.cv,
                cv_seed=args.cv_seed, select=args.select, standardize=args.standardize)


def penalized_outputs(args, fit, started):
    """A penalized fit's report and outputs, written by the chief alone."""
    from linreg.io import plots
    from linreg.io.files import make_dir, write_json

    if not _is_chief():
        return 0  # the same numbers as the chief's
    print(fit.summary())
    if args.json is not None:
        write_json(args.json, fit.to_dict())
    if args.out is not None:
        out, (i, alphas), marked = make_dir(args.out), fit.curve(), fit.marked()
        title = f" (l1_ratio {fit.l1_ratio_:g})"
        plots.penalty_path(out / PENALTY_PLOTS["path"], alphas, fit.path["coefficients"][i], fit.features, marked,
                           f"Coefficients along the penalty path{title}")
        if fit.cv is not None:
            plots.cv_curve(out / PENALTY_PLOTS["cv"], alphas, fit.cv["mean"][i], fit.cv["std_error"][i], marked,
                           f"{fit.cv_folds}-fold cross-validation{title}")
    if args.export is not None:
        fit.export(args.export, force=args.force)
    print(f"done in {time.perf_counter() - started:.2f} s")
    return 0
