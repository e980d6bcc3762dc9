"""A CSV's lines as Python's csv module reads them: the header, and the
words for a bad line.

pyarrow reads a CSV's data (csv_reader.py). This module reads the header
line, and -- only once pyarrow, or the checks on the numbers it read, has
refused a chunk -- that chunk's text again, to say on which line and in
which column what is wrong. In: a chunk's bytes (whole lines) and where it
starts. Out: the LinregError of its first bad line (file, line, column, what
to do), or a line number for a row that a later stage refuses.

Line numbers count lines (a row with a quoted line break is named by its
last). Chunks end outside quotes, but the shards of one file that several
workers share are cut at line breaks without knowing about quotes; a cut
inside a quoted value leaves an odd number of quotes in a chunk, which the
csv module reports as not valid CSV. Such files give an error or a correct
result, never silently wrong rows.
"""
import csv
import io
import re

from linreg.data.cells import bad_weight, described, is_missing, is_number, missing_error, number
from linreg.errors import LinregError

# A header line longer than this is not a CSV header.
HEADER_LIMIT = 16 << 20
# Bytes a blank line (is_blank: spaces, at most one cell) is made of. A comma
# makes a row, of empty cells if nothing else: missing values.
BLANK_BYTES = b" \t\r\n\"\x0b\x0c"
# The blank lines pyarrow takes for a row of one cell: spaces, or spaces in quotes.
BLANK_LINE = re.compile(rb'^(?:[ \t\x0b\x0c]*|"[ \t\x0b\x0c]*")\r?$', re.MULTILINE)
# Shards are cut at line ends, so there a quoted value may not span lines.
NO_QUOTED_LINE_BREAKS = "; check its quotes (a quoted value may hold a line break, but not where workers split the file)"


def is_blank(cells):
    """Whether a parsed line is blank: no separator and nothing but spaces. A
    line of separators (",,") is a row whose cells are all empty: missing values."""
    return len(cells) < 2 and not "".join(cells).strip()


def without_blank_lines(data):
    """The bytes with their blank lines emptied (pyarrow skips empty lines)."""
    return BLANK_LINE.sub(b"", bytes(data))


def not_utf8(path, line, byte):
    return LinregError(f"{path}: line {line} is not valid UTF-8 (byte 0x{byte:02x}); save the file as UTF-8 and try again")


def _decode(path, raw, line):
    try:
        return raw.decode("utf-8-sig" if line == 1 else "utf-8")
    except UnicodeDecodeError as error:
        raise not_utf8(path, line, raw[error.start]) from None


def _rows(text, path, line):
    """(line number in `text`, cells) of each row of CSV `text` that is not blank;
    `line` maps the parser's line numbers to the file's, for the message
    about text that is not valid CSV."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for cells in reader:
            if not is_blank(cells):
                yield reader.line_num, cells
    except csv.Error as error:
        raise LinregError(f"{path}: line {line(reader.line_num)}: not valid CSV ({error}){NO_QUOTED_LINE_BREAKS}") from None


def header(source, path):
    """(column names, byte where the data begins) of a CSV, after the header's checks."""
    with source.open(path) as f:
        line = offset = 0
        while True:
            raw = f.readline(HEADER_LIMIT)
            if not raw:
                raise LinregError(f"{path} is empty; expected a header row with column names, then rows of numbers")
            line += 1
            offset += len(raw)
            if len(raw) == HEADER_LIMIT and not raw.endswith(b"\n"):
                raise LinregError(f"{path}: line {line} is over {HEADER_LIMIT >> 20} MiB long; is it a CSV file?")
            rows = list(_rows(_decode(path, raw, line), path, lambda _: line))
            if len(rows) > 1:
                raise LinregError(
                    f"{path}: line {line} holds a carriage return (\\r) that does not end it; lines must end in \\n "
                    "or \\r\\n: save the file with ordinary line ends"
                )
            if rows:
                break
        after = f.read(1 << 16)
    lines = after.decode("utf-8", "replace").splitlines()[:4]
    names = check_header(path, line, rows[0][1], [row[0] for row in csv.reader(lines[:3]) if row])
    if len(after) < 1 << 16 and not after.translate(None, BLANK_BYTES):
        raise LinregError(f"{path} has a header but no data rows; add at least one row of numbers")
    return names, offset


def check_header(path, line, cells, next_firsts):
    """The header's column names, stripped, after the checks every CSV reader
    makes; `next_firsts` are the first cells of the next few rows (for the
    pandas-index hint)."""
    names = [name.strip() for name in cells]
    for separator, called in ((";", "semicolons"), ("\t", "tabs"), ("|", "bars")):
        if len(names) == 1 and separator in names[0]:
            raise LinregError(
                f"{path}: line {line}: the header is one column, {names[0][:60]!r}, separated by {called}; "
                "linreg reads comma-separated files: save the file with commas between the values"
            )
    for column, name in enumerate(names, start=1):
        if not name:
            hint = ""
            firsts = [cell.strip() for cell in next_firsts[:3]]
            if column == 1 and firsts and firsts == [str(k) for k in range(len(firsts))]:
                hint = " (it looks like a pandas index: write the file with to_csv(..., index=False))"
            raise LinregError(f"{path}: line {line}: column {column} of the header has no name{hint}; name every column")
        if names.index(name) != column - 1:
            raise LinregError(
                f"{path}: line {line}: the column name {name!r} appears twice in the header; "
                "give every column its own name"
            )
    return names


def first_line(source, path, offset):
    """The line number of the line that starts at byte `offset`."""
    count, done = 0, 0
    with source.open(path) as f:
        while done < offset:
            piece = f.read(min(16 << 20, offset - done))
            if not piece:
                break
            count += piece.count(b"\n")
            done += len(piece)
    return count + 1


def _text(path, data, line):
    data = bytes(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise not_utf8(path, line(data.count(b"\n", 0, error.start) + 1), data[error.start]) from None


def first_problem(path, data, line, header, names, text, missing, weighted, switchable=()):
    """Raise the LinregError of the first bad line of a chunk of whole lines
    (`data`, bytes); `line` maps its line numbers to the file's. Columns in
    `text` may hold any text; the others must hold numbers (the last is the
    weights when `weighted`). Returns the name of a `switchable` column whose
    first refused cell is text, as a column of text may be categorical, or
    None when nothing is wrong."""
    index = [header.index(name) for name in names]
    for relative, cells in _rows(_text(path, data, line), path, line):
        if len(cells) != len(header):
            raise LinregError(
                f"{path}: line {line(relative)} has {len(cells)} cells but the header has {len(header)} columns; "
                "every row needs one value per column"
            )
        if missing == "drop" and any(is_missing(cells[i]) for i in index):
            continue
        for name, i in zip(names, index):
            cell = cells[i]
            if name in switchable and not is_missing(cell) and not is_number(cell.strip()):
                return name
            if name not in text:
                try:
                    number(path, relative, name, cell)
                except LinregError:
                    number(path, line(relative), name, cell)  # raises, with the file's line
            elif is_missing(cell):
                raise missing_error(f"{path}: line {line(relative)}", name, described(cell))
        if weighted and not float(cells[index[-1]]) > 0:
            raise bad_weight(f"{path}: line {line(relative)}", float(cells[index[-1]]))
    return None


def row_line(path, data, line, row):
    """The file's line of data row `row` (from 0, blank lines skipped) of a chunk."""
    for k, (relative, _) in enumerate(_rows(_text(path, data, line), path, line)):
        if k == row:
            return line(relative)
    raise IndexError(row)
