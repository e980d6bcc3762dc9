"""The benchmarks behind `linreg bench`: what is timed, how, and how it is told.

Two benchmarks, each a few modules with one job; the command line
(cli/bench.py, cli/fitbench.py) only reads the flags, picks the cases and
wires these up.

Seconds per epoch, every system in this process (`linreg bench`):
    epoch_systems.py  the data, and each system as make(x, y) -> run(epochs)
    epoch.py          every system on every case, timed -> the report
    processes.py      start-up time and peak memory, in fresh processes
    rss_probe.py      the fresh process that measures peak memory
    epoch_report.py   the report as a table, a few lines and a plot

Time from a file to coefficients, every run in a fresh process (`linreg bench --fit`):
    fit_data.py       the files, made once, and the least-squares answer in them
    supervisor.py     a process tree watched: wall time, peak memory, CPU, limits
    peers.py          the process a peer (pandas, numpy, Spark ...) fits in
    warm_fits.py      the process where linreg and the peers fit warm, taking turns
    fit_runs.py       one run of one system -> its figures; repeats -> one figure
    fit.py            every system on every case -> the report
    fit_report.py     the report as markdown tables and a plot

Nothing here is a test: speed is measured, never asserted. This file holds
the little both benchmarks share.
"""


def is_ours(name):
    """Whether a system is this project's own (its name starts with "linreg")."""
    return name.startswith("linreg")


def system_names(report):
    """Every system that ran in some case of the report, in the order they first ran."""
    names = []
    for case in report["cases"]:
        names += [name for name in case["systems"] if name not in names]
    return names


def memory(pid="self"):
    """Resident memory (VmRSS) and its peak (VmHWM) of a process, in bytes.

    From /proc/PID/status (Linux); 0 where a field is missing, as for a
    zombie, which holds no memory. getrusage's ru_maxrss is not used: Linux
    carries it over from the parent across fork and exec.
    """
    found = {"VmRSS": 0, "VmHWM": 0}
    with open(f"/proc/{pid}/status") as lines:
        for line in lines:
            key = line.split(":", 1)[0]
            if key in found:
                found[key] = int(line.split()[1]) * 1024
    return found["VmRSS"], found["VmHWM"]
