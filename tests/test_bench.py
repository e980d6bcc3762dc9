"""The benchmark's code path, run small: well-formed figures, no timing asserted."""
import json
import math

import numpy as np
import pytest

from linreg.cli import bench, main


def tiny_report():
    systems = {name: bench.SYSTEMS[name] for name in ("linreg none", "linreg function", "linreg xla", "numpy")}

    def broken(x, y):
        raise ImportError("No module named 'nothing'")

    systems["missing peer"] = (broken, 1e-3)
    return bench.benchmark([(300, 2)], repeats=1, target_seconds=0.002, systems=systems)


@pytest.fixture(scope="module")
def report():
    return tiny_report()


def test_report_is_well_formed_json(report):
    data = json.loads(json.dumps(report))
    (case,) = data["cases"]
    assert (case["n"], case["d"]) == (300, 2)
    assert case["floor_s"] > 0 and math.isfinite(case["floor_s"])
    assert set(case["systems"]) == {"linreg none", "linreg function", "linreg xla", "numpy"}
    assert all(seconds > 0 for seconds in case["systems"].values())
    assert case["ours"].startswith("linreg")
    ours = {name: s for name, s in case["systems"].items() if name.startswith("linreg")}
    assert case["systems"][case["ours"]] == min(ours.values())
    assert case["auto"] in ("linreg none", "linreg function", "linreg xla")
    assert "missing peer" in data["unavailable"] and "ImportError" in data["unavailable"]["missing peer"]


def test_table_and_plot(report, tmp_path):
    table = bench.format_table(report)
    header = table.splitlines()[1]
    for column in ("N", "floor", "linreg xla", "numpy", "ours/floor", "ours/best peer"):
        assert column in header
    assert "(numpy)" in table.splitlines()[-1]
    assert "unavailable: missing peer" in bench.format_extras(report)
    path = tmp_path / "bench.png"
    bench.plot(report, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_system_trains_the_same_problem():
    """Each system lowers the loss of the same data (the peers only if installed)."""
    x, y = bench.make_data(500, 3)
    start = float(np.mean(y**2))
    for name, (make, _) in bench.SYSTEMS.items():
        if name in ("torch compile", "keras fit"):
            continue  # slow to build; same code path as their eager siblings
        try:
            run = make(x, y)
        except ImportError:
            continue
        assert run(30) < 0.2 * start, name


def test_peak_rss_in_a_fresh_process():
    figures = bench.peak_rss(1000, 2, "none")
    assert figures["data_bytes"] == 4 * (1000 * 2 + 1000)
    assert figures["peak_rss_bytes"] >= figures["baseline_rss_bytes"] > 0
    assert figures["rss_before_training_bytes"] > 0


def test_bench_flags_are_checked(capsys):
    assert main(["bench", "--repeats", "0"]) == 2
    assert "error:" in capsys.readouterr().err
