"""Data larger than memory: CSV or Parquet files read in bounded batches.

table.py reads a whole CSV into Python lists; this module never holds more
than a batch (and the few pieces read ahead of it), so a file of any size can
be fitted, and several processes can each read their own share of it.

A source is one file, a folder of files or a glob pattern; every file must
have the same columns. The checks are table.py's wherever they can be made
row by row, with the same one-line messages (file, line or row, column, what
to do). What cannot be made while streaming is left to the caller: a constant
column or a feature that is a combination of others needs the whole data.

CSV is cut into chunks of whole lines by this module and each chunk is parsed
by pyarrow on a pool of threads (pyarrow's own streaming reader, open_csv,
parses one block at a time: it took 1.7 times as long on two cores, and it
cannot say where in the file a failing block starts). Knowing where each chunk
starts is what makes exact messages cheap: clean chunks never leave pyarrow
and numpy; a chunk where anything looks off (a cell that is not a number, a
missing value to report, inf, a whole number too long for a float64, a row
with the wrong number of cells, an odd number of quotes) is read again from
its bytes with Python's csv module and table.py's rules, so the outcome and
the message are table.py's, line number included. The line number of a
chunk's first line is counted only then, from the start of the file.

Line numbers count one row per line, as table.py does. A quoted value that
holds a line break is read correctly inside a chunk, but chunks and shards are
cut at line breaks without knowing about quotes; a cut inside a quoted value
leaves an odd number of quotes in a chunk, which sends it to the csv module,
which reports "unexpected end of data". So such files give an error or a
correct result, never silently wrong rows; they are not supported.

Parquet is read with ParquetFile.iter_batches, only the used columns, and the
checksums of pages written with them are verified. Rows are numbered from 0
within each file, as pandas numbers a frame read from it.
"""
import bisect
import csv
import glob
import io
import itertools
import os
import queue
import stat
import threading
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from linreg.data.table import (
    MISSING, MISSING_CHOICES, _check_feature_names, _missing, _number, check_header, is_blank, split_rows,
)
from linreg.errors import LinregError

# A batch holds about 64 MiB of float64 values: big enough that the per-batch
# work in Python is noise, small enough to leave room for the training step.
BATCH_VALUES = 8 << 20
# Bytes of CSV per chunk. Small chunks keep the parsed values in the CPU
# caches and the pool busy; chunks of 64 MiB took 2.7 times as long.
CSV_CHUNK = 4 << 20
# A header line longer than this is not a CSV header.
HEADER_LIMIT = 16 << 20
# Parquet: read column chunks through a buffer this big instead of whole
# (pyarrow's default pre_buffer=True reads every requested row group into
# memory before the first batch: a 600 MB file peaked at 700 MB).
PARQUET_BUFFER = 1 << 20

CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")

# pyarrow compares null texts exactly, table.py case-insensitively: list every
# spelling. Its own default list would also take "#N/A" or "-nan" as missing.
NULL_TEXTS = sorted(
    {"".join(letters) for word in MISSING for letters in itertools.product(*({c.lower(), c.upper()} for c in word))}
)
# Bytes a blank line (table.is_blank: spaces, at most one cell) is made of. A
# comma makes a row, of empty cells if nothing else: missing values.
_BLANK_BYTES = b" \t\r\n\"\x0b\x0c"


@dataclass
class Source:
    """The files to read, all of one format and with the same columns."""

    paths: list  # pathlib.Path, sorted by name
    format: str  # "csv" or "parquet"
    header: list  # column names, the same in every file
    bytes: int  # total size of the files on disk
    origin: str = None  # the folder or pattern given (None for one file), for messages
    starts: list = None  # csv: the byte where each file's data begins, after its header

    def describe(self):
        if self.origin is None:
            return str(self.paths[0])
        n = len(self.paths)
        return f"{self.origin} ({n} {self.format} file{'s' if n != 1 else ''})"


@dataclass(frozen=True)
class Part:
    """What one shard reads of one file: a byte range of whole lines (CSV) or
    some row groups (Parquet; None for all of them)."""

    path: Path
    start: int = 0
    end: int = 0
    row_groups: tuple = None
    first_row: int = 0  # Parquet: the file's row number of the part's first row
    bytes: int = 0


@dataclass
class Batch:
    x: np.ndarray  # float64 [rows, d], features in the order asked; column-major (or a view of such)
    y: np.ndarray  # float64 [rows]
    w: np.ndarray = None  # observation weights [rows], or None
    dropped: int = 0  # rows left out for missing values (missing="drop") since the batch before


# --- opening ---------------------------------------------------------------


