"""Flag types: each checks its value where it enters and says what to do."""
import argparse
import math
from pathlib import Path

from linreg.errors import LinregError


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a mistake is one `error: …` line and exit code 2; and a
    command's `check(args)` (a default its parser sets) looks at its flags
    together once they are all parsed, before the command imports anything."""

    def error(self, message):
        raise LinregError(message)

    def parse_args(self, args=None, namespace=None):
        parsed = super().parse_args(args, namespace)
        if hasattr(parsed, "check"):
            parsed.check(parsed)
        return parsed


def _number(text, kind):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def finite_float(text):
    return _number(text, float)


def positive_float(text):
    value = _number(text, float)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def non_negative_float(text):
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def int_at_least(minimum, maximum=None):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            shown = f"{maximum:.0e}" if maximum >= 10**6 else str(maximum)
            raise argparse.ArgumentTypeError(f"must be at most {shown}, got {text}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def output_dir(text):
    """A folder to write into: it may exist (as a folder) or be created later."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} exists and is not a folder")
    return path


def output_file(text):
    """A file to write: not a folder, and no file standing where its folder goes."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, expected a file name")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise argparse.ArgumentTypeError(f"cannot write {text}: {parent} is a file, not a folder")
    return path
