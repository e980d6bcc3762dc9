"""The process where systems fit one file warm, as a notebook's second cell would.

    python -m linreg.bench.warm_fits PATH FORMAT D SMALL CALLS OUT.json SPARK_MEMORY SYSTEM...

The SYSTEMs (names of SYSTEMS) first fit SMALL, a small file of the same
width and format, once each and untimed: that imports their libraries,
starts Spark's session and traces TensorFlow's functions. Then they fit PATH
CALLS times, taking turns so that a change in the machine's load falls on
all of them alike, each call timed from the call to the coefficients. Each
round starts one system later than the round before: the first big fit of
a process also pays for memory the process has not touched yet (the
allocators' first pages of that size), and that cost falls on a different
system each round instead of on the first one every time.
OUT.json gets, per system, the seconds of every call, the last call's
coefficients and, for linreg, the engine it ran, or the error that stopped
it. It is rewritten after every round, so that a run stopped by the time
limit or the memory cap keeps what it measured.
"""
import sys
import time

from linreg.bench import peers
from linreg.bench.fit_runs import SYSTEMS as COLD

# linreg.fit with its default engine and with moments, and every peer;
# workers and pinned cores are a fresh process's matter (linreg.bench.fit_runs).
SYSTEMS = ("linreg auto", "linreg moments", "pandas + statsmodels", "scikit-learn", "numpy lstsq", "Spark MLlib")


def fit_once(name, path, fmt, d, spark_memory):
    """System `name` fits the file: ({name: coefficient}, the engine linreg ran or None)."""
    spec = COLD[name]
    if spec["kind"] == "linreg":
        import linreg

        fit = linreg.fit(path, target="y", engine=spec["engine"])  # "auto" is fit's default
        return fit.coefficients, fit.engine
    coefficients = peers.fit_file(spec["script"], path, fmt, d, lambda phase: None, {}, spark_memory)
    return {key: float(value) for key, value in coefficients.items()}, None


def main(argv):
    from linreg.io import files

    path, fmt, d, small, calls, out, spark_memory, *names = argv
    d, calls = int(d), int(calls)
    systems = {name: {"calls_s": []} for name in names}
    # The first cell: every library imported, every system run once.
    for name in names:
        try:
            fit_once(name, small, fmt, d, spark_memory)
        except Exception as error:  # a system that cannot run is a row of the table, not the end
            systems[name]["error"] = f"on the small file: {type(error).__name__}: {error}"
    files.write_json(out, systems)
    for round_ in range(calls):
        turn = round_ % len(names)
        for name in names[turn:] + names[:turn]:
            figures = systems[name]
            if "error" in figures:
                continue
            started = time.perf_counter()
            try:
                figures["coefficients"], figures["engine"] = fit_once(name, path, fmt, d, spark_memory)
            except Exception as error:
                figures["error"] = f"{type(error).__name__}: {error}"
                continue
            figures["calls_s"].append(time.perf_counter() - started)
        files.write_json(out, systems)


if __name__ == "__main__":
    main(sys.argv[1:])