def open_source(data):
    """The Source for `data`: a file, a folder (its *.csv, *.parquet, *.pq; not
    its subfolders, hidden files or names starting with "_", such as Spark's
    _SUCCESS) or a glob pattern; every problem found on the way is a LinregError."""
    if isinstance(data, Source):
        return data
    if not isinstance(data, (str, os.PathLike)):
        raise LinregError(f"cannot stream a {type(data).__name__}: give a file, a folder or a glob pattern")
    text = os.fspath(data)
    if text == "-":
        raise LinregError("standard input cannot be streamed; save the data to a file and give its path")
    path = Path(text)
    origin = None
    if path.is_dir():
        origin = text
        paths = [p for p in path.iterdir() if _visible(p) and p.suffix.lower() in (".csv", *PARQUET_SUFFIXES)]
        paths = [p for p in paths if not p.is_dir()]
        if not paths:
            raise LinregError(
                f"{text} is a folder with no .csv, .parquet or .pq files in it; give a folder of data files"
            )
    elif not os.path.lexists(text) and any(c in text for c in "*?["):
        origin = text
        paths = [Path(p) for p in glob.glob(text, recursive=True)]
        paths = [p for p in paths if _visible(p) and not p.is_dir()]
        if not paths:
            raise LinregError(f"{text}: no file matches this pattern")
    else:
        paths = [path]
    paths.sort(key=str)
    formats = [_format(p) for p in paths]
    if len(set(formats)) > 1:
        a = paths[formats.index("csv")]
        b = paths[formats.index("parquet")]
        raise LinregError(
            f"{origin}: mixes CSV and Parquet files ({a} and {b}); read one format at a time "
            "(a pattern such as *.parquet picks them)"
        )
    fmt = formats[0]
    if fmt == "csv":
        heads = [_csv_header(p) for p in paths]
        headers, starts = [h for h, _ in heads], [s for _, s in heads]
    else:
        headers, starts = [_parquet_header(p) for p in paths], [0] * len(paths)
    for p, header in zip(paths[1:], headers[1:]):
        _same_columns(paths[0], headers[0], p, header)
    size = sum(p.stat().st_size for p in paths)
    return Source(paths, fmt, headers[0], size, origin, starts)


def _visible(path):
    return not path.name.startswith((".", "_"))


def _format(path):
    """"csv" or "parquet" from the name, or from the first bytes; checks the file can be read."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise LinregError(f"{path}: no such file") from None
    except OSError as error:
        raise LinregError(f"cannot read {path}: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise LinregError(f"{path} is a folder inside the data; give the data files themselves")
    if not stat.S_ISREG(mode):
        # A FIFO with no writer would block forever; a device could be endless.
        raise LinregError(f"{path} is not a regular file; give a CSV or Parquet file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as error:
        raise LinregError(f"cannot read {path}: {error.strerror}") from None
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    return "parquet" if magic == b"PAR1" else "csv"


def _same_columns(first, header, path, other):
    if other == header:
        return
    k = next((k for k, (a, b) in enumerate(zip(header, other)) if a != b), min(len(header), len(other)))
    if k < len(header) and k < len(other):
        difference = f"its column {k + 1} is {other[k]!r} where {first} has {header[k]!r}"
    elif k < len(header):
        difference = f"it has {len(other)} columns, {first} has {len(header)} (the next is {header[k]!r})"
    else:
        difference = f"it has {len(other)} columns, {first} has {len(header)} (the first extra is {other[k]!r})"
    raise LinregError(
        f"{path}: its columns differ from those of {first}: {difference}; "
        "every file must have the same columns in the same order"
    )


def _summary(error):
    """pyarrow's message on one line, without its C++ source locations."""
    lines = [line for line in str(error).splitlines() if line.strip() and not line.lstrip().startswith("/")]
    return " ".join(" ".join(lines).split())[:300] or type(error).__name__


def _parquet_file(path):
    # Pages written with checksums (a writer's option) are verified as they are
    # read, so a damaged page is an error instead of absurd numbers. Measured
    # on a cached 1e6 x 8 float64 file: 14 ms more CPU per 64 MB, the reader's
    # pass from 20 to 33 ms; a whole fit took 0.12 s (moments) to 2.4 s (memory).
    try:
        return pq.ParquetFile(path, pre_buffer=False, buffer_size=PARQUET_BUFFER, page_checksum_verification=True)
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(path, error) from None


def _unreadable(path, error):
    return LinregError(f"{path}: not a readable Parquet file ({_summary(error)}); check or rewrite the file")


def _metadata(path):
    try:
        return pq.read_metadata(path)
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(path, error) from None


def _parquet_header(path):
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError) as error:
        raise _unreadable(path, error) from None
    for name in names:
        if names.count(name) > 1:
            raise LinregError(f"{path}: the column name {name!r} appears twice; give every column its own name")
    return names


def _decode(path, raw, line):
    try:
        return raw.decode("utf-8-sig" if line == 1 else "utf-8")
    except UnicodeDecodeError as error:
        raise LinregError(
            f"{path}: line {line} is not valid UTF-8 (byte 0x{raw[error.start]:02x}); "
            "save the file as UTF-8 and try again"
        ) from None


