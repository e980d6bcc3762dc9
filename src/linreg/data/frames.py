"""Data frames and arrays as columns for the design stage.

In: a data frame (anything with `columns` and `to_numpy`, such as pandas')
or arrays x [N, d] (or [N]) and y [N]. Out: the checked Table (design.py),
or for predictions the design matrix coded as the fit coded its data. A
column whose type is numeric is taken as numbers; any other -- and always a
categorical one -- as the texts of its values, like a CSV's cells. Dates,
durations and complex numbers are refused by column.
"""
import numbers

import numpy as np
import pyarrow as pa

from linreg.data.cells import MISSING, is_number
from linreg.data.design import MAX_LEVELS, check_feature_names, coded, design
from linreg.errors import LinregError


def frame_labels(frame):
    """{column name as text: the frame's own label}; two columns of one name are refused."""
    labels = {}
    for label in frame.columns:
        if str(label) in labels:
            raise LinregError(f"the data frame has two columns named {str(label)!r}; give every column its own name")
        labels[str(label)] = label
    return labels


def from_frame(frame, target, features=None, missing="error", categorical=None, weights=None, intercept=True,
               max_levels=MAX_LEVELS, penalized=False):
    """The checked Table of a data frame's columns. `weights` names a column,
    or gives the weights themselves."""
    source, labels = "the data frame", frame_labels(frame)
    header = list(labels)
    if target is None or str(target) not in header:
        raise LinregError(f"the data frame has no column {target!r} for target; its columns are {', '.join(header)}")
    target, named = str(target), isinstance(weights, str)
    if named and (weights not in header or weights == target):
        raise LinregError(f"the data frame has no weights column {weights!r} besides the target")
    unused = (target, weights if named else None)
    features = [name for name in header if name not in unused] if features is None else [str(f) for f in features]
    check_feature_names(features, header, target, source)
    if named and weights in features:
        raise LinregError(f"the weights column {weights!r} is also a feature; leave it out of features")
    requested = [str(name) for name in categorical or []]
    used = [target, *features, *([weights] if named else [])]
    columns = {name: _column(frame[labels[name]], name, source, text=name in requested) for name in used}
    values = None if named or weights is None else real_array(weights, "weights").reshape(-1)
    return design(source, "row", np.arange(len(frame)), columns, target, features, weights if named else None,
                  missing, requested, max_levels, intercept, values, penalized=penalized)  # fmt: skip


def _column(column, name, source, text=False):
    """A frame's or an array's column as design() takes it: float64 numbers
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
    values = np.asarray(column, dtype=object)
    return pa.array([_text(value, name, source, row) for row, value in enumerate(values)], pa.string())


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


def from_arrays(x, y, target=None, features=None, missing="error", weights=None, intercept=True, penalized=False):
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
    check_feature_names(features, features, target, "arrays")
    columns = {name: _column(values, name, "arrays") for name, values in [(target, y), *zip(features, x.T)]}
    for name, values in columns.items():
        texts = values.to_pylist() if isinstance(values, pa.Array) else []
        text = next((t for t in texts if t.lower() not in MISSING and not is_number(t)), None)
        if text is not None:
            raise LinregError(
                f"arrays: column {name!r} holds the text {text!r}, but arrays hold numbers only; "
                "give a data frame to fit categorical columns"
            )
    values = None if weights is None else real_array(weights, "weights").reshape(-1)
    return design("arrays", "row", np.arange(len(y)), columns, target, features, missing=missing, intercept=intercept,
                  weight_values=values, penalized=penalized)  # fmt: skip


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


def frame_design(frame, columns, categories):
    """The model's design matrix from a data frame's feature `columns`, for predictions."""
    labels = frame_labels(frame)
    absent = [name for name in columns if name not in labels]
    if absent:
        raise LinregError(f"the data frame has no column {absent[0]!r}; the model needs {', '.join(columns)}")
    source = "the data frame"
    data = {name: _column(frame[labels[name]], name, source, text=name in categories) for name in columns}
    return coded(source, "row", np.arange(len(frame)), data, columns, categories)[0]
