"""What a cell may hold: the rules every reader applies, and their messages.

In: a cell's text (a CSV's, or a frame's value written as text), where it
is. Out: its float64 value, or the one-line LinregError that says what is
wrong with it and what to do. A missing value -- an empty cell, NA, n/a,
NaN, null, None, in any case -- stops the read or drops its row, and is
never a number or a category.
"""
import math

import pyarrow as pa
import pyarrow.compute as pc

from linreg.errors import LinregError

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
def missing_error(where, column, what):
    return LinregError(
        f"{where}, column {column!r} is {what}; fill it in or remove the row "
        "(linreg fit --missing drop leaves such rows out)"
    )


def everything_dropped(where):
    return LinregError(f"{where}: every row has a missing value in the columns used; nothing is left to fit")


def described(text):
    """A missing cell, as a message names it."""
    return "empty" if not text.strip() else f"missing ({text.strip()!r})"


def is_missing(text):
    return text.strip().lower() in MISSING


def is_number(text):
    """Whether `text` is a number as pyarrow reads one: Python's float() also
    takes digit group underscores and other scripts' digits, pyarrow does not."""
    if not text.isascii() or "_" in text:
        return False
    try:
        float(text)
        return True
    except ValueError:
        return False


def number(path, line, column, text, unit="line"):
    """The value of a cell that must hold a finite number, or the error that
    says why it does not."""
    text = text.strip()
    if text.lower() in MISSING:
        raise missing_error(f"{path}: {unit} {line}", column, described(text))
    if not is_number(text):
        raise LinregError(
            f"{path}: {unit} {line}, column {column!r}: {text!r} is not a number; correct it or remove the row"
        )
    value = float(text)
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


def bad_weight(where, value):
    return LinregError(f"{where}: weight {float(value)!r} is not a positive finite number")


def arrow_message(error):
    """pyarrow's message on one line, without its C++ source locations."""
    lines = [line for line in str(error).splitlines() if line.strip() and not line.lstrip().startswith("/")]
    return " ".join(" ".join(lines).split())[:300] or type(error).__name__


def missing_texts(texts):
    """Which of pyarrow strings (stripped) are missing values, as a numpy mask."""
    return pc.is_in(pc.utf8_lower(texts), value_set=pa.array(sorted(MISSING))).to_numpy(zero_copy_only=False)
