"""Time from a file on disk to coefficients, here and in other systems, side by side.

    linreg bench --fit [--quick] [--large] [--systems A,B,...] [--data-dir DIR]
                       [--json PATH] [--out DIR]

For every case (N rows, d features, CSV or Parquet) one file is fitted by
ordinary least squares with an intercept, each run in a FRESH process, so
that starting Python, the imports, reading the file and solving are all in
the figure, and the memory is that process tree's alone:

  linreg memory, linreg moments, linreg stream
                    `linreg fit FILE --target y --engine ENGINE --json OUT --quiet`
                    with 1 worker; "2w" runs add `--workers 2`
  linreg moments pinned, linreg moments pinned 2w
                    the same with LINREG_PIN_CORES=1 (each worker on its own core,
                    one thread each): 1 against 2 workers is the scaling figure
  pandas + statsmodels
                    pandas.read_csv / read_parquet, then sm.OLS(y, add_constant(X)).fit()
                    (its default, pinv)
  scikit-learn      pandas reading, then LinearRegression().fit
  numpy lstsq       pyarrow reading into a float64 array with a column of ones,
                    then np.linalg.lstsq
  Spark MLlib       SparkSession local[2], driver memory 8g, no UI (the JVM's
                    start included), spark.read with a schema, VectorAssembler,
                    LinearRegression(solver="normal", regParam=0,
                    standardization=True, which without regularization leaves
                    the solution as it is); Spark's own time from session-ready
                    to coefficients is a second figure

For each run: the wall time from launch to exit; the peak resident memory of
the whole process tree (psutil, every 50 ms: RSS summed over the process and
all its descendants, so Spark's JVM is counted; pages shared between
processes are counted once per process) and the largest single process's
VmHWM; CPU seconds (user + system, summed over the tree); and whether the
coefficients came within 1e-8 of the reference, as the largest relative
difference over the intercept and every coefficient. A run that fails, runs
out of time (default 1 hour, the stream engine 15 minutes, and skipped above
N = 1e7) or passes the memory cap is a row in the table with its error, not
the end of the benchmark.

The data: x normal with correlated columns (AR(1), rho = 0.6) of different
scales (0.1 to 1000) and means (up to 100), y = x·W + 5 + noise, fixed seeds,
written once into --data-dir in chunks of 2^20 rows (pyarrow's CSVWriter,
whose text round-trips every float64 exactly, and ParquetWriter with row
groups of 2^20 rows) and reused while its sidecar `FILE.json` matches. The
reference is the float64 least-squares solution of the numbers as read back
from the file, by a streamed TSQR (the R factor of [1, X, y] for each chunk,
stacked under the running R; then a triangular solve), independent of every
system measured; it is kept in the sidecar.

Also measured the same way, in fresh processes: pyarrow alone reading each
file (pq.read_table / pyarrow.csv.read_csv), for the "moments within 2x of
pyarrow's read" target, and `python -c "import tensorflow"`, the baseline for
the "peak within TensorFlow's baseline + 1 GiB" target. Every file is read
once right before each run, so that it starts from the page cache (as long as
the file and the run fit in memory together).

The table goes to stdout as markdown (rows: cases; columns: systems; cells:
"seconds (peak GiB)"; then the best linreg engine's time over the best
peer's, among runs that met the target), with the accuracy, the targets and
the 1 -> 2 worker scaling below it; --out gets it as fitbench.md and the plot
as fitbench.png, --json every figure (rewritten after each case). The machine
is shared: the load average before each run is recorded beside it. Nothing
here is a test: speed, memory and accuracy are measured, never asserted.
"""
import argparse
import contextlib
import json
import math
import os
import select
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from linreg.cli.flags import int_at_least, output_dir, positive_float

TARGET = 1e-8  # relative difference to the reference that counts as "fitted"
SEED = 20240601
GENERATOR = 1  # bump when the data's recipe changes: cached files are then made anew
CHUNK_ROWS = 2**20
FORMATS = ("csv", "parquet")
FULL_CASES = [(n, d) for n in (10**6, 10**7) for d in (8, 64)]
# N = 1e8 only with d = 8: at d = 64 the CSV alone would be about 120 GB.
LARGE_CASES = [(10**8, 8)]
QUICK_CASES = [(10**5, 8), (10**5, 64)]
DEFAULT_DATA_DIR = Path("outputs") / "bench-data"
DEFAULT_TIMEOUT = 3600.0
DEFAULT_STREAM_TIMEOUT = 900.0
DEFAULT_STREAM_MAX_N = 10**7
SAMPLE_SECONDS = 0.05
LINGER_SECONDS = 30.0  # how long descendants may outlive the process they came from
SPARK_DRIVER_MEMORY = "8g"
TF_BASELINE = "import tensorflow"
PYARROW_READ = "pyarrow read"


