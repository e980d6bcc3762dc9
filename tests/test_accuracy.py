"""The accuracy targets of the default fit (float64, optimizer auto), against
the EXACT least-squares solution of the float64 data (rational arithmetic).

On every target: the fit converges, in at most 10,000 epochs, and its correct
digits are within one of the better of statsmodels' OLS by QR and by pinv; its
estimated_digits is honest (measured >= estimated - 0.5). An exact fit says so
(standard errors 0, t and p NaN) and a noisy one does not.

The problems and the exact reference come from examples/accuracy.py (which
prints the full table, with every optimizer and numpy's lstsq).
"""
import functools
import importlib.util
import math
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import statsmodels.api as sm

import linreg


def _load_example():
    path = Path(__file__).resolve().parents[1] / "examples" / "accuracy.py"
    spec = importlib.util.spec_from_file_location("linreg_accuracy_example", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


accuracy = _load_example()

TARGET_EPOCHS = 10_000
# A float64 result cannot be closer than about half an ulp; an exact answer is
# "inf" digits. Capped so that exact and correctly rounded compare as equal.
DIGITS_CAP = 16.0

CASES = {
    "poly5 exact": lambda: accuracy.poly5(0),
    "poly5 noise 1e3": lambda: accuracy.poly5(1e3),
    "poly5 noise 1e5": lambda: accuracy.poly5(1e5),
    "poly10 [-9,-3]": lambda: accuracy.poly10(),
    "correlated 2000x20": lambda: accuracy.generated(2000, 20, seed=0),
    "correlated 2000x50": lambda: accuracy.generated(2000, 50, seed=1),
    "longley": lambda: accuracy.statsmodels_set("longley"),
    "star98": lambda: accuracy.statsmodels_set("star98"),
    "stackloss": lambda: accuracy.statsmodels_set("stackloss"),
    "macrodata": lambda: accuracy.statsmodels_set("macrodata"),
}
NOISY = [name for name in CASES if name != "poly5 exact"]


@functools.cache
def problem(name):
    return CASES[name]()


@functools.cache
def reference(name):
    p = problem(name)
    return accuracy.exact_least_squares(p.x, p.y)


@functools.cache
def default_fit(name):
    """The default fit. epochs=TARGET_EPOCHS is the target itself: a default run
    (epochs 100,000) that meets it stops before the cap and is the same run
    (the orthogonal method's compile mode does not depend on epochs); one
    that does not fails either way, without running 100,000 epochs."""
    p = problem(name)
    return linreg.fit((p.x, p.y), progress=False, epochs=TARGET_EPOCHS)


def digits(name, coefficients):
    return min(accuracy.correct_digits(coefficients, reference(name)), DIGITS_CAP)


@functools.cache
def statsmodels_digits(name):
    p = problem(name)
    design = sm.add_constant(p.x)
    return {method: digits(name, sm.OLS(p.y, design).fit(method=method).params) for method in ("qr", "pinv")}


def linreg_digits(name):
    return digits(name, default_fit(name).stats.coefficients)


def test_the_reference_solves_the_normal_equations_exactly():
    """Aᵀ(y − A·β) = 0 in exact arithmetic: β is the least-squares solution of these floats."""
    for name in ("longley", "poly5 noise 1e3"):
        p = problem(name)
        A = [[Fraction(1), *map(Fraction, row)] for row in p.x]
        beta = reference(name)
        residual = [Fraction(y) - sum(a * b for a, b in zip(row, beta)) for row, y in zip(A, p.y)]
        assert all(sum(row[j] * r for row, r in zip(A, residual)) == 0 for j in range(len(beta)))


def test_the_reference_of_an_exact_polynomial_is_its_coefficients():
    assert reference("poly5 exact") == [Fraction(c) for c in accuracy.POLY5_COEFFICIENTS]


@pytest.mark.parametrize("name", CASES)
def test_converges_within_the_target_epochs(name):
    fit = default_fit(name)
    assert fit.converged, f"{name}: not converged after {fit.epochs} epochs"
    assert fit.epochs <= TARGET_EPOCHS


@pytest.mark.parametrize("name", CASES)
def test_digits_within_one_of_statsmodels(name):
    ours, theirs = linreg_digits(name), statsmodels_digits(name)
    assert ours >= max(theirs.values()) - 1, f"{name}: linreg {ours:.2f} digits, statsmodels {theirs}"


@pytest.mark.parametrize("name", CASES)
def test_estimated_digits_are_honest(name):
    """The promise is about the worst coefficient, the way the digits are counted here."""
    fit = default_fit(name)
    measured = linreg_digits(name)
    # Never more than half a digit optimistic; pessimistic by at most 5 digits
    # where the data are small integers, which make much of the arithmetic
    # exact (the exact degree-5 polynomial), beyond what a bound can assume.
    assert fit.estimated_digits - 0.5 <= measured <= fit.estimated_digits + 5, (
        f"{name}: estimated {fit.estimated_digits:.2f} digits, measured {measured:.2f} (κ {fit.condition_number:.3g})"
    )


def test_an_exact_fit_says_so():
    fit = default_fit("poly5 exact")
    assert fit.exact is True
    assert all(value == 0 for value in fit.std_errors.values())
    assert all(math.isnan(value) for value in fit.t_values.values())
    assert all(math.isnan(value) for value in fit.p_values.values())


@pytest.mark.parametrize("name", NOISY)
def test_a_noisy_fit_is_not_exact(name):
    fit = default_fit(name)
    assert not fit.exact, f"{name}: residual SD {np.std(problem(name).y - fit.predict(problem(name).x)):.3g}"
