"""The promise every fit prints, "expect N correct digits or more in every
coefficient", held to the EXACT least-squares answer (rational arithmetic) on
the family of examples/digits_family.py, and the refinement that keeps it:
one step lands on the orthogonalized data, rounds run until they stop
shrinking, float32 ends where float64 does.
"""
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

import linreg
from linreg.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import digits_family as family  # noqa: E402 (the examples are scripts, not a package)

accuracy = family.load_accuracy()


@pytest.fixture(scope="module")
def found():
    """Every design of the family, fitted in float64 and float32 (about 30 s)."""
    return family.rows(seed=0)


def offenders(rows, keep):
    return [f"{row.name}: promised {row.promised}, delivered {row.delivered}" for row in rows if not keep(row)]


def test_the_family_spans_what_breaks_promises(found):
    assert len(found) >= 200
    kappas = [row.condition_number for row in found]
    assert min(kappas) < 2 and max(kappas) > 1e10
    for noise in ("noise 0", "noise 1e+06"):  # no noise, and a million times the signal
        assert sum(row.name.endswith(noise) for row in found) >= 10


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_no_fit_promises_more_than_it_delivers(found, dtype):
    assert not offenders(found, lambda row: row.promised[dtype] <= row.delivered[dtype] + 0.5)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_promise_is_not_uselessly_pessimistic(found, dtype):
    close = [row.promised[dtype] >= row.delivered[dtype] - 3 for row in found]
    assert np.mean(close) >= 0.95, offenders(found, lambda row: row.promised[dtype] >= row.delivered[dtype] - 3)


def test_every_default_fit_of_the_family_converges(found):
    assert not [row.name for row in found if not all(row.converged.values())]


def test_float32_refinement_ends_where_float64_does(found):
    """Within a digit of float64's result, or at least float64's promise: both
    runs stop at the rounding of the same extended-precision fixed point."""
    reachable = [row for row in found if row.condition_number * family.EPSILON32 < 0.1]
    assert not offenders(reachable, family.float32_within_reach)
    strictly = [row.delivered["float32"] >= row.delivered["float64"] - 1 for row in reachable]
    assert np.mean(strictly) >= 0.95


def test_the_default_is_within_a_digit_of_statsmodels(found):
    """Except where the promise is set by the float64 result's own way back to
    the original units (the intercept ȳ − Σ W_j·x̄_j), and is kept."""
    below = [row for row in found if row.condition_number < 1e8]
    assert not offenders(below, family.statsmodels_within_reach)


# --- the method ---------------------------------------------------------------------


def hard_design(noise=1e3, seed=4):
    """Degree 5 on 1..21: κ ≈ 2e3 in standardized units, noise far above the signal."""
    t = np.arange(1.0, 22.0)
    x = accuracy.polynomial_design(t, 5)
    y = 3 + x @ np.array([-2.0, 5.0, -1.0, 2.0, 1.0])
    return x, y + noise * np.std(y) * np.random.default_rng(seed).standard_normal(len(t))


def test_one_step_lands_on_the_orthogonalized_data():
    """Rate 1/2 on a bowl of curvature 2 in every direction: after the first
    epoch the loss is the least-squares loss, to rounding."""
    x, y = hard_design()
    fit = linreg.fit((x, y), progress=False, compile="none")
    scaled = fit.scaled
    exact = np.linalg.lstsq(np.column_stack([np.ones(len(y)), scaled.x]), scaled.y, rcond=None)[0]
    least = np.mean((scaled.y - exact[0] - scaled.x @ exact[1:]) ** 2)
    loss = fit.result.history.loss
    assert loss[0] == pytest.approx(np.mean(scaled.y**2), rel=1e-12)  # where it started: W = 0
    assert loss[1] == pytest.approx(least, rel=1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_refinement_reaches_the_exact_answer_and_stops(dtype):
    """Noise 1000 times the signal: a float32 step rounds the residual at 6e-8
    of its size, yet the rounds reach float64's digits (QR gets about 13), and
    they stop within a few rounds of getting there."""
    x, y = hard_design()
    reference = accuracy.exact_least_squares(x, y)
    fit = linreg.fit((x, y), dtype=dtype, progress=False, compile="none")
    assert fit.converged and fit.solution.refined
    assert accuracy.correct_digits(fit.stats.coefficients, reference) >= 14
    assert 2 <= fit.solution.rounds - 1 <= 8


def test_a_fit_known_to_less_than_a_digit_has_not_converged(tmp_path, capsys):
    """A loose tol stops gd where its gradient is 1% of the first: the weights
    are then tens of percent off, and the fit says so by not converging."""
    from linreg.data.synthetic import correlated

    x, y, _, _ = correlated(200, 3, correlation=0.9, seed=4)
    fit = linreg.fit((x, y), optimizer="gd", tol=1e-2, progress=False, compile="none")
    error = np.max(np.abs(fit.stats.coefficients - np.array(accuracy.exact_least_squares(x, y), float)))
    assert error / np.max(np.abs(fit.stats.coefficients)) > 0.01  # not one digit right, as promised
    assert fit.estimated_digits < 1 and not fit.converged
    path = tmp_path / "data.csv"
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header="x1,x2,x3,y", comments="")
    out = tmp_path / "fit.json"
    code = main(["fit", str(path), "--target", "y", "--optimizer", "gd", "--tol", "0.01", "--compile", "none",
                 "--json", str(out)])
    captured = capsys.readouterr()
    assert code == 4
    assert "NOT CONVERGED" in captured.out and "cannot be trusted to one correct digit" in captured.out
    assert captured.err.startswith("error: the fit has NOT converged") and len(captured.err.splitlines()) == 1
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["converged"] is False and document["estimated_digits"] < 1 and document["std_errors"] is None


