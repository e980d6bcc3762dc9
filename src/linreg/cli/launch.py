"""`linreg fit … --workers N`: N worker processes on this machine, supervised.

Each worker is the same command line without --workers, started with a
TF_CONFIG that names N workers on 127.0.0.1 (free ports) and its own index,
exactly as on a real cluster (engine/cluster.py). Worker 0, the chief, talks
to the terminal; the others' output is kept aside. The launcher watches its
children: when one fails or dies, it stops the rest at once and prints one
line saying which, with that worker's own message, so nothing hangs and no
half-finished cluster is left running; and they die with it, even when it is
killed with kill -9. This module never imports TensorFlow.
"""
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from linreg.errors import LinregError

POLL_SECONDS = 0.1
# A chief that stopped because a peer stopped answering may be reaped before
# that peer: wait this long for the peer's own failure, the better message.
GRACE_SECONDS = 2.0
# The exit codes of a worker that lost a peer (engine.cluster.WorkerFailed)
# and of bad input (the same for every worker, so its own words are the line).
LOST_PEER, BAD_INPUT = 1, 2
PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class ChiefOutput:
    """The chief's stderr, passed through as it comes (progress, notes) except
    its `error:` lines, which are held: the launcher decides which one line the
    user sees."""

    def __init__(self, stream):
        self.stream, self.errors = stream, []
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _pump(self):
        out = sys.stderr.buffer if hasattr(sys.stderr, "buffer") else None
        pending = b""
        for chunk in iter(lambda: self.stream.read1(65536), b""):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._line(line + b"\n", out)
            if pending and not b"error: ".startswith(pending[:7]) and not pending.startswith(b"error: "):
                self._write(pending, out)  # a progress line refreshing with \r
                pending = b""
        if pending:
            self._line(pending, out)

    def _line(self, line, out):
        if line.startswith(b"error: "):
            self.errors.append(line.decode(errors="replace").strip())
        else:
            self._write(line, out)

    @staticmethod
    def _write(data, out):
        if out is not None:
            out.write(data)
            out.flush()

    def finish(self):
        self.thread.join(timeout=5)


def free_ports(count):
    """`count` TCP ports free on 127.0.0.1 now (the OS picks them)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def without_workers(argv):
    """argv with its --workers flag (either spelling) taken out."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def dies_with(parent):
    """A Popen preexec_fn: the child is killed (SIGKILL) when `parent` dies,
    even by kill -9, so that no worker goes on, or writes outputs, after its
    command has gone. The kernel sends the signal when the thread that forked
    the child ends: here the main thread, which lives as long as the process."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork, not in the child

    def arrange():
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the line above
            os._exit(1)

    return arrange


def _last_error(path):
    try:
        with open(path, errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines if line.startswith("error: ")]
    return errors[-1][len("error: "):] if errors else (lines[-1] if lines else "")


def _describe(code):
    return f"was killed by signal {-code}" if code < 0 else f"stopped with exit code {code}"


def launch_workers(argv, workers):
    if os.environ.get("TF_CONFIG"):
        raise LinregError("--workers starts its own cluster; leave it out when TF_CONFIG is set")
    ports = free_ports(workers)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    command = [sys.executable, "-m", "linreg", *without_workers(argv)]
    logs, children = [], []
    interrupted = []

    def forward(signum, frame):
        interrupted.append(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for rank in range(workers):
            env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": rank}}))
            if rank == 0 and sys.stderr.isatty():
                env["LINREG_LAUNCHER_TTY"] = "1"
            if rank == 0:
                log, out, err = None, None, subprocess.PIPE
            else:
                log = tempfile.NamedTemporaryFile(prefix=f"linreg-worker{rank}-", suffix=".log", delete=False)
                out, err = subprocess.DEVNULL, log
            logs.append(log)
            children.append(
                subprocess.Popen(command, env=env, stdout=out, stderr=err, preexec_fn=dies_with(os.getpid()))
            )
        chief = ChiefOutput(children[0].stderr)
        try:
            return _supervise(children, logs, interrupted, chief)
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
            chief.finish()
            if chief.errors and not getattr(chief, "silenced", False):
                print(chief.errors[-1], file=sys.stderr)
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
        for log in logs:
            if log is not None:
                log.close()
                os.unlink(log.name)
        for s, handler in previous.items():
            signal.signal(s, handler)


def _supervise(children, logs, interrupted, chief):
    while True:
        codes = [child.poll() for child in children]
        if interrupted:
            for child in children:
                if child.poll() is None:
                    child.send_signal(interrupted[0])
            for child in children:
                child.wait()
            # The chief says "error: interrupted" itself.
            return 128 + interrupted[0]
        failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
        if failed == [0] and codes[0] == LOST_PEER:
            deadline = time.monotonic() + GRACE_SECONDS
            while time.monotonic() < deadline and not any(c.poll() not in (None, 0) for c in children[1:]):
                time.sleep(POLL_SECONDS)
            codes = [child.poll() for child in children]
            failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            # A worker that died or failed on its own says more than one that lost it.
            rank = ([r for r in failed if r != 0] or failed)[0] if codes[0] == LOST_PEER else failed[0]
            code = codes[rank]
            if rank != 0:
                chief.silenced = True
                # Stop the others before they notice on their own: the chief
                # would add a second line about a missing peer.
                for child in children:
                    if child.poll() is None:
                        child.kill()
                        child.wait()
                why = _last_error(logs[rank].name) if code > 0 else ""
                if code == BAD_INPUT and why:
                    raise WorkerError(why, code)
                why = f": {why}" if why else ""
                raise WorkerError(
                    f"worker {rank} of {len(children)} {_describe(code)}{why}; the other workers were stopped. "
                    "Rerun the same command (with --checkpoint to continue where it stopped)",
                    code if code > 0 else 1,
                )
            for child in children:  # the chief failed and said why
                if child.poll() is None:
                    child.kill()
                    child.wait()
            if code < 0:
                raise WorkerError(f"worker 0 of {len(children)} {_describe(code)}; the other workers were stopped", 1)
            return code
        if all(code == 0 for code in codes):
            return 0
        time.sleep(POLL_SECONDS)


class WorkerError(LinregError):
    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code
