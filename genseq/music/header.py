"""The rhythm (``R:``) and tempo (``Q:``) header fields: read, normalised, made tokens, written.

A tune's ``R:`` names the dance it is (reel, jig, hornpipe...). Transcribers spell it many
ways ("Reel", "REEL", "slipjig", "Slip Jig"), so a value is normalised (case, spacing,
hyphens) and looked up in a small closed set of names that covers the folk corpora; a value
outside the set (a one-off "walkaround", a free description) is dropped, never an error.
"Double jig" and "single jig" are the ordinary 6/8 jig in Irish usage, so they read as
``jig``; "highland fling" is a ``fling``.

A tune's ``Q:`` becomes one of a few tempo bands counted in quarter notes per minute. The
band is the model's business and the meter token is beside it, so one unit for every meter
keeps ``Q:3/8=120`` (a jig) and ``Q:1/4=180`` the same band, as they are the same speed. The
bands are the metronome marks nearest the corpus's own settings, about a fifth apart: finer
than a player would notice between two performances, coarse enough that each band has tunes.

This module imports nothing heavy: the CLI imports ``TuneRhythm`` at start-up.
"""

from __future__ import annotations

import math
import re
from enum import StrEnum
from fractions import Fraction


class TuneRhythm(StrEnum):
    """The rhythms a tune's ``R:`` field may name (``--rhythm`` offers these)."""

    reel = "reel"
    jig = "jig"
    slip_jig = "slip-jig"
    hornpipe = "hornpipe"
    strathspey = "strathspey"
    clog = "clog"
    fling = "fling"
    slide = "slide"
    polka = "polka"
    march = "march"
    waltz = "waltz"
    mazurka = "mazurka"
    schottische = "schottische"
    barndance = "barndance"
    set_dance = "set-dance"
    air = "air"


# Spellings (lower case, with no spaces, hyphens or underscores) that name another rhythm.
_ALIASES = {
    "doublejig": TuneRhythm.jig,
    "singlejig": TuneRhythm.jig,
    "highlandfling": TuneRhythm.fling,
    "highland": TuneRhythm.fling,
    "setdance": TuneRhythm.set_dance,
}
_BY_KEY = {r.value.replace("-", ""): r for r in TuneRhythm} | _ALIASES
_SEPARATORS = re.compile(r"[\s_\-.]+")

# A rhythm is a dance in its own meter: a reel asked for must not come out in 6/8, which a
# small model conditioned on R: alone sometimes does. So the meter sampled after a rhythm is
# one that rhythm takes in folk practice, as the folk corpora write it (reels in C| and 2/4,
# jigs 6/8, slip jigs 9/8, strathspeys C, slides 12/8). Airs and set dances take any meter.
# abc2midi swings a hornpipe and refuses one in any other meter than 2/4 or 4/4 ("Hornpipe
# must be in 2/4 or 4/4 time"), so hornpipes keep to those (the corpus also writes C|).
_COMMON, _CUT = (4, 4), (2, 2)
RHYTHM_METERS: dict[str, tuple[tuple[int, int], ...]] = {
    TuneRhythm.reel.value: (_CUT, _COMMON, (2, 4)),
    TuneRhythm.jig.value: ((6, 8),),
    TuneRhythm.slip_jig.value: ((9, 8),),
    TuneRhythm.hornpipe.value: ((2, 4), _COMMON),
    TuneRhythm.strathspey.value: (_COMMON, _CUT),
    TuneRhythm.clog.value: (_CUT, _COMMON, (2, 4)),
    TuneRhythm.fling.value: (_CUT, _COMMON, (2, 4)),
    TuneRhythm.slide.value: ((12, 8), (6, 8)),
    TuneRhythm.polka.value: ((2, 4),),
    TuneRhythm.march.value: ((2, 4), _COMMON, _CUT, (6, 8)),
    TuneRhythm.waltz.value: ((3, 4),),
    TuneRhythm.mazurka.value: ((3, 4),),
    TuneRhythm.schottische.value: (_COMMON, (2, 4), _CUT),
    TuneRhythm.barndance.value: (_COMMON, _CUT),
}
# abc2midi also swings a hornpipe: a note of this length (by meter) that starts off the beat
# of that length is paired with the note before it as if written ``>``, so an explicit broken
# rhythm after such a note meets a note it has already lengthened ("Cannot apply broken
# rhythm"); a hornpipe's broken rhythms start on the beat.
SWUNG_NOTE = {(4, 4): Fraction(1, 8), (2, 4): Fraction(1, 16)}

