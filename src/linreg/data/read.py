"""The read stage: the rows of a file, folder, glob, standard input, data frame
or arrays, read once and checked.

In: what the user gave (a path, a folder, a glob pattern, "-" for standard
input, a data frame, a tuple (x, y)) and the columns to use. Out: for a fit
in memory, design.py's Table; for the streamed engines, Batches of a
shard's rows (batches.py); for predictions, the model's design matrix.
Every CSV is read by pyarrow (csv_reader.py), every Parquet file by
ParquetFile (parquet.py); a single CSV's text columns become categorical.
"""
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from linreg.data import csv_reader, parquet
from linreg.data.batches import BATCH_VALUES, assemble, prefetch
from linreg.data.cells import everything_dropped
from linreg.data.design import MAX_LEVELS, Table, check_feature_names, coded, design
from linreg.data.frames import from_arrays, from_frame
from linreg.data.sources import open_source, shard_parts
from linreg.errors import LinregError
from linreg.rowwise import Filling


def read_table(data, source, target, features, missing, categorical, weights, intercept=True, max_levels=MAX_LEVELS,
               penalized=False, column_major=False):
    """The checked Table of what a fit holds in memory. `source` is the
    plan's Source of the files (None for standard input, frames and arrays);
    missing: "error" (a missing value stops the fit) or "drop" (its row is
    left out); `penalized`: more features than rows are allowed;
    `column_major`: a file's numeric features come as a Fortran-order x
    (for the statistics, which go column by column; scaling.scale_table
    makes it row-major if QR on the rows is to run)."""
    categorical = list(categorical or [])
    if source is None and isinstance(data, (str, Path)):  # standard input (plan.py checked target and weights)
        source = open_source(data, stdin=True)
    if source is None:
        if hasattr(data, "columns") and hasattr(data, "to_numpy"):
            return from_frame(data, target, features, missing, categorical, weights, intercept, max_levels, penalized)
        if isinstance(data, tuple) and len(data) == 2:
            if categorical:
                raise LinregError(
                    f"categorical names {categorical[0]!r}, but arrays hold numbers only; "
                    "give a data frame to fit categorical columns"
                )
            return from_arrays(*data, target=target, features=features, missing=missing, weights=weights,
                               intercept=intercept, penalized=penalized)  # fmt: skip
        raise LinregError(
            f"cannot fit a {type(data).__name__}: give a CSV path, a data frame with target=, or a tuple (x, y)"
        )
    single_csv = source.format == "csv" and len(source.paths) == 1
    if categorical and not (single_csv or source.format == "parquet"):
        raise LinregError(f"{source.describe()}: one-hot coding needs a single CSV file or Parquet files; code "
                          f"{categorical[0]!r} in the files")  # fmt: skip
    features = check_columns(source, target, features, weights, texts=True)
    names = [target, *features, *([weights] if weights is not None else [])]
    # A feature of a single CSV that holds no number is categorical (design.py), as is a Parquet column of text.
    switchable = [name for name in features if name not in categorical] if single_csv else ()
    text = [*categorical, *parquet.texts(source.paths, features)] if source.format == "parquet" else categorical
    # Numeric features go straight into the design matrix as they are read.
    stack = features if features and not categorical and not text else ()
    columns, lines, dropped, x = _whole(source, names, missing, weights is not None, text, switchable, stack,
                                        column_major)
    # (A Parquet piece's numbers were checked as it was read, parquet._check; a CSV's are checked here.)
    return design(source.describe(), "line" if source.format == "csv" else "row", lines, columns, target, features,
                  weights, missing, categorical, max_levels, intercept, dropped=dropped, penalized=penalized,
                  x=x, x_finite=source.format == "parquet")  # fmt: skip


