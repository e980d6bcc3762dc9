"""linreg: linear regression trained by a hand-written TensorFlow 2 loop.

    import linreg
    fit = linreg.fit("data.csv", target="y")      # or a data frame, or (x, y)
    print(fit.summary())

The heart, to read top to bottom: core/model.py (the model and its loss),
core/step.py (the tape and assign_sub), core/optimizers.py (the learning
rules), core/training.py (the loop). Importing this package loads nothing
else: TensorFlow comes in when `fit`, `load` or `Fit` is first used.
"""
from linreg.errors import DivergenceError, LinregError

__all__ = ["fit", "load", "Fit", "Model", "LinregError", "DivergenceError"]
__version__ = "0.2.0"


def __getattr__(name):
    if name in ("fit", "load", "Fit", "Model"):
        from linreg import api

        return getattr(api, name)
    raise AttributeError(f"module 'linreg' has no attribute {name!r}")
