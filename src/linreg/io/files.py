"""Writing outputs safely: nothing half-written, ever, and nothing written over
what a command reads or over another of its outputs.

Every file and every folder (an export) is written under a temporary name
in its destination folder and renamed into place only when complete
(`atomic_path`); `os.replace` is atomic on one file system, so a reader sees
the old file or the new one, never a torn one.
Before any work, the commands check their outputs here: apart from the
inputs and from each other (check_apart), writable (check_output), and an
existing export replaced only when it holds nothing but an export
(check_export).
"""
import contextlib
import glob
import itertools
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
def atomic_path(path, folder=False, what=None):
    """Yield a temporary file -- with folder=True, an empty folder -- beside
    `path`; move it to `path` when the block ends without an error.

    A file keeps the old one's permissions (a new one gets those the umask
    gives) and replaces it in one rename. A folder gets the umask's
    permissions; since no rename replaces a folder that holds anything, the
    old one is first moved aside under a temporary name, then removed (or
    put back if the new one cannot take its place). `what` names the output in messages ("export folder").
    """
    shown = path if what is None else f"{what} {path}"
    path = Path(path) if folder else _target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(path)
        if folder:
            tmp = tempfile.mkdtemp(prefix=temporary_prefix(path), dir=path.parent)
            mode = 0o777 & ~umask()
        else:
            mode = stat.S_IMODE(os.stat(path).st_mode) if path.exists() else 0o666 & ~umask()
            fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=".tmp" + path.suffix, dir=path.parent)
            os.close(fd)
        os.chmod(tmp, mode)  # mkstemp and mkdtemp make them private
    except OSError as error:
        raise LinregError(f"cannot write {shown}: {error.strerror}") from None
    old = None
    try:
        yield Path(tmp)
        if folder and os.path.lexists(path):
            old = tempfile.mkdtemp(prefix=temporary_prefix(path), suffix=".old", dir=path.parent)
            os.replace(path, Path(old) / path.name)
        try:
            os.replace(tmp, path)
        except OSError:
            if old is not None:  # the old folder back in its place
                os.replace(Path(old) / path.name, path)
            raise
    except OSError as error:
        raise LinregError(f"cannot write {shown}: {error.strerror}") from None
    finally:
        for leftover in (tmp, old):
            if leftover is not None and os.path.isdir(leftover):
                shutil.rmtree(leftover, ignore_errors=True)
            elif leftover is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(leftover)


def temporary_prefix(path):
    """The start of the name of a temporary file or folder beside `path`: it
    names `path` and this process, so that leftovers can be recognised."""
    return f".{Path(path).name}.{os.getpid()}."


