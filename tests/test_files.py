"""The atomic writer and the drivers, tested by what they do, not by their labels."""
import json
import os
import stat

import numpy as np
import pytest
import tensorflow as tf

from linreg.core import training
from linreg.core.model import LinearModel
from linreg.core.optimizers import GradientDescent
from linreg.engine import driver
from linreg.errors import LinregError
from linreg.io import files


def test_a_failed_write_leaves_the_old_file_whole_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "fit.json"
    target.write_text("old\n", encoding="utf-8")
    seen = {}

    def failing_replace(source, destination):
        # At the moment of the swap the new text is complete, beside the target, and the target untouched.
        seen["source"] = open(source, encoding="utf-8").read()
        seen["target"] = open(destination, encoding="utf-8").read()
        seen["same folder"] = os.path.dirname(os.path.abspath(source)) == str(tmp_path)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", failing_replace)
    with pytest.raises(LinregError, match="cannot write .*fit.json: No space left on device"):
        files.write_json(target, {"new": 1})
    assert seen == {"source": '{\n  "new": 1\n}\n', "target": "old\n", "same folder": True}
    assert target.read_text(encoding="utf-8") == "old\n"
    assert sorted(os.listdir(tmp_path)) == ["fit.json"]


def test_a_write_interrupted_midway_leaves_nothing(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_path(target) as tmp:
            tmp.write_text("half", encoding="utf-8")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []


def test_a_folder_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    target = tmp_path / "model"
    target.mkdir()
    (target / "old.txt").write_text("old", encoding="utf-8")
    with pytest.raises(KeyboardInterrupt):
        with files.atomic_path(target, folder=True) as building:
            (building / "new.txt").write_text("half", encoding="utf-8")
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == ["model"] and os.listdir(target) == ["old.txt"]

    real_replace = files.os.replace

    def failing_second_replace(source, destination):
        if str(destination) == str(target) and "old.txt" not in os.listdir(source):  # the new one, the old moved aside
            raise OSError(28, "No space left on device")
        real_replace(source, destination)

    monkeypatch.setattr(files.os, "replace", failing_second_replace)
    with pytest.raises(LinregError, match="cannot write export folder .*model: No space left on device"):
        with files.atomic_path(target, folder=True, what="export folder") as building:
            (building / "new.txt").write_text("new", encoding="utf-8")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["model"] and os.listdir(target) == ["old.txt"]  # the old one put back
    with files.atomic_path(target, folder=True) as building:
        (building / "new.txt").write_text("new", encoding="utf-8")
    assert os.listdir(tmp_path) == ["model"] and os.listdir(target) == ["new.txt"]


MODES = [(0o644, 0o022), (0o640, 0o077), (0o604, 0o027), (None, 0o022), (None, 0o027)]


@pytest.mark.parametrize(
    "mode, mask", MODES, ids=[f"{'new' if m is None else f'{m:04o}'} under umask {u:03o}" for m, u in MODES]
)
def test_a_file_keeps_its_mode_and_a_new_one_gets_the_umasks(tmp_path, mode, mask):
    """The temporary file mkstemp makes is private (0600) whatever the umask:
    the writer must give the result the mode the old file had, or for a new
    file the mode a plain open() would have given it under the same umask."""
    target, plain = tmp_path / "fit.json", tmp_path / "plain.json"
    if mode is not None:
        target.write_text("old\n", encoding="utf-8")
        target.chmod(mode)
    previous = os.umask(mask)
    try:
        files.write_json(target, {"new": 1})
        plain.write_text("", encoding="utf-8")
    finally:
        os.umask(previous)
    expected = mode if mode is not None else stat.S_IMODE(plain.stat().st_mode)
    assert stat.S_IMODE(target.stat().st_mode) == expected
    assert json.loads(target.read_text(encoding="utf-8")) == {"new": 1}


@pytest.mark.parametrize("mode, calls", [("none", 12), ("function", 1), ("xla", 1)])
def test_compiled_modes_run_the_loop_as_a_graph(monkeypatch, mode, calls):
    """Eager mode runs the Python step once per epoch; a compiled mode runs
    it once, while tracing, and then only the graph. A driver that silently
    ran eagerly would call it every epoch."""
    counted = []
    step = training.train_step

    def counting_step(*args):
        counted.append(1)
        return step(*args)

    monkeypatch.setattr(training, "train_step", counting_step)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((64, 2)), tf.float32)
    y = tf.constant(rng.standard_normal(64), tf.float32)
    model = LinearModel(2)  # a new model object: the compiled chunk is traced afresh
    result = driver.train(model, GradientDescent(model, 0.1), x, y, 12, compile=mode)
    assert result.epochs == 12 and result.compile == mode
    assert len(counted) == calls


def test_xla_compiles_the_chunk():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((16, 2)), tf.float32)
    y = tf.constant(rng.standard_normal(16), tf.float32)
    model = LinearModel(2)
    optimizer, state = GradientDescent(model, 0.1), training.LoopState(tf.float32)
    args = (model, optimizer, state, x, y, tf.constant(0.0), tf.constant(5, tf.int64), 4, tf.constant(1000))
    hlo = driver._DRIVERS["xla"].experimental_get_compiler_ir(*args)(stage="hlo")
    assert "while" in hlo  # one XLA program holding the epoch loop


def test_float32_default_tolerance_follows_the_condition_number():
    from linreg.train import default_tol

    assert default_tol("float32", 100.0) == pytest.approx(1e-6)
    assert default_tol("float32", 1e3) == pytest.approx(1e-7)
    assert default_tol("float32", 1e4) == pytest.approx(1e-8)
    assert default_tol("float32", 1e8) == pytest.approx(1e-9)
    assert default_tol("float64", 1e8) == 1e-15


def test_leftovers_of_a_killed_run_are_removed_and_a_live_ones_kept(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)  # a process that has ended
    (tmp_path / f".fit.json.{dead_pid}.abcd.tmp.json").write_text("half", encoding="utf-8")
    (tmp_path / f".model.{dead_pid}.xyz").mkdir()
    (tmp_path / f".fit.json.{os.getpid()}.live.tmp.json").write_text("mine", encoding="utf-8")
    (tmp_path / ".fit.json.notes").write_text("not ours", encoding="utf-8")
    files.write_json(tmp_path / "fit.json", {"a": 1})
    files.remove_leftovers(tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["fit.json", f".fit.json.{os.getpid()}.live.tmp.json", ".fit.json.notes"]
    )


def test_progress_refreshes_on_a_terminal_and_stays_silent_elsewhere():
    import io

    from linreg.io import progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    assert progress.wanted("auto", Terminal()) and not progress.wanted("auto", io.StringIO())
    assert not progress.wanted(False, Terminal())
    screen = Terminal()
    rng = np.random.default_rng(2)
    x = tf.constant(rng.standard_normal((50, 1)))
    y = tf.constant(rng.standard_normal(50))
    model = LinearModel(1, dtype=tf.float64)
    bar = progress.Progress(3000, stream=screen)
    driver.train(model, GradientDescent(model, 0.1), x, y, 3000, compile="none", listeners=[bar], patience=10**9)
    text = screen.getvalue()
    assert "epoch " in text and "/3000" in text and "loss " in text and "relative gradient" in text
    assert "epochs/s" in text
