"""The fit benchmark's harness: every system on every case, each run in a fresh process.

In: the cases as (N, d) pairs (each in both FORMATS, or only those in
settings["only"]), the systems' names (fit_runs.SYSTEMS), the data folder
and the settings (time limits, memory cap, repeats). Out: the report, a
JSON-ready dict: the machine and the settings, TensorFlow's start-up as a
baseline, and per case pyarrow's read of the file, every system's figures
(fit_runs.summarize), the same systems' warm figures where they have them
(settings["warm_calls"] calls each in one process, after an untimed fit of a
small file: fit_runs.run_warm), and the fastest linreg engine and peer that
met the target, cold and warm. `save(report)`, if given, is called after
each case, so that a long run that is stopped keeps what it measured.
"""
import os
from pathlib import Path

from linreg.bench import is_ours
from linreg.bench.fit_data import FORMATS, ensure_data
from linreg.bench.fit_report import describe, gib
from linreg.bench.fit_runs import PYARROW_READ, SPARK_DRIVER_MEMORY, SYSTEMS, TARGET, TF_BASELINE
from linreg.bench.fit_runs import run_once, run_warm, summarize, warm
from linreg.bench.warm_fits import SYSTEMS as WARM_SYSTEMS

SMALL_N = 1000  # rows of the file each system fits once, untimed, before its warm calls


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
            echo(f"  {label} {PYARROW_READ:24s} {describe(case['pyarrow_read'])}", flush=True)
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
                echo(f"  {label} {name:24s} {describe(figures)}", flush=True)
            warm_names = [name for name in names if name in WARM_SYSTEMS]
            if warm_names and settings.get("warm_calls"):
                small, _, _ = ensure_data(data_dir, SMALL_N, d, fmt, echo)
                warm(path)
                case["warm_process"], case["warm"] = run_warm(
                    warm_names, path, small, d, fmt, meta["reference"], settings["warm_calls"],
                    settings["timeout_s"], memory_cap,
                )  # fmt: skip
                for name, figures in case["warm"].items():
                    echo(f"  {label} {name + ' (warm)':24s} {describe(figures)}", flush=True)
                case["best_ours_warm"], case["best_peer_warm"] = best(case["warm"], True), best(case["warm"], False)
            case["best_ours"], case["best_peer"] = best(case["systems"], True), best(case["systems"], False)
            report["cases"].append(case)
            if save:
                save(report)
    report["load_average_at_end"] = os.getloadavg()
    if save:
        save(report)
    return report


def best(systems, ours):
    """The fastest system of one side that fitted (met the target), of one case's {name: figures}."""
    fitted = {name: f["wall_s"] for name, f in systems.items() if is_ours(name) == ours and f["status"] == "ok"}
    return min(fitted, key=fitted.get) if fitted else None