def remove_leftovers(path):
    """Remove what a killed run of linreg left beside `path`: temporary files
    and folders named by `temporary_prefix` for a process that no longer runs
    (a live one may be writing them right now)."""
    path = Path(path)
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.")
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

    Missing folders on the way are fine: they are created when the output is
    written, not now, so a command that then fails leaves none behind. What
    already stands at `path` must be of the right kind, and the nearest folder
    that exists writable.
    """
    path = Path(path)
    if not folder:
        path = _target(path)
    if path.exists() and path.is_dir() != folder:
        kind = "a folder" if path.is_dir() else "a file"
        raise LinregError(f"cannot write {what} {path}: it is {kind}, expected {'a folder' if folder else 'a file'}")
    start = path.absolute() if folder else path.absolute().parent
    place = next(p for p in (start, *start.parents) if p.exists())
    if not place.is_dir():
        raise LinregError(f"cannot write {what} {path}: {place} is a file, not a folder")
    # Permissions alone do not tell (root, read-only or special file systems):
    # make and remove a temporary folder where the output will go.
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".linreg-check.", dir=place))
    except OSError as error:
        raise LinregError(f"cannot write {what} {path}: {place}: {error.strerror}") from None


def check_apart(inputs, outputs):
    """Refuse, before any work, an output that would write over what the
    command reads or over another of its outputs.

    inputs: {description: path}; a path may be a file, a folder (everything
    in it is read) or a glob pattern (the files it matches). outputs: {flag:
    path}, or {flag: [paths]} for an output that is a few files of known
    names in a folder that may hold other things (the plots of --out).
    Paths are compared as they really are, symbolic links followed; two of
    them clash when they are the same or one is inside the other.
    """
    read = [(f"{what} {found}", _real(found)) for what, path in inputs.items() for found in _named_by(path)]
    written = [(f"{flag} {shown}", _real(shown)) for flag, path in outputs.items() if path is not None
               for shown in (path if isinstance(path, list) else [path])]  # fmt: skip
    for (shown, path), (other, real) in [*itertools.product(written, read), *itertools.combinations(written, 2)]:
        if relation := _relation(path, real):
            raise LinregError(
                f"{shown} {relation} {other}; give every output a place of its own, apart from the inputs "
                "and the other outputs"
            )


def _relation(path, other):
    """How `path` stands to `other`, in the words of the message; None when apart."""
    if path == other:
        return "is the same path as"
    if other in path.parents:
        return "is inside"
    if path in other.parents:
        return "holds"
    return None


def _named_by(data):
    """The paths an input names: itself, or the files a glob pattern matches
    (as the readers take them); nothing for standard input."""
    text = os.fspath(data)
    if text == "-":
        return []
    return [text] if os.path.lexists(text) else glob.glob(text, recursive=True) or [text]


def _real(path):
    return Path(os.path.realpath(path))


# What `tf.saved_model.save` writes for a linreg model (its assets folder
# stays empty), and the metadata beside it: an export folder that holds
# anything else is not only ours to replace.
METADATA = "linreg.json"
_EXPORT_FILES = {METADATA, "saved_model.pb", "fingerprint.pb"}
_EXPORT_FOLDERS = {"assets": re.compile(r"(?!)"), "variables": re.compile(r"variables\.(index|data-\d+-of-\d+)")}


def is_export(directory):
    """Whether `directory` is a folder that linreg exported."""
    directory = Path(directory)
    return directory.is_dir() and (directory / METADATA).is_file() and (directory / "saved_model.pb").is_file()


def _foreign(directory):
    """What an export folder holds that linreg did not write there."""
    found = []
    for entry in sorted(directory.iterdir()):
        ours = entry.name in _EXPORT_FILES and entry.is_file() or entry.name in _EXPORT_FOLDERS and entry.is_dir()
        if entry.is_symlink() or not ours:
            found.append(entry.name + "/" * entry.is_dir())
        elif entry.is_dir():
            inside = _EXPORT_FOLDERS[entry.name]
            found += [f"{entry.name}/{item.name}" for item in sorted(entry.iterdir())
                      if item.is_symlink() or not item.is_file() or not inside.fullmatch(item.name)]  # fmt: skip
    return found


def check_export(directory, force=False):
    """Refuse an existing export folder unless it may be replaced: only with
    force, and only an earlier linreg export with nothing else in it."""
    directory = Path(directory)
    if not os.path.lexists(directory):
        check_output(directory, "--export", folder=True)
        return
    if not force:
        raise LinregError(f"export folder {directory} already exists; choose another or add --force to replace it")
    if directory.is_symlink() or not directory.is_dir():
        found = "a symbolic link" if directory.is_symlink() else "not a folder"
    else:
        foreign = _foreign(directory)
        if is_export(directory) and not foreign:
            check_output(directory.absolute().parent, "--export (the folder that holds it)", folder=True)
            return
        more = f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        found = f"a folder holding {', '.join(foreign[:5])}{more}" if foreign else "a folder with no whole export in it"
    raise LinregError(
        f"{directory} is not a linreg export that may be replaced: it is {found}; --force replaces only an "
        "earlier export with nothing else in it, so it was left untouched: choose another folder"
    )
