"""Time one epoch of full-batch gradient descent here and in other systems, side by side.

    linreg bench [--quick] [--large] [--json PATH] [--out DIR]
    linreg bench --fit [...]    time from a file on disk to coefficients instead,
                                against pandas + statsmodels, scikit-learn, numpy
                                and Spark MLlib (linreg/cli/fitbench.py)

For every case (N examples, d features, float32) the same problem -- the
model x·W + b, the mean squared error, plain gradient descent on the whole
data set each epoch -- is trained by:

  seed eager        the loop exactly as the original tutorial writes it:
                    eager, GradientTape, assign_sub, one Python iteration per epoch
  linreg none/function/xla
                    this project's trainer in each --compile mode
  keras fit         Keras' model.fit: one Dense unit, SGD, batch = the whole set
  numpy             gradient descent with the gradient written out by hand
  torch eager, torch compile
                    PyTorch autograd, eagerly and through torch.compile
  jax jit           jax.grad inside lax.fori_loop, compiled with jax.jit

Each system is warmed up once (tracing, compiling) and then timed a few
times; the figure is the median seconds per epoch. The memory floor is the
time to read x and y once -- their bytes divided by the read bandwidth
measured in the same run on the same buffers.

Also measured, each in fresh processes: `python main.py --quiet` against a
bare `python -c "import tensorflow"`, and the peak resident memory while
training on N = 10 million, d = 16, against the size of that data.

The peers (PyTorch, JAX) are optional: `make bench` installs them; a peer
that cannot be imported is reported as unavailable. Nothing here is a test:
speed is measured, never asserted.
"""
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from linreg.cli import fitbench
from linreg.cli.flags import int_at_least, output_dir, output_file

LEARNING_RATE = 0.1
FULL_CASES = [(n, d) for n in (10**3, 10**5, 10**7) for d in (1, 16)]
# N = 1e8 only with d = 1: at d = 16 one copy of the data is 6.8 GB, and the
# systems' own copies of it (TensorFlow's, JAX's, Keras's) would not fit in
# the 24 GiB this benchmark is meant to run in.
LARGE_CASES = [(10**8, 1)]
QUICK_CASES = [(10**3, 1), (10**7, 1)]
OUR_MODES = ("none", "function", "xla")
RSS_CASE = (10**7, 16)
# The floor's bandwidth is measured on a case's own buffers when they are
# well beyond the caches (L3 here is 32 MiB); smaller cases sit in cache,
# where one read costs less than a call's overhead, and use the bandwidth
# measured on the largest case of the run.
BANDWIDTH_MIN_BYTES = 64 * 2**20
MIN_EPOCHS = 10


def add_arguments(parser):
    parser.add_argument(
        "--fit", action="store_true", help="time from a file to coefficients instead (see linreg.cli.fitbench)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="d = 1, N = 1e3 and 1e7 only (under two minutes); with --fit: N = 1e5 only"
    )
    parser.add_argument(
        "--large", action="store_true", help="also N = 1e8 with d = 1 (about 8 GB of memory); with --fit: N = 1e8, d = 8"
    )
    parser.add_argument("--json", type=output_file, metavar="PATH", help="write every figure as JSON")
    parser.add_argument("--out", type=output_dir, default="outputs", help="folder for the plot (default outputs/)")
    parser.add_argument(
        "--repeats", type=int_at_least(1), help="timed runs per system (default 5, quick 3; with --fit: 1)"
    )
    fitbench.add_arguments(parser)
    parser.set_defaults(run=run)


def run(args):
    from linreg.io import files

    if args.fit:
        return fitbench.run(args)
    cases = QUICK_CASES if args.quick else FULL_CASES + (LARGE_CASES if args.large else [])
    repeats = args.repeats or (3 if args.quick else 5)
    target = 0.1 if args.quick else 0.25  # seconds per timed call
    report = benchmark(cases, repeats=repeats, target_seconds=target, echo=print)
    report.update(process_figures(repeats=1 if args.quick else 3, echo=print, ours=report))
    print()
    print(format_table(report))
    print(format_extras(report))
    files.make_dir(args.out)
    plot_path = Path(args.out) / "bench.png"
    plot(report, plot_path)
    print(f"plot: {plot_path}")
    if args.json:
        files.write_json(args.json, report)
        print(f"json: {args.json}")
    return 0


# --- the data -------------------------------------------------------------