# --- the systems -------------------------------------------------------------


def _linreg(engine, workers=1, pinned=False, stream=False):
    return {"kind": "linreg", "engine": engine, "workers": workers, "pinned": pinned, "stream": stream}


def _peer(name):
    return {"kind": "peer", "script": name}


SYSTEMS = {
    "linreg memory": _linreg("memory"),
    "linreg moments": _linreg("moments"),
    "linreg moments 2w": _linreg("moments", 2),
    "linreg moments pinned": _linreg("moments", 1, pinned=True),
    "linreg moments pinned 2w": _linreg("moments", 2, pinned=True),
    "linreg stream": _linreg("stream", stream=True),
    "linreg stream 2w": _linreg("stream", 2, stream=True),
    "pandas + statsmodels": _peer("statsmodels"),
    "scikit-learn": _peer("sklearn"),
    "numpy lstsq": _peer("lstsq"),
    "Spark MLlib": _peer("spark"),
}


def is_ours(name):
    return name.startswith("linreg")


def system_list(text):
    """--systems: names from SYSTEMS separated by commas (case and spaces around them do not matter)."""
    known = {name.lower(): name for name in SYSTEMS}
    names = []
    for part in text.split(","):
        name = known.get(part.strip().lower())
        if name is None:
            raise argparse.ArgumentTypeError(f"unknown system {part.strip()!r}; choose from: {', '.join(SYSTEMS)}")
        if name not in names:
            names.append(name)
    return names


def case_list(text):
    cases = set()
    for part in text.split(","):
        try:
            n, d, fmt = part.strip().split(":")
            cases.add((int(float(n)), int(d), fmt))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected N:D:FORMAT such as 1e6:8:csv, got {part!r}") from None
        if fmt not in FORMATS:
            raise argparse.ArgumentTypeError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return cases


def add_arguments(parser):
    """The flags only `linreg bench --fit` reads (bench.py adds --fit itself)."""
    group = parser.add_argument_group("time to fit (with --fit; see linreg.cli.fitbench)")
    group.add_argument(
        "--data-dir",
        type=output_dir,
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help=f"where the generated data files are cached (default {DEFAULT_DATA_DIR})",
    )
    group.add_argument(
        "--systems", type=system_list, metavar="A,B,...", help=f"run only these systems, of: {', '.join(SYSTEMS)}"
    )
    group.add_argument(
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"stop a run after this long (default {DEFAULT_TIMEOUT:.0f})",
    )
    group.add_argument(
        "--stream-timeout",
        type=positive_float,
        default=DEFAULT_STREAM_TIMEOUT,
        metavar="SECONDS",
        help=f"the same for the stream engine, one pass over the file per epoch (default {DEFAULT_STREAM_TIMEOUT:.0f})",
    )
    group.add_argument(
        "--stream-max-n",
        type=int_at_least(1),
        default=DEFAULT_STREAM_MAX_N,
        metavar="N",
        help=f"skip the stream engine on files of more rows (default {DEFAULT_STREAM_MAX_N:.0e})",
    )
    group.add_argument(
        "--cases",
        type=case_list,
        metavar="N:D:FORMAT,...",
        help="run only these of the cases chosen by --quick/--large, e.g. 1e6:8:csv,1e7:64:parquet",
    )
    group.add_argument(
        "--memory-cap",
        type=positive_float,
        metavar="GIB",
        help="stop a run whose process tree holds more than this (default: 85%% of the machine's memory)",
    )


def run(args):
    from linreg.io import files

    cases = QUICK_CASES if args.quick else FULL_CASES + (LARGE_CASES if args.large else [])
    names = args.systems or list(SYSTEMS)
    settings = {
        "timeout_s": args.timeout,
        "stream_timeout_s": args.stream_timeout,
        "stream_max_n": args.stream_max_n,
        "memory_cap_bytes": int(args.memory_cap * 2**30) if args.memory_cap else None,
        "repeats": args.repeats or 1,
        "only": sorted(args.cases) if args.cases else None,
    }
    files.make_dir(args.out)
    save = (lambda report: files.write_json(args.json, report)) if args.json else None
    report = benchmark(cases, names, Path(args.data_dir), settings, echo=print, save=save)
    print()
    print(format_report(report))
    table_path = Path(args.out) / "fitbench.md"
    files.write_text(table_path, format_report(report) + "\n")
    plot_path = Path(args.out) / "fitbench.png"
    plot(report, plot_path)
    print(f"\ntable: {table_path}\nplot: {plot_path}")
    if args.json:
        print(f"json: {args.json}")
    return 0


