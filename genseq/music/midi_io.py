"""MIDI files -> notes, and the choice of what a note model learns from them.

Files are read from bytes with mido (faster than pretty_midi, and it keeps ticks), so a
corpus of MIDI files is read like any other corpus: one file is one document. Notes keep
their times in ticks, which makes quantising to a grid independent of tempo changes;
``MidiScore.seconds`` turns ticks into seconds through the file's tempo map for the
performance encoding.

What is learned (``select_notes``):

* melody: one voice. With no choice given, the non-drum part (a track's notes on one
  channel with one program) whose notes are highest on average, among the parts holding at
  least a tenth as many notes as the largest; then the highest note wherever notes overlap
  (the skyline). ``track`` (a name, or an index counting the tracks that hold notes from 0)
  or ``program`` (0-127) choose the parts instead, and the skyline runs over all their notes.
* performance: every non-drum note (of the chosen track or program, if given).

A file that cannot be read, or has no notes to learn, raises ``MidiError`` with a short fixed
reason, which the tokenizer turns into a skipped document counted by reason.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path

MIDI_SUFFIXES = (".mid", ".midi")
DRUM_CHANNEL = 9  # General MIDI channel 10
DEFAULT_TEMPO = 500_000  # microseconds per quarter note (120 qpm)
MIN_PART_SHARE = 0.1  # a melody part holds at least this share of the largest part's notes


class MidiError(ValueError):
    """A MIDI file that cannot be used; the message is a short reason for summaries."""


def is_midi(path: Path | str) -> bool:
    return Path(path).suffix.lower() in MIDI_SUFFIXES


@dataclass(frozen=True)
class Part:
    """The notes of one track on one channel with one program."""

    track: int
    channel: int
    program: int
    name: str

    @property
    def drums(self) -> bool:
        return self.channel == DRUM_CHANNEL


@dataclass(frozen=True, order=True)
class MidiNote:
    start: int  # ticks
    end: int  # ticks, > start
    pitch: int
    velocity: int
    part: int  # index into MidiScore.parts


@dataclass
class MidiScore:
    resolution: int  # ticks per quarter note
    notes: list[MidiNote]
    parts: list[Part]
    tempos: list[tuple[int, int]] = field(default_factory=list)  # (tick, microseconds/quarter)
    time_signature: tuple[int, int] | None = None  # the first one
    _map: tuple[list[int], list[float], list[float]] | None = None

    def seconds(self, tick: float) -> float:
        """Seconds from the start to ``tick``, through the tempo map."""
        if self._map is None:
            ticks, starts, rates = [0], [0.0], [DEFAULT_TEMPO / 1e6 / self.resolution]
            for t, tempo in sorted(self.tempos):
                starts_at = starts[-1] + (t - ticks[-1]) * rates[-1]
                if t == ticks[-1]:
                    rates[-1] = tempo / 1e6 / self.resolution
                    continue
                ticks.append(t)
                starts.append(starts_at)
                rates.append(tempo / 1e6 / self.resolution)
            self._map = (ticks, starts, rates)
        ticks, starts, rates = self._map
        i = bisect.bisect_right(ticks, tick) - 1
        return starts[i] + (tick - ticks[i]) * rates[i]

    @property
    def bar_ticks(self) -> int:
        """Ticks in a bar of the first time signature (4/4 when the file has none)."""
        num, den = self.time_signature or (4, 4)
        return max(1, round(self.resolution * 4 * num / den))


def read_midi(data: bytes) -> MidiScore:
    """Parse a standard MIDI file's bytes; ``MidiError`` if it is not one.

    Note-offs close the earliest open note of their pitch and channel (first in, first out);
    notes still open at the end of their track end there, and zero-length notes are dropped.
    """
    import io

    import mido

    if not data:
        raise MidiError("empty file")
    try:
        parsed = mido.MidiFile(file=io.BytesIO(data), clip=True)
    except Exception:  # mido raises many types, not all ValueErrors (KeySignatureError for a
        # key signature of 17 sharps): each means bytes it cannot read as MIDI
        raise MidiError("not a readable MIDI file") from None
    if parsed.type == 2 or not parsed.ticks_per_beat or not parsed.tracks:
        raise MidiError("not a readable MIDI file")
    if parsed.ticks_per_beat < 0:  # mido reads SMPTE frames per second as a negative division
        raise MidiError("SMPTE time division is not supported")
    score = MidiScore(parsed.ticks_per_beat, [], [])
    part_index: dict[tuple[int, int, int], int] = {}
    for track_number, track in enumerate(parsed.tracks):
        now = 0
        programs = [0] * 16
        open_notes: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
        for msg in track:
            now += msg.time
            kind = msg.type
            if kind == "note_on" and msg.velocity > 0:
                channel = msg.channel
                part_key = (track_number, channel, programs[channel])
                part = part_index.get(part_key)
                if part is None:
                    part = part_index[part_key] = len(score.parts)
                    score.parts.append(Part(track_number, channel, programs[channel], track.name))
                open_notes.setdefault((channel, msg.note), []).append((now, msg.velocity, part))
            elif kind == "note_off" or kind == "note_on":  # a note-on of velocity 0 ends one
                started = open_notes.get((msg.channel, msg.note))
                if started:
                    start, velocity, part = started.pop(0)
                    if now > start:
                        score.notes.append(MidiNote(start, now, msg.note, velocity, part))
            elif kind == "program_change":
                programs[msg.channel] = msg.program
            elif kind == "set_tempo":
                score.tempos.append((now, msg.tempo))
            elif kind == "time_signature" and score.time_signature is None:
                score.time_signature = (msg.numerator, msg.denominator)
        for (_channel, pitch), started in open_notes.items():
            for start, velocity, part in started:
                if now > start:  # never switched off: it ends with its track
                    score.notes.append(MidiNote(start, now, pitch, velocity, part))
    score.notes.sort()
    return score


def read_midi_file(path: Path | str) -> MidiScore:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MidiError(f"cannot read the file ({exc.strerror})") from None
    return read_midi(data)


def select_notes(
    score: MidiScore, melody: bool, track: str | None = None, program: int | None = None
) -> list[MidiNote]:
    """The notes to learn: one voice (``melody``) or every chosen non-drum note."""
    parts = [i for i, p in enumerate(score.parts) if not p.drums]
    if track is not None:
        wanted = track.strip()
        # A number is the n-th track holding notes (a tempo track does not count).
        if wanted.isdecimal() and len(wanted) < 10:
            tracks = sorted({p.track for p in score.parts})
            number = tracks[int(wanted)] if int(wanted) < len(tracks) else -1
            parts = [i for i in parts if score.parts[i].track == number]
        else:
            parts = [i for i in parts if score.parts[i].name.casefold() == wanted.casefold()]
    if program is not None:
        parts = [i for i in parts if score.parts[i].program == program]
    chosen = set(parts)
    notes = [n for n in score.notes if n.part in chosen]
    if not notes:
        if track is not None or program is not None:
            raise MidiError("no notes in the chosen track or program")
        raise MidiError("no notes")
    if not melody:
        return notes
    if track is None and program is None:
        notes = _highest_part(notes)
    return skyline(notes)


def _highest_part(notes: list[MidiNote]) -> list[MidiNote]:
    """The notes of the part that is highest on average, among the parts of some size."""
    by_part: dict[int, list[MidiNote]] = {}
    for n in notes:
        by_part.setdefault(n.part, []).append(n)
    largest = max(len(v) for v in by_part.values())
    candidates = [v for v in by_part.values() if len(v) >= MIN_PART_SHARE * largest]
    return max(candidates, key=lambda v: (sum(n.pitch for n in v) / len(v), len(v)))


def skyline(notes: list[MidiNote]) -> list[MidiNote]:
    """One voice: the highest note at every onset; a higher note cuts the sounding one short,
    a lower note that starts while another sounds is left out."""
    out: list[MidiNote] = []
    for n in sorted(notes, key=lambda n: (n.start, -n.pitch)):
        if out and n.start == out[-1].start:
            continue  # a lower note of the same onset
        if out and n.start < out[-1].end:
            last = out[-1]
            if n.pitch <= last.pitch:
                continue
            out[-1] = MidiNote(last.start, n.start, last.pitch, last.velocity, last.part)
        out.append(n)
    return out
