"""The user's own data: a CSV file, a data frame or arrays.

A CSV is read with Python's csv module, checked where it enters (every
problem is reported with the file, line and column and what to do), and
standardized before training.
"""
import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from linreg.errors import LinregError


@dataclass
class Table:
    """The numbers of a CSV, ready for fitting: x [N, d] and y [N], float64."""

    path: Path
    features: list
    target: str
    x: np.ndarray
    y: np.ndarray
    lines: np.ndarray  # the file's line number of each row, for messages
    dropped: int = 0  # rows left out for missing values (missing="drop")
    # Categorical columns: {column: its levels}, the first the baseline. Such a
    # column becomes one 0/1 feature "column[level]" per other level.
    categories: dict = field(default_factory=dict)
    columns: list = None  # the feature columns as the data names them (before coding)
    notes: list = field(default_factory=list)  # what the reader decided, for the user
    weights: np.ndarray = None  # observation weights, or None
    weights_column: str = None


# What counts as a missing value in a CSV cell (and NaN in a frame or array).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
MISSING_CHOICES = ("error", "drop")

def read_text(path):
    """The file's text, or an error that says why it cannot be had. "-" is stdin."""
    path = Path(path)
    if str(path) == "-":
        import sys

        raw = sys.stdin.buffer.read()
    else:
        if not path.exists():
            raise LinregError(f"{path}: no such file")
        if path.is_dir():
            raise LinregError(f"{path} is a folder, expected a CSV file")
        if not path.is_file():
            # A FIFO with no writer would block forever; a device could be endless.
            raise LinregError(f"{path} is not a regular file; give a CSV file, or - to read standard input")
        try:
            raw = path.read_bytes()
        except OSError as error:
            raise LinregError(f"cannot read {path}: {error.strerror}") from None
    try:
        # utf-8-sig also accepts (and drops) the byte-order mark some
        # spreadsheet programs put at the start of a UTF-8 file.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw.count(b"\n", 0, error.start) + 1
        raise LinregError(
            f"{path}: line {line} is not valid UTF-8 (byte 0x{raw[error.start]:02x}); "
            "save the file as UTF-8 and try again"
        ) from None


