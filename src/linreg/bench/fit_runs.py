"""One run of the fit benchmark: one system fitting one file in a fresh process
(run_once), or several fitting it warm in one process (run_warm, linreg.bench.warm_fits).

In: a system's name (from SYSTEMS, or TF_BASELINE / PYARROW_READ, the two
baselines), the file, its width and format, the reference coefficients, a
time limit and a memory cap. Out: the run's figures -- those of
supervisor.watch, the phases the process timed itself, the coefficients and
their largest relative difference to the reference, and a status: "ok"
(within TARGET), "inexact" (fitted, but not within it) or "failed" (with
the error that says why); warm, the seconds of each timed call and their
median instead of the process's figures. `summarize` makes one figure of
repeated runs.
"""
import json
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

from linreg.bench.fit_data import max_relative_difference
from linreg.bench.supervisor import LAUNCHED, watch

TARGET = 1e-8  # relative difference to the reference that counts as "fitted"
SPARK_DRIVER_MEMORY = "8g"
TF_BASELINE = "import tensorflow"
PYARROW_READ = "pyarrow read"


def _linreg(engine, workers=1, pinned=False, stream=False):
    return {"kind": "linreg", "engine": engine, "workers": workers, "pinned": pinned, "stream": stream}


def _peer(name):
    return {"kind": "peer", "script": name}  # the SYSTEM argument of linreg.bench.peers


SYSTEMS = {
    "linreg auto": _linreg("auto"),
    "linreg memory": _linreg("memory"),
    "linreg moments": _linreg("moments"),
    "linreg moments 2w": _linreg("moments", 2),
    "linreg moments pinned": _linreg("moments", 1, pinned=True),
    "linreg moments pinned 2w": _linreg("moments", 2, pinned=True),
    "linreg stream": _linreg("stream", stream=True),
    "linreg stream 2w": _linreg("stream", 2, stream=True),
    # Robust standard errors: after training, one more pass over the files for the sandwich's sums.
    "linreg moments HC1": {**_linreg("moments"), "cov": "HC1"},
    "pandas + statsmodels": _peer("statsmodels"),
    "scikit-learn": _peer("sklearn"),
    "numpy lstsq": _peer("lstsq"),
    "Spark MLlib": _peer("spark"),
}


def warm(path):
    """Read the file once, so that the run after this starts from the page cache; seconds taken."""
    started = time.perf_counter()
    buffer = bytearray(16 * 2**20)
    with open(path, "rb", buffering=0) as stream:
        while stream.readinto(buffer):
            pass
    return time.perf_counter() - started


def _tail(path, lines=12, limit=2000):
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])[-limit:]