def read_design(data, columns, categories):
    """The model's design matrix [rows, d] from the feature `columns` of a
    file, folder, glob or standard input ("-"), categorical ones coded with
    the fit's `categories`, for predictions."""
    source = open_source(data, stdin=True)
    absent = [name for name in columns if name not in source.header]
    if absent:
        raise LinregError(f"{source.describe()} has no column {absent[0]!r}; its columns are {', '.join(source.header)}")
    text = [name for name in columns if name in categories]
    if text and not (source.format == "csv" and len(source.paths) == 1 or source.format == "parquet"):
        raise LinregError(
            f"{source.describe()}: the model codes {text[0]!r} as categories, which are read from "
            "a single CSV file or Parquet files only; give one"
        )
    if source.format == "parquet":
        parquet.check_numeric(source.paths, [name for name in columns if name not in text])
    values, lines, _, _ = _whole(source, columns, "error", False, text)
    if len(lines) == 0:
        raise LinregError(f"{source.describe()} has no data rows; give at least one row to predict")
    return coded(source.describe(), "line" if source.format == "csv" else "row", lines, values, columns, categories)[0]


def _whole(source, names, missing, weighted, text=(), switchable=(), stack=(), column_major=False):
    """({name: float64 numbers or pyarrow texts}, each row's line or row, rows
    dropped, x) of every row of the source. The columns named in `stack`
    come as x, the row-major (or `column_major`) matrix of them
    (rowwise.Filling: each piece written in place as it is read), and not in
    the dict; x is None, and they are in the dict, if there are none or one
    of them turned out to hold text."""
    parts = shard_parts(source, 1)[0]
    if source.format == "csv":
        pieces = csv_reader.pieces(source, parts, names, missing, weighted, text, switchable)
    else:
        pieces = parquet.pieces(parts, names, missing, weighted, max(1, BATCH_VALUES // len(names)), text)
    found, chunks, rows, dropped = [[] for _ in names], [], [], 0
    stacked = [names.index(name) for name in stack]
    filling, seen, done = Filling(len(stacked), column_major) if stacked else None, 0, 0  # the CSV bytes, rows read
    for columns, dropped_here, check, most, *chunk in pieces:
        if check is not None:  # a Parquet piece not looked at yet
            columns, more = check(0)
            dropped_here += more
        dropped += dropped_here
        if filling is not None and any(isinstance(columns[j], pa.Array) for j in stacked):
            for j, values in zip(stacked, filling.matrix().T):  # text after numbers: back to columns
                found[j].append(values.copy())
            filling = None
        done += len(columns[0])
        if filling is not None:
            if chunk:  # `most` is the bytes left over the header's width: rows of the size read so far
                seen += chunk[0].length
                most = math.ceil(most * len(source.header) * done / seen * 1.02) + 64 if done else most
            filling.add([columns[j] for j in stacked], done + most)
        for k, (column, piece) in enumerate(zip(found, columns)):
            if filling is None or k not in stacked:
                column.append(piece)
        chunks += chunk
        rows.append(len(columns[0]))
    if done == 0 and dropped:
        raise everything_dropped(source.describe())
    columns = {}
    for name, column in zip(names, found):
        if filling is None or name not in stack:
            columns[name] = _joined(column)
        column.clear()  # its pieces' memory goes before the next column is joined
    lines = csv_reader.Lines(chunks, rows) if source.format == "csv" else np.arange(done)
    return columns, lines, dropped, None if filling is None else filling.matrix()


def _joined(pieces):
    """One column of its pieces: text if any piece is text (a column of a CSV
    that turned out to hold text after rows of numbers), else numbers."""
    if any(isinstance(piece, pa.Array) for piece in pieces):
        return pa.concat_arrays([piece if isinstance(piece, pa.Array) else pa.array(piece, pa.float64()).cast(pa.string())
                                 for piece in pieces])  # fmt: skip
    return np.concatenate(pieces) if pieces else np.empty(0)


def cluster_groups(cov, data, source, table):
    """`cov` with cluster groups given as a column's name replaced by that
    column's labels, one per row of the table, read from the file or frame."""
    name, kwds = cov
    column = kwds.get("groups")
    if not isinstance(column, str):
        return cov
    if table.dropped:  # the labels of the rows kept would have to be matched line by line
        raise LinregError(f"cluster groups from the column {column!r} need every row, and the rows with missing "
                          f"values ({table.dropped}) were left out; fill the gaps, or give the groups as one label "
                          "per row kept")
    if getattr(table, "again", None) is not None:  # streamed: read with the rows in the pass after training
        return name, {**kwds, "column": column}
    if source is None:  # a data frame (plan.py checked the column)
        labels = np.asarray(data[column])
    elif source.format == "csv":  # read as text, as the reader reads a categorical column: any labels will do
        labels = _whole(source, [column], "error", False, [column])[0][column]
    else:  # Parquet keeps its labels' types; the files in the order the rows were read
        import pyarrow.parquet as pq

        labels = pa.concat_arrays([chunk for path in source.paths for chunk in pq.read_table(path, columns=[column])
                                   .column(0).chunks])
    return name, {**kwds, "groups": labels, "column": column}


def check_columns(source, target, features=None, weights=None, texts=False):
    """The feature names (default: every column but the target and weights),
    checked; for Parquet also that every used column holds numbers in every
    file (`texts`: but features of text, which a whole read codes)."""
    where, header = source.describe(), source.header
    if target not in header:
        raise LinregError(f"{where} has no column {target!r} for --target; its columns are {', '.join(header)}")
    if weights is not None and (weights not in header or weights == target):
        raise LinregError(
            f"{where} has no column {weights!r} for --weights besides the target; its columns are {', '.join(header)}"
        )
    features = [name for name in header if name not in (target, weights)] if features is None else list(features)
    check_feature_names(features, header, target, where)
    if weights in features:
        raise LinregError(f"the weights column {weights!r} is also a feature; leave it out of --features")
    if source.format == "parquet":
        text = parquet.texts(source.paths, features) if texts else []
        parquet.check_numeric(source.paths, [target, *(name for name in features if name not in text),
                                             *([weights] if weights is not None else [])])
    return features


def batches(source, target, features=None, weights=None, missing="error", shard=0, shards=1, batch_rows=None):
    """The rows of shard `shard` of `shards` as Batches of at most `batch_rows`
    rows (default: about 64 MiB of values), numbers only, checked. The
    columns are checked now, the rows while they are read.

    Every batch but a shard's last has exactly `batch_rows` rows. A shard with
    no rows yields nothing; one whose rows were all dropped yields one batch
    of no rows, to carry its `dropped` count (with shards=1 that is an error:
    nothing is left to fit)."""
    source = open_source(source)
    if not isinstance(shards, int) or shards < 1 or not isinstance(shard, int) or not 0 <= shard < shards:
        raise LinregError(f"shard must be one of 0 .. shards - 1, got shard={shard!r}, shards={shards!r}")
    if batch_rows is not None and (not isinstance(batch_rows, int) or batch_rows < 1):
        raise LinregError(f"batch_rows must be a whole number of at least 1, not {batch_rows!r}")
    features = check_columns(source, target, features, weights)
    parts = shard_parts(source, shards)[shard]
    # The target first: the rules check it before the features on every row.
    names = [target, *features, *([weights] if weights is not None else [])]
    batch_rows = batch_rows or max(1, BATCH_VALUES // (len(features) + 1))
    weighted = weights is not None
    if source.format == "csv":
        pieces = csv_reader.pieces(source, parts, names, missing, weighted)
    else:
        # Values per Parquet piece: as many as a batch holds, up to BATCH_VALUES.
        # pyarrow's iter_batches costs a fifth more CPU time in pieces of 16 MiB
        # than of 64 MiB, so the memory saved is not worth it.
        rows = max(1, min(batch_rows, BATCH_VALUES // len(names)))
        pieces = prefetch(parquet.pieces(parts, names, missing, weighted, rows))
    everything = source.describe() if shards == 1 else None
    return assemble(pieces, len(features), weighted, batch_rows, everything)


# --- the streamed engines: one pass gathers the statistics ------------------------


@dataclass
class Reading:
    """How the columns are read: the same for the first pass and every later one."""

    target: object
    features: object
    weights: object
    missing: str
    intercept: bool
    categorical: object
    max_levels: int
    batch_rows: object
    formula: object = None  # data/formula.py's parsed Formula, or None


def read_moments(plan, reading):
    """(table, scaled) from one streamed pass: the statistics, checked, as
    pseudo-rows; for engine stream past MAX_MOMENTS_FEATURES features, only
    the means and spreads (data/moments.py, `problem`)."""
    from linreg.data import moments as statistics
    from linreg.engine.streamed import gather_moments
    from linreg.plan import MAX_MOMENTS_FEATURES

    source, r = plan.source, reading
    if r.formula is not None:
        from linreg.data import formula_stream

        return formula_stream.read_moments(plan, r)
    features = check_columns(source, r.target, r.features, r.weights)
    diagonal = plan.engine == "stream" and len(features) > MAX_MOMENTS_FEATURES
    moments, dropped = gather_moments(source, r.target, features, r.weights, r.missing, plan.cluster, r.batch_rows,
                                      diagonal)  # fmt: skip
    if moments.rows == 0 and dropped:
        raise everything_dropped(source.describe())
    scaled = statistics.problem(moments, features, r.target, r.intercept, r.weights is not None, source.describe())
    table = Table(source.describe(), features, r.target, None, None, None, dropped, columns=features,
                  weights_column=r.weights)  # fmt: skip
    table.log_weights = moments.log_weights if r.weights is not None else None
    table.again = Again(plan, r, features)
    return table, scaled


def largest_curvature(plan, reading, table, scaled):
    """λ_max of the Hessian by passes over the files (engine stream past MAX_MOMENTS_FEATURES)."""
    from linreg.engine.streamed import largest_curvature as lanczos

    r = reading
    return lanczos(plan.source, r.target, table.features, r.weights, r.missing, scaled, plan.cluster, r.batch_rows)


class Again:
    """A streamed fit's files read once more after training (a robust
    covariance's pass: its residuals need the coefficients), this worker's
    share of them, with the workers' `cluster` (engine/cluster.py) to combine
    what each gathered."""

    def __init__(self, plan, reading, features, designed=None):
        self.source, self.cluster, self.reading, self.features = plan.source, plan.cluster, reading, features
        self.designed = designed  # a formula's batches (data/formula_stream.py), instead of the columns'

    def batches(self, labels=None):
        """(Batch, its rows' values of the column `labels`, or None) in file
        order, checking in with the other workers as the first pass did."""
        from linreg.engine.streamed import my_batches

        r = self.reading
        batches = self.designed() if self.designed else my_batches(self.source, r.target, self.features, r.weights,
                                                                   r.missing, self.cluster, r.batch_rows)
        if labels is None:
            yield from ((batch, None) for batch in batches)
            return
        parts = shard_parts(self.source, self.cluster.size)[self.cluster.rank]
        column = _Column(_labels(self.source, parts, labels))
        for batch in batches:
            yield batch, column.take(len(batch.y))


def _labels(source, parts, name):
    """The column `name` of the parts' rows as pyarrow arrays, in file order,
    as they are (Parquet) or as text (CSV): labels, whatever their type."""
    if source.format == "csv":
        for columns, *_ in csv_reader.pieces(source, parts, [name], "error", False, [name]):
            yield pa.array(columns[0]) if isinstance(columns[0], np.ndarray) else columns[0]
        return
    import pyarrow.parquet as pq

    for part in parts:
        with pq.ParquetFile(part.path) as file:
            for record in file.iter_batches(columns=[name], row_groups=part.row_groups):
                yield record.column(0)


class _Column:
    """A column read in pieces of any sizes, handed out `take(m)` rows at a time."""

    def __init__(self, pieces):
        self.pieces, self.left = pieces, pa.array([], pa.null())

    def take(self, m):
        taken = [self.left]
        have = len(self.left)
        while have < m:
            taken.append(next(self.pieces))
            have += len(taken[-1])
        joined = pa.concat_arrays([piece for piece in taken if len(piece)]) if have else self.left
        self.left = joined[m:]
        return joined[:m]
