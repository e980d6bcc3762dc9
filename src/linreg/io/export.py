"""Saving a fitted model as a TensorFlow SavedModel, and loading it back.

The export folder holds a SavedModel whose `serving_default` signature takes
one float64 vector per feature (named after the feature) and returns
{"prediction": ...} in the target's original units (a scalar per feature is
one row); `serving_float32` is the same for float32 vectors (what
`tf.constant([1.0])` makes), answering in float32, and the loaded
object's `predict(x)` takes rows [N, d] of either. The standardization is
inside the graph, so a server needs nothing else. The inputs are the model's
design: a categorical column's 0/1 indicators, a formula's columns
(`signature_inputs` in linreg.json says which is which). For intervals, the
SavedModel also holds the coefficients' covariance in original units
(`covariance`), the residual variance (`residual_variance`), its degrees
of freedom (`df_residual`) and whether the intervals use Student's t (else,
for a robust covariance, the normal: `use_t`) as variables. `linreg.json`
beside it repeats the feature names, the signature's input names and the
scaling for people and for `linreg predict`.
"""
import json
import os
import re
from pathlib import Path

import tensorflow as tf

from linreg.data.scaling import from_standardized, to_standardized
from linreg.errors import LinregError
from linreg.io.files import METADATA, atomic_path, check_export, is_export
from linreg.quiet import quiet_logger


def input_names(features):
    """Signature input names for the features: letters, digits and _ only,
    starting with a letter, all different (TensorFlow's rule for names)."""
    keys = []
    for name in features:
        key = re.sub(r"[^A-Za-z0-9_]", "_", name)
        if not key[:1].isalpha():
            key = "f_" + key
        base, k = key, 2
        while key in keys:
            key, k = f"{base}_{k}", k + 1
        keys.append(key)
    return keys


class Predictor(tf.Module):
    """The trained LinearModel wrapped in the standardization it was trained in."""

    def __init__(self, model, scaled, features, statistics=None, use_t=True):
        super().__init__(name="linreg_predictor")
        self.model = model
        if statistics is not None:
            # For intervals in any TensorFlow program: the coefficients' covariance
            # in original units, ordered (intercept, features...) -- the
            # intercept's row and column 0 for a fit through the origin -- so a
            # row x's mean has variance [1, x]·C·[1, x]ᵀ, and a new observation
            # with weight w that plus residual_variance / w (w = 1 unweighted);
            # the interval's quantile is Student's t with df_residual degrees of
            # freedom, or the normal's for a robust covariance (use_t false).
            self.covariance = tf.Variable(statistics.covariance, trainable=False, dtype=tf.float64, name="covariance")
            self.residual_variance = tf.Variable(statistics.residual_sd**2, trainable=False, dtype=tf.float64,
                                                 name="residual_variance")
            self.df_residual = tf.Variable(statistics.df_residual, trainable=False, dtype=tf.int64, name="df_residual")
            self.use_t = tf.Variable(use_t, trainable=False, dtype=tf.bool, name="use_t")
        self.x_mean = tf.Variable(scaled.x_mean, trainable=False, dtype=tf.float64, name="x_mean")
        self.x_scale = tf.Variable(scaled.x_scale, trainable=False, dtype=tf.float64, name="x_scale")
        self.y_mean = tf.Variable(scaled.y_mean, trainable=False, dtype=tf.float64, name="y_mean")
        self.y_scale = tf.Variable(scaled.y_scale, trainable=False, dtype=tf.float64, name="y_scale")
        self.feature_names = tf.Variable(list(features), trainable=False, dtype=tf.string, name="feature_names")
        dtype = model.W.dtype

        @tf.function
        def predict(x):
            """Predictions (float64) for rows x [N, d] in the original units, float32 or float64."""
            standardized = tf.cast(to_standardized(tf.cast(x, tf.float64), self.x_mean, self.x_scale), dtype)
            return from_standardized(tf.cast(self.model(standardized), tf.float64), self.y_mean, self.y_scale)

        def serving(input_dtype):
            # Any shape: a vector of rows, or a scalar for one row.
            specs = [tf.TensorSpec(None, input_dtype, name=key) for key in input_names(features)]

            @tf.function(input_signature=specs)
            def serve(*columns):
                # A scalar per feature is one row (TensorFlow Serving's callers
                # often send one); the answer comes in the inputs' dtype.
                rows = tf.stack([tf.reshape(column, [-1]) for column in columns], axis=1)
                return {"prediction": tf.cast(predict(rows), input_dtype)}

            return serve

        for input_dtype in (tf.float64, tf.float32):
            predict.get_concrete_function(tf.TensorSpec([None, len(features)], input_dtype, name="x"))
        self.predict = predict
        self.serve, self.serve_float32 = serving(tf.float64), serving(tf.float32)


def signature_inputs(features, categories=None, formula=None):
    """What each input of the signatures is, in their order: a feature column,
    one 0/1 indicator of a categorical column's level, or a column the formula
    makes of the raw columns -- the signatures take the model's design, not
    the raw data, which linreg predict and Model.predict code themselves."""
    levels = {f"{column}[{level}]": (column, level) for column, values in (categories or {}).items()
              for level in values}
    described = []
    for key, feature in zip(input_names(features), features):
        if formula is not None:
            what = f"the column {feature!r} that the formula {formula.text!r} makes of the raw columns"
        elif feature in levels:
            what = "1 where the column {!r} is {!r}, else 0".format(*levels[feature])
        else:
            what = f"the column {feature!r}"
        described.append({"input": key, "feature": feature, "is": what})
    return described


