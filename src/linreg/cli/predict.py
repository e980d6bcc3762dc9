"""Predict with an exported model: linreg predict DIR DATA [--out PRED.csv].

Loads the SavedModel that `linreg fit --export DIR` wrote, reads the feature
columns it was trained on from the CSV (other columns are ignored) and writes
one prediction per row, under the header `prediction`; with --interval, also
the interval's `lower` and `upper` ends (--weights COL: the new rows' weights,
which a prediction interval of a weighted model needs).
"""
from pathlib import Path

import argparse

from linreg.cli.flags import output_file, positive_float


def probability(text):
    value = positive_float(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def add_arguments(parser):
    parser.add_argument("model", type=Path, metavar="DIR", help="folder written by linreg fit --export")
    parser.add_argument("data", type=Path, metavar="DATA", help="a CSV or Parquet file, a folder or a glob of them, with the model's feature columns")
    parser.add_argument("--out", type=output_file, metavar="PRED.csv", help="write here instead of printing")
    parser.add_argument(
        "--interval",
        choices=("confidence", "prediction"),
        help="also an interval that covers with probability 1 - ALPHA (see --alpha): for the mean at each row "
        "(confidence) or for a new observation (prediction)",
    )
    parser.add_argument(
        "--alpha", type=probability, default=0.05, help="1 - the interval's coverage (default 0.05: 95%%)"
    )
    parser.add_argument(
        "--weights", metavar="COL",
        help="the new rows' observation weights, from this column, for --interval prediction: a new observation's "
        "variance is the residual variance over its weight (needed for a model fitted with weights)",
    )  # fmt: skip
    parser.set_defaults(check=check, run=run)


def check(args):
    """Before anything runs: the predictions may not write over the data or the model."""
    from linreg.io.files import check_apart, check_output

    check_apart({"the input": args.data, "the model": args.model}, {"--out": args.out})
    if args.out is not None:
        check_output(args.out, "--out")


def run(args):
    import linreg
    from linreg.io.files import write_text

    import numpy as np

    from linreg.errors import LinregError

    model = linreg.load(args.model)
    if args.interval is None and args.weights is None:
        columns, header = [model.predict(args.data)], "prediction"
    else:
        columns, header = model.predict(args.data, args.interval, args.alpha, args.weights), "prediction,lower,upper"
    bad = np.flatnonzero(~np.all(np.isfinite(np.column_stack(columns)), axis=1))
    if len(bad):
        raise LinregError(
            f"{args.data}: the prediction for data row {bad[0] + 1} overflows float64 (its values are too large "
            "for this model); nothing was written"
        )
    # repr() of a float64 is the shortest text that reads back as the same number.
    text = header + "\n" + "".join(",".join(f"{float(v)!r}" for v in row) + "\n" for row in zip(*columns))
    if args.out is None:
        print(text, end="")
    else:
        write_text(args.out, text)
    return 0
