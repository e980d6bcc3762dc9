"""Saving a fitted model as a TensorFlow SavedModel, and loading it back.

The export folder holds a SavedModel whose `serving_default` signature takes
one float64 vector per feature (named after the feature) and returns
{"prediction": ...} in the target's original units (a scalar per feature is
one row); `serving_float32` is the same for float32 vectors (what
`tf.constant([1.0])` makes), answering in float32, and the loaded
object's `predict(x)` takes rows [N, d] of either. The standardization is
inside the graph, so a server needs nothing else. `linreg.json` beside it
repeats the feature names, the signature's input names and the scaling for
people and for `linreg predict`.
"""
import json
import os
import re
from pathlib import Path

import tensorflow as tf

from linreg.data.scaling import from_standardized, to_standardized
from linreg.errors import LinregError
from linreg.io.files import METADATA, atomic_path, check_export, is_export


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

    def __init__(self, model, scaled, features):
        super().__init__(name="linreg_predictor")
        self.model = model
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


def _identity(path):
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return None
    return status.st_dev, status.st_ino


def save(directory, model, scaled, features, target, force=False, statistics=None, columns=None, categories=None,
         formula=None, covariance=None):
    """Write the export folder: built under a temporary name beside it and
    renamed into place when complete (replacing an old one only with force)."""
    directory = Path(directory)
    check_export(directory, force)
    found = _identity(directory)  # what was there when we started: to notice a concurrent writer
    with atomic_path(directory, folder=True, what="export folder") as building:
        predictor = Predictor(model, scaled, features)
        signatures = {"serving_default": predictor.serve, "serving_float32": predictor.serve_float32}
        tf.saved_model.save(predictor, str(building), signatures=signatures)
        metadata = {
            "target": target,
            "features": list(features),
            "inputs": input_names(features),
            "dtype": model.W.dtype.name,
            "x_mean": scaled.x_mean.tolist(),
            "x_scale": scaled.x_scale.tolist(),
            "y_mean": scaled.y_mean,
            "y_scale": scaled.y_scale,
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
    )
