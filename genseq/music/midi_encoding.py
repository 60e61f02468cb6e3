"""Notes <-> event tokens: Magenta's melody and Performance RNN encodings (pure functions).

Melody (monophonic, on a grid of ``steps_per_quarter`` steps per quarter note): one event per
step, ``NOTE_ON_<pitch>`` (a note starts and any sounding note ends), ``NOTE_OFF`` (the
sounding note ends) or ``NO_EVENT`` (nothing changes: a note is held or a rest goes on), as
Magenta's melody RNN does. A melody ends with the ``NOTE_OFF`` of its last note, so a
document's events are exactly as long as the music plus one step. Pitches lie in a range
(48-84 by default, Magenta's basic_rnn); a melody that does not fit is moved by whole octaves
to fit as many notes as it can, and any note still outside is folded into the range by
octaves (Magenta squashes melodies the same way), so no document is lost to its range.

Performance (polyphonic, in real time): ``NOTE_ON_<pitch>``, ``NOTE_OFF_<pitch>`` (0-127),
``TIME_SHIFT_<n>`` (n x 10 ms, n = 1..100) and ``VELOCITY_<bin>`` (32 bins, emitted only when
the bin changes), as Performance RNN does. Times are rounded to 10 ms; a note is at least one
step long, and a note that starts while the same pitch sounds ends the earlier one there.

Both round trips are exact on the grid: ``decode(encode(notes)) == notes`` for quantised
notes (the tests check it with hypothesis), so the only loss is the quantisation itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

NOTE_ON = "NOTE_ON_"
NOTE_OFF = "NOTE_OFF"
NO_EVENT = "NO_EVENT"
TIME_SHIFT = "TIME_SHIFT_"
VELOCITY = "VELOCITY_"

DEFAULT_STEPS_PER_QUARTER = 4
DEFAULT_PITCH_RANGE = (48, 84)
STEPS_PER_SECOND = 100  # performance time steps of 10 ms
MAX_SHIFT = 100  # one TIME_SHIFT moves at most 1 s
VELOCITY_BINS = 32
DEFAULT_VELOCITY = 90


# ---------------------------------------------------------------------------------------------
# Melody


@dataclass(frozen=True, order=True)
class StepNote:
    """A note on the grid: it sounds from step ``start`` up to (not including) ``end``."""

    start: int
    end: int
    pitch: int


def melody_vocabulary(low: int, high: int) -> list[str]:
    return [NO_EVENT, NOTE_OFF, *(f"{NOTE_ON}{p}" for p in range(low, high + 1))]


def quantise_melody(
    notes: Iterable[tuple[float, float, int]], steps_per_unit: float
) -> list[StepNote]:
    """Notes ``(start, end, pitch)`` in any time unit -> one voice on the grid.

    Starts and ends are rounded to the nearest step; a note lasts at least one step; where
    rounding makes notes meet, the highest of a shared onset wins and an earlier note ends
    where the next begins.
    """
    grid = sorted(
        (
            round(s * steps_per_unit),
            max(round(e * steps_per_unit), round(s * steps_per_unit) + 1),
            -p,
        )
        for s, e, p in notes
    )
    out: list[StepNote] = []
    for start, end, neg_pitch in grid:
        if out and start == out[-1].start:
            continue  # a lower note with the same onset
        if out and start < out[-1].end:
            out[-1] = StepNote(out[-1].start, start, out[-1].pitch)
        out.append(StepNote(start, end, -neg_pitch))
    return out


def trim_leading_bars(notes: list[StepNote], bar_steps: int) -> list[StepNote]:
    """Drop whole bars of silence before the first note (a pickup keeps its place in its bar)."""
    if not notes:
        return notes
    offset = (notes[0].start // max(1, bar_steps)) * max(1, bar_steps)
    if offset == 0:
        return notes
    return [StepNote(n.start - offset, n.end - offset, n.pitch) for n in notes]


def fit_range(notes: list[StepNote], low: int, high: int) -> list[StepNote]:
    """Move the melody by whole octaves to fit the most notes in ``low..high`` (the smallest
    move wins ties), then fold any note still outside into the range by octaves."""
    if not notes or all(low <= n.pitch <= high for n in notes):
        return notes

    def fitting(shift: int) -> int:
        return sum(low <= n.pitch + shift <= high for n in notes)

    shift = max((12 * k for k in range(-10, 11)), key=lambda s: (fitting(s), -abs(s)))
    out = []
    for n in notes:
        pitch = n.pitch + shift
        while pitch < low and pitch + 12 <= 127:
            pitch += 12
        while pitch > high and pitch - 12 >= 0:
            pitch -= 12
        out.append(StepNote(n.start, n.end, min(max(pitch, low), high)))
    return out


def encode_melody(notes: Sequence[StepNote]) -> list[str]:
    """One event per step from step 0 to one step after the last note ends.

    ``notes`` are one voice: sorted, not overlapping, each at least one step long.
    """
    if not notes:
        return []
    events = [NO_EVENT] * (notes[-1].end + 1)
    for n in notes:
        if events[n.end] == NO_EVENT:
            events[n.end] = NOTE_OFF  # a next note starting here ends this one by itself
        events[n.start] = f"{NOTE_ON}{n.pitch}"
    return events


def decode_melody(events: Iterable[str]) -> list[StepNote]:
    """Events -> notes; a note still sounding at the end ends there, and a ``NOTE_OFF`` with
    no sounding note (which the sampling constraint never allows) changes nothing."""
    out: list[StepNote] = []
    sounding: tuple[int, int] | None = None  # (start, pitch)
    length = 0
    for step, event in enumerate(events):
        length = step + 1
        if event.startswith(NOTE_ON) or event == NOTE_OFF:
            if sounding is not None:
                out.append(StepNote(sounding[0], step, sounding[1]))
                sounding = None
            if event != NOTE_OFF:
                sounding = (step, int(event[len(NOTE_ON) :]))
        elif event != NO_EVENT:
            raise ValueError(f"not a melody event: {event!r}")
    if sounding is not None:
        out.append(StepNote(sounding[0], length, sounding[1]))
    return out


def transpose_melody(
    notes: list[StepNote], semitones: int, low: int, high: int
) -> list[StepNote] | None:
    """The melody moved by ``semitones``, or None when a note would leave the range."""
    moved = [StepNote(n.start, n.end, n.pitch + semitones) for n in notes]
    if any(not low <= n.pitch <= high for n in moved):
        return None
    return moved


# ---------------------------------------------------------------------------------------------
# Performance


@dataclass(frozen=True, order=True)
class TimedNote:
    """A note in seconds with its velocity."""

    start: float
    end: float
    pitch: int
    velocity: int = DEFAULT_VELOCITY


def performance_vocabulary() -> list[str]:
    return [
        *(f"{NOTE_ON}{p}" for p in range(128)),
        *(f"{NOTE_OFF}_{p}" for p in range(128)),
        *(f"{TIME_SHIFT}{n}" for n in range(1, MAX_SHIFT + 1)),
        *(f"{VELOCITY}{b}" for b in range(1, VELOCITY_BINS + 1)),
    ]


def velocity_bin(velocity: int) -> int:
    """1..32: equal shares of MIDI velocities 1..127."""
    return (min(max(velocity, 1), 127) - 1) * VELOCITY_BINS // 127 + 1


def bin_velocity(b: int) -> int:
    """The velocity in the middle of bin ``b`` (so that it falls back into ``b``)."""
    members = [v for v in range(1, 128) if velocity_bin(v) == b]
    return members[len(members) // 2]


_BIN_VELOCITY = [0] + [bin_velocity(b) for b in range(1, VELOCITY_BINS + 1)]


def quantise_performance(notes: Iterable[TimedNote]) -> list[tuple[int, int, int, int]]:
    """``(start step, end step, pitch, velocity)``: rounded to 10 ms, at least a step long,
    and never two notes of one pitch sounding at once (the earlier ends where the later
    starts; of two starting together, the later listed one is kept)."""
    by_pitch: dict[int, list[list[int]]] = {}
    for n in sorted(notes):
        s = round(n.start * STEPS_PER_SECOND)
        e = max(round(n.end * STEPS_PER_SECOND), s + 1)
        same = by_pitch.setdefault(n.pitch, [])
        if same and s < same[-1][1]:
            if s <= same[-1][0]:
                same.pop()
            else:
                same[-1][1] = s
        same.append([s, e, n.pitch, n.velocity])
    return sorted(tuple(x) for v in by_pitch.values() for x in v)  # type: ignore[misc]


def encode_performance(notes: Iterable[TimedNote]) -> list[str]:
    """Performance events of the notes (offs before ons at the same time)."""
    changes = []
    for s, e, p, v in quantise_performance(notes):
        changes.append((s, 1, p, v))
        changes.append((e, 0, p, v))
    changes.sort()
    events: list[str] = []
    now = 0
    current_bin = None
    for t, on, p, v in changes:
        while t > now:
            shift = min(MAX_SHIFT, t - now)
            events.append(f"{TIME_SHIFT}{shift}")
            now += shift
        if on:
            b = velocity_bin(v)
            if b != current_bin:
                events.append(f"{VELOCITY}{b}")
                current_bin = b
            events.append(f"{NOTE_ON}{p}")
        else:
            events.append(f"{NOTE_OFF}_{p}")
    return events


def decode_performance(events: Iterable[str]) -> list[TimedNote]:
    """Events -> notes in seconds. A note still sounding at the end ends there (at least one
    step after it started); impossible events (an off with no note on, a second on of a
    sounding pitch, which the sampling constraint never allows) are read leniently: the
    first is ignored, the second ends the sounding note."""
    now = 0
    velocity = DEFAULT_VELOCITY
    sounding: dict[int, tuple[int, int]] = {}
    out: list[tuple[int, int, int, int]] = []
    for event in events:
        if event.startswith(TIME_SHIFT):
            now += int(event[len(TIME_SHIFT) :])
        elif event.startswith(VELOCITY):
            velocity = _BIN_VELOCITY[int(event[len(VELOCITY) :])]
        elif event.startswith(NOTE_ON):
            p = int(event[len(NOTE_ON) :])
            if p in sounding:
                start, v = sounding.pop(p)
                if now > start:
                    out.append((start, now, p, v))
            sounding[p] = (now, velocity)
        elif event.startswith(NOTE_OFF + "_"):
            p = int(event[len(NOTE_OFF) + 1 :])
            if p in sounding and now > sounding[p][0]:
                start, v = sounding.pop(p)
                out.append((start, now, p, v))
        else:
            raise ValueError(f"not a performance event: {event!r}")
    for p, (start, v) in sounding.items():
        out.append((start, max(now, start + 1), p, v))
    return [
        TimedNote(s / STEPS_PER_SECOND, e / STEPS_PER_SECOND, p, v) for s, e, p, v in sorted(out)
    ]


def transpose_performance(notes: list[TimedNote], semitones: int) -> list[TimedNote] | None:
    moved = [TimedNote(n.start, n.end, n.pitch + semitones, n.velocity) for n in notes]
    if any(not 0 <= n.pitch <= 127 for n in moved):
        return None
    return moved
