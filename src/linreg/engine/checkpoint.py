"""Checkpoints: save a run's model, optimizer, loop state and history, and resume it.

`tf.train.Checkpoint` saves every variable reachable from the objects it is
given; `tf.train.CheckpointManager` numbers the saves, keeps the last few
and updates the folder's `checkpoint` index only after a save is complete,
so a run killed mid-save leaves the previous checkpoint as the latest.

A checkpoint also stores a description of the data and settings it was made
for (`settings`); a run with different ones is refused, since resuming it
would mix two different trainings.
"""
import json
import shutil
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from linreg.errors import LinregError

SAVE_EVERY_SECONDS = 5.0
KEEP = 2
INDEX = "checkpoint"  # the file CheckpointManager keeps in the folder


def _history_variable(dtype, shape, name):
    # A variable whose first dimension may change: history grows with every save.
    return tf.Variable(np.zeros(shape, dtype), shape=tf.TensorShape([None, *shape[1:]]), trainable=False, name=name)


def fingerprint(*arrays):
    """A SHA-256 digest of the bytes of `arrays`: the same data gives the same text."""
    import hashlib

    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str((array.dtype.str, array.shape)).encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def check_folder(directory):
    """Refuse a checkpoint folder that is a file, or a folder with other things in it."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise LinregError(f"checkpoint folder {directory} exists and is not a folder")
    if directory.is_dir() and any(directory.iterdir()) and not (directory / INDEX).is_file():
        if not all(_is_leftover(path) for path in directory.iterdir()):
            raise LinregError(
                f"checkpoint folder {directory} is not empty and holds no linreg checkpoint; "
                "choose a new or empty folder"
            )


def _is_leftover(path):
    # What a save leaves: numbered files, or, when killed half-way, a
    # "ckpt-N_temp" folder or a "checkpoint.tmp…" index never renamed.
    return path.name.startswith(("ckpt-", INDEX + ".tmp"))


def _is_unfinished(path):
    return (path.name.startswith("ckpt-") and path.name.endswith("_temp")) or path.name.startswith(INDEX + ".tmp")


class Checkpoints:
    """Save and restore one training run in `directory`."""

    def __init__(self, directory, settings, every_seconds=SAVE_EVERY_SECONDS, writer=True):
        self.directory = Path(directory)
        # Of several workers all restore (they must start from the same state)
        # and only the chief writes.
        self.writer = writer
        if writer:
            check_folder(self.directory)
        self.settings = dict(settings)
        self.every_seconds = every_seconds
        self.last_save = time.monotonic()
        self.restored_from = None

    def _objects(self, model, optimizer, state, history):
        return tf.train.Checkpoint(
            model=model,
            optimizer=optimizer,
            loop=state,
            settings=tf.Variable(json.dumps(self.settings, sort_keys=True), trainable=False),
            history=history,
        )

    def restore(self, model, optimizer, state):
        """Load the latest checkpoint into model, optimizer and state; return
        its history (or None when there is none to resume)."""
        d, dtype = int(model.W.shape[0]), model.W.dtype.as_numpy_dtype
        self.history = tf.Module(name="history")
        self.history.arrays = [
            _history_variable(dtype, shape, name)
            for shape, name in (([0], "loss"), ([0], "gradient_norm"), ([0, d], "W"), ([0], "b"))
        ]
        self.checkpoint = self._objects(model, optimizer, state, self.history)
        if not self.writer:
            latest = tf.train.latest_checkpoint(str(self.directory)) if self.directory.is_dir() else None
            return None if latest is None else self._restore(latest, state)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise LinregError(f"cannot create checkpoint folder {self.directory}: {error.strerror}") from None
        # Leftovers of a save that was killed before it completed: never indexed, never read.
        for path in self.directory.iterdir():
            if _is_unfinished(path) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif _is_unfinished(path):
                path.unlink(missing_ok=True)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep=KEEP)
        latest = self.manager.latest_checkpoint
        if latest is None:
            return None
        return self._restore(latest, state)

    def _restore(self, latest, state):
        saved = self._saved_settings(latest)
        if saved != self.settings:
            different = sorted(key for key in set(saved) | set(self.settings) if saved.get(key) != self.settings.get(key))
            raise LinregError(
                f"checkpoint folder {self.directory} was made for other "
                f"{'data' if different == ['data'] else 'data or settings'} ({', '.join(different)} differ); "
                "rerun with the same ones to resume, or use another folder to start afresh"
            )
        self.checkpoint.restore(latest).assert_existing_objects_matched()
        self.restored_from = int(state.epoch)
        from linreg.engine.driver import History

        return History(*(variable.numpy() for variable in self.history.arrays))

    def _saved_settings(self, path):
        try:
            text = tf.train.load_variable(path, "settings/.ATTRIBUTES/VARIABLE_VALUE")
            return json.loads(text)
        except (tf.errors.OpError, ValueError) as error:
            raise LinregError(f"checkpoint folder {self.directory}: cannot read {path}: {error}") from None

    def save(self, history):
        if not self.writer:
            return
        for variable, values in zip(self.history.arrays, history.arrays()):
            variable.assign(values)
        try:
            self.manager.save()
        except (OSError, tf.errors.OpError) as error:
            raise LinregError(f"cannot save a checkpoint in {self.directory}: {error}") from None
        self.last_save = time.monotonic()

    def due(self):
        """Whether the last save is older than `every_seconds`."""
        return time.monotonic() - self.last_save >= self.every_seconds
