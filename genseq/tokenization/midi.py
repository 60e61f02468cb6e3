"""MIDI levels: ``midi-melody`` and ``midi-performance``, fixed vocabularies of note events.

``genseq.music.note_sources`` reads a document (a MIDI file's bytes, or one ABC tune's text)
into notes and ``genseq.music.midi_encoding`` turns them into event tokens; this class gives
the tokens ids. As at the abc level, the vocabulary is a Hugging Face ``WordLevel`` tokenizer
over whitespace-separated tokens, and it describes itself: the melody level's pitch range is
its ``NOTE_ON_<pitch>`` tokens and its grid is a marker token ``<steps_per_quarter=N>`` that
never occurs in data (and is never generated), so a checkpoint's ``tokenizer.json`` holds all
that sampling needs.

The melody's pitch range is the corpus's own unless one is given: fitting reads every
document's melody once and takes its lowest and highest pitch (widened by the
``--augment-keys`` transpositions, and to an octave at least). A model then cannot sample a
pitch its corpus never reaches, at the cost of a second read of the corpus. The performance
vocabulary is Performance RNN's, fixed. The MIDI track or program chosen for training is not
needed to sample and is not saved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from genseq.music.midi_encoding import DEFAULT_PITCH_RANGE
from genseq.tokenization.abc import augment_shifts
from genseq.tokenization.base import SPECIAL_TOKENS, SkipDocument
from genseq.tokenization.symbols import SymbolTokenizer

SPQ_MARKER = re.compile(r"<steps_per_quarter=(\d+)>")


@dataclass(frozen=True)
class MidiOptions:
    """How documents are read into notes (picklable: encoding workers receive it)."""

    steps_per_quarter: int = 4
    pitch_range: tuple[int, int] | None = None  # melody; None: the corpus's, found by fit
    track: str | None = None
    program: int | None = None


class MidiTokenizer(SymbolTokenizer):
    """Shared by both MIDI levels: documents are MIDI files or ABC tunes, one per document."""

    lossless = False
    splits_tunes = True  # text sources are tunebooks; a MIDI file is one document
    reads_midi = True

    def __init__(
        self,
        hf=None,
        vocab_size: int | None = None,
        min_frequency: int | None = None,
        lowercase: bool = False,
        steps_per_quarter: int = 4,
        pitch_range: tuple[int, int] | None = None,
        track: str | None = None,
        program: int | None = None,
        augment_keys: int = 0,
    ) -> None:
        super().__init__(hf, vocab_size, min_frequency, lowercase)
        bounds = None if pitch_range is None else (int(pitch_range[0]), int(pitch_range[1]))
        self.options = MidiOptions(steps_per_quarter, bounds, track, program)
        self.augment_keys = augment_keys
        self._note_on_ids: np.ndarray | None = None

    def settings(self) -> dict[str, Any]:
        return {**asdict(self.options), "augment_keys": self.augment_keys}

    # -- to be provided by each level ----------------------------------------------------------
    def vocabulary(self) -> list[str]:
        raise NotImplementedError

    def document_events(self, document: bytes | str, training: bool) -> list[list[str]]:
        """The document's events, then transposed copies when augmenting a training one."""
        raise NotImplementedError

    # -- fitting: the vocabulary is fixed once the options are known --------------------------
    def fit(self, chunks: Iterable[str | bytes]) -> None:
        self.fit_options(chunks)
        self.set_vocabulary([*SPECIAL_TOKENS, *self.vocabulary()])

    def fit_options(self, chunks: Iterable[str | bytes]) -> None:
        for _ in chunks:  # the caller counts documents while they stream past
            pass

    @property
    def note_on_ids(self) -> np.ndarray:
        if self._note_on_ids is None:
            ids = [i for t, i in self.ids.items() if t.startswith("NOTE_ON_")]
            self._note_on_ids = np.array(sorted(ids), dtype=np.int64)
        return self._note_on_ids

    def note_count(self, ids: np.ndarray) -> int:
        """Notes in a run of ids (one ``NOTE_ON`` each): for nats per note."""
        return int(np.isin(np.asarray(ids), self.note_on_ids).sum())

    # -- the Tokenizer interface ---------------------------------------------------------------
    def encode_document(self, text: str | bytes) -> np.ndarray:
        """One document as ids."""
        return self._variant_ids(text, copies=False)[0]

    def encode_training_document(self, text: str | bytes) -> list[np.ndarray]:
        """One document, then its transposed copies, as ids."""
        return self._variant_ids(text, copies=True)

    def _variant_ids(self, text: str | bytes, copies: bool) -> list[np.ndarray]:
        from genseq.music.abc_lexer import AbcError
        from genseq.music.midi_io import MidiError

        try:
            variants = self.document_events(text, copies)
        except (MidiError, AbcError) as exc:
            raise SkipDocument(str(exc)) from None
        if not variants or not variants[0]:
            raise SkipDocument("no notes")
        return [self.token_ids(variant) for variant in variants]

    def encode_chunk(self, text: str) -> np.ndarray:
        return self.encode_document(text)

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self.tokens_of(ids))

    @property
    def never_generate(self) -> list[int]:
        return [
            self.unk_id,
            *(i for t, i in self.ids.items() if t.startswith("<") and t not in SPECIAL_TOKENS),
        ]

    def shifts(self, training: bool) -> list[int]:
        return augment_shifts(self.augment_keys) if training else []


