"""Numbered output files (``tune_001.mid``, ``tune_001.wav``, ...) that never replace the
files of an earlier run unless asked.

One run's items share one number across every folder it writes, so ``tune_004.mid``,
``tune_004.wav`` and ``tune_004.png`` are the same tune. The first number is the one after the
highest ``STEM_NNN.*`` already in any of those folders (whatever the suffix), so a second run
into ``out/`` continues the numbering. Numbers past 999 simply grow a digit (``tune_1000``).

Two runs writing into the same folder at once must not replace each other's files, and every
file is written atomically (a temporary file renamed over the target), which would replace
silently. So the names are *claimed* first: each one is created empty with ``O_CREAT |
O_EXCL``, which exactly one process can do; a run that loses a name gives back what it had
claimed, rescans and tries the numbers after the highest it now sees (so runs that race can
leave a gap in the numbering, never a replaced file). The atomic write then replaces the
run's own empty placeholder. Placeholders that were never filled (a failed or interrupted
write) are removed on the way out, so a failure leaves no empty or half-written file behind
(only a process killed outright can leave an empty one, which the next scan simply counts).

With ``overwrite`` the numbering starts again at 1 and existing files are replaced.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from genseq.errors import GenseqError

Place = tuple[Path, str]  # (folder, suffix such as ".mid")
CLAIM_TRIES = 100  # rescans before giving up on a folder that other runs keep filling


def numbered_name(stem: str, number: int, suffix: str) -> str:
    """``tune_007.mid``: three digits at least, more past 999."""
    return f"{stem}_{number:03d}{suffix}"


def highest_number(folders: Iterable[Path], stem: str = "tune") -> int:
    """The highest N of a ``STEM_N.anything`` file in ``folders`` (0 when there is none; a
    folder that does not exist yet holds none)."""
    pattern = re.compile(rf"{re.escape(stem)}_(\d+)\.")
    highest = 0
    for folder in set(folders):
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise GenseqError(f"{folder}: cannot read the folder ({exc.strerror})") from None
        for name in names:
            if match := pattern.match(name):
                highest = max(highest, int(match.group(1)))
    return highest


def next_number(places: Iterable[Place], stem: str = "tune") -> int:
    """The first number after the highest ``STEM_N.*`` in any folder of ``places``."""
    return highest_number((folder for folder, _ in places), stem) + 1


@dataclass(frozen=True)
class Numbering:
    """The numbers of one run: item ``i`` (0-based) is number ``first + i`` everywhere."""

    first: int
    stem: str = "tune"

    def number(self, index: int) -> int:
        return self.first + index

    def path(self, index: int, folder: Path, suffix: str) -> Path:
        return Path(folder) / numbered_name(self.stem, self.number(index), suffix)


@contextlib.contextmanager
def claim_numbers(
    places: Sequence[Place], count: int, *, stem: str = "tune", overwrite: bool = False
) -> Iterator[Numbering]:
    """Numbers for ``count`` items written to every ``(folder, suffix)`` of ``places``.

    Without ``overwrite`` every name is claimed before the block runs, and the claims that
    the block did not fill are removed when it ends, however it ends.
    """
    places = list(dict.fromkeys((Path(f), s) for f, s in places))
    if overwrite or not places or count < 1:
        yield Numbering(1 if overwrite else next_number(places, stem), stem)
        return
    for _ in range(CLAIM_TRIES):
        numbering = Numbering(next_number(places, stem), stem)
        claims = _claim(numbering, places, count)
        if claims is None:
            continue  # another run took one of these names first: rescan
        try:
            yield numbering
        finally:
            _release(claims)
        return
    raise GenseqError(
        f"{places[0][0]}: could not claim new file names; other runs keep writing there"
    )


def _claim(numbering: Numbering, places: list[Place], count: int) -> list | None:
    """Every name created empty and exclusively: the claims (path, device, inode), or None
    when another process holds one of them (then nothing stays claimed)."""
    claims: list[tuple[Path, int, int]] = []
    try:
        for index in range(count):
            for folder, suffix in places:
                path = numbering.path(index, folder, suffix)
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
                st = os.fstat(fd)
                os.close(fd)
                claims.append((path, st.st_dev, st.st_ino))
    except FileExistsError:
        _release(claims)
        return None
    except OSError as exc:
        _release(claims)
        where = exc.filename and Path(exc.filename).parent
        raise GenseqError(f"{where or places[0][0]}: cannot write ({exc.strerror})") from None
    except BaseException:
        _release(claims)
        raise
    return claims


def _release(claims: list[tuple[Path, int, int]]) -> None:
    """Remove the placeholders that are still the empty files this run created (a file
    written in their place has another inode and stays)."""
    for path, dev, ino in claims:
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if (st.st_dev, st.st_ino) == (dev, ino) and st.st_size == 0:
                os.unlink(path)
