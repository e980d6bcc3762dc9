"""Promised against delivered digits of the default fit, on a family of designs.

    .venv/bin/python examples/digits_family.py [--seed N]

Every fit prints "expect N correct digits or more in every coefficient". This
script holds that promise to the EXACT least-squares solution of each design's
float64 numbers (examples/accuracy.py's rational reference) on a family of
designs chosen to break it:

  polynomials  x, x², ..., x^k for k = 1 to 10 on six x ranges (0..20 and
               1..21 evenly spaced, [-1, 1], [-9, -3], [100, 110], random
               points in [0, 5]), each with three noise levels drawn from
               0, 1e-8, 1e-4, 0.01, 1, 100, 1e4 and 1e6 times the signal's
               standard deviation (on [100, 110] up to degree 7: beyond it
               float64 cannot tell the columns apart and fit() refuses them);
  correlated   linreg.data.synthetic.correlated: 2 to 11 features correlated
               at 0.5 to 0.99999, spreads from 0.1 to 5e5, offsets, noise;
  scaled       low-degree polynomials whose columns are multiplied by 1e-8
               to 1e8 and shifted by 0, 1e3 or 1e6.

digits = −log10 of the largest relative error over the coefficients, intercept
included, capped at 16 (an exact answer); the promise is the fit's
estimated_digits. Each design is fitted in float64 and in float32 (linreg.fit,
optimizer auto, in-process and eager), and by statsmodels' OLS with QR and
with pinv. The tables: the distribution of delivered − promised digits, float32
beside float64, the default beside statsmodels, and which stage's rounding
bounds the promise. tests/test_digits.py asserts the targets on this family.
"""
import argparse
import importlib.util
import math
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

NOISES = (0.0, 1e-8, 1e-4, 1e-2, 1.0, 1e2, 1e4, 1e6)
RANGES = {
    "0..20": lambda n, rng: np.linspace(0.0, 20.0, n),
    "1..21": lambda n, rng: np.linspace(1.0, 21.0, n),
    "[-1,1]": lambda n, rng: np.linspace(-1.0, 1.0, n),
    "[-9,-3]": lambda n, rng: np.linspace(-9.0, -3.0, n),
    "[100,110]": lambda n, rng: np.linspace(100.0, 110.0, n),
    "random [0,5]": lambda n, rng: np.sort(rng.uniform(0.0, 5.0, n)),
}
# Beyond this degree the powers of x on [100, 110] are linear combinations
# of each other to float64's resolution.
MAX_DEGREE_FAR = 7
# One float32 rounding, the unit of "float32 can reach float64" (κ·ε < 0.1).
EPSILON32 = 2.0**-23
DIGITS_CAP = 16.0


def load_accuracy():
    """examples/accuracy.py: the exact reference and the polynomial designs."""
    path = Path(__file__).resolve().parent / "accuracy.py"
    spec = importlib.util.spec_from_file_location("linreg_accuracy_example", path)
    module = sys.modules.get(spec.name)
    if module is None:
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return module


@dataclass
class Design:
    name: str
    x: np.ndarray
    y: np.ndarray


