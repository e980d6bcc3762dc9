"""The fit benchmark's pieces, run small: the data and its reference answer, the
peers, the process supervisor, and the whole `linreg bench --fit` once."""
import json
import os
import sys
import time

import numpy as np
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from linreg.bench import fit_data, peers
from linreg.cli import main

N, D = 3000, 3


@pytest.fixture(scope="module", params=fit_data.FORMATS)
def data_file(request, tmp_path_factory):
    """A small file of the benchmark's data, its sidecar made (reference included)."""
    folder = tmp_path_factory.mktemp("bench-data")
    path, meta, generated = fit_data.ensure_data(folder, N, D, request.param, echo=lambda *a, **k: None)
    assert generated
    return path, meta, request.param


def read_back(path, fmt):
    table = pacsv.read_csv(path) if fmt == "csv" else pq.read_table(path)
    return table.to_pandas()[fit_data.columns(D)].to_numpy()


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
    """linreg moments and numpy's lstsq on one small file: both within 1e-8 of the
    streamed TSQR, and the tables and the plot written."""
    pytest.importorskip("psutil")
    argv = ["bench", "--fit", "--quick", "--cases", "1e5:8:parquet", "--systems", "linreg moments,numpy lstsq",
            "--data-dir", str(tmp_path / "data"), "--out", str(tmp_path / "out"), "--json", str(tmp_path / "f.json")]  # fmt: skip
    assert main(argv) == 0
    report = json.loads((tmp_path / "f.json").read_text())
    (case,) = report["cases"]
    assert (case["n"], case["d"], case["format"]) == (10**5, 8, "parquet")
    for name in ("linreg moments", "numpy lstsq"):
        assert case["systems"][name]["status"] == "ok", case["systems"][name].get("error")
        assert case["systems"][name]["max_rel_diff"] <= 1e-8
    assert "-m linreg.bench.peers lstsq" in case["systems"]["numpy lstsq"]["command"]
    ours, peer = (case["systems"][name]["wall_s"] for name in ("linreg moments", "numpy lstsq"))
    table = (tmp_path / "out" / "fitbench.md").read_text()
    assert f"| {ours / peer:.2f} (linreg moments / numpy lstsq) |" in table
    assert table in capsys.readouterr().out
    assert (tmp_path / "out" / "fitbench.png").read_bytes()[:4] == b"\x89PNG"
