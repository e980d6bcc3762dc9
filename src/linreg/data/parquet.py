"""Parquet files: their columns, row groups and checked pieces of rows.

In: a file's path, the columns to read, the Parts (row groups) of a shard.
Out: pieces of float64 columns, read with ParquetFile.iter_batches (only
the used columns; the checksums of pages written with them verified), and
the rows the rules refuse as one LinregError. Rows are numbered from 0
within each file, as pandas numbers a frame read from it.
"""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from linreg.data.cells import arrow_message, bad_weight, missing_error
from linreg.errors import LinregError

# Read column chunks through a buffer this big instead of whole (pyarrow's
# default pre_buffer=True reads every requested row group into memory before
# the first batch: a 600 MB file peaked at 700 MB).
BUFFER = 1 << 20


def _file(path):
    # Pages written with checksums (a writer's option) are verified as they are
    # read, so a damaged page is an error instead of absurd numbers. Measured
    # on a cached 1e6 x 8 float64 file: 14 ms more CPU per 64 MB, the reader's
    # pass from 20 to 33 ms; a whole fit took 0.12 s (moments) to 2.4 s (memory).
    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=BUFFER, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(path, error) from None


def _unreadable(path, error):
    return LinregError(f"{path}: not a readable Parquet file ({arrow_message(error)}); check or rewrite the file")


def metadata(path):
    try:
        return pq.read_metadata(path)
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(path, error) from None


def header(path):
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(path, error) from None
    for name in names:
        if names.count(name) > 1:
            raise LinregError(f"{path}: the column name {name!r} appears twice; give every column its own name")
    return names


def row_groups(path):
    """(row group, its bytes on disk, its first row) of each row group of the file."""
    meta, row, groups = metadata(path), 0, []
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        groups.append((g, sum(group.column(c).total_compressed_size for c in range(group.num_columns)), row))
        row += group.num_rows
    return groups


def texts(paths, names):
    """The columns of `names` that hold text (strings, or categories of
    strings) in the first file: a fit that reads the rows whole codes them
    as categories, as it does a CSV's columns of text."""
    schema = pq.read_schema(paths[0])

    def text(kind):
        kind = kind.value_type if pa.types.is_dictionary(kind) else kind
        return pa.types.is_string(kind) or pa.types.is_large_string(kind)

    return [name for name in names if text(schema.field(name).type)]


def check_numeric(paths, names):
    """That the columns `names` hold numbers in every file."""
    for path in paths:
        schema = pq.read_schema(path)
        for name in names:
            kind = schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
                raise LinregError(
                    f"{path}: column {name!r} is of type {kind}, not numbers; streamed data must be numeric "
                    "(columns of text are coded as categories only when the rows are read whole, --engine memory): convert "
                    "the column or leave it out"
                )


def pieces(parts, names, missing, weighted, rows, text=()):
    """The pieces (see batches.assemble) of the parts' rows, `rows` at a time;
    the columns `text` as pyarrow strings (a null as "null", a missing text)."""
    left = 0  # rows not yet read
    for part in parts:
        meta = metadata(part.path)
        groups = range(meta.num_row_groups) if part.row_groups is None else part.row_groups
        left += sum(meta.row_group(g).num_rows for g in groups)
    for part in parts:
        with _file(part.path) as file:
            records = file.iter_batches(batch_size=rows, columns=names, row_groups=part.row_groups, use_threads=True)
            row = part.first_row
            while True:
                try:
                    record = next(records, None)
                except (pa.ArrowException, OSError) as error:
                    raise LinregError(
                        f"{part.path}: damaged Parquet file ({arrow_message(error)}); check or rewrite the file"
                    ) from None
                if record is None:
                    break
                left -= record.num_rows
                yield *_piece(part.path, row, record, names, missing, weighted, text), max(left, 0)
                row += record.num_rows


