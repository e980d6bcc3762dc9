"""The lessons (lessons/*.ipynb): each runs top to bottom in a real Jupyter
kernel, and its saved outputs are the ones the current code gives.

A lesson asserts every claim it makes in the cell beside it, and checks its
exercises' solutions (lessons/solutions.py), so running it is the test of what
it says; a cell that shows numbers with `tools.show` must assert something.
Then every number shown must equal the saved notebook's to one unit of the
last digit saved: a change that moves a lesson's numbers fails here until the
lessons are run again and saved (lessons/run.py).
"""
import importlib.util
import math
import re
from pathlib import Path

import nbformat
import pytest

LESSONS = Path(__file__).resolve().parent.parent / "lessons"


def _module(name):
    spec = importlib.util.spec_from_file_location(f"lessons_{name}", LESSONS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run = _module("run")


def test_the_lessons_are_there_in_order():
    assert [path.name[:3] for path in run.LESSONS] == ["01_", "02_", "03_", "04_", "05_", "06_"]


def one_unit_of_the_last_digit(text):
    mantissa, _, exponent = text.lower().partition("e")
    return 10.0 ** (int(exponent or 0) - len(mantissa.partition(".")[2]))


def test_one_unit_of_the_last_digit():
    assert [one_unit_of_the_last_digit(t) for t in ("16873", "0.9240", "1.5e+18", "13", "-2.5e-07")] == [
        1, 1e-4, 1e17, 1, 1e-8]


@pytest.mark.parametrize("path", run.LESSONS, ids=lambda path: path.name)
def test_lesson_runs_and_its_saved_numbers_are_current(path):
    saved = nbformat.read(path, as_version=4)
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    # Saved with the outputs of one run from top to bottom, figures included.
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), "run lessons/run.py and save"
    assert any("image/png" in output.get("data", {}) for cell in code for output in cell.outputs)
    for cell in code:
        if "plt.subplots(" in cell.source:
            assert "xlabel" in cell.source and "ylabel" in cell.source, f"an unlabelled axis in:\n{cell.source}"
            if "label=" in cell.source:  # lines told apart by their labels show them
                assert "legend(" in cell.source, f"labelled lines and no legend in:\n{cell.source}"
        if "show(" in cell.source:  # a number shown as checked is checked where it is shown
            assert re.search(r"^\s*assert ", cell.source, re.M), f"numbers shown and not asserted in:\n{cell.source}"

    fresh = run.execute(path)  # fails on any error: a claim's assert, an exercise's check

    warnings = [output["text"] for cell in fresh.cells for output in cell.get("outputs", [])
                if output.get("output_type") == "stream" and output.get("name") == "stderr"]
    assert not warnings, f"{path.name} printed on stderr: {warnings}"
    saved_numbers, fresh_numbers = run.numbers(saved), run.numbers(fresh)
    assert len(saved_numbers) >= 8, f"{path.name} shows too few of the numbers it checks"
    assert [name for name, _ in fresh_numbers] == [name for name, _ in saved_numbers]
    for (name, old), (_, new) in zip(saved_numbers, fresh_numbers):
        same = old == new or abs(float(old) - float(new)) <= one_unit_of_the_last_digit(old) * (1 + 1e-9)
        assert same, f"{path.name}: {name} = {new} now, {old} in the saved notebook: run lessons/run.py and save it"


def test_an_exercise_check_accepts_the_right_answer_refuses_a_wrong_one_and_waits_for_none(monkeypatch, capsys):
    solutions = _module("solutions")
    monkeypatch.delenv("LINREG_LESSONS_SOLUTIONS", raising=False)
    solutions.check("3.1", None)
    assert "no answer yet" in capsys.readouterr().out
    solutions.check("3.1", (1 + 9 * 0.9) / 0.1)
    assert "your answer is correct" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=re.escape("10.0 is 0.89 (relative) too small")):
        solutions.check("3.1", 10.0)
    with pytest.raises(AssertionError, match="expected a finite number"):
        solutions.check("3.1", math.nan)
    with pytest.raises(AssertionError, match="expected a number"):
        solutions.check("3.1", "ninety")
