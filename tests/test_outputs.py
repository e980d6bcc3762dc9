"""No output may write over an input or another output; missing folders are
made when an output is written. Each refusal is one `error:` line and exit
code 2, before TensorFlow is imported, and leaves every file as it was."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import linreg.cli
from linreg.cli import main

ROOT = Path(__file__).resolve().parents[1]
GOOD = "a,b,y\n1,2,3.5\n2,1,4.0\n3,5,9.5\n4,3,8.0\n5,8,13.5\n6,2,7.5\n"


def snapshot(folder):
    """Every path under `folder` with its bytes (None for a folder, the target for a link)."""

    def content(path):
        return os.readlink(path) if path.is_symlink() else None if path.is_dir() else path.read_bytes()

    return {str(p.relative_to(folder)): content(p) for p in sorted(folder.rglob("*"))}


@pytest.fixture
def no_tensorflow(monkeypatch):
    """Every refusal comes before the command imports TensorFlow (so before training)."""

    def importing():
        raise AssertionError("the command went on to import TensorFlow instead of refusing at once")

    monkeypatch.setattr(linreg.cli, "import_tensorflow_quietly", importing)


@pytest.fixture
def place(tmp_path, monkeypatch):
    """The working folder, holding data.csv, an earlier export m/ and a folder of parts."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text(GOOD, encoding="utf-8")
    fake_export(tmp_path / "m")
    (tmp_path / "parts").mkdir()
    for name in ("a.csv", "b.csv"):
        (tmp_path / "parts" / name).write_text(GOOD, encoding="utf-8")
    return tmp_path


def fake_export(folder):
    """The files of an export; the commands refuse before they would read them."""
    (folder / "variables").mkdir(parents=True)
    (folder / "assets").mkdir()
    for name in ("saved_model.pb", "fingerprint.pb", "variables/variables.index",
                 "variables/variables.data-00000-of-00001"):  # fmt: skip
        (folder / name).write_bytes(b"\x08\x01")
    (folder / "linreg.json").write_text('{"target": "y", "features": ["a", "b"], "inputs": ["a", "b"]}\n')


def refused(place, capsys, argv, *fragments):
    before = snapshot(place)
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    # The inputs byte for byte, no output written, no folder made.
    assert snapshot(place) == before


FIT = ["fit", "data.csv", "--target", "y"]

CLASHES = [
    # An output over an input.
    ([*FIT, "--json", "data.csv"], "--json data.csv is the same path as the input data.csv"),
    (["predict", "m", "data.csv", "--out", "data.csv"], "--out data.csv is the same path as the input data.csv"),
    (["predict", "m", "data.csv", "--out", "m/linreg.json"], "--out m/linreg.json is inside the model m"),
    (["predict", "m", "data.csv", "--out", "m/new.csv"], "--out m/new.csv is inside the model m"),
    (["fit", "m/data.csv", "--target", "y", "--export", "m", "--force"], "--export m holds the input m/data.csv"),
    ([*FIT, "--logdir", "."], "--logdir . holds the input data.csv"),
    (["fit", "parts", "--target", "y", "--out", "parts/plots"], "plots/predicted_vs_actual.png is inside the input parts"),
    (["fit", "parts/*.csv", "--target", "y", "--json", "parts/b.csv"], "is the same path as the input parts/b.csv"),
    (["fit", "parts/*.csv", "--target", "y", "--checkpoint", "parts"], "--checkpoint parts holds the input parts/"),
    # Through symbolic links.
    ([*FIT, "--json", "link.json"], "--json link.json is the same path as the input data.csv"),
    ([*FIT, "--checkpoint", "plots", "--export", "alias/model"], "--checkpoint plots holds --export alias/model"),
    # An output over another.
    ([*FIT, "--checkpoint", "c", "--export", "c"], "--checkpoint c is the same path as --export c"),
    ([*FIT, "--out", "c", "--export", "c"], "c/predicted_vs_actual.png is inside --export c"),
    ([*FIT, "--json", "c/x.json", "--export", "c"], "--json c/x.json is inside --export c"),
    ([*FIT, "--logdir", "c", "--checkpoint", "c/resume"], "--logdir c holds --checkpoint c/resume"),
    # --out writes three plots of known names into a folder that may hold other things.
    ([*FIT, "--json", "c/loss.png", "--out", "c"], "--json c/loss.png is the same path as --out c/loss.png"),
]


