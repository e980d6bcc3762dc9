"""The design stage: columns of any source become the checked Table.

In: columns by name -- float64 numbers (NaN where a value is missing) or
pyarrow strings (stripped texts, as a CSV's cells) -- for the target, the
features and the weights, and each row's line or row number for messages.
Out: the Table: x [N, d] with categorical columns one-hot coded (levels
sorted, the first the baseline and left out), y [N], the weights, and what
was decided (levels, notes, rows dropped). Every source follows the same
rules: a missing value stops the read or drops its row and is never a
category; a feature column of text is categorical; every other value is a
finite number; the whole table is checked for what a fit needs.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from linreg.data.cells import MISSING, bad_weight, described, everything_dropped, is_number, missing_error, missing_texts, number
from linreg.errors import LinregError
from linreg.plan import MAX_LEVELS
from linreg.rowwise import stacked, varying_columns

# The name the intercept goes by in every mapping of coefficients.
INTERCEPT = "intercept"


@dataclass
class Table:
    """The numbers of the data, ready for fitting: x [N, d] and y [N], float64."""

    path: Path
    features: list
    target: str
    x: np.ndarray
    y: np.ndarray
    lines: object  # each row's line in the file (its row in a frame or arrays), for messages
    dropped: int = 0  # rows left out for missing values (missing="drop")
    # Categorical columns: {column: its levels}, the first the baseline. Such a
    # column becomes one 0/1 feature "column[level]" per other level.
    categories: dict = field(default_factory=dict)
    columns: list = None  # the feature columns as the data names them (before coding)
    notes: list = field(default_factory=list)  # what the reader decided, for the user
    weights: np.ndarray = None  # observation weights, or None
    weights_column: str = None
    unit: str = "line"  # what `lines` count: "line" (a file's) or "row"


def check_feature_names(features, header, target, source):
    if INTERCEPT in features:
        raise LinregError(
            f"{source}: a feature column is named {INTERCEPT!r}, the name every report gives the model's "
            "intercept; rename the column"
        )
    if not features:
        raise LinregError(f"{source} has only the target column {target!r}; a fit needs at least one feature")
    for name in features:
        if name not in header:
            raise LinregError(f"{source} has no column {name!r} given in --features; its columns are {', '.join(header)}")
        if name == target:
            raise LinregError(f"features include the target {target!r}; a column cannot predict itself")
        if features.count(name) > 1:
            raise LinregError(f"features name {name!r} twice; name each feature once")


def design(source, unit, positions, columns, target, features, weights=None, missing="error", requested=(),
           max_levels=MAX_LEVELS, intercept=True, weight_values=None, dropped=0, penalized=False, x=None,
           x_finite=False):
    """The checked Table of `columns` for the target, the features and a
    named `weights` column; `weight_values` are unnamed weights, `dropped`
    the rows a reader left out already; x: the features as a matrix
    already (a reader's rowwise.Filling), then not in `columns`;
    `x_finite`: the reader has seen that every number in x is finite.

    A row with a missing value is left out (missing="drop") or stops the
    read; the features that hold no number (and those `requested`) are
    coded as categories; every other value must be a finite number; then
    the weights and the whole table are checked (check_fittable)."""
    n = len(positions)
    if weight_values is not None and len(weight_values) != n:
        raise LinregError(f"{source}: {len(weight_values)} weights for {n} rows; give one weight per row")
    if missing == "drop":
        missed = [_missed(values) for values in columns.values()]
        if weight_values is not None:
            missed.append(np.isnan(weight_values))
        if x is not None:
            missed.append(np.isnan(x).any(axis=1))
        keep = ~np.logical_or.reduce(missed)
        if n and not keep.any():
            raise everything_dropped(source)
        if not keep.all():
            columns = {name: _kept(values, keep) for name, values in columns.items()}
            positions = positions[keep]
            weight_values = None if weight_values is None else weight_values[keep]
            x = None if x is None else x[keep]
    with np.errstate(over="ignore", invalid="ignore"):  # (a sum past 1.8e308 sends x to the checks too)
        finite = x is None or x_finite or np.isfinite(np.sum(x))
    if not finite:
        # A value to refuse (or sums past float64): checked column by column, as
        # any other table, so the message names the first row that has one.
        columns = {target: columns[target], **dict(zip(features, x.T)), **columns}
        x = None
    texts = {name: columns[name] for name in features if x is None and isinstance(columns[name], pa.Array)}
    categories, notes = find_categories(texts, requested, source, unit, positions, max_levels)
    if x is None:
        x, names, values = coded(source, unit, positions, columns, features, categories)
    else:
        names, values = list(features), _numbers(source, unit, positions, columns)
    table = Table(source, names, target, x, values[target], positions, dropped + n - len(positions), categories,
                  list(features), notes, unit=unit)  # fmt: skip
    table.weights = values[weights] if weights is not None else weight_values
    table.weights_column = weights
    check_weights(table)
    check_fittable(table, intercept, penalized)
    return table


def _missed(values):
    """Which rows of a column (texts or numbers) hold a missing value."""
    if isinstance(values, pa.Array):
        return missing_texts(values)
    return np.isnan(values)


def _kept(values, keep):
    return values.filter(pa.array(keep)) if isinstance(values, pa.Array) else values[keep]


def _numbers(source, unit, positions, columns):
    """{name: float64 array} of `columns` (texts or numbers), once every value
    is known to be a finite number; else the error of the first row with one
    that is not. Texts are read row by row, as a file is."""
    texts = [name for name, values in columns.items() if isinstance(values, pa.Array)]
    result = dict(columns)
    if texts:
        values = np.empty((len(positions), len(texts)))
        for k, row in enumerate(zip(*(columns[name].to_pylist() for name in texts))):
            for j, (name, text) in enumerate(zip(texts, row)):
                try:
                    values[k, j] = number(source, k, name, text, unit)
                except LinregError:
                    number(source, positions[k], name, text, unit)  # raises, with the row's line
        result.update(zip(texts, values.T))
    bad = [(int(k[0]), j) for j, name in enumerate(columns) if len(k := np.flatnonzero(~np.isfinite(result[name])))]
    if bad:
        k, j = min(bad)
        name = list(columns)[j]
        value, where = result[name][k], f"{source}: {unit} {positions[k]}"
        if np.isnan(value):
            raise missing_error(where, name, "missing (NaN)")
        raise LinregError(
            f"{where}, column {name!r} is {value}; only finite numbers can be fitted, fill it in or remove the row"
        )
    return result


def check_weights(table):
    """Observation weights, when there are any, are positive finite numbers."""
    w = table.weights
    if w is None:
        return
    bad = np.flatnonzero(~(np.isfinite(w) & (w > 0)))
    if len(bad):
        where = f"row {bad[0]}" if table.lines is None else f"{table.unit} {table.lines[bad[0]]}"
        raise bad_weight(f"{table.path}: {where}", w[bad[0]])


def find_categories(texts, requested, source, unit, positions, max_levels):
    """{column: levels} for the requested columns and those holding no number,
    and notes on the latter. A missing value in such a column is no level:
    it is refused, at its line or row (with missing="drop" none is left)."""
    categories, notes = {}, []
    for name in requested:
        if name not in texts:
            raise LinregError(f"{source}: --categorical names {name!r}, which is not a feature column")
    for name, column in texts.items():
        absent = _missed(column)
        present = pc.unique(column.filter(pa.array(~absent))).to_pylist()
        # Text in a column of numbers is a typo to report (with its line, later);
        # a column with no number at all is categorical.
        if name not in requested and any(is_number(text) for text in present):
            continue
        if absent.any():
            k = int(np.argmax(absent))
            raise missing_error(f"{source}: {unit} {positions[k]}", name, described(column[k].as_py()))
        levels = sorted(present)
        if len(levels) < 2:
            kind = "categorical" if name in requested else "not numeric and, as a categorical column,"
            raise LinregError(
                f"{source}: column {name!r} is {kind} has one level only ({levels[0]!r}); "
                "convert it to numbers or leave it out"
            )
        if name not in requested and len(levels) == len(column):
            raise LinregError(
                f"{source}: column {name!r} is not numeric and every row has its own value (such as "
                f"{column[0].as_py()!r}): a name or an identifier, not a category; leave it out with --features"
            )
        if len(levels) > max_levels:
            size = len(column) * (len(levels) - 1) * 8
            raise LinregError(
                f"{source}: column {name!r} has {len(levels)} levels, more than the limit of {max_levels}: one-hot "
                f"coded, it would be {len(levels) - 1} columns of {len(column)} rows ({size / 2**30:.3g} GiB of "
                "float64); group its rare levels or leave it out, or raise the limit (--max-levels, max_levels=)"
            )
        categories[name] = levels
        if name not in requested:
            notes.append(
                f"column {name!r} is not numeric, so it is treated as categorical: {len(levels)} levels, "
                f"{levels[0]!r} the baseline (name it in --categorical to say so yourself)"
            )
    return categories, notes


def encode(columns, features, categories, where, n):
    """The design matrix [N, d'] and its feature names from `columns` (name ->
    numbers, or texts for a categorical column): a categorical column becomes
    one 0/1 column "name[level]" per level but the first (the baseline).
    where(row) names a row in a message."""
    blocks, names = [], []
    for name in features:
        if name in categories:
            levels, values = categories[name], columns[name]
            codes = pc.index_in(values, value_set=pa.array(levels, pa.string())).fill_null(-1)
            codes = codes.to_numpy(zero_copy_only=False)
            unseen = np.flatnonzero(codes < 0)
            if len(unseen):
                value = values[int(unseen[0])].as_py()
                if value.lower() in MISSING:
                    raise missing_error(where(unseen[0]), name, described(value))
                raise LinregError(
                    f"{where(unseen[0])}, column {name!r}: level {value!r} was not seen in the fit "
                    f"(its levels are {', '.join(map(repr, levels))})"
                )
            try:
                block = np.zeros((len(values), len(levels) - 1))
            except MemoryError:  # --max-levels raised past what this machine holds
                size = len(values) * (len(levels) - 1) * 8
                raise LinregError(
                    f"column {name!r}: its {len(levels) - 1} one-hot columns of {len(values)} rows would take "
                    f"{size / 2**30:.3g} GiB, more than this machine can hold; leave the column out, or code it "
                    "with fewer levels"
                ) from None
            rows = np.flatnonzero(codes)
            block[rows, codes[rows] - 1] = 1.0
            blocks += list(block.T)
            names += [f"{name}[{level}]" for level in levels[1:]]
        else:
            blocks.append(np.asarray(columns[name], dtype=np.float64))
            names.append(name)
    return stacked(blocks, n), names


def coded(source, unit, positions, columns, features, categories):
    """(x, its names, numbers): the design matrix of `features` from `columns`,
    the categorical ones coded with `categories`, and every other column of
    `columns` as checked float64 numbers."""
    checked = _numbers(source, unit, positions, {name: values for name, values in columns.items() if name not in categories})
    x, names = encode({**columns, **checked}, features, categories, lambda k: f"{source}: {unit} {positions[k]}", len(positions))
    return x, names, checked


def check_fittable(table, intercept=True, penalized=False):
    """More rows than coefficients (two rows for a penalized fit: ridge and
    lasso are well posed with more features than rows), no constant
    feature beside the intercept (without one a constant column is fitted like
    any other), a target that varies. Columns float64 cannot scale are refused
    by the scale stage (scale_refusal), combinations of others by the
    precondition stage, from the one QR factorization of the fit."""
    path, n, d = table.path, len(table.y), len(table.features)
    if penalized:
        if n < 2:
            raise LinregError(f"{path} has {n} data row{'s' if n != 1 else ''}; a penalized fit needs at least 2")
    elif n <= d + intercept:
        from linreg.data.moments import describe_coefficients

        raise LinregError(f"{path} has {n} data row{'s' if n != 1 else ''} but {describe_coefficients(d, intercept)}; "
                          f"it needs at least {d + intercept + 1} rows to fit them and estimate their errors")
    varying = varying_columns(table.x) if intercept else ()
    for j, name in enumerate(table.features if intercept else []):
        if not varying[j]:
            raise LinregError(
                f"{path}: feature column {name!r} is constant ({table.x[0, j]:g} on every row); "
                "the intercept already plays that role, so leave it out with --features"
            )
    if not varying_columns(table.y[:, None])[0]:
        raise LinregError(f"{path}: target column {table.target!r} is constant; there is nothing to fit")


def scale_refusal(table, error):
    """The LinregError for a column float64 cannot standardize (data/scaling.ScaleError)."""
    name = ([table.target, *table.features])[error.column]
    values = table.y if error.column == 0 else table.x[:, error.column - 1]
    return LinregError(
        f"{table.path}: column {name!r}: {error.problem} (values from {values.min():.3g} to {values.max():.3g}); "
        "multiply or divide the column by a power of ten"
    )
