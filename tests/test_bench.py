"""The epoch benchmark's code path, run small: well-formed figures, no timing asserted."""
import json
import math

import numpy as np
import pytest

from linreg.bench import epoch, epoch_report, processes
from linreg.bench.epoch_systems import LEARNING_RATE, SYSTEMS, make_data, seed_xla
from linreg.cli import main


def tiny_report():
    systems = {name: SYSTEMS[name] for name in ("linreg none", "linreg function", "linreg xla", "seed xla", "numpy")}

    def broken(x, y):
        raise ImportError("No module named 'nothing'")

    systems["missing peer"] = (broken, 1e-3)
    return epoch.benchmark([(300, 2)], repeats=1, target_seconds=0.002, systems=systems)


@pytest.fixture(scope="module")
def report():
    return tiny_report()


def test_report_is_well_formed_json(report):
    data = json.loads(json.dumps(report))
    (case,) = data["cases"]
    assert (case["n"], case["d"]) == (300, 2)
    assert case["floor_s"] > 0 and math.isfinite(case["floor_s"])
    assert set(case["systems"]) == {"linreg none", "linreg function", "linreg xla", "seed xla", "numpy"}
    assert all(seconds > 0 for seconds in case["systems"].values())
    assert case["ours"].startswith("linreg")
    ours = {name: s for name, s in case["systems"].items() if name.startswith("linreg")}
    assert case["systems"][case["ours"]] == min(ours.values())
    assert case["auto"] in ("linreg none", "linreg function", "linreg xla")
    assert "missing peer" in data["unavailable"] and "ImportError" in data["unavailable"]["missing peer"]


def test_table_and_plot(report, tmp_path):
    lines = epoch_report.format_table(report).splitlines()
    header, row = lines[1].split(), lines[-1]
    for column in ("N", "floor", "xla", "numpy", "ours/floor", "ours/best", "xla/seed"):
        assert column in header
    # seed xla sits beside linreg xla, and the last column is their ratio
    assert lines[1].index("seed xla") == lines[1].index("linreg xla") + len("linreg xla") + 2
    (case,) = report["cases"]
    assert row.split()[-1] == f"{case['systems']['linreg xla'] / case['systems']['seed xla']:.2f}"
    assert "(numpy)" in row or "(seed xla)" in row  # the best peer, named
    assert "unavailable: missing peer" in epoch_report.format_extras(report)
    path = tmp_path / "bench.png"
    epoch_report.plot(report, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_system_trains_the_same_problem():
    """Each system lowers the loss of the same data (the peers only if installed)."""
    x, y = make_data(500, 3)
    start = float(np.mean(y**2))
    for name, (make, _) in SYSTEMS.items():
        if name in ("torch compile", "keras fit"):
            continue  # slow to build; same code path as their eager siblings
        try:
            run = make(x, y)
        except ImportError:
            continue
        assert run(30) < 0.2 * start, name


def test_seed_xla_runs_exactly_the_epochs_asked_and_keeps_its_state():
    """Against gradient descent in float64 numpy: after runs of 3 and then 5
    epochs, the last loss computed is the one before step 8 (a loop running
    one epoch too many or too few, or starting afresh per call, misses it)."""
    x, y = make_data(400, 2)
    run = seed_xla(x, y)
    run(3)
    last = run(5)
    A = np.column_stack([x.astype(np.float64), np.ones(len(x))])
    theta, losses = np.zeros(3), []
    for _ in range(10):
        residual = A @ theta - y
        losses.append(np.mean(residual**2))
        theta -= LEARNING_RATE * 2 * A.T @ residual / len(y)
    assert last == pytest.approx(losses[7], rel=1e-5)
    assert min(abs(losses[6] - losses[7]), abs(losses[8] - losses[7])) > 1e-3 * losses[7]


def test_peak_rss_in_a_fresh_process():
    figures = processes.peak_rss(1000, 2, "none")
    assert figures["data_bytes"] == 4 * (1000 * 2 + 1000)
    assert figures["peak_rss_bytes"] >= figures["baseline_rss_bytes"] > 0
    assert figures["rss_before_training_bytes"] > 0


def test_bench_flags_are_checked(capsys):
    assert main(["bench", "--repeats", "0"]) == 2
    assert "error:" in capsys.readouterr().err