def _identity(path):
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def save(directory, model, scaled, features, target, force=False, statistics=None, columns=None, categories=None,
         formula=None, covariance=None, penalty=None, weighted=False):
    """Write the export folder: built under a temporary name beside it and
    renamed into place when complete (replacing an old one only with force).
    penalty: a penalized fit's penalty, alpha and l1_ratio (it has no intervals)."""
    directory = Path(directory)
    check_export(directory, force)
    found = _identity(directory)  # what was there when we started: to notice a concurrent writer
    with atomic_path(directory, folder=True, what="export folder") as building:
        predictor = Predictor(model, scaled, features, statistics, use_t=covariance is None or bool(covariance.use_t))
        signatures = {"serving_default": predictor.serve, "serving_float32": predictor.serve_float32}
        with quiet_logger():  # its INFO line "Assets written to: <the temporary folder>"
            tf.saved_model.save(predictor, str(building), signatures=signatures)
        metadata = {
            "target": target,
            "features": list(features),
            "inputs": input_names(features),
            "signature_inputs": signature_inputs(features, categories, formula),
            "dtype": model.W.dtype.name,
            "x_mean": scaled.x_mean.tolist(),
            "x_scale": scaled.x_scale.tolist(),
            "y_mean": scaled.y_mean,
            "y_scale": scaled.y_scale,
            "weighted": bool(weighted),  # a weighted model's prediction intervals need the new rows' weights
        }
        if categories:
            # The data's own columns and the levels of the categorical ones, to code new rows alike.
            metadata.update(columns=list(columns), categories={name: list(v) for name, v in categories.items()})
        if formula is not None:
            # Its ModelSpec: new raw rows are designed as the fit's were (data/formula.py).
            metadata["formula"] = formula.to_json()
        if statistics is not None:
            # For intervals at predict time (linreg predict --interval).
            metadata.update(
                coefficients=statistics.coefficients.tolist(),
                covariance=statistics.covariance.tolist(),
                residual_sd=statistics.residual_sd,
                df_residual=statistics.df_residual,
            )
        if penalty is not None:
            metadata["penalty"] = penalty
        if covariance is not None:
            # The covariance's type and whether its intervals use Student's t (else the normal).
            metadata.update(cov_type=covariance.cov_type, use_t=bool(covariance.use_t))
        (building / METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        if _identity(directory) != found:
            raise LinregError(
                f"another run wrote {directory} while this one was fitting; this model was not saved there "
                "(the other one is), export again to replace it"
            )


def load(directory):
    """(serving function, metadata) of an export folder."""
    directory = Path(directory)
    metadata_path = directory / METADATA
    if directory.exists() and not directory.is_dir():
        raise LinregError(f"{directory} is a file, not an export folder; give the folder linreg fit --export made")
    if not directory.is_dir():
        raise LinregError(f"{directory}: no such export folder; make one with linreg fit ... --export {directory}")
    if not is_export(directory):
        raise LinregError(f"{directory} is not a linreg export (no {METADATA} or saved_model.pb in it)")
    damaged = f"the export {directory} is damaged"
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LinregError(f"{damaged}: cannot read {METADATA} ({error}); export the model again") from None
    if not _valid_metadata(metadata):
        raise LinregError(f"{damaged}: {METADATA} does not describe a model; export the model again")
    try:
        with quiet_logger():
            loaded = tf.saved_model.load(str(directory))
        serve = loaded.signatures["serving_default"]
        # One prediction proves the variables are all there and readable.
        serve(**{key: tf.zeros([1], tf.float64) for key in metadata["inputs"]})
    except Exception as error:  # TensorFlow raises many kinds on a damaged SavedModel
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise LinregError(f"{damaged}: {reason[:200]}; export the model again") from None
    return serve, metadata


def _valid_metadata(metadata):
    if not isinstance(metadata, dict):
        return False
    features, inputs = metadata.get("features"), metadata.get("inputs")
    return (
        isinstance(metadata.get("target"), str)
        and isinstance(features, list)
        and isinstance(inputs, list)
        and len(features) == len(inputs) > 0
        and all(isinstance(name, str) for name in features + inputs)
        and all(isinstance(metadata.get(key, False), bool) for key in ("weighted", "use_t"))
        and _valid_levels(metadata)
        and ("covariance" not in metadata or _valid_statistics(metadata, len(features)))
    )


def _valid_levels(metadata):
    """The data's columns (names) and the categorical ones' levels (names), when there are any."""
    columns, categories = metadata.get("columns", []), metadata.get("categories", {})
    return (
        isinstance(columns, list) and isinstance(categories, dict)
        and all(isinstance(name, str) for name in columns)
        and all(isinstance(levels, list) and all(isinstance(level, str) for level in levels)
                for levels in categories.values())
    )  # fmt: skip


def _valid_statistics(metadata, d):
    """What intervals are computed from: a finite [d + 1, d + 1] covariance, a
    residual standard deviation >= 0 and degrees of freedom > 0."""
    import numpy as np

    try:
        covariance = np.asarray(metadata["covariance"], dtype=np.float64)
        sd, df = (float(metadata[key]) for key in ("residual_sd", "df_residual"))
    except (KeyError, TypeError, ValueError):
        return False
    numbers = all(type(metadata[key]) in (int, float) for key in ("residual_sd", "df_residual"))
    return (numbers and covariance.shape == (d + 1, d + 1) and bool(np.all(np.isfinite(covariance)))
            and np.isfinite(sd) and sd >= 0 and np.isfinite(df) and df > 0)  # fmt: skip
