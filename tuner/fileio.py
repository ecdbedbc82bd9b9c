"""Atomic file writes (a reader never sees half a result file, a crash never leaves one), and
bounded reads of regular files only."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tuner.errors import TunerError


def fsync_dir(path: Path) -> None:
    """Sync a directory's entries (a file created, renamed or removed in it) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_target(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it is synced and renamed onto
    ``path``, on any error removed (``path`` keeps its old content or stays absent)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        # The rename lives in the directory: until it is synced too, a crash may undo it.
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_target(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def create_exclusive_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` only if no file is there: complete or absent, as
    :func:`atomic_write_text`, and a FileExistsError when ``path`` exists, even when another
    process creates it at the same moment (a hard link never replaces its target)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)
        fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def read_regular_file(path: Path, limit: int, what: str) -> bytes:
    """The bytes of ``path``, which must be a regular file (a symlink to one is followed) of at
    most ``limit`` bytes; otherwise a TunerError naming the file. Failing to open or read it
    raises the OSError, for the caller to word.

    A FIFO or a device found under a file name would block or never end: the file is opened
    without blocking and its type checked on the open descriptor, before a byte is read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "a FIFO, device or socket"
            raise TunerError(f"{what} must be a regular file, but it is {kind}", file=str(path))
        # read(n) allocates n bytes up front: ask for the size the file has, then go on in
        # chunks past it only if it grew meanwhile, to one byte past the limit.
        parts = [f.read(min(info.st_size, limit) + 1)]
        total = len(parts[0])
        while total <= limit and len(parts[-1]) > 0 and total > info.st_size:
            parts.append(f.read(min(1 << 20, limit + 1 - total)))
            total += len(parts[-1])
        data = b"".join(parts) if len(parts) > 1 else parts[0]
    if len(data) > limit:
        raise TunerError(
            f"{what} is larger than {limit:,} bytes, the most tuner reads", file=str(path)
        )
    return data
