"""The user's own data: a CSV file, a data frame or arrays.

A CSV is read with Python's csv module; a frame's or an array's columns are
taken as numbers when their type is numeric and as texts, like a CSV's cells,
otherwise. From there every source follows the same rules (`_design`): a
missing value -- an empty cell, NA, null, None, NaN -- stops the read or
drops its row, and is never a category; a column of text is categorical; a
date, a duration or a complex number is refused. Every problem is reported
with the file's line (a frame's or array's row) and column and what to do.
"""
import csv
import io
import math
import numbers
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
    lines: np.ndarray  # each row's line in the file (its row in a frame or arrays), for messages
    dropped: int = 0  # rows left out for missing values (missing="drop")
    # Categorical columns: {column: its levels}, the first the baseline. Such a
    # column becomes one 0/1 feature "column[level]" per other level.
    categories: dict = field(default_factory=dict)
    columns: list = None  # the feature columns as the data names them (before coding)
    notes: list = field(default_factory=list)  # what the reader decided, for the user
    weights: np.ndarray = None  # observation weights, or None
    weights_column: str = None
    unit: str = "line"  # what `lines` count: "line" (a file's) or "row"


# What counts as a missing value in a CSV cell or a text column (and NaN,
# None or pandas' NA in a frame or array).
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
MISSING_CHOICES = ("error", "drop")
# A categorical column becomes a float64 column per level but one, so its
# memory is rows x levels x 8 bytes: 100,000 levels over 120,000 rows would
# take 89 GiB. Past this many levels a column is refused before anything is
# built; max_levels (--max-levels) raises the limit.
MAX_LEVELS = 1000


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


def is_blank(cells):
    """Whether a parsed line is blank: no separator and nothing but spaces. A
    line of separators (",,") is a row whose cells are all empty: missing values."""
    return len(cells) < 2 and not "".join(cells).strip()


def split_rows(text, path, line=lambda number: number, note=""):
    """[(line number, cells), ...] of the rows of CSV `text` that are not blank.
    `line` maps the parser's line numbers to the file's; `note` ends the
    message about text that is not valid CSV."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = []
    try:
        for cells in reader:
            if not is_blank(cells):
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


def _missing(where, column, what):
    return LinregError(
        f"{where}, column {column!r} is {what}; fill it in or remove the row "
        "(linreg fit --missing drop leaves such rows out)"
    )


def _described(text):
    return "empty" if not text.strip() else f"missing ({text.strip()!r})"


def _number(path, line, column, text, unit="line"):
    text = text.strip()
    if text.lower() in MISSING:
        raise _missing(f"{path}: {unit} {line}", column, _described(text))
    try:
        value = float(text)
    except ValueError:
        raise LinregError(
            f"{path}: {unit} {line}, column {column!r}: {text!r} is not a number; correct it or remove the row"
        ) from None
    if not math.isfinite(value):
        raise LinregError(
            f"{path}: {unit} {line}, column {column!r} is {text!r}; only finite numbers can be fitted, "
            "fill it in or remove the row"
        )
    if abs(value) >= 2.0**53 and text.lstrip("+-").isdigit() and int(text) != int(value):
        raise LinregError(
            f"{path}: {unit} {line}, column {column!r}: {text} has more digits than a float64 keeps (whole "
            "numbers above 2**53 = 9007199254740992 are rounded, so different values could look equal); "
            "subtract a common offset or rescale the column"
        )
    return value


def read_table(path, target, features=None, missing="error", categorical=None, weights=None, intercept=True,
               max_levels=MAX_LEVELS):
    """Read `target` and `features` (default: every other column) from a CSV
    and check they can be fitted (see `_design`). Categorical columns are the
    ones named in `categorical` and any feature column that holds no number."""
    path = Path(path)
    header, body = read_rows(path)
    if target not in header:
        raise LinregError(f"{path} has no column {target!r} for --target; its columns are {', '.join(header)}")
    if weights is not None and (weights not in header or weights == target):
        raise LinregError(f"{path} has no column {weights!r} for --weights besides the target; its columns are {', '.join(header)}")
    features = [name for name in header if name not in (target, weights)] if features is None else list(features)
    _check_feature_names(features, header, target, str(path))
    if weights in features:
        raise LinregError(f"the weights column {weights!r} is also a feature; leave it out of --features")
    used = [target, *features, *([weights] if weights is not None else [])]
    columns = {name: [cells[header.index(name)].strip() for _, cells in body] for name in used}
    lines = np.array([line for line, _ in body])
    return _design(path, "line", lines, columns, target, features, weights, missing, categorical or [], max_levels,
                   intercept)  # fmt: skip


def _design(source, unit, positions, columns, target, features, weights=None, missing="error", requested=(),
            max_levels=MAX_LEVELS, intercept=True, weight_values=None):
    """The checked Table of `columns`: name -> texts (stripped, as a CSV's
    cells) or float64 numbers (NaN where a value is missing), for the target,
    the features and a named `weights` column; `weight_values` are unnamed
    weights. `positions` are the rows' line (or row) numbers, for messages.

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
        keep = ~np.logical_or.reduce(missed)
        if n and not keep.any():
            raise LinregError(f"{source}: every row has a missing value in the columns used; nothing is left to fit")
        if not keep.all():
            columns = {name: _kept(values, keep) for name, values in columns.items()}
            positions = positions[keep]
            weight_values = None if weight_values is None else weight_values[keep]
    texts = {name: columns[name] for name in features if isinstance(columns[name], list)}
    categories, notes = find_categories(texts, requested, source, unit, positions, max_levels)
    x, names, values = _coded(source, unit, positions, columns, features, categories)
    table = Table(source, names, target, x, values[target], positions, n - len(positions), categories, list(features),
                  notes, unit=unit)  # fmt: skip
    table.weights = values[weights] if weights is not None else weight_values
    table.weights_column = weights
    check_weights(table)
    check_fittable(table, intercept)
    return table


