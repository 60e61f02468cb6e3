"""How long each written element of an ABC tune lasts: ABC's duration arithmetic in one place.

An element (a note, rest or chord) lasts unit (``L:``, default 1/8) x its multiplier (the
duration token after it, 1 if none) x the factor of any tuplet it is in (``(p:q:r``: q/p for
the next r elements) x its side of a broken rhythm (``A>B``: 3/2 and 1/2). The grammar
constraint, the note interpreter and the bar checker all read durations through ``Rhythm``,
so the sampler and the checks that judge it cannot disagree on a bar's length.

``Rhythm`` also knows the rules the reference programs (abc2midi, abcm2ps) hold a rhythm to,
and says which one an element breaks: a broken rhythm joins two elements of one written length
after an element that is in no tuplet; a tuplet's elements share one written length; a written
length is one note that staff notation can draw (a power of two with up to three dots).

It is an immutable value: every method returns the new state, so a sampler can keep one per
sample and try a token on a copy.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from fractions import Fraction

from genseq.music.abc_vocab import DEFAULT_UNIT, default_tuplet_q

ONE = Fraction(1)
ZERO = Fraction(0)
DOTTED = (Fraction(1), Fraction(3, 2), Fraction(7, 4), Fraction(15, 8))  # up to three dots

UNEQUAL_BROKEN = "broken rhythm between notes of unequal length"
UNEQUAL_TUPLET = "tuplet of notes of unequal length"
UNDRAWABLE = "a length no single note draws"


def drawable(length: Fraction) -> bool:
    """Whether staff notation draws ``length`` (whole notes) as one note: a power of two,
    with up to three dots (abcm2ps refuses ``A5`` or ``A3>B3``: "Note too much dotted")."""
    return any(_power_of_two(length / dotted) for dotted in DOTTED)


def _power_of_two(x: Fraction) -> bool:
    n, d = x.numerator, x.denominator
    return (n == 1 or d == 1) and n & (n - 1) == 0 and d & (d - 1) == 0


@dataclass(frozen=True)
class Committed:
    """An element whose duration is now known."""

    length: Fraction  # how long it sounds, in whole notes
    written: Fraction  # unit x multiplier: its length as notated, before tuplet and broken
    problem: str | None  # the first rule of the module docstring it breaks, if any


@dataclass(frozen=True)
class Rhythm:
    unit: Fraction = DEFAULT_UNIT
    meter: tuple[int, int] | None = None
    # The element being read, whose duration token may still come.
    pending: bool = False
    pending_factor: Fraction = ONE  # its tuplet x broken-rhythm factor
    pending_required: Fraction | None = None  # the multiplier the rules give it
    pending_rule: str | None = None  # ... and which rule
    tuplet_left: int = 0  # elements of the open tuplet not yet committed (a pending one too)
    tuplet_factor: Fraction = ONE
    tuplet_multiplier: Fraction | None = None  # set by the tuplet's first element
    broken_factor: Fraction = ONE  # the next element's side of a broken rhythm
    broken_multiplier: Fraction | None = None  # ... and the multiplier it must have
    last_written: Fraction = ZERO  # the last element's written length (0: none in this bar)
    last_broken_ok: bool = False  # it may open a broken rhythm (no tuplet, no broken factor)

    # -- fields and structure -------------------------------------------------------------------
    def with_unit(self, unit: Fraction) -> Rhythm:
        return replace(self, unit=unit)

    def with_meter(self, meter: tuple[int, int]) -> Rhythm:
        return replace(self, meter=meter)

    def tuplet(self, p: int, q: int | None, r: int) -> Rhythm:
        """``(p:q:r``: the next ``r`` elements take q/p of their length (q by ABC's default
        for the meter when not written)."""
        q = default_tuplet_q(p, self.meter) if q is None else q
        return replace(self, tuplet_left=r, tuplet_factor=Fraction(q, p), tuplet_multiplier=None)

    def bar(self) -> Rhythm:
        """A bar line: no broken rhythm reaches across it."""
        return replace(self, last_written=ZERO, last_broken_ok=False)

    # -- elements -------------------------------------------------------------------------------
    def start(self) -> Rhythm:
        """An element begins (any pending one must be committed first)."""
        in_tuplet = self.tuplet_left > 0
        required, rule = None, None
        if self.broken_multiplier is not None:
            required, rule = self.broken_multiplier, UNEQUAL_BROKEN
        elif in_tuplet and self.tuplet_multiplier is not None:
            required, rule = self.tuplet_multiplier, UNEQUAL_TUPLET
        return replace(
            self,
            pending=True,
            pending_factor=self.broken_factor * (self.tuplet_factor if in_tuplet else ONE),
            pending_required=required,
            pending_rule=rule,
            broken_factor=ONE,
            broken_multiplier=None,
        )

    def length(self, multiplier: Fraction) -> Fraction:
        """How long the pending element lasts with ``multiplier``."""
        return self.unit * multiplier * self.pending_factor

    def problem(self, multiplier: Fraction) -> str | None:
        """The rule the pending element breaks if it ends with ``multiplier`` (None: none)."""
        if self.pending_required is not None and multiplier != self.pending_required:
            return self.pending_rule
        if not drawable(self.unit * multiplier):  # a broken pair's two sides: see ``broken``
            return UNDRAWABLE
        return None

    def owed_after(self, multiplier: Fraction) -> Fraction:
        """Time the open tuplet still owes once the pending element ends with ``multiplier``
        (its other elements take the same)."""
        if self.tuplet_left > 1:
            return (self.tuplet_left - 1) * self.unit * multiplier * self.tuplet_factor
        return ZERO

    def commit(self, multiplier: Fraction = ONE) -> tuple[Rhythm, Committed]:
        """The pending element ends with ``multiplier`` (its duration token, 1 if none)."""
        written = self.unit * multiplier
        done = Committed(self.length(multiplier), written, self.problem(multiplier))
        left = max(self.tuplet_left - 1, 0)
        state = replace(
            self,
            pending=False,
            pending_factor=ONE,
            pending_required=None,
            pending_rule=None,
            last_written=written,
            last_broken_ok=self.tuplet_left == 0 and self.pending_factor == 1,
            tuplet_left=left,
            tuplet_factor=self.tuplet_factor if left else ONE,
            tuplet_multiplier=multiplier if left else None,
        )
        return state, done

    def broken(self, first: Fraction, second: Fraction) -> tuple[Rhythm, Fraction, str | None]:
        """``>`` and the like after the last element: the time it adds to that element (its
        side is ``first``), the new state, and the rule broken (None if none)."""
        problem = None
        if not self.last_broken_ok:
            problem = UNEQUAL_BROKEN
        elif not (drawable(self.last_written * first) and drawable(self.last_written * second)):
            problem = UNDRAWABLE
        state = replace(
            self,
            broken_factor=second,
            broken_multiplier=self.last_written / self.unit if self.last_written else None,
            last_broken_ok=False,
        )
        return state, self.last_written * (first - 1), problem

    def owed(self, multiplier: Fraction) -> Fraction:
        """Time an open tuplet or broken rhythm still owes after the committed elements, if
        its elements take ``multiplier``."""
        if self.tuplet_left:
            return self.tuplet_left * self.unit * multiplier * self.tuplet_factor
        if self.broken_multiplier is not None:
            return self.unit * self.broken_multiplier * self.broken_factor
        return ZERO

    @property
    def open(self) -> bool:
        """A tuplet or broken rhythm waits for elements."""
        return self.tuplet_left > 0 or self.broken_factor != 1
