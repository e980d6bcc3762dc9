"""Command line: `linreg <command> [flags]`, errors as one line and an exit code.

Exit codes: 0 success, 2 bad input (flags, files), 3 training diverged,
4 not converged, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
Each command lives in its own module with `add_arguments(parser)` and
`run(args)`; the modules import TensorFlow only inside `run`, so `--help`
answers at once. This file wires them up and turns LinregError into
`error: …` on stderr.
"""
import argparse
import importlib
import os
import signal
import sys
from pathlib import Path

from linreg.cli.flags import ArgumentParser
from linreg.errors import LinregError

COMMANDS = {
    "demo": "linreg.cli.demo",
    "fit": "linreg.cli.fit",
    "predict": "linreg.cli.predict",
    "bench": "linreg.cli.bench",
}


def build_parser(full=tuple(COMMANDS)):
    """The parser. Commands named in `full` get their flags (importing their
    module); the others only their one-line help, read from the module's
    docstring without importing it -- so `linreg fit --help` loads neither
    TensorFlow nor the benchmark's modules."""
    parser = ArgumentParser(
        prog="linreg",
        description="Linear regression trained by a hand-written TensorFlow loop (GradientTape, assign_sub).",
        epilog="Exit codes: 0 success, 2 bad input, 3 training diverged, 4 not converged, 130/143 interrupted.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    sub.required = True
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name) if name in full else None
        doc = (module.__doc__ if module else _docstring(module_name)) or name
        # The description is the module's docstring, laid out by hand: keep its line breaks.
        command = sub.add_parser(
            name, help=doc.strip().splitlines()[0], description=doc.strip(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        if module:
            module.add_arguments(command)
    return parser


def _docstring(module_name):
    import ast
    import importlib.util

    source = Path(importlib.util.find_spec(module_name).origin).read_text(encoding="utf-8")
    return ast.get_docstring(ast.parse(source))


def import_tensorflow_quietly():
    """Import TensorFlow without its log lines on stderr (linreg/quiet.py), and
    keep its Python logger at ERROR: a command's stderr holds only its own
    `error: …` line."""
    from linreg.quiet import import_tensorflow

    import_tensorflow().get_logger().setLevel("ERROR")


def console():
    """The `linreg` command (and `python -m linreg`, `python main.py`): main(), then exit with its code."""
    sys.exit(main(exiting=True))


def main(argv=None, exiting=False):
    """Run one command; return its exit code. exiting: the process ends with
    the command, so once the command is over a Ctrl-C is ignored -- its
    outputs are written, and the interpreter's shutdown (a moment, with
    TensorFlow loaded) would otherwise end by the signal, with no word."""
    from linreg.engine.signals import SIGNALS, raise_interrupted

    argv = sys.argv[1:] if argv is None else list(argv)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        # SIGTERM stops the command the way Ctrl-C does: `finally` blocks
        # remove temporary files, and the user sees one line.
        if previous is not signal.SIG_IGN:  # an ignored SIGTERM stays ignored
            signal.signal(signal.SIGTERM, raise_interrupted)
        if os.environ.get("TF_CONFIG"):
            # A worker (the launcher refuses TF_CONFIG). Before any thread
            # starts, so that all inherit it -- even before the flags, whose
            # checks import numpy, which starts its BLAS threads: SIGINT and
            # SIGTERM reach it only through its watchdog (engine/watchdog.py).
            signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
            from linreg.engine.watchdog import watchdog

            watchdog()  # its start is the worker's, for the deadline to join the group
            # TensorFlow's C++ code logs every aborted collective and a taken
            # port at level E, which a user's usual 2 lets through; stderr
            # should hold only our one line.
            os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
        if os.environ.get("LINREG_PIN_CORES") == "1":  # one thread for numpy's BLAS, before numpy starts it
            os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
            os.environ.setdefault("OMP_NUM_THREADS", "1")
        chosen = argv[:1] if argv[:1] and argv[0] in COMMANDS else ()
        args = build_parser(full=chosen).parse_args(argv)
        args.argv = argv
        if getattr(args, "workers", 1) > 1:  # the launcher itself never imports TensorFlow
            return args.launch(args)
        import_tensorflow_quietly()
        return args.run(args) or 0
    except LinregError as error:
        print(f"error: {error}", file=sys.stderr)
        if getattr(error, "leave_at_once", False):
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(error.exit_code)
        return error.exit_code
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    except BrokenPipeError:
        # The reader of our output went away (`linreg fit ... | head`): not an
        # error worth a traceback. Point stdout at /dev/null so that Python's
        # final flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    finally:
        # Ctrl-C ignored from here on when the process ends with the command.
        # Written inline: Python delivers a signal at a function's entry, so
        # one that arrives now is raised inside the `try` below, in
        # signal.signal itself, and is ignored with the rest.
        while exiting:
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                exiting = False
            except KeyboardInterrupt:
                pass
        signal.signal(signal.SIGTERM, previous)
