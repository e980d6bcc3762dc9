"""Write example CSV files (run from the repository root).

    python examples/make_data.py
        examples/houses.csv: 300 rows, price from area, rooms, age and
        distance -- features on very different scales.

    python examples/make_data.py --hard PATH [--rows N] [--features D] [--correlation R] [--seed S]
        a numerically hard problem (linreg.data.synthetic.correlated): D features
        pairwise correlated R, standard deviations from 0.1 to 500,000,
        offsets of up to ten standard deviations; y = x·W + 3 + noise.

    python examples/make_data.py --poly10 PATH
        60 points of a degree-10 polynomial on [-9, -3] with noise 1: columns
        x1 = x, ..., x10 = x¹⁰ and y -- the standardized columns have
        condition number 2.3e9, about as ill-conditioned as data gets.
"""
import argparse
import csv
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from linreg.data.synthetic import correlated  # noqa: E402

HERE = Path(__file__).resolve().parent


def write(path, header, columns):
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(header)
        # repr() writes the shortest text that reads back as the same float64.
        writer.writerows(zip(*(map(repr, map(float, column)) for column in columns)))


def poly10(seed=0):
    x = np.linspace(-9.0, -3.0, 60)
    coefficients = [3, -2, 5, -1, 2, 1, -1, 1, -2, 1, 1]
    columns = [x**k for k in range(1, 11)]
    y = coefficients[0] + sum(c * column for c, column in zip(coefficients[1:], columns))
    y = y + np.random.default_rng(seed).normal(size=60)
    return [f"x{k}" for k in range(1, 11)] + ["y"], [*columns, y]


def houses(rows=300, seed=1):
    rng = np.random.default_rng(seed)
    area = rng.uniform(40, 220, rows).round(1)  # m²
    rooms = np.clip(np.round(area / 30 + rng.normal(0, 0.8, rows)), 1, None)
    age = rng.uniform(0, 80, rows).round(0)  # years
    distance = rng.gamma(2.0, 3.0, rows).round(2)  # km to the centre
    price = 52_000 + 2_900 * area + 6_500 * rooms - 900 * age - 4_200 * distance + rng.normal(0, 25_000, rows)
    return ["area", "rooms", "age", "distance", "price"], [area, rooms, age, distance, price.round(0)]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hard", type=Path, metavar="PATH")
    parser.add_argument("--poly10", type=Path, metavar="PATH")
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument("--correlation", type=float, default=0.99)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.poly10 is not None:
        write(args.poly10, *poly10())
    elif args.hard is None:
        write(HERE / "houses.csv", *houses())
    else:
        x, y, _, _ = correlated(args.rows, args.features, correlation=args.correlation, seed=args.seed)
        write(args.hard, [f"x{j + 1}" for j in range(args.features)] + ["y"], [*x.T, y])