def _missed(values):
    """Which rows of a column (texts or numbers) hold a missing value."""
    if isinstance(values, list):
        return np.fromiter((text.lower() in MISSING for text in values), bool, len(values))
    return np.isnan(values)


def _kept(values, keep):
    return [value for value, kept in zip(values, keep) if kept] if isinstance(values, list) else values[keep]


def _numbers(source, unit, positions, columns):
    """{name: float64 array} of `columns` (texts or numbers), once every value
    is known to be a finite number; else the error of the first row with one
    that is not. Texts are read row by row, as a file is."""
    texts = [name for name, values in columns.items() if isinstance(values, list)]
    result = dict(columns)
    if texts:
        rows = zip(positions, *(columns[name] for name in texts))
        values = np.array(
            [[_number(source, row[0], name, text, unit) for name, text in zip(texts, row[1:])] for row in rows],
            dtype=np.float64,
        ).reshape(len(positions), len(texts))
        result.update(zip(texts, values.T))
    bad = [(int(k[0]), j) for j, name in enumerate(columns) if len(k := np.flatnonzero(~np.isfinite(result[name])))]
    if bad:
        k, j = min(bad)
        name = list(columns)[j]
        value, where = result[name][k], f"{source}: {unit} {positions[k]}"
        if np.isnan(value):
            raise _missing(where, name, "missing (NaN)")
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
        raise LinregError(f"{table.path}: {where}: weight {float(w[bad[0]])!r} is not a positive finite number")


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
        # Text in a column of numbers is a typo to report (with its line, later);
        # a column with no number at all is categorical.
        if name not in requested and any(_is_number(text) for text, gone in zip(column, absent) if not gone):
            continue
        if absent.any():
            k = int(np.argmax(absent))
            raise _missing(f"{source}: {unit} {positions[k]}", name, _described(column[k]))
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
            levels, values = categories[name], columns[name]
            index = {level: k for k, level in enumerate(levels)}
            codes = np.fromiter((index.get(value, -1) for value in values), np.int64, len(values))
            unseen = np.flatnonzero(codes < 0)
            if len(unseen):
                value = values[unseen[0]]
                if value.lower() in MISSING:
                    raise _missing(where(unseen[0]), name, _described(value))
                raise LinregError(
                    f"{where(unseen[0])}, column {name!r}: level {value!r} was not seen in the fit "
                    f"(its levels are {', '.join(map(repr, levels))})"
                )
            block = np.zeros((len(values), len(levels) - 1))
            rows = np.flatnonzero(codes)
            block[rows, codes[rows] - 1] = 1.0
            blocks.append(block)
            names += [f"{name}[{level}]" for level in levels[1:]]
        else:
            blocks.append(np.asarray(columns[name], dtype=np.float64))
            names.append(name)
    return np.column_stack(blocks), names


def load(data, target=None, features=None, missing="error", categorical=None, weights=None, intercept=True,
         max_levels=MAX_LEVELS):
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
        return read_table(data, target, features, missing, categorical, weights, intercept, max_levels)
    if hasattr(data, "columns") and hasattr(data, "to_numpy"):
        return from_frame(data, target, features, missing, categorical, weights, intercept, max_levels)
    if isinstance(data, tuple) and len(data) == 2:
        if categorical:
            raise LinregError(
                f"categorical names {categorical[0]!r}, but arrays hold numbers only; "
                "give a data frame to fit categorical columns"
            )
        return from_arrays(*data, target=target, features=features, missing=missing, weights=weights,
                           intercept=intercept)  # fmt: skip
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


