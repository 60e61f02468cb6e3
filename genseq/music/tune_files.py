"""Tunes -> the files a person asked for: MIDI, WAV, piano roll, SVG sheet music, MusicXML.

`genseq sample` (sampled tunes) and `genseq music render` (any tunebook) both write through
``write_tunes``, so the two commands number, play and engrave a tune alike. What is heard
(MIDI, WAV, piano roll) comes from genseq's own reading of the tokens (``notes.tune_notes``,
the reading the statistics use); what is read (SVG, MusicXML) from the tune's ABC text through
music21 (``sheet``). Numbers come from ``output_names.claim_numbers``: one number per tune
across every folder, continuing after the files already there. A tune genseq cannot read or
play (several voices, say) gets only its sheet music and MusicXML, which music21 reads from
the text, and a note; none at all when no notation was asked for. One music21 or verovio
cannot engrave gets its other files and a note.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from genseq.music.notes import TuneNotes

Note = Callable[[str], None]  # a line for stderr
SUFFIXES = {"midi": ".mid", "wav": ".wav", "png": ".png", "svg": ".svg", "musicxml": ".musicxml"}


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
    def notation(self) -> bool:
        """Sheet music or MusicXML asked for: what music21 writes from the ABC text alone."""
        return self.svg is not None or self.musicxml is not None

    @property
    def places(self) -> list[tuple[Path, str]]:
        """(folder, suffix) of every kind asked for, as ``claim_numbers`` takes them."""
        return [
            (folder, SUFFIXES[f.name])
            for f in fields(self)
            if (folder := getattr(self, f.name)) is not None
        ]


@dataclass(frozen=True)
class Sound:
    """How the MIDI and WAV files play: tempo (quarter notes a minute; None: each tune's own),
    General MIDI program, and the SoundFont of the WAV files (None: sine tones; see
    ``soundfont.choose``)."""

    tempo: float | None
    program: int
    soundfont: Path | None = None


@dataclass(frozen=True)
class TuneSource:
    """A tune as both readers need it: its tokens (genseq; None when genseq cannot read it)
    and its ABC text (music21)."""

    tokens: Sequence[str] | None
    abc: str
    title: str = ""
    label: str = "tune"  # how notes name it: "tune 3", "book.abc:12 X:3"
    tempo: float | None = None  # its own Q: in quarter notes a minute, if it has one

    def playing_tempo(self, sound: Sound) -> float:
        """--tempo when given, else the tune's own Q:, else the default."""
        from genseq.music.header import DEFAULT_TEMPO

        return sound.tempo or self.tempo or DEFAULT_TEMPO


def write_tunes(
    tunes: Sequence[TuneSource],
    folders: TuneFolders,
    sound: Sound,
    note: Note,
    overwrite: bool = False,
) -> list[list[Path]]:
    """Write every playable tune's files where asked, numbered on from the files already in
    those folders (from 1 with ``overwrite``); the files of each tune, in order ([] for a
    tune that was not written)."""
    from genseq.output_names import claim_numbers

    written: list[list[Path]] = [[] for _ in tunes]
    if not folders.given:
        return written
    readings = [(k, tune, _notes(tune, note)) for k, tune in enumerate(tunes)]
    chosen = [(k, t, notes) for k, t, notes in readings if notes is not None or folders.notation]
    with claim_numbers(folders.places, len(chosen), overwrite=overwrite) as numbers:
        for i, (k, tune, notes) in enumerate(chosen):
            path_in = partial(numbers.path, i)
            written[k] = write_tune_files(tune, notes, path_in, folders, sound, note)
    return written


def _notes(tune: TuneSource, note: Note) -> TuneNotes | None:
    """What the tune plays, or None (noted when genseq read it but cannot play it)."""
    from genseq.music.abc_lexer import AbcError
    from genseq.music.notes import tune_notes

    if tune.tokens is None:
        return None
    try:
        return tune_notes(tune.tokens)
    except AbcError as exc:
        note(f"note: {tune.label} cannot be played ({exc})")
        return None


def write_tune_files(
    tune: TuneSource,
    notes: TuneNotes | None,
    path_in: Callable[[Path, str], Path],
    folders: TuneFolders,
    sound: Sound,
    note: Note,
) -> list[Path]:
    """One tune's files, each written atomically; ``path_in(folder, suffix)`` names each.
    Without ``notes`` (a tune genseq cannot play) only the notation files."""
    sound_files = [] if notes is None else _sound_files(tune, notes, path_in, folders, sound)
    return sound_files + _notation_files(tune, path_in, folders, note)


def _sound_files(
    tune: TuneSource,
    notes: TuneNotes,
    path_in: Callable[[Path, str], Path],
    folders: TuneFolders,
    sound: Sound,
) -> list[Path]:
    from genseq.music import render

    tempo = tune.playing_tempo(sound)
    files = []
    if folders.midi is not None:
        path = path_in(folders.midi, ".mid")
        files.append(render.write_midi(notes, path, tempo, sound.program, tune.title))
    if folders.wav is not None:
        path = path_in(folders.wav, ".wav")
        playing = {"program": sound.program, "soundfont": sound.soundfont}
        files.append(render.write_wav(notes, path, tempo_qpm=tempo, **playing))
    if folders.png is not None:
        path = path_in(folders.png, ".png")
        files.append(render.write_piano_roll(notes, path, tempo_qpm=tempo, title=tune.title))
    return files


def _notation_files(
    tune: TuneSource, path_in: Callable[[Path, str], Path], folders: TuneFolders, note: Note
) -> list[Path]:
    if folders.svg is None and folders.musicxml is None:
        return []
    from genseq.music.sheet import EngraveError, sheet, write_musicxml, write_svg

    files = []
    try:
        score = sheet(tune.abc)
        if score.dropped:
            why = "music21 cannot read one"
            note(f"note: {tune.label} is engraved without {score.dropped} ({why})")
        if folders.svg is not None:
            files.append(write_svg(score, path_in(folders.svg, ".svg")))
        if folders.musicxml is not None:
            files.append(write_musicxml(score, path_in(folders.musicxml, ".musicxml")))
    except EngraveError as exc:
        note(f"note: {tune.label} cannot be engraved ({exc})")
    return files