def test_a_coefficient_zero_to_rounding_is_named_not_counted():
    """y = 3 + 2·t exactly: x2's coefficient is 0, computed as rounding, whose
    relative error says nothing; the others keep their digits."""
    t = np.arange(1.0, 22.0)
    x = np.column_stack([t, np.random.default_rng(0).standard_normal(len(t))])
    fit = linreg.fit((x, 3 + 2 * t), progress=False, compile="none")
    assert fit.converged and fit.estimated_digits > 12
    assert fit.coefficients["intercept"] == pytest.approx(3, rel=1e-13)
    assert fit.coefficients["x1"] == pytest.approx(2, rel=1e-13)
    assert abs(fit.coefficients["x2"]) < 1e-15
    assert "in every coefficient but x2, zero to rounding" in fit.summary()


def test_the_last_line_says_how_far_the_answer_is_from_the_closed_form():
    t = np.arange(21.0)  # an exact line: the refined answer is exact
    fit = linreg.fit((t[:, None], 3 + 2 * t), progress=False, compile="none")
    assert fit.coefficients == {"intercept": 3.0, "x1": 2.0}
    # The closed form, from the fit's QR factors in float64, is within a few
    # units in the last place of the exact answer -- of the terms the intercept
    # is made of, ȳ and W·x̄ = 20 -- and the report says how far.
    eps = np.finfo(float).eps
    np.testing.assert_allclose(list(fit.least_squares.values()), [3.0, 2.0], rtol=0, atol=8 * eps * 2 * t.mean())
    worst = max(abs(fit.least_squares[k] - v) / abs(fit.least_squares[k]) for k, v in fit.coefficients.items())
    expected = "identical to the last digit" if worst == 0 else f"about {-math.log10(worst):.1f} matching digits"
    assert expected in fit.summary().splitlines()[-1]


def test_the_document_carries_the_promise(tmp_path, capsys):
    x, y = hard_design(noise=0.01)
    path, out = tmp_path / "poly.csv", tmp_path / "fit.json"
    names = [f"x{j + 1}" for j in range(x.shape[1])]
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header=",".join([*names, "y"]), comments="")
    assert main(["fit", str(path), "--target", "y", "--json", str(out), "--quiet"]) == 0
    document = json.loads(out.read_text(encoding="utf-8"))
    reference = accuracy.exact_least_squares(x, y)
    found = [document["coefficients"][name] for name in ["intercept", *names]]
    assert math.isfinite(document["estimated_digits"])
    assert document["estimated_digits"] <= accuracy.correct_digits(found, reference) + 0.5


def test_the_streamed_statistics_promise_no_more_than_they_deliver(tmp_path):
    """On [100, 110] the powers of x are nearly collinear, and the normal
    equations' error (κ²·ε) can swallow a small coefficient that is not zero
    at all: such a coefficient counts as unknown, not as zero to rounding."""
    designs = [design for design in family.designs(seed=0) if "[100,110]" in design.name]
    assert len(designs) >= 15
    broken = []
    for k, design in enumerate(designs):
        path = tmp_path / f"d{k}.csv"
        names = [f"x{j}" for j in range(design.x.shape[1])]
        rows = (",".join(repr(float(v)) for v in [*row, target]) for row, target in zip(design.x, design.y))
        path.write_text(",".join([*names, "y"]) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
        try:
            fit = linreg.fit(path, target="y", engine="moments", progress=False, warn=lambda _: None)
        except linreg.LinregError as error:  # refusing a column as a combination of the others is honest
            assert "exact linear combination" in str(error)
            continue
        delivered = accuracy.correct_digits(fit.stats.coefficients, accuracy.exact_least_squares(design.x, design.y))
        # No digit promised (0) is a fit reported as not converged: that one is honest too.
        if fit.estimated_digits > max(delivered, 0.0) + 0.5 or (fit.estimated_digits < 1 and fit.converged):
            broken.append(f"{design.name}: promised {fit.estimated_digits:.2f}, delivered {delivered:.2f}")
    assert not broken


@pytest.mark.parametrize("gap", [1e-1, 1e-4, 1e-8, 0.0], ids=["kappa 1e1", "kappa 1e4", "kappa 1e8", "collinear"])
def test_orthogonalize_makes_orthonormal_columns_that_reproduce_the_data(gap):
    """Whichever factorization runs (CholeskyQR2 while κ allows, Householder
    past it or when a column is in the others' span), q/√N has orthonormal
    columns, (q/√N)·R is the data, and R's singular values are the data's."""
    from linreg.precondition import orthogonalize

    rng = np.random.default_rng(5)
    z = rng.standard_normal((5000, 3))
    x = np.column_stack([z[:, 0], z[:, 0] + gap * z[:, 1], z[:, 2]])
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    ortho = orthogonalize(x)
    Q = ortho.q / math.sqrt(len(x))
    np.testing.assert_allclose(Q.T @ Q, np.eye(3), atol=1e-13)
    np.testing.assert_allclose(Q @ ortho.R, x, atol=1e-13 * np.abs(x).max())
    reference = np.linalg.svd(x, compute_uv=False)
    np.testing.assert_allclose(ortho.singular_values, reference, rtol=1e-12, atol=1e-13 * reference[0])
