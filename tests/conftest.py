"""Shared by the tests: TensorFlow imported once, quietly, the way the CLI does it;
`train`, the driver with plain gradient descent as most tests use it;
`processes`, for the processes a test starts; and a check that no process the
tests started outlives them."""
import contextlib
import ctypes
import os
import signal
import subprocess
from pathlib import Path

import pytest

from linreg.cli import import_tensorflow_quietly

import_tensorflow_quietly()

from linreg.core.optimizers import GradientDescent  # noqa: E402
from linreg.engine import driver  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36  # from <linux/prctl.h>


def train(model, x, y, learning_rate, epochs, tol=0.0, compile="auto", optimizer=None, **kwargs):
    optimizer = GradientDescent(model, learning_rate) if optimizer is None else optimizer
    return driver.train(model, optimizer, x, y, epochs, tol=tol, compile=compile, **kwargs)


def descendants(pid):
    """Every process below `pid`, from /proc: the children of each of its threads, and theirs."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = [int(child) for child in (task / "children").read_text().split()]
        except OSError:  # the thread or the process has ended
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def running(pid):
    """Whether `pid` is alive: it exists and is not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="session", autouse=True)
def no_process_outlives_the_tests():
    """Fail the run if a process it started is still alive at its end (and kill it).

    The test run first becomes a child subreaper: a process whose parent dies
    (a worker whose launcher got kill -9) is then re-parented to the run
    instead of to init, so it still counts as the run's."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)
    # A run started in the background (`pytest &` in a script) ignores SIGINT,
    # and so would every process it starts: the tests that send SIGINT need
    # it to act, as it does for a user at a terminal.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    alive = [pid for pid in descendants(os.getpid()) if running(pid)]
    commands = {}
    for pid in alive:
        try:
            commands[pid] = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    for pid in descendants(os.getpid()):
        try:
            os.waitpid(pid, os.WNOHANG)  # orphans re-parented here are ours to reap
        except ChildProcessError:
            pass
    if alive:
        pytest.fail(f"{len(alive)} processes started by the tests were still running at their end (now killed): "
                    f"{commands}")


@pytest.fixture
def processes():
    """`start(command, **popen)`: a process for this test, its output piped as
    text. Whatever happens in the test, every process that appeared below the
    test run meanwhile is killed at its end: those started, theirs, and the
    orphans re-parented to the run (a worker whose launcher was killed)."""
    before, started = set(descendants(os.getpid())), []

    def start(command, **popen):
        started.append(process := subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                                   text=True, **popen))
        return process

    yield start
    for pid in set(descendants(os.getpid())) - before:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for process in started:
        process.communicate()
