"""Predict with an exported model: linreg predict DIR DATA.csv [--out PRED.csv].

Loads the SavedModel that `linreg fit --export DIR` wrote, reads the feature
columns it was trained on from the CSV (other columns are ignored) and writes
one prediction per row, under the header `prediction`.
"""
from pathlib import Path

from linreg.cli.flags import output_file


def add_arguments(parser):
    parser.add_argument("model", type=Path, metavar="DIR", help="folder written by linreg fit --export")
    parser.add_argument("data", type=Path, metavar="DATA.csv", help="CSV with the model's feature columns")
    parser.add_argument("--out", type=output_file, metavar="PRED.csv", help="write here instead of printing")
    parser.set_defaults(run=run)


def run(args):
    import linreg
    from linreg.io.files import write_text

    predictions = linreg.load(args.model).predict(args.data)
    # repr() of a float64 is the shortest text that reads back as the same number.
    text = "prediction\n" + "".join(f"{float(value)!r}\n" for value in predictions)
    if args.out is None:
        print(text, end="")
    else:
        write_text(args.out, text)
    return 0
