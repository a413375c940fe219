"""Atomic, non-destructive file writing (standard library only)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import BinaryIO, Callable


def _current_umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once at import, before any threads
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; outputs get the permissions an ordinary open() would give them.
_FILE_MODE = 0o666 & ~_current_umask()


def atomic_write(path: str, write: Callable[[BinaryIO], None], *, overwrite: bool) -> None:
    """Write `path` so that it is either absent/old or complete, never half-written.

    The data goes to a temporary file in the same folder, is flushed to disk, then takes the
    final name. With overwrite=False an existing file is never replaced (FileExistsError),
    even if it appears while we write.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(path)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        if os.name == "posix":
            os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            _rename_no_replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_folder(folder)


def _rename_no_replace(tmp: str, path: str) -> None:
    try:
        os.link(tmp, path)  # fails with FileExistsError if the name is taken: no race
    except FileExistsError:
        raise
    except OSError:  # file systems without hard links
        if os.path.lexists(path):
            raise FileExistsError(path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def _fsync_folder(folder: str) -> None:
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
