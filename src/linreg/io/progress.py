"""A progress line on stderr while training runs, through tqdm.

One line, refreshed a few times a second: epoch and cap, loss, relative
gradient norm, epochs per second and elapsed time. Only on a terminal:
off a terminal (a log file, a pipe, a test) nothing is printed.
"""
import os
import sys

from tqdm import tqdm

from linreg.engine.driver import Listener


def wanted(progress, stream=None):
    """Whether to show progress: True, False, or "auto" (when stderr is a terminal)."""
    stream = sys.stderr if stream is None else stream
    if progress == "auto":
        # A chief started by `--workers` writes through its launcher, which says
        # whether its own stderr is a terminal.
        if os.environ.get("LINREG_LAUNCHER_TTY") == "1" and stream is sys.stderr:
            return True
        return bool(getattr(stream, "isatty", lambda: False)())
    return bool(progress)


class Progress(Listener):
    def __init__(self, epochs, stream=None):
        self.epochs = epochs
        self.stream = sys.stderr if stream is None else stream
        self.bar = None

    def started(self, epoch, optimizer):
        self.bar = tqdm(
            total=self.epochs,
            initial=epoch,
            file=self.stream,
            mininterval=0.2,
            bar_format="epoch {n_fmt}/{total_fmt}{postfix} | {rate_fmt} | {elapsed}",
            unit=" epochs",
            leave=False,
            dynamic_ncols=True,
        )

    def chunk(self, epoch, new, first_gradient_norm):
        if len(new.loss):
            relative = new.gradient_norm[-1] / first_gradient_norm if first_gradient_norm else 0.0
            self.bar.set_postfix_str(f"loss {new.loss[-1]:.6g}, relative gradient {relative:.2e}", refresh=False)
        self.bar.update(epoch - self.bar.n)

    def finished(self, epoch, history):
        self.bar.close()
