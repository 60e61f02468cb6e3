"""Writing a tunebook to ``-o FILE``: a new book, or new tunes appended to an existing one.

Appended tunes continue the book's ``X:`` numbers (the highest ``X:`` found by a plain
``^X:`` scan of the bytes, so that a book in any encoding, or with tunes this project's reader
would skip, still counts every number it has). The whole book, old bytes unchanged and new
tunes after them, is written to a temporary file and renamed over the old one, so a failed
write leaves the old book as it was; a book reached through a symbolic link is written where
the link points, and keeps its permissions. Two runs appending to one book at once are serialised
with an advisory lock on the book's folder (where the platform has ``fcntl``), so neither
loses the other's tunes.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from genseq.errors import GenseqError

_X_FIELD = re.compile(rb"^X:[ \t]*(\d+)", re.MULTILINE)


def highest_x(data: bytes) -> int:
    """The highest ``X:`` number in a tunebook's bytes (0 when it has none)."""
    return max((int(m.group(1)) for m in _X_FIELD.finditer(data)), default=0)


@dataclass
class Book:
    path: Path
    old: bytes  # the existing book (empty when new or replaced)

    @property
    def first_x(self) -> int:
        """The ``X:`` number of the first new tune."""
        return highest_x(self.old) + 1

    def write(self, tunes: str) -> None:
        """The old book, a blank line, then ``tunes``, replacing the file atomically."""
        from genseq.fileio import atomic_write_bytes

        data = self.old
        if data.strip():
            data = data.rstrip(b"\r\n") + b"\n\n"
        try:
            mode = self.path.stat().st_mode if self.old else None
            atomic_write_bytes(self.path, data + tunes.encode("utf-8"))
            if mode is not None:
                os.chmod(self.path, mode)
        except OSError as exc:
            raise GenseqError(f"{self.path}: cannot write ({exc.strerror})") from None


@contextlib.contextmanager
def open_book(path: Path, overwrite: bool = False) -> Iterator[Book]:
    """The book at ``path`` to append to (or to replace, with ``overwrite``), locked against
    other genseq runs until the block ends."""
    path = Path(path)
    if path.is_symlink():  # replace the book, not the link to it
        path = path.resolve()
    if path.is_dir():
        raise GenseqError(f"{path}: is a folder; -o takes a tunebook file")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise GenseqError(f"{folder}: cannot create the folder ({exc.strerror})") from None
    with _folder_lock(folder):
        yield Book(path, b"" if overwrite else _read(path))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
    except OSError as exc:
        raise GenseqError(f"{path}: cannot read the tunebook ({exc.strerror})") from None


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``folder`` (nothing where it cannot be taken)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
