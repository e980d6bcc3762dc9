"""Command line: `linreg <command> [flags]`, errors as one line and an exit code.

Exit codes: 0 success, 2 bad input (flags, files), 3 training diverged.
Each command lives in its own module with `add_arguments(parser)` and
`run(args)`; this file only wires them up and turns LinregError into
`error: …` on stderr.
"""
import argparse
import importlib
import math
import sys
from pathlib import Path

from linreg.errors import LinregError


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a mistake is one `error: …` line and exit code 2."""

    def error(self, message):
        raise LinregError(message)


# --- flag types: each checks its value where it enters and says what to do ---


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


def int_at_least(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
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


# --- wiring ---


# Each command's module, imported only when that command runs (or when the
# full list is asked for): `linreg demo` need not load what `fit` or `bench` use.
COMMANDS = {
    "demo": "linreg.demo",
    "fit": "linreg.fit",
    "predict": "linreg.predict",
    "bench": "linreg.bench",
}


def build_parser(argv=()):
    parser = ArgumentParser(
        prog="linreg",
        description="Linear regression trained by a hand-written TensorFlow loop (GradientTape, assign_sub).",
        epilog="Exit codes: 0 success, 2 bad input, 3 training diverged.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    chosen = next((arg for arg in argv if arg in COMMANDS), None)
    for name, module_name in COMMANDS.items():
        if chosen not in (None, name):
            sub.add_parser(name)  # never parsed in this run: no need to load it
            continue
        module = importlib.import_module(module_name)
        doc = (module.__doc__ or name).strip()
        module.add_arguments(sub.add_parser(name, help=doc.splitlines()[0], description=doc))
    return parser


def main(argv=None):
    """Run one command; return its exit code (the console script exits with it)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser(argv[:1]).parse_args(argv)
        return args.run(args) or 0
    except LinregError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
