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
from bisect import bisect_right
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
SAMPLE_RATE = 22050  # Hz: a fiddle's sound lies below its 11 kHz limit, at half 44.1 kHz's time

# Metric accents, as a player leans on the beats (MIDI velocities). A SoundFont turns velocity
# v into a level of about 40*log10(v/127) dB (SoundFont 2's default velocity curve), so a bar's
# first note at 100 sounds about 2 dB above the meter's secondary beat at 88 and 4 dB above the
# other notes at 80: an accent one hears (a step of about 1 dB is the least one notices) that
# leaves the tune a tune, not a march, at levels near the middle of MIDI's range.
DOWNBEAT_VELOCITY = 100
SECONDARY_VELOCITY = 88
PLAIN_VELOCITY = 80


def _pretty_midi():
    """pretty_midi, imported after pyfluidsynth is (``soundfont.import_fluidsynth``), so that
    its import prints nothing on standard output."""
    from genseq.music.soundfont import import_fluidsynth

    import_fluidsynth()
    import pretty_midi

    return pretty_midi


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


def secondary_beats(meter: tuple[int, int]) -> tuple[Fraction, ...]:
    """Where in a bar (as a fraction of it) the meter's main secondary beats fall: the half bar
    of an even count (2/4 and 4/4 beat 3 or 2, 6/8 and 12/8 the second dotted beat), the
    second and third dotted beats of 9/8; none in 3/4, 3/8 or an odd meter such as 5/4."""
    numerator = meter[0]
    if numerator % 2 == 0:
        return (Fraction(1, 2),)
    if numerator == 9:
        return (Fraction(1, 3), Fraction(2, 3))
    return ()


def accent_velocities(tune: TuneNotes) -> list[int]:
    """One velocity per note of a tune on the bar grid: ``DOWNBEAT_VELOCITY`` on a bar's first
    beat, ``SECONDARY_VELOCITY`` on the meter's secondary beats, ``PLAIN_VELOCITY`` elsewhere
    (and everywhere in a tune without a meter). Each bar is measured between the bar lines the
    tune crosses, never by arithmetic on the first meter, which a meter change defeats; a bar
    of another length than the first meter's (after a meter change, an odd bar) gets only its
    downbeat, since ``TuneNotes`` keeps the first meter alone."""
    if tune.meter is None:
        return [PLAIN_VELOCITY] * len(tune.notes)
    bar = Fraction(*tune.meter)
    secondary = {bar * beat for beat in secondary_beats(tune.meter)}
    starts, ends = (Fraction(0), *tune.bar_lines), (*tune.bar_lines, tune.length)
    velocities = []
    for note in tune.notes:
        k = bisect_right(tune.bar_lines, note.start)
        position = note.start - starts[k]
        if position == 0:
            velocities.append(DOWNBEAT_VELOCITY)
        elif ends[k] - starts[k] == bar and position in secondary:
            velocities.append(SECONDARY_VELOCITY)
        else:
            velocities.append(PLAIN_VELOCITY)
    return velocities


def to_pretty_midi(
    tune: TuneNotes,
    tempo_qpm: float = 120.0,
    program: int = 0,
    title: str = "",
) -> pretty_midi.PrettyMIDI:
    """One instrument (named ``title``) playing the tune on the bar grid with accents on the
    beats (``accent_velocities``), with its tempo, time signature and key signature."""
    pretty_midi = _pretty_midi()

    tune = on_bar_grid(tune)
    if not 0 <= program <= 127:
        raise ValueError(f"program must be 0-127, got {program}")
    scale = whole_note_seconds(tempo_qpm)
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo_qpm)
    # At least 1.5 ticks, so that rounding to ticks never gives a note whose note-off lands on
    # (and sorts before) its own note-on, which would leave the note sounding forever.
    shortest = 1.5 * 60.0 / (tempo_qpm * midi.resolution)
    instrument = pretty_midi.Instrument(program=program, name=title)
    for note, velocity in zip(tune.notes, accent_velocities(tune), strict=True):
        start = float(note.start) * scale
        end = max(float(note.start + note.duration) * scale, start + shortest)
        instrument.notes.append(pretty_midi.Note(velocity, note.pitch, start, end))
    midi.instruments.append(instrument)
    _add_signatures(midi, tune)
    return midi