# --- the data ------------------------------------------------------------------


def columns(d):
    return [f"x{j}" for j in range(d)] + ["y"]


def problem(d, seed=SEED):
    """The model every file of width d is drawn from (the same for every N)."""
    import numpy as np

    rng = np.random.default_rng([seed, d])
    scales = rng.permutation(np.geomspace(0.1, 1000.0, d))
    means = np.clip(scales * rng.uniform(-5.0, 5.0, d), -100.0, 100.0)
    lags = np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    mix = np.linalg.cholesky(0.6**lags)  # AR(1) correlation between neighbouring columns
    W = rng.choice([-1.0, 1.0], d) * rng.uniform(0.5, 2.0, d) / scales  # every term of about the same weight
    return {"scales": scales, "means": means, "mix": mix, "W": W, "b": 5.0, "noise": 1.0}


def chunk(model, d, index, rows, seed=SEED):
    """Rows [index * CHUNK_ROWS, index * CHUNK_ROWS + rows) of every file of width d, as (x, y)."""
    import numpy as np

    rng = np.random.default_rng([seed, d, index])
    z = rng.standard_normal((rows, d))
    x = np.asfortranarray(z @ model["mix"].T * model["scales"] + model["means"])
    y = x @ model["W"] + model["b"] + model["noise"] * rng.standard_normal(rows)
    return x, y


def data_path(data_dir, n, d, fmt):
    return Path(data_dir) / f"fit-n{n}-d{d}.{fmt}"


def sidecar_path(path):
    return path.with_name(path.name + ".json")


def _identity(n, d, fmt):
    return {"generator": GENERATOR, "seed": SEED, "n": n, "d": d, "format": fmt, "columns": columns(d)}


def cached(path, n, d, fmt):
    """The sidecar of `path` if the file is there and is the one asked for, else None."""
    try:
        meta = json.loads(sidecar_path(path).read_text())
    except (OSError, ValueError):
        return None
    same = all(meta.get(key) == value for key, value in _identity(n, d, fmt).items())
    if not same or not path.is_file() or path.stat().st_size != meta.get("bytes") or "reference" not in meta:
        return None
    return meta


def ensure_data(data_dir, n, d, fmt, echo):
    """The file for (n, d, fmt) and its sidecar, made if missing or stale."""
    from linreg.io import files

    path = data_path(data_dir, n, d, fmt)
    meta = cached(path, n, d, fmt)
    if meta is not None:
        return path, meta, False
    files.make_dir(path.parent)
    echo(f"  generating {path} ...", flush=True)
    started = time.perf_counter()
    exact = write_data(path, n, d, fmt)
    generated = time.perf_counter() - started
    started = time.perf_counter()
    reference = reference_solution(path, d, fmt)
    meta = {
        **_identity(n, d, fmt),
        "bytes": path.stat().st_size,
        "chunk_rows": CHUNK_ROWS,
        "csv_round_trip_exact": exact,
        "generation_s": generated,
        "reference_s": time.perf_counter() - started,
        "true": coefficients_dict(problem(d)["b"], problem(d)["W"], d),
        **reference,
    }
    files.write_json(sidecar_path(path), meta)
    echo(
        f"  generated {path.name}: {meta['bytes'] / 2**20:.0f} MiB in {generated:.1f} s, "
        f"reference in {meta['reference_s']:.1f} s",
        flush=True,
    )
    return path, meta, True


def write_data(path, n, d, fmt):
    """Write the file chunk by chunk (bounded memory); for CSV, return whether the
    first chunk's text parsed back to the very same float64 values."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from linreg.io import files

    model = problem(d)
    names = columns(d)
    schema = pa.schema([(name, pa.float64()) for name in names])
    sidecar_path(path).unlink(missing_ok=True)
    exact = None
    with files.atomic_path(path) as tmp:
        writer = pacsv.CSVWriter(tmp, schema) if fmt == "csv" else pq.ParquetWriter(tmp, schema)
        try:
            for index, start in enumerate(range(0, n, CHUNK_ROWS)):
                x, y = chunk(model, d, index, min(CHUNK_ROWS, n - start))
                table = pa.Table.from_arrays([*(x[:, j] for j in range(d)), y], schema=schema)
                if fmt == "csv":
                    writer.write_table(table)
                    if exact is None:
                        sink = pa.BufferOutputStream()
                        pacsv.write_csv(table, sink)
                        back = pacsv.read_csv(pa.BufferReader(sink.getvalue()))
                        exact = all(np.array_equal(back.column(i).to_numpy(), table.column(i).to_numpy())
                                    for i in range(len(names)))  # fmt: skip
                else:
                    writer.write_table(table, row_group_size=CHUNK_ROWS)
        finally:
            writer.close()
    return exact


def _batches(path, fmt):
    """The file's record batches as read back by pyarrow, in bounded memory."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if fmt == "csv":
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=64 * 2**20))
        yield from reader
    else:
        yield from pq.ParquetFile(path).iter_batches(batch_size=2**18)


