"""Files lnsmadam writes: the user cache, and checks of output paths before any work.

Caches. Simulator builds (cocotb, the Verilator twin) and the intermediate files of
bitstream builds go under :func:`cache_root`: ``$LNSMADAM_CACHE`` if set, else the
platform's user cache directory (``platformdirs.user_cache_dir("lnsmadam")``, e.g.
``~/.cache/lnsmadam`` on Linux); never the current directory or the source checkout.
Everything in it is keyed by a hash of what it was built from, so concurrent users of one
cache share builds; :func:`locked` serialises two processes building the same key.

Outputs. :func:`check_writable` tells, leaving nothing behind, whether a file or
directory can be written where the user asked, so that a typo fails in the first second
rather than after minutes of training or place-and-route. :func:`check_owned_dir` protects
directories the user owns: a tool writes only into a new or empty directory or into one it
marked as its own earlier (and deletes nothing it did not create).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from pathlib import Path

__all__ = ["CACHE_ENV", "cache_root", "locked", "check_writable", "check_owned_dir",
           "OutputPathError"]

#: Environment variable that moves the whole cache.
CACHE_ENV = "LNSMADAM_CACHE"


class OutputPathError(ValueError):
    """An output path that cannot or must not be written; the message names it."""


def cache_root() -> Path:
    """``$LNSMADAM_CACHE``, else the user cache directory of ``lnsmadam`` (absolute)."""
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser().resolve()
    import platformdirs

    return Path(platformdirs.user_cache_dir("lnsmadam", appauthor=False)).resolve()


@contextlib.contextmanager
def locked(path: str | os.PathLike):
    """Hold an exclusive ``flock`` on ``path`` (created, with its parents, if missing)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def check_writable(path: str | os.PathLike, name: str, kind: str = "file") -> Path:
    """``path`` as a :class:`Path` if a ``kind`` (``"file"`` or ``"dir"``) can be written
    there: an existing one of that kind that is writable, or a new one whose nearest
    existing ancestor is a writable directory (missing parents would be created). Raises
    :class:`OutputPathError` naming ``name`` otherwise. Leaves nothing behind: an existing
    file is opened for appending and closed, a directory gets a probe file it loses at once
    (``os.access`` alone says yes to root everywhere, e.g. in ``/proc`` or on a read-only
    mount, and the write would fail after the work)."""
    p = Path(os.fspath(path)).expanduser()
    if not str(path).strip():
        raise OutputPathError(f"{name} must be a path, got an empty string")
    if p.exists():
        if kind == "file" and p.is_dir():
            raise OutputPathError(f"{name} must be a file, but {p} is a directory")
        if kind == "dir" and not p.is_dir():
            raise OutputPathError(f"{name} must be a directory, but {p} is a file")
        if not os.access(p, os.W_OK):
            raise OutputPathError(f"{name}: {p} is not writable")
        try:
            if p.is_dir():
                _probe_dir(p)
            else:
                with open(p, "a"):
                    pass
        except OSError as exc:
            raise OutputPathError(f"{name}: {p} is not writable ({exc.strerror})") from None
        return p
    parent = p.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputPathError(f"{name}: cannot create {p}: {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputPathError(f"{name}: cannot create {p}: {parent} is not writable")
    try:
        _probe_dir(parent)
    except OSError as exc:
        raise OutputPathError(f"{name}: cannot create {p}: {parent} does not take new files "
                              f"({exc.strerror})") from None
    return p


def _probe_dir(d: Path) -> None:
    fd, probe = tempfile.mkstemp(prefix=".lnsmadam-probe-", dir=d)
    os.close(fd)
    os.unlink(probe)


def check_owned_dir(path: str | os.PathLike, name: str, marker: str, is_ours=None) -> Path:
    """``path`` if a tool that marks its directories with the file ``marker`` may write
    into it: it is new, empty, holds ``marker``, or ``is_ours(path)`` says it was written by
    the tool before the marker existed. Raises :class:`OutputPathError` (naming ``name``)
    for a directory with anything else in it, so that no user file is ever overwritten."""
    p = check_writable(path, name, "dir")
    if not p.exists() or (p / marker).exists() or not any(p.iterdir()):
        return p
    if is_ours is not None and is_ours(p):
        return p
    raise OutputPathError(f"{name}: {p} already holds files that lnsmadam did not write "
                          f"(no {marker} in it): give a new or empty directory")
