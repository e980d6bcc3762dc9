"""`linreg fit … --workers N`: N worker processes on this machine, supervised.

Each worker is the same command line without --workers, started with a
TF_CONFIG that names N workers on 127.0.0.1 (free ports) and its own index,
exactly as on a real cluster (engine/cluster.py). Worker 0, the chief, talks
to the terminal; the others' output is kept aside. The launcher watches its
children: when one fails or dies, it stops the rest at once and prints one
line saying which, with that worker's own message, so nothing hangs and no
half-finished cluster is left running. This module never imports TensorFlow.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from linreg.errors import LinregError

POLL_SECONDS = 0.1


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
            env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
            if rank == 0:
                log, out, err = None, None, None
            else:
                log = tempfile.NamedTemporaryFile(prefix=f"linreg-worker{rank}-", suffix=".log", delete=False)
                out, err = subprocess.DEVNULL, log
            logs.append(log)
            children.append(subprocess.Popen(command, env=env, stdout=out, stderr=err))
        return _supervise(children, logs, interrupted)
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


def _supervise(children, logs, interrupted):
    while True:
        codes = [child.poll() for child in children]
        if interrupted:
            for child in children:
                if child.poll() is None:
                    child.send_signal(interrupted[0])
            for child in children:
                child.wait()
            # The chief has said "error: interrupted" itself.
            return 128 + interrupted[0]
        failed = [rank for rank, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            rank = failed[0]
            code = codes[rank]
            if rank != 0:
                # Stop the others before they notice on their own: the chief
                # would add a second line about a missing peer.
                for child in children:
                    if child.poll() is None:
                        child.kill()
                        child.wait()
                why = _last_error(logs[rank].name) if code > 0 else ""
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
