"""The fit benchmark's pieces, run small: the data and its reference answer, the
peers cold and warm, the process supervisor, and the whole `linreg bench --fit` once."""
import json
import os
import sys
import time

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from linreg.bench import fit_data, fit_runs, peers, warm_fits
from linreg.cli import main

N, D = 3000, 3


@pytest.fixture(scope="module", params=fit_data.FORMATS)
def data_file(request, tmp_path_factory):
    """A small file of the benchmark's data, its sidecar made (reference included)."""
    folder = tmp_path_factory.mktemp("bench-data")
    path, meta, generated = fit_data.ensure_data(folder, N, D, request.param, echo=lambda *a, **k: None)
    assert generated
    return path, meta, request.param


def read_back(path, fmt, d=D):
    table = pacsv.read_csv(path) if fmt == "csv" else pq.read_table(path)
    return table.to_pandas()[fit_data.columns(d)].to_numpy()


def test_the_file_holds_the_generator_s_rows(data_file):
    path, meta, fmt = data_file
    x, y = fit_data.chunk(fit_data.problem(D), D, 0, N)
    # CSV text round-trips float64 exactly: the file holds the very numbers drawn
    np.testing.assert_array_equal(read_back(path, fmt), np.column_stack([x, y]))
    assert meta["csv_round_trip_exact"] is (True if fmt == "csv" else None)


def test_streamed_tsqr_is_numpy_lstsq_on_the_numbers_read_back(data_file, monkeypatch):
    path, meta, fmt = data_file
    # Small pieces, so that the R factors of several batches are stacked.
    monkeypatch.setattr(fit_data, "CSV_BLOCK_BYTES", 2**15)
    monkeypatch.setattr(fit_data, "PARQUET_BATCH_ROWS", 700)
    assert len(list(fit_data._batches(path, fmt))) > 2
    found = fit_data.reference_solution(path, D, fmt)
    rows = read_back(path, fmt)
    A = np.column_stack([np.ones(N), rows[:, :D]])
    beta, rss, _, _ = np.linalg.lstsq(A, rows[:, D], rcond=None)
    assert found["rows_read"] == N
    reference = found["reference"]
    np.testing.assert_allclose([reference["intercept"], *(reference[f"x{j}"] for j in range(D))], beta, rtol=1e-10)
    assert found["residual_sum_of_squares"] == pytest.approx(rss[0], rel=1e-10)
    assert found["condition_number"] == pytest.approx(np.linalg.cond(A), rel=1e-8)
    unit = A / np.linalg.norm(A, axis=0)
    assert found["condition_number_unit_columns"] == pytest.approx(np.linalg.cond(unit), rel=1e-8)
    assert meta["reference"] == pytest.approx(reference, rel=1e-12)  # the sidecar's, read by whole batches


def test_the_sidecar_is_reused_until_the_file_changes(data_file):
    path, meta, fmt = data_file
    again, meta_again, generated = fit_data.ensure_data(path.parent, N, D, fmt, echo=lambda *a, **k: None)
    assert (again, meta_again, generated) == (path, meta, False)
    assert fit_data.cached(path, N + 1, D, fmt) is None  # another case: not this file
    stale = path.with_name("stale." + fmt)
    stale.write_bytes(path.read_bytes() + b"\n")
    fit_data.sidecar_path(stale).write_text(json.dumps(meta))
    assert fit_data.cached(stale, N, D, fmt) is None  # the size no longer matches


def test_max_relative_difference():
    reference = {"intercept": 2.0, "x0": -4.0}
    assert fit_data.max_relative_difference({"intercept": 2.5, "x0": -4.4}, reference) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="x0"):
        fit_data.max_relative_difference({"intercept": 2.0}, reference)


@pytest.mark.parametrize("system", ["lstsq", "statsmodels", "sklearn", "pyarrow"])
def test_a_peer_reaches_the_reference(system, data_file, tmp_path):
    path, meta, fmt = data_file
    if system == "sklearn":
        pytest.importorskip("sklearn")
    out = tmp_path / "out.json"
    peers.main([system, str(path), fmt, str(D), str(out), repr(time.monotonic())])
    result = json.loads(out.read_text())
    phases = result["phases"]
    assert 0 <= phases["started_s"] <= phases["imported_s"] <= phases["read_s"] <= phases["fitted_s"]
    assert result["vmhwm_bytes"] > 0
    if system == "pyarrow":
        assert result["rows"] == N and "coefficients" not in result
    else:
        assert fit_data.max_relative_difference(result["coefficients"], meta["reference"]) < 1e-8


