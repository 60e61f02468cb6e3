"""Notes -> files a person can hear or look at: MIDI, WAV and a piano-roll PNG.

Everything starts from ``notes.TuneNotes``, so the files agree with the statistics on what a
tune plays. Every file puts the tune on the bar grid (``on_bar_grid``): a pickup sits at the
end of the first bar, so that bar 2 starts on a downbeat in any notation program that imports
it. Times are whole notes there; here a whole note lasts ``4 * 60 / tempo_qpm`` seconds
(``tempo_qpm`` counts quarter notes). Every file is written atomically
(``fileio.atomic_file``): an interrupted render never leaves a truncated file behind.
pretty_midi, numpy and matplotlib are imported inside the functions, so importing genseq (and
its CLI) stays fast.
"""

from __future__ import annotations

import wave
from dataclasses import replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from genseq.fileio import atomic_file
from genseq.music.abc_vocab import key_fifths
from genseq.music.notes import Note, TuneNotes

if TYPE_CHECKING:
    import pretty_midi

PEAK = 0.9  # WAV peak level: headroom so players that resample do not clip
FIDDLE = 40  # General MIDI program (0-based) of folk tunes: Violin, the fiddle


def on_bar_grid(tune: TuneNotes) -> TuneNotes:
    """The tune moved later by the rest of its pickup bar, so that its first full bar starts
    on a bar line of the meter (a tune without a meter or a pickup is returned as it is).
    The grammar makes a part's closing bar complete its pickup, so every later bar line,
    repeats replayed included, then falls on the grid too."""
    if tune.meter is None or not tune.bar_lines:
        return tune
    bar = Fraction(*tune.meter)
    shift = bar - tune.bar_lines[0]
    if shift <= 0 or shift >= bar:
        return tune
    notes = [Note(n.pitch, n.start + shift, n.duration) for n in tune.notes]
    lines = tuple(t + shift for t in tune.bar_lines)
    return replace(tune, notes=notes, length=tune.length + shift, bar_lines=lines)


def whole_note_seconds(tempo_qpm: float) -> float:
    if not tempo_qpm > 0:
        raise ValueError(f"tempo must be positive, got {tempo_qpm}")
    return 4 * 60 / tempo_qpm


def to_pretty_midi(
    tune: TuneNotes,
    tempo_qpm: float = 120.0,
    program: int = 0,
    velocity: int = 90,
    title: str = "",
) -> pretty_midi.PrettyMIDI:
    """One instrument (named ``title``) playing the tune on the bar grid, with its tempo,
    time signature and key signature."""
    import pretty_midi

    tune = on_bar_grid(tune)
    if not 0 <= program <= 127 or not 1 <= velocity <= 127:
        raise ValueError(f"program must be 0-127 and velocity 1-127, got {program}, {velocity}")
    scale = whole_note_seconds(tempo_qpm)
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo_qpm)
    # At least 1.5 ticks, so that rounding to ticks never gives a note whose note-off lands on
    # (and sorts before) its own note-on, which would leave the note sounding forever.
    shortest = 1.5 * 60.0 / (tempo_qpm * midi.resolution)
    instrument = pretty_midi.Instrument(program=program, name=title)
    for note in tune.notes:
        start = float(note.start) * scale
        end = max(float(note.start + note.duration) * scale, start + shortest)
        instrument.notes.append(pretty_midi.Note(velocity, note.pitch, start, end))
    midi.instruments.append(instrument)
    _add_signatures(midi, tune)
    return midi


def _add_signatures(midi: pretty_midi.PrettyMIDI, tune: TuneNotes) -> None:
    """Time and key signature at time 0, where MIDI can express them."""
    import pretty_midi

    if tune.meter is not None:
        numerator, denominator = tune.meter
        # MIDI stores the denominator as a power of two; M:5/6 and the like are left out.
        if numerator <= 255 and denominator & (denominator - 1) == 0:
            midi.time_signature_changes.append(
                pretty_midi.TimeSignature(numerator, denominator, 0.0)
            )
    key_number = midi_key_number(*tune.key) if tune.key is not None else None
    if key_number is not None:
        midi.key_signature_changes.append(pretty_midi.KeySignature(key_number, 0.0))


def midi_key_number(tonic: str, mode: str) -> int | None:
    """pretty_midi's key number (0-11 major, 12-23 minor) with the same number of sharps or
    flats; modes other than minor are written as the major key sharing their signature (MIDI
    knows only major and minor). None for signatures beyond 7 sharps or flats."""
    fifths = key_fifths(tonic, mode)
    if abs(fifths) > 7:
        return None
    major = (7 * fifths) % 12
    return 12 + (major + 9) % 12 if mode == "min" else major


