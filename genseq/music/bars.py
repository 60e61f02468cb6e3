"""Bar validity: does each bar of a tune fill its meter?

A naive check (every bar exactly full) flags about 14 % of the bars of human-written
Nottingham tunes, so a bar may also be short where real tunes write it so: an anacrusis, a
bar split across repeat signs, a section's closing bar that its opening pickup completes, and
bars touching an ending. With these rules 99 % of those tunes are wholly clean (the research
note's similar rule: 94.5 %), the ceiling a model's samples are compared against.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

from genseq.music.abc_vocab import info
from genseq.music.rhythm import Rhythm

SECTION_END = frozenset({":|", "||", "|]"})  # a bar ending here may complete a section pickup
SECTION_START = frozenset({"|:", ":|", "||", "|]"})  # the bar after this opens a section
SPLIT_SIGNS = frozenset({"|:", ":|", "||", "|]"})  # a bar may be split across these
_ONE = Fraction(1)
VALID_STATUSES = frozenset({"full", "anacrusis", "final", "split", "pickup", "ending"})


@dataclass(frozen=True)
class Bar:
    """One bar: what its notes add up to, what the meter asks, and the verdict.

    ``before`` and ``after`` are the bar lines and ending tokens between this bar and its
    neighbours (several when empty bars such as ``:| |:`` lie between).
    """

    duration: Fraction
    length: Fraction | None  # the meter's bar length in whole notes; None without a meter
    before: frozenset[str]
    after: frozenset[str]
    status: str = "unchecked"  # full anacrusis final split pickup ending short over unmetered

    @property
    def valid(self) -> bool:
        return self.status in VALID_STATUSES

    @property
    def checked(self) -> bool:
        return self.length is not None


@dataclass(frozen=True)
class BarReport:
    """The bars of one tune with a verdict on each (see ``bar_report``)."""

    bars: tuple[Bar, ...]

    @property
    def checked(self) -> int:
        return sum(b.checked for b in self.bars)

    @property
    def valid(self) -> int:
        return sum(b.checked and b.valid for b in self.bars)

    @property
    def full(self) -> int:
        return sum(b.status == "full" for b in self.bars)

    @property
    def invalid(self) -> list[int]:
        """Indices of the bars that break the meter."""
        return [i for i, b in enumerate(self.bars) if b.checked and not b.valid]

    @property
    def clean(self) -> bool:
        """Every checked bar is valid (a tune with no metered bar is not counted as clean)."""
        return self.checked > 0 and not self.invalid

    def statuses(self) -> Counter[str]:
        return Counter(b.status for b in self.bars)


@dataclass
class _BarBuilder:
    """The bar being read, and the bar lines read since the last bar that had notes."""

    duration: Fraction = Fraction(0)
    length: Fraction | None = None
    events: int = 0
    before: set[str] = field(default_factory=set)


class _BarWalker:
    """Reads a token list once, adding element durations into bars (whole notes, exact).

    Durations are ``rhythm``'s, as the sampler's grammar and the note interpreter read them;
    the walker is lenient where they are strict, so that any token list gets its bars.
    """

    def __init__(self) -> None:
        self.rhythm = Rhythm()
        self.in_chord = False
        self.bar = _BarBuilder()
        self.raw: list[tuple[Fraction, Fraction | None, set[str], set[str]]] = []

    def walk(self, tokens: Sequence[str]) -> list[tuple[Fraction, Fraction | None, set, set]]:
        for token in tokens:
            self.step(token)
        self.commit()
        if self.bar.events:
            self.raw.append((self.bar.duration, self.bar.length, self.bar.before, set()))
        return self.raw

    def step(self, token: str) -> None:
        t = info(token)
        kind = t.kind
        if kind == "duration":
            if not self.in_chord:
                self.commit(t.value)
            return
        if not self.in_chord:
            self.commit()
        if kind in ("note", "rest") and not self.in_chord:
            self.start_event()
        elif kind == "chord_start":
            self.start_event()
            self.in_chord = True
        elif kind == "chord_end":
            self.in_chord = False
        elif kind == "broken":
            self.rhythm, extra, _ = self.rhythm.broken(*t.factors)
            self.bar.duration += extra
        elif kind == "tuplet":
            self.rhythm = self.rhythm.tuplet(*t.tuplet)
        elif kind in ("bar", "ending"):
            self.close_bar(token)
        elif kind == "meter":
            self.rhythm = self.rhythm.with_meter(t.meter)
            if not self.bar.events:
                self.bar.length = t.value
        elif kind == "unit":
            self.rhythm = self.rhythm.with_unit(t.value)

    def start_event(self) -> None:
        self.rhythm = self.rhythm.start()
        if not self.bar.events:
            meter = self.rhythm.meter
            self.bar.length = Fraction(*meter) if meter else None
        self.bar.events += 1

    def commit(self, multiplier: Fraction = _ONE) -> None:
        """The pending element's length joins the bar once nothing more can change it."""
        if self.rhythm.pending:
            self.rhythm, done = self.rhythm.commit(multiplier)
            self.bar.duration += done.length

    def close_bar(self, token: str) -> None:
        self.rhythm = self.rhythm.bar()
        if self.bar.events:
            boundary: set[str] = set()
            self.raw.append((self.bar.duration, self.bar.length, self.bar.before, boundary))
            self.bar = _BarBuilder(before=boundary)
        self.bar.before.add(token)


