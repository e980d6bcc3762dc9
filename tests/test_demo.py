"""`python main.py` / `linreg demo` end to end: story, plots, JSON, Keras agreement."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from linreg.analysis.ols import least_squares
from linreg.cli import main
from linreg.data.synthetic import synthetic
from linreg.cli.demo import PLOTS

ROOT = Path(__file__).resolve().parents[1]


def test_main_py_runs_end_to_end_and_writes_plots_and_json(tmp_path):
    out, summary_path = tmp_path / "plots", tmp_path / "run" / "summary.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--quiet", "--out", str(out), "--json", str(summary_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    for name in PLOTS.values():
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == sorted(PLOTS.values())  # no temporary files left

    summary = json.loads(summary_path.read_text())
    x, y = synthetic(1000, seed=0)
    W_ls, b_ls = least_squares(x, y)
    assert summary["least_squares"]["W"] == pytest.approx(W_ls[0], abs=1e-12)
    assert summary["least_squares"]["b"] == pytest.approx(b_ls, abs=1e-12)
    # the defaults reach the least-squares optimum to 1e-3
    assert abs(summary["W"] - W_ls[0]) < 1e-3 and abs(summary["b"] - b_ls) < 1e-3
    assert summary["epochs"] == 50
    history = summary["history"]
    assert len(history["loss"]) == len(history["W"]) == len(history["b"]) == 51
    assert history["W"][0] == 5.0 and history["W"][-1] == summary["W"]
    assert summary["loss"] == history["loss"][-1] < history["loss"][0]


def test_the_story_is_told_in_order(tmp_path, capsys):
    assert main(["demo", "--epochs", "5", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    headings = ["1. Data", "2. Model", "3. Learning rate", "4. Training", "5. Result", "Plots:"]
    positions = [out.index(h) for h in headings]
    assert positions == sorted(positions)
    assert "least squares" in out and "true" in out
    # 5 epochs are not enough, and the summary says so
    assert "NOT yet within 1e-3" in out
    log = out[out.index("4. Training"):out.index("5. Result")].splitlines()[2:-1]
    assert [int(line.split()[0]) for line in log] == [0, 1, 2, 3, 4, 5]


def test_the_same_seed_gives_identical_output(tmp_path, capsys):
    def run(seed, name):
        path = tmp_path / f"{name}.json"
        assert main(["demo", "--quiet", "--seed", str(seed), "--epochs", "10", "--out", str(tmp_path / name),
                     "--json", str(path)]) == 0
        return json.loads(path.read_text())

    first, again, other = run(7, "a"), run(7, "b"), run(8, "c")
    assert first == again
    assert first["history"] != other["history"]
    assert capsys.readouterr().out == ""


def test_keras_fit_agrees_with_the_hand_written_loop(tmp_path, capsys):
    path = tmp_path / "s.json"
    assert main(["demo", "--keras", "--epochs", "30", "--out", str(tmp_path), "--json", str(path)]) == 0
    summary = json.loads(path.read_text())
    assert abs(summary["keras"]["W"] - summary["W"]) < 1e-4
    assert abs(summary["keras"]["b"] - summary["b"]) < 1e-4
    # Keras reports the loss at the start of each epoch's step, as our history does
    np.testing.assert_allclose(summary["keras"]["loss"], summary["history"]["loss"][:-1], rtol=1e-4)
    assert "Keras" in capsys.readouterr().out


def test_divergence_stops_with_exit_code_3_and_draws_nothing(tmp_path, capsys):
    out, path = tmp_path / "plots", tmp_path / "s.json"
    code = main(["demo", "--learning-rate", "1.5", "--epochs", "500", "--out", str(out), "--json", str(path)])
    captured = capsys.readouterr()
    assert code == 3
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: training diverged at epoch")
    assert "learning rate 1.5" in lines[0] and "--learning-rate" in lines[0]
    assert not out.exists() and not path.exists()
    assert "Plots:" not in captured.out


def test_without_noise_the_demo_recovers_the_true_line(tmp_path):
    path = tmp_path / "s.json"
    assert main(["demo", "--quiet", "--noise", "0", "--epochs", "200", "--true-w", "-1.5", "--true-b", "0.25",
                 "--out", str(tmp_path), "--json", str(path)]) == 0
    summary = json.loads(path.read_text())
    assert summary["W"] == pytest.approx(-1.5, abs=1e-4) and summary["b"] == pytest.approx(0.25, abs=1e-4)


def test_the_demo_trains_with_the_seed_loop_and_its_path_is_gradient_descent(tmp_path, monkeypatch):
    """The loop `python main.py` runs is core/training.train_plainly, and the
    path it reports is plain descent written out in float64 numpy."""
    from linreg.core import training

    epochs = []
    loop = training.train_plainly
    monkeypatch.setattr(training, "train_plainly", lambda *args: epochs.append(args[-1]) or loop(*args))
    path = tmp_path / "s.json"
    assert main(["demo", "--quiet", "--epochs", "7", "--out", str(tmp_path), "--json", str(path)]) == 0
    assert epochs == [7]

    history = json.loads(path.read_text())["history"]
    x, y = (np.asarray(a, np.float64) for a in synthetic(1000, seed=0))
    W, b = 5.0, 0.0
    for k in range(8):
        residual = y - (W * x[:, 0] + b)
        assert history["W"][k] == pytest.approx(W, abs=1e-5) and history["b"][k] == pytest.approx(b, abs=1e-5)
        assert history["loss"][k] == pytest.approx(np.mean(residual**2), rel=1e-5)
        W, b = W + 0.1 * 2 * np.mean(x[:, 0] * residual), b + 0.1 * 2 * np.mean(residual)