def reference_solution(path, d, fmt):
    """The float64 least-squares fit of y on [1, X] for the numbers in the file,
    by a streamed TSQR: R = qr([R; 1 X y] for each batch), then R11 beta = r12."""
    import numpy as np
    from scipy.linalg import solve_triangular

    names = columns(d)
    R = np.zeros((0, d + 2))
    rows = 0
    for batch in _batches(path, fmt):
        m = batch.num_rows
        block = np.empty((m, d + 2))
        block[:, 0] = 1.0
        for j, name in enumerate(names):
            block[:, j + 1] = batch.column(name).to_numpy(zero_copy_only=False)
        R = np.linalg.qr(np.vstack([R, block]), mode="r")
        rows += m
    R11, r12 = R[: d + 1, : d + 1], R[: d + 1, d + 1]
    beta = solve_triangular(R11, r12)
    scaled = R11 / np.linalg.norm(R11, axis=0)  # columns of unit length: the scale-free condition number
    return {
        "rows_read": rows,
        "reference": coefficients_dict(beta[0], beta[1:], d),
        "reference_method": "streamed TSQR of [1, X, y] (numpy.linalg.qr, mode r), then a triangular solve",
        "residual_sum_of_squares": float(R[d + 1, d + 1] ** 2) if R.shape[0] > d + 1 else 0.0,
        "condition_number": float(np.linalg.cond(R11)),
        "condition_number_unit_columns": float(np.linalg.cond(scaled)),
    }


def coefficients_dict(intercept, W, d):
    return {"intercept": float(intercept), **{f"x{j}": float(W[j]) for j in range(d)}}


def max_relative_difference(coefficients, reference):
    """Largest |c - r| / |r| over the intercept and the coefficients (as `linreg fit` reports it)."""
    missing = [name for name in reference if name not in coefficients]
    if missing:
        raise ValueError(f"no coefficient for {', '.join(missing[:3])}")
    return max(
        abs(float(coefficients[name]) - r) / max(abs(r), sys.float_info.min) for name, r in reference.items()
    )


def warm(path):
    """Read the file once, so that the run after this starts from the page cache; seconds taken."""
    started = time.perf_counter()
    buffer = bytearray(16 * 2**20)
    with open(path, "rb", buffering=0) as stream:
        while stream.readinto(buffer):
            pass
    return time.perf_counter() - started


# --- one run in a fresh process, watched -------------------------------------

LAUNCHED = object()  # in an argv: replaced by time.monotonic() at launch