def frame_labels(frame):
    """{column name as text: the frame's own label}; two columns of one name are refused."""
    labels = {}
    for label in frame.columns:
        if str(label) in labels:
            raise LinregError(f"the data frame has two columns named {str(label)!r}; give every column its own name")
        labels[str(label)] = label
    return labels


def from_frame(frame, target, features=None, missing="error", categorical=None, weights=None, intercept=True,
               max_levels=MAX_LEVELS):
    """The checked Table of a data frame's columns (see `_design`). `weights`
    names a column, or gives the weights themselves."""
    source, labels = "the data frame", frame_labels(frame)
    header = list(labels)
    if target is None or str(target) not in header:
        raise LinregError(f"the data frame has no column {target!r} for target; its columns are {', '.join(header)}")
    target, named = str(target), isinstance(weights, str)
    if named and (weights not in header or weights == target):
        raise LinregError(f"the data frame has no weights column {weights!r} besides the target")
    unused = (target, weights if named else None)
    features = [name for name in header if name not in unused] if features is None else [str(f) for f in features]
    _check_feature_names(features, header, target, source)
    if named and weights in features:
        raise LinregError(f"the weights column {weights!r} is also a feature; leave it out of features")
    requested = [str(name) for name in categorical or []]
    used = [target, *features, *([weights] if named else [])]
    columns = {name: _column(frame[labels[name]], name, source, text=name in requested) for name in used}
    values = None if named or weights is None else real_array(weights, "weights").reshape(-1)
    return _design(source, "row", np.arange(len(frame)), columns, target, features, weights if named else None,
                   missing, requested, max_levels, intercept, values)  # fmt: skip


def _column(column, name, source, text=False):
    """A frame's or an array's column as `_design` takes it: float64 numbers
    (NaN where one is missing) when its type is numeric, else -- and always
    for a categorical column (`text`), whose levels they are -- the texts of
    its values, as a CSV would hold them. Dates, durations and complex
    numbers are neither numbers to fit nor levels: refused."""
    dtype = getattr(column, "dtype", None)
    kind = getattr(dtype, "kind", None)  # pandas' own types (nullable, tz-aware) have one as well
    if not isinstance(kind, str):
        dtype = np.asarray(column).dtype
        kind = dtype.kind
    if kind in "Mm":
        raise LinregError(
            f"{source}: column {name!r} holds {'dates or times' if kind == 'M' else 'durations'} ({dtype}), "
            "not numbers; convert it to numbers (such as days since a start) or leave it out"
        )
    if kind == "c":
        raise LinregError(f"{source}: column {name!r} holds complex numbers; only real numbers can be fitted")
    if kind in "biuf" and not text:
        return np.asarray(column, dtype=np.float64)  # pandas' NA becomes NaN
    return [_text(value, name, source, row) for row, value in enumerate(np.asarray(column, dtype=object))]


def _text(value, name, source, row):
    """A value of a frame or an array as a CSV cell would hold it."""
    if isinstance(value, str):
        return value.strip()
    if _absent(value):
        text = str(value)
        return text if text.lower() in MISSING else "NA"
    # Decimal is a Number but not a Real (nor a Complex), and converts as well.
    if isinstance(value, numbers.Real) or (isinstance(value, numbers.Number) and not isinstance(value, numbers.Complex)):
        return str(value)
    raise LinregError(
        f"{source}: row {row}, column {name!r} holds {type(value).__name__} {str(value)[:40]!r}, neither a number "
        "nor text; convert the column or leave it out"
    )


def _absent(value):
    """None, NaN, or pandas' NA or NaT (known by their type's name: pandas need not be imported)."""
    if value is None or (isinstance(value, numbers.Real) and value != value):
        return True
    return type(value).__name__ in ("NAType", "NaTType")