def split_rows(text, path, line=lambda number: number, note=""):
    """[(line number, cells), ...] of the rows of CSV `text` that are not blank.
    `line` maps the parser's line numbers to the file's; `note` ends the
    message about text that is not valid CSV."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = []
    try:
        for cells in reader:
            if cells and any(cell.strip() for cell in cells):
                rows.append((reader.line_num, cells))
    except csv.Error as error:
        raise LinregError(f"{path}: line {line(reader.line_num)}: not valid CSV ({error}){note}") from None
    return rows


def read_rows(path):
    """(header, [(line number, cells), ...]) with Python's csv module.

    Blank lines are skipped (a trailing newline or two is common); every
    other row must have as many cells as the header.
    """
    text = read_text(path)
    if not text.strip():
        raise LinregError(f"{path} is empty; expected a header row with column names, then rows of numbers")
    rows = split_rows(text, path)
    line, header = rows[0]
    header = check_header(path, line, header, [cells[0] for _, cells in rows[1:4] if cells])
    body = rows[1:]
    if not body:
        raise LinregError(f"{path} has a header but no data rows; add at least one row of numbers")
    for line, cells in body:
        if len(cells) != len(header):
            raise LinregError(
                f"{path}: line {line} has {len(cells)} cells but the header has {len(header)} columns; "
                "every row needs one value per column"
            )
    return header, body


def check_header(path, line, cells, next_firsts):
    """The header's column names, stripped, after the checks every CSV reader
    makes; `next_firsts` are the first cells of the next few rows (for the
    pandas-index hint)."""
    header = [name.strip() for name in cells]
    for separator, called in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
        if len(header) == 1 and separator in header[0]:
            raise LinregError(
                f"{path}: line {line}: the header is one column, {header[0][:60]!r}, separated by {called}; "
                "linreg reads comma-separated files: save the file with commas between the values"
            )
    for column, name in enumerate(header, start=1):
        if not name:
            hint = ""
            firsts = [cell.strip() for cell in next_firsts[:3]]
            if column == 1 and firsts and firsts == [str(k) for k in range(len(firsts))]:
                hint = " (it looks like a pandas index: write the file with to_csv(..., index=False))"
            raise LinregError(
                f"{path}: line {line}: column {column} of the header has no name{hint}; name every column"
            )
        if header.index(name) != column - 1:
            raise LinregError(
                f"{path}: line {line}: the column name {name!r} appears twice in the header; "
                "give every column its own name"
            )
    return header


def _number(path, line, column, text):
    text = text.strip()
    if text.lower() in MISSING:
        what = "empty" if not text else f"missing ({text!r})"
        raise LinregError(
            f"{path}: line {line}, column {column!r} is {what}; fill it in or remove the row "
            "(linreg fit --missing drop leaves such rows out)"
        )
    try:
        value = float(text)
    except ValueError:
        raise LinregError(
            f"{path}: line {line}, column {column!r}: {text!r} is not a number; correct it or remove the row"
        ) from None
    if not math.isfinite(value):
        raise LinregError(
            f"{path}: line {line}, column {column!r} is {text!r}; only finite numbers can be fitted, "
            "fill it in or remove the row"
        )
    if abs(value) >= 2.0**53 and text.lstrip("+-").isdigit() and int(text) != int(value):
        raise LinregError(
            f"{path}: line {line}, column {column!r}: {text} has more digits than a float64 keeps (whole "
            "numbers above 2**53 = 9007199254740992 are rounded, so different values could look equal); "
            "subtract a common offset or rescale the column"
        )
    return value


def read_columns(path, columns, rows=None, missing="error"):
    """The named columns of a CSV as a float64 array [N, len(columns)], and
    the file line of each row. Only these columns have to be numeric.
    `rows` is what read_rows returned, when the file has been read already.
    With missing="drop", rows with a missing value (MISSING) in one of these
    columns are left out; with "error" they stop the read."""
    header, body = read_rows(path) if rows is None else rows
    absent = [name for name in columns if name not in header]
    if absent:
        raise LinregError(f"{path} has no column {absent[0]!r}; its columns are {', '.join(header)}")
    index = [header.index(name) for name in columns]
    if missing == "drop":
        body = [(line, cells) for line, cells in body if all(cells[i].strip().lower() not in MISSING for i in index)]
        if not body:
            raise LinregError(f"{path}: every row has a missing value in the columns used; nothing is left to fit")
    values = np.array(
        [[_number(path, line, name, cells[i]) for name, i in zip(columns, index)] for line, cells in body],
        dtype=np.float64,
    ).reshape(len(body), len(columns))
    return values, np.array([line for line, _ in body])


def read_table(path, target, features=None, missing="error", categorical=None, weights=None):
    """Read `target` and `features` (default: every other column) from a CSV
    and check they can be fitted: numbers only (but for categorical columns),
    no constant feature, more rows than coefficients, no feature that is a
    combination of others. Categorical columns are the ones named in
    `categorical` and any feature column that holds text that is not a number."""
    path = Path(path)
    rows = read_rows(path)
    header, body = rows
    if target not in header:
        raise LinregError(f"{path} has no column {target!r} for --target; its columns are {', '.join(header)}")
    if weights is not None and (weights not in header or weights == target):
        raise LinregError(f"{path} has no column {weights!r} for --weights besides the target; its columns are {', '.join(header)}")
    features = [name for name in header if name not in (target, weights)] if features is None else list(features)
    _check_feature_names(features, header, target, str(path))
    if weights in features:
        raise LinregError(f"the weights column {weights!r} is also a feature; leave it out of --features")
    if missing == "drop":
        used = [header.index(name) for name in [target, *features, *([weights] if weights else [])]]
        body = [(line, cells) for line, cells in body if all(cells[i].strip().lower() not in MISSING for i in used)]
        if not body:
            raise LinregError(f"{path}: every row has a missing value in the columns used; nothing is left to fit")
    texts = {name: [cells[header.index(name)].strip() for _, cells in body] for name in features}
    categories, notes = find_categories(texts, categorical or [], str(path))
    values, lines = read_columns(path, [target, *[f for f in features if f not in categories]], (header, body))
    numeric = dict(zip([f for f in features if f not in categories], values[:, 1:].T))
    x, names = encode({**numeric, **texts}, features, categories)
    table = Table(path, names, target, x, values[:, 0], lines, len(rows[1]) - len(lines), categories, features, notes)
    if weights is not None:
        table.weights, table.weights_column = read_columns(path, [weights], (header, body))[0][:, 0], weights
    check_weights(table, str(path))
    check_fittable(table)
    return table


def check_weights(table, source):
    if table.weights is None:
        return
    w = table.weights
    if w.shape != table.y.shape:
        raise LinregError(f"{source}: {len(w)} weights for {len(table.y)} rows; give one weight per row")
    bad = np.flatnonzero(~(np.isfinite(w) & (w > 0)))
    if len(bad):
        where = f"line {table.lines[bad[0]]}" if table.lines is not None else f"row {bad[0]}"
        raise LinregError(f"{source}: {where}: weight {w[bad[0]]!r} is not a positive finite number")


def find_categories(texts, requested, source):
    """{column: levels} for the requested columns and those holding non-numbers, and notes on the latter."""
    categories, notes = {}, []
    for name in requested:
        if name not in texts:
            raise LinregError(f"{source}: --categorical names {name!r}, which is not a feature column")
    for name, column in texts.items():
        # Text in a column of numbers is a typo to report (with its line, later);
        # a column with no number at all is categorical.
        numeric = any(_is_number(text) for text in column if text.lower() not in MISSING)
        if name in requested or not numeric:
            levels = sorted(set(column))
            if len(levels) < 2:
                kind = "categorical" if name in requested else "not numeric and, as a categorical column,"
                raise LinregError(
                    f"{source}: column {name!r} is {kind} has one level only ({levels[0]!r}); "
                    "convert it to numbers or leave it out"
                )
            if name not in requested and len(levels) == len(column):
                raise LinregError(
                    f"{source}: column {name!r} is not numeric and every row has its own value (such as "
                    f"{column[0]!r}): a name or an identifier, not a category; leave it out with --features"
                )
            categories[name] = levels
            if name not in requested:
                notes.append(
                    f"column {name!r} is not numeric, so it is treated as categorical: {len(levels)} levels, "
                    f"{levels[0]!r} the baseline (name it in --categorical to say so yourself)"
                )
    return categories, notes


def _is_number(text):
    try:
        float(text)
        return True
    except ValueError:
        return False


def encode(columns, features, categories, where=lambda row: f"row {row}"):
    """The design matrix [N, d'] and its feature names from `columns` (name ->
    numbers, or texts for a categorical column): a categorical column becomes
    one 0/1 column "name[level]" per level but the first (the baseline)."""
    blocks, names = [], []
    for name in features:
        if name in categories:
            levels, values = categories[name], np.asarray(columns[name], dtype=object)
            unseen = [k for k, value in enumerate(values) if value not in levels]
            if unseen:
                raise LinregError(
                    f"{where(unseen[0])}, column {name!r}: level {values[unseen[0]]!r} was not seen in the fit "
                    f"(its levels are {', '.join(map(repr, levels))})"
                )
            blocks += [(values == level).astype(np.float64) for level in levels[1:]]
            names += [f"{name}[{level}]" for level in levels[1:]]
        else:
            blocks.append(np.asarray(columns[name], dtype=np.float64))
            names.append(name)
    return np.column_stack(blocks), names


def load(data, target=None, features=None, missing="error", categorical=None, weights=None):
    """A checked Table from what `linreg.fit` accepts: a CSV path, a data frame
    (anything with `columns` and `to_numpy`, such as pandas'), or (x, y) arrays.
    missing: "error" (a missing value stops the fit) or "drop" (its row is left out)."""
    if missing not in MISSING_CHOICES:
        raise LinregError(f"missing must be one of {', '.join(MISSING_CHOICES)}, not {missing!r}")
    if isinstance(data, (str, Path)):
        if target is None:
            raise LinregError("target is required with a CSV file: name the column to predict")
        if weights is not None and not isinstance(weights, str):
            raise LinregError("with a CSV file, weights is the name of its weights column")
        return read_table(data, target, features, missing, categorical, weights)
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        named = isinstance(weights, str)
        if named and weights not in [str(c) for c in data.columns]:
            raise LinregError(f"the data frame has no weights column {weights!r}")
        if named and features is None:
            features = [str(c) for c in data.columns if str(c) not in (str(target), weights)]
        table = from_frame(data, target, features, missing, categorical)
        if weights is not None:
            column = data[{str(c): c for c in data.columns}[weights]] if named else weights
            table.weights, table.weights_column = _real_array(column, "weights"), weights if named else None
        check_weights(table, "the data frame")
        return table
    if isinstance(data, tuple) and len(data) == 2:
        table = from_arrays(*data, target=target, features=features, missing=missing)
        if weights is not None:
            table.weights = _real_array(weights, "weights")
        check_weights(table, "arrays")
        return table
    raise LinregError(
        f"cannot fit a {type(data).__name__}: give a CSV path, a data frame with target=, or a tuple (x, y)"
    )


# The name the intercept goes by in every mapping of coefficients.
INTERCEPT = "intercept"


def _check_feature_names(features, header, target, source):
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


def from_frame(frame, target, features=None, missing="error", categorical=None):
    labels = {str(label): label for label in frame.columns}  # names as text, to the frame's own labels
    header = list(labels)
    if target is None or str(target) not in header:
        raise LinregError(f"the data frame has no column {target!r} for target; its columns are {', '.join(header)}")
    features = [name for name in header if name != str(target)] if features is None else [str(f) for f in features]
    _check_feature_names(features, header, str(target), "the data frame")
    texts = {name: ["" if _absent(v) else str(v).strip() for v in frame[labels[name]]]
             for name in features if name in (categorical or []) or not _numeric(frame[labels[name]])}  # fmt: skip
    categories, notes = find_categories(texts, categorical or [], "the data frame")
    if not _numeric(frame[labels[str(target)]]):
        raise LinregError(f"the target column {str(target)!r} of the data frame is not numeric; convert it")
    numeric = {name: np.asarray(frame[labels[name]], dtype=np.float64) for name in features if name not in categories}
    x, names = encode({**numeric, **texts}, features, categories)
    y = np.asarray(frame[labels[str(target)]], dtype=np.float64)
    table = Table("data frame", names, str(target), x, y, None, 0, categories, features, notes)
    return _checked(table, "row", missing)


def _absent(value):
    return value is None or (isinstance(value, float) and math.isnan(value))


def from_arrays(x, y, target=None, features=None, missing="error"):
    try:
        if np.iscomplexobj(x) or np.iscomplexobj(y):
            raise TypeError
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise LinregError("x and y must be arrays of real numbers") from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise LinregError(f"x must be [N, d] and y [N], got shapes {list(x.shape)} and {list(y.shape)}")
    features = [f"x{j + 1}" for j in range(x.shape[1])] if features is None else [str(name) for name in features]
    if len(features) != x.shape[1]:
        raise LinregError(f"features names {len(features)} columns but x has {x.shape[1]}")
    return _checked(Table("arrays", features, target or "y", x, y, None), "row", missing)


def _real_array(values, what):
    try:
        if np.iscomplexobj(values):
            raise TypeError
        return np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise LinregError(f"{what} must be numbers") from None


def _numeric(values):
    try:
        np.asarray(values, dtype=np.float64)
        return True
    except (TypeError, ValueError):
        return False


def read_design(path, columns, categories):
    """The model's design matrix from a CSV with its feature `columns`
    (categorical ones coded with the fit's `categories`), for predictions."""
    header, body = read_rows(path)
    absent = [name for name in columns if name not in header]
    if absent:
        raise LinregError(f"{path} has no column {absent[0]!r}; its columns are {', '.join(header)}")
    numeric = [name for name in columns if name not in categories]
    values, lines = read_columns(path, numeric, (header, body))
    data = dict(zip(numeric, values.T))
    data.update({name: [cells[header.index(name)].strip() for _, cells in body] for name in categories})
    return encode(data, columns, categories, where=lambda row: f"{path}: line {lines[row]}")[0]


def _checked(table, unit, missing="error"):
    """Finite numbers only (rows with NaN left out if missing="drop"), then the checks every source shares."""
    values = np.column_stack([table.y, table.x])
    if missing == "drop":
        keep = ~np.isnan(values).any(axis=1)
        table.x, table.y, table.dropped = table.x[keep], table.y[keep], int(np.sum(~keep))
        values = values[keep]
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, column = bad[0]
        name = ([table.target, *table.features])[column]
        raise LinregError(
            f"{table.path}: {unit} {row}, column {name!r} is {values[row, column]}; "
            "only finite numbers can be fitted, fill it in or drop the row"
        )
    check_fittable(table)
    return table


# How far (relative to its own size) a standardized column may lie from the
# span of the columns before it and still count as "an exact combination of
# them". Rounding in a CSV of ordinary floats leaves about 1e-15; a column
# 1e-12 away from the others still carries information that float64 resolves
# to a few digits, and the report's estimated digits say how many.
COMBINATION_TOLERANCE = 1e-12


def check_fittable(table):
    path, n, d = table.path, len(table.y), len(table.features)
    if n <= d + 1:
        raise LinregError(
            f"{path} has {n} data row{'s' if n != 1 else ''} but the model has {d + 1} coefficients "
            f"(an intercept and {d} feature{'s' if d != 1 else ''}); "
            f"it needs at least {d + 2} rows to fit them and estimate their errors"
        )
    for j, name in enumerate(table.features):
        if np.all(table.x[:, j] == table.x[0, j]):
            raise LinregError(
                f"{path}: feature column {name!r} is constant ({table.x[0, j]:g} on every row); "
                "the intercept already plays that role, so leave it out with --features"
            )
    if np.all(table.y == table.y[0]):
        raise LinregError(f"{path}: target column {table.target!r} is constant; there is nothing to fit")
    from linreg.data.scaling import ScaleError, standardize

    try:
        scaled = standardize(table.x, table.y)
    except ScaleError as error:
        name = ([table.target, *table.features])[error.column]
        values = table.y if error.column == 0 else table.x[:, error.column - 1]
        raise LinregError(
            f"{path}: column {name!r}: {error.problem} (values from {values.min():.3g} to {values.max():.3g}); "
            "multiply or divide the column by a power of ten"
        ) from None
    combination = linear_combination(scaled.x)
    if combination is not None:
        j, others = combination
        names = ", ".join(repr(table.features[k]) for k in others) or "the intercept"
        raise LinregError(
            f"{path}: feature column {table.features[j]!r} is an exact linear combination of {names}, "
            "so its coefficient cannot be told apart from theirs; leave it out with --features"
        )


def linear_combination(x_standardized):
    """The first column that is a linear combination of the ones before it
    (plus a constant), as (its index, the indices it is made of), or None.

    A QR decomposition builds an orthogonal basis column by column: |R[j, j]|
    is the length of the part of column j that the columns before it cannot
    explain. The columns are centred (so the constant is already taken out)
    and scaled to length √N, so "tiny" has one meaning for all of them.
    """
    n = len(x_standardized)
    Q, R = np.linalg.qr(x_standardized)
    diagonal = np.abs(np.diag(R)) / math.sqrt(n)
    for j in np.flatnonzero(diagonal < COMBINATION_TOLERANCE):
        # Coefficients that make column j out of the columns before it.
        coefficients = np.linalg.lstsq(x_standardized[:, :j], x_standardized[:, j], rcond=None)[0]
        others = [k for k in range(j) if abs(coefficients[k]) > 1e-6]
        return int(j), others
    return None
