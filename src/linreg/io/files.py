"""Writing outputs safely: nothing half-written, ever.

Every file is written under a temporary name in its destination folder and
renamed into place only when complete; `os.replace` is atomic on one file
system, so a reader sees the old file or the new one, never a torn one.
"""
import contextlib
import json
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from linreg.errors import LinregError


def _target(path):
    """Where writing `path` really goes: through a symbolic link to its file;
    never over a device, a FIFO or a socket (renaming a file over one would
    replace it, not write to it)."""
    path = Path(path)
    real = Path(os.path.realpath(path)) if path.is_symlink() else path
    if real.exists() and not real.is_file():
        kind = "a folder" if real.is_dir() else "not a regular file (a device, FIFO or socket)"
        raise LinregError(f"cannot write {path}: it is {kind}; give the name of a file")
    return real


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it to `path` on success.

    An existing file keeps its permissions; a new one gets those the umask gives."""
    shown, path = path, _target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = stat.S_IMODE(os.stat(path).st_mode) if path.exists() else 0o666 & ~umask()
        remove_leftovers(path)
        fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".tmp" + path.suffix, dir=path.parent)
        os.close(fd)
        os.chmod(tmp, mode)  # mkstemp makes the file private (0600)
    except OSError as error:
        raise LinregError(f"cannot write {shown}: {error.strerror}") from None
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as error:
        raise LinregError(f"cannot write {path}: {error.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def temporary_prefix(path):
    """The start of the name of a temporary file or folder beside `path`: it
    names `path` and this process, so that leftovers can be recognised."""
    return f".{Path(path).name}.{os.getpid()}."


def remove_leftovers(path):
    """Remove what a killed run of linreg left beside `path`: temporary files
    and folders named by `temporary_prefix` for a process that no longer runs
    (a live one may be writing them right now)."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(?:old\.)?(\d+)\.")
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        match = pattern.match(entry.name)
        if match and not _alive(int(match.group(1))):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    entry.unlink()


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text):
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path, data):
    write_text(path, json.dumps(data, indent=2) + "\n")


def make_dir(path):
    """Create an output folder (and its parents); say clearly when we cannot."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise LinregError(f"cannot create folder {path}: {error.strerror}") from None
    return path


def check_output(path, what, folder=False):
    """Before any work: can `path` be written? One message shape for every output.

    A file's folder must already exist (nothing is created behind the user's
    back); a folder may be created, inside an existing one. Whatever already
    stands at `path` must be of the right kind, and the place writable.
    """
    path = Path(path)
    if not folder:
        path = _target(path)
    if path.exists() and path.is_dir() != folder:
        kind = "a folder" if path.is_dir() else "a file"
        raise LinregError(f"cannot write {what} {path}: it is {kind}, expected {'a folder' if folder else 'a file'}")
    place = path if folder and path.is_dir() else path.absolute().parent
    if not place.is_dir():
        raise LinregError(f"cannot write {what} {path}: {place} is not an existing folder")
    # Permissions alone do not tell (root, read-only or special file systems):
    # make and remove a temporary folder where the output will go.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".linreg-check.", dir=place))
    except OSError as error:
        raise LinregError(f"cannot write {what} {path}: {place}: {error.strerror}") from None