# Run as `python -c PEER_SCRIPT SYSTEM PATH FORMAT D OUT.json LAUNCHED [SPARK_MEMORY]`.
# Self-contained: it imports nothing of linreg (whose package would bring no
# TensorFlow, but the peers should not even pay for finding it).
PEER_SCRIPT = r"""
import json, sys, time
system, path, fmt, d, out, launched = sys.argv[1:7]
d, launched = int(d), float(launched)
features = [f"x{j}" for j in range(d)]
phases = {"started_s": time.monotonic() - launched}


def mark(name):
    phases[name] = time.monotonic() - launched


def vmhwm():
    with open("/proc/self/status") as lines:
        return int(next(l for l in lines if l.startswith("VmHWM:")).split()[1]) * 1024


result = {}
if system in ("statsmodels", "sklearn"):
    import pandas as pd
    if system == "statsmodels":
        import statsmodels.api as sm
    else:
        from sklearn.linear_model import LinearRegression
    mark("imported_s")
    frame = pd.read_csv(path) if fmt == "csv" else pd.read_parquet(path)
    mark("read_s")
    if system == "statsmodels":
        params = sm.OLS(frame["y"], sm.add_constant(frame[features])).fit().params
        coefficients = {"intercept": params["const"], **{f: params[f] for f in features}}
    else:
        model = LinearRegression().fit(frame[features], frame["y"])
        coefficients = {"intercept": model.intercept_, **dict(zip(features, model.coef_))}
elif system in ("lstsq", "pyarrow"):
    import numpy as np
    import pyarrow
    if fmt == "csv":
        import pyarrow.csv as pacsv
        read = pacsv.read_csv
    else:
        import pyarrow.parquet as pq
        read = pq.read_table
    mark("imported_s")
    table = read(path)
    mark("read_s")
    result["rows"] = table.num_rows
    if system == "lstsq":
        A = np.empty((table.num_rows, d + 1))
        A[:, 0] = 1.0
        for j, name in enumerate(features):
            A[:, j + 1] = table.column(name).to_numpy()
        y = table.column("y").to_numpy()
        del table
        beta = np.linalg.lstsq(A, y, rcond=None)[0]
        coefficients = {"intercept": beta[0], **dict(zip(features, beta[1:]))}
    else:
        coefficients = None
elif system == "spark":
    from pyspark.sql import SparkSession
    from pyspark.sql.types import DoubleType, StructField, StructType
    from pyspark.ml.feature import VectorAssembler
    from pyspark.ml.regression import LinearRegression
    mark("imported_s")
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("linreg-fitbench")
        .config("spark.driver.memory", sys.argv[7])
        .config("spark.ui.enabled", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    mark("session_s")
    if fmt == "csv":
        schema = StructType([StructField(name, DoubleType()) for name in features + ["y"]])
        frame = spark.read.csv(path, header=True, inferSchema=False, schema=schema)
    else:
        frame = spark.read.parquet(path)
    assembled = VectorAssembler(inputCols=features, outputCol="features").transform(frame)
    model = LinearRegression(
        featuresCol="features", labelCol="y", solver="normal", regParam=0.0, elasticNetParam=0.0,
        standardization=True,
    ).fit(assembled)
    coefficients = {"intercept": model.intercept, **dict(zip(features, model.coefficients.toArray()))}
else:
    raise SystemExit(f"unknown system {system}")
mark("fitted_s")
if coefficients is not None:
    result["coefficients"] = {name: float(value) for name, value in coefficients.items()}
result["phases"] = phases
result["vmhwm_bytes"] = vmhwm()
with open(out, "w") as sink:
    json.dump(result, sink)
"""


def _status(pid):
    """VmRSS and VmHWM of a process, in bytes (0 for a zombie, which has no memory)."""
    found = {"VmRSS": 0, "VmHWM": 0}
    with open(f"/proc/{pid}/status") as lines:
        for line in lines:
            key = line.split(":", 1)[0]
            if key in found:
                found[key] = int(line.split()[1]) * 1024
    return found["VmRSS"], found["VmHWM"]


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
                rss, high = _status(process.pid)
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


def run_once(name, path, d, fmt, reference, timeout, memory_cap):
    """One fresh-process run of system `name` (or PYARROW_READ, TF_BASELINE) on the file; its figures."""
    with tempfile.TemporaryDirectory(prefix="linreg-fitbench-") as scratch:
        scratch = Path(scratch)
        out = scratch / "out.json"
        pinned = False
        if name == TF_BASELINE:
            argv = [sys.executable, "-c", "import tensorflow"]
        elif name == PYARROW_READ:
            argv = [sys.executable, "-c", PEER_SCRIPT, "pyarrow", str(path), fmt, str(d), str(out), LAUNCHED]
        elif SYSTEMS[name]["kind"] == "linreg":
            spec = SYSTEMS[name]
            pinned = spec["pinned"]
            argv = [*linreg_command(), "fit", str(path), "--target", "y", "--engine", spec["engine"]]
            if spec["workers"] != 1:
                argv += ["--workers", str(spec["workers"])]
            argv += ["--json", str(out), "--quiet"]
        else:
            argv = [sys.executable, "-c", PEER_SCRIPT, SYSTEMS[name]["script"], str(path), fmt, str(d), str(out),
                    LAUNCHED, SPARK_DRIVER_MEMORY]  # fmt: skip
        load = os.getloadavg()[0]
        with open(scratch / "stdout", "wb") as stdout, open(scratch / "stderr", "wb") as stderr:
            figures = watch(argv, child_env(pinned), scratch, timeout, memory_cap, stdout, stderr)
        figures["load_average_1min_before"] = load
        shown = ["<launch time>" if arg is LAUNCHED else "<PEER_SCRIPT>" if arg is PEER_SCRIPT else arg for arg in argv]
        figures["command"] = shlex.join(shown)
        error = figures.pop("stopped")
        if error is None and figures["exit_code"] != 0:
            stderr_text = _tail(scratch / "stderr")
            error = _headline(stderr_text) or f"exit code {figures['exit_code']}"
            figures["stderr_tail"] = stderr_text
        result = {}
        if out.is_file():
            try:
                result = json.loads(out.read_text())
            except ValueError as broken:
                error = error or f"unreadable JSON output: {broken}"
    figures["phases"] = result.get("phases")
    figures["pass_s"] = result.get("pass_seconds")  # linreg's streamed pass, timed inside the process
    if result.get("vmhwm_bytes"):  # the process's own last word on its peak, after the last sample
        figures["max_process_hwm_bytes"] = max(figures["max_process_hwm_bytes"], result["vmhwm_bytes"])
    if name == "Spark MLlib" and figures["phases"]:
        figures["spark_session_to_coefficients_s"] = figures["phases"]["fitted_s"] - figures["phases"]["session_s"]
    if name in (TF_BASELINE, PYARROW_READ):
        figures["status"] = "ok" if error is None else "failed"
        figures["error"] = error
        return figures
    coefficients = result.get("coefficients")
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