def designs(seed=0):
    """The family, in a fixed order for a seed."""
    accuracy = load_accuracy()
    from linreg.data.synthetic import correlated

    rng = np.random.default_rng(seed)

    def noisy(signal, noise):
        return signal + noise * np.std(signal) * rng.standard_normal(len(signal))

    found = []
    for degree in range(1, 11):
        for where, points in RANGES.items():
            n = int(rng.integers(max(21, 2 * degree + 2), 83))
            if where == "[100,110]" and degree > MAX_DEGREE_FAR:
                continue
            x = accuracy.polynomial_design(points(n, rng), degree)
            coefficients = rng.choice([-1.0, 1.0], degree + 1) * rng.uniform(0.5, 3.0, degree + 1)
            for noise in rng.choice(NOISES, 3, replace=False):
                y = noisy(coefficients[0] + x @ coefficients[1:], noise)
                found.append(Design(f"degree {degree} on {where}, {n} points, noise {noise:g}", x, y))
    for _ in range(30):
        n, d = int(rng.integers(30, 300)), int(rng.integers(2, 12))
        correlation, noise = float(rng.choice([0.5, 0.9, 0.999, 0.99999])), float(rng.choice(NOISES))
        x, _, W, b = correlated(n, d, correlation=correlation, seed=int(rng.integers(2**30)))
        found.append(Design(f"correlated {n}x{d} at {correlation:g}, noise {noise:g}", x, noisy(x @ W + b, noise)))
    for _ in range(20):
        n, degree = int(rng.integers(25, 80)), int(rng.integers(1, 6))
        scales, shifts = 10.0 ** rng.uniform(-8, 8, degree), rng.choice([0.0, 1e3, 1e6], degree)
        x = accuracy.polynomial_design(np.sort(rng.uniform(-2.0, 3.0, n)), degree) * scales + shifts
        coefficients, noise = rng.standard_normal(degree + 1), float(rng.choice(NOISES))
        y = noisy(coefficients[0] + x @ coefficients[1:], noise)
        found.append(Design(f"scaled degree {degree}, {n} points, noise {noise:g}", x, y))
    return found


@dataclass
class Row:
    name: str
    condition_number: float
    promised: dict  # dtype -> estimated_digits
    delivered: dict  # dtype -> digits against the exact reference
    converged: dict  # dtype -> bool
    rounds: dict  # dtype -> refinement rounds
    dominant: str  # the stage whose bound sets float64's promise
    statsmodels: dict  # "qr", "pinv" -> digits (-inf: failed)

    @property
    def best_statsmodels(self):
        return max(self.statsmodels.values())


def measure(design):
    """One Row: both default fits and statsmodels against the exact answer."""
    import statsmodels.api as sm

    import linreg

    accuracy = load_accuracy()
    reference = accuracy.exact_least_squares(design.x, design.y)

    def digits(coefficients):
        return min(accuracy.correct_digits(coefficients, reference), DIGITS_CAP)

    fits = {dtype: linreg.fit((design.x, design.y), dtype=dtype, compile="none", progress=False, warn=lambda _: None)
            for dtype in ("float64", "float32")}  # fmt: skip
    ols = sm.OLS(design.y, sm.add_constant(design.x))

    def statsmodels(method):
        try:
            return digits(ols.fit(method=method).params)
        except np.linalg.LinAlgError:  # its QR inverts RᵀR for the covariance, and may fail to
            return -math.inf

    return Row(
        design.name,
        fits["float64"].condition_number,
        {dtype: fit.estimated_digits for dtype, fit in fits.items()},
        {dtype: digits(fit.stats.coefficients) for dtype, fit in fits.items()},
        {dtype: fit.converged for dtype, fit in fits.items()},
        {dtype: fit.solution.rounds - 1 for dtype, fit in fits.items()},
        fits["float64"].bounds.dominant(),
        {method: statsmodels(method) for method in ("qr", "pinv")},
    )


def rows(seed=0):
    """A Row for every design of the family."""
    import warnings

    with warnings.catch_warnings():  # statsmodels warns of rank deficiency on the worst designs
        warnings.simplefilter("ignore")
        return [measure(design) for design in designs(seed)]


# --- the tables -------------------------------------------------------------------

BINS = ((-math.inf, -0.5, "below −0.5 (a broken promise)"), (-0.5, 0.0, "−0.5 to 0"), (0.0, 1.0, "0 to 1"),
        (1.0, 2.0, "1 to 2"), (2.0, 3.0, "2 to 3"), (3.0, math.inf, "3 or more"))  # fmt: skip


def margins(found, dtype):
    return np.array([row.delivered[dtype] - row.promised[dtype] for row in found])


def float32_within_reach(row):
    """float32 delivers float64's result to a digit, or float64's promise."""
    return row.delivered["float32"] >= min(row.delivered["float64"] - 1, row.promised["float64"])


