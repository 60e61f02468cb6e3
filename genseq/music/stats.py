"""Statistics of a set of ABC tunes, alone or against a reference set (``genseq music stats``).

What a model's samples are judged by, next to held-out loss. This module reads the tunes and
assembles the report; each measure lives in its own module:

- **readability**: how many tunes the lexer reads (and why the others fail), and how many
  music21 parses (a second, independent parser);
- **bar validity** (``bars``): the share of bars whose notes fill the meter, with the
  corrections that real tunes need (anacrusis, bars split across repeat signs, endings);
- **musical features** (``features``): pitch range, pitch-class, interval and note-length
  histograms, meters, keys and rhythms (``R:``), and their distance to a reference set;
- **form** (``form``): parts of 8 or 16 bars and endings on the tonic;
- **memorisation** (``genseq.shared_runs``): the longest run of tokens a tune copies from any
  reference tune.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from genseq.music.abc_lexer import AbcError, LexOptions, RawTune, split_tunebook, tokenize_tune
from genseq.music.abc_vocab import info
from genseq.music.bars import BarReport, bar_report
from genseq.music.features import (
    HISTOGRAM_LABELS,
    TuneFeatures,
    compare_counts,
    histogram_distances,
    histograms,
    pitch_summary,
    tune_features,
)
from genseq.music.form import form_summary, tune_form
from genseq.music.notes import tune_notes
from genseq.shared_runs import RunMatch, longest_shared_runs, token_ids

# ---------------------------------------------------------------------------------------------
# Reading tunes

DEFAULT_OPTIONS = LexOptions()  # melody only: no chord symbols, decorations or grace notes
NO_RHYTHM = "none"  # the rhythm of a tune with no R: field (or one outside the known names)


@dataclass(frozen=True)
class SourceTune:
    """A tune's text and where it came from (file name), for reports."""

    raw: RawTune
    source: str = ""

    @property
    def label(self) -> str:
        title = self.raw.title or f"X:{self.raw.number or '?'}"
        where = f"{self.source}:{self.raw.line}" if self.source else f"line {self.raw.line}"
        return f"{title} ({where})"


def split_sources(texts: Iterable[tuple[str, str]]) -> list[SourceTune]:
    """(source name, tunebook text) pairs -> their tunes, in order."""
    return [SourceTune(raw, name) for name, text in texts for raw in split_tunebook(text)]


@dataclass
class ReadTune:
    """A tune the lexer read: its tokens, its bars and (when its notes are readable) features."""

    tune: SourceTune
    tokens: list[str]
    bars: BarReport
    features: TuneFeatures | None
    meter: str | None
    key: str | None
    problems: tuple[str, ...] = ()
    rhythm: str = NO_RHYTHM  # what abc2midi or abcm2ps would flag (``TuneNotes``)


@dataclass
class TuneSet:
    """A set of tunes read once, with the reasons the unreadable ones failed."""

    tunes: list[SourceTune]
    read: list[ReadTune]
    unreadable: Counter[str]
    notes_unreadable: Counter[str]


def read_tunes(
    tunes: Sequence[SourceTune], options: LexOptions = DEFAULT_OPTIONS, *, check_bars: bool = True
) -> TuneSet:
    """Tokenize every tune, check its bars (a reference set skips this) and compute its
    features; never raises for a bad tune: ``AbcError`` reasons are counted instead."""
    read: list[ReadTune] = []
    unreadable: Counter[str] = Counter()
    notes_unreadable: Counter[str] = Counter()
    for tune in tunes:
        try:
            tokens = tokenize_tune(tune.raw.text, options)
        except AbcError as exc:
            unreadable[str(exc)] += 1
            continue
        features, problems = None, ()
        try:
            notes = tune_notes(tokens, expand_repeats=False)
            features, problems = tune_features(notes.notes), notes.problems
        except AbcError as exc:
            notes_unreadable[str(exc)] += 1
        read.append(
            ReadTune(
                tune,
                tokens,
                bar_report(tokens) if check_bars else BarReport(()),
                features,
                _first(tokens, "meter"),
                _first(tokens, "key"),
                problems,
                _first(tokens, "rhythm") or NO_RHYTHM,
            )
        )
    return TuneSet(list(tunes), read, unreadable, notes_unreadable)


def _first(tokens: Sequence[str], kind: str) -> str | None:
    """The first token of a kind, without its ``M:``/``K:``/``R:`` prefix."""
    return next((t[2:] for t in tokens if info(t).kind == kind), None)


# ---------------------------------------------------------------------------------------------
# music21 parse rate


