"""ABC's duration arithmetic (``genseq.music.rhythm``) and the rules it shares with the reference
programs: the note interpreter flags what abc2midi and abcm2ps flag."""

from __future__ import annotations

import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from genseq.music.abc_writer import tune_text
from genseq.music.bars import bar_report
from genseq.music.notes import tune_notes
from genseq.music.rhythm import (
    UNDRAWABLE,
    UNEQUAL_BROKEN,
    UNEQUAL_TUPLET,
    Rhythm,
    drawable,
)

F = Fraction


@pytest.mark.parametrize(
    ("length", "expected"),
    [
        (F(1, 8), True),
        (F(3, 16), True),  # dotted
        (F(7, 16), True),  # double-dotted
        (F(15, 32), True),  # triple-dotted
        (F(5, 8), False),  # A5
        (F(9, 16), False),  # A3>B3's first note
        (F(1, 12), False),  # a tuplet's sounding length: written lengths are what is drawn
    ],
)
def test_drawable_lengths(length, expected):
    assert drawable(length) is expected


@given(k=st.integers(-6, 3), dots=st.integers(0, 3), odd=st.sampled_from([5, 9, 11, 13]))
def test_drawable_is_a_dotted_power_of_two(k, dots, odd):
    plain = F(2) ** k
    assert drawable(plain * (2 - F(1, 2**dots)))  # 1, 3/2, 7/4, 15/8 times a power of two
    assert not drawable(plain * odd)


def test_an_element_lasts_unit_times_multiplier_times_its_factors():
    r = Rhythm().start()
    r, done = r.commit(F(2))
    assert done.length == F(1, 4) and done.written == F(1, 4) and done.problem is None
    r = r.tuplet(3, None, 3).start()  # (3: three in the time of two
    assert r.length(F(1)) == F(1, 12)
    r, done = r.commit()
    r, done = r.start().commit(F(2))
    assert done.problem == UNEQUAL_TUPLET
    r, done = r.start().commit()
    assert not r.open


def test_broken_rhythm_moves_time_between_two_equal_notes():
    r, first = Rhythm().start().commit()
    r, extra, problem = r.broken(F(3, 2), F(1, 2))
    assert (extra, problem) == (F(1, 16), None)  # the first note gains a sixteenth
    r = r.start()
    assert r.length(F(1)) == F(1, 16)
    _, second = r.commit(F(2))
    assert second.problem == UNEQUAL_BROKEN  # A>B2
    r, _ = Rhythm().start().commit(F(3))
    assert r.broken(F(3, 2), F(1, 2))[2] == UNDRAWABLE  # A3>B3: 9/16 and 3/16


# ---------------------------------------------------------------------------------------------
# The note interpreter flags what the reference programs flag


BAD = {
    "tie between different pitches": "M:2/4 K:Dmaj d 2 e 2 - | f 4 |]",
    UNEQUAL_BROKEN: "M:2/4 K:Dmaj d > e /2 f 3/2 | d 4 |]",
    UNEQUAL_TUPLET: "M:2/4 K:Dmaj (3 d e 2 f d /2 | d 4 |]",
    UNDRAWABLE: "M:4/4 K:Dmaj d 5 e 3 | d 8 |]",
    "first ending outside a repeat": "M:2/4 K:Dmaj d 4 :| e 4 | [1 f 4 :| [2 g 4 |]",
}


@pytest.mark.parametrize(("problem", "tune"), BAD.items())
def test_the_interpreter_flags_each_rule(problem, tune):
    assert problem in tune_notes(tune.split()).problems


def test_a_clean_tune_has_no_problems():
    tune = "M:6/8 K:Dmaj A | d 2 > e 2 f 2 | (3 a b a d 3 | [1 d 6 :| [2 f 4 e ||".split()
    assert tune_notes(tune).problems == ()
    assert bar_report(tune).bars[1].duration == F(6, 8)


def test_a_tie_across_a_bar_keeps_its_accidental():
    notes = tune_notes("M:2/4 K:Cmaj ^F 4 - | F 4 |]".split()).notes
    assert [(n.pitch, n.duration) for n in notes] == [(66, F(1))]  # one F sharp, two bars


@pytest.mark.skipif(
    not all(map(shutil.which, ("abc2midi", "abcm2ps"))),
    reason="abc2midi and abcm2ps (Debian packages abcmidi, abcm2ps) are not installed",
)
@pytest.mark.parametrize(("problem", "tune"), BAD.items())
def test_the_reference_programs_flag_what_the_interpreter_flags(problem, tune, tmp_path):
    path = tmp_path / "tune.abc"
    path.write_text(tune_text(tune.split(), 1, "t"), "utf-8")
    midi = subprocess.run(
        ["abc2midi", str(path), "-o", str(tmp_path / "t.mid")], capture_output=True, text=True
    )
    score = subprocess.run(
        ["abcm2ps", str(path), "-O", str(tmp_path / "t.ps")], capture_output=True, text=True
    )
    said = midi.stdout + midi.stderr + score.stdout + score.stderr
    assert "rror" in said or "arning" in said, (problem, said)


def test_stats_reports_the_rules(cli, tmp_path):
    book = tmp_path / "book.abc"
    tunes = [BAD[UNEQUAL_BROKEN], "M:2/4 K:Dmaj d 4 | d 4 |]"]
    book.write_text("".join(tune_text(t.split(), i + 1) + "\n" for i, t in enumerate(tunes)))
    result = cli("music", "stats", book, "--json", "--parse-limit", "0")
    assert result.exit_code == 0, result.stderr
    import json

    bars = json.loads(result.stdout)["bars"]
    assert bars["tunes_within_rules"] == 1
    assert bars["problems"] == {UNEQUAL_BROKEN: 1}
    assert Path(book).exists()
