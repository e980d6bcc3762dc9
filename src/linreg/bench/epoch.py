"""The epoch benchmark's harness: every system on every case, timed.

In: cases as (N, d) pairs and systems as in epoch_systems.SYSTEMS. Out: the
report, a JSON-ready dict -- per case the median seconds per epoch of each
system, the fastest of this project's modes ("ours"), the mode `--compile
auto` would pick, and the memory floor (the time to read x and y once at
the read bandwidth measured in the same run); beside the cases, the systems
that could not run and why.
"""
import math
import statistics
import time

from linreg.bench import is_ours
from linreg.bench.epoch_report import format_seconds
from linreg.bench.epoch_systems import SYSTEMS, make_data

# The floor's bandwidth is measured on a case's own buffers when they are
# well beyond the caches (L3 here is 32 MiB); smaller cases sit in cache,
# where one read costs less than a call's overhead, and use the bandwidth
# measured on the largest case of the run.
BANDWIDTH_MIN_BYTES = 64 * 2**20
MIN_EPOCHS = 10


def epochs_for(n, d, overhead, target_seconds):
    """Epochs per timed call: enough that a call takes about `target_seconds`.

    A rough cost model is enough here: the system's fixed cost per epoch
    (`overhead`, from SYSTEMS) plus a few passes over the data. At least
    MIN_EPOCHS, so that what a system does once per call (this project's
    trainer, for one, measures the final state once more after the last
    epoch) weighs little against the epochs themselves.
    """
    per_epoch = overhead + 4.0 * (n * d + n) / 2e9
    return int(min(20_000, max(MIN_EPOCHS, round(target_seconds / per_epoch))))


def seconds_per_epoch(runs, repeats):
    """Median seconds per epoch of each run, {name: (run, epochs)}, warmed
    up already, over `repeats` timed calls. The systems take turns, call by
    call, so that a change in the machine's load falls on all of them alike
    rather than on whichever ran during it."""
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (run, epochs) in runs.items():
            start = time.perf_counter()
            run(epochs)
            times[name].append((time.perf_counter() - start) / epochs)
    return {name: statistics.median(found) for name, found in times.items()}


def read_bandwidth(x, y, repeats=7):
    """Bytes per second for reading x and y once: the fastest of numpy's and
    TensorFlow's (multi-threaded) sums, best of `repeats`."""
    import tensorflow as tf

    tx, ty = tf.constant(x), tf.constant(y)
    readers = (lambda: (x.sum(), y.sum()), lambda: (float(tf.reduce_sum(tx)), float(tf.reduce_sum(ty))))
    best = math.inf
    for read in readers:
        read()
        for _ in range(repeats):
            start = time.perf_counter()
            read()
            best = min(best, time.perf_counter() - start)
    return (x.nbytes + y.nbytes) / best


def benchmark(cases, repeats=5, target_seconds=0.25, systems=None, echo=None):
    """Time every system on every case; return the report (JSON-ready)."""
    from linreg.engine.driver import resolve_compile

    systems = SYSTEMS if systems is None else systems
    echo = echo or (lambda *a, **k: None)
    report = {"cases": [], "unavailable": {}}
    bandwidths = {}
    for n, d in cases:
        x, y = make_data(n, d)
        case = {"n": n, "d": d, "bytes": x.nbytes + y.nbytes, "systems": {}}
        if case["bytes"] >= BANDWIDTH_MIN_BYTES:
            bandwidths[(n, d)] = read_bandwidth(x, y)
        runs = {}
        for name, (make, overhead) in systems.items():
            epochs = epochs_for(n, d, overhead, target_seconds)
            try:
                run = make(x, y)
                run(epochs)  # the warm-up call (tracing, compiling), untimed
                runs[name] = (run, epochs)
            except Exception as error:  # a peer that is missing or fails on this case
                reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                report["unavailable"].setdefault(name, reason[:200])
                echo(f"  N={n:.0e} d={d} {name}: unavailable ({reason[:80]})", flush=True)
        for name, seconds in seconds_per_epoch(runs, repeats).items():
            case["systems"][name] = seconds
            echo(f"  N={n:.0e} d={d} {name:14s} {format_seconds(seconds)} per epoch ({runs[name][1]} epochs a call)",
                 flush=True)
        del runs
        ours_here = {k: v for k, v in case["systems"].items() if is_ours(k)}
        case["ours"] = min(ours_here, key=ours_here.get) if ours_here else None
        case["auto"] = f"linreg {resolve_compile('auto', n, d, 10_000)}"
        report["cases"].append(case)
        del x, y
    if not bandwidths and cases:  # no case beyond the caches: use the largest one
        n, d = max(cases, key=lambda case: case[0] * (case[1] + 1))
        bandwidths[(n, d)] = read_bandwidth(*make_data(n, d))
    bandwidth = max(bandwidths.values()) if bandwidths else None
    report["bandwidth_bytes_per_s"] = bandwidth
    for case in report["cases"]:
        measured = bandwidths.get((case["n"], case["d"]), bandwidth)
        case["floor_s"] = case["bytes"] / measured if measured else None
    return report