def statsmodels_within_reach(row):
    """Within a digit of statsmodels' better method, or past the promise where
    the float64 result's own way back to the original units bounds it."""
    return row.delivered["float64"] >= row.best_statsmodels - 1 or (
        row.dominant == "float64 result" and row.delivered["float64"] >= row.promised["float64"]
    )


def margin_table(found):
    spread = {dtype: margins(found, dtype) for dtype in ("float64", "float32")}
    lines = ["Delivered − promised digits (worst coefficient, against the exact answer)", "",
             "| delivered − promised | float64 | float32 |", "|---|---|---|"]  # fmt: skip
    for low, high, label in BINS:
        counts = [int(np.sum((m >= low) & (m < high))) for m in spread.values()]
        lines.append(f"| {label} | {counts[0]} | {counts[1]} |")
    for name, summary in (("least", np.min), ("median", np.median), ("largest", np.max)):
        lines.append(f"| {name} | {summary(spread['float64']):.2f} | {summary(spread['float32']):.2f} |")
    return lines


def float32_table(found):
    lines = ["float32 beside float64 (the same designs; κ: condition number of the standardized data)", "",
             "| κ·ε(float32) | designs | converged | promise ≤ delivered + 0.5 | within 1 digit of float64 "
             "| least float32 − float64 | median | refinement rounds (median, most) |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for low, high, label in ((0, 0.1, "below 0.1"), (0.1, 1, "0.1 to 1"), (1, math.inf, "1 or more")):
        group = [row for row in found if low <= row.condition_number * EPSILON32 < high]
        if not group:
            continue
        gap = np.array([row.delivered["float32"] - row.delivered["float64"] for row in group])
        rounds = [row.rounds["float32"] for row in group]
        kept = sum(row.delivered["float32"] >= row.promised["float32"] - 0.5 for row in group)
        lines.append(
            f"| {label} | {len(group)} | {sum(row.converged['float32'] for row in group)} | {kept} | "
            f"{int(np.sum(gap >= -1))} | {gap.min():.2f} | {np.median(gap):.2f} | "
            f"{np.median(rounds):.0f}, {max(rounds)} |"
        )
    return lines


def statsmodels_table(found):
    below = [row for row in found if row.condition_number < 1e8]
    gap = np.array([row.delivered["float64"] - row.best_statsmodels for row in below])
    lines = [f"The default (float64) beside the better of statsmodels' QR and pinv, on the {len(below)} designs "
             "with κ < 1e8", "", "| | designs |", "|---|---|",
             f"| at least as accurate | {int(np.sum(gap >= 0))} |",
             f"| less accurate, within 1 digit | {int(np.sum((gap < 0) & (gap >= -1)))} |",
             f"| more than 1 digit less | {int(np.sum(gap < -1))} |",
             f"| least, median difference (digits) | {gap.min():.2f}, {np.median(gap):.2f} |"]  # fmt: skip
    behind = [row for row in below if row.delivered["float64"] < row.best_statsmodels - 1]
    return lines + [f"- {row.name}: {row.delivered['float64']:.2f} digits (promised {row.promised['float64']:.2f}, "
                    f"bound by the {row.dominant}), statsmodels {row.best_statsmodels:.2f}" for row in behind]


def stage_table(found):
    counts = Counter(row.dominant for row in found).most_common()
    return ["Which stage's rounding sets the float64 promise", "", "| stage | designs |", "|---|---|",
            *(f"| {stage} | {count} |" for stage, count in counts)]  # fmt: skip


def tables(found):
    parts = [margin_table(found), float32_table(found), statsmodels_table(found), stage_table(found)]
    return "\n\n".join([f"{len(found)} designs.", *("\n".join(part) for part in parts)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="which family (default 0, the one the tests use)")
    args = parser.parse_args(argv)
    from linreg.cli import import_tensorflow_quietly

    import_tensorflow_quietly()
    print(tables(rows(args.seed)))


if __name__ == "__main__":
    main()