class MelodyTokenizer(MidiTokenizer):
    level = "midi-melody"

    @property
    def pitch_range(self) -> tuple[int, int]:
        return self.options.pitch_range or DEFAULT_PITCH_RANGE

    def vocabulary(self) -> list[str]:
        from genseq.music.midi_encoding import melody_vocabulary

        low, high = self.pitch_range
        marker = f"<steps_per_quarter={self.options.steps_per_quarter}>"
        return [*melody_vocabulary(low, high), marker]

    def fit_options(self, chunks: Iterable[str | bytes]) -> None:
        """Without a pitch range, take the corpus's (every readable document's melody)."""
        if self.options.pitch_range is not None:
            return super().fit_options(chunks)
        from genseq.music.abc_lexer import AbcError
        from genseq.music.midi_io import MidiError
        from genseq.music.note_sources import Selection, melody_notes

        o = self.options
        low, high = 127, 0
        for document in chunks:
            try:
                notes = melody_notes(
                    document, o.steps_per_quarter, None, Selection(o.track, o.program)
                )
            except (MidiError, AbcError):
                continue
            if notes:
                low = min(low, min(n.pitch for n in notes))
                high = max(high, max(n.pitch for n in notes))
        if low > high:  # nothing readable: prepare reports the skipped documents
            low, high = DEFAULT_PITCH_RANGE
        shifts = self.shifts(True)
        low, high = low + min([0, *shifts]), high + max([0, *shifts])
        low, high = max(0, low), min(127, high)
        while high - low < 11:  # an octave at least: every pitch folds into it
            if high < 127 and (low == 0 or (high - low) % 2 == 0):
                high += 1
            else:
                low -= 1
        self.options = replace(o, pitch_range=(low, high))

    def document_events(self, document: bytes | str, training: bool) -> list[list[str]]:
        from genseq.music.midi_encoding import encode_melody, transpose_melody
        from genseq.music.note_sources import Selection, melody_notes

        o = self.options
        notes = melody_notes(
            document, o.steps_per_quarter, self.pitch_range, Selection(o.track, o.program)
        )
        variants = [encode_melody(notes)]
        for shift in self.shifts(training):
            moved = transpose_melody(notes, shift, *self.pitch_range)
            if moved is not None:
                variants.append(encode_melody(moved))
        return variants

    @classmethod
    def from_json(cls, text: str, **settings: Any) -> MelodyTokenizer:
        """Without ``settings``, the grid and pitch range are those the vocabulary holds."""
        tokenizer = super().from_json(text, **settings)
        vocab = tokenizer.ids
        pitches = [int(t[len("NOTE_ON_") :]) for t in vocab if t.startswith("NOTE_ON_")]
        spq = [int(m.group(1)) for t in vocab if (m := SPQ_MARKER.fullmatch(t))]
        if not pitches or len(spq) != 1:
            raise ValueError("not a midi-melody vocabulary (no NOTE_ON or grid marker)")
        if not settings:
            tokenizer.options = MidiOptions(spq[0], (min(pitches), max(pitches)))
        return tokenizer

    def describe(self) -> str:
        low, high = self.pitch_range
        spq = self.options.steps_per_quarter
        return (
            f"midi-melody level, {self.vocab_size:,} tokens (one event per 1/{4 * spq} note, "
            f"pitches {low}-{high})"
        )


class PerformanceTokenizer(MidiTokenizer):
    level = "midi-performance"

    def vocabulary(self) -> list[str]:
        from genseq.music.midi_encoding import performance_vocabulary

        return performance_vocabulary()

    def document_events(self, document: bytes | str, training: bool) -> list[list[str]]:
        from genseq.music.midi_encoding import encode_performance, transpose_performance
        from genseq.music.note_sources import Selection, performance_notes

        o = self.options
        notes = performance_notes(document, Selection(o.track, o.program))
        variants = [encode_performance(notes)]
        for shift in self.shifts(training):
            moved = transpose_performance(notes, shift)
            if moved is not None:
                variants.append(encode_performance(moved))
        return variants

    def describe(self) -> str:
        return (
            f"midi-performance level, {self.vocab_size:,} tokens (note on/off, 10 ms time "
            "shifts, 32 velocities)"
        )


__all__ = ["MelodyTokenizer", "MidiOptions", "MidiTokenizer", "PerformanceTokenizer"]
