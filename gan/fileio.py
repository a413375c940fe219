"""Atomic, non-destructive file writing (standard library only)."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import tempfile
from typing import BinaryIO, Callable


def _current_umask() -> int:
    mask = os.umask(0)  # the only way to read it; done once at import, before any threads
    os.umask(mask)
    return mask


# mkstemp creates 0600 files; outputs get the permissions an ordinary open() would give them.
_FILE_MODE = 0o666 & ~_current_umask()
# Linux: an unnamed file, linked in under its name through /proc when complete.
_O_TMPFILE = getattr(os, "O_TMPFILE", 0) if os.path.isdir("/proc/self/fd") else 0


class _Writer(io.BufferedWriter):
    """Remembers the first write error: some writers (torch.save's zip writer) swallow the
    OSError and raise a RuntimeError of their own, which would hide "disk full"."""

    error: OSError | None = None

    def write(self, data) -> int:
        try:
            return super().write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        try:
            super().flush()
        except OSError as exc:
            self.error = self.error or exc
            raise


def atomic_write(path: str, write: Callable[[BinaryIO], None], *, overwrite: bool) -> None:
    """Write `path` so that it is either absent/old or complete, never half-written.

    The data goes to an unnamed file (Linux O_TMPFILE; elsewhere a hidden temporary file) in
    the same folder, is flushed to disk, then takes the final name. A process killed while it
    writes leaves nothing behind on Linux (a hidden ".NAME.*.tmp" file elsewhere). With
    overwrite=False an existing file is never replaced (FileExistsError), even if it appears
    while we write. A write that fails (disk full, file size limit) raises OSError naming `path`.
    """
    folder = os.path.dirname(os.path.abspath(path))
    name = os.path.basename(path)
    if not overwrite and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, "File exists", path)
    try:
        fd, tmp = _open_temp(folder, name)
    except OSError as exc:  # name the file asked for, not a temporary name
        raise OSError(exc.errno, exc.strerror or str(exc), path) from None
    handle = _Writer(io.FileIO(fd, "r+b" if tmp is None else "wb"))
    try:
        try:
            write(handle)
            handle.flush()
            os.fsync(fd)
        except BaseException as exc:
            if handle.error is not None or isinstance(exc, OSError):
                error = handle.error or exc
                raise OSError(error.errno, error.strerror or str(error), path) from None
            raise
        if tmp is None:
            try:
                _link_unnamed(fd, path, overwrite)
            except FileExistsError:
                raise
            except OSError:  # /proc refused the link (a sandbox?): go through a named file
                tmp = _copy_to_named(fd, folder, name)
        if tmp is not None:
            if overwrite:
                os.replace(tmp, path)
            else:
                _rename_no_replace(tmp, path)
            tmp = None
    finally:
        with contextlib.suppress(OSError):
            handle.close()
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _fsync_folder(folder)


def _open_temp(folder: str, name: str) -> tuple[int, str | None]:
    """(fd, temporary path), or (fd, None) for an unnamed O_TMPFILE file."""
    if _O_TMPFILE:
        try:
            return os.open(folder, _O_TMPFILE | os.O_RDWR | getattr(os, "O_CLOEXEC", 0),
                           0o666), None  # the umask applies, as for open()
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise  # ENOENT, EACCES, EROFS, ENOSPC...: mkstemp would fail the same way
            # a file system without O_TMPFILE: fall back to a named temporary file
    return _named_temp(folder, name)


def _named_temp(folder: str, name: str) -> tuple[int, str]:
    fd, tmp = tempfile.mkstemp(prefix="." + name + ".", suffix=".tmp", dir=folder)
    if os.name == "posix":
        os.fchmod(fd, _FILE_MODE)
    return fd, tmp


def _copy_to_named(fd: int, folder: str, name: str) -> str:
    out, tmp = _named_temp(folder, name)
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        while chunk := os.read(fd, 1 << 20):
            view = memoryview(chunk)
            while view:
                view = view[os.write(out, view):]
        os.fsync(out)
    except BaseException:
        os.close(out)
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    os.close(out)
    return tmp


def _link_unnamed(fd: int, path: str, overwrite: bool) -> None:
    """Give the unnamed file its name: link() refuses an existing name, so no race."""
    source = f"/proc/self/fd/{fd}"
    try:
        _link_following(source, path)
        return
    except FileExistsError:
        if not overwrite:
            raise FileExistsError(errno.EEXIST, "File exists", path) from None
    # Replace: link under a temporary name, then rename over the old file (atomic).
    folder, name = os.path.split(path)
    while True:
        tmp = os.path.join(folder, f".{name}.{os.urandom(6).hex()}.tmp")
        try:
            _link_following(source, tmp)
            break
        except FileExistsError:
            continue
    try:
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _link_following(source: str, path: str) -> None:
    """link() through the /proc symlink to the file itself (linkat with AT_SYMLINK_FOLLOW:
    os.link uses plain link(), which would try to link the symlink, unless a dir fd is given)."""
    root = os.open("/", os.O_RDONLY)
    try:
        os.link(source, path, src_dir_fd=root, follow_symlinks=True)
    finally:
        os.close(root)


def _rename_no_replace(tmp: str, path: str) -> None:
    try:
        os.link(tmp, path)  # fails with FileExistsError if the name is taken: no race
    except FileExistsError:
        raise
    except OSError:  # file systems without hard links
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", path) from None
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
