"""The README's example outputs come from the code as it is now.

Every fenced block of the README whose first line starts with `$ ` is a
transcript: each `$ command` is run, in order, in one scratch folder (where
`examples/` is the project's), and what it prints must be what the block
shows after it. A line `...` in a block stands for any number of lines (an
abridged run), and durations ("0.53 s") are not compared. Commands of
`linreg` and `python main.py` run in this process; others (`head`, the
example scripts) in a shell. Python blocks check the value shown in a
`# comment` after an expression, when that value is a literal.
"""
import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from linreg.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SECONDS = re.compile(r"\b\d+(?:\.\d+)? s\b")


def blocks(text):
    """(language, lines) of every fenced block, in order."""
    found, language, lines = [], None, None
    for line in text.splitlines():
        if line.startswith("```"):
            if lines is None:
                language, lines = line[3:].strip(), []
            else:
                found.append((language, lines))
                lines = None
        elif lines is not None:
            lines.append(line)
    return found


def transcripts(text):
    """[(command, expected lines)] of every `$` block, in the README's order."""
    steps = []
    for language, lines in blocks(text):
        if language or not lines or not lines[0].startswith("$ "):
            continue
        for line in lines:
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                steps[-1][1].append(line)
    return steps


def matches(expected, actual):
    """Whether `actual` lines are `expected`, where a `...` line stands for any lines."""
    expected = [SECONDS.sub("_ s", line.rstrip()) for line in expected]
    actual = [SECONDS.sub("_ s", line.rstrip()) for line in actual]

    def match(i, j):
        if i == len(expected):
            return j == len(actual)
        if expected[i].strip() == "...":
            return any(match(i + 1, k) for k in range(j, len(actual) + 1))
        return j < len(actual) and expected[i] == actual[j] and match(i + 1, j + 1)

    return match(0, 0)


def run(command, folder, capsys):
    """What `command` prints (stdout, then stderr), run in `folder`."""
    argv = shlex.split(command)
    if argv[0] == "linreg" or argv[:2] == ["python", "main.py"]:
        argv = argv[1:] if argv[0] == "linreg" else ["demo", *argv[2:]]
        capsys.readouterr()
        main(argv)
        out, err = capsys.readouterr()
        return (out + err).splitlines()
    if argv[0] == "python":
        command = shlex.join([sys.executable, *argv[1:]])
    done = subprocess.run(command, shell=True, cwd=folder, capture_output=True, text=True, timeout=300)
    return (done.stdout + done.stderr).splitlines()


def test_every_transcript_in_the_readme_is_what_the_code_prints(tmp_path, monkeypatch, capsys):
    """With LINREG_UPDATE_README=1 (`make docs`), blocks that differ and
    are not abridged are rewritten with what the code prints instead."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    text = README.read_text(encoding="utf-8")
    steps = transcripts(text)
    assert len(steps) >= 6
    wrong, printed = [], []
    for command, expected in steps:
        actual = run(command, tmp_path, capsys)
        printed.append(actual)
        if not matches(expected, actual):
            wrong.append(f"$ {command}\n--- the README shows:\n" + "\n".join(expected)
                         + "\n--- the code prints:\n" + "\n".join(actual))
    if wrong and os.environ.get("LINREG_UPDATE_README") == "1":
        README.write_text(rewritten(text, printed), encoding="utf-8")
        pytest.fail(f"{len(wrong)} transcripts rewritten in README.md (abridged ones are left): run the test again")
    assert not wrong, "\n\n".join(wrong)


def rewritten(text, printed):
    """The README with every unabridged transcript replaced by `printed`
    (the lines each command printed, in the order of `transcripts`)."""
    out, block, outputs = [], None, iter(printed)
    for line in text.splitlines():
        if block is None:
            out.append(line)
            if line.startswith("```"):
                block, language = [], line[3:].strip()
            continue
        if not line.startswith("```"):
            block.append(line)
            continue
        if not language and block and block[0].startswith("$ "):
            commands = [entry for entry in block if entry.startswith("$ ")]
            results = [next(outputs) for _ in commands]
            if not any(entry.strip() == "..." for entry in block):
                block = [entry for command, result in zip(commands, results) for entry in (command, *result)]
        out.extend(block + [line])
        block = None
    return "\n".join(out) + "\n"


def test_the_values_the_python_example_shows(monkeypatch):
    monkeypatch.chdir(ROOT)
    code = next(lines for language, lines in blocks(README.read_text(encoding="utf-8")) if language == "python"
                and any(line.startswith("fit = linreg.fit(") for line in lines))
    scope = {}
    exec("import linreg", scope)
    checked = 0
    for line in code:
        source, _, comment = line.partition("#")
        if line.startswith("fit = "):
            exec(source, scope)
            continue
        try:
            shown = ast.literal_eval(comment.strip())
        except (ValueError, SyntaxError):
            continue
        assert eval(source, scope) == shown, line
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize(
    "expected, actual, same",
    [
        (["a", "...", "d"], ["a", "b", "c", "d"], True),
        (["a", "...", "d"], ["a", "d"], True),
        (["a", "b"], ["a", "c"], False),
        (["done in 0.53 s"], ["done in 12.1 s"], True),
        (["a"], ["a", "b"], False),
    ],
)
def test_the_transcript_matcher(expected, actual, same):
    assert matches(expected, actual) == same


def test_the_scikit_learn_example_runs(monkeypatch):
    monkeypatch.chdir(ROOT)
    code = next(lines for language, lines in blocks(README.read_text(encoding="utf-8")) if language == "python"
                and any("GridSearchCV" in line for line in lines))
    import pandas as pd

    houses = pd.read_csv(ROOT / "examples" / "houses.csv")
    scope = {"X": houses.drop(columns="price"), "y": houses["price"]}
    exec("\n".join(code), scope)
    fit = scope["search"].best_estimator_[-1].fit_
    assert fit.converged and fit.r_squared > 0.9


def test_the_hard_cases_digits_the_readme_states(tmp_path):
    """The sentence after the poly10 transcript: linreg's worst coefficient
    and statsmodels' QR against the exact answer of the file's numbers."""
    import numpy as np
    import statsmodels.api as sm

    import linreg

    sys.path.insert(0, str(ROOT / "examples"))
    import accuracy

    text = " ".join(README.read_text(encoding="utf-8").split())
    said = re.search(r"its worst coefficient has ([\d.]+) correct digits, more than it promises; "
                     r"statsmodels' QR solution has ([\d.]+)", text)
    assert said, "the README's sentence on the poly10 digits"
    path = tmp_path / "poly10.csv"
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_data.py"), "--poly10", str(path)], check=True)
    data = np.loadtxt(path, delimiter=",", skiprows=1)
    x, y = data[:, :-1], data[:, -1]
    reference = accuracy.exact_least_squares(x, y)
    fit = linreg.fit(path, target="y", progress=False, warn=lambda _: None)
    ours = accuracy.correct_digits(fit.stats.coefficients, reference)
    theirs = accuracy.correct_digits(sm.OLS(y, sm.add_constant(x)).fit(method="qr").params, reference)
    assert (f"{ours:.1f}", f"{theirs:.1f}") == said.groups()
    assert ours > fit.estimated_digits
