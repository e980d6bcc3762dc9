"""CSV files read by pyarrow, in chunks of whole lines, on a pool of threads.

In: a Source's CSV Parts (byte ranges of whole lines), the columns to read,
which of them are text. Out: pieces, in file order -- a float64 array per
column of numbers, a pyarrow string array (its cells stripped) per column of
text -- with the rows that hold a missing value dropped (missing="drop") and
counted, every other value checked. What pyarrow or the checks refuse is
worded by csv_lines.py, line number included.

This module cuts the files into chunks of whole lines and pyarrow parses
each chunk on a pool of threads (pyarrow's own streaming reader, open_csv,
parses one block at a time: it took 1.7 times as long on two cores, and it
cannot say where in the file a failing block starts). Knowing where each
chunk starts is what makes exact messages cheap: clean chunks never leave
pyarrow and numpy, and the line number of a chunk's first line is counted
only for a message, from the start of the file.
"""
import itertools
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from linreg.data import csv_lines
from linreg.data.cells import MISSING, arrow_message, missing_texts
from linreg.errors import LinregError

# Bytes of CSV per chunk. Small chunks keep the parsed values in the CPU
# caches and the pool busy; chunks of 64 MiB took 2.7 times as long.
CSV_CHUNK = 4 << 20
# A chunk grows this far at most to end outside quotes: past it a quote is
# taken to be left open, a mistake to report, not a value to read whole.
QUOTED_LIMIT = 64 << 20
# pyarrow compares null texts exactly, the rules case-insensitively: list every
# spelling. Its own default list would also take "#N/A" or "-nan" as missing.
NULL_TEXTS = sorted(
    {"".join(letters) for word in MISSING for letters in itertools.product(*({c.lower(), c.upper()} for c in word))}
)


def _chunks(source, path, start, end, spare):
    """(offset, buffer, length) for [start, end) in chunks of about CSV_CHUNK
    bytes, each ending at a line end outside quotes (a chunk grows to hold a
    longer line, or a quoted value with line breaks in it, up to QUOTED_LIMIT).
    The bytes are buffer[:length]. Buffers come from `spare` when one is free:
    the caller puts each back once done with it, as a fresh 4 MiB buffer costs
    the kernel as much time to zero as pyarrow takes to read the numbers out
    of a quarter of it."""
    with source.open(path) as f:
        position = start
        while position < end:
            want = min(CSV_CHUNK, end - position)
            while True:
                buffer = _spare(spare, want)
                f.seek(position)
                if f.readinto(memoryview(buffer)[:want]) < want:
                    raise LinregError(f"{path} became shorter while being read; read it once it is written")
                cut = want if position + want >= end else _cut(buffer, want)
                if not cut and want >= QUOTED_LIMIT:  # a quote left open: the csv module will say where
                    cut = buffer.rfind(b"\n", 0, want) + 1
                if cut:
                    break
                spare.append(buffer)
                want = min(2 * want, end - position)
            yield position, buffer, cut
            position += cut


def _cut(buffer, size):
    """Where a chunk of buffer[:size] ends: after its last line end with an
    even number of quotes before it (so outside quoted values), or 0."""
    cut = buffer.rfind(b"\n", 0, size) + 1
    odd = buffer.count(b'"', 0, cut) % 2
    while odd and cut:
        line = buffer.rfind(b"\n", 0, cut - 1) + 1
        odd ^= buffer.count(b'"', line, cut) % 2
        cut = line
    return cut


def _spare(spare, size):
    for k, buffer in enumerate(spare):
        if len(buffer) >= size:
            return spare.pop(k)
    return bytearray(max(size, CSV_CHUNK))


class Chunk:
    """Where a piece's rows are: a chunk of a file, and which of its rows were
    kept (None: all). Its line numbers are counted only when asked for."""

    def __init__(self, source, path, start, length):
        self.source, self.path, self.start, self.length, self.kept = source, path, start, length, None
        self._first = None

    def line(self, relative):
        """The file's line number of the chunk's line `relative` (from 1)."""
        if self._first is None:
            self._first = csv_lines.first_line(self.source, self.path, self.start)
        return self._first + relative - 1

    def row_line(self, row):
        """The file's line of the piece's row `row` (from 0)."""
        with self.source.open(self.path) as f:
            f.seek(self.start)
            data = f.read(self.length)
        return csv_lines.row_line(self.path, data, self.line, row if self.kept is None else int(self.kept[row]))


