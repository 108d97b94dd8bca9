"""Writing files without losing work: whole files or none (atomic replacement), output folders
checked before long work starts, and an exclusive lock on a folder (a training run's), held by
one process and released by the operating system when that process ends, however it ends; and
the first line of an error, which the one-line messages quote."""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; folders are not locked there
    fcntl = None

LOCK_NAME = ".lock"
# Descriptors of the locks this process holds. A forked child (a DataLoader's worker process)
# shares the lock through its copy of the descriptor, so a run killed by SIGKILL kept its
# folder locked until its workers noticed and ended (seconds); children close their copies at
# once instead. flock, not fcntl's per-process record locks: those are dropped when the process
# closes any descriptor of the file, e.g. a second lock_folder reading the holder's line.
_HELD_LOCKS: set[int] = set()


def _close_inherited_locks() -> None:
    """In a forked child: close the parent's lock descriptors (the parent keeps its locks)."""
    for fd in _HELD_LOCKS:
        with contextlib.suppress(OSError):
            os.close(fd)
    _HELD_LOCKS.clear()


if hasattr(os, "register_at_fork"):  # not on Windows, which neither forks nor locks here
    os.register_at_fork(after_in_child=_close_inherited_locks)


class WriteError(OSError):
    """A file or folder cannot be written; the message names it and says why."""


class FolderInUseError(ValueError):
    """Another process holds the folder's lock."""


def first_line(error: BaseException) -> str:
    """An exception's first line of text (its type's name when it has none)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def reason(error: OSError) -> str:
    """``Permission denied``, ``No space left on device``, ... (the message for others)."""
    return error.strerror or str(error) or type(error).__name__


def write_error(message: str, cause: OSError) -> WriteError:
    """A :class:`WriteError` reading ``message: reason`` and keeping the cause's errno."""
    error = WriteError(f"{message}: {reason(cause)}")
    error.errno = cause.errno
    return error


def write_atomic(path: str | Path, data: bytes | memoryview | str | Callable[[Path], object]
                 ) -> Path:
    """Write ``data`` (bytes, text, or a function writing the file it is given) to a temporary
    file beside ``path``, then rename it into place: a run killed or a disk filled mid-write
    leaves the previous file whole. Failures raise :class:`WriteError` naming ``path``."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if callable(data):
            data(temporary)
        else:
            temporary.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(temporary, path)
    except OSError as error:
        raise write_error(f"cannot write {path}", error) from None
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _writable(folder: Path) -> None:
    """Create ``folder`` if needed and write (and drop) a nameless file in it."""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a folder", str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def check_writable(folder: str | Path, what: str = "output folder") -> Path:
    """Create ``folder`` if needed and make sure a file can be written in it, before the work
    whose results go there; :class:`WriteError` naming ``what`` otherwise."""
    folder = Path(folder)
    try:
        _writable(folder)
    except OSError as error:
        raise write_error(f"cannot write {what} {folder}", error) from None
    return folder


def check_writable_file(path: str | Path, what: str = "output") -> Path:
    """:func:`check_writable` for the folder the file ``path`` is to be written in."""
    path = Path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder", str(path))
        _writable(path.parent)
    except OSError as error:
        raise write_error(f"cannot write {what} {path}", error) from None
    return path


@contextlib.contextmanager
def lock_folder(folder: str | Path, holder: str = "process",
                advice: str = "wait for it to end, or choose another folder") -> Iterator[Path]:
    """Hold an exclusive ``flock`` on ``folder/.lock`` (created with the folder if needed) for
    the ``with`` block. A second process gets :class:`FolderInUseError` naming the first (its
    pid, host and start time, written in the lock file). The lock dies with its process, so a
    killed run leaves no stale lock; a folder created here and left empty is removed again."""
    folder = Path(folder)
    created = not folder.exists()
    path = folder / LOCK_NAME
    try:
        folder.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            if fcntl is None:
                break
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                other = os.read(fd, 200).decode(errors="replace").strip() or "unknown process"
                os.close(fd)
                raise FolderInUseError(f"{folder} is in use by another {holder} ({other}); "
                                       f"{advice}") from None
            try:  # the holder may have removed the file between our open and our lock
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}, since "
                     f"{time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
    except OSError as error:
        raise write_error(f"cannot write {folder}", error) from None
    _HELD_LOCKS.add(fd)
    try:
        yield folder
    finally:
        if fd in _HELD_LOCKS:  # not in a forked child, which has closed its copy already
            _HELD_LOCKS.discard(fd)
            path.unlink(missing_ok=True)  # unlinked while locked: see the inode check above
            os.close(fd)
            if created:
                with contextlib.suppress(OSError):
                    folder.rmdir()  # only succeeds when nothing was written
