"""The watchdog of a worker: it ends the process when the main thread is stuck
in a collective, and hands it SIGINT and SIGTERM (engine/cluster.py marks
each collective with `waiting`)."""
import _thread
import contextlib
import functools
import os
import signal
import threading
import time

from linreg.engine.signals import SIGNALS

# After a signal, how long a wait may still go on (a collective between live
# workers takes milliseconds).
SIGNAL_GRACE = 2.0
TICK_SECONDS = 0.25  # between two looks of the watchdog
LOST_EXIT_CODE = 1  # a lost peer: engine/cluster.WorkerFailed's code


@functools.cache
def watchdog():
    """This process's Watchdog, started on first use: the command line starts
    it first thing in a worker, so that its start is the worker's (`_meet`'s
    deadline counts from it)."""
    dog = Watchdog()
    dog.start()
    return dog


class Watchdog(threading.Thread):
    """Ends this process when its main thread is stuck in a collective, and
    hands it SIGINT and SIGTERM.

    The main thread marks each collective with `waiting(seconds, lost)`. When
    one lasts longer than `seconds`, or SIGINT or SIGTERM has come and one goes
    on SIGNAL_GRACE seconds after both, this thread prints the one `error:`
    line (`lost()`, or "interrupted") and leaves with os._exit: nothing else
    ends a thread stuck in C++.

    Signals. TensorFlow's join installs a SIGTERM handler of its own that
    swallows the signal, and holds the interpreter lock while it waits. So the
    command line blocks SIGINT and SIGTERM in a worker before any thread
    starts (every thread inherits that), and this thread alone takes them,
    with sigtimedwait, and passes each on to the main thread's Python handler
    (_thread.interrupt_main), which runs as soon as the main thread runs
    Python again. Unblocked (linreg.fit() in a program of one's own), it
    keeps the deadlines only."""

    def __init__(self):
        super().__init__(name="linreg-watchdog", daemon=True)
        self.started = time.monotonic()
        self.takes_signals = set(SIGNALS) <= signal.pthread_sigmask(signal.SIG_BLOCK, [])
        self.lock = threading.Lock()
        self.wait = None  # (since, deadline, lost) of the main thread's collective
        self.signal = None  # (number, when) of the first SIGINT or SIGTERM

    @contextlib.contextmanager
    def waiting(self, seconds, lost):
        now = time.monotonic()
        with self.lock:
            self.wait = (now, now + seconds, lost)
        try:
            yield
        finally:
            with self.lock:
                self.wait = None

    def run(self):
        while True:
            if not self.takes_signals:
                time.sleep(TICK_SECONDS)
            elif (caught := signal.sigtimedwait(SIGNALS, TICK_SECONDS)) is not None:
                # A debugger attaching (ptrace) can wake the wait with a number
                # outside SIGNALS; passing it on would kill this thread. An
                # ignored signal (`nohup` and the like) stays ignored.
                if caught.si_signo in SIGNALS and signal.getsignal(caught.si_signo) is not signal.SIG_IGN:
                    self.signal = self.signal or (caught.si_signo, time.monotonic())
                    _thread.interrupt_main(caught.si_signo)
            with self.lock:
                self._check()

    def _check(self):
        if self.wait is None:
            return
        now = time.monotonic()
        since, deadline, lost = self.wait
        if self.signal is not None and now >= max(since, self.signal[1]) + SIGNAL_GRACE:
            _leave("interrupted", 128 + self.signal[0])
        if now >= deadline:
            _leave(lost(), LOST_EXIT_CODE)


def _leave(message, code):
    os.write(2, f"error: {message}\n".encode())
    os._exit(code)
