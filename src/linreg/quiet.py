"""TensorFlow without its log lines on stderr: for the library and the command line alike.

TensorFlow's native libraries print lines about oneDNN, CPU features and
missing CUDA drivers while they load and scan the devices -- some before
its logging reads TF_CPP_MIN_LOG_LEVEL, so whatever that says -- and its
Python logger writes INFO lines such as "Assets written to: ..." when a
SavedModel is saved. A notebook cell or a script's stderr should show none
of them, and a user's own settings should survive: a TF_CPP_MIN_LOG_LEVEL
the user set is kept, and the loggers' levels are put back after each export
or load.
"""
import contextlib
import logging
import os
import sys

_imported = False


def import_tensorflow():
    """The tensorflow module, imported (and its devices scanned) with file
    descriptor 2 pointed at /dev/null; only the first call does anything."""
    global _imported
    if _imported:
        return sys.modules["tensorflow"]
    # Read once by TensorFlow's C++ logging: it must be set before the import.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _stderr_closed():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the scan that reports the missing CUDA driver
    _imported = True
    return tf


@contextlib.contextmanager
def _stderr_closed():
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 at all: nothing to hide
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def quiet_logger():
    """TensorFlow's Python loggers (its own, and absl's, which the SavedModel
    code also writes to) at ERROR for the block, then at their levels before."""
    loggers = [logging.getLogger(name) for name in ("tensorflow", "absl")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)
