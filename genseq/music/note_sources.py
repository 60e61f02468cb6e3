"""Documents -> the notes the MIDI encodings learn: MIDI files (bytes) and ABC tunes (text).

ABC tunes go through genseq's own lexer and ``notes.tune_notes`` (repeats expanded, about a
millisecond a tune) rather than music21's parser (about 100 ms a tune): the bundled folk
collections then feed the note models as fast as MIDI files do. An ABC tune has no tempo, so
the performance encoding plays it at ``ABC_TEMPO_QPM`` with velocity 90. Every failure is a
``MidiError`` or ``AbcError`` with a short reason: the caller skips the document.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from genseq.music.midi_encoding import (
    DEFAULT_VELOCITY,
    StepNote,
    TimedNote,
    fit_range,
    quantise_melody,
    trim_leading_bars,
)
from genseq.music.midi_io import MidiError, read_midi, select_notes

ABC_TEMPO_QPM = 120.0
# The longest document the encodings take. Both encode silence as events (one per grid step,
# one per second), so a damaged delta time, tempo or ABC duration would otherwise ask for
# billions of them; real music is far shorter.
MAX_QUARTERS = 100_000  # melody: about 14 hours at 120 qpm
MAX_SECONDS = 86_400.0  # performance: a day
TOO_LONG_MELODY = f"longer than {MAX_QUARTERS:,} quarter notes"
TOO_LONG_PERFORMANCE = f"longer than {MAX_SECONDS / 3600:.0f} hours"


@dataclass(frozen=True)
class Selection:
    """What to learn from a MIDI file (``midi_io.select_notes``)."""

    track: str | None = None
    program: int | None = None


def abc_notes(text: str):
    """An ABC tune's ``TuneNotes`` (times in whole notes, repeats expanded)."""
    from genseq.music.abc_lexer import tokenize_tune
    from genseq.music.notes import tune_notes

    tune = tune_notes(tokenize_tune(text))
    if not tune.notes:
        raise MidiError("no notes")
    return tune


def melody_notes(
    document: bytes | str,
    steps_per_quarter: int,
    pitch_range: tuple[int, int] | None,
    selection: Selection = Selection(),
) -> list[StepNote]:
    """One voice on the grid, leading silent bars dropped, moved inside the pitch range (when
    one is given)."""
    if isinstance(document, bytes | bytearray):
        score = read_midi(bytes(document))
        chosen = select_notes(score, True, selection.track, selection.program)
        notes = quantise_melody(
            ((n.start, n.end, n.pitch) for n in chosen), steps_per_quarter / score.resolution
        )
        num, den = score.time_signature or (4, 4)
    else:
        tune = abc_notes(document)
        notes = quantise_melody(
            ((n.start, n.start + n.duration, n.pitch) for n in tune.notes), 4 * steps_per_quarter
        )
        num, den = tune.meter or (4, 4)
    bar_steps = max(1, round(steps_per_quarter * 4 * num / den))
    notes = trim_leading_bars(notes, bar_steps)
    if notes and notes[-1].end > MAX_QUARTERS * steps_per_quarter:
        raise MidiError(TOO_LONG_MELODY)
    return notes if pitch_range is None else fit_range(notes, *pitch_range)


def performance_notes(
    document: bytes | str, selection: Selection = Selection(), tempo_qpm: float = ABC_TEMPO_QPM
) -> list[TimedNote]:
    """Every chosen note in seconds (MIDI through its tempo map; ABC at ``tempo_qpm``)."""
    notes = _timed_notes(document, selection, tempo_qpm)
    if max((n.end for n in notes), default=0.0) > MAX_SECONDS:
        raise MidiError(TOO_LONG_PERFORMANCE)
    return notes


def _timed_notes(document: bytes | str, selection: Selection, tempo_qpm: float) -> list[TimedNote]:
    if isinstance(document, bytes | bytearray):
        score = read_midi(bytes(document))
        chosen = select_notes(score, False, selection.track, selection.program)
        return [
            TimedNote(score.seconds(n.start), score.seconds(n.end), n.pitch, n.velocity)
            for n in chosen
        ]
    tune = abc_notes(document)
    whole = 4 * 60 / tempo_qpm
    return [
        TimedNote(
            float(n.start) * whole, float(n.start + n.duration) * whole, n.pitch, DEFAULT_VELOCITY
        )
        for n in tune.notes
    ]


def steps_to_whole_notes(step: int, steps_per_quarter: int) -> Fraction:
    return Fraction(step, 4 * steps_per_quarter)
