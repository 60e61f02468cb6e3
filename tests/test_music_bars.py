"""genseq/music/bars.py: each bar rule on a small tune, the durations the bar walker adds,
and the check on real Nottingham tunes (skipped when the corpus is absent)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from genseq.music.bars import bar_report
from genseq.music.stats import split_sources

NOTTINGHAM = Path(__file__).resolve().parents[2] / "shared" / "corpora" / "nottingham"


def statuses(text: str) -> list[str]:
    return [bar.status for bar in bar_report(text.split()).bars]


def test_full_bars_are_clean():
    report = bar_report("M:4/4 K:Cmaj C D E F G A B c | c 2 B 2 A 2 G 2 | C 8 |]".split())
    assert [b.status for b in report.bars] == ["full", "full", "full"]
    assert report.clean and report.checked == 3 and report.full == 3
    assert report.bars[0].duration == Fraction(1) == report.bars[0].length


def test_anacrusis_and_complementary_final_bar():
    tune = "M:6/8 K:Gmaj D | G A B c B A | G 2 E D 2 |]"
    assert statuses(tune) == ["anacrusis", "full", "final"]
    assert bar_report(tune.split()).clean


def test_bar_split_across_repeat_signs():
    # The A part ends 3/8 short at :|, the B part opens with the missing 1/8 after |:.
    tune = "M:2/4 K:Dmaj A B c d | e f g a | f e d :| |: A | B c d e | d 4 :|"
    assert statuses(tune) == ["full", "full", "split", "split", "full", "full"]
    assert bar_report(tune.split()).clean


def test_section_pickup_completed_by_the_closing_bar():
    # |: pickup ... closing bar :| : the pickup, played again on the repeat, fills the bar.
    tune = "M:4/4 K:Gmaj C D E F G A B c || |: G | A B c d e f g a | g f e d c B A :| C 8 |]"
    assert statuses(tune) == ["full", "pickup", "full", "pickup", "full"]


def test_bars_touching_endings_may_be_short():
    tune = "M:4/4 K:Gmaj |: G A B c d e f g | [1 a b c' :| [2 a b c' d' || G 8 |]"
    assert statuses(tune) == ["full", "ending", "ending", "full"]


def test_over_full_bar_is_never_valid():
    report = bar_report("M:4/4 K:Cmaj C D E F G A B c d | C 8 |".split())
    assert report.bars[0].status == "over"  # even as the first bar
    assert not report.clean and report.invalid == [0]


def test_short_middle_bar_is_invalid():
    report = bar_report("M:4/4 K:Cmaj C 8 | C D E | C 8 | C 8 |".split())
    assert [b.status for b in report.bars] == ["full", "short", "full", "full"]
    assert report.invalid == [1] and not report.clean and report.valid == 3


def test_durations_of_tuplets_broken_rhythm_chords_and_units():
    tune = (
        "M:2/4 K:Cmaj (3 C D E F 2 | C > D E < F | [ C E G ] 2 C D | (3:2:2 C 2 D z 2 | "
        "C 3/2 D /2 z 2 | C - C 3 | M:3/4 C D E F G A | L:1/4 C D E |]"
    )
    report = bar_report(tune.split())
    assert [b.status for b in report.bars] == ["full"] * 8
    assert report.bars[-1].length == Fraction(3, 4)


def test_chord_symbols_decorations_and_empty_bars_are_ignored():
    tune = '|: M:2/4 K:Cmaj "G" !trill! C {g} D E F :| |: G A B c :|'
    report = bar_report(tune.split())
    assert [b.status for b in report.bars] == ["full", "full"]
    assert report.bars[1].before == frozenset({":|", "|:"})


def test_tokens_without_a_meter_are_not_checked():
    report = bar_report("K:Cmaj C D E | F G A |".split())
    assert report.checked == 0 and not report.clean
    assert {b.status for b in report.bars} == {"unmetered"}


def test_bar_check_on_nottingham():
    """The bar check accepts real tunes: the research note measured 94.5 % of Nottingham
    tunes clean with rules of this kind; below 85 % would mean it flags human music."""
    folder = NOTTINGHAM / "ABC_cleaned"
    if not folder.is_dir():
        pytest.skip(f"the Nottingham corpus is not present at {folder}")
    from genseq.music.abc_lexer import AbcError, tokenize_tune

    tunes = split_sources(
        (p.name, p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.abc"))
    )
    reports = []
    for tune in tunes[::10]:  # about 100 tunes from every file
        try:
            reports.append(bar_report(tokenize_tune(tune.raw.text)))
        except AbcError:
            continue
    assert len(reports) >= 95
    clean = sum(r.clean for r in reports) / len(reports)
    assert clean > 0.85, clean