def _add_signatures(midi: pretty_midi.PrettyMIDI, tune: TuneNotes) -> None:
    """Time and key signature at time 0, where MIDI can express them."""
    pretty_midi = _pretty_midi()

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
    tune: TuneNotes,
    path: Path | str,
    tempo_qpm: float = 120.0,
    sample_rate: int = SAMPLE_RATE,
    *,
    program: int = 0,
    soundfont: Path | None = None,
) -> Path:
    """Write 16-bit mono PCM of the tune, normalised to a peak of 0.9: General MIDI
    ``program`` played by FluidSynth from ``soundfont`` (see ``soundfont.choose``), or
    without one pretty_midi's sine synthesiser (pure numpy, nothing to install)."""
    # Trailing rests count: the file lasts at least as long as the tune.
    seconds = float(on_bar_grid(tune).length) * whole_note_seconds(tempo_qpm)
    midi = to_pretty_midi(tune, tempo_qpm=tempo_qpm, program=program)
    return _write_audio(midi, seconds, Path(path), sample_rate, soundfont)


def write_performance_wav(
    notes, path: Path | str, sample_rate: int = SAMPLE_RATE, *, soundfont: Path | None = None
) -> Path:
    """``write_wav`` for notes in seconds with their own velocities (a performance), played
    as ``write_performance_midi`` writes them, dynamics included."""
    midi = performance_midi(notes)
    return _write_audio(midi, midi.get_end_time(), Path(path), sample_rate, soundfont)


def _write_audio(
    midi: pretty_midi.PrettyMIDI,
    seconds: float,
    path: Path,
    sample_rate: int,
    soundfont: Path | None,
) -> Path:
    """The MIDI as 16-bit mono PCM at least ``seconds`` long (pretty_midi adds a second of
    release after the last note-off, which is kept), normalised to a peak of ``PEAK``."""
    import numpy as np

    audio = np.zeros(round(seconds * sample_rate))
    if any(i.notes for i in midi.instruments):  # pretty_midi divides by the peak: no NaN
        sound = _synthesize(midi, sample_rate, soundfont)
        audio = np.concatenate([sound, audio[len(sound) :]])
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0:
        audio = audio * (PEAK / peak)
    pcm = np.round(audio * 32767).astype("<i2").tobytes()
    with atomic_file(path, "wb") as f, wave.open(f, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.setnframes(len(pcm) // 2)
        out.writeframes(pcm)
    return path


def _synthesize(midi: pretty_midi.PrettyMIDI, sample_rate: int, soundfont: Path | None):
    """The MIDI as audio: through FluidSynth with ``soundfont``, else sine tones."""
    if soundfont is None:
        return midi.synthesize(fs=sample_rate)
    from genseq.music.soundfont import synth_for

    synth, sfid = synth_for(soundfont, sample_rate)
    synth.system_reset()  # nothing of the last tune (notes, programs, reverb tail) carries over
    return midi.fluidsynth(fs=sample_rate, synthesizer=synth, sfid=sfid)


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
    pretty_midi = _pretty_midi()

    step_all = high - low <= 24
    ticks = [p for p in range(low, high + 1) if step_all or p % 12 == 0]
    ax.set_yticks(ticks)
    ax.set_yticklabels([pretty_midi.note_number_to_name(p) for p in ticks], fontsize=7)


def performance_midi(notes, program: int = 0) -> pretty_midi.PrettyMIDI:
    """Notes in seconds with their own velocities (``midi_encoding.TimedNote``: the
    performance level) as one instrument at 120 qpm; every note ends after it starts."""
    pretty_midi = _pretty_midi()

    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    shortest = 1.5 * 60.0 / (120.0 * midi.resolution)  # as in to_pretty_midi
    instrument = pretty_midi.Instrument(program=program)
    for n in notes:
        end = max(float(n.end), float(n.start) + shortest)
        instrument.notes.append(pretty_midi.Note(int(n.velocity), int(n.pitch), n.start, end))
    midi.instruments.append(instrument)
    return midi


def write_performance_midi(notes, path: Path | str, program: int = 0) -> Path:
    """Write ``performance_midi`` as a standard MIDI file."""
    midi = performance_midi(notes, program)
    path = Path(path)
    with atomic_file(path, "wb") as f:
        midi.write(f)
    return path