class Lines:
    """The file's line of each row of a CSV read whole, counted only when a
    message asks for one (design.py's `positions`)."""

    def __init__(self, chunks, rows):
        self.chunks, self.ends = chunks, np.cumsum(rows, dtype=np.int64)

    def __len__(self):
        return int(self.ends[-1]) if len(self.ends) else 0

    def __getitem__(self, k):
        i = int(np.searchsorted(self.ends, k, side="right"))
        return self.chunks[i].row_line(int(k) - (int(self.ends[i - 1]) if i else 0))


class Reader:
    """What every chunk of one source is read with. `text`: the columns read as
    text; `switchable`: the columns that become text at their first cell that
    is not a number (a feature may be categorical when it holds no number)."""

    def __init__(self, source, names, missing, weighted, text=(), switchable=()):
        self.header, self.names, self.missing, self.weighted = source.header, names, missing, weighted
        self.text, self.switchable = set(text), set(switchable)

    def read(self, data, text, names=None, tidy=False):
        """pyarrow's table of the chunk: numbers as float64, text as strings."""
        names = names or self.names
        types = {name: pa.string() if name in text or tidy else pa.float64() for name in names}
        # One chunk, one block: pyarrow cuts blocks at line breaks even inside
        # quotes; a whole chunk in one block keeps its quotes in its hands.
        options = pacsv.ReadOptions(column_names=self.header, block_size=len(data) + 1, use_threads=True)
        convert = pacsv.ConvertOptions(include_columns=names, column_types=types, null_values=[] if tidy else NULL_TEXTS,
                                       quoted_strings_can_be_null=not tidy, strings_can_be_null=False)  # fmt: skip
        return pacsv.read_csv(pa.BufferReader(data), read_options=options, convert_options=convert)

    def piece(self, chunk, buffer, length):
        """(columns in `names` order, rows dropped, rows read) of the chunk buffer[:length]."""
        data = pa.py_buffer(memoryview(buffer)[:length])  # no copy
        text = set(self.text)
        # A cut inside quotes leaves an odd number of them: the csv module says where.
        odd = buffer.find(b'"', 0, length) >= 0 and buffer.count(b'"', 0, length) % 2 == 1
        while True:
            if not odd:
                try:
                    result = self.checked(chunk, data, self.read(data, text), text)
                except pa.ArrowMemoryError:
                    raise
                except pa.ArrowException:
                    result = None
                if result is not None:
                    return result
            odd = False
            switch = csv_lines.first_problem(chunk.path, data, chunk.line, self.header, self.names, text, self.missing,
                                             self.weighted, self.switchable - text)  # fmt: skip
            if switch is None:
                break
            text.add(switch)
            self.text.add(switch)  # later chunks start with it
        # Nothing is wrong that the rules see, yet pyarrow refused: blank lines
        # of spaces, or a missing value written with spaces around it.
        tidy = csv_lines.without_blank_lines(data)
        try:
            result = self.checked(chunk, tidy, self.tidied(self.read(tidy, text, tidy=True), text), text)
        except pa.ArrowException as error:
            raise LinregError(f"{chunk.path}: cannot read line {chunk.line(1)} on ({arrow_message(error)})") from None
        if result is None:
            raise LinregError(f"{chunk.path}: cannot read the lines from {chunk.line(1)} on; check the file")
        return result

    def tidied(self, table, text):
        """The columns of numbers of a table read as text, as numbers."""
        columns = []
        for name in table.column_names:
            column = _one_array(table.column(name))
            if name not in text:
                trimmed = pc.utf8_trim_whitespace(column)
                column = pc.if_else(pa.array(missing_texts(trimmed)), None, trimmed).cast(pa.float64())
            columns.append(column)
        return pa.table(columns, names=table.column_names)

    def checked(self, chunk, data, table, text):
        """The piece of a chunk's table, or None if a cell needs a closer look."""
        arrays = [_one_array(table.column(name)) for name in self.names]
        if table.num_rows == 0:
            return [a.to_numpy(zero_copy_only=False) if n not in text else a for n, a in zip(self.names, arrays)], 0, 0
        missed = []
        for j, (name, array) in enumerate(zip(self.names, arrays)):
            if name in text:
                arrays[j] = pc.utf8_trim_whitespace(array)
                missed.append(missing_texts(arrays[j]))
            else:
                missed.append(array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None)
        keep = None
        if any(m is not None and m.any() for m in missed):
            if self.missing == "error":
                return None  # the csv module names the cell
            keep = ~np.logical_or.reduce([m for m in missed if m is not None])
        columns = []
        for j, (name, array) in enumerate(zip(self.names, arrays)):
            if name in text:
                columns.append(array if keep is None else array.filter(pa.array(keep)))
                continue
            whole = array.to_numpy(zero_copy_only=False)
            column = whole if keep is None else whole[keep]
            if len(column):
                low, high = column.min(), column.max()
                if not (-(2.0**53) < low and high < 2.0**53):  # also false for NaN and inf
                    if not (np.isfinite(low) and np.isfinite(high)) or self.unrounded(data, j, whole, keep):
                        return None
            columns.append(column)
        if self.weighted and len(columns[-1]) and not columns[-1].min() > 0:
            return None
        dropped = 0 if keep is None else len(keep) - int(np.count_nonzero(keep))
        chunk.kept = None if keep is None else np.flatnonzero(keep)
        return columns, dropped, table.num_rows

    def unrounded(self, data, j, column, keep):
        """Whether a whole number of column j (on a kept row) is written with
        more digits than its float64 keeps (the texts are read again, for
        this chunk only)."""
        texts = self.read(data, {self.names[j]}, names=[self.names[j]]).column(0)
        wide = np.abs(column) >= 2.0**53
        rows = np.flatnonzero(wide if keep is None else wide & keep)
        for row, text in zip(rows, texts.take(pa.array(rows)).to_pylist()):
            text = text.strip()
            if text.lstrip("+-").isdigit() and int(text) != int(column[row]):
                return True
        return False