def bar_report(tokens: Sequence[str]) -> BarReport:
    """Split a tune into bars and judge each one against its meter.

    A full bar is valid and an over-full bar never is. A short bar is valid when it is the
    first (anacrusis) or last bar; when it and a neighbour across a repeat or section sign or
    an ending add up to one bar (a bar split across ``:| |:``); when it closes a section whose
    opening pickup completes it, or is such a pickup; or when it touches an ending (``[1``,
    ``[2``), whose bars real tunes write short. Bars without notes (``|: :|`` alone) are
    skipped, and their bar lines join the neighbours' boundaries.
    """
    raw = _BarWalker().walk(tokens)
    bars = [Bar(d, length, frozenset(b), frozenset(a)) for d, length, b, a in raw]
    return BarReport(tuple(_with_status(bars, i) for i in range(len(bars))))


def _with_status(bars: list[Bar], i: int) -> Bar:
    return replace(bars[i], status=_status(bars, i))


def _status(bars: list[Bar], i: int) -> str:
    bar = bars[i]
    if bar.length is None:
        return "unmetered"
    if bar.duration == bar.length:
        return "full"
    if bar.duration > bar.length:
        return "over"
    if i == 0:
        return "anacrusis"
    if i == len(bars) - 1:
        return "final"
    if _split(bars, i):
        return "split"
    if _completes_pickup(bars, i):
        return "pickup"
    if _has_ending(bar.before) or _has_ending(bar.after):
        return "ending"
    return "short"


def _has_ending(marks: frozenset[str]) -> bool:
    return any(m.startswith("[") for m in marks)  # marks are bar tokens and endings (``[1``)


def _split_boundary(marks: frozenset[str]) -> bool:
    return bool(marks & SPLIT_SIGNS) or _has_ending(marks)


def _split(bars: list[Bar], i: int) -> bool:
    """The bar and a neighbour across a repeat/section sign or ending make one bar."""
    bar = bars[i]
    if i > 0 and _split_boundary(bar.before) and bars[i - 1].length == bar.length:
        if bars[i - 1].duration + bar.duration == bar.length:
            return True
    if i + 1 < len(bars) and _split_boundary(bar.after) and bars[i + 1].length == bar.length:
        if bars[i + 1].duration + bar.duration == bar.length:
            return True
    return False


def _completes_pickup(bars: list[Bar], i: int) -> bool:
    """A section's closing bar plus its opening pickup (played again on the repeat) = one bar.

    Checked both ways: from the closing bar (ends at ``:|``, ``||`` or ``|]``) back to the
    section's first bar, and from a short bar that opens a section forward to its close.
    """
    bar = bars[i]
    if bar.after & SECTION_END:
        start = i
        while start > 0 and not (bars[start].before & SECTION_START):
            start -= 1
        if start != i and bars[start].duration + bar.duration == bar.length:
            return True
    if bar.before & SECTION_START:
        end = i
        while end < len(bars) - 1 and not (bars[end].after & SECTION_END):
            end += 1
        if end != i and bars[end].duration + bar.duration == bar.length:
            return True
    return False