def make_data(n, d, seed=0):
    """x ~ N(0, 1) of shape [n, d], y = x·W + 2 + noise with W = 1, 2, ..., d; float32."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    W = np.arange(1, d + 1, dtype=np.float32)
    y = x @ W
    y += 2.0
    y += rng.standard_normal(n, dtype=np.float32)
    return x, y


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


# --- the systems: each returns run(epochs), which trains and waits ---------


def seed_eager(x, y):
    """The tutorial's loop, as written: eager, tape, gradient, assign_sub."""
    import tensorflow as tf

    x, y = tf.constant(x), tf.constant(y)
    W = tf.Variable(tf.zeros([x.shape[1]]))
    b = tf.Variable(0.0)

    def run(epochs):
        for _ in range(epochs):
            with tf.GradientTape() as tape:
                current_loss = tf.reduce_mean(tf.square(y - (tf.linalg.matvec(x, W) + b)))
            dW, db = tape.gradient(current_loss, [W, b])
            W.assign_sub(LEARNING_RATE * dW)
            b.assign_sub(LEARNING_RATE * db)
        return float(current_loss)

    return run


def ours(mode):
    def make(x, y):
        import tensorflow as tf

        from linreg.core.model import LinearModel
        from linreg.core.optimizers import GradientDescent
        from linreg.engine import driver

        x, y = tf.constant(x), tf.constant(y)
        model = LinearModel(int(x.shape[1]))
        optimizer = GradientDescent(model, LEARNING_RATE)

        def run(epochs):
            # Every epoch is run: no stopping at the rounding floor (patience beyond any run).
            result = driver.train(model, optimizer, x, y, epochs, compile=mode, patience=2**31 - 1)
            if result.epochs != epochs:
                raise RuntimeError(f"ran {result.epochs} of {epochs} epochs")
            return result.loss

        return run

    return make


