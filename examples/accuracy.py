"""Accuracy of linreg's fits against the exact least-squares solution.

    .venv/bin/python examples/accuracy.py [--quick] [--json PATH]

For every target problem, the coefficients found by linreg (the default fit,
each optimizer -- cg too where linreg has it -- and float32), statsmodels'
OLS (QR and pinv) and numpy's lstsq are compared with the EXACT least-squares
solution of the float64 data the fits receive: every float64 is a dyadic rational, so after scaling each
column of [1, x] and y by a power of two they are integers, XᵀX and Xᵀy are
formed in Python's big integers, and the normal equations are solved by
fraction-free (Bareiss) elimination and exact back-substitution
(fractions.Fraction). No rounding anywhere: the reference is the true
minimiser of ‖y − [1, x]·β‖ for those float64 numbers.

correct digits = −log10(max over coefficients of |found − reference| / |reference|)

("exact" when every coefficient equals the reference; a float64 result cannot
be closer than half an ulp, about 16 digits, unless the answer is a float.)

--quick skips the slow optimizers (gd, momentum, nesterov, cg) and the
120-feature generated problem; --json PATH writes every measurement.
The test file tests/test_accuracy.py imports the problems and the reference
from here.
"""
import argparse
import json
import math
import sys
import time
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

# --- the exact reference -------------------------------------------------------


def _as_integers(values):
    """A float64 vector as Python integers m and one exponent e: values = m·2**e exactly."""
    ratios = [float(v).as_integer_ratio() for v in values]  # exact: (numerator, power-of-two denominator)
    shift = max(d.bit_length() - 1 for _, d in ratios)
    return [n << (shift - (d.bit_length() - 1)) for n, d in ratios], -shift


def _bareiss_solve(A, b):
    """The exact solution (Fractions) of the integer system A·z = b, A square and nonsingular.

    Fraction-free Gaussian elimination: every entry stays an integer (each
    division is exact) and grows only linearly in bits with the step.
    """
    n = len(A)
    M = [[int(v) for v in row] + [int(bi)] for row, bi in zip(A, b)]
    previous = 1
    for k in range(n - 1):
        pivot = max(range(k, n), key=lambda i: abs(M[i][k]))
        if M[pivot][k] == 0:
            raise ZeroDivisionError("the design is exactly singular")
        M[k], M[pivot] = M[pivot], M[k]
        row_k, a_kk = M[k], M[k][k]
        for i in range(k + 1, n):
            row_i, a_ik = M[i], M[i][k]
            for j in range(k + 1, n + 1):
                row_i[j] = (row_i[j] * a_kk - a_ik * row_k[j]) // previous
            row_i[k] = 0
        previous = a_kk
    if M[n - 1][n - 1] == 0:
        raise ZeroDivisionError("the design is exactly singular")
    z = [Fraction(0)] * n
    for i in range(n - 1, -1, -1):
        z[i] = (M[i][n] - sum(M[i][j] * z[j] for j in range(i + 1, n))) / Fraction(M[i][i])
    return z


