"""genseq/music/stats.py and `genseq music stats`: the report and the command on small ABC
files, alone and against a reference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from genseq.music.stats import compute_stats, sample_indices, split_sources

TUNES = """\
% a small tunebook
X:1
T:Jig One
M:6/8
L:1/8
K:G
D|:GAB cBA|GBd g2f|edc BAG|1 AGF G2D:|2 AGF G3||

X:2
T:Reel Two
M:4/4
L:1/8
K:D
|:A|d2fd AdFA|d2fd e2cA|B2gB A2fA|GBAG FDD:|

X:3
T:Broken
M:4/4
K:D
[DFA
"""


def test_sample_indices_are_deterministic():
    assert sample_indices(5, 10) == [0, 1, 2, 3, 4]
    chosen = sample_indices(1000, 20)
    assert chosen == sample_indices(1000, 20) and len(set(chosen)) == 20
    assert chosen == sorted(chosen) and sample_indices(10, 0) == []


def test_compute_stats_against_a_reference():
    tunes = split_sources([("book.abc", TUNES)])
    stats = compute_stats(tunes, tunes, parse_limit=0).as_dict()
    assert (stats["tunes"], stats["readable"], stats["unreadable"]) == (3, 2, 1)
    assert stats["unreadable_reasons"] == {"unclosed chord": 1}
    assert stats["bars"]["clean_rate"] == 1.0 and stats["bars"]["tunes_checked"] == 2
    assert stats["meters"] == {"6/8": 1, "4/4": 1} and stats["music21"] is None
    assert sum(stats["histograms"]["pitch_range"]["counts"]) == 2
    for d in stats["reference"]["distances"].values():
        assert d["overlap"] == pytest.approx(1.0) and d["kl"] == pytest.approx(0.0, abs=1e-9)
    lengths = [row["tokens"] for row in stats["per_tune"]]
    assert stats["memorisation"]["max"] == max(lengths)  # each tune is in the reference
    assert stats["per_tune"][0]["memorised"]["reference_title"] == "Jig One"
    # Both readable tunes end on their tonic (G, D); their parts run 4 bars, not 8 or 16.
    assert stats["form"]["tonic_endings"] == stats["reference"]["form"]["tonic_endings"] == 1.0
    assert stats["form"]["parts_8_or_16_bars"] == 0.0
    assert stats["bars"]["tunes_within_rules"] == 2 and stats["bars"]["problems"] == {}
    json.dumps(stats, allow_nan=False, default=str)


def test_compute_stats_transposes_both_sets():
    from genseq.music.abc_lexer import LexOptions

    tunes = split_sources([("book.abc", TUNES)])
    stats = compute_stats(tunes, tunes, parse_limit=0, options=LexOptions(transpose="C"))
    assert stats.keys == {"Cmaj": 2}
    assert stats.memorisation["max"] == max(row["tokens"] for row in stats.per_tune)


@pytest.fixture
def tunebook(tmp_path) -> Path:
    path = tmp_path / "tunes.abc"
    path.write_text(TUNES, encoding="utf-8")
    return path


def test_cli_table(cli, tunebook):
    result = cli("music", "stats", tunebook, "--parse-limit", "0")
    assert result.exit_code == 0, result.stderr
    assert "clean tunes" in result.stdout and "2 / 3" in result.stdout
    assert "unclosed chord" in result.stdout
    assert "within abc2midi's and abcm2ps's rules" in result.stdout
    assert "tunes ending on the tonic" in result.stdout and "100.0%" in result.stdout


def test_cli_json_with_reference_and_music21(cli, tunebook):
    args = ["music", "stats", tunebook, "--reference", tunebook, "--json", "--parse-limit", "2"]
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    (line,) = result.stdout.splitlines()  # exactly one strict JSON object
    stats = json.loads(line)
    assert stats["schema"] == 1 and stats["readable"] == 2
    assert stats["music21"]["checked"] == 2
    assert stats["memorisation"]["max"] >= 30
    assert stats["reference"]["distances"]["pitch_class"]["overlap"] == pytest.approx(1.0)


def test_cli_reads_stdin_and_directories(cli, tunebook, tmp_path):
    piped = cli("music", "stats", "-", "--json", "--parse-limit", "0", input=TUNES)
    assert piped.exit_code == 0, piped.stderr
    assert json.loads(piped.stdout)["tunes"] == 3
    (tmp_path / "notes.txt").write_text("not a tune file\n", encoding="utf-8")
    folder = cli("music", "stats", tmp_path, "--json", "--parse-limit", "0")
    assert folder.exit_code == 0, folder.stderr
    assert json.loads(folder.stdout)["tunes"] == 3  # only *.abc files are read


def test_cli_errors(cli, tmp_path):
    empty = tmp_path / "empty.abc"
    empty.write_text("no tunes here\n", encoding="utf-8")
    result = cli("music", "stats", empty)
    assert result.exit_code == 1 and "error: no tunes" in result.stderr
    result = cli("music", "stats", empty, "--transpose", "H")
    assert result.exit_code == 2 and "--transpose" in result.stderr
    result = cli("music", "stats", tmp_path / "missing.abc")
    assert result.exit_code == 1 and "no such file" in result.stderr


SAMPLES = """\
X:1
T:a
R:jig
M:6/8
K:G
GAB cBA|GBd g3|]

X:2
T:b
R:Jig
M:6/8
K:G
GAB cBA|GBd g3|]

X:3
T:c
M:4/4
K:D
d2fd AdFA|d8|]
"""

REFERENCE = TUNES.replace("T:Jig One\n", "T:Jig One\nR:double jig\n").replace(
    "T:Reel Two\n", "T:Reel Two\nR: REEL\n"
)


def test_rhythm_shares_against_the_reference(cli, tmp_path):
    tunes, reference = tmp_path / "tunes.abc", tmp_path / "reference.abc"
    tunes.write_text(SAMPLES, "utf-8")
    reference.write_text(REFERENCE, "utf-8")
    stats = compute_stats(
        split_sources([("t", SAMPLES)]), split_sources([("r", REFERENCE)]), parse_limit=0
    ).as_dict()
    assert stats["rhythms"] == {"jig": 2, "none": 1}
    assert stats["reference"]["rhythms"] == {"jig": 1, "reel": 1}  # the broken tune is unread
    assert [row["rhythm"] for row in stats["per_tune"]] == ["jig", "jig", "none"]
    assert 0 < stats["reference"]["distances"]["rhythm"]["overlap"] < 1
    args = ["music", "stats", tunes, "--reference", reference, "--parse-limit", "0"]
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    text = " ".join(result.stdout.replace("│", " ").split())  # table cells may wrap
    assert (
        "rhythms (R:) jig 66.7% (reference 50.0%), none 33.3% (reference 0.0%), "
        "reel 0.0% (reference 50.0%)"
    ) in text
    assert "rhythm vs reference" in text
