"""What only a fresh process can show: start-up time and peak memory.

In: how many times to start each process, and the epoch benchmark's report
(to train the memory case in its fastest mode). Out: a dict of figures --
the median wall time of `python main.py --quiet` and of a bare `python -c
"import tensorflow"`, and from rss_probe.py the peak resident memory while
training at RSS_CASE against the data's size and TensorFlow's baseline --
with what could not be measured, and why, under "process_unavailable".
"""
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RSS_CASE = (10**7, 16)


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


def peak_rss(n, d, mode):
    """Peak RSS of a fresh process that trains on [n, d] float32 data, and its baseline."""
    done = subprocess.run(
        [sys.executable, "-m", "linreg.bench.rss_probe", str(n), str(d), mode],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
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