def write_midi(
    tune: TuneNotes,
    path: Path | str,
    tempo_qpm: float = 120.0,
    program: int = 0,
    title: str = "",
) -> Path:
    """Write a standard MIDI file (its track named ``title``); returns its path."""
    midi = to_pretty_midi(tune, tempo_qpm=tempo_qpm, program=program, title=title)
    path = Path(path)
    with atomic_file(path, "wb") as f:
        midi.write(f)
    return path


def write_wav(
    tune: TuneNotes, path: Path | str, tempo_qpm: float = 120.0, sample_rate: int = 22050
) -> Path:
    """Write 16-bit mono PCM synthesised with pretty_midi's sine synthesiser (pure numpy: no
    external synthesiser or sound font to install), normalised to a peak of 0.9."""
    import numpy as np

    # Trailing rests count: the file lasts at least as long as the tune (pretty_midi adds a
    # second of release after the last note-off, which is kept).
    length = on_bar_grid(tune).length
    frames = round(float(length) * whole_note_seconds(tempo_qpm) * sample_rate)
    audio = np.zeros(frames)
    if tune.notes:  # pretty_midi divides by the peak: silence would come back as NaN
        sound = to_pretty_midi(tune, tempo_qpm=tempo_qpm).synthesize(fs=sample_rate)
        audio = np.concatenate([sound, audio[len(sound) :]])
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio * (PEAK / peak)
    pcm = np.round(audio * 32767).astype("<i2").tobytes()
    path = Path(path)
    with atomic_file(path, "wb") as f, wave.open(f, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.setnframes(len(pcm) // 2)
        out.writeframes(pcm)
    return path


def write_piano_roll(
    tune: TuneNotes, path: Path | str, tempo_qpm: float = 120.0, title: str = ""
) -> Path:
    """Write a PNG piano roll: time in seconds across, pitch up, faint lines at bar lines.

    It draws on a bare ``Figure`` with the Agg canvas rather than through pyplot, so it needs
    no display, never switches the process's backend and leaves no figure open.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.collections import PatchCollection
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    tune = on_bar_grid(tune)
    scale = whole_note_seconds(tempo_qpm)
    low, high = _pitch_range(tune)
    fig = Figure(figsize=(max(6.0, min(24.0, float(tune.length) * scale * 0.6)), 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    boxes = [
        Rectangle((float(n.start) * scale, n.pitch - 0.4), float(n.duration) * scale, 0.8)
        for n in tune.notes
    ]
    ax.add_collection(PatchCollection(boxes, facecolor="tab:blue", edgecolor="navy", lw=0.4))
    for bar in tune.bar_lines:
        ax.axvline(float(bar) * scale, color="0.85", linewidth=0.6, zorder=0)
    ax.set_xlim(0, max(float(tune.length) * scale, 1e-3))
    ax.set_ylim(low - 0.5, high + 0.5)
    _pitch_ticks(ax, low, high)
    ax.set_xlabel("seconds")
    ax.set_ylabel("pitch")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    with atomic_file(path, "wb") as f:
        fig.savefig(f, format="png")
    return path


def _pitch_range(tune: TuneNotes) -> tuple[int, int]:
    """The tune's lowest and highest pitch, 2 semitones either side (middle C if no notes)."""
    pitches = [n.pitch for n in tune.notes] or [60]
    return min(pitches) - 2, max(pitches) + 2


def _pitch_ticks(ax, low: int, high: int) -> None:
    """Name every C (and every pitch when the range is small) so octaves can be read off."""
    import pretty_midi

    step_all = high - low <= 24
    ticks = [p for p in range(low, high + 1) if step_all or p % 12 == 0]
    ax.set_yticks(ticks)
    ax.set_yticklabels([pretty_midi.note_number_to_name(p) for p in ticks], fontsize=7)


def write_performance_midi(notes, path: Path | str, program: int = 0) -> Path:
    """Write notes in seconds with their own velocities (``midi_encoding.TimedNote``: the
    performance level), one instrument at 120 qpm; every note ends after it starts."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    shortest = 1.5 * 60.0 / (120.0 * midi.resolution)  # as in to_pretty_midi
    instrument = pretty_midi.Instrument(program=program)
    for n in notes:
        end = max(float(n.end), float(n.start) + shortest)
        instrument.notes.append(pretty_midi.Note(int(n.velocity), int(n.pitch), n.start, end))
    midi.instruments.append(instrument)
    path = Path(path)
    with atomic_file(path, "wb") as f:
        midi.write(f)
    return path