@dataclass(frozen=True)
class ParseRate:
    """How many of a sample of tunes music21 parses (an independent check of the ABC)."""

    checked: int
    parsed: int
    errors: dict[str, int]

    @property
    def rate(self) -> float:
        return self.parsed / self.checked if self.checked else math.nan


def sample_indices(n: int, limit: int, seed: int = 0) -> list[int]:
    """Up to ``limit`` of ``range(n)``, drawn the same way every run, in order."""
    if limit >= n:
        return list(range(n))
    return sorted(random.Random(seed).sample(range(n), max(0, limit)))


def music21_parse_rate(texts: Sequence[str], limit: int = 200) -> ParseRate:
    """Parse a deterministic sample of tune texts with music21 (50-100 ms each)."""
    chosen = sample_indices(len(texts), limit)
    if not chosen:
        return ParseRate(0, 0, {})
    from music21 import converter

    errors: Counter[str] = Counter()
    parsed = 0
    for i in chosen:
        try:
            converter.parse(texts[i], format="abc")
            parsed += 1
        except Exception as exc:  # noqa: BLE001 - any failure of the parser counts
            errors[type(exc).__name__] += 1
    return ParseRate(len(chosen), parsed, dict(errors))


# ---------------------------------------------------------------------------------------------
# The whole report


@dataclass
class MusicStats:
    """Everything ``genseq music stats`` reports; ``as_dict`` is its JSON form."""

    tunes: int
    readable: int
    unreadable: dict[str, int]
    notes_unreadable: dict[str, int]
    parse: ParseRate | None
    bars: dict[str, Any]
    pitch: dict[str, Any]
    histograms: dict[str, list[int]]
    meters: dict[str, int]
    keys: dict[str, int]
    rhythms: dict[str, int]  # every readable tune's, ``NO_RHYTHM`` for a tune without one
    per_tune: list[dict[str, Any]]
    form: dict[str, Any] = field(default_factory=dict)  # genseq.music.form.form_summary
    reference: dict[str, Any] | None = None
    memorisation: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        parse = None
        if self.parse is not None:
            parse = {
                "checked": self.parse.checked,
                "parsed": self.parse.parsed,
                "rate": self.parse.rate,
                "errors": self.parse.errors,
            }
        return {
            "tunes": self.tunes,
            "readable": self.readable,
            "unreadable": sum(self.unreadable.values()),
            "unreadable_reasons": self.unreadable,
            "notes_unreadable": self.notes_unreadable,
            "music21": parse,
            "bars": self.bars,
            "pitch": self.pitch,
            "histograms": {
                name: {"bins": HISTOGRAM_LABELS[name], "counts": counts}
                for name, counts in self.histograms.items()
            },
            "meters": self.meters,
            "keys": self.keys,
            "rhythms": self.rhythms,
            "form": self.form,
            "reference": self.reference,
            "memorisation": self.memorisation,
            "per_tune": self.per_tune,
        }


def bar_summary(read: Sequence[ReadTune]) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    for r in read:
        statuses.update(r.bars.statuses())
    checked = sum(r.bars.checked for r in read)
    valid = sum(r.bars.valid for r in read)
    metered = [r for r in read if r.bars.checked]
    clean = sum(r.bars.clean for r in metered)
    problems: Counter[str] = Counter(p for r in read for p in r.problems)
    return {
        "problems": dict(problems.most_common()),
        "tunes_with_problems": sum(bool(r.problems) for r in read),
        "tunes_within_rules": sum(r.bars.clean and not r.problems for r in metered),
        "checked": checked,
        "valid": valid,
        "full": statuses.get("full", 0),
        "valid_rate": valid / checked if checked else math.nan,
        "statuses": dict(statuses),
        "tunes_checked": len(metered),
        "tunes_clean": clean,
        "clean_rate": clean / len(metered) if metered else math.nan,
    }


def distances(ours: TuneSet, theirs: TuneSet) -> dict[str, dict[str, float]]:
    """OA and KL(ours || reference) per histogram feature, and for meters, keys and rhythms
    (tunes without a rhythm count as one more rhythm: a model that never names one is far
    from a corpus that mostly does)."""
    out = histogram_distances(histograms(ours.read), histograms(theirs.read))
    out["meter"] = compare_counts(_counts(ours.read, "meter"), _counts(theirs.read, "meter"))
    out["key"] = compare_counts(_counts(ours.read, "key"), _counts(theirs.read, "key"))
    out["rhythm"] = compare_counts(_counts(ours.read, "rhythm"), _counts(theirs.read, "rhythm"))
    return out


