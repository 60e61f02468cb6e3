"""One tune -> the files a person asked for: MIDI, WAV, piano roll, SVG sheet music, MusicXML.

`genseq sample` (sampled tunes) and `genseq music render` (any tunebook) both write a tune's
files through ``write_tune_files``, so the two commands name, play and engrave a tune alike.
What is heard (MIDI, WAV, piano roll) comes from genseq's own reading of the tokens
(``notes.tune_notes``: the reading the statistics use); what is read (SVG, MusicXML) from the
tune's ABC text through music21 (``sheet``). A tune that cannot be played or engraved is
noted, not fatal: its other files are still written where they can be.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path


def tune_stem(number: int) -> str:
    """The file name, without extension, of the ``number``-th tune (1-based): ``tune_001``."""
    return f"tune_{number:03d}"


@dataclass(frozen=True)
class TuneFolders:
    """Where each kind of file goes; None: not asked for."""

    midi: Path | None = None
    wav: Path | None = None
    png: Path | None = None
    svg: Path | None = None
    musicxml: Path | None = None

    @property
    def given(self) -> list[Path]:
        return [p for f in fields(self) if (p := getattr(self, f.name)) is not None]

    @property
    def sound(self) -> bool:
        """Files made from the notes genseq plays."""
        return any(p is not None for p in (self.midi, self.wav, self.png))

    @property
    def notation(self) -> bool:
        """Files made from music21's reading of the ABC."""
        return self.svg is not None or self.musicxml is not None


@dataclass(frozen=True)
class TuneSource:
    """A tune as both readers need it: its tokens (genseq) and its ABC text (music21)."""

    tokens: Sequence[str]
    abc: str
    title: str = ""
    label: str = "tune"  # how notes name it: "tune 3", "book.abc:12 X:3"


def write_tune_files(
    tune: TuneSource,
    stem: str,
    folders: TuneFolders,
    tempo: float,
    program: int | None,
    note: Callable[[str], None],
) -> list[Path]:
    """Write ``stem``.mid/.wav/.png/.svg/.musicxml into the folders asked for; each file is
    written atomically. ``program`` is the General MIDI program (None: the fiddle)."""
    return _sound_files(tune, stem, folders, tempo, program, note) + _notation_files(
        tune, stem, folders, note
    )


def _sound_files(
    tune: TuneSource,
    stem: str,
    folders: TuneFolders,
    tempo: float,
    program: int | None,
    note: Callable[[str], None],
) -> list[Path]:
    if not folders.sound:
        return []
    from genseq.music import render
    from genseq.music.abc_lexer import AbcError
    from genseq.music.notes import tune_notes

    try:
        notes = tune_notes(tune.tokens)
    except AbcError as exc:
        note(f"note: {tune.label} cannot be played ({exc})")
        return []
    program = render.FIDDLE if program is None else program
    files = []
    if folders.midi is not None:
        path = folders.midi / f"{stem}.mid"
        files.append(render.write_midi(notes, path, tempo, program, tune.title))
    if folders.wav is not None:
        files.append(render.write_wav(notes, folders.wav / f"{stem}.wav", tempo_qpm=tempo))
    if folders.png is not None:
        path = folders.png / f"{stem}.png"
        files.append(render.write_piano_roll(notes, path, tempo_qpm=tempo, title=tune.title))
    return files


def _notation_files(
    tune: TuneSource, stem: str, folders: TuneFolders, note: Callable[[str], None]
) -> list[Path]:
    if not folders.notation:
        return []
    from genseq.music.sheet import EngraveError, sheet, write_musicxml, write_svg

    files = []
    try:
        score = sheet(tune.abc)
        if folders.svg is not None:
            files.append(write_svg(score, folders.svg / f"{stem}.svg"))
        if folders.musicxml is not None:
            files.append(write_musicxml(score, folders.musicxml / f"{stem}.musicxml"))
    except EngraveError as exc:
        note(f"note: {tune.label} cannot be engraved ({exc})")
    return files