def _headline(text):
    """The line of an error's text that says what went wrong."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("error:"):
            return line
    return lines[-1] if lines else ""


def linreg_command():
    script = Path(sys.executable).with_name("linreg")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "linreg"]


def child_env(pinned=False):
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.pop("LINREG_PIN_CORES", None)
    if pinned:
        env["LINREG_PIN_CORES"] = "1"
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    return env


def command(name, path, d, fmt, out):
    """The argv of one run of system `name` (or PYARROW_READ, TF_BASELINE), and whether it is pinned."""
    peer = [sys.executable, "-m", "linreg.bench.peers"]
    if name == TF_BASELINE:
        return [sys.executable, "-c", "import tensorflow"], False
    if name == PYARROW_READ:
        return [*peer, "pyarrow", str(path), fmt, str(d), str(out), LAUNCHED], False
    spec = SYSTEMS[name]
    if spec["kind"] == "peer":
        return [*peer, spec["script"], str(path), fmt, str(d), str(out), LAUNCHED, SPARK_DRIVER_MEMORY], False
    argv = [*linreg_command(), "fit", str(path), "--target", "y", "--engine", spec["engine"]]
    if spec["workers"] != 1:
        argv += ["--workers", str(spec["workers"])]
    if spec.get("cov"):
        argv += ["--cov", spec["cov"]]
    return argv + ["--json", str(out), "--quiet"], spec["pinned"]


def _launch(argv, pinned, scratch, timeout, memory_cap):
    """argv run in the folder `scratch` and watched: its figures, with the error that stopped it or None."""
    load = os.getloadavg()[0]
    with open(scratch / "stdout", "wb") as stdout, open(scratch / "stderr", "wb") as stderr:
        figures = watch(argv, child_env(pinned), scratch, timeout, memory_cap, stdout, stderr)
    figures["load_average_1min_before"] = load
    figures["command"] = shlex.join("<launch time>" if arg is LAUNCHED else arg for arg in argv)
    error = figures.pop("stopped")
    if error is None and figures["exit_code"] != 0:
        stderr_text = _tail(scratch / "stderr")
        error = _headline(stderr_text) or f"exit code {figures['exit_code']}"
        figures["stderr_tail"] = stderr_text
    return figures, error


def _judged(figures, coefficients, reference, error):
    """The figures with the coefficients, their largest relative difference to the reference and a status."""
    figures["coefficients"] = coefficients
    figures["max_rel_diff"] = None
    if coefficients is not None:
        try:
            figures["max_rel_diff"] = max_relative_difference(coefficients, reference)
        except (ValueError, TypeError) as problem_:
            error = error or f"coefficients: {problem_}"
    elif error is None:
        error = "no coefficients in its output"
    figures["meets_target"] = figures["max_rel_diff"] is not None and figures["max_rel_diff"] <= TARGET
    figures["error"] = error
    figures["status"] = "failed" if error else ("ok" if figures["meets_target"] else "inexact")
    return figures


def run_once(name, path, d, fmt, reference, timeout, memory_cap):
    """One fresh-process run of system `name` (or PYARROW_READ, TF_BASELINE) on the file; its figures."""
    with tempfile.TemporaryDirectory(prefix="linreg-fitbench-") as scratch:
        scratch = Path(scratch)
        out = scratch / "out.json"
        argv, pinned = command(name, path, d, fmt, out)
        figures, error = _launch(argv, pinned, scratch, timeout, memory_cap)
        result = {}
        if out.is_file():
            try:
                result = json.loads(out.read_text())
            except ValueError as broken:
                error = error or f"unreadable JSON output: {broken}"
    figures["phases"] = result.get("phases")
    figures["pass_s"] = result.get("pass_seconds")  # linreg's streamed pass, timed inside the process
    figures["infer_s"] = (result.get("timings") or {}).get("infer")  # with --cov, the second pass's
    if result.get("vmhwm_bytes"):  # the process's own last word on its peak, after the last sample
        figures["max_process_hwm_bytes"] = max(figures["max_process_hwm_bytes"], result["vmhwm_bytes"])
    if name == "Spark MLlib" and figures["phases"]:
        figures["spark_session_to_coefficients_s"] = figures["phases"]["fitted_s"] - figures["phases"]["session_s"]
    if name in (TF_BASELINE, PYARROW_READ):
        figures["status"] = "ok" if error is None else "failed"
        figures["error"] = error
        return figures
    return _judged(figures, result.get("coefficients"), reference, error)


def run_warm(names, path, small, d, fmt, reference, calls, timeout, memory_cap):
    """The systems `names` fitting the file warm, all in one fresh process (linreg.bench.warm_fits), each
    after an untimed fit of the file `small`: (that process's figures, {name: its figures}), where
    a system's wall_s is the median of its `calls` timed calls."""
    with tempfile.TemporaryDirectory(prefix="linreg-fitbench-") as scratch:
        scratch = Path(scratch)
        out = scratch / "out.json"
        argv = [sys.executable, "-m", "linreg.bench.warm_fits", str(path), fmt, str(d), str(small), str(calls),
                str(out), SPARK_DRIVER_MEMORY, *names]  # fmt: skip
        process, error = _launch(argv, False, scratch, timeout, memory_cap)
        measured = json.loads(out.read_text()) if out.is_file() else {}
    process["error"] = error
    systems = {}
    for name in names:
        got = measured.get(name, {})
        times = got.get("calls_s", [])
        figures = {"calls_s": times, "wall_s": statistics.median(times) if times else None, "engine": got.get("engine")}
        # A system that had not made all its calls when the process ended was stopped with it.
        stopped = error if len(times) < calls else None
        systems[name] = _judged(figures, got.get("coefficients"), reference, got.get("error") or stopped)
    return process, systems


def summarize(runs):
    """One figure from repeated runs: median wall time, largest peaks, the worst accuracy."""
    good = [run for run in runs if run["status"] != "failed"]
    if not good:
        return {**runs[-1], "runs": runs}
    summary = dict(good[-1])
    summary["wall_s"] = statistics.median(run["wall_s"] for run in good)
    for key in ("peak_tree_rss_bytes", "max_process_hwm_bytes"):
        summary[key] = max(run[key] for run in good)
    summary["cpu_s"] = statistics.median(run["cpu_s"] for run in good)
    passes = [run["pass_s"] for run in good if run.get("pass_s") is not None]
    summary["pass_s"] = statistics.median(passes) if passes else None
    diffs = [run["max_rel_diff"] for run in good if run.get("max_rel_diff") is not None]
    if diffs:
        summary["max_rel_diff"] = max(diffs)
    if summary.get("spark_session_to_coefficients_s") is not None:
        summary["spark_session_to_coefficients_s"] = statistics.median(
            run["spark_session_to_coefficients_s"] for run in good
        )
    summary["failed_runs"] = len(runs) - len(good)
    summary["runs"] = runs
    return summary