def _counts(read: Sequence[ReadTune], attribute: str) -> dict[str, int]:
    values = Counter(getattr(r, attribute) for r in read if getattr(r, attribute))
    return dict(values.most_common())


def memorisation(ours: TuneSet, theirs: TuneSet) -> tuple[dict[str, Any], list[RunMatch]]:
    """Longest run each tune copies from any reference tune, and the corpus max and mean."""
    queries, refs = token_ids([r.tokens for r in ours.read], [r.tokens for r in theirs.read])
    runs = longest_shared_runs(queries, refs)
    lengths = [m.length for m in runs]
    best = int(np.argmax(lengths)) if lengths else None
    summary = {
        "max": max(lengths) if lengths else None,
        "mean": float(np.mean(lengths)) if lengths else None,
        "reference_tokens": sum(len(s) for s in refs),
        "longest": None
        if best is None
        else {"tune": ours.read[best].tune.label, **_run_row(ours.read[best], runs[best], theirs)},
    }
    return summary, runs


def _run_row(tune: ReadTune, run: RunMatch, reference: TuneSet) -> dict[str, Any]:
    row: dict[str, Any] = {"length": run.length}
    if run.reference is not None:
        ref = reference.read[run.reference]
        row.update(
            reference=run.reference,
            reference_title=ref.tune.raw.title,
            reference_source=ref.tune.label,
            run=" ".join(tune.tokens[run.query_start : run.query_start + run.length]),
        )
    return row


def compute_stats(
    tunes: Sequence[SourceTune],
    reference: Sequence[SourceTune] | None = None,
    *,
    parse_limit: int = 200,
    options: LexOptions = DEFAULT_OPTIONS,
    progress: Callable[[str], None] | None = None,
) -> MusicStats:
    """Read ``tunes`` (and ``reference``) and compute every statistic of ``MusicStats``.

    ``parse_limit`` caps the music21 check (a deterministic sample; 0 skips it); features use
    the notes as written (repeats not expanded), so a tune's weight follows its notation.
    """
    say = progress or (lambda message: None)
    say(f"reading {len(tunes):,} tunes")
    ours = read_tunes(tunes, options)
    parse = None
    if parse_limit > 0:
        say(f"parsing up to {parse_limit:,} tunes with music21")
        parse = music21_parse_rate([t.raw.text for t in tunes], parse_limit)
    hist = histograms(ours.read)
    result = MusicStats(
        tunes=len(tunes),
        readable=len(ours.read),
        unreadable=dict(ours.unreadable.most_common()),
        notes_unreadable=dict(ours.notes_unreadable.most_common()),
        parse=parse,
        bars=bar_summary(ours.read),
        pitch=pitch_summary(ours.read),
        histograms={k: [int(x) for x in v] for k, v in hist.items()},
        meters=_counts(ours.read, "meter"),
        keys=_counts(ours.read, "key"),
        rhythms=_counts(ours.read, "rhythm"),
        per_tune=[_tune_row(r) for r in ours.read],
        form=_form(ours),
    )
    if reference is not None:
        say(f"reading {len(reference):,} reference tunes")
        theirs = read_tunes(reference, options, check_bars=False)
        say("comparing with the reference")
        _add_reference(result, ours, theirs)
    return result


def _add_reference(result: MusicStats, ours: TuneSet, theirs: TuneSet) -> None:
    """The reference's section of the report, and each tune's longest run copied from it."""
    summary, runs = memorisation(ours, theirs)
    for r, row, run in zip(ours.read, result.per_tune, runs, strict=True):
        row["memorised"] = _run_row(r, run, theirs)
    result.reference = {
        "tunes": len(theirs.tunes),
        "readable": len(theirs.read),
        "unreadable": sum(theirs.unreadable.values()),
        "distances": distances(ours, theirs),
        "rhythms": _counts(theirs.read, "rhythm"),
        "form": _form(theirs),
    }
    result.memorisation = summary


def _form(tunes: TuneSet) -> dict[str, Any]:
    return form_summary([tune_form(r.tokens) for r in tunes.read])


def _tune_row(r: ReadTune) -> dict[str, Any]:
    f = r.features
    return {
        "tune": r.tune.label,
        "title": r.tune.raw.title,
        "rhythm": r.rhythm,
        "tokens": len(r.tokens),
        "bars": len(r.bars.bars),
        "invalid_bars": r.bars.invalid,
        "clean": r.bars.clean,
        "problems": list(r.problems),
        "low": None if f is None else f.low,
        "high": None if f is None else f.high,
    }
