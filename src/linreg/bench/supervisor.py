"""One command run in a new process and watched, with its children, until it ends.

In: an argv (where LAUNCHED stands, the launch's time.monotonic() goes, so
the process can time its own phases from the same start), its environment
and folder, a time limit and a memory cap. Out: the wall time from launch
to exit, the peak resident memory of the whole process tree (summed RSS,
sampled every SAMPLE_SECONDS, so a JVM started by Python is counted), the
largest VmHWM of any one process in it, the tree's CPU seconds, the exit
code, and why it was stopped if it was. A stopped run, or one the caller
leaves with Ctrl-C, leaves no process behind.
"""
import contextlib
import os
import select
import subprocess
import threading
import time

from linreg.bench import memory

SAMPLE_SECONDS = 0.05
LINGER_SECONDS = 30.0  # how long descendants may outlive the process they came from
LAUNCHED = object()  # in an argv: replaced by time.monotonic() at launch


def watch(argv, env, cwd, timeout, memory_cap=None, stdout=None, stderr=None):
    """Run argv in a new process (its own session) and watch its tree until it ends.

    Returns wall seconds from launch to exit, the tree's peak summed RSS, the
    largest VmHWM of any one process in it, the tree's CPU seconds, the exit
    code, and why it was stopped, if it was (timeout, memory cap)."""
    import psutil

    seen, hwm, cpu = {}, {}, {}
    peak = [0]
    over = []
    stop = threading.Event()
    launched = time.monotonic()
    argv = [repr(launched) if arg is LAUNCHED else arg for arg in argv]
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, start_new_session=True
    )

    def sample():
        try:
            root = psutil.Process(proc.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for process in tree:
            seen.setdefault(process.pid, process)
            try:
                rss, high = memory(process.pid)
                times = process.cpu_times()
            except (OSError, psutil.Error):
                continue
            total += rss
            hwm[process.pid] = max(hwm.get(process.pid, 0), high)
            cpu[process.pid] = times.user + times.system
        peak[0] = max(peak[0], total)
        if memory_cap and total > memory_cap:
            over.append(total)

    def sampler():
        while not stop.is_set():
            sample()
            stop.wait(SAMPLE_SECONDS)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    stopped = None
    try:
        while True:
            left = launched + timeout - time.monotonic()
            if _exited(proc, max(0.0, min(0.2, left))):
                break
            if over:
                stopped = (f"stopped: the process tree held {over[0] / 2**30:.2f} GiB, "
                           f"over the cap of {memory_cap / 2**30:.2f} GiB")  # fmt: skip
            elif left <= 0:
                stopped = f"timeout: still running after {timeout:.0f} s"
            if stopped:
                break
    except BaseException:  # Ctrl-C, SIGTERM: the run is in a session of its own, so it would go on without us
        stop.set()
        thread.join()
        _kill(proc, seen)
        proc.wait()
        raise
    ended = time.monotonic()
    stop.set()
    thread.join()
    if stopped:
        _kill(proc, seen)
    returncode = proc.wait()
    # Descendants that outlive the process they came from (Spark's JVM shuts
    # itself down once its Python is gone) are waited for, then stopped.
    leftovers = [process for pid, process in seen.items() if pid != proc.pid and process.is_running()]
    _, alive = psutil.wait_procs(leftovers, timeout=LINGER_SECONDS)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    return {
        "wall_s": ended - launched,
        "peak_tree_rss_bytes": peak[0],
        "max_process_hwm_bytes": max(hwm.values(), default=0),
        "cpu_s": sum(cpu.values()),
        "processes": len(seen),
        "exit_code": returncode,
        "stopped": stopped,
        "leftovers_killed": len(alive),
    }


def _exited(proc, seconds):
    """Wait up to `seconds` for the process to end; whether it has (not reaped yet)."""
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd (Linux before 5.3): poll instead
        try:
            proc.wait(seconds)
            return True
        except subprocess.TimeoutExpired:
            return False
    try:
        return bool(select.select([pidfd], [], [], seconds)[0])
    finally:
        os.close(pidfd)


def _kill(proc, seen):
    """SIGKILL the run's process tree: its processes by id, and its process group (its session's)."""
    import psutil

    processes = list(seen.values())
    with contextlib.suppress(psutil.Error):
        processes += psutil.Process(proc.pid).children(recursive=True)
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, 9)
