"""The command line in fresh processes: help without TensorFlow, SIGTERM and
SIGINT during training and during a streamed read, kill -9 and resume, peak
memory, refused checkpoints.

Each TensorFlow process costs seconds to start, so processes that do not
depend on each other run side by side."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
import tensorflow as tf

from linreg.data.synthetic import correlated

SRC = Path(__file__).resolve().parents[1] / "src"
TIMEOUT = 120


def environment(*paths):
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # conftest's quiet import set it in this process
    env["PYTHONPATH"] = os.pathsep.join([*map(str, paths), str(SRC)])
    return env


STARTED = []


@pytest.fixture(autouse=True)
def no_process_outlives_its_test():
    yield
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:  # a failed test left it running
            process.kill()
            process.communicate()


def start(cwd, *args, env=None, python=("-m", "linreg")):
    STARTED.append(process := subprocess.Popen(
        [sys.executable, *python, *map(str, args)],
        cwd=cwd,
        env=env or environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ))
    return process


def finish(process):
    out, err = process.communicate(timeout=TIMEOUT)
    return process.returncode, out, err


def wait_until(condition, process, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, finish(process)
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def kill_9(process):
    assert process.poll() is None, finish(process)  # still running
    process.kill()
    assert finish(process)[0] == -signal.SIGKILL


def write_csv(path, x, y):
    names = [f"x{j + 1}" for j in range(x.shape[1])]
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header=",".join([*names, "y"]), comments="", fmt="%.17g")
    return path


def easy(path, rows=200, features=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, features))
    return write_csv(path, x, x @ np.arange(1.0, features + 1) + 0.5 + 0.1 * rng.standard_normal(rows))


def hard(path, correlation, seed=1):
    x, y, _, _ = correlated(200, 3, correlation=correlation, seed=seed)
    return write_csv(path, x, y)


def saved_epoch(ck):
    """The epoch of the latest checkpoint in folder ck."""
    return int(tf.train.load_variable(str(ck), "loop/epoch/.ATTRIBUTES/VARIABLE_VALUE"))


def test_help_needs_no_tensorflow_and_import_changes_nothing(tmp_path):
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text('raise ImportError("no tensorflow here")\n')
    helps = {
        command: start(tmp_path, *command.split(), "--help", env=environment(tmp_path))
        for command in ("", "fit", "demo", "predict", "bench")
    }
    probe = start(
        tmp_path,
        python=(
            "-c",
            "import json, os, sys\n"
            "env, before = dict(os.environ), os.fstat(2)\n"
            "import linreg\n"
            "after = os.fstat(2)\n"
            "os.write(2, b'fd 2 still here')\n"
            "print(json.dumps(['tensorflow' in sys.modules, dict(os.environ) == env,\n"
            "                  (before.st_dev, before.st_ino) == (after.st_dev, after.st_ino)]))\n",
        ),
    )
    for command, process in helps.items():
        code, out, err = finish(process)
        assert (code, err) == (0, ""), command
        assert out.startswith(f"usage: linreg {command}".rstrip() + " "), out
    code, out, err = finish(probe)
    assert code == 0, err
    assert json.loads(out) == [False, True, True]  # no TensorFlow, same environment, same fd 2
    assert err == "fd 2 still here"


def test_sigterm_and_sigint_stop_training_leaving_nothing_behind(tmp_path):
    data = hard(tmp_path / "data.csv", 0.99999)  # gd needs millions of epochs: runs until stopped
    started = {}
    for signum, engine in ((signal.SIGTERM, "memory"), (signal.SIGINT, "memory"), (signal.SIGTERM, "stream")):
        out = tmp_path / f"{signum.name}-{engine}"
        out.mkdir()
        started[signum, out] = start(
            tmp_path, "fit", data, "--target", "y", "--dtype", "float64", "--epochs", "1000000000", "--tol", "0",
            "--optimizer", "gd", "--engine", engine,
            "--json", out / "fit.json", "--out", out / "plots", "--export", out / "model",
            "--checkpoint", out / "ck", "--compile", "none",
        )
    index = {}  # each run's checkpoint index when the signal was sent
    for (signum, out), process in started.items():
        wait_until((out / "ck" / "checkpoint").is_file, process)  # 5 s of training saved
        # Away from that save: a signal that lands while a save finishes ends
        # the run with that checkpoint, which is then already the latest.
        time.sleep(1.0)
        index[out] = (out / "ck" / "checkpoint").read_text()
        process.send_signal(signum)
    for (signum, out), process in started.items():
        code, _, err = finish(process)
        assert code == 128 + signum
        assert err.splitlines() == ["error: interrupted"], err
        assert not (out / "fit.json").exists() and not (out / "model").exists()
        assert not (out / "plots").exists() or not any((out / "plots").iterdir())
        temporary = [p for p in out.rglob("*") if p.name.startswith(".") or ".tmp" in p.name or p.name.endswith("_temp")]
        assert temporary == []
        # The interrupted run saved where it was, on its way out.
        assert (out / "ck" / "checkpoint").read_text() != index[out] and saved_epoch(out / "ck") > 0


def test_ctrl_c_as_the_command_ends_is_ignored_or_one_line(tmp_path):
    """A Ctrl-C that lands as soon as the JSON is written: the work is done,
    so the process exits with its own code, or -- had the signal come a
    moment earlier -- with the one line; never killed by the signal, with no
    word, while the interpreter shuts down."""
    data = easy(tmp_path / "data.csv", rows=20_000)
    outs = [tmp_path / f"fit{k}.json" for k in range(3)]
    runs = [start(tmp_path, "fit", data, "--target", "y", "--json", out, "--quiet") for out in outs]
    waiting, deadline = set(range(len(runs))), time.monotonic() + TIMEOUT
    while waiting and time.monotonic() < deadline:
        for k in list(waiting):
            if outs[k].exists() or runs[k].poll() is not None:
                if runs[k].poll() is None:
                    runs[k].send_signal(signal.SIGINT)
                waiting.discard(k)
        time.sleep(0.001)
    for out, process in zip(outs, runs):
        code, _, err = finish(process)
        assert (code, err) == (0, "") or (code, err.splitlines()) == (128 + signal.SIGINT, ["error: interrupted"]), (code, err)
        assert json.loads(out.read_text())["coefficients"]  # written whole before the signal


def test_kill_9_and_resume_gives_the_same_bits(tmp_path):
    data = hard(tmp_path / "data.csv", 0.9999)  # gd: about 400,000 epochs, 12-20 s
    ck = tmp_path / "ck"
    fit = ("fit", data, "--target", "y", "--dtype", "float64", "--optimizer", "gd", "--tol", "1e-10",
           "--epochs", "10000000", "--compile", "function", "--quiet")
    reference = start(tmp_path, *fit, "--json", tmp_path / "ref.json")
    resumable = (*fit, "--checkpoint", ck, "--json", tmp_path / "a.json")

    def leftovers(number):  # what a kill during a save leaves: a shard folder, an index not yet renamed
        (ck / f"ckpt-{number}_temp").mkdir(parents=True)
        (ck / f"ckpt-{number}_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
        (ck / f"checkpoint.tmp{number:032x}").write_text(f'model_checkpoint_path: "ckpt-{number}"\n')

    leftovers(1)  # an earlier run killed in its first save, before any index existed
    started = time.monotonic()
    first = start(tmp_path, *resumable)
    wait_until((ck / "checkpoint").is_file, first)
    time.sleep(1.0)  # mid-chunk
    kill_9(first)
    epoch_1, killed_1 = saved_epoch(ck), time.monotonic() - started
    leftovers(99)

    second = start(tmp_path, *resumable)
    time.sleep(6.0)  # a different moment: shortly after the resumed run has started training
    kill_9(second)
    epoch_2, killed_2 = saved_epoch(ck), time.monotonic() - started
    assert 0 < epoch_1 <= epoch_2

    code, _, err = finish(start(tmp_path, *resumable))
    assert code == 0, err
    code, _, err = finish(reference)
    assert code == 0, err
    resumed, straight = (json.loads((tmp_path / name).read_text()) for name in ("a.json", "ref.json"))
    assert resumed["resumed_at_epoch"] == epoch_2 and straight["resumed_at_epoch"] is None
    assert resumed["converged"] is straight["converged"] is True
    assert resumed["epochs"] == straight["epochs"] > epoch_2
    assert resumed["coefficients"] == straight["coefficients"]  # bit for bit
    print(f"killed at {killed_1:.1f} s (saved epoch {epoch_1}) and {killed_2:.1f} s (epoch {epoch_2}), "
          f"done at {time.monotonic() - started:.1f} s, {resumed['epochs']} epochs")


REPORT_PEAK = (  # the process's peak resident memory, printed at exit
    "import atexit, re\n"
    "atexit.register(lambda: print('VmHWM: %s kB' % re.search(r'VmHWM:\\s*(\\d+) kB', open('/proc/self/status').read())[1]))\n"
)
RUN_LINREG = "import runpy, sys\nsys.argv = ['linreg', *sys.argv[1:]]\nrunpy.run_module('linreg', run_name='__main__', alter_sys=True)\n"


def test_peak_memory_follows_the_epochs_run_not_the_cap(tmp_path):
    data = easy(tmp_path / "data.csv", rows=40, features=2, seed=1)
    baseline = start(tmp_path, python=("-c", REPORT_PEAK + "import tensorflow as tf; float(tf.reduce_sum(tf.ones([4])))\n"))
    fit = start(tmp_path, "fit", data, "--target", "y", "--epochs", "1000000000", "--json", tmp_path / "fit.json",
                python=("-c", REPORT_PEAK + RUN_LINREG))
    (code, tf_out, err), (fit_code, fit_out, fit_err) = finish(baseline), finish(fit)
    assert code == 0 and fit_code == 0, (err, fit_err)
    assert json.loads((tmp_path / "fit.json").read_text())["converged"] is True
    peak, base = (int(re.findall(r"VmHWM: (\d+) kB", out)[-1]) for out in (fit_out, tf_out))
    print(f"peak RSS: fit {peak / 1024:.0f} MB, TensorFlow baseline {base / 1024:.0f} MB")
    assert peak < base + 300 * 1024


def test_a_checkpoint_made_for_other_settings_is_refused(tmp_path):
    data = easy(tmp_path / "data.csv")
    ck = tmp_path / "ck"
    fit = ("fit", data, "--target", "y", "--tol", "1e-6", "--compile", "none", "--checkpoint", ck)
    code, _, err = finish(start(tmp_path, *fit, "--dtype", "float64", "--optimizer", "gd"))
    assert code == 0, err
    index = (ck / "checkpoint").read_text()
    others = [start(tmp_path, *fit, *flags, "--json", tmp_path / "other.json")
              for flags in (["--dtype", "float32", "--optimizer", "gd"], ["--dtype", "float64", "--optimizer", "momentum"])]
    for process in others:
        code, _, err = finish(process)
        assert code == 2
        assert len(err.splitlines()) == 1 and err.startswith(f"error: checkpoint folder {ck} "), err
    assert (ck / "checkpoint").read_text() == index and not (tmp_path / "other.json").exists()


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_while_tensorflow_imports_is_one_line(tmp_path, signum, code):
    data = tmp_path / "d.csv"
    data.write_text("a,y\n1,2\n2,3.5\n3,6\n4,8.1\n", encoding="utf-8")
    STARTED.append(child := subprocess.Popen(
        [sys.executable, "-m", "linreg", "fit", str(data), "--target", "y"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ))  # fmt: skip
    # TensorFlow's first library is mapped: its import has begun, and goes on for seconds.
    wait_until(lambda: "libtensorflow" in Path(f"/proc/{child.pid}/maps").read_text(), child)
    child.send_signal(signum)
    out, err = child.communicate(timeout=60)
    assert child.returncode == code
    assert err == "error: interrupted\n" and out == ""


# `linreg` whose CSV reading stops after the first piece, with the next chunks
# in the parsing pool's hands and the file open, until a signal ends it.
READ_HELD = (
    "import runpy, sys, threading\n"
    "from pathlib import Path\n"
    "from linreg.data import csv_reader\n"
    "reading, read = Path(sys.argv.pop(1)), csv_reader.pieces\n"
    "def pieces(*args, **kwargs):\n"
    "    for piece in read(*args, **kwargs):\n"
    "        reading.touch()\n"
    "        threading.Event().wait()\n"
    "        yield piece\n"
    "csv_reader.pieces = pieces\n"
    "sys.argv[0] = 'linreg'\n"
    "runpy.run_module('linreg', run_name='__main__', alter_sys=True)\n"
)


def test_sigint_during_a_streamed_read_is_one_line_and_writes_nothing(tmp_path):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((200_000, 5))  # 24 MB of text: several chunks
    pacsv.write_csv(pa.table({**{f"x{j}": x[:, j] for j in range(5)}, "y": x.sum(axis=1)}), tmp_path / "d.csv")
    reading = tmp_path / "reading"
    process = start(tmp_path, "fit", tmp_path / "d.csv", "--target", "y", "--engine", "moments",
                    "--json", tmp_path / "fit.json", "--quiet", python=("-c", READ_HELD, reading))
    wait_until(reading.exists, process)
    process.send_signal(signal.SIGINT)
    assert finish(process) == (128 + signal.SIGINT, "", "error: interrupted\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv", "reading"]  # no JSON, whole or in part
