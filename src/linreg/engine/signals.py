"""SIGINT and SIGTERM: stop cleanly, never in the middle of a write.

Outside training the CLI turns SIGTERM into an exception like Ctrl-C's, so
`finally` blocks remove temporary files on the way out. During training the
signal only sets a flag; the driver stops after the current chunk, saves its
checkpoint and raises Interrupted.
"""
import contextlib
import signal
import threading

from linreg.errors import LinregError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(LinregError):
    """Stopped by a signal: `error: interrupted`, exit code 128 + the signal's number."""

    def __init__(self, signum):
        super().__init__("interrupted")
        self.exit_code = 128 + int(signum)


def raise_interrupted(signum, frame):
    raise Interrupted(signum)


def _main_thread():
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def deferred():
    """While inside, SIGINT and SIGTERM are noted in the yielded list instead
    of acting; the handlers in force before are put back on the way out."""
    caught = []
    if not _main_thread():  # signal handlers can only be set from the main thread
        yield caught
        return
    # A signal the process was told to ignore (`nohup`, a script's `trap '' INT`) stays ignored.
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    previous = {signum: handler for signum, handler in previous.items() if handler is not signal.SIG_IGN}
    for signum in previous:
        signal.signal(signum, lambda number, frame: caught.append(number))
    try:
        yield caught
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
