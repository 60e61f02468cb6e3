"""Note statistics of MIDI files (and ABC tunes) for ``genseq music stats``.

MIDI has no bars or tokens to check, so a set that holds MIDI files gets the note-level part
of the ABC report: files read (and why others were not), pitch range, and the pitch-class,
interval, note-length and pitch-range histograms of ``features.tune_features`` (intervals and
note lengths on the top line), compared with a reference set by overlapping area and KL
divergence. A reference may mix MIDI files and ABC tunes, so samples of a MIDI model can be
compared with the ABC corpus it learned from. Every non-drum note of a MIDI file counts;
times are read in whole notes from the file's ticks, note lengths rounded to 1/64.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from genseq.music.features import (
    HISTOGRAM_LABELS,
    TuneFeatures,
    histogram_distances,
    histograms,
    pitch_summary,
    tune_features,
)
from genseq.music.notes import Note


@dataclass
class _Read:
    name: str
    features: TuneFeatures | None
    notes: int


@dataclass
class NoteSet:
    """A set of documents (MIDI files' bytes or ABC tunes' text) read into note features."""

    documents: int
    read: list[_Read]
    unreadable: Counter[str]


def document_notes(document: bytes | str) -> list[Note]:
    """Notes in whole notes: every non-drum note of a MIDI file, or an ABC tune as written."""
    if isinstance(document, bytes | bytearray):
        from genseq.music.midi_io import read_midi, select_notes

        score = read_midi(bytes(document))
        whole = 4 * score.resolution
        return sorted(
            (
                Note(
                    n.pitch,
                    Fraction(n.start, whole).limit_denominator(64),
                    max(Fraction(n.end - n.start, whole).limit_denominator(64), Fraction(1, 64)),
                )
                for n in select_notes(score, melody=False)
            ),
            key=lambda n: (n.start, n.pitch),
        )
    from genseq.music.abc_lexer import tokenize_tune
    from genseq.music.notes import tune_notes

    return tune_notes(tokenize_tune(document), expand_repeats=False).notes


def read_documents(documents: list[tuple[str, bytes | str]]) -> NoteSet:
    """Features of every readable document; the reasons of the others are counted."""
    from genseq.music.abc_lexer import AbcError
    from genseq.music.midi_io import MidiError

    read, unreadable = [], Counter()
    for name, document in documents:
        try:
            notes = document_notes(document)
        except (MidiError, AbcError) as exc:
            unreadable[str(exc)] += 1
            continue
        read.append(_Read(name, tune_features(notes), len(notes)))
    return NoteSet(len(documents), read, unreadable)


def note_stats(ours: NoteSet, reference: NoteSet | None = None) -> dict[str, Any]:
    """The report as a JSON-ready dict."""
    hist = histograms(ours.read)  # reads only ``.features``
    report: dict[str, Any] = {
        "documents": ours.documents,
        "readable": len(ours.read),
        "unreadable": sum(ours.unreadable.values()),
        "unreadable_reasons": dict(ours.unreadable.most_common()),
        "notes": sum(r.notes for r in ours.read),
        "pitch": pitch_summary(ours.read),  # reads only ``.features``
        "histograms": {
            name: {"bins": HISTOGRAM_LABELS[name], "counts": [int(x) for x in counts]}
            for name, counts in hist.items()
        },
        "reference": None,
        "per_document": [
            {
                "document": r.name,
                "notes": r.notes,
                "low": r.features.low if r.features else None,
                "high": r.features.high if r.features else None,
            }
            for r in ours.read
        ],
    }
    if reference is not None:
        ref_hist = histograms(reference.read)
        report["reference"] = {
            "documents": reference.documents,
            "readable": len(reference.read),
            "unreadable": sum(reference.unreadable.values()),
            "distances": histogram_distances(hist, ref_hist),
        }
    return report