# The tempo a tune of each rhythm is played at when it names none (quarter notes a minute):
# a moderate session pace, the beat a dancer counts (a reel's half note at 90, a jig's dotted
# quarter at 100), so that a sampled reel does not play at the slow 120 of a tune with no
# rhythm. Airs are slow; set dances vary too much to name one.
RHYTHM_TEMPI: dict[str, float] = {
    TuneRhythm.reel.value: 180,  # half note 90
    TuneRhythm.jig.value: 150,  # dotted quarter 100
    TuneRhythm.slip_jig.value: 165,  # dotted quarter 110
    TuneRhythm.hornpipe.value: 150,
    TuneRhythm.strathspey.value: 128,
    TuneRhythm.clog.value: 150,
    TuneRhythm.fling.value: 130,
    TuneRhythm.slide.value: 180,  # dotted quarter 120
    TuneRhythm.polka.value: 132,
    TuneRhythm.march.value: 112,
    TuneRhythm.waltz.value: 144,
    TuneRhythm.mazurka.value: 132,
    TuneRhythm.schottische.value: 120,
    TuneRhythm.barndance.value: 144,
    TuneRhythm.air.value: 80,
}

RHYTHM_PREFIX = "R:"
TEMPO_PREFIX = "Q:"
# Band centres in quarter notes per minute; a tempo joins the nearest on a log scale.
TEMPO_BANDS = (60, 80, 100, 120, 144, 180, 208, 240)
DEFAULT_TEMPO = 120.0  # quarter notes per minute, for a tune with no tempo of its own
TEMPO_RANGE = (20, 600)  # quarter notes per minute; outside it a Q: field is damage: dropped
_QUOTED = re.compile(r'"[^"]*"')
_BEAT = re.compile(r"(\d{1,3})/(\d{1,3})")
_OLD_BEAT = re.compile(r"\s*[A-Ga-g]\s*(\d{0,3})\s*")  # Q:C=120, Q:C2=120: unit-note multiples
_NUMBER = re.compile(r"\s*(\d{1,4}(?:\.\d+)?)\s*")


def rhythm_meter_clash(rhythm: str, meter: tuple[int, int]) -> str | None:
    """Why ``meter`` does not suit ``rhythm`` (the grammar would refuse it), or None."""
    meters = RHYTHM_METERS.get(rhythm)
    if meters is None or meter in meters:
        return None
    named = ", ".join(f"{n}/{d}" for n, d in meters)
    return f"a {rhythm_field(rhythm)} is in {named}, not {meter[0]}/{meter[1]}"


def normalise_rhythm(value: str) -> TuneRhythm | None:
    """An ``R:`` field value as one of ``TuneRhythm``, or None when it names none of them."""
    key = _SEPARATORS.sub("", value.split("%")[0]).lower()
    return _BY_KEY.get(key)


def rhythm_token(rhythm: TuneRhythm | str) -> str:
    return RHYTHM_PREFIX + TuneRhythm(rhythm).value


def rhythm_field(rhythm: str) -> str:
    """The ``R:`` value written for a rhythm (``slip-jig`` -> ``slip jig``)."""
    return rhythm.replace("-", " ")


def tempo_qpm(value: str, unit: Fraction) -> float | None:
    """A ``Q:`` field value in quarter notes per minute, or None (no tempo, or unreadable).

    ``Q:1/4=120``, ``Q:3/8=120``, ``Q:1/4 3/8=40`` (beats summed), ``Q:"Allegro" 1/4=120``,
    ``Q:1/4 =50``; and the old forms ABC 2.1 still reads: ``Q:120`` counts unit notes
    (``L:``) per minute, and ``Q:C2=120`` multiples of the unit note. Text alone
    (``Q:"Slowly"``) names no tempo.
    """
    text = _QUOTED.sub(" ", value.split("%")[0]).strip()
    beats, eq, number = text.rpartition("=")
    if not eq:
        beats, number = "", text
    m = _NUMBER.fullmatch(number)
    if not m:
        return None
    per_minute = float(m.group(1))
    beat = _beat_length(beats, unit)
    if beat is None:
        return None
    qpm = per_minute * float(beat) * 4
    low, high = TEMPO_RANGE
    return qpm if low <= qpm <= high else None


def _beat_length(text: str, unit: Fraction) -> Fraction | None:
    """The beat of a ``Q:`` field in whole notes: ``1/4 3/8`` summed, ``C2`` unit notes, or
    the unit note when none is written."""
    if not text.strip():
        return unit
    m = _OLD_BEAT.fullmatch(text)
    if m:
        return unit * int(m.group(1) or 1)
    total = Fraction(0)
    for part in text.split():
        b = _BEAT.fullmatch(part)
        if not b or int(b.group(2)) == 0:
            return None
        total += Fraction(int(b.group(1)), int(b.group(2)))
    return total or None


def tempo_band(qpm: float) -> int:
    """The band (its centre, quarter notes per minute) that ``qpm`` falls in."""
    return min(TEMPO_BANDS, key=lambda centre: abs(math.log(qpm / centre)))


def tempo_token(qpm: float) -> str:
    return f"{TEMPO_PREFIX}{tempo_band(qpm)}"


def tempo_field(qpm: float) -> str:
    """The ``Q:`` value for ``qpm`` quarter notes a minute (the unit ``--tempo`` counts in)."""
    return f"1/4={max(1, round(qpm))}"
