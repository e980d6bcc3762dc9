"""linreg: linear regression trained by a hand-written TensorFlow 2 loop.

Read in this order: model.py (the model and its loss), training.py (the step
and the loop), demo.py (the story `python main.py` tells).
"""
import os


def _import_tensorflow_quietly():
    """Import TensorFlow without its C++ start-up chatter on stderr.

    TensorFlow's native libraries print lines about oneDNN, CPU features and
    missing CUDA drivers while loading and while looking for devices. They are
    noise for a command-line tool whose stderr should hold only its own
    `error: …` line, and this build prints them whatever TF_CPP_MIN_LOG_LEVEL
    says. So file descriptor 2 points at /dev/null for the import and the
    device scan, then is put back. Python exceptions are not affected: Python
    prints them after stderr is restored.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    tf.get_logger().setLevel("ERROR")


_import_tensorflow_quietly()

from linreg.errors import DivergenceError, LinregError  # noqa: E402

__all__ = ["LinregError", "DivergenceError"]
__version__ = "0.1.0"