# Files are cut into pieces at line ends, so a quoted value may not span lines.
NO_QUOTED_LINE_BREAKS = "; a line break inside a quoted value is not supported when streaming"


def _cells(path, line, text):
    """The cells of one line of text, with table.py's reading of it."""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as error:
        raise LinregError(f"{path}: line {line}: not valid CSV ({error}){NO_QUOTED_LINE_BREAKS}") from None
    if len(rows) > 1:
        raise LinregError(
            f"{path}: line {line} holds a carriage return (\\r) that does not end it; lines must end in \\n or "
            "\\r\\n: save the file with ordinary line ends"
        )
    return rows[0] if rows else []


def _csv_header(path):
    """(column names, byte where the data begins) with read_rows' checks of the header."""
    with open(path, "rb") as f:
        line = offset = 0
        while True:
            raw = f.readline(HEADER_LIMIT)
            if not raw:
                raise LinregError(f"{path} is empty; expected a header row with column names, then rows of numbers")
            line += 1
            offset += len(raw)
            if len(raw) == HEADER_LIMIT and not raw.endswith(b"\n"):
                raise LinregError(f"{path}: line {line} is over {HEADER_LIMIT >> 20} MiB long; is it a CSV file?")
            cells = _cells(path, line, _decode(path, raw, line))
            if not is_blank(cells):
                break
        after = f.read(1 << 16)
    lines = after.decode("utf-8", "replace").splitlines()[:4]
    header = check_header(path, line, cells, [row[0] for row in csv.reader(lines[:3]) if row])
    if len(after) < 1 << 16 and not after.translate(None, _BLANK_BYTES):
        raise LinregError(f"{path} has a header but no data rows; add at least one row of numbers")
    return header, offset


# --- columns ---------------------------------------------------------------


def check_columns(source, target, features=None, weights=None):
    """The feature names (default: every column but the target and weights),
    checked as table.read_table checks them; for Parquet also that every used
    column holds numbers in every file."""
    where, header = source.describe(), source.header
    if target not in header:
        raise LinregError(f"{where} has no column {target!r} for --target; its columns are {', '.join(header)}")
    if weights is not None and (weights not in header or weights == target):
        raise LinregError(
            f"{where} has no column {weights!r} for --weights besides the target; its columns are {', '.join(header)}"
        )
    features = [name for name in header if name not in (target, weights)] if features is None else list(features)
    _check_feature_names(features, header, target, where)
    if weights in features:
        raise LinregError(f"the weights column {weights!r} is also a feature; leave it out of --features")
    _check_numeric(source, [target, *features, *([weights] if weights is not None else [])])
    return features


def _check_numeric(source, names):
    """For Parquet: that the columns `names` hold numbers in every file (a
    CSV's cells are checked as they are read)."""
    if source.format != "parquet":
        return
    for path in source.paths:
        schema = pq.read_schema(path)
        for name in names:
            kind = schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)):
                raise LinregError(
                    f"{path}: column {name!r} is of type {kind}, not numbers; streamed data must be numeric "
                    "(categories are coded only when a CSV is read whole): convert the column or leave it out"
                )


# --- shards ----------------------------------------------------------------


def shard_parts(source, shards):
    """`shards` lists of Parts, contiguous and in file order, balanced by bytes:
    whole files when there are at least `shards` files, else row groups
    (Parquet; a shard may get none) or byte ranges cut at line starts (CSV).
    Read one after the other they give every data row once, in file order."""
    if not isinstance(shards, int) or shards < 1:
        raise LinregError(f"shards must be a whole number of at least 1, not {shards!r}")
    source = open_source(source)
    sizes = [p.stat().st_size for p in source.paths]
    if len(source.paths) >= shards:
        data = [size - start for size, start in zip(sizes, source.starts)]
        cuts = _balanced(data, shards, nonempty=True)
        parts = [
            Part(p, start, size, None, 0, size - start) if source.format == "csv" else Part(p, bytes=size)
            for p, start, size in zip(source.paths, source.starts, sizes)
        ]
        return [parts[a:b] for a, b in zip(cuts, cuts[1:])]
    if source.format == "parquet":
        return _row_group_shards(source, shards)
    return _byte_shards(source, sizes, shards)


