"""One `genseq train` per run directory, and nothing lost when a command fails.

``locked`` holds an advisory lock (``flock``) on ``RUN/.lock`` while a process works in the run
directory; the kernel drops it when the process ends, however it ends, so a ``kill -9`` never
leaves a stale lock. A second process is refused with the first one's pid.

``guarded`` makes a training command all or nothing for what was there before it: ``--overwrite``
moves the old run into ``RUN/.replaced`` and deletes it only once the new run has a checkpoint;
a command that fails before then removes what it created and puts the old run back. A process
killed in between leaves ``.replaced`` behind, and the next command on the run directory
(``recover``) puts it back.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from genseq.errors import GenseqError
from genseq.fileio import resolve_dir

LOCK_NAME = ".lock"
REPLACED_NAME = ".replaced"
KEPT = (LOCK_NAME, REPLACED_NAME)  # the guard's own entries, never part of a run

_held: dict[Path, int] = {}  # run directories this process holds the lock of: their fds


@contextmanager
def locked(run_dir: Path, enabled: bool = True) -> Iterator[None]:
    """Hold ``run_dir``'s lock (re-entrant within a process; ``enabled``: False on the ranks
    of a multi-process run other than 0, which work under rank 0's lock)."""
    key = Path(run_dir).resolve()
    if not enabled or key in _held:
        yield
        return
    if Path(run_dir).exists() and not Path(run_dir).is_dir():
        raise GenseqError(f"{run_dir} is a file; choose another -o")
    created = not Path(run_dir).exists()
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    try:
        fd = _acquire(Path(run_dir))
    except GenseqError:
        if created:
            _remove_if_empty(Path(run_dir))
        raise
    _held[key] = fd
    try:
        yield
    finally:
        if _held.get(key) == fd:  # not released early
            del _held[key]
            os.close(fd)
        if created:  # a command that made the directory and left nothing in it
            _remove_if_empty(Path(run_dir))


def release(run_dir: Path) -> None:
    """Let go of a held lock early (before handing the run to other processes)."""
    fd = _held.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        os.close(fd)


def _acquire(run_dir: Path) -> int:
    import fcntl

    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
        os.close(fd)
        raise GenseqError(
            f"{run_dir} is in use by another genseq process (pid {holder}); wait for it to "
            "end or choose another -o"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
    return fd


def has_checkpoint(run_dir: Path) -> bool:
    return (resolve_dir(Path(run_dir) / "last") / "config.json").is_file()


def recover(run_dir: Path) -> None:
    """Finish what a killed ``--overwrite`` left: the old run goes back unless the new one
    has a checkpoint, in which case the old one is deleted as it would have been."""
    aside = Path(run_dir) / REPLACED_NAME
    if aside.is_dir():
        if has_checkpoint(run_dir):
            shutil.rmtree(aside)
        else:
            _remove_new(run_dir, before=set())
            _put_back(run_dir)


@contextmanager
def guarded(run_dir: Path, overwrite: bool) -> Iterator[None]:
    """Run a training command on ``run_dir`` so that a failure before its first checkpoint
    leaves the directory as it found it (``overwrite``: the old run is set aside meanwhile)."""
    run_dir = Path(run_dir)
    existed = run_dir.exists()
    if overwrite:
        _set_aside(run_dir)
    before = _entries(run_dir)
    try:
        yield
    except BaseException:
        if not has_checkpoint(run_dir):
            _remove_new(run_dir, before)
            _put_back(run_dir)
            if not existed:
                _remove_if_empty(run_dir)
        raise
    finally:
        if (run_dir / REPLACED_NAME).is_dir():
            shutil.rmtree(run_dir / REPLACED_NAME)


def _entries(run_dir: Path) -> set[str]:
    if not run_dir.is_dir():
        return set()
    return {p.name for p in run_dir.iterdir() if p.name not in KEPT}


def _set_aside(run_dir: Path) -> None:
    names = _entries(run_dir)
    if not names:
        return
    aside = run_dir / REPLACED_NAME
    aside.mkdir()
    for name in names:
        (run_dir / name).rename(aside / name)


def _remove_new(run_dir: Path, before: set[str]) -> None:
    for name in _entries(run_dir) - before:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _put_back(run_dir: Path) -> None:
    aside = run_dir / REPLACED_NAME
    if not aside.is_dir():
        return
    for path in aside.iterdir():
        path.rename(run_dir / path.name)
    aside.rmdir()


def _remove_if_empty(run_dir: Path) -> None:
    """A run directory a command created, holding nothing but the guard's files: gone again."""
    if run_dir.is_dir() and _entries(run_dir) == set():
        shutil.rmtree(run_dir, ignore_errors=True)
