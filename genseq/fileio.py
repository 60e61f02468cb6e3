"""Atomic writes: a crash, Ctrl-C or full disk never leaves a half-written file or directory in
place of a good one.

Files are written to a temporary name in the same directory (``os.replace`` is atomic only
within one filesystem), flushed and fsynced, then moved into place. Directories (checkpoints,
token data) are built in a staging directory beside the target and swapped in with two renames;
``resolve_dir`` finds the previous version if a crash fell between them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(path: Path) -> None:
    """Persist a directory's entries (renames) where the platform allows it."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "wb") -> Iterator:
    """Open a temporary file beside ``path``; on success it replaces ``path`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_file(path, "w") as f:
        f.write(text)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_file(path, "wb") as f:
        f.write(data)


def _old_name(target: Path) -> Path:
    return target.parent / f".{target.name}.old"


def staging_dir(target: Path) -> Path:
    """A fresh, empty staging directory beside ``target`` (same filesystem)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    os.chmod(path, 0o777 & ~_umask())
    return path


def replace_dir(staging: Path, target: Path) -> None:
    """Swap a fully written staging directory into ``target``.

    ``rename`` cannot replace a non-empty directory, so the old one is first renamed aside; if
    the process dies between the two renames, ``resolve_dir`` still finds a complete copy.
    """
    mode = 0o666 & ~_umask()
    for child in staging.iterdir():
        if child.is_file():
            os.chmod(child, mode)
            with open(child, "rb") as f:
                os.fsync(f.fileno())
    fsync_dir(staging)
    old = _old_name(target)
    if target.exists():  # keep a complete copy at every moment: target, or old
        if old.exists():
            shutil.rmtree(old)
        os.rename(target, old)
    os.rename(staging, target)
    fsync_dir(target.parent)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def resolve_dir(target: Path) -> Path:
    """``target`` if present, else the complete previous copy a crash mid-swap left behind."""
    target = Path(target)
    if not target.exists() and _old_name(target).exists():
        return _old_name(target)
    return target


def remove_stale_staging(parent: Path) -> None:
    """Remove staging directories left by a killed process (they are never complete)."""
    if not parent.is_dir():
        return
    for child in parent.glob(".*.tmp"):
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                child.unlink()