def exact_least_squares(x, y):
    """[intercept, β_1, …, β_d] as Fractions: the exact least-squares solution
    for exactly these float64 values of x [N, d] and y [N]."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if x.ndim == 1:
        x = x[:, None]
    A = np.column_stack([np.ones(len(y)), x])
    # A[:, j] = M[:, j]·2**e_j and y = m·2**e_y, with integers M and m.
    columns = [_as_integers(A[:, j]) for j in range(A.shape[1])]
    M = np.empty(A.shape, dtype=object)
    for j, (integers, _) in enumerate(columns):
        M[:, j] = integers
    m, e_y = _as_integers(y)
    m = np.array(m, dtype=object)
    # AᵀA·β = Aᵀy  ⇔  MᵀM·z = Mᵀm  with  z_j = β_j·2**(e_j − e_y).
    z = _bareiss_solve(M.T.dot(M).tolist(), M.T.dot(m).tolist())
    return [z_j * Fraction(2) ** (e_y - e_j) for z_j, (_, e_j) in zip(z, columns)]


def correct_digits(found, reference):
    """−log10 of the largest relative error of `found` (floats) against `reference`
    (Fractions), computed exactly; inf if every coefficient is exact, nan if
    any is not a finite number."""
    found = [float(v) for v in found]
    if len(found) != len(reference):
        raise ValueError(f"{len(found)} coefficients against {len(reference)}")
    if not all(math.isfinite(v) for v in found):
        return math.nan
    worst = max(abs(Fraction(f) - r) / abs(r) if r != 0 else abs(Fraction(f)) for f, r in zip(found, reference))
    return math.inf if worst == 0 else -math.log10(worst)


# --- the target problems -------------------------------------------------------

POLY5_COEFFICIENTS = [3, -2, 5, -1, 2, 1]  # intercept, x, x², …, x⁵
POLY10_COEFFICIENTS = [2, -3, 1, 4, -1, 2, -2, 1, 3, -1, 1]  # intercept, x, …, x¹⁰


@dataclass
class Problem:
    name: str
    x: np.ndarray  # float64 [N, d]
    y: np.ndarray  # float64 [N]
    note: str = ""
    slow: bool = False  # left out of --quick
    exact_fit: bool = False  # y lies exactly in the span of [1, x]

    @property
    def shape(self):
        return self.x.shape


def polynomial_design(t, degree):
    """Columns t, t², …, t^degree (float64; the intercept is separate)."""
    t = np.asarray(t, np.float64)
    return np.column_stack([t**k for k in range(1, degree + 1)])


def poly5(noise, seed=5):
    t = np.arange(21.0)
    x = polynomial_design(t, 5)
    y = POLY5_COEFFICIENTS[0] + x @ np.array(POLY5_COEFFICIENTS[1:], np.float64)  # integers below 2**53: exact
    if noise:
        y = y + noise * np.random.default_rng(seed).standard_normal(len(t))
    name = "poly5, exact" if not noise else f"poly5, noise {noise:.0e}"
    return Problem(name, x, y, "x = 0..20, columns x..x⁵, coefficients " + str(POLY5_COEFFICIENTS),
                   exact_fit=not noise)


def poly10(points=100, noise=1.0, seed=10):
    t = np.linspace(-9.0, -3.0, points)
    x = polynomial_design(t, 10)
    y = POLY10_COEFFICIENTS[0] + x @ np.array(POLY10_COEFFICIENTS[1:], np.float64)
    y = y + noise * np.random.default_rng(seed).standard_normal(points)
    return Problem(f"poly10 on [-9,-3], noise {noise:g}", x, y,
                   f"{points} points, columns x..x¹⁰, coefficients {POLY10_COEFFICIENTS}")


def generated(samples, features, seed, slow=False):
    from linreg.data.synthetic import correlated

    x, y, _, _ = correlated(samples, features, correlation=0.999, seed=seed)
    return Problem(f"correlated {samples}x{features}", x, y,
                   f"linreg.data.synthetic.correlated({samples}, {features}, correlation=0.999, seed={seed})",
                   slow=slow)


def statsmodels_set(name):
    """A statsmodels data set as (x, y) float64: its numeric columns."""
    import statsmodels.api as sm

    if name == "longley":
        data = sm.datasets.longley.load_pandas()
        x, y, how = data.exog, data.endog, "TOTEMP ~ its 6 exog columns"
    elif name == "star98":
        data = sm.datasets.star98.load_pandas()
        x, y, how = data.exog, data.endog["NABOVE"], "NABOVE ~ its 20 exog columns"
    elif name == "stackloss":
        data = sm.datasets.stackloss.load_pandas()
        x, y, how = data.exog, data.endog, "STACKLOSS ~ its 3 exog columns"
    elif name == "macrodata":
        frame = sm.datasets.macrodata.load_pandas().data
        x, y, how = frame.drop(columns="realgdp"), frame["realgdp"], "realgdp ~ the 13 other columns"
    else:
        raise ValueError(f"no data set {name!r} here")
    x = x.select_dtypes("number")
    return Problem(name, x.to_numpy(np.float64), np.asarray(y, np.float64), f"statsmodels.datasets.{name}: {how}")


STATSMODELS_SETS = ("longley", "star98", "stackloss", "macrodata")


def problems(quick=False):
    """The targets, in the order of the table."""
    found = [poly5(0), poly5(1e3), poly5(1e5), poly10(), generated(2000, 20, seed=0), generated(5000, 50, seed=1),
             generated(5000, 120, seed=1, slow=True)]
    found += [statsmodels_set(name) for name in STATSMODELS_SETS]
    return [p for p in found if not (quick and p.slow)]


# --- the methods -----------------------------------------------------------------


@dataclass
class Outcome:
    coefficients: list = None  # [intercept, β_1, …]
    iterations: object = None  # epochs, or None for a direct solver
    seconds: float = 0.0
    converged: object = None  # True/False for linreg; None for direct solvers
    error: str = ""  # an exception's message, if the method failed
    extra: dict = field(default_factory=dict)
    digits: float = math.nan
    fit: object = None  # linreg's Fit, for the tests (not written to JSON)


def _linreg(x, y, **options):
    import linreg
    from linreg.engine.signals import Interrupted
    from linreg.errors import LinregError

    warnings = []
    started = time.perf_counter()
    try:
        fit = linreg.fit((x, y), progress=False, warn=warnings.append, **options)
    except Interrupted:
        raise  # Ctrl-C or a kill stops the study, not just this cell
    except LinregError as error:
        return Outcome(seconds=time.perf_counter() - started, error=f"{type(error).__name__}: {error}")
    seconds = time.perf_counter() - started
    extra = dict(estimated_digits=fit.estimated_digits, condition_number=fit.condition_number, exact=bool(fit.exact),
                 stalled=bool(fit.result.stalled), method=fit.method, training_seconds=fit.training_seconds,
                 warnings=warnings)
    return Outcome(list(fit.stats.coefficients), fit.epochs, seconds, fit.converged, extra=extra, fit=fit)


def _direct(solve):
    def run(x, y):
        started = time.perf_counter()
        try:
            coefficients = solve(x, y)
        except Exception as error:  # noqa: BLE001 -- any failure is a cell of the table
            return Outcome(seconds=time.perf_counter() - started, error=f"{type(error).__name__}: {error}")
        return Outcome(list(map(float, coefficients)), None, time.perf_counter() - started)

    return run


def _statsmodels(method):
    def solve(x, y):
        import statsmodels.api as sm

        return np.asarray(sm.OLS(y, sm.add_constant(x)).fit(method=method).params)

    return solve


def _lstsq(x, y):
    return np.linalg.lstsq(np.column_stack([np.ones(len(y)), x]), y, rcond=None)[0]


SLOW_EPOCHS = 100_000  # linreg's default
CG_EPOCHS = 10_000


# name -> (run(x, y) -> Outcome, slow: left out of --quick)
METHODS = {
    "linreg default": (lambda x, y: _linreg(x, y), False),
    "orthogonal": (lambda x, y: _linreg(x, y, optimizer="orthogonal"), False),
    "gd": (lambda x, y: _linreg(x, y, optimizer="gd", epochs=SLOW_EPOCHS), True),
    "momentum": (lambda x, y: _linreg(x, y, optimizer="momentum", epochs=SLOW_EPOCHS), True),
    "nesterov": (lambda x, y: _linreg(x, y, optimizer="nesterov", epochs=SLOW_EPOCHS), True),
    # Only if this linreg has it (see main). Where it does not converge, cg runs
    # eagerly at several ms an epoch: 100,000 epochs would take many minutes.
    "cg": (lambda x, y: _linreg(x, y, optimizer="cg", epochs=CG_EPOCHS), True),
    "default float32": (lambda x, y: _linreg(x, y, dtype="float32"), False),
    "sm qr": (_direct(_statsmodels("qr")), False),
    "sm pinv": (_direct(_statsmodels("pinv")), False),
    "np lstsq": (_direct(_lstsq), False),
}


def measure(problem, reference, methods):
    outcomes = {}
    for name in methods:
        outcome = METHODS[name][0](problem.x, problem.y)
        if outcome.coefficients is not None:
            outcome.digits = correct_digits(outcome.coefficients, reference)
        outcomes[name] = outcome
    return outcomes


# --- the report ---------------------------------------------------------------------


def format_digits(digits):
    if math.isnan(digits):
        return "non-finite"
    return "exact" if math.isinf(digits) else f"{digits:.1f}"


def format_cell(outcome):
    if outcome.error:
        return f"FAILED ({outcome.error.splitlines()[0][:60]})"
    iterations = "—" if outcome.iterations is None else f"{outcome.iterations} ep"
    text = f"{format_digits(outcome.digits)} ({iterations}, {outcome.seconds:.2f} s)"
    if outcome.converged is False:
        text += " NOT converged"
    return text


TARGET_EPOCHS = 10_000


def missed_targets(outcome, best_statsmodels):
    """'met', or which of the issue's targets the default fit misses: converged,
    at most TARGET_EPOCHS epochs, digits within one of statsmodels' best."""
    missed = []
    if not outcome.converged:
        missed.append("not converged")
    if outcome.iterations > TARGET_EPOCHS:
        missed.append(f"> {TARGET_EPOCHS} epochs")
    if not min(outcome.digits, 16.0) >= best_statsmodels - 1:
        missed.append("digits")
    return "met" if not missed else "MISSED: " + ", ".join(missed)


