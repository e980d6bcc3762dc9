"""Folds for cross-validation, and each fold's statistics from one pass.

A row's fold is a hash of its row number: it depends on nothing else, so
the folds are the same however the rows are read -- in one table, in
batches of any size, streamed from files or split among workers. Each
batch's rows go to their folds' Moments (data/moments.py); the statistics
of all the data are the merge of the K folds', and those of the rows
outside fold k (the training rows when fold k is held out) the merge of
the other K - 1.
"""
import numpy as np

from linreg.data.moments import Moments, merge_all
from linreg.errors import LinregError


def fold_of(row_numbers, K, seed=0):
    """Each row's fold, 0..K-1, from its (0-based) row number and the seed.

    SplitMix64's finalizer (the mixing step of Java's SplittableRandom):
    every input bit flips about half the output bits, so consecutive row
    numbers land in unrelated folds, and the folds come out equally likely
    whatever order the rows are in.
    """
    with np.errstate(over="ignore"):  # the arithmetic is modulo 2**64 on purpose
        z = np.asarray(row_numbers, np.uint64) + np.uint64(0x9E3779B97F4A7C15) * np.uint64(seed + 1)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    return (z % np.uint64(K)).astype(np.int64)


def fold_moments(batches, K, seed=0):
    """The K folds' Moments from batches (first_row, x, y) or (first_row, x, y, w)
    (w: observation weights, or None), in one pass.

    first_row is the row number of the batch's first row, so the batches may
    come in any size. Raises LinregError when a fold is left without rows.
    """
    return checked_folds(shard_folds(batches, K, seed), K)


def shard_folds(batches, K, seed=0):
    """fold_moments of part of the rows (a worker's shard), unchecked: some folds may be empty."""
    check_folds(K)
    folds = None
    for first_row, x, y, *w in batches:
        x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
        w = w[0] if w and w[0] is not None else None
        fold = fold_of(first_row + np.arange(len(y)), K, seed)
        parts = [Moments.of(x[fold == k], y[fold == k], None if w is None else w[fold == k]) for k in range(K)]
        folds = parts if folds is None else [a.merge(b) for a, b in zip(folds, parts)]
    return folds


def checked_folds(folds, K):
    """The folds of all the rows (None: there were none), refused when too few rows or a fold without any."""
    check_folds(K, sum(part.rows for part in folds or []))
    empty = [k for k in range(K) if folds[k].rows == 0]
    if empty:
        raise LinregError(f"cross-validation fold {empty[0] + 1} of {K} has no rows; use fewer folds or more data")
    return folds


def check_folds(K, rows=None):
    """Refuse fold counts below 2 or, once the rows are counted, above their number."""
    if not (isinstance(K, (int, np.integer)) and K >= 2):
        raise LinregError(f"cross-validation needs a whole number of folds, at least 2, not {K!r}")
    if rows is not None and K > rows:
        raise LinregError(f"cross-validation cannot make {K} folds of {rows} rows; use at most {rows} folds")


def training_moments(folds):
    """For each k, the Moments of every row outside fold k (the merge of the others)."""
    return [merge_all(part for j, part in enumerate(folds) if j != k) for k in range(len(folds))]


def validation_error(moments, W, b):
    """The mean squared error of y ≈ x·W + b over the rows the Moments stand for.

    Σ (y - x·W - b)² = vᵀCv + n·(ȳ - x̄·W - b)² with v = [-W, 1] (data/moments.py),
    with v counted in the Moments' units of 2**exponents.
    """
    v = np.ldexp(np.append(-np.asarray(W, np.float64), 1.0), moments.exponents)
    with np.errstate(over="ignore", invalid="ignore"):  # past float64, inf: the caller says what to do
        offset = float(v @ moments.mean) - b
        return float(v @ moments.C @ v) / moments.weight + offset * offset