def lstsq_of(path, fmt, d=D):
    """numpy's least squares on the numbers read back from the file, by name."""
    rows = read_back(path, fmt, d)
    beta = np.linalg.lstsq(np.column_stack([np.ones(len(rows)), rows[:, :d]]), rows[:, d], rcond=None)[0]
    return {"intercept": beta[0], **{f"x{j}": beta[j + 1] for j in range(d)}}


def test_every_system_fits_warm_in_turns(data_file, tmp_path, monkeypatch):
    """linreg.fit (default engine and moments) and the peers, after an untimed
    fit of a smaller file, each reach numpy's lstsq on every timed call; a
    system that cannot run is recorded with its error and the others go on."""
    path, meta, fmt = data_file
    pytest.importorskip("sklearn")
    small, _, _ = fit_data.ensure_data(tmp_path, 500, D, fmt, echo=lambda *a, **k: None)

    def no_spark(*args):
        raise RuntimeError("no Java here")

    monkeypatch.setattr(peers, "spark_peer", no_spark)
    calls, out = 2, tmp_path / "warm.json"
    warm_fits.main([str(path), fmt, str(D), str(small), str(calls), str(out), "1g", *warm_fits.SYSTEMS])
    systems = json.loads(out.read_text())
    assert systems.pop("Spark MLlib") == {"calls_s": [], "error": "on the small file: RuntimeError: no Java here"}
    expected = lstsq_of(path, fmt)
    assert set(systems) == set(warm_fits.SYSTEMS) - {"Spark MLlib"}
    for name, figures in systems.items():
        assert "error" not in figures, (name, figures)
        assert len(figures["calls_s"]) == calls and min(figures["calls_s"]) > 0
        assert fit_data.max_relative_difference(figures["coefficients"], expected) < 1e-8, name
    assert systems["linreg auto"]["engine"] == "memory"  # a small file is fitted in memory
    assert systems["linreg moments"]["engine"] == "moments"


def test_a_warm_process_stopped_fails_every_system_it_had_not_finished(data_file, tmp_path):
    pytest.importorskip("psutil")
    path, meta, fmt = data_file
    # One second: not even TensorFlow is imported by then.
    process, systems = fit_runs.run_warm(["linreg moments", "numpy lstsq"], path, path, D, fmt, meta["reference"],
                                         calls=2, timeout=1, memory_cap=None)  # fmt: skip
    assert process["error"] == "timeout: still running after 1 s"
    for figures in systems.values():
        assert figures["status"] == "failed" and figures["error"] == process["error"]
        assert figures["wall_s"] is None and figures["coefficients"] is None


# --- the supervisor: real processes, since a process tree is the point ---------------

HOLD = "import sys, time; b = bytearray({size}); b[::4096] = b'x' * len(b[::4096]); time.sleep(600)"


def test_supervisor_stops_a_tree_over_the_memory_cap(tmp_path):
    """A child that starts a grandchild holding 300 MiB: the tree's sum passes
    a 200 MiB cap, the run is stopped, and no process of it is left."""
    psutil = pytest.importorskip("psutil")
    from linreg.bench.supervisor import watch

    grandchild = HOLD.format(size=300 * 2**20)
    child = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', sys.argv[1]]); "
             "open('pid', 'w').write(str(p.pid)); p.wait()")  # fmt: skip
    figures = watch([sys.executable, "-c", child, grandchild], os.environ, tmp_path, timeout=120, memory_cap=200 * 2**20)
    assert figures["stopped"].startswith("stopped: the process tree held")
    # A Python child alone holds a few tens of MiB: the cap was passed by counting the grandchild.
    assert figures["peak_tree_rss_bytes"] > 200 * 2**20
    assert figures["processes"] == 2
    pid = int((tmp_path / "pid").read_text())
    try:
        assert psutil.Process(pid).status() == psutil.STATUS_ZOMBIE  # killed, not yet reaped
    except psutil.NoSuchProcess:
        pass


