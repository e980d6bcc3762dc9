"""Checkpoints and the loop's stopping rules: resuming as the advice says, a
refused, damaged or full checkpoint folder, the save on interrupt, and the
stall rule across chunks."""
import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import linreg
from linreg.cli import main
from linreg.core.training import RUNNING, STALLED, LoopState, judge
from linreg.data.synthetic import correlated
from linreg.errors import LinregError

SRC = Path(__file__).resolve().parents[1] / "src"


def write_csv(path, x, y):
    names = [f"x{j + 1}" for j in range(x.shape[1])]
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header=",".join([*names, "y"]), comments="", fmt="%.17g")
    return path


def values(fit):
    return np.array(list(fit.coefficients.values()))


def near(a, b, rtol):
    return np.linalg.norm(a - b) <= rtol * np.linalg.norm(b)


def least_squares(x, y):
    """(intercept, W...) by numpy's lstsq on centred and scaled columns (the
    raw columns' scales differ by 1e6), the independent answer."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    W = np.linalg.lstsq((x - mean) / scale, y - y.mean(), rcond=None)[0] / scale
    return np.append(y.mean() - mean @ W, W)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    x, y, _, _ = correlated(400, 3, correlation=0.9, seed=1)
    return write_csv(tmp_path_factory.mktemp("data") / "d.csv", x, y), x, y


def saved(ck, name):
    return tf.train.load_variable(str(ck), f"{name}/.ATTRIBUTES/VARIABLE_VALUE")


# --- resuming as the advice says ---------------------------------------------


@pytest.mark.parametrize("optimizer, tol, cap", [
    ("auto", None, 1),  # the landing step takes one epoch, and one more sees it landed
    ("auto", None, 3),  # the cap counts the refinement's rounds too: it stops the first
    ("gd", None, 3),  # "auto" alone would run 3 epochs eagerly, 100,000 with XLA
    # 200 eager epochs would round differently from XLA's; tol 0 stops by
    # the stall rule, which is judged at every epoch.
    ("momentum", 0.0, 200),
])  # fmt: skip
def test_more_epochs_continue_a_run_stopped_by_its_cap_to_the_same_bits(data, tmp_path, optimizer, tol, cap):
    path, x, y = data
    settings = dict(optimizer=optimizer, tol=tol, progress=False)
    first = linreg.fit(path, "y", epochs=cap, checkpoint=tmp_path / "ck", **settings)
    assert not first.converged and "raise epochs (--epochs)" in first.advice()
    resumed = linreg.fit(path, "y", epochs=100_000, checkpoint=tmp_path / "ck", **settings)
    straight = linreg.fit(path, "y", epochs=100_000, **settings)
    steps = first.result.history.round[:-1]  # the last row is where the run ended, no step
    assert first.epochs == len(steps) == cap
    assert resumed.resumed_at == np.count_nonzero(steps == 0) > 0  # where the first training run stopped
    assert resumed.converged and straight.converged
    assert resumed.epochs == straight.epochs
    np.testing.assert_array_equal(values(resumed), values(straight))  # bit for bit
    assert near(values(straight), least_squares(x, y), 1e-12)


@pytest.mark.parametrize("engine", ["moments", "stream"])
def test_other_batch_rows_continue_a_streamed_run(data, tmp_path, engine):
    path, x, y = data
    settings = dict(engine=engine, optimizer="nesterov", checkpoint=tmp_path / "ck", progress=False)
    first = linreg.fit(path, "y", epochs=3, batch_rows=100, **settings)
    assert not first.converged
    resumed = linreg.fit(path, "y", epochs=100_000, batch_rows=70, **settings)
    # The batches change only the order of the sums, hence the last bits.
    assert resumed.resumed_at == 3 and resumed.converged
    assert near(values(resumed), least_squares(x, y), 1e-12)


@pytest.fixture(scope="module")
def made(data, tmp_path_factory):
    """A checkpoint of 3 epochs of gd (float64, learning rate auto, default tol, engine memory, compile none)."""
    ck = tmp_path_factory.mktemp("made") / "ck"
    linreg.fit(data[0], "y", optimizer="gd", epochs=3, compile="none", checkpoint=ck, progress=False)
    return ck


def contents(folder):
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.mark.parametrize("change, named", [
    (dict(dtype="float32"), "dtype float64 there, float32 here"),
    (dict(optimizer="momentum"), "optimizer gd there, momentum here"),
    (dict(learning_rate=0.01), "learning_rate auto there, 0.01 here"),
    (dict(tol=1e-6), "tol 1e-15 there, 1e-06 here"),
    (dict(compile="xla"), "compile none there, xla here"),
    (dict(engine="moments"), "engine memory there, moments here"),
    (dict(features=["x1", "x2"]), "other data"),
    (dict(intercept=False), "other data"),
])  # fmt: skip
def test_a_checkpoint_of_other_settings_or_data_is_refused(data, made, tmp_path, change, named):
    ck = shutil.copytree(made, tmp_path / "ck")
    before = contents(ck)
    settings = dict(optimizer="gd", compile="none", epochs=1000, progress=False) | change
    with pytest.raises(LinregError) as caught:
        linreg.fit(data[0], "y", checkpoint=ck, **settings)
    message = str(caught.value)
    assert message.startswith(f"checkpoint folder {ck} was made for other ") and named in message, message
    assert message.endswith("rerun with the same data and settings to resume, or use another folder to start afresh")
    assert contents(ck) == before


def test_a_checkpoint_of_changed_files_is_refused(tmp_path):
    x, y, _, _ = correlated(300, 2, seed=3)
    path = write_csv(tmp_path / "d.csv", x, y)
    settings = dict(engine="moments", optimizer="gd", epochs=3, checkpoint=tmp_path / "ck", progress=False)
    linreg.fit(path, "y", **settings)
    write_csv(path, x, y + 1.0)
    with pytest.raises(LinregError, match=r"was made for other data; rerun with the same data"):
        linreg.fit(path, "y", **settings)


# --- a full disk ---------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs of its own, to fill without touching any other disk."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: a full disk needs a small tmpfs of its own")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}): a full disk needs one of its own")
    try:
        yield disk
    finally:
        subprocess.run(["umount", disk], check=True)


def fill(disk):
    descriptor = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(descriptor, bytes(2**16))
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(descriptor)


def test_a_full_disk_says_so_and_leaves_the_last_checkpoint_to_resume_from(data, small_disk, capfd):
    path, x, y = data
    ck = small_disk / "ck"
    linreg.fit(path, "y", optimizer="gd", epochs=3, checkpoint=ck, progress=False)
    before = contents(ck)
    fill(small_disk)
    capfd.readouterr()
    code = main(["fit", str(path), "--target", "y", "--optimizer", "gd", "--checkpoint", str(ck), "--quiet"])
    out, err = capfd.readouterr()
    free = shutil.disk_usage(small_disk).free
    assert code == 1 and out == ""
    assert err == (f"error: the disk is full: {free} bytes free in {ck}; "
                   "the run can resume from epoch 3 once there is room\n")
    assert contents(ck) == before  # the half-written ckpt-2 is gone, ckpt-1 and its index untouched
    (small_disk / "filler").unlink()
    resumed = linreg.fit(path, "y", optimizer="gd", checkpoint=ck, progress=False)
    assert resumed.resumed_at == 3 and resumed.converged
    assert near(values(resumed), least_squares(x, y), 1e-12)


# --- a damaged checkpoint --------------------------------------------------------


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGES = {
    "index of bytes that are not text": lambda ck: (ck / "checkpoint").write_bytes(bytes(range(256))),
    "index of other text": lambda ck: (ck / "checkpoint").write_text("not an index\n"),
    "empty index": lambda ck: (ck / "checkpoint").write_bytes(b""),
    "truncated data file": lambda ck: truncate(ck / "ckpt-1.data-00000-of-00001"),
    "truncated table of contents": lambda ck: truncate(ck / "ckpt-1.index"),
}


@pytest.mark.parametrize("damage", DAMAGES.values(), ids=DAMAGES.keys())
def test_a_damaged_checkpoint_is_one_error_line(data, made, tmp_path, capfd, damage):
    ck = shutil.copytree(made, tmp_path / "ck")
    damage(ck)
    before = contents(ck)
    capfd.readouterr()
    code = main(["fit", str(data[0]), "--target", "y", "--optimizer", "gd", "--compile", "none",
                 "--checkpoint", str(ck), "--json", str(tmp_path / "fit.json"), "--quiet"])
    out, err = capfd.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(f"error: checkpoint folder {ck} is damaged: ") and err.count("\n") == 1, err
    assert err.endswith("; remove the folder to start afresh, or give another folder\n")
    assert contents(ck) == before and not (tmp_path / "fit.json").exists()


# --- the stall rule ----------------------------------------------------------------


def stall_epoch(losses, norms, patience):
    """The first epoch at which the gradient norm has made no new low for
    `patience` epochs while the loss is not above its first value, by a
    plain loop over the epochs; None if there is none."""
    best, since = np.inf, 0
    for k, (loss, norm) in enumerate(zip(losses, norms)):
        best, since = (norm, 0) if norm < best else (best, since + 1)
        if since >= patience and loss <= losses[0]:
            return k
    return None


def series(kind):
    rng = np.random.default_rng(5)
    k = np.arange(300)
    if kind == "floor":  # descent, then rounding noise; one late new low restarts the count
        norms = np.where(k < 40, 0.8**k, 0.8**39 * (1 + rng.uniform(0.01, 1, 300)))
        norms[70] = 0.8**45
        losses = np.where(k < 40, 0.5 + 0.5 * 0.64**k, 0.5 * (1 + np.finfo(float).eps * rng.integers(-2, 3, 300)))
    else:  # a slow blow-up: the norm's low is the first, the loss creeps up, not at every epoch
        norms = np.r_[1.0, 1 + rng.uniform(0.01, 1, 299)]
        losses = 1 + 1e-6 * k * (1.2 + np.sin(k))
    return losses, norms


@pytest.mark.parametrize("kind", ["floor", "creeping"])
@pytest.mark.parametrize("chunk", [1, 7, 64, 300])
def test_the_stall_rule_counts_across_chunks_and_ignores_a_creeping_loss(kind, chunk):
    losses, norms = series(kind)
    patience = 50
    expected = stall_epoch(losses, norms, patience)
    assert expected == (120 if kind == "floor" else None)  # the series do what they are meant to
    # The loop's bookkeeping as a driver does it: the state read at a chunk's
    # start, carried through its epochs, written back at its end.
    state, stopped = LoopState(tf.float64), None
    for start in range(0, len(losses), chunk):
        carried = state.read()
        for k in range(start, min(start + chunk, len(losses))):
            carried = judge(carried, tf.constant(losses[k]), tf.constant(norms[k]), tf.constant(0.0, tf.float64),
                            tf.constant(patience))
            if int(carried["status"]) != RUNNING:
                break
        state.write(carried)
        if int(state.status) != RUNNING:
            stopped = int(state.epoch) - 1
            break
    assert stopped == expected
    assert int(state.status) == (STALLED if expected is not None else RUNNING)


def test_the_stream_engine_stops_at_the_rounding_floor(tmp_path):
    """An epoch a chunk: unless the stall is counted across chunks, tol 0 runs to the cap."""
    x, y, _, _ = correlated(300, 3, correlation=0.5, seed=2)
    path = write_csv(tmp_path / "s.csv", x, y)
    fit = linreg.fit(path, "y", engine="stream", optimizer="gd", tol=0, epochs=3000, progress=False)
    assert fit.result.stalled and fit.converged and fit.epochs < 1000
    assert near(values(fit), least_squares(x, y), 1e-12)


# --- the save on interrupt -----------------------------------------------------------

# linreg's command line, with the periodic save switched off: whatever the
# checkpoint holds was saved on the signal. It touches a file after every
# chunk, so the test knows when training runs.
NO_PERIODIC_SAVE = (
    "import runpy, sys\n"
    "from pathlib import Path\n"
    "from linreg.cli import import_tensorflow_quietly\n"
    "import_tensorflow_quietly()\n"
    "from linreg.engine.checkpoint import Checkpoints\n"
    "running = Path(sys.argv.pop(1))\n"
    "Checkpoints.due = lambda self: running.touch()  # None: never due\n"
    "sys.argv[0] = 'linreg'\n"
    "runpy.run_module('linreg', run_name='__main__', alter_sys=True)\n"
)


def test_sigint_saves_the_epoch_reached(tmp_path):
    x, y, _, _ = correlated(200, 3, correlation=0.99999, seed=1)  # gd needs millions of epochs: runs until stopped
    path = write_csv(tmp_path / "d.csv", x, y)
    ck, running = tmp_path / "ck", tmp_path / "running"
    settings = ["--optimizer", "gd", "--tol", "0", "--compile", "none"]
    env = dict(os.environ, PYTHONPATH=str(SRC))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # set in this process by the tests' quiet import
    process = subprocess.Popen(
        [sys.executable, "-c", NO_PERIODIC_SAVE, running, "fit", path, "--target", "y", *settings,
         "--epochs", "1000000000", "--checkpoint", ck, "--quiet"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not running.exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "training never started"
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + signal.SIGINT and err == "error: interrupted\n", err
    epoch = int(saved(ck, "loop/epoch"))
    assert epoch > 0 and len(saved(ck, "history/arrays/0")) == epoch
    # The same epochs without a signal end where the checkpoint stands, bit for bit.
    straight = linreg.fit(path, "y", optimizer="gd", tol=0, compile="none", epochs=epoch, progress=False)
    np.testing.assert_array_equal(saved(ck, "model/W"), straight.solution.W)
    np.testing.assert_array_equal(saved(ck, "history/arrays/0"), straight.result.history.loss[:-1])