def describe(name, figures):
    if figures["status"] == "skipped":
        return f"skipped ({figures['error']})"
    if figures["status"] == "failed":
        return f"FAILED after {figures['wall_s']:.1f} s: {figures['error'][:160]}"
    text = f"{figures['wall_s']:.2f} s, peak {gib(figures['peak_tree_rss_bytes'])} GiB"
    if figures.get("max_rel_diff") is not None:
        text += f", max rel diff {figures['max_rel_diff']:.1e}" + ("" if figures["meets_target"] else " (misses 1e-8)")
    if figures.get("spark_session_to_coefficients_s") is not None:
        text += f", session to coefficients {figures['spark_session_to_coefficients_s']:.2f} s"
    return text


def benchmark(cases, names, data_dir, settings, echo=None, save=None):
    """Every system on every (n, d, format) case; the report, JSON-ready."""
    import psutil

    echo = echo or (lambda *a, **k: None)
    data_dir = Path(data_dir).absolute()  # the runs start in folders of their own
    memory_cap = settings.get("memory_cap_bytes") or int(0.85 * psutil.virtual_memory().total)
    repeats = settings.get("repeats", 1)
    report = {
        "kind": "time to fit",
        "target_rel_diff": TARGET,
        "settings": {**settings, "memory_cap_bytes": memory_cap, "spark_driver_memory": SPARK_DRIVER_MEMORY,
                     "data_dir": str(data_dir), "systems": names},  # fmt: skip
        "machine": {"cpus": os.cpu_count(), "memory_bytes": psutil.virtual_memory().total,
                    "load_average_at_start": os.getloadavg()},  # fmt: skip
        "page_cache": "every file was read once right before each run, so it started from the page cache",
        "cases": [],
    }
    runs = [run_once(TF_BASELINE, None, 0, None, None, settings["timeout_s"], memory_cap) for _ in range(repeats)]
    report["tensorflow_baseline"] = summarize(runs)
    base = report["tensorflow_baseline"]
    echo(f"  python -c 'import tensorflow': {base['wall_s']:.2f} s, peak {gib(base['peak_tree_rss_bytes'])} GiB", flush=True)
    for n, d in cases:
        for fmt in FORMATS:
            if settings.get("only") and [n, d, fmt] not in [list(c) for c in settings["only"]]:
                continue
            path, meta, generated = ensure_data(data_dir, n, d, fmt, echo)
            case = {
                "n": n, "d": d, "format": fmt, "file": str(path), "file_bytes": meta["bytes"],
                "generated_now": generated, "reference": meta["reference"],
                "condition_number": meta["condition_number"],
                "condition_number_unit_columns": meta["condition_number_unit_columns"],
                "csv_round_trip_exact": meta.get("csv_round_trip_exact"), "systems": {},
            }  # fmt: skip
            label = f"N={n:.0e} d={d} {fmt}"
            warm_s = warm(path)
            case["first_read_s"] = warm_s
            echo(f"  {label}: {meta['bytes'] / 2**20:.0f} MiB, read into the page cache in {warm_s:.2f} s", flush=True)
            runs = []
            for _ in range(repeats):
                warm(path)
                runs.append(run_once(PYARROW_READ, path, d, fmt, None, settings["timeout_s"], memory_cap))
            case["pyarrow_read"] = summarize(runs)
            echo(f"  {label} {PYARROW_READ:24s} {describe(PYARROW_READ, case['pyarrow_read'])}", flush=True)
            for name in names:
                spec = SYSTEMS[name]
                if spec.get("stream") and n > settings["stream_max_n"]:
                    figures = {"status": "skipped", "error": f"N > --stream-max-n {settings['stream_max_n']:.0e}"}
                else:
                    timeout = settings["stream_timeout_s"] if spec.get("stream") else settings["timeout_s"]
                    runs = []
                    for _ in range(repeats):
                        warm(path)
                        runs.append(run_once(name, path, d, fmt, meta["reference"], timeout, memory_cap))
                    figures = summarize(runs)
                case["systems"][name] = figures
                echo(f"  {label} {name:24s} {describe(name, figures)}", flush=True)
            case["best_ours"], case["best_peer"] = best(case, True), best(case, False)
            report["cases"].append(case)
            if save:
                save(report)
    report["load_average_at_end"] = os.getloadavg()
    if save:
        save(report)
    return report


