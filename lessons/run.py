"""Run the lessons top to bottom in a fresh kernel and save them with their outputs.

    .venv/bin/python lessons/run.py                      # every lesson
    .venv/bin/python lessons/run.py 02_the_learning_rate.ipynb

The saved outputs (text and figures) are what a reader sees without running
anything. tests/test_lessons.py runs the lessons again and fails when a number
a lesson checks differs from the saved one, so run this after changing a
lesson or the code it shows, and commit the saved notebooks.
"""
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
LESSONS = sorted(HERE.glob("[0-9][0-9]_*.ipynb"))

# The lines `tools.show` prints: name = value.
NUMBER = re.compile(r"^([A-Za-z_]\w*) = (-?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|-?inf|nan)$", re.M)


def execute(path, timeout=600):
    """The notebook at `path` run top to bottom in a new kernel (cwd: lessons/), with
    the exercises' solutions checked; raises nbclient's CellExecutionError on an error."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(HERE)}})
    client.execute(env={**os.environ, "LINREG_LESSONS_SOLUTIONS": "1"})
    return notebook


def numbers(notebook):
    """Every `name = value` line in the notebook's printed output, in order, as (name, text)."""
    found = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stdout":
                found += NUMBER.findall(output["text"])
    return found


def main(names):
    for path in [HERE / name for name in names] or LESSONS:
        start = time.perf_counter()
        notebook = execute(path)
        nbformat.write(notebook, path)
        print(f"{path.name}: {time.perf_counter() - start:.1f} s, {len(numbers(notebook))} numbers checked")


if __name__ == "__main__":
    main(sys.argv[1:])
