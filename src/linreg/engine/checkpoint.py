"""Checkpoints: save a run's model, optimizer, loop state and history, and resume it.

`tf.train.Checkpoint` saves every variable reachable from the objects it is
given; `tf.train.CheckpointManager` numbers the saves, keeps the last few
and updates the folder's `checkpoint` index only after a save is complete,
so a run killed mid-save leaves the previous checkpoint as the latest.

A checkpoint also stores a description of the data and settings it was made
for (`settings`); a run with different ones is refused, since resuming it
would mix two different trainings. What may change between runs without
changing the problem is left out: the epoch cap (so a run stopped at its cap
continues with a larger one), the batch size of the streamed engines, and
the compile mode "auto" (the driver records the mode that actually ran,
which does change the last bits of every epoch).
"""
import errno
import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from linreg.errors import LinregError

SAVE_EVERY_SECONDS = 5.0
KEEP = 2
INDEX = "checkpoint"  # the file CheckpointManager keeps in the folder


class DiskFullError(LinregError):
    """No room for the next checkpoint (exit code 1). Not bad input (2): the
    same command, run again once there is room, resumes from the last save."""

    exit_code = 1


# What a full disk looks like: TensorFlow's writers report ENOSPC and EDQUOT
# as RESOURCE_EXHAUSTED; Python's, as these numbers.
FULL = (errno.ENOSPC, errno.EDQUOT)


def _history_variable(dtype, shape, name):
    # A variable whose first dimension may change: history grows with every save.
    return tf.Variable(np.zeros(shape, dtype), shape=tf.TensorShape([None, *shape[1:]]), trainable=False, name=name)


def fingerprint(*parts):
    """A SHA-256 digest of `parts`, arrays by their bytes, Rows by those of the
    array they make up, and anything else by its JSON text: the same parts
    give the same text."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            part = Rows(part.dtype, part.shape, [part])
        if isinstance(part, Rows):
            digest.update(str((part.dtype.str, part.shape)).encode())
            for block in part.blocks:
                digest.update(np.ascontiguousarray(block, part.dtype).data)  # (no copy of a contiguous one)
        else:
            digest.update(json.dumps(part).encode())
    return digest.hexdigest()


@dataclass
class Rows:
    """An array of `shape` given as blocks of its rows, in order."""

    dtype: np.dtype
    shape: tuple
    blocks: object  # an iterable of arrays


def files(paths):
    """What identifies data files without reading them again: each one's
    full path, size and modification time."""
    return [[str(Path(path).resolve()), (stat := Path(path).stat()).st_size, stat.st_mtime_ns] for path in paths]


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
        self.saved_epoch = 0  # where the latest complete checkpoint stands

    def _objects(self, model, optimizer, state, history):
        return tf.train.Checkpoint(
            model=model,
            optimizer=optimizer,
            loop=state,
            settings=tf.Variable(json.dumps(self.settings, sort_keys=True), trainable=False),
            history=history,
        )

    def restore(self, model, optimizer, state, compile):
        """Load the latest checkpoint into model, optimizer and state; return
        its history (or None when there is none to resume). `compile` is the
        mode the epochs run in, part of the settings."""
        self.settings["compile"] = compile
        d, dtype = int(model.W.shape[0]), model.W.dtype.as_numpy_dtype
        self.history = tf.Module(name="history")
        self.history.arrays = [
            _history_variable(dtype, shape, name)
            for shape, name in (([0], "loss"), ([0], "gradient_norm"), ([0, d], "W"), ([0], "b"))
        ]
        self.checkpoint = self._objects(model, optimizer, state, self.history)
        if self.writer:
            try:
                self.directory.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise LinregError(f"cannot create checkpoint folder {self.directory}: {error.strerror}") from None
        latest = self._latest()  # first: the manager reads the index too, and fails on a damaged one with a traceback
        if self.writer:
            self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep=KEEP)
            self._remove_unfinished()
        return None if latest is None else self._restore(latest, state)

    def _latest(self):
        """The latest checkpoint's path, or None when the folder has no index yet."""
        if not (self.directory / INDEX).is_file():
            return None
        try:
            state = tf.train.get_checkpoint_state(str(self.directory))
        except ValueError:  # an empty index, or bytes that are not text
            state = None
        if state is None:  # (TensorFlow also answers None for text it cannot parse)
            raise self._damaged(f"its index file {INDEX} cannot be read")
        return state.model_checkpoint_path

    def _damaged(self, why):
        return LinregError(
            f"checkpoint folder {self.directory} is damaged: {why}; remove the folder to start afresh, "
            "or give another folder"
        )

    def _restore(self, latest, state):
        name = Path(latest).name
        try:
            saved = json.loads(tf.train.load_variable(latest, "settings/.ATTRIBUTES/VARIABLE_VALUE"))
        except (tf.errors.OpError, ValueError, IndexError) as error:
            raise self._damaged(f"{name} cannot be read ({_reason(error)})") from None
        if saved != self.settings:
            raise self._made_for_other(saved)
        try:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
        except (tf.errors.OpError, ValueError, IndexError, AssertionError) as error:
            raise self._damaged(f"{name} cannot be read ({_reason(error)})") from None
        self.restored_from = self.saved_epoch = int(state.epoch)
        from linreg.engine.driver import History

        return History(*(variable.numpy() for variable in self.history.arrays))

    def _made_for_other(self, saved):
        """The error for a checkpoint of other data or settings: what differs, and what to do."""
        changed = [f"{key} {saved.get(key)} there, {self.settings.get(key)} here"
                   for key in sorted(set(saved) | set(self.settings))
                   if key != "data" and saved.get(key) != self.settings.get(key)]
        other = ["data"] if saved.get("data") != self.settings["data"] else []
        other += [f"settings ({'; '.join(changed)})"] if changed else []
        return LinregError(
            f"checkpoint folder {self.directory} was made for other {' and '.join(other)}; "
            "rerun with the same data and settings to resume, or use another folder to start afresh"
        )

    def _remove_unfinished(self):
        """Remove what saves left unfinished: the files of any checkpoint the
        index does not name (a save killed or failed half-way) and index
        files never renamed into place."""
        kept = {Path(path).name for path in self.manager.checkpoints}
        for path in self.directory.iterdir():
            if _is_leftover(path) and path.name.split(".")[0] not in kept:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    def save(self, history):
        if not self.writer:
            return
        for variable, values in zip(self.history.arrays, history.arrays()):
            variable.assign(values)
        try:
            self.manager.save()
        except (OSError, tf.errors.OpError) as error:
            self._remove_unfinished()
            if isinstance(error, tf.errors.ResourceExhaustedError) or getattr(error, "errno", None) in FULL:
                again = f"resume from epoch {self.saved_epoch}" if self.saved_epoch else "start again"
                raise DiskFullError(
                    f"the disk is full: {shutil.disk_usage(self.directory).free} bytes free in {self.directory}; "
                    f"the run can {again} once there is room"
                ) from None
            raise LinregError(f"cannot save a checkpoint in {self.directory}: {_reason(error)}") from None
        self.saved_epoch = len(history)
        self.last_save = time.monotonic()

    def due(self):
        """Whether the last save is older than `every_seconds`."""
        return time.monotonic() - self.last_save >= self.every_seconds


def _reason(error):
    """An error's own words, without TensorFlow's note of the operation that raised it."""
    text = error.message if isinstance(error, tf.errors.OpError) else str(error)
    return text.split("}} ")[-1].split(" [Op:")[0].strip()
