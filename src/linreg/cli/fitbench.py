"""Time from a file on disk to coefficients, here and in other systems, side by side.

    linreg bench --fit [--quick] [--large] [--systems A,B,...] [--data-dir DIR]
                       [--warm-calls N] [--json PATH] [--out DIR]

For every case (N rows, d features, CSV or Parquet) one file is fitted by
ordinary least squares with an intercept, each run in a FRESH process, so
that starting Python, the imports, reading the file and solving are all in
the figure, and the memory is that process tree's alone:

  linreg auto, linreg memory, linreg moments, linreg stream
                    `linreg fit FILE --target y --engine ENGINE --json OUT --quiet`
                    with 1 worker ("auto" is the default engine); "2w" runs add
                    `--workers 2`
  linreg moments pinned, linreg moments pinned 2w
                    the same with LINREG_PIN_CORES=1 (each worker on its own core,
                    one thread each): 1 against 2 workers is the scaling figure
  linreg moments HC1
                    linreg moments with `--cov HC1`: robust standard errors,
                    whose sums take one more pass over the file after training;
                    the targets table gives that pass's time over the first's
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

Warm, beside that: the time a user who has fitted before in the same
process waits, as in a notebook's second cell. linreg auto and linreg
moments (`linreg.fit(FILE, target="y")` with its default engine and with
engine="moments") and every peer run in ONE fresh process per case, where
each first fits a small file of the same width and format, untimed (the
imports, Spark's session, TensorFlow's tracing), and then the case's file
--warm-calls times, the systems taking turns (each round starting one system
later than the last); each call is timed from the
call to the coefficients, and the figure is the median of the calls.

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
peer's, among runs that met the target), then cold against warm, with the
accuracy, the targets and the 1 -> 2 worker scaling below them; --out gets it as fitbench.md and the plot
as fitbench.png, --json every figure (rewritten after each case). The machine
is shared: the load average before each run is recorded beside it. Nothing
here is a test: speed, memory and accuracy are measured, never asserted.
"""
import argparse
from pathlib import Path

from linreg.bench import fit_report
from linreg.bench.fit import benchmark
from linreg.bench.fit_data import FORMATS
from linreg.bench.fit_runs import SYSTEMS
from linreg.cli.flags import int_at_least, output_dir, positive_float

FULL_CASES = [(n, d) for n in (10**6, 10**7) for d in (8, 64)]
# N = 1e8 only with d = 8: at d = 64 the CSV alone would be about 120 GB.
LARGE_CASES = [(10**8, 8)]
QUICK_CASES = [(10**5, 8), (10**5, 64)]
DEFAULT_DATA_DIR = Path("outputs") / "bench-data"
DEFAULT_TIMEOUT = 3600.0
DEFAULT_STREAM_TIMEOUT = 900.0
DEFAULT_STREAM_MAX_N = 10**7
DEFAULT_WARM_CALLS = 5


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
        "--warm-calls",
        type=int_at_least(0),
        default=DEFAULT_WARM_CALLS,
        metavar="N",
        help=f"timed calls of each system in the warm process, after its untimed one (default {DEFAULT_WARM_CALLS}; "
        "0: no warm figures)",
    )
    group.add_argument(
        "--penalized",
        action="store_true",
        help="instead: the penalized case, 5-fold cross-validation of the elastic net over 100 alphas and 3 "
        "l1-ratios, against scikit-learn's ElasticNetCV, glum's GeneralizedLinearRegressorCV and Spark MLlib's "
        "CrossValidator (see linreg.bench.fit_penalized; --quick: 1e5 x 50)",
    )
    group.add_argument(
        "--memory-cap",
        type=positive_float,
        metavar="GIB",
        help="stop a run whose process tree holds more than this (default: 85%% of the machine's memory)",
    )


def run(args):
    from linreg.io import files

    if args.penalized:
        return run_penalized(args)
    cases = QUICK_CASES if args.quick else FULL_CASES + (LARGE_CASES if args.large else [])
    names = args.systems or list(SYSTEMS)
    settings = {
        "timeout_s": args.timeout,
        "stream_timeout_s": args.stream_timeout,
        "stream_max_n": args.stream_max_n,
        "memory_cap_bytes": int(args.memory_cap * 2**30) if args.memory_cap else None,
        "repeats": args.repeats or 1,
        "warm_calls": args.warm_calls,
        "only": sorted(args.cases) if args.cases else None,
    }
    files.make_dir(args.out)
    save = (lambda report: files.write_json(args.json, report)) if args.json else None
    report = benchmark(cases, names, Path(args.data_dir), settings, echo=print, save=save)
    print()
    print(fit_report.format_report(report))
    table_path = Path(args.out) / "fitbench.md"
    files.write_text(table_path, fit_report.format_report(report) + "\n")
    plot_path = Path(args.out) / "fitbench.png"
    fit_report.plot(report, plot_path)
    print(f"\ntable: {table_path}\nplot: {plot_path}")
    if args.json:
        print(f"json: {args.json}")
    return 0


def run_penalized(args):
    """`--penalized`: linreg's cross-validated elastic net against its peers', table to stdout and --out."""
    import psutil

    from linreg.bench import fit_penalized
    from linreg.io import files

    cases = fit_penalized.QUICK_CASES if args.quick else fit_penalized.CASES
    if args.cases:
        cases = [(n, d) for n, d, fmt in sorted(args.cases) if fmt == "parquet"]
    memory_cap = int(args.memory_cap * 2**30) if args.memory_cap else int(0.85 * psutil.virtual_memory().total)
    report = fit_penalized.benchmark(cases, Path(args.data_dir).absolute(), args.timeout, memory_cap, print)
    table = fit_penalized.format_report(report)
    print()
    print(table)
    files.make_dir(args.out)
    files.write_text(Path(args.out) / "fitbench-penalized.md", table + "\n")
    if args.json:
        files.write_json(args.json, {"kind": "penalized time to fit", "cases": report})
