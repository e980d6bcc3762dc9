"""Saving a fitted model as a TensorFlow SavedModel, and loading it back.

The export folder holds a SavedModel whose `serving_default` signature takes
one float64 vector per feature (named after the feature) and returns
{"prediction": ...} in the target's original units; the standardization is
inside the graph, so a server needs nothing else. `linreg.json` beside it
repeats the feature names, the signature's input names and the scaling for
people and for `linreg predict`.
"""
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import tensorflow as tf

from linreg.errors import LinregError
from linreg.io.files import umask

METADATA = "linreg.json"


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

        @tf.function(input_signature=[tf.TensorSpec([None, len(features)], tf.float64, name="x")])
        def predict(x):
            """Predictions for rows x [N, d] in the original units."""
            standardized = tf.cast((x - self.x_mean) / self.x_scale, dtype)
            return tf.cast(self.model(standardized), tf.float64) * self.y_scale + self.y_mean

        specs = [tf.TensorSpec([None], tf.float64, name=key) for key in input_names(features)]

        @tf.function(input_signature=specs)
        def serve(*columns):
            return {"prediction": predict(tf.stack(columns, axis=1))}

        self.predict = predict
        self.serve = serve


def check_destination(directory, force=False):
    """Refuse an existing export folder unless it may be replaced."""
    if Path(directory).exists() and not force:
        raise LinregError(f"export folder {directory} already exists; choose another or add --force to replace it")


def save(directory, model, scaled, features, target, force=False):
    """Write the export folder: built under a temporary name beside it and
    renamed into place when complete (replacing an old one only with force)."""
    directory = Path(directory)
    check_destination(directory, force)
    try:
        directory.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
        building.chmod(0o777 & ~umask())  # mkdtemp makes it private; the export is an ordinary folder
    except OSError as error:
        raise LinregError(f"cannot write export folder {directory}: {error.strerror}") from None
    old = None
    try:
        predictor = Predictor(model, scaled, features)
        tf.saved_model.save(predictor, str(building), signatures={"serving_default": predictor.serve})
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
        (building / METADATA).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
        if directory.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{directory.name}.old.", dir=directory.parent))
            os.replace(directory, old / directory.name)
        os.replace(building, directory)
    except OSError as error:
        raise LinregError(f"cannot write export folder {directory}: {error.strerror}") from None
    finally:
        shutil.rmtree(building, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def load(directory):
    """(serving function, metadata) of an export folder."""
    directory = Path(directory)
    metadata_path = directory / METADATA
    if not directory.is_dir():
        raise LinregError(f"{directory}: no such export folder; make one with linreg fit ... --export {directory}")
    if not metadata_path.is_file() or not (directory / "saved_model.pb").is_file():
        raise LinregError(f"{directory} is not a linreg export (no {METADATA} or saved_model.pb in it)")
    try:
        metadata = json.loads(metadata_path.read_text(encoding="utf-8"))
        loaded = tf.saved_model.load(str(directory))
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise LinregError(f"cannot load the export {directory}: {error}") from None
    return loaded.signatures["serving_default"], metadata