@pytest.mark.parametrize("argv, message", CLASHES, ids=[" ".join(argv) for argv, _ in CLASHES])
def test_no_output_writes_over_an_input_or_another_output(place, no_tensorflow, capsys, argv, message):
    if "m/data.csv" in argv:
        shutil.copy(place / "data.csv", place / "m" / "data.csv")  # an earlier export that holds the data
    (place / "link.json").symlink_to(place / "data.csv")
    (place / "alias").symlink_to("plots")
    refused(place, capsys, argv, message)


def test_force_refuses_an_export_with_anything_else_in_it(place, no_tensorflow, capsys):
    (place / "m" / "notes.txt").write_text("mine", encoding="utf-8")
    (place / "m" / "variables" / "old").mkdir()
    refused(place, capsys, [*FIT, "--export", "m", "--force"], "--force", "notes.txt", "variables/old", "untouched")


def test_outputs_make_their_folders_and_none_is_left_by_a_failed_command(place, capsys):
    outputs = ["--json", "a/fit.json", "--out", "a/b", "--logdir", "runs/houses", "--export", "models/houses",
               "--checkpoint", "ck/deep", "--quiet"]  # fmt: skip
    # Bad input found after the checks: the folders were checked, not made.
    before = snapshot(place)
    assert main(["fit", "data.csv", "--target", "price", *outputs]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("error: data.csv has no column 'price'")
    assert snapshot(place) == before
    assert main([*FIT, *outputs]) == 0
    capsys.readouterr()
    rows = np.loadtxt(place / "data.csv", delimiter=",", skiprows=1)
    expected = np.linalg.lstsq(np.column_stack([np.ones(len(rows)), rows[:, :2]]), rows[:, 2], rcond=None)[0]
    fitted = json.loads((place / "a" / "fit.json").read_text(encoding="utf-8"))["coefficients"]
    np.testing.assert_allclose([fitted["intercept"], fitted["a"], fitted["b"]], expected, rtol=1e-10)
    assert {p.name for p in (place / "a" / "b").iterdir()} >= {"loss.png", "predicted_vs_actual.png"}
    assert any(p.name.startswith("events.out.tfevents") for p in (place / "runs" / "houses").iterdir())
    assert (place / "ck" / "deep" / "checkpoint").is_file()
    assert main(["predict", "models/houses", "data.csv", "--out", "predictions/all.csv"]) == 0
    predicted = np.loadtxt(place / "predictions" / "all.csv", skiprows=1)
    np.testing.assert_allclose(predicted, expected[0] + rows[:, :2] @ expected[1:], rtol=1e-10)


def test_plots_may_go_beside_the_data_and_the_json(place, capsys):
    """--out names a folder for three plots of known names, not a folder of its own."""
    data = (place / "data.csv").read_bytes()
    assert main([*FIT, "--out", ".", "--json", "fit.json", "--quiet"]) == 0
    capsys.readouterr()
    assert (place / "data.csv").read_bytes() == data
    assert (place / "loss.png").is_file() and json.loads((place / "fit.json").read_text(encoding="utf-8"))["converged"]


def test_predict_help_states_the_coverage_by_alpha(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    interval = text[text.index("--interval {") : text.index("--alpha ALPHA 1")]
    assert "1 - ALPHA" in interval and "95%" not in interval


def test_make_data_needs_no_tensorflow(tmp_path):
    from linreg.data.synthetic import correlated

    script = (
        "import runpy, sys\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'tensorflow', 'keras'}))\n"
    )
    path = tmp_path / "hard.csv"
    done = subprocess.run(
        [sys.executable, "-c", script, str(ROOT / "examples" / "make_data.py"), "--hard", str(path),
         "--rows", "30", "--features", "3"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert done.stdout == "[]\n"
    x, y, _, _ = correlated(30, 3, correlation=0.99, seed=0)
    np.testing.assert_array_equal(np.loadtxt(path, delimiter=",", skiprows=1), np.column_stack([x, y]))


def test_the_set_up_says_how_to_put_linreg_on_the_path():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "source .venv/bin/activate" in readme.split("```")[1]  # the set-up block at the top
    if shutil.which("make") is None:
        pytest.skip("no make here")
    # (Run from `make test`, a nested make would also print the folders it enters.)
    done = subprocess.run(["make", "--no-print-directory", "-n", "run"], cwd=ROOT, capture_output=True, text=True)
    assert "source .venv/bin/activate" in done.stdout.strip().splitlines()[-1]
