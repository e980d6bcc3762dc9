"""What a command loads before it runs: `--help` answers without TensorFlow,
and building the parser imports no command module but the chosen one."""
import json
import subprocess
import sys

import pytest

PROBE = """
import contextlib, io, json, sys
from linreg.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
loaded = [name for name in ("tensorflow", "numpy", "linreg.cli.demo", "linreg.cli.fit", "linreg.cli.predict",
                            "linreg.cli.bench", "linreg.cli.fitbench") if name in sys.modules]
print(json.dumps([loaded, out.getvalue()]))
"""


@pytest.mark.parametrize("command", ["", "fit", "predict", "demo", "bench"])
def test_help_imports_only_the_chosen_command(command):
    argv = [*command.split(), "--help"]
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded, out = json.loads(done.stdout)
    assert "tensorflow" not in loaded
    own = {"": [], "bench": ["linreg.cli.bench", "linreg.cli.fitbench"]}.get(command, [f"linreg.cli.{command}"])
    assert [name for name in loaded if name.startswith("linreg.cli.")] == own  # bench --fit is bench's own
    assert out.startswith(f"usage: linreg {command}".rstrip() + " ")
    if not command:  # the list of commands still carries every one's summary
        for name in ("demo", "fit", "predict", "bench"):
            assert f"\n    {name} " in out


def test_the_summaries_read_without_importing_are_the_modules_docstrings():
    from linreg.cli import COMMANDS, _docstring

    for module_name in COMMANDS.values():
        __import__(module_name)
        assert _docstring(module_name) == sys.modules[module_name].__doc__.strip()
