"""Where the one-pass statistics are as accurate as QR: engine moments beside engine memory.

    .venv/bin/python examples/engine_line.py [--json PATH]

`--engine moments` gathers n, the means and the centred cross-products in one
pass over the files (summed beyond float64: about 1e-19) and trains on them:
the normal equations, whose rounding grows like κ² times that. `--engine memory` keeps the rows, orthogonalizes them by QR
and refines on extended-precision residuals: κ·ε or better. Both are fitted
here to the same CSV file of every design of examples/digits_family.py (κ
from 1 to 2.5e12), of examples/accuracy.py's targets (polynomials, generated
correlated sets, statsmodels' longley, star98, stackloss, macrodata) and of
NIST's Wampler 1 and 2 (their defining polynomials on x = 0..20), and held to
the EXACT least-squares solution of the file's float64 numbers
(examples/accuracy.py's rational reference).

For each design: κ of the standardized columns as each engine sees it (memory:
the singular values of the rows; moments: those of the standardized
cross-products' factor, what the statistics reveal before any training),
the correct digits of the worst coefficient (intercept included, capped at
16) and each fit's promise (fit.estimated_digits). The tables: the designs
grouped by the moments' κ; for several meanings of "as accurate as QR"
(within 0.5, 1, 2 or 3 digits of it, or at least its promise), the largest
κ below which, and the least promise of the moments fit above which, every
design is as accurate; the named targets; the designs that set the lines,
and the moments fits that break their promise. About a minute of CPU.
"""
import argparse
import csv
import json
import math
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from digits_family import DIGITS_CAP, designs as family, load_accuracy

# Moments matches QR when it delivers at least this close to it.
WITHIN = 0.5
BINS = (1, 10, 1e2, 1e3, 1e4, 1e5, 1e6, 1e8, 1e10, math.inf)


@dataclass
class Row:
    name: str
    kappa_memory: float
    kappa_moments: float  # nan: moments refused the design
    memory: float  # delivered digits
    memory_promised: float
    moments: float
    moments_promised: float
    refused: str = ""  # the moments engine's message, when it refused
    named: bool = False  # a named target (accuracy.py's, Wampler's), not one of the family

    @property
    def gap(self):
        return self.moments - self.memory


def wampler(which):
    """NIST StRD Wampler 1 and 2: y a degree-5 polynomial of x = 0..20, no noise."""
    accuracy = load_accuracy()
    x = np.arange(21.0)
    coefficients = np.ones(6) if which == 1 else 10.0 ** -np.arange(6.0)
    return accuracy.Problem(f"NIST Wampler{which}", accuracy.polynomial_design(x, 5), np.polyval(coefficients[::-1], x))


def targets():
    """(name, x, y, named) of every design: the family, the accuracy targets, Wampler 1 and 2."""
    accuracy = load_accuracy()
    named = [*accuracy.problems(quick=True), wampler(1), wampler(2)]
    return [(design.name, design.x, design.y, False) for design in family()] + [
        (problem.name, problem.x, problem.y, True) for problem in named]


def write_csv(path, x, y):
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow([f"x{j + 1}" for j in range(x.shape[1])] + ["y"])
        # repr() writes the shortest text that reads back as the same float64.
        writer.writerows([*map(repr, map(float, row)), repr(float(target))] for row, target in zip(x, y))


def measure(name, x, y, named, folder):
    import linreg
    from linreg.errors import LinregError

    accuracy = load_accuracy()
    path = Path(folder) / "design.csv"
    write_csv(path, x, y)
    reference = accuracy.exact_least_squares(x, y)

    def fitted(engine):
        # optimizer orthogonal: QR on the rows, whatever their κ (auto would solve
        # from their statistics below plan.STATISTICS_LINE, the line measured here).
        fit = linreg.fit(path, target="y", engine=engine, optimizer="orthogonal", compile="none", progress=False,
                         warn=lambda _: None)
        digits = min(accuracy.correct_digits(fit.stats.coefficients, reference), DIGITS_CAP)
        return fit, digits

    memory, memory_digits = fitted("memory")
    if not (np.array_equal(memory.table.x, x) and np.array_equal(memory.table.y, y)):
        raise AssertionError(f"{name}: the CSV did not read back as the same float64 numbers")
    try:
        moments, moments_digits = fitted("moments")
    except LinregError as error:
        return Row(name, memory.condition_number, math.nan, memory_digits, memory.estimated_digits, math.nan,
                   math.nan, str(error), named)
    return Row(name, memory.condition_number, moments.condition_number, memory_digits, memory.estimated_digits,
               moments_digits, moments.estimated_digits, named=named)


def rows():
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [measure(*target, folder) for target in targets()]


# --- the tables -------------------------------------------------------------------


