"""Every flag's error path: one `error: …` line on stderr, exit code 2, nothing written."""
import subprocess
import sys

import pytest

from linreg.cli import main


@pytest.fixture
def out(tmp_path):
    return tmp_path / "out"


BAD_FLAGS = [
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "ten"], "--epochs"),
    (["--epochs", "2.5"], "--epochs"),
    (["--learning-rate", "-1"], "--learning-rate"),
    (["--learning-rate", "0"], "--learning-rate"),
    (["--learning-rate", "inf"], "--learning-rate"),
    (["--samples", "1"], "--samples"),
    (["--samples", "-5"], "--samples"),
    (["--noise", "nan"], "--noise"),
    (["--noise", "-0.1"], "--noise"),
    (["--seed", "-1"], "--seed"),
    (["--true-w", "nan"], "--true-w"),
    (["--true-b", "x"], "--true-b"),
    (["--compile", "fast"], "--compile"),
    (["--bogus"], "--bogus"),
]


@pytest.mark.parametrize("flags, named", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_bad_flag_gives_one_error_line_and_exit_code_2(flags, named, out, capsys):
    code = main(["demo", "--out", str(out), *flags])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and named in lines[0]
    assert not out.exists()


def test_out_pointing_at_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("keep me")
    assert main(["demo", "--out", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not a folder" in err and err.count("\n") == 1
    assert target.read_text() == "keep me"


def test_json_pointing_at_a_folder_is_refused(tmp_path, out, capsys):
    assert main(["demo", "--out", str(out), "--json", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is a folder" in err
    assert not out.exists()


def test_no_command_is_an_error(capsys):
    assert main([]) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_module_entry_point_reports_errors_without_a_traceback(out):
    done = subprocess.run(
        [sys.executable, "-m", "linreg", "demo", "--epochs", "0", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == ["error: argument --epochs: must be at least 1, got 0"]
    assert "Traceback" not in done.stderr and not out.exists()


def test_the_registry_names_what_the_engine_runs():
    """plan.py names the choices without TensorFlow; each must be something the engine can run."""
    from linreg import plan
    from linreg.core.optimizers import REGISTRY
    from linreg.engine import driver

    assert set(plan.OPTIMIZERS) - {"auto", "orthogonal"} <= set(REGISTRY)
    assert set(driver.COMPILE_MODES) == {"none", "function", "xla"} == set(driver._DRIVERS)


def test_every_flag_is_in_the_readme():
    from pathlib import Path

    from linreg.cli import build_parser

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    rows = [line for line in readme.splitlines() if line.startswith("| `--")]
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, command in commands.items():
        for action in command._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help":
                    assert any(row.startswith(f"| `{flag}") or f", `{flag}" in row for row in rows), (name, flag)


def test_help_keeps_the_line_breaks_of_the_description(capsys):
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    out = capsys.readouterr().out
    assert "\n    linreg fit DATA.csv --target COL [--features A,B,...]\n" in out
