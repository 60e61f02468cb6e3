"""Musical features of a tune's notes, pooled over a set, and distances between two sets.

A tune's features are its pitch range and its pitch-class, interval and note-length
histograms (intervals and note lengths on the top line); a set pools them, and two sets are
compared histogram by histogram with the overlapping area and the KL divergence, in the
spirit of MGEval (Yang & Lerch 2018), not its intra-/inter-set KDEs. The notes may come from
ABC tunes or MIDI files alike.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Protocol

import numpy as np

# ---------------------------------------------------------------------------------------------
# Features of one tune

NOTE_LENGTH_BINS: tuple[Fraction, ...] = tuple(
    Fraction(x) for x in ("1/16", "1/8", "3/16", "1/4", "3/8", "1/2", "3/4", "1")
)
NOTE_LENGTH_LABELS = [str(b) for b in NOTE_LENGTH_BINS] + ["other"]
INTERVAL_LABELS = [str(i) for i in range(-12, 13)]
PITCH_CLASS_LABELS = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
MAX_RANGE = 36  # pitch spans above three octaves share the last bin
PITCH_RANGE_LABELS = [str(i) for i in range(MAX_RANGE)] + [f"{MAX_RANGE}+"]
HISTOGRAMS = ("pitch_class", "interval", "note_length", "pitch_range")
HISTOGRAM_LABELS = {  # the bins of each histogram, for reports
    "pitch_class": PITCH_CLASS_LABELS,
    "interval": INTERVAL_LABELS,
    "note_length": NOTE_LENGTH_LABELS,
    "pitch_range": PITCH_RANGE_LABELS,
}


@dataclass(frozen=True)
class TuneFeatures:
    """Per-tune counts that the set statistics add up (histograms are raw counts)."""

    low: int
    high: int
    pitch_class: np.ndarray  # (12,)
    interval: np.ndarray  # (25,) steps -12..12 between successive melody notes
    note_length: np.ndarray  # (9,) melody note durations, NOTE_LENGTH_BINS then other

    @property
    def span(self) -> int:
        return self.high - self.low


def melody(notes: Sequence[Any]) -> list[Any]:
    """The top line: at each onset the highest note (a chord counts as its top note)."""
    top: dict[Fraction, Any] = {}
    for n in notes:
        if n.start not in top or n.pitch > top[n.start].pitch:
            top[n.start] = n
    return [top[s] for s in sorted(top)]


def note_length_bin(duration: Fraction) -> int:
    try:
        return NOTE_LENGTH_BINS.index(duration)
    except ValueError:
        return len(NOTE_LENGTH_BINS)


def tune_features(notes: Sequence[Any]) -> TuneFeatures | None:
    """Features of a tune's notes (objects with ``pitch``, ``start``, ``duration``)."""
    if not notes:
        return None
    pitches = np.array([n.pitch for n in notes], dtype=np.int64)
    line = melody(notes)
    steps = np.diff(np.array([n.pitch for n in line], dtype=np.int64))
    lengths = [note_length_bin(Fraction(n.duration)) for n in line]
    return TuneFeatures(
        low=int(pitches.min()),
        high=int(pitches.max()),
        pitch_class=np.bincount(pitches % 12, minlength=12),
        interval=np.bincount(np.clip(steps, -12, 12) + 12, minlength=25),
        note_length=np.bincount(np.array(lengths, dtype=np.int64), minlength=9),
    )


# ---------------------------------------------------------------------------------------------
# A set's histograms and pitch range


class HasFeatures(Protocol):
    """A read document (an ABC tune, a MIDI file): the set summaries read only its features."""

    features: TuneFeatures | None


def histograms(read: Sequence[HasFeatures]) -> dict[str, np.ndarray]:
    """Set histograms: note counts pooled over all tunes; pitch range counts tunes by span."""
    feats = [r.features for r in read if r.features is not None]
    out = {
        "pitch_class": np.zeros(12, np.int64),
        "interval": np.zeros(25, np.int64),
        "note_length": np.zeros(9, np.int64),
        "pitch_range": np.zeros(MAX_RANGE + 1, np.int64),
    }
    for f in feats:
        out["pitch_class"] += f.pitch_class
        out["interval"] += f.interval
        out["note_length"] += f.note_length
        out["pitch_range"][min(f.span, MAX_RANGE)] += 1
    return out


def pitch_summary(read: Sequence[HasFeatures]) -> dict[str, Any]:
    feats = [r.features for r in read if r.features is not None]
    if not feats:
        return {"tunes": 0, "min": None, "max": None, "mean_low": None, "mean_high": None}
    return {
        "tunes": len(feats),
        "min": min(f.low for f in feats),
        "max": max(f.high for f in feats),
        "mean_low": float(np.mean([f.low for f in feats])),
        "mean_high": float(np.mean([f.high for f in feats])),
        "mean_span": float(np.mean([f.span for f in feats])),
    }


# ---------------------------------------------------------------------------------------------
# Distances between two sets' histograms


def normalise(counts: Sequence[float] | np.ndarray) -> np.ndarray | None:
    """Counts -> probabilities; None for an empty histogram (nothing to compare)."""
    p = np.asarray(counts, dtype=np.float64)
    total = p.sum()
    return p / total if total > 0 else None


def overlap_area(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Overlapping area of two normalised histograms: 1 for identical, 0 for disjoint."""
    pn, qn = normalise(p), normalise(q)
    if pn is None or qn is None:
        return math.nan
    return float(np.minimum(pn, qn).sum())


def kl_divergence(
    p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray, eps: float = 1e-6
) -> float:
    """KL(p || q) in nats of two histograms, each smoothed with ``eps`` per bin so that a bin
    empty in the reference gives a large but finite value."""
    pn, qn = normalise(p), normalise(q)
    if pn is None or qn is None:
        return math.nan
    ps = (pn + eps) / (1 + eps * len(pn))
    qs = (qn + eps) / (1 + eps * len(qn))
    return float(np.sum(ps * np.log(ps / qs)))


def histogram_distances(
    ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]
) -> dict[str, dict[str, float]]:
    """OA and KL(ours || theirs) of each histogram of two sets (``histograms``)."""
    return {
        name: {
            "overlap": overlap_area(ours[name], theirs[name]),
            "kl": kl_divergence(ours[name], theirs[name]),
        }
        for name in HISTOGRAMS
    }


def compare_counts(ours: dict[str, int], theirs: dict[str, int]) -> dict[str, float]:
    """OA and KL of two categorical distributions (meters, keys) over the union of labels."""
    labels = sorted(set(ours) | set(theirs))
    p = [ours.get(k, 0) for k in labels]
    q = [theirs.get(k, 0) for k in labels]
    return {"overlap": overlap_area(p, q), "kl": kl_divergence(p, q)}