def _piece(path, first_row, record, names, missing, weighted, text=()):
    """A piece of a record batch whose rows are numbered from `first_row`.
    Nulls and integers too long for a float64 are seen here; NaN, inf and
    weights are left to the copy, which sums the values anyway. Text
    columns are left to the design (data/design.py), nulls made "null" for it."""
    arrays = [record.column(name) for name in names]
    columns = [
        _text(array) if name in text
        else array.to_numpy(zero_copy_only=False) if array.type == pa.float64()
        else array.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        for name, array in zip(names, arrays)
    ]  # fmt: skip
    wide = [None if name in text else _wide_integers(array) for name, array in zip(names, arrays)]

    def check(start):
        return _check(path, first_row + start, [a[start:] for a in arrays], [c[start:] for c in columns],
                      [None if v is None else v[start:] for v in wide], names, missing, weighted)  # fmt: skip

    if any(array.null_count and name not in text for name, array in zip(names, arrays)) or any(
            v is not None for v in wide):
        return *check(0), None
    return columns, 0, check


def _text(array):
    """A column as pyarrow strings, a null as "null" (which the design reads
    as missing, and names so: an empty text is a value of its own here)."""
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    return pc.fill_null(array.cast(pa.string()), "null")


def _check(path, first_row, arrays, columns, wide, names, missing, weighted):
    """(columns, rows dropped) of the rows the rules accept, or the
    LinregError for the first that they refuse."""
    # Most pieces hold finite numbers only, which their sums show in one pass
    # per column (a NaN or an infinity makes a sum NaN or infinite; so does a
    # sum past float64's range, and then the masks below look closer).
    if all(isinstance(column, np.ndarray) for column in columns) and all(v is None for v in wide):
        positive = not weighted or not len(columns[-1]) or columns[-1].min() > 0
        with np.errstate(over="ignore", invalid="ignore"):
            if positive and np.isfinite(sum(float(np.sum(column)) for column in columns)):
                return columns, 0
    # Nulls became NaN; a text column's missing values are the design's to judge.
    missed = [np.isnan(column) if isinstance(column, np.ndarray) else np.zeros(len(column), bool) for column in columns]
    drop = np.logical_or.reduce(missed) if missing == "drop" else np.zeros(len(columns[0]), bool)
    problems = []  # per column: the rows with a value the rules refuse
    for j, (column, miss) in enumerate(zip(columns, missed)):
        bad = (np.isinf(column) if isinstance(column, np.ndarray) else miss) | (miss if missing == "error" else False)
        if wide[j] is not None:
            bad = bad | wide[j]
        problems.append(bad & ~drop)
    rows = np.logical_or.reduce(problems)
    if rows.any():
        r = int(np.argmax(rows))
        j = next(j for j in range(len(names)) if problems[j][r])
        where = f"{path}: row {first_row + r}, column {names[j]!r}"
        if missed[j][r]:
            what = "null" if arrays[j][r].as_py() is None else "NaN"
            raise missing_error(f"{path}: row {first_row + r}", names[j], f"missing ({what})")
        if np.isinf(columns[j][r]):
            raise LinregError(
                f"{where} is {columns[j][r]}; only finite numbers can be fitted, fill it in or remove the row"
            )
        raise LinregError(
            f"{where}: {arrays[j][r].as_py()} has more digits than a float64 keeps (whole numbers above 2**53 = "
            "9007199254740992 are rounded, so different values could look equal); "
            "subtract a common offset or rescale the column"
        )
    if weighted:
        bad = ~drop & ~(columns[-1] > 0)
        if bad.any():
            r = int(np.argmax(bad))
            raise bad_weight(f"{path}: row {first_row + r}", columns[-1][r])
    if drop.any():
        keep = ~drop
        return ([column[keep] if isinstance(column, np.ndarray) else column.filter(pa.array(keep)) for column in columns],
                int(np.count_nonzero(drop)))
    return columns, 0


def _wide_integers(array):
    """None, or for an integer column the rows whose value a float64 rounds."""
    if not pa.types.is_integer(array.type) or array.type.bit_width < 54:
        return None
    extremes = pc.min_max(array)
    low, high = extremes["min"].as_py(), extremes["max"].as_py()
    if low is None or -(2**53) < low <= high < 2**53:
        return None
    ints = pc.fill_null(array, 0).to_numpy()
    wide = np.flatnonzero((ints >= 2**53) | ((ints <= -(2**53)) if ints.dtype.kind == "i" else False))
    rounded = ints[wide].astype(np.float64)
    limit = 2.0**63 if ints.dtype.kind == "i" else 2.0**64
    fits = rounded < limit
    back = np.where(fits, rounded, 0).astype(ints.dtype)
    changed = np.zeros(len(ints), bool)
    changed[wide] = ~(fits & (back == ints[wide]))
    return changed if changed.any() else None