def best(case, ours):
    """The fastest system of one side that fitted (met the target) in this case."""
    fitted = {name: f["wall_s"] for name, f in case["systems"].items() if is_ours(name) == ours and f["status"] == "ok"}
    return min(fitted, key=fitted.get) if fitted else None


# --- reporting -------------------------------------------------------------------


def gib(count):
    return f"{count / 2**30:.2f}" if count is not None else "-"


def system_names(report):
    names = []
    for case in report["cases"]:
        names += [name for name in case["systems"] if name not in names]
    return names


def _cell(figures):
    if figures is None:
        return ""
    if figures["status"] in ("failed", "skipped"):
        return figures["status"]
    text = f"{figures['wall_s']:.3g} ({gib(figures['peak_tree_rss_bytes'])})"
    return text if figures["status"] == "ok" else text + " ✗"


def _markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _case_label(case):
    return [f"{case['n']:.0e}", str(case["d"]), case["format"]]


def format_table(report):
    """Rows = cases, columns = systems; "seconds (peak GiB)"; then best linreg / best peer."""
    names = system_names(report)
    header = ["N", "d", "format", PYARROW_READ, *names, "best linreg / best peer"]
    rows = []
    for case in report["cases"]:
        ours, peer = case.get("best_ours"), case.get("best_peer")
        ratio = "-"
        if ours and peer:
            mine, theirs = case["systems"][ours]["wall_s"], case["systems"][peer]["wall_s"]
            ratio = f"{mine / theirs:.2f} ({ours} / {peer})"
        rows.append([*_case_label(case), _cell(case["pyarrow_read"]), *(_cell(case["systems"].get(n)) for n in names), ratio])
    return _markdown(header, rows)


def format_accuracy(report):
    names = [name for name in system_names(report)]
    rows = []
    for case in report["cases"]:
        cells = []
        for name in names:
            f = case["systems"].get(name)
            cells.append(f"{f['max_rel_diff']:.1e}" if f and f.get("max_rel_diff") is not None else "-")
        rows.append([*_case_label(case), f"{case['condition_number_unit_columns']:.3g}", *cells])
    return _markdown(["N", "d", "format", "cond (unit columns)", *names], rows)


def format_targets(report):
    """The targets: moments within 2x of pyarrow's read; peak within TF's baseline + 1 GiB; 1 -> 2 workers."""
    base = report["tensorflow_baseline"]
    base_peak = base["peak_tree_rss_bytes"] if base["status"] == "ok" else None
    ours = [name for name in system_names(report) if is_ours(name)]
    header = ["N", "d", "format", "pyarrow read s"]
    header += [f"{name}: pass / read" for name in ("linreg moments", "linreg moments 2w") if name in ours]
    header += [f"{name}: peak - TF" for name in ours]
    rows = []
    for case in report["cases"]:
        # Both timed inside their processes: pyarrow's read (from the call to the
        # table) against linreg's pass (from opening the files to the merged statistics).
        arrow = case["pyarrow_read"]
        phases = arrow.get("phases") or {}
        read = phases["read_s"] - phases.get("imported_s", phases.get("started_s", 0.0)) if arrow["status"] == "ok" and "read_s" in phases else None
        row = [*_case_label(case), f"{read:.3g}" if read else "failed"]
        for name in ("linreg moments", "linreg moments 2w"):
            if name in ours:
                f = case["systems"].get(name)
                ok = f and f["status"] != "failed" and f.get("pass_s") and read
                row.append(f"{f['pass_s']:.3g} s / {read:.3g} s = {f['pass_s'] / read:.2f}" if ok else "-")
        for name in ours:
            f = case["systems"].get(name)
            ok = f and f["status"] != "failed" and f.get("peak_tree_rss_bytes") and base_peak
            row.append(f"{(f['peak_tree_rss_bytes'] - base_peak) / 2**30:+.2f} GiB" if ok else "-")
        rows.append(row)
    return _markdown(header, rows)