def bin_table(found):
    lines = [f"Engine moments beside engine memory (QR), by κ of the standardized columns from the statistics; "
             f"digits: worst coefficient against the exact answer", "",
             "| κ (moments) | designs | moments within 0.5 of QR | least moments − QR | median | "
             "QR delivered (least, median) | moments delivered (least, median) | "
             "moments promised (least, median) | moments promise kept | moments ≥ QR's promise − 0.5 |",
             "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    fitted = [row for row in found if not row.refused]
    for low, high in zip(BINS, BINS[1:]):
        group = [row for row in fitted if low <= row.kappa_moments < high]
        if not group:
            continue
        gap = np.array([row.gap for row in group])
        memory = np.array([row.memory for row in group])
        moments = np.array([row.moments for row in group])
        promised = np.array([row.moments_promised for row in group])
        kept = sum(not broken(row) for row in group)  # promising no digit (not converged) breaks nothing
        promise = sum(row.moments >= row.memory_promised - WITHIN for row in group)
        label = f"{low:.0e} to {high:.0e}" if math.isfinite(high) else f"{low:.0e} or more"
        lines.append(
            f"| {label} | {len(group)} | {int(np.sum(gap >= -WITHIN))} | {gap.min():.2f} | {np.median(gap):.2f} | "
            f"{memory.min():.1f}, {np.median(memory):.1f} | {moments.min():.1f}, {np.median(moments):.1f} | "
            f"{promised.min():.1f}, {np.median(promised):.1f} | {kept} | {promise} |"
        )
    refused = [row for row in found if row.refused]
    if refused:
        kappas = [row.kappa_memory for row in refused]
        lines.append(f"| refused by moments | {len(refused)} | | | | | | | | |")
        lines.append("")
        lines.append(f"Moments refused {len(refused)} designs (κ from QR {min(kappas):.2g} to {max(kappas):.2g}): "
                     "a column an exact combination of others to the statistics' accuracy.")
    return lines


# What "as accurate" may mean: moments delivers at least this, for each design.
CRITERIA = {
    "within 0.5 digit of QR": lambda row: row.memory - WITHIN,
    "within 1 digit of QR": lambda row: row.memory - 1,
    "within 2 digits of QR": lambda row: row.memory - 2,
    "within 3 digits of QR": lambda row: row.memory - 3,
    "QR's promise (to 0.5 digit)": lambda row: row.memory_promised - WITHIN,
}


def threshold(fitted, passes, quantity, above):
    """The threshold on `quantity` whose safe side (below it, or above with
    `above`) holds only designs that pass; (threshold, designs on that side,
    the nearest of them)."""
    failing = [quantity(row) for row in fitted if not passes(row)]
    limit = max(failing, default=-math.inf) if above else min(failing, default=math.inf)
    safe = [quantity(row) for row in fitted if (quantity(row) > limit if above else quantity(row) < limit)]
    return limit, len(safe), (min if above else max)(safe, default=math.nan)


def rule_table(found, title):
    fitted = [row for row in found if not row.refused]
    lines = [f"{title}: moments is taken on the safe side of the threshold (κ below it, or its own promise above "
             "it), where every design passes", "",
             "| moments delivers | designs passing | κ from the statistics < | designs below (largest κ) | "
             "moments' promise > | designs above (least promise) |", "|---|---|---|---|---|---|"]  # fmt: skip
    for label, least in CRITERIA.items():
        passes = lambda row: row.moments >= least(row)  # noqa: E731
        kappa, below, largest = threshold(fitted, passes, lambda row: row.kappa_moments, above=False)
        promise, above, lowest = threshold(fitted, passes, lambda row: row.moments_promised, above=True)
        below = f"{below} ({largest:.3g})" if below else "none"
        above = f"{above} ({lowest:.2f})" if above else "none"
        lines.append(f"| {label} | {sum(map(passes, fitted))} of {len(fitted)} | {kappa:.3g} | {below} | {promise:.2f} "
                     f"| {above} |")
    return lines


def broken(row):
    """A moments fit that promised at least a digit (converged) and delivered less, by more than WITHIN."""
    return not row.refused and row.moments_promised >= 1 and row.moments < row.moments_promised - WITHIN


_HEADER = ("| design | κ (QR) | κ (moments) | QR delivered / promised | moments delivered / promised |",
           "|---|---|---|---|---|")


def failures(found, count=12):
    behind = sorted((row for row in found if not row.refused and row.gap < -WITHIN), key=lambda row: row.kappa_moments)
    lines = [f"The {min(count, len(behind))} designs of smallest κ where moments is more than {WITHIN} digit "
             "behind QR", "", *_HEADER]
    lines += [_design(row) for row in behind[:count]]
    wrong = [row for row in found if broken(row)]
    lines += ["", f"Converged moments fits whose promise is broken (delivered < promised − {WITHIN}): {len(wrong)}",
              "", *_HEADER, *map(_design, wrong)]
    return lines


def _design(row):
    moments = "refused" if row.refused else f"{row.moments:.1f} / {row.moments_promised:.1f}"
    return (f"| {row.name} | {row.kappa_memory:.3g} | {row.kappa_moments:.3g} | {row.memory:.1f} / "
            f"{row.memory_promised:.1f} | {moments} |")


def named_table(found):
    lines = ["The named targets", "", *_HEADER]
    return lines + [_design(row) for row in found if row.named]


def tables(found):
    kept = [row for row in found if not broken(row)]
    parts = [bin_table(found), rule_table(found, "Where moments delivers as much as QR, on every design it fits"),
             rule_table(kept, "The same without the moments fits that break their promise (listed below)"),
             named_table(found), failures(found)]
    return "\n\n".join([f"{len(found)} designs.", *("\n".join(part) for part in parts)])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every design's numbers here")
    args = parser.parse_args(argv)
    from linreg.cli import import_tensorflow_quietly

    import_tensorflow_quietly()
    found = rows()
    print(tables(found))
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(row) for row in found], indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
