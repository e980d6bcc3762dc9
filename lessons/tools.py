"""What every lesson imports first.

- TensorFlow, imported without the lines its C++ libraries print on loading;
- `show`, which prints the numbers a lesson asserts, one `name = value` a line:
  tests/test_lessons.py runs every lesson again and compares these lines with
  the saved notebook, so the outputs a reader sees come from the current code;
- `source`, which shows a function of the project in the notebook, so a lesson
  reads the code that runs instead of a copy of it;
- figures drawn small enough to keep the saved notebooks light.
"""
import inspect

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Code, display

from linreg.cli import import_tensorflow_quietly

import_tensorflow_quietly()
plt.rcParams.update({"figure.figsize": (6.4, 4.0), "figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})


def show(significant=4, **numbers):
    """Print each number as `name = value`: integers whole, others to `significant` digits.

    The test allows a saved value and a fresh one to differ by one unit of
    the last digit printed, so print rounding-level quantities (a few digits
    of a float64 error) with few significant digits.
    """
    for name, value in numbers.items():
        whole = isinstance(value, (int, np.integer))
        text = str(int(value)) if whole else f"{float(value):#.{significant}g}".rstrip(".")  # 0.9240, and 13 (not 13.)
        print(f"{name} = {text}")


def source(function):
    """Display a function's (or class's) source code, highlighted."""
    display(Code(inspect.getsource(function), language="python"))
