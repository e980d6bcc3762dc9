"""Predict with an exported model: linreg predict DIR DATA.csv [--out PRED.csv].

Loads the SavedModel that `linreg fit --export DIR` wrote, reads the feature
columns it was trained on from the CSV (other columns are ignored) and writes
one prediction per row, under the header `prediction`.
"""
from pathlib import Path

import numpy as np
import tensorflow as tf

from linreg import data, export
from linreg.cli import output_file
from linreg.files import write_text


def add_arguments(parser):
    parser.add_argument("model", type=Path, metavar="DIR", help="folder written by linreg fit --export")
    parser.add_argument("data", type=Path, metavar="DATA.csv", help="CSV with the model's feature columns")
    parser.add_argument("--out", type=output_file, metavar="PRED.csv", help="write here instead of printing")
    parser.set_defaults(run=run)


def predict(directory, path):
    """Predictions (float64 [N]) of the export in `directory` for the CSV at `path`."""
    serve, metadata = export.load(directory)
    x, _ = data.read_columns(path, metadata["features"])
    inputs = {key: tf.constant(x[:, j]) for j, key in enumerate(metadata["inputs"])}
    return serve(**inputs)["prediction"].numpy()


def run(args):
    predictions = predict(args.model, args.data)
    # repr() of a float64 is the shortest text that reads back as the same number.
    text = "prediction\n" + "".join(f"{value!r}\n" for value in map(float, np.asarray(predictions)))
    if args.out is None:
        print(text, end="")
    else:
        write_text(args.out, text)
    return 0
