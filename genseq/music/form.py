"""The form of a tune: its parts, how many bars each runs, and the note it ends on.

A folk tune is built of parts (A, B...) of 8 or 16 bars, each usually repeated, and ends on
its tonic. ``tune_form`` reads that from tokens, so that ``genseq music stats`` can report a
model's samples beside a reference corpus, and the grammar constraint's form rules can be
checked against real tunes.

Parts are the stretches between section signs (``|:`` ``:|`` ``||`` ``|]``); a ``:|`` that a
second ending follows does not end its part. A part's length is the time it takes to play
once, through its first ending (a second ending is the same bars played differently), in bars
of its meter: a pickup and the short bar that closes the part add up to one bar, so a part of
eight full bars written with a pickup still counts 8. A stretch shorter than one bar (a pickup
written before ``|:``) joins the part after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from genseq.music.abc_vocab import degree, info
from genseq.music.bars import bar_report

SECTION_SIGNS = frozenset({"|:", ":|", "||", "|]"})
COMMON_PART_BARS = (8, 16)


@dataclass(frozen=True)
class Part:
    bars: Fraction  # bars it takes to play once, through the first ending
    repeated: bool


@dataclass(frozen=True)
class Form:
    parts: tuple[Part, ...]
    ending: str | None  # the last note: "tonic", "triad" (third or fifth), "other"; None: none

    @property
    def common_parts(self) -> bool:
        """Every part runs 8 or 16 bars."""
        return bool(self.parts) and all(p.bars in COMMON_PART_BARS for p in self.parts)


def tune_form(tokens: Sequence[str]) -> Form:
    """The parts of a tune and the degree of its last note (module docstring)."""
    return Form(_parts(tokens), _ending(tokens))


def _parts(tokens: Sequence[str]) -> tuple[Part, ...]:
    parts: list[Part] = []
    time, repeated, alternative, carried = Fraction(0), False, False, Fraction(0)
    for bar in bar_report(tokens).bars:
        if bar.length is None:
            return ()
        if any(1 not in info(m).passes for m in bar.before if m.startswith("[")):
            alternative = True  # a second ending: the first one's bars, played another way
        if any(m.startswith("[") for m in bar.before | bar.after):
            repeated = True
        if not alternative:
            time += bar.duration / bar.length
        signs = bar.after & SECTION_SIGNS
        continues = ":|" in signs and any(m.startswith("[") for m in bar.after)
        if signs and not continues:
            repeated = repeated or ":|" in signs
            if time + carried < 1:
                carried += time  # a pickup before |: joins the next part
            else:
                parts.append(Part(time + carried, repeated))
                carried = Fraction(0)
            time, repeated, alternative = Fraction(0), False, False
    if time + carried > 0:
        parts.append(Part(time + carried, repeated))
    return tuple(parts)


def _ending(tokens: Sequence[str]) -> str | None:
    """Where the last note stands in the last key: tonic, the rest of its triad, or other."""
    last_note, alteration, key = None, {}, None
    for token in tokens:
        t = info(token)
        if t.kind == "key":
            key = t
        elif t.kind == "bar":
            alteration = {}
        elif t.kind == "note":
            if t.accidental is not None:
                alteration[(t.letter, t.octave)] = t.accidental
            last_note = (t, alteration.get((t.letter, t.octave)), key)
    if last_note is None or last_note[2] is None:
        return None
    note, held, key = last_note
    return degree(note.letter, held, key.tonic, key.mode)


def form_summary(forms: Sequence[Form]) -> dict:
    """Shares over a set of tunes: parts of 8 or 16 bars, and last notes on the tonic."""
    parts = [p for f in forms for p in f.parts]
    ended = [f.ending for f in forms if f.ending is not None]
    return {
        "tunes": len(forms),
        "parts": len(parts),
        "parts_8_or_16_bars": _share(sum(p.bars in COMMON_PART_BARS for p in parts), len(parts)),
        "tunes_all_parts_8_or_16": _share(sum(f.common_parts for f in forms), len(forms)),
        "tonic_endings": _share(ended.count("tonic"), len(ended)),
        "triad_endings": _share(sum(e in ("tonic", "triad") for e in ended), len(ended)),
        "parts_per_tune": _share(len(parts), len(forms)),
        "repeated_parts": _share(sum(p.repeated for p in parts), len(parts)),
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
