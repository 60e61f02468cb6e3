"""Sampling from a MIDI checkpoint: primers, lengths, and decoding samples into notes.

A sample's prompt is ``<eos>`` (a piece starts) and then the primer's events: a MIDI file or
the first tune of an ABC file, read as the training documents were (``note_sources``). The
length asked for is counted after the primer: grid steps for a melody, 10 ms steps for a
performance. With the constraint (``midi_constraint``), no impossible event is drawn and a
sample ends exactly at that length; the decoders close every note still sounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from genseq.checkpoint import Checkpoint
from genseq.errors import GenseqError, UsageError
from genseq.generate import generate
from genseq.music.midi_encoding import (
    STEPS_PER_SECOND,
    TimedNote,
    decode_melody,
    decode_performance,
    encode_melody,
    encode_performance,
)
from genseq.music.notes import Note, TuneNotes
from genseq.sample import SamplingSettings

DEFAULT_BARS = 8  # of 4/4, when neither --num-steps nor --seconds is given (Magenta: 128 steps)
PERFORMANCE_EVENTS_PER_STEP = 4  # the token budget of a performance: 4 events per 10 ms
PERFORMANCE_QPM = 120.0  # plays a performance's ``tune_notes`` (2 s a whole) in its own seconds


@dataclass
class MidiSample:
    index: int
    events: list[str]  # the primer's, then the sample's
    new_events: int
    finish_reason: str  # eos: the length asked for | length: ran out of tokens
    melody: TuneNotes | None = None  # midi-melody
    performance: list[TimedNote] | None = None  # midi-performance

    @property
    def note_count(self) -> int:
        return len(self.melody.notes) if self.melody is not None else len(self.performance or [])

    def tune_notes(self) -> TuneNotes:
        """The notes as ``TuneNotes`` for ``render`` (a performance at ``PERFORMANCE_QPM``: 2 s
        a whole)."""
        if self.melody is not None:
            return self.melody
        notes = [
            Note(
                n.pitch,
                Fraction(round(n.start * STEPS_PER_SECOND), 2 * STEPS_PER_SECOND),
                Fraction(round((n.end - n.start) * STEPS_PER_SECOND), 2 * STEPS_PER_SECOND),
            )
            for n in self.performance or []
        ]
        length = max((n.start + n.duration for n in notes), default=Fraction(0))
        return TuneNotes(notes, None, None, length)

    def playback_qpm(self, tempo: float) -> float:
        """The tempo that plays ``tune_notes`` as sampled: a melody's steps last as ``tempo``
        says; a performance's times are seconds already."""
        return tempo if self.melody is not None else PERFORMANCE_QPM

    def write_midi(self, path: Path, tempo: float) -> Path:
        """A melody at ``tempo``; a performance with its own timing and velocities."""
        from genseq.music import render

        if self.melody is not None:
            return render.write_midi(self.melody, path, tempo_qpm=tempo)
        return render.write_performance_midi(self.performance or [], path)


def is_melody(ckpt: Checkpoint) -> bool:
    return ckpt.level == "midi-melody"


def steps_for(
    ckpt: Checkpoint, *, num_steps: int | None = None, seconds: float | None = None, tempo: float
) -> int:
    """The length asked for, in the model's steps."""
    if num_steps is not None and seconds is not None:
        raise UsageError("give --num-steps or --seconds, not both")
    if num_steps is not None:
        if num_steps < 1:
            raise UsageError("--num-steps must be at least 1")
        return num_steps
    if seconds is not None and not (math.isfinite(seconds) and seconds > 0):
        raise UsageError("--seconds must be a positive number")
    if is_melody(ckpt):
        spq = ckpt.tokenizer.options.steps_per_quarter
        if seconds is None:
            return DEFAULT_BARS * 4 * spq
        return max(1, round(seconds * tempo / 60 * spq))
    return max(1, round((seconds if seconds is not None else 10.0) * STEPS_PER_SECOND))


def primer_events(
    ckpt: Checkpoint,
    *,
    primer_midi: Path | None = None,
    primer_abc: Path | None = None,
    tempo: float,
) -> list[str]:
    """The events of the primer file (none without one), read as in training."""
    from genseq.music.abc_lexer import AbcError, split_tunebook
    from genseq.music.midi_io import MidiError
    from genseq.music.note_sources import melody_notes, performance_notes

    if primer_midi is not None and primer_abc is not None:
        raise UsageError("give --primer-midi or --primer-abc, not both")
    path = primer_midi or primer_abc
    if path is None:
        return []
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise GenseqError(f"{path}: {exc.strerror}") from None
    document: bytes | str = data
    try:
        if primer_abc is not None:
            tunes = split_tunebook(data.decode("utf-8", errors="replace"))
            if not tunes:
                raise GenseqError(f"{path}: no tune (an X: line) to use as a primer")
            document = tunes[0].text
        options = ckpt.tokenizer.options
        if is_melody(ckpt):
            notes = melody_notes(document, options.steps_per_quarter, ckpt.tokenizer.pitch_range)
            return encode_melody(notes)
        return encode_performance(performance_notes(document, tempo_qpm=tempo))
    except (MidiError, AbcError) as exc:
        raise GenseqError(f"{path}: cannot be used as a primer ({exc})") from None


def sample_midi(
    ckpt: Checkpoint,
    primer: list[str],
    settings: SamplingSettings,
    *,
    num_samples: int = 1,
    steps: int,
    seed: int | None = None,
    constrain: bool = True,
) -> list[MidiSample]:
    """Draw ``num_samples`` continuations of ``primer``, each ``steps`` long."""
    from genseq.music.midi_constraint import MelodyConstraint, PerformanceConstraint

    tok = ckpt.tokenizer
    ids = [tok.eos_id, *(int(i) for i in tok.token_ids(primer))]
    melody = is_melody(ckpt)
    if melody:
        budget = steps + 1
        constraint = MelodyConstraint(tok, ids, steps) if constrain else None
    else:
        budget = PERFORMANCE_EVENTS_PER_STEP * steps + 1
        constraint = PerformanceConstraint(tok, ids, steps) if constrain else None
    drawn = generate(
        ckpt,
        settings=settings,
        max_new_tokens=budget,
        num_samples=num_samples,
        seed=seed,
        constraint=constraint,
        prompt_ids=ids,
    )
    out = []
    for s in drawn:
        events = primer + tok.tokens_of(s.ids)
        sample = MidiSample(s.index, events, len(s.ids), s.finish_reason)
        if melody:
            spq = tok.options.steps_per_quarter
            whole = 4 * spq
            sample.melody = TuneNotes(
                [
                    Note(n.pitch, Fraction(n.start, whole), Fraction(n.end - n.start, whole))
                    for n in decode_melody(events)
                ],
                None,
                None,
                Fraction(len(events), whole),
            )
        else:
            sample.performance = decode_performance(events)
        out.append(sample)
    return out