def from_arrays(x, y, target=None, features=None, missing="error", weights=None, intercept=True):
    """The checked Table of arrays x [N, d] (or [N]) and y [N]: numbers only,
    where None or NaN is a missing value."""
    try:
        x, y = np.asarray(x), np.asarray(y)
    except ValueError:  # rows of different lengths
        raise LinregError("x and y must be arrays of real numbers") from None
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or y.ndim != 1 or len(x) != len(y):
        raise LinregError(f"x must be [N, d] and y [N], got shapes {list(x.shape)} and {list(y.shape)}")
    target = "y" if target is None else str(target)
    features = [f"x{j + 1}" for j in range(x.shape[1])] if features is None else [str(name) for name in features]
    if len(features) != x.shape[1]:
        raise LinregError(f"features names {len(features)} columns but x has {x.shape[1]}")
    _check_feature_names(features, features, target, "arrays")
    columns = {name: _column(values, name, "arrays") for name, values in [(target, y), *zip(features, x.T)]}
    for name, values in columns.items():
        texts = values if isinstance(values, list) else []
        text = next((t for t in texts if t.lower() not in MISSING and not _is_number(t)), None)
        if text is not None:
            raise LinregError(
                f"arrays: column {name!r} holds the text {text!r}, but arrays hold numbers only; "
                "give a data frame to fit categorical columns"
            )
    values = None if weights is None else real_array(weights, "weights").reshape(-1)
    return _design("arrays", "row", np.arange(len(y)), columns, target, features, missing=missing, intercept=intercept,
                   weight_values=values)  # fmt: skip


def real_array(values, what):
    """`values` as float64, when they are real numbers: text, dates, durations
    and complex numbers, which numpy would convert (or cut), are refused."""
    try:
        array = np.asarray(values)
        if array.dtype.kind not in "biufO":
            raise TypeError
        return np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError):
        raise LinregError(f"{what} must be real numbers") from None


def read_design(path, columns, categories):
    """The model's design matrix from a CSV with its feature `columns`
    (categorical ones coded with the fit's `categories`), for predictions."""
    header, body = read_rows(path)
    absent = [name for name in columns if name not in header]
    if absent:
        raise LinregError(f"{path} has no column {absent[0]!r}; its columns are {', '.join(header)}")
    texts = {name: [cells[header.index(name)].strip() for _, cells in body] for name in columns}
    return _coded(path, "line", np.array([line for line, _ in body]), texts, columns, categories)[0]


def frame_design(frame, columns, categories):
    """The model's design matrix from a data frame's feature `columns`, for predictions."""
    labels = frame_labels(frame)
    absent = [name for name in columns if name not in labels]
    if absent:
        raise LinregError(f"the data frame has no column {absent[0]!r}; the model needs {', '.join(columns)}")
    source = "the data frame"
    data = {name: _column(frame[labels[name]], name, source, text=name in categories) for name in columns}
    return _coded(source, "row", np.arange(len(frame)), data, columns, categories)[0]


def _coded(source, unit, positions, columns, features, categories):
    """(x, its names, numbers): the design matrix of `features` from `columns`,
    the categorical ones coded with `categories`, and every other column of
    `columns` as checked float64 numbers."""
    checked = _numbers(source, unit, positions, {name: values for name, values in columns.items() if name not in categories})
    x, names = encode({**columns, **checked}, features, categories, where=lambda k: f"{source}: {unit} {positions[k]}")
    return x, names, checked


# How far (relative to its own size) a standardized column may lie from the
# span of the columns before it and still count as "an exact combination of
# them". Rounding in a CSV of ordinary floats leaves about 1e-15; a column
# 1e-12 away from the others still carries information that float64 resolves
# to a few digits, and the report's estimated digits say how many.
COMBINATION_TOLERANCE = 1e-12


def check_fittable(table, intercept=True):
    """More rows than coefficients, no constant feature beside the intercept
    (without one a constant column is fitted like any other), no feature that
    is a combination of others, columns that float64 can scale."""
    path, n, d = table.path, len(table.y), len(table.features)
    if n <= d + intercept:
        from linreg.data.moments import describe_coefficients

        raise LinregError(f"{path} has {n} data row{'s' if n != 1 else ''} but {describe_coefficients(d, intercept)}; "
                          f"it needs at least {d + intercept + 1} rows to fit them and estimate their errors")
    for j, name in enumerate(table.features if intercept else []):
        if np.all(table.x[:, j] == table.x[0, j]):
            raise LinregError(
                f"{path}: feature column {name!r} is constant ({table.x[0, j]:g} on every row); "
                "the intercept already plays that role, so leave it out with --features"
            )
    if np.all(table.y == table.y[0]):
        raise LinregError(f"{path}: target column {table.target!r} is constant; there is nothing to fit")
    from linreg.data.scaling import ScaleError, standardize

    try:
        scaled = standardize(table.x, table.y, intercept=intercept)
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
    (plus a constant, when they are centred), as (its index, the indices it is
    made of), or None.

    A QR decomposition builds an orthogonal basis column by column: |R[j, j]|
    is the length of the part of column j that the columns before it cannot
    explain. Standardized columns are centred (so the constant is already
    taken out; not without an intercept) and scaled to length √N, so "tiny"
    has one meaning for all of them.
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