def _balanced(sizes, shards, nonempty):
    """Boundaries b_0 = 0 <= b_1 <= ... <= b_shards = len(sizes): shard k gets
    units b_k .. b_k+1 - 1, each boundary where the running total comes
    closest to k/shards of the whole (ties to the earlier unit)."""
    running = [0, *itertools.accumulate(sizes)]
    total, n = running[-1], len(sizes)
    cuts = [0]
    for k in range(1, shards):
        low = cuts[-1] + (1 if nonempty else 0)
        high = n - (shards - k) if nonempty else n
        target = total * k / shards
        i = bisect.bisect_left(running, target)  # running[i - 1] < target <= running[i]
        if i > 0 and target - running[i - 1] <= running[i] - target:
            i -= 1
        i = min(max(i, low), high)  # the distance only grows away from the best
        cuts.append(max(bisect.bisect_left(running, running[i]), low))  # before units of no size
    return cuts + [n]


def _row_group_shards(source, shards):
    units = []  # (path, row group, its bytes on disk, its first row)
    for path in source.paths:
        meta = _metadata(path)
        row = 0
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            size = sum(group.column(c).total_compressed_size for c in range(group.num_columns))
            units.append((path, g, size, row))
            row += group.num_rows
    cuts = _balanced([u[2] for u in units], shards, nonempty=False)
    result = []
    for a, b in zip(cuts, cuts[1:]):
        parts = []
        for path, group in itertools.groupby(units[a:b], key=lambda u: u[0]):
            group = list(group)
            parts.append(Part(path, row_groups=tuple(u[1] for u in group), first_row=group[0][3],
                              bytes=sum(u[2] for u in group)))  # fmt: skip
        result.append(parts)
    return result


def _byte_shards(source, sizes, shards):
    """CSV with fewer files than shards: the data of all files, end to end, cut
    into `shards` byte ranges, each cut moved on to the start of a line."""
    spans = [(p, start, size) for p, start, size in zip(source.paths, source.starts, sizes)]
    total = sum(size - start for _, start, size in spans)
    cuts = [(0, spans[0][1])]  # (file index, byte)
    for k in range(1, shards):
        target = total * k // shards
        for i, (path, start, size) in enumerate(spans):
            if target <= size - start or i == len(spans) - 1:
                cuts.append((i, _line_start(path, start + min(target, size - start), start, size)))
                break
            target -= size - start
    cuts.append((len(spans) - 1, spans[-1][2]))
    result = []
    for (i, a), (j, b) in zip(cuts, cuts[1:]):
        parts = []
        for f in range(i, j + 1):
            path, start, size = spans[f]
            lo, hi = (a if f == i else start), (b if f == j else size)
            if lo < hi:
                parts.append(Part(path, lo, hi, None, 0, hi - lo))
        result.append(parts)
    return result


def _line_start(path, offset, start, end):
    """The first line start at or after `offset` (`end` if none)."""
    if offset <= start:
        return start
    with open(path, "rb") as f:
        f.seek(offset - 1)
        position = offset - 1
        while position < end:
            piece = f.read(1 << 16)
            if not piece:
                break
            found = piece.find(b"\n")
            if found >= 0:
                return min(position + found + 1, end)
            position += len(piece)
    return end


# --- reading ---------------------------------------------------------------


def count_rows(source):
    """The data rows (before missing values are dropped): from the metadata for
    Parquet; for CSV the non-blank rows, counted in chunks of bytes."""
    source = open_source(source)
    if source.format == "parquet":
        return sum(_metadata(p).num_rows for p in source.paths)
    rows, spare = 0, []
    for path, start in zip(source.paths, source.starts):
        for _, buffer, length in _chunks(path, start, path.stat().st_size, spare):
            rows += _count_chunk(bytes(memoryview(buffer)[:length]))
            spare.append(buffer)
    return rows


def _count_chunk(data):
    """The rows in bytes of whole lines: lines with more than commas, quotes and spaces."""
    a = np.frombuffer(data, np.uint8)
    content = np.ones(256, bool)
    content[list(_BLANK_BYTES)] = False
    ends = np.flatnonzero(a == 10)
    if len(data) and data[-1:] != b"\n":
        ends = np.append(ends, len(data))
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    running = np.concatenate([[0], np.cumsum(content[a], dtype=np.int64)])
    if b'"' in data:
        quotes = np.concatenate([[0], np.cumsum(a == 34, dtype=np.int64)])
        if np.any((quotes[ends] - quotes[starts]) % 2):
            # A line break inside quotes (or a stray quote): let the csv module tell rows from lines.
            text = data.decode("utf-8", "replace")
            return sum(1 for cells in csv.reader(io.StringIO(text, newline="")) if any(c.strip() for c in cells))
    return int(np.count_nonzero(running[ends] > running[starts]))