def keras_fit(x, y):
    import keras

    n, d = x.shape
    model = keras.Sequential([keras.Input((d,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(LEARNING_RATE), loss="mse")

    def run(epochs):
        history = model.fit(x, y, batch_size=n, epochs=epochs, shuffle=False, verbose=0)
        return history.history["loss"][-1]

    return run


def numpy_gd(x, y):
    n, d = x.shape
    W = np.zeros(d, np.float32)
    b = np.float32(0.0)
    scale = np.float32(2.0 / n)

    def run(epochs):
        nonlocal W, b
        for _ in range(epochs):
            residual = x @ W + b - y
            W -= LEARNING_RATE * scale * (x.T @ residual)
            b -= np.float32(LEARNING_RATE * scale * residual.sum())
        return float(residual @ residual / n)

    return run


def _torch_runner(x, y, compiled):
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    W = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros((), requires_grad=True)

    def loss_fn(x, y, W, b):
        return torch.mean(torch.square(y - (x @ W + b)))

    if compiled:
        loss_fn = torch.compile(loss_fn)

    def run(epochs):
        for _ in range(epochs):
            loss = loss_fn(xt, yt, W, b)
            dW, db = torch.autograd.grad(loss, (W, b))
            with torch.no_grad():
                W.sub_(LEARNING_RATE * dW)
                b.sub_(LEARNING_RATE * db)
        return loss.item()

    return run


def torch_eager(x, y):
    return _torch_runner(x, y, compiled=False)


def torch_compile(x, y):
    return _torch_runner(x, y, compiled=True)


def jax_jit(x, y):
    import jax
    import jax.numpy as jnp

    xj, yj = jax.device_put(x), jax.device_put(y)

    def loss(params, x, y):
        W, b = params
        return jnp.mean(jnp.square(y - (x @ W + b)))

    @jax.jit
    def fit(params, x, y, epochs):
        def step(_, params):
            gW, gb = jax.grad(loss)(params, x, y)
            return params[0] - LEARNING_RATE * gW, params[1] - LEARNING_RATE * gb

        params = jax.lax.fori_loop(0, epochs, step, params)
        return params, loss(params, x, y)

    params = (jnp.zeros(x.shape[1], jnp.float32), jnp.float32(0.0))

    def run(epochs):
        nonlocal params
        params, last = fit(params, xj, yj, jnp.int32(epochs))
        return float(jax.block_until_ready(last))

    return run


# name -> (constructor, rough fixed cost per epoch in seconds, used only to
# choose how many epochs one timed call runs)
SYSTEMS = {
    "seed eager": (seed_eager, 1e-3),
    "linreg none": (ours("none"), 2e-3),
    "linreg function": (ours("function"), 4e-5),
    "linreg xla": (ours("xla"), 2e-6),
    "keras fit": (keras_fit, 3e-2),
    "numpy": (numpy_gd, 1e-5),
    "torch eager": (torch_eager, 1e-4),
    "torch compile": (torch_compile, 1.5e-4),
    "jax jit": (jax_jit, 1e-6),
}


def is_ours(name):
    return name.startswith("linreg")


# --- measuring -------------------------------------------------------------


def seconds_per_epoch(run, epochs, repeats):
    """Median seconds per epoch over `repeats` timed calls, after one warm-up call."""
    run(epochs)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(epochs)
        times.append((time.perf_counter() - start) / epochs)
    return statistics.median(times)


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
    import linreg  # noqa: F401  (TensorFlow, imported quietly)
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
        for name, (make, overhead) in systems.items():
            epochs = epochs_for(n, d, overhead, target_seconds)
            try:
                seconds = seconds_per_epoch(make(x, y), epochs, repeats)
            except Exception as error:  # a peer that is missing or fails on this case
                reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
                report["unavailable"].setdefault(name, reason[:200])
                echo(f"  N={n:.0e} d={d} {name}: unavailable ({reason[:80]})", flush=True)
                continue
            case["systems"][name] = seconds
            echo(f"  N={n:.0e} d={d} {name:14s} {format_seconds(seconds)} per epoch ({epochs} epochs a call)", flush=True)
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


def _fresh_process_seconds(argv, cwd, repeats):
    """Median wall time of `argv` run `repeats` times, each in a new process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-200:]}")
    return statistics.median(times)


_RSS_SCRIPT = """
import json, sys
import numpy as np
import tensorflow as tf
from linreg.core.model import LinearModel
from linreg.core.optimizers import GradientDescent
from linreg.engine import driver


def status(field):
    # From /proc/self/status, in bytes. VmHWM is this process's peak resident
    # memory (getrusage's ru_maxrss is not used: Linux carries it over from the
    # parent across fork and exec).
    with open("/proc/self/status") as lines:
        line = next(line for line in lines if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


n, d, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
float(tf.reduce_sum(tf.ones([4])))  # the runtime is up: TensorFlow's own baseline
baseline = status("VmHWM")


def aligned(shape):
    # A float32 array on a 64-byte boundary, which TensorFlow's kernels require
    # of memory they did not allocate themselves.
    size = int(np.prod(shape)) * 4
    raw = np.empty(size + 64, np.uint8)
    offset = -raw.ctypes.data % 64
    return raw[offset:offset + size].view(np.float32).reshape(shape)


# The data, made in place chunk by chunk (no large temporaries) and handed to
# TensorFlow through DLPack, which shares the buffer instead of copying it:
# the process holds one copy of x and y, as a program loading its data once
# would. (tf.constant would copy, and TensorFlow's allocator keeps the memory
# of freed temporaries, so the copy's source would stay counted.)
rng = np.random.default_rng(0)
xn, yn = aligned((n, d)), aligned((n,))
for start in range(0, n, 2**20):
    rng.standard_normal(out=xn[start:start + 2**20], dtype=np.float32)
np.matmul(xn, np.arange(1, d + 1, dtype=np.float32), out=yn)
yn += np.float32(2.0)
x = tf.experimental.dlpack.from_dlpack(xn.__dlpack__())
y = tf.experimental.dlpack.from_dlpack(yn.__dlpack__())
before = status("VmRSS")
# Reset the peak to the current size (Linux: write 5 to clear_refs), so that
# VmHWM afterwards is the peak while training.
with open("/proc/self/clear_refs", "w") as clear:
    clear.write("5")
model = LinearModel(d)
driver.train(model, GradientDescent(model, 0.1), x, y, 5, compile=mode)
print(json.dumps({"peak_rss_bytes": status("VmHWM"), "rss_before_training_bytes": before,
                  "baseline_rss_bytes": baseline, "data_bytes": 4 * (n * d + n)}))
"""


def peak_rss(n, d, mode):
    """Peak RSS of a fresh process that trains on [n, d] float32 data, and its baseline."""
    done = subprocess.run(
        [sys.executable, "-c", _RSS_SCRIPT, str(n), str(d), mode], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {done.stderr.strip()[-200:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main_py():
    """main.py beside the package's source folder (a checkout), if there is one."""
    path = Path(__file__).resolve().parents[3] / "main.py"
    return path if path.is_file() else None


def process_figures(repeats=3, echo=None, ours=None):
    """Start-up time against a bare TensorFlow import, and peak memory."""
    echo = echo or (lambda *a, **k: None)
    figures = {"main_py_s": None, "import_tf_s": None, "peak_rss_bytes": None, "data_bytes": None}
    unavailable = {}
    with tempfile.TemporaryDirectory() as scratch:
        figures["import_tf_s"] = _fresh_process_seconds([sys.executable, "-c", "import tensorflow"], scratch, repeats)
        echo(f"  python -c 'import tensorflow': {figures['import_tf_s']:.2f} s", flush=True)
        script = main_py()
        if script is None:
            unavailable["main.py"] = "main.py not found beside the package"
        else:
            try:
                figures["main_py_s"] = _fresh_process_seconds([sys.executable, str(script), "--quiet"], scratch, repeats)
                echo(f"  python main.py --quiet: {figures['main_py_s']:.2f} s", flush=True)
            except RuntimeError as error:
                unavailable["main.py"] = str(error)
    mode = "function"
    for case in (ours or {}).get("cases", []):
        if (case["n"], case["d"]) == RSS_CASE and case.get("ours"):
            mode = case["ours"].split()[-1]
    try:
        rss = peak_rss(*RSS_CASE, mode)
        figures.update(rss, rss_mode=f"linreg {mode}")
        echo(f"  peak RSS while training at N=1e7 d=16 ({mode}): {rss['peak_rss_bytes'] / 2**20:.0f} MiB", flush=True)
    except RuntimeError as error:
        unavailable["peak rss"] = str(error)
    if unavailable:
        figures["process_unavailable"] = unavailable
    return figures


# --- reporting ---------------------------------------------------------------


def format_seconds(seconds):
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.3g} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3g} ms"
    return f"{seconds:.3g} s"


def best_peer(case):
    peers = {k: v for k, v in case["systems"].items() if not is_ours(k)}
    return min(peers, key=peers.get) if peers else None


def format_table(report):
    """A row per case, a column per system, then ours against the floor and the best peer."""
    names = fitbench.system_names(report)
    header = ["N", "d", "floor", *names, "ours", "ours/floor", "ours/best peer"]
    rows = []
    for case in report["cases"]:
        ours_name, peer = case.get("ours"), best_peer(case)
        mine = case["systems"].get(ours_name)
        floor = case.get("floor_s")
        rows.append(
            [
                f"{case['n']:.0e}",
                str(case["d"]),
                format_seconds(floor),
                *(format_seconds(case["systems"].get(name)) for name in names),
                ours_name or "-",
                f"{mine / floor:.2f}" if mine and floor else "-",
                f"{mine / case['systems'][peer]:.2f} ({peer})" if mine and peer else "-",
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "seconds per epoch (median after warm-up)\n" + "\n".join(lines)


def format_extras(report):
    lines = []
    if report.get("bandwidth_bytes_per_s"):
        lines.append(f"read bandwidth (largest case): {report['bandwidth_bytes_per_s'] / 1e9:.1f} GB/s")
    main_s, tf_s = report.get("main_py_s"), report.get("import_tf_s")
    if tf_s:
        ratio = f" ({main_s / tf_s:.2f}x)" if main_s else ""
        lines.append(f"python main.py --quiet: {format_seconds(main_s)} vs import tensorflow: {format_seconds(tf_s)}{ratio}")
    if report.get("peak_rss_bytes"):
        peak, data, base = report["peak_rss_bytes"], report["data_bytes"], report["baseline_rss_bytes"]
        lines.append(
            f"peak RSS while training at N=1e7 d=16 ({report['rss_mode']}): {peak / 2**20:.0f} MiB "
            f"(before training {report['rss_before_training_bytes'] / 2**20:.0f} MiB); data {data / 2**20:.0f} MiB "
            f"+ TensorFlow baseline {base / 2**20:.0f} MiB = {(data + base) / 2**20:.0f} MiB "
            f"({peak / (data + base):.2f}x)"
        )
    for name, reason in {**report.get("unavailable", {}), **report.get("process_unavailable", {})}.items():
        lines.append(f"unavailable: {name}: {reason}")
    return "\n".join(lines)


def plot(report, path):
    """Seconds per epoch against N, log-log: a panel per d, a line per system, the floor dashed."""
    from linreg.io import plots

    plt = plots.plt
    dims = sorted({case["d"] for case in report["cases"]})
    fig, axes = plt.subplots(1, len(dims), figsize=(6.4 * len(dims), 4.6), squeeze=False)
    names = fitbench.system_names(report)
    colors = {name: plt.cm.tab10(i % 10) for i, name in enumerate(names)}
    for ax, d in zip(axes[0], dims):
        cases = sorted((c for c in report["cases"] if c["d"] == d), key=lambda c: c["n"])
        for name in names:
            points = [(c["n"], c["systems"][name]) for c in cases if name in c["systems"]]
            if points:
                style = "-o" if is_ours(name) else "-."
                width = 2.2 if is_ours(name) else 1.2
                ax.loglog(*zip(*points), style, color=colors[name], linewidth=width, markersize=4, label=name)
        floor = [(c["n"], c["floor_s"]) for c in cases if c.get("floor_s")]
        if floor:
            ax.loglog(*zip(*floor), "--", color="black", linewidth=1.5, label="memory floor")
        ax.set_xlabel("N (examples)")
        ax.set_ylabel("seconds per epoch")
        ax.set_title(f"d = {d}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    plots._save(fig, path)