def tables(rows, methods):
    """Two markdown tables: the default fit beside its own estimate, and every method's digits."""
    lines = [
        "Default fit (float64, optimizer auto) against the exact least-squares solution",
        "",
        "| target | N×d | κ (standardized) | estimated digits | measured digits | converged | exact fit | epochs "
        "| seconds | best of sm qr/pinv | targets |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for problem, outcomes, _ in rows:
        default = outcomes["linreg default"]
        best = max(min(outcomes[n].digits, 16.0) for n in ("sm qr", "sm pinv"))
        if default.error:
            lines.append(f"| {problem.name} | {problem.shape[0]}×{problem.shape[1]} | — | — | "
                         f"{format_cell(default)} | — | — | — | — | {format_digits(best)} | failed |")
            continue
        e = default.extra
        lines.append(
            f"| {problem.name} | {problem.shape[0]}×{problem.shape[1]} | {e['condition_number']:.3g} | "
            f"{e['estimated_digits']:.1f} | {format_digits(default.digits)} | "
            f"{'yes' if default.converged else 'NO'}{' (stalled at floor)' if e['stalled'] else ''} | "
            f"{'yes' if e['exact'] else 'no'} | {default.iterations} | {default.seconds:.2f} | {format_digits(best)} | "
            f"{missed_targets(default, best)} |"
        )
    lines += [
        "",
        "Correct digits (iterations, seconds) of every method",
        "",
        "| target | " + " | ".join(methods) + " |",
        "|---|" + "---|" * len(methods),
    ]
    for problem, outcomes, _ in rows:
        lines.append(f"| {problem.name} | " + " | ".join(format_cell(outcomes[m]) for m in methods) + " |")
    variants = [m for m in methods if outcomes_have_estimate(rows, m)]
    lines += [
        "",
        "linreg's estimated_digits / measured digits (a promise kept if measured >= estimated - 0.5; "
        "'warned': fit() gave a warning, such as float32's)",
        "",
        "| target | " + " | ".join(variants) + " |",
        "|---|" + "---|" * len(variants),
    ]
    for problem, outcomes, _ in rows:
        cells = []
        for m in variants:
            o = outcomes[m]
            if o.error:
                cells.append("failed")
                continue
            estimated = o.extra["estimated_digits"]
            short = estimated > 0 and min(o.digits, 16.0) < estimated - 0.5  # a promise of 0 digits holds anyway
            warned = " (warned)" if o.extra.get("warnings") else ""
            cells.append(f"{estimated:.1f} / {format_digits(o.digits)}{' (BROKEN)' if short else ''}{warned}")
        lines.append(f"| {problem.name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def outcomes_have_estimate(rows, method):
    return any("estimated_digits" in outcomes[method].extra for _, outcomes, _ in rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the slow optimizers and the largest problem")
    parser.add_argument("--json", metavar="PATH", help="write every measurement to this JSON file")
    args = parser.parse_args(argv)

    from linreg.cli import import_tensorflow_quietly

    import_tensorflow_quietly()

    methods = [name for name, (_, slow) in METHODS.items() if not (args.quick and slow)]
    rows = []
    for problem in problems(args.quick):
        started = time.perf_counter()
        reference = exact_least_squares(problem.x, problem.y)
        reference_seconds = time.perf_counter() - started
        print(f"{problem.name}: exact reference in {reference_seconds:.1f} s; fitting ...", file=sys.stderr, flush=True)
        rows.append((problem, measure(problem, reference, methods), reference_seconds))

    print(tables(rows, methods))
    print()
    print("Notes: digits = −log10(max_j |found_j − ref_j| / |ref_j|), ref = exact rational least squares of the "
          "float64 data (intercept included); 'exact' = no error at all. Iterations are epochs over every "
          "training round (— for direct solvers); seconds are the wall time of the whole call (linreg: checks, "
          f"QR, training and statistics). gd, momentum and nesterov run with epochs={SLOW_EPOCHS} (the default)"
          f"{', cg with epochs=' + str(CG_EPOCHS) + ' (too slow for the table at the default)' if 'cg' in methods else ''}"
          f"{'; --quick skips them' if args.quick else ''}; 'NOT converged' means the run hit its epoch limit "
          "without meeting tol or reaching the rounding floor.")
    for problem, _, seconds in rows:
        print(f"- {problem.name}: {problem.note} (reference {seconds:.1f} s)")

    if args.json:
        document = [
            {
                "target": problem.name,
                "note": problem.note,
                "shape": list(problem.shape),
                "reference_seconds": seconds,
                "methods": {
                    name: {
                        "digits": None if math.isnan(o.digits) else (o.digits if math.isfinite(o.digits) else "exact"),
                        "iterations": o.iterations,
                        "seconds": o.seconds,
                        "converged": o.converged,
                        "error": o.error or None,
                        **o.extra,
                    }
                    for name, o in outcomes.items()
                },
            }
            for problem, outcomes, seconds in rows
        ]
        with open(args.json, "w", encoding="utf-8") as file:
            json.dump(document, file, indent=1, default=float)


if __name__ == "__main__":
    main()
