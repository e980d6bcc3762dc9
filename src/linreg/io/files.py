"""Writing outputs safely: nothing half-written, ever.

Every file is written under a temporary name in its destination folder and
renamed into place only when complete; `os.replace` is atomic on one file
system, so a reader sees the old file or the new one, never a torn one.
"""
import contextlib
import json
import os
import tempfile
from pathlib import Path

from linreg.errors import LinregError


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; rename it to `path` on success."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + path.suffix, dir=path.parent)
        os.close(fd)
        # mkstemp makes the file private (0600); give it the permissions any
        # newly created file would have, as the user's umask says.
        os.chmod(tmp, 0o666 & ~umask())
    except OSError as error:
        raise LinregError(f"cannot write {path}: {error.strerror}") from None
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as error:
        raise LinregError(f"cannot write {path}: {error.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


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
