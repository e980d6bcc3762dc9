"""Correct digits of a fit: python examples/digits.py DATA.csv FIT.json

-log10 of the largest relative error of the coefficients in FIT.json
(written by `linreg fit ... --json`) against numpy's float64 least squares.
numpy's lstsq runs on columns scaled to unit length (and scaled back):
its SVD's accuracy depends on the columns' relative sizes, and on the
raw columns of the hard examples it is itself good to only about 8 digits.
"""
import json
import sys

import numpy as np

if len(sys.argv) != 3:
    sys.exit(__doc__.splitlines()[0].replace("Correct digits of a fit: ", "usage: "))
data, fit = sys.argv[1], json.load(open(sys.argv[2], encoding="utf-8"))
header = open(data, encoding="utf-8").readline().strip().split(",")
values = np.loadtxt(data, delimiter=",", skiprows=1)
x = values[:, [header.index(name) for name in fit["features"]]]
y = values[:, header.index(fit["target"])]
A = np.column_stack([np.ones(len(y)), x])
lengths = np.linalg.norm(A, axis=0)
reference = np.linalg.lstsq(A / lengths, y, rcond=None)[0] / lengths
found = np.array([fit["coefficients"][name] for name in ["intercept", *fit["features"]]])
error = np.max(np.abs(found - reference) / np.abs(reference))
print(f"{fit['dtype']} {fit['optimizer']}: {-np.log10(error):.2f} correct digits "
      f"(largest relative error {error:.2e}), {fit['epochs']} epochs, converged {fit['converged']}, "
      f"training {fit['training_seconds']:.2f} s")
