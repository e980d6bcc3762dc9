"""Where the rows are: files, folders, glob patterns, standard input, shards.

In: what the user named (a file, a folder of files, a glob pattern, or "-"
for standard input). Out: a Source -- the files, all of one format (CSV or
Parquet) and with the same columns -- and, for several processes reading
one Source, shard_parts: each one's share as Parts (byte ranges of whole
lines, or Parquet row groups). Every problem found on the way is one
LinregError. The formats' own details are in csv_lines.py and parquet.py.
"""
import bisect
import glob
import io
import itertools
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

from linreg.data import csv_lines, parquet
from linreg.errors import LinregError

CSV_SUFFIXES = (".csv", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class Source:
    """The files to read, all of one format and with the same columns."""

    paths: list  # pathlib.Path, sorted by name
    format: str  # "csv" or "parquet"
    header: list  # column names, the same in every file
    bytes: int  # total size of the files on disk
    origin: str = None  # the folder or pattern given (None for one file), for messages
    starts: list = None  # csv: the byte where each file's data begins, after its header
    sizes: list = None  # each file's size
    memory: bytes = None  # standard input's bytes (the path is then "-")

    def describe(self):
        if self.origin is None:
            return str(self.paths[0])
        n = len(self.paths)
        return f"{self.origin} ({n} {self.format} file{'s' if n != 1 else ''})"

    def open(self, path):
        """A binary file of `path`'s bytes (standard input's are in memory)."""
        return io.BytesIO(self.memory) if self.memory is not None else open(path, "rb", buffering=0)

    def size(self, path):
        return self.sizes[self.paths.index(path)]


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


def open_source(data, stdin=False):
    """The Source for `data`: a file, a folder (its *.csv, *.parquet, *.pq; not
    its subfolders, hidden files or names starting with "_", such as Spark's
    _SUCCESS), a glob pattern or, with `stdin`, "-": standard input, a CSV
    read into memory."""
    if isinstance(data, Source):
        return data
    if not isinstance(data, (str, os.PathLike)):
        raise LinregError(f"cannot stream a {type(data).__name__}: give a file, a folder or a glob pattern")
    text = os.fspath(data)
    if text == "-":
        if not stdin:
            raise LinregError("standard input cannot be streamed; save the data to a file and give its path")
        memory = sys.stdin.buffer.read()
        source = Source([Path("-")], "csv", None, len(memory), sizes=[len(memory)], memory=memory)
        source.header, start = csv_lines.header(source, source.paths[0])
        source.starts = [start]
        return source
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
    sizes = [p.stat().st_size for p in paths]
    source = Source(paths, formats[0], None, sum(sizes), origin, [0] * len(paths), sizes)
    if source.format == "csv":
        heads = [csv_lines.header(source, p) for p in paths]
        headers, source.starts = [h for h, _ in heads], [s for _, s in heads]
    else:
        headers = [parquet.header(p) for p in paths]
    for p, header in zip(paths[1:], headers[1:]):
        _same_columns(paths[0], headers[0], p, header)
    source.header = headers[0]
    return source


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


def count_rows(source):
    """The rows of a Parquet source, from its files' metadata (a CSV's rows
    are known only once it is read)."""
    source = open_source(source)
    if source.format != "parquet":
        raise ValueError("count_rows reads Parquet metadata")
    return sum(parquet.metadata(p).num_rows for p in source.paths)


# --- shards ----------------------------------------------------------------


def shard_parts(source, shards):
    """`shards` lists of Parts, contiguous and in file order, balanced by bytes:
    whole files when there are at least `shards` files, else row groups
    (Parquet; a shard may get none) or byte ranges cut at line starts (CSV).
    Read one after the other they give every data row once, in file order."""
    if not isinstance(shards, int) or shards < 1:
        raise LinregError(f"shards must be a whole number of at least 1, not {shards!r}")
    source = open_source(source)
    if len(source.paths) >= shards:
        data = [size - start for size, start in zip(source.sizes, source.starts)]
        cuts = _balanced(data, shards, nonempty=True)
        parts = [
            Part(p, start, size, None, 0, size - start) if source.format == "csv" else Part(p, bytes=size)
            for p, start, size in zip(source.paths, source.starts, source.sizes)
        ]
        return [parts[a:b] for a, b in zip(cuts, cuts[1:])]
    if source.format == "parquet":
        return _row_group_shards(source, shards)
    return _byte_shards(source, shards)


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
    units = [(path, *group) for path in source.paths for group in parquet.row_groups(path)]
    cuts = _balanced([size for _, _, size, _ in units], shards, nonempty=False)
    result = []
    for a, b in zip(cuts, cuts[1:]):
        parts = []
        for path, group in itertools.groupby(units[a:b], key=lambda unit: unit[0]):
            group = list(group)
            parts.append(Part(path, row_groups=tuple(g for _, g, _, _ in group), first_row=group[0][3],
                              bytes=sum(size for _, _, size, _ in group)))  # fmt: skip
        result.append(parts)
    return result


def _byte_shards(source, shards):
    """CSV with fewer files than shards: the data of all files, end to end, cut
    into `shards` byte ranges, each cut moved on to the start of a line."""
    spans = list(zip(source.paths, source.starts, source.sizes))
    total = sum(size - start for _, start, size in spans)
    cuts = [(0, spans[0][1])]  # (file index, byte)
    for k in range(1, shards):
        target = total * k // shards
        for i, (path, start, size) in enumerate(spans):
            if target <= size - start or i == len(spans) - 1:
                cuts.append((i, _line_start(source, path, start + min(target, size - start), start, size)))
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


def _line_start(source, path, offset, start, end):
    """The first line start at or after `offset` (`end` if none)."""
    if offset <= start:
        return start
    with source.open(path) as f:
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