def _one_array(column):
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def pieces(source, parts, names, missing, weighted, text=(), switchable=()):
    """The pieces (columns, rows dropped, None, the most rows that can follow,
    Chunk) of the parts' chunks, in order. Chunks are read here and parsed on
    a pool of pyarrow.cpu_count() threads, one more in flight than threads so
    that the pool never waits for this one."""
    reader = Reader(source, names, missing, weighted, text, switchable)
    workers = max(1, pa.cpu_count())
    starts = dict(zip(source.paths, source.starts))
    pool = ThreadPoolExecutor(workers, thread_name_prefix="linreg-csv")
    pending = deque()  # (future, its buffer, bytes after it, Chunk) of chunks, and each part after its last chunk
    spare = []  # buffers whose chunk has been parsed
    read = 0  # rows of the current part
    left = sum(part.end - part.start for part in parts)  # bytes not yet in a chunk

    def settle(item):
        """The next piece in file order: a part's end (its row count checked) or a parsed chunk."""
        nonlocal read
        if not isinstance(item, tuple):
            # open_source looks for data in a file's first 64 KiB only.
            if read == 0 and item.start == starts[item.path] and item.end == source.size(item.path):
                raise LinregError(f"{item.path} has a header but no data rows; add at least one row of numbers")
            read = 0
            return None
        future, buffer, after, chunk = item
        columns, dropped, rows = future.result()
        spare.append(buffer)
        read += rows
        # A row takes a byte per column at least (its commas and line end).
        return columns, dropped, None, after // len(source.header), chunk

    try:
        for part in parts:
            for start, buffer, length in _chunks(source, part.path, part.start, part.end, spare):
                left -= length
                chunk = Chunk(source, part.path, start, length)
                pending.append((pool.submit(reader.piece, chunk, buffer, length), buffer, left, chunk))
                while len(pending) > workers:
                    if (piece := settle(pending.popleft())) is not None:
                        yield piece
            pending.append(part)
        while pending:
            if (piece := settle(pending.popleft())) is not None:
                yield piece
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