def test_supervisor_times_out_and_passes_the_launch_time(tmp_path):
    pytest.importorskip("psutil")
    from linreg.bench.supervisor import LAUNCHED, watch

    script = "import sys, time; print(time.monotonic() - float(sys.argv[1])); sys.exit(3)"
    with open(tmp_path / "stdout", "wb") as stdout:
        figures = watch([sys.executable, "-c", script, LAUNCHED], os.environ, tmp_path, timeout=120, stdout=stdout)
    assert figures["exit_code"] == 3 and figures["stopped"] is None
    assert 0 <= float((tmp_path / "stdout").read_text()) <= figures["wall_s"]
    figures = watch([sys.executable, "-c", HOLD.format(size=1)], os.environ, tmp_path, timeout=1)
    assert figures["stopped"] == "timeout: still running after 1 s"
    assert figures["exit_code"] == -9


# --- the whole command -------------------------------------------------------------


def test_bench_fit_end_to_end(tmp_path, capsys):
    """linreg moments and numpy's lstsq on one small file, cold and warm: every
    fit within 1e-8 of the streamed TSQR and of numpy's lstsq on the file read
    back, and the tables and the plot written."""
    pytest.importorskip("psutil")
    argv = ["bench", "--fit", "--quick", "--cases", "1e5:8:parquet", "--systems", "linreg moments,numpy lstsq",
            "--warm-calls", "2", "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"),
            "--json", str(tmp_path / "f.json")]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((tmp_path / "f.json").read_text())
    (case,) = report["cases"]
    assert (case["n"], case["d"], case["format"]) == (10**5, 8, "parquet")
    expected = lstsq_of(case["file"], "parquet", 8)
    for name in ("linreg moments", "numpy lstsq"):
        for figures in (case["systems"][name], case["warm"][name]):
            assert figures["status"] == "ok", figures.get("error")
            assert figures["max_rel_diff"] <= 1e-8
            assert fit_data.max_relative_difference(figures["coefficients"], expected) < 1e-8
        assert len(case["warm"][name]["calls_s"]) == 2
    assert "-m linreg.bench.peers lstsq" in case["systems"]["numpy lstsq"]["command"]
    table = (tmp_path / "out" / "fitbench.md").read_text()
    names = ("linreg moments", "numpy lstsq")
    ours, peer = (case["systems"][name]["wall_s"] for name in names)
    warm_ours, warm_peer = (case["warm"][name]["wall_s"] for name in names)
    cold_ratio = f"{ours / peer:.2f} (linreg moments / numpy lstsq)"
    assert f"| {cold_ratio} |" in table
    # The cold and warm table: both figures of each system, and both ratios.
    assert f"| {cold_ratio} | {warm_ours / warm_peer:.2f} (linreg moments / numpy lstsq) |" in table
    assert f" / {warm_ours:.3g} | " in table and f" / {warm_peer:.3g} | " in table
    assert table in capsys.readouterr().out
    assert (tmp_path / "out" / "fitbench.png").read_bytes()[:4] == b"\x89PNG"


def test_a_penalized_peer_not_installed_is_reported_unavailable(tmp_path, monkeypatch):
    """A peer whose library cannot be imported in its fresh process is a row that says
    so, with the install to make, and the report still forms."""
    from linreg.bench import fit_penalized

    stubs = tmp_path / "stubs"
    stubs.mkdir()
    # What the peer's process meets when glum is not installed.
    (stubs / "glum.py").write_text("raise ModuleNotFoundError(\"No module named 'glum'\", name='glum')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(stubs), *sys.path]))
    name = "glum GeneralizedLinearRegressorCV"
    (case,) = fit_penalized.benchmark([(200, 3)], tmp_path / "data", 300, None, lambda *a, **k: None, (name,))
    figures = case["systems"][name]
    assert figures["exit_code"] == fit_penalized.UNAVAILABLE
    assert figures["error"] == "unavailable: glum is not installed (pip install -e '.[bench]')"
    assert figures["alpha"] is None and figures["max_rel_diff"] is None
    row = f"| N=2e+02 d=3 parquet | {name} | failed: unavailable: glum is not installed"
    assert row in fit_penalized.format_report([case])