def format_scaling(report):
    pairs = [("linreg moments", "linreg moments 2w"), ("linreg moments pinned", "linreg moments pinned 2w"),
             ("linreg stream", "linreg stream 2w")]  # fmt: skip
    rows = []
    for case in report["cases"]:
        row = list(_case_label(case))
        for one, two in pairs:
            a, b = case["systems"].get(one), case["systems"].get(two)
            if a and b and a["status"] != "failed" and b["status"] != "failed" and "wall_s" in a and "wall_s" in b:
                cell = f"wall {a['wall_s'] / b['wall_s']:.2f}x"
                if a.get("pass_s") and b.get("pass_s"):
                    cell += f", pass {a['pass_s'] / b['pass_s']:.2f}x ({a['pass_s']:.3g} s / {b['pass_s']:.3g} s)"
                row.append(cell)
            else:
                row.append("-")
        rows.append(row)
    return _markdown(["N", "d", "format", *(f"{one}: 1 -> 2 workers" for one, _ in pairs)], rows)


def format_report(report):
    base = report["tensorflow_baseline"]
    parts = [
        "## Time from the file to coefficients within 1e-8 of the reference",
        "",
        "seconds, wall, fresh process (peak RSS of the process tree, GiB); ✗: the coefficients missed the 1e-8 target; "
        f"{report['page_cache']}; load average at the start {report['machine']['load_average_at_start'][0]:.2f}, "
        f"at the end {report.get('load_average_at_end', [math.nan])[0]:.2f} on {report['machine']['cpus']} cores",
        "",
        format_table(report),
        "",
        "### Largest relative difference to the TSQR reference",
        "",
        format_accuracy(report),
        "",
        "### Targets",
        "",
        f"`python -c \"import tensorflow\"`: {base['wall_s']:.2f} s, peak {gib(base['peak_tree_rss_bytes'])} GiB "
        "(the TensorFlow baseline; the target is a peak within it + 1 GiB, and a moments pass within 2x of "
        "pyarrow's read, both process starts included)",
        "",
        format_targets(report),
        "",
        "### Scaling: wall time with 1 worker / with 2 workers (pinned: LINREG_PIN_CORES=1)",
        "",
        format_scaling(report),
    ]
    spark = [
        (case, case["systems"]["Spark MLlib"]) for case in report["cases"]
        if case["systems"].get("Spark MLlib", {}).get("spark_session_to_coefficients_s") is not None
    ]  # fmt: skip
    if spark:
        parts += ["", "Spark MLlib, from session ready to coefficients (JVM start left out): " + "; ".join(
            f"{' '.join(_case_label(case))}: {f['spark_session_to_coefficients_s']:.2f} s" for case, f in spark)]  # fmt: skip
    failures = [
        f"- {' '.join(_case_label(case))}, {name}: {f['error']}"
        for case in report["cases"] for name, f in case["systems"].items() if f["status"] in ("failed", "skipped")
    ]  # fmt: skip
    if failures:
        parts += ["", "### Failed or skipped", "", *failures]
    return "\n".join(parts)


def plot(report, path):
    """Seconds from file to coefficients, log scale: a group of bars per case, a bar per system."""
    import numpy as np

    from linreg.io import plots

    plt = plots.plt
    names = [PYARROW_READ, *system_names(report)]
    cases = report["cases"]
    fig, ax = plt.subplots(figsize=(max(8.0, 1.3 * len(cases) * max(1, len(names)) / 6), 5.2))
    width = 0.85 / len(names)
    colors = {name: plt.cm.tab20(i % 20) for i, name in enumerate(names)}
    for i, name in enumerate(names):
        heights = []
        for case in cases:
            f = case["pyarrow_read"] if name == PYARROW_READ else case["systems"].get(name)
            heights.append(f["wall_s"] if f and f["status"] in ("ok", "inexact") else np.nan)
        positions = np.arange(len(cases)) + (i - (len(names) - 1) / 2) * width
        hatch = "//" if name == PYARROW_READ else None
        edge = "black" if is_ours(name) else None
        ax.bar(positions, heights, width, label=name, color=colors[name], hatch=hatch, edgecolor=edge, linewidth=0.6)
    ax.set_yscale("log")
    ax.set_xticks(np.arange(len(cases)))
    ax.set_xticklabels([f"N={c['n']:.0e}\nd={c['d']}\n{c['format']}" for c in cases], fontsize=8)
    ax.set_ylabel("seconds, file to coefficients (fresh process)")
    ax.set_title("time to fit (missing bar: failed, skipped or not run)")
    ax.grid(True, axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    plots._save(fig, path)
