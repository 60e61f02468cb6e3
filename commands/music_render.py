"""`genseq music render`: any tunebook -> sheet music, MusicXML, MIDI, WAV and piano rolls.

Each tune goes through the writer `genseq sample` uses (``music.tune_files``), so a corpus
tune and a sampled one come out alike. Every source is read, and every output folder
checked, before the first file is written: a bad argument leaves nothing behind.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from genseq.commands._common import EncodingErrorsOpt, ProgramOpt, QuietOpt, SoundFontOpt

if TYPE_CHECKING:
    from genseq.music.abc_lexer import RawTune
    from genseq.music.tune_files import Note, TuneFolders, TuneSource

Opt = typer.Option


def render(
    files: Annotated[
        list[str],
        typer.Argument(
            help="ABC tunebooks: files, directories of .abc files, corpus names such as "
            "oneills1850, or - for standard input.",
            show_default=False,
        ),
    ],
    svg: Annotated[
        Path | None,
        Opt(
            "--svg",
            help="Engrave one sheet-music .svg per tune here.",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    musicxml: Annotated[
        Path | None,
        Opt(
            "--musicxml",
            help="Write one .musicxml per tune here.",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    midi: Annotated[
        Path | None,
        Opt(
            "--midi",
            help="Write one .mid per tune here.",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    wav: Annotated[
        Path | None,
        Opt(
            "--wav",
            help="Write one .wav per tune here.",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    png: Annotated[
        Path | None,
        Opt(
            "--png",
            help="Write one piano-roll .png per tune here.",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    tempo: Annotated[
        float | None,
        Opt(
            "--tempo",
            help="Quarter notes per minute of the MIDI, WAV and piano roll "
            "[default: each tune's own Q: tempo, else its rhythm's usual one, else 120].",
            show_default=False,
            rich_help_panel="Output files",
        ),
    ] = None,
    program: ProgramOpt = None,
    soundfont: SoundFontOpt = None,
    overwrite: Annotated[
        bool,
        Opt(
            "--overwrite",
            help="Number files from 1 again, replacing those there (default: new files continue "
            "the numbering).",
            rich_help_panel="Output files",
        ),
    ] = False,
    encoding_errors: EncodingErrorsOpt = "strict",
    quiet: QuietOpt = False,
) -> None:
    """Sheet music (SVG), MusicXML, MIDI, WAV or piano rolls of every tune in ABC tunebooks.

    Each tune's files share one number, tune_001, tune_002... continuing after the files
    already in the folders, as `genseq sample` numbers them. A tune genseq cannot read (several
    voices, say) gets only its sheet music and MusicXML, which music21 reads; a tune neither
    can read is noted on stderr and skipped; a source with no tunes is an error.
    """
    from genseq.commands.sample_request import check_folders, make_folders

    from genseq.music.render import FIDDLE
    from genseq.music.tune_files import Sound, TuneFolders, write_tunes

    folders = TuneFolders(midi=midi, wav=wav, png=png, svg=svg, musicxml=musicxml)
    program = FIDDLE if program is None else program
    _check_options(folders, tempo, program, soundfont)
    check_folders(*folders.given)
    tunes = _read_sources(files, encoding_errors)

    def note(message: str) -> None:
        if not quiet:
            print(message, file=sys.stderr)

    sound = Sound(tempo, program, _soundfont(wav, soundfont, program, note))
    make_folders(*folders.given)
    readable = [
        tune for name, raw in tunes if (tune := _source(name, raw, note, folders)) is not None
    ]
    written = write_tunes(readable, folders, sound, note, overwrite=overwrite)
    _report([str(f) for paths in written for f in paths], len(tunes), note)


def _check_options(
    folders: TuneFolders, tempo: float | None, program: int, soundfont: Path | None
) -> None:
    """Usage errors: no folder, ``-`` for a folder, a tempo or program out of range."""
    import math

    from genseq.commands.sample_request import is_stdout

    from genseq.errors import UsageError

    if not folders.given:
        raise UsageError("give at least one of --svg, --musicxml, --midi, --wav, --png")
    if any(is_stdout(folder) for folder in folders.given):
        raise UsageError("- is not a folder: give a folder for the files")
    if tempo is not None and not (math.isfinite(tempo) and tempo > 0):
        raise UsageError("--tempo must be a positive number")
    if not 0 <= program <= 127:
        raise UsageError("--program must be a General MIDI program, 0-127")
    if soundfont is not None and folders.wav is None:
        raise UsageError("--soundfont: only with --wav (it is the sound of the WAV files)")


def _soundfont(wav: Path | None, given: Path | None, program: int, note: Note) -> Path | None:
    """The SoundFont the WAV files play (None: sine tones, or no --wav), said once."""
    if wav is None:
        return None
    from genseq.music.soundfont import choose

    sound = choose(given, program)
    if sound.note:
        note(sound.note)
    return sound.soundfont


def _read_sources(sources: list[str], encoding_errors: str) -> list[tuple[str, RawTune]]:
    """Every tune of every source, in order; a source without a tune is an error."""
    from genseq.documents import read_tunes
    from genseq.errors import GenseqError

    tunes = []
    for source in sources:
        found = read_tunes([source], encoding_errors)
        if not found:
            where = "standard input" if source == "-" else source
            raise GenseqError(f"{where}: no tunes (X: lines) found")
        tunes += found
    return tunes


def _source(name: str, raw: RawTune, note: Note, folders: TuneFolders) -> TuneSource | None:
    """The tune as the writer takes it; one genseq cannot read is noted, and kept (without
    tokens) for its notation when sheet music or MusicXML was asked for, else skipped."""
    from genseq.music.abc_lexer import AbcError, tokenize_tune, written_tempo
    from genseq.music.abc_writer import header_tempo
    from genseq.music.tune_files import TuneSource

    label = f"{name}:{raw.line} X:{raw.number or '?'}"
    try:
        tokens = tokenize_tune(raw.text)
    except AbcError as exc:
        if not folders.notation:
            note(f"note: {label} cannot be read ({exc}); skipped")
            return None
        note(f"note: {label} cannot be read ({exc}); sheet music and MusicXML only")
        return TuneSource(None, raw.text, raw.title, label, written_tempo(raw.text))
    tempo = written_tempo(raw.text) or header_tempo(tokens)  # exact Q:, else its rhythm's
    return TuneSource(tokens, raw.text, raw.title, label, tempo)


def _report(written: list[str], tunes: int, note: Note) -> None:
    """``wrote A, B, C and N more`` on stderr; an error when no tune could be written."""
    from genseq.errors import GenseqError

    if not written:
        raise GenseqError(f"no files written: none of the {tunes:,} tunes could be rendered")
    more = f" and {len(written) - 3:,} more" if len(written) > 3 else ""
    note(f"wrote {', '.join(written[:3])}{more}")