def batches(source, target, features=None, weights=None, missing="error", shard=0, shards=1, batch_rows=None):
    """The rows of shard `shard` of `shards` as Batches of at most `batch_rows`
    rows (default: about 64 MiB of values), checked as table.read_table checks
    them. The columns are checked now, the rows while they are read.

    Every batch but a shard's last has exactly `batch_rows` rows. A shard with
    no rows yields nothing; one whose rows were all dropped yields one batch
    of no rows, to carry its `dropped` count (with shards=1 that is an error,
    as table.py has it: nothing is left to fit)."""
    source = open_source(source)
    if missing not in MISSING_CHOICES:
        raise LinregError(f"missing must be one of {', '.join(MISSING_CHOICES)}, not {missing!r}")
    if not isinstance(shards, int) or shards < 1 or not isinstance(shard, int) or not 0 <= shard < shards:
        raise LinregError(f"shard must be one of 0 .. shards - 1, got shard={shard!r}, shards={shards!r}")
    if batch_rows is not None and (not isinstance(batch_rows, int) or batch_rows < 1):
        raise LinregError(f"batch_rows must be a whole number of at least 1, not {batch_rows!r}")
    features = check_columns(source, target, features, weights)
    parts = shard_parts(source, shards)[shard]
    # The target first: table.py checks it before the features on every row.
    names = [target, *features, *([weights] if weights is not None else [])]
    batch_rows = batch_rows or max(1, BATCH_VALUES // (len(features) + 1))
    weighted = weights is not None
    pieces = _pieces(source, parts, names, missing, weighted, batch_rows)
    everything = source.describe() if shards == 1 else None
    return _assemble(pieces, len(features), weighted, batch_rows, everything)


def _pieces(source, parts, names, missing, weighted, batch_rows):
    if source.format == "csv":
        return _csv_pieces(source, parts, names, missing, weighted)
    return _prefetch(_parquet_pieces(parts, names, missing, weighted, batch_rows))


def read_columns(data, names):
    """The columns `names` of every row of a file, folder or glob, as float64
    [rows, len(names)] in file order, checked as `batches` checks them (a
    missing value is an error): the numbers a model predicts from."""
    source = open_source(data)
    absent = [name for name in names if name not in source.header]
    if absent:
        raise LinregError(
            f"{source.describe()} has no column {absent[0]!r}; its columns are {', '.join(source.header)}"
        )
    _check_numeric(source, names)
    batch_rows = max(1, BATCH_VALUES // len(names))
    pieces = _pieces(source, shard_parts(source, 1)[0], names, "error", False, batch_rows)
    # A batch holds its first column as y, the others as x.
    found = [np.column_stack([batch.y, batch.x]) for batch in _assemble(pieces, len(names) - 1, False, batch_rows, None)]
    if not found:
        raise LinregError(f"{source.describe()} has no data rows; give at least one row to predict")
    return np.concatenate(found)


def _assemble(pieces, d, weighted, batch_rows, everything):
    """Batches of `batch_rows` rows from pieces of any size.

    A piece is (columns, rows dropped, check, most): columns in the order
    target, features, weights; most, the most rows that can follow it (a
    batch is made no bigger than needed, for a small file or a stream's
    last batch). Each value is copied once, into a column-major array
    (a column is then one memcpy from pyarrow's buffer) taken from pyarrow's
    memory pool, which reuses the memory of batches already let go instead of
    asking the kernel for fresh zeroed pages every time. When `check` is given
    the piece has not been looked at: each block of rows is summed right after
    its copy, while it is still in the CPU cache (a NaN or inf makes the sum
    NaN or inf), and at the first doubtful block check(row) gives the rest of
    the piece, checked, or raises. A full batch is handed out when the next
    row arrives, so rows dropped after it still count in it."""
    full, x, position, dropped, kept = None, None, 0, 0, 0
    for columns, dropped_here, check, most in pieces:
        dropped += dropped_here
        n, k = len(columns[0]), 0
        while k < n:
            if full is not None:
                yield full
                full = None
            if x is None:
                size = min(batch_rows, n - k + most)
                x, y, w = _empty(size, d, weighted)
            m = min(n - k, size - position)
            done = _copy(columns, k, m, x, y, w, position, check is not None)
            position, k, kept = position + done, k + done, kept + done
            if done < m:
                columns, more = check(k)
                dropped += more
                n, k, check = len(columns[0]), 0, None
            if position == size:
                full, x, position, dropped = Batch(x, y, w, dropped), None, 0, 0
    if everything is not None and kept == 0 and dropped:
        raise LinregError(f"{everything}: every row has a missing value in the columns used; nothing is left to fit")
    if full is not None:
        full.dropped += dropped
        yield full
    elif x is not None:
        # Fewer rows came than the batch was made for (some were dropped, or a
        # CSV's rows were longer than the least they can be): a view of them,
        # as a copy would hold three batches for a moment, the caller's included.
        yield Batch(x[:position], y[:position], w[:position] if weighted else None, dropped)
    elif dropped:
        yield Batch(np.empty((0, d), order="F"), np.empty(0), np.empty(0) if weighted else None, dropped)


def _empty(rows, d, weighted):
    """x [rows, d] (column-major), y [rows] and w [rows] or None, in one
    buffer from pyarrow's memory pool."""
    width = d + 1 + (1 if weighted else 0)
    values = np.frombuffer(pa.allocate_buffer(max(1, rows * width) * 8), np.float64)[: rows * width]
    block = values.reshape(width, rows).T
    return block[:, :d], block[:, d], (block[:, d + 1] if weighted else None)


CHECK_ROWS = 1 << 16  # rows per block summed after its copy: 512 KiB a column, in the L2 cache


def _copy(columns, k, m, x, y, w, position, check):
    """Copy rows k .. k + m of the columns to row `position` on; with `check`,
    block by block, stopping before the first block with a value that is not
    finite (or a weight that is not positive). The rows copied and checked."""
    if not check:
        y[position : position + m] = columns[0][k : k + m]
        for j in range(x.shape[1]):
            x[position : position + m, j] = columns[1 + j][k : k + m]
        if w is not None:
            w[position : position + m] = columns[-1][k : k + m]
        return m
    done = 0
    targets = [y, *x.T, *([w] if w is not None else [])]
    with np.errstate(all="ignore"):  # huge values may overflow the sum: that only costs a closer look
        while done < m:
            size = min(CHECK_ROWS, m - done)
            a, p = k + done, position + done
            total = 0.0
            for column, target in zip(columns, targets):
                target = target[p : p + size]
                target[...] = column[a : a + size]
                total += target.sum()
            if not np.isfinite(total) or (w is not None and not w[p : p + size].min() > 0):
                return done
            done += size
    return m


_END = object()


def _prefetch(items):
    """Iterate `items` on a thread, one item ahead: pyarrow decodes the next
    piece while this thread copies the last one. The thread starts on an item
    only once the one before is taken, so two are alive at most."""
    handed = queue.Queue(1)
    taken = threading.Semaphore(1)
    stop = threading.Event()

    def run():
        try:
            while taken.acquire() and not stop.is_set():
                item = next(items, _END)
                handed.put(item)
                if item is _END:
                    return
        except BaseException as error:  # raised in the reading thread, from handed
            handed.put(error)
        finally:
            items.close()

    thread = threading.Thread(target=run, name="linreg-stream", daemon=True)
    thread.start()
    try:
        while (item := handed.get()) is not _END:
            taken.release()
            if isinstance(item, BaseException):
                raise item
            yield item
            item = None
    finally:
        stop.set()
        taken.release()
        while thread.is_alive():  # unblock a put, so that the thread sees `stop`
            try:
                handed.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()


# --- CSV -------------------------------------------------------------------


def _chunks(path, start, end, spare):
    """(offset, buffer, length) for [start, end) in chunks of about CSV_CHUNK
    bytes, each ending at a line end (a chunk grows to hold a longer line).
    The bytes are buffer[:length]. Buffers come from `spare` when one is free:
    the caller puts each back once done with it, as a fresh 4 MiB buffer costs
    the kernel as much time to zero as pyarrow takes to read the numbers out
    of a quarter of it."""
    with open(path, "rb", buffering=0) as f:
        position = start
        while position < end:
            want = min(CSV_CHUNK, end - position)
            while True:
                buffer = _spare(spare, want)
                if os.preadv(f.fileno(), [memoryview(buffer)[:want]], position) < want:
                    raise LinregError(f"{path} became shorter while being read; read it once it is written")
                cut = want if position + want >= end else buffer.rfind(b"\n", 0, want) + 1
                if cut:
                    break
                spare.append(buffer)
                want = min(2 * want, end - position)
            yield position, buffer, cut
            position += cut


def _spare(spare, size):
    for k, buffer in enumerate(spare):
        if len(buffer) >= size:
            return spare.pop(k)
    return bytearray(max(size, CSV_CHUNK))


class _CsvReader:
    """What every chunk of one source is read with."""

    def __init__(self, source, names, missing, weighted):
        self.header, self.names, self.missing, self.weighted = source.header, names, missing, weighted
        self.index = [source.header.index(name) for name in names]
        self.parse = pacsv.ParseOptions()
        self.convert = pacsv.ConvertOptions(
            include_columns=names,
            column_types={name: pa.float64() for name in names},
            null_values=NULL_TEXTS,
            quoted_strings_can_be_null=True,
        )

    def read_options(self, data):
        # One chunk, one block: pyarrow cuts blocks at line breaks even inside
        # quotes; a whole chunk in one block keeps its quotes in its hands.
        return pacsv.ReadOptions(column_names=self.header, block_size=len(data) + 1, use_threads=True)

    def piece(self, path, start, buffer, length):
        """(columns in `names` order, rows dropped, rows read) of the chunk buffer[:length]."""
        data = pa.py_buffer(memoryview(buffer)[:length])  # no copy
        if buffer.find(b'"', 0, length) < 0 or buffer.count(b'"', 0, length) % 2 == 0:
            try:
                result = self.fast(data)
            except pa.ArrowMemoryError:
                raise
            except pa.ArrowException:  # a cell pyarrow cannot take: the exact reading says which and why
                result = None
            if result is not None:
                return result
        return self.exact(path, start, bytes(data))

    def fast(self, data):
        """pyarrow's reading of a chunk, or None if something needs a closer look."""
        table = pacsv.read_csv(pa.BufferReader(data), read_options=self.read_options(data),
                               parse_options=self.parse, convert_options=self.convert)  # fmt: skip
        if table.num_rows == 0:
            return [np.empty(0) for _ in self.names], 0, 0
        arrays = [_one_array(table.column(name)) for name in self.names]
        columns = [array.to_numpy(zero_copy_only=False) for array in arrays]
        dropped = 0
        if any(array.null_count for array in arrays):
            if self.missing == "error":
                return None  # the exact reading names the cell
            missing = [array.is_null().to_numpy(zero_copy_only=False) for array in arrays]
            keep = ~np.logical_or.reduce(missing)
            dropped = len(keep) - int(np.count_nonzero(keep))
            columns = [column[keep] for column in columns]
        if len(columns[0]):
            for j, column in enumerate(columns):
                low, high = column.min(), column.max()
                if not (-(2.0**53) < low and high < 2.0**53):  # also false for NaN and inf
                    if not (np.isfinite(low) and np.isfinite(high)) or self.unrounded(data, j, column, dropped):
                        return None
            if self.weighted and not columns[-1].min() > 0:
                return None
        return columns, dropped, table.num_rows

    def unrounded(self, data, j, column, dropped):
        """Whether a whole number of column j is written with more digits than
        its float64 keeps (the texts are read again, for this chunk only)."""
        if dropped:
            return True  # rows no longer line up with the texts: let the exact reading decide
        convert = pacsv.ConvertOptions(include_columns=[self.names[j]], column_types={self.names[j]: pa.string()})
        texts = pacsv.read_csv(pa.BufferReader(data), read_options=self.read_options(data),
                               parse_options=self.parse, convert_options=convert).column(0)  # fmt: skip
        rows = np.flatnonzero(np.abs(column) >= 2.0**53)
        for row, text in zip(rows, texts.take(pa.array(rows)).to_pylist()):
            text = text.strip()
            if text.lstrip("+-").isdigit() and int(text) != int(column[row]):
                return True
        return False

    def exact(self, path, start, data):
        """A chunk (bytes) read as table.py reads a file: Python's csv module,
        its rules and its messages. For chunks the fast reading did not take."""
        first = None

        def line(relative):  # the file's line number; counted only for a message
            nonlocal first
            if first is None:
                first = _first_line(path, start)
            return first + relative - 1

        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            where = line(data.count(b"\n", 0, error.start) + 1)
            raise LinregError(
                f"{path}: line {where} is not valid UTF-8 (byte 0x{data[error.start]:02x}); "
                "save the file as UTF-8 and try again"
            ) from None
        rows = split_rows(text, path, line, NO_QUOTED_LINE_BREAKS)
        for relative, cells in rows:
            if len(cells) != len(self.header):
                raise LinregError(
                    f"{path}: line {line(relative)} has {len(cells)} cells but the header has {len(self.header)} "
                    "columns; every row needs one value per column"
                )
        read = len(rows)
        if self.missing == "drop":
            rows = [(r, cells) for r, cells in rows if all(cells[i].strip().lower() not in MISSING for i in self.index)]
        values = np.empty((len(rows), len(self.names)))
        for k, (relative, cells) in enumerate(rows):
            for j, (name, i) in enumerate(zip(self.names, self.index)):
                try:
                    values[k, j] = _number(path, relative, name, cells[i])
                except LinregError:
                    _number(path, line(relative), name, cells[i])  # raises, with the true line
                    raise
        if self.weighted and len(rows):
            bad = np.flatnonzero(~(values[:, -1] > 0))
            if len(bad):
                raise LinregError(
                    f"{path}: line {line(rows[bad[0]][0])}: weight {float(values[bad[0], -1])!r} "
                    "is not a positive finite number"
                )
        return [np.ascontiguousarray(values[:, j]) for j in range(len(self.names))], read - len(rows), read


def _one_array(column):
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _first_line(path, offset):
    """The line number of the line that starts at byte `offset`."""
    count, done = 0, 0
    with open(path, "rb") as f:
        while done < offset:
            piece = f.read(min(16 << 20, offset - done))
            if not piece:
                break
            count += piece.count(b"\n")
            done += len(piece)
    return count + 1


def _csv_pieces(source, parts, names, missing, weighted):
    """The checked pieces of the parts' chunks, in order. Chunks are read here
    and parsed on a pool of pyarrow.cpu_count() threads, one more in flight
    than threads so that the pool never waits for this one."""
    reader = _CsvReader(source, names, missing, weighted)
    workers = max(1, pa.cpu_count())
    starts = dict(zip(source.paths, source.starts))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="linreg-csv")
    pending = deque()  # (future, its buffer, bytes after it) of chunks, and each part after its last chunk
    spare = []  # buffers whose chunk has been parsed
    read = 0  # rows of the current part
    left = sum(part.end - part.start for part in parts)  # bytes not yet in a chunk

    def settle(item):
        """The next piece in file order: a part's end (its row count checked) or a parsed chunk."""
        nonlocal read
        if isinstance(item, Part):
            _check_rows(item, read, starts)
            read = 0
            return None
        columns, dropped, rows = item[0].result()
        spare.append(item[1])
        read += rows
        # A row takes a byte per column at least (its commas and line end).
        return columns, dropped, None, item[2] // len(source.header)

    try:
        for part in parts:
            for start, buffer, length in _chunks(part.path, part.start, part.end, spare):
                left -= length
                pending.append((pool.submit(reader.piece, part.path, start, buffer, length), buffer, left))
                while len(pending) > workers:
                    if (piece := settle(pending.popleft())) is not None:
                        yield piece
            pending.append(part)
        while pending:
            if (piece := settle(pending.popleft())) is not None:
                yield piece
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _check_rows(part, read, starts):
    # open_source looks for data in a file's first 64 KiB only.
    if read == 0 and part.start == starts[part.path] and part.end == part.path.stat().st_size:
        raise LinregError(f"{part.path} has a header but no data rows; add at least one row of numbers")


# --- Parquet ---------------------------------------------------------------


# Values per Parquet piece: as many as a batch holds, up to BATCH_VALUES.
# pyarrow's iter_batches costs a fifth more CPU time in pieces of 16 MiB than
# of 64 MiB, so the memory saved is not worth it.
PIECE_VALUES = BATCH_VALUES


def _parquet_pieces(parts, names, missing, weighted, batch_rows):
    rows = max(1, min(batch_rows, PIECE_VALUES // len(names)))
    left = 0  # rows not yet read
    for part in parts:
        meta = _metadata(part.path)
        groups = range(meta.num_row_groups) if part.row_groups is None else part.row_groups
        left += sum(meta.row_group(g).num_rows for g in groups)
    for part in parts:
        with _parquet_file(part.path) as file:
            records = file.iter_batches(batch_size=rows, columns=names, row_groups=part.row_groups, use_threads=True)
            row = part.first_row
            while True:
                try:
                    record = next(records, None)
                except (pa.ArrowException, OSError) as error:
                    raise LinregError(
                        f"{part.path}: damaged Parquet file ({_summary(error)}); check or rewrite the file"
                    ) from None
                if record is None:
                    break
                left -= record.num_rows
                yield *_parquet_piece(part.path, row, record, names, missing, weighted), max(left, 0)
                row += record.num_rows


def _parquet_piece(path, first_row, record, names, missing, weighted):
    """A piece (see _assemble) of a record batch whose rows are numbered from
    `first_row`. Nulls and integers too long for a float64 are seen here;
    NaN, inf and weights are left to the copy, which sums the values anyway."""
    arrays = [record.column(name) for name in names]
    columns = [
        array.to_numpy(zero_copy_only=False) if array.type == pa.float64()
        else array.cast(pa.float64(), safe=False).to_numpy(zero_copy_only=False)
        for array in arrays
    ]  # fmt: skip
    wide = [_wide_integers(array) for array in arrays]

    def check(start):
        return _parquet_check(path, first_row + start, [a[start:] for a in arrays], [c[start:] for c in columns],
                              [None if v is None else v[start:] for v in wide], names, missing, weighted)  # fmt: skip

    if any(array.null_count for array in arrays) or any(v is not None for v in wide):
        return *check(0), None
    return columns, 0, check


def _parquet_check(path, first_row, arrays, columns, wide, names, missing, weighted):
    """(columns, rows dropped) of rows that table.py's rules accept, or the
    LinregError for the first that they refuse."""
    missed = [np.isnan(column) for column in columns]  # nulls became NaN
    drop = np.logical_or.reduce(missed) if missing == "drop" else np.zeros(len(columns[0]), bool)
    problems = []  # per column: the rows with a value table.py refuses
    for j, (column, miss) in enumerate(zip(columns, missed)):
        bad = np.isinf(column) | (miss if missing == "error" else False)
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
            raise _missing(f"{path}: row {first_row + r}", names[j], f"missing ({what})")
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
            raise LinregError(
                f"{path}: row {first_row + r}: weight {float(columns[-1][r])!r} is not a positive finite number"
            )
    if drop.any():
        keep = ~drop
        return [column[keep] for column in columns], int(np.count_nonzero(drop))
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
