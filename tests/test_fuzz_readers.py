"""The ABC and MIDI readers under damaged input: mutation fuzzing over real tunes and MIDI files
(``reader_fuzz``; fixed seeds, seconds), random bytes and text through hypothesis, one
regression test for each crash the fuzzers found, and how `music stats` and `eval` report a
file they can read nothing from. benchmarks/fuzz_readers.py runs the same fuzzers for minutes.
"""

from __future__ import annotations

import random
import time

import pytest
import reader_fuzz as rf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from testkit import one_error_line

from genseq.music.abc_lexer import AbcError, tokenize_tune
from genseq.music.midi_io import MidiError, read_midi, select_notes
from genseq.music.note_sources import MAX_QUARTERS, melody_notes
from genseq.tokenization import SkipDocument, new_tokenizer

HEADER = "X:1\nT:Fuzz\nM:4/4\nL:1/8\nK:D\n"


@pytest.fixture(scope="module")
def folk() -> list[str]:
    return rf.folk_tunes()


@pytest.fixture(scope="module")
def readers(tmp_path_factory) -> rf.Readers:
    return rf.Readers(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def midi_seeds(folk) -> list[bytes]:
    return rf.rendered_midi(folk, 40)


def assert_clean(tally: rf.Tally) -> None:
    shown = "\n".join(
        f"{f.kind}: {f.message} at {f.where} (input {f.input_id}, {len(f.data)} bytes)"
        for f in tally.failures[:10]
    )
    assert not tally.failures, f"{len(tally.failures)} of {tally.tried} inputs failed:\n{shown}"


# ---------------------------------------------------------------------------------------------
# Mutation fuzzing over real inputs


def test_abc_reader_survives_mutated_folk_tunes(folk, readers):
    tally = rf.fuzz("abc", readers.abc, lambda rng: rf.abc_input(folk, rng), "suite", count=100)
    assert_clean(tally)
    assert tally.readable > 20  # the mutations leave many tunes readable: the reader goes deep


def test_midi_reader_survives_damaged_midi_files(midi_seeds, readers):
    make = lambda rng: rf.midi_input(midi_seeds, rng)  # noqa: E731
    tally = rf.fuzz("midi", readers.midi, make, "suite", count=300)
    assert_clean(tally)
    assert tally.readable > 30


def test_readers_survive_mutated_nottingham_files(readers):
    tunes, files = rf.nottingham_tunes(), rf.nottingham_midi(limit=60)
    if not tunes or not files:
        pytest.skip(f"the Nottingham ABC and MIDI files are not present at {rf.SHARED_NOTTINGHAM}")
    assert_clean(rf.fuzz("abc", readers.abc, lambda r: rf.abc_input(tunes, r), "nott", count=30))
    assert_clean(rf.fuzz("midi", readers.midi, lambda r: rf.midi_input(files, r), "nott", 150))


def test_a_failing_input_is_remade_alone_from_its_id(folk):
    """What benchmarks/fuzz_readers.py saves lets anyone replay one input."""
    first = [rf.abc_input(folk, random.Random(f"replay:{i}")) for i in range(5)]
    assert rf.abc_input(folk, random.Random("replay:3")) == first[3]


def test_the_fuzzer_reports_crashes_hangs_memory_and_long_reasons():
    """A fuzzer that cannot see a failure finds none: each kind is caught and named."""

    def crash(data: bytes) -> None:
        return [][1]

    def long_reason(data: bytes) -> None:
        raise AbcError("x" * 500)

    def greedy(data: bytes) -> None:
        bytearray(64 << 30)

    assert rf.check("t", crash, b"", 5.0).kind == "IndexError"
    assert rf.check("t", lambda data: time.sleep(30), b"", 0.2).kind == "timeout"
    assert rf.check("t", long_reason, b"", 5.0).kind == "long reason"
    assert rf.check("t", lambda data: None, b"", 5.0) is None
    tally = rf.fuzz("t", greedy, lambda rng: rng.randbytes(4), "self", count=2)
    assert [f.kind for f in tally.failures] == ["memory", "memory"]
    assert [f.input_id for f in tally.failures] == ["self:0", "self:1"]


@settings(max_examples=150, derandomize=True, deadline=None)
@given(st.binary(max_size=400), st.sampled_from([b"", b"MThd\x00\x00\x00\x06\x00\x01"]))
def test_random_bytes_never_escape_the_midi_reader(readers, data, prefix):
    assert rf.check("midi", readers.midi, prefix + data, 5.0) is None


ABC_TEXT = st.lists(st.sampled_from(rf.ABC_SYMBOLS + list("ABCDEFGabcdefg 0123456789"))).map(
    "".join
)


@settings(
    max_examples=150,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ABC_TEXT)
def test_random_abc_symbols_never_escape_the_abc_reader(readers, body):
    data = (HEADER + body + "\n").encode("utf-8", "surrogatepass")
    assert rf.check("abc", readers.abc, data, 5.0) is None


# ---------------------------------------------------------------------------------------------
# Regressions: one per crash the fuzzers found


def smf(events: bytes, division: int = 96) -> bytes:
    """A one-track MIDI file of raw track ``events`` (delta times included)."""
    track = events + b"\x00\xff\x2f\x00"
    header = b"MThd" + (6).to_bytes(4, "big") + b"\x00\x00\x00\x01" + division.to_bytes(2, "big")
    return header + b"MTrk" + len(track).to_bytes(4, "big") + track


def varlen(n: int) -> bytes:
    """MIDI's variable-length quantity (a delta time)."""
    out = [n & 0x7F]
    while n := n >> 7:
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def held_note(ticks: int) -> bytes:
    return b"\x00\x90\x3c\x40" + varlen(ticks) + b"\x80\x3c\x00"


def test_a_key_signature_mido_cannot_decode_is_an_unreadable_file():
    data = smf(b"\x00\xff\x59\x02\x11\x00" + held_note(96))  # 17 sharps: KeySignatureError
    with pytest.raises(MidiError, match="not a readable MIDI file"):
        read_midi(data)


@pytest.mark.parametrize("division", [0x8000, 0xE250, 0xE728, 0xFFFF])
def test_smpte_time_division_is_refused_not_read_as_negative_ticks(division):
    """Before, 30 frames a second of 80 ticks (0xE250) read as -7600 ticks a quarter note:
    notes at negative steps, so melodies lost notes and performances played backwards."""
    with pytest.raises(MidiError, match="SMPTE time division is not supported"):
        read_midi(smf(held_note(96), division=division))


@pytest.mark.parametrize("level", ["midi-melody", "midi-performance"])
def test_extreme_delta_times_and_tempos_are_skipped_not_encoded(level):
    """Before, the encodings built one event per step (or second) of a 2**28-tick note:
    an OverflowError, or gigabytes."""
    tok = new_tokenizer(level)
    tok.fit(iter([]))
    slowest = b"\x00\xff\x51\x03\xff\xff\xff"  # 16.7 s a quarter note
    for data in (smf(held_note(0x0FFFFFFF), division=1), smf(slowest + held_note(0x0FFFFFFF))):
        with pytest.raises(SkipDocument, match="longer than"):
            tok.encode_training_document(data)


@pytest.mark.parametrize("level", ["midi-melody", "midi-performance"])
@pytest.mark.parametrize("body", ["A99999999", "A z999999999 A", "[CEG]999999999"])
def test_absurd_abc_durations_are_skipped_at_the_midi_levels(level, body):
    tok = new_tokenizer(level)
    tok.fit(iter([]))
    with pytest.raises(SkipDocument, match="longer than"):
        tok.encode_document(HEADER + body + " |]\n")


def test_the_melody_length_limit_is_exact():
    at_limit = smf(held_note(MAX_QUARTERS), division=1)
    assert melody_notes(at_limit, 4, None)[-1].end == 4 * MAX_QUARTERS
    with pytest.raises(MidiError, match="longer than 100,000 quarter notes"):
        melody_notes(smf(held_note(MAX_QUARTERS + 1), division=1), 4, None)


@pytest.mark.parametrize(
    "body",
    [
        "[1-99999999999999 A",  # a list of passes built before it was checked: gigabytes
        "|1-999999999 A",
        "A" + "9" * 5000,  # numbers Python refuses to read (over 4,300 digits): ValueError
        "A3/" + "2" * 5000,
        "A" + "9" * 5000 + "/",
        "(3:" + "9" * 5000 + " ABC",
        "[1" + "0" * 5000 + " A",
        "|" + "1" * 5000 + " A",
        "[M:" + "9" * 5000 + "/4] A",
        "[L:1/" + "9" * 5000 + "] A",
        "| \u00b2 A",  # a digit (superscript two) that no number pattern reads: AttributeError
        "[\u00b2 A",
        "A |\u00b2",
    ],
)
def test_damaged_numbers_are_unreadable_tunes(body):
    with pytest.raises(AbcError) as info:
        tokenize_tune(HEADER + body + "\n")
    assert len(str(info.value)) < 120  # the reason quotes a short stretch of the tune


@pytest.mark.parametrize("header", ["M:" + "9" * 5000 + "/4", "L:1/" + "9" * 5000])
def test_damaged_header_numbers_are_unreadable_tunes(header):
    with pytest.raises(AbcError, match=r"unreadable .{20,80}\.\.\.$"):
        tokenize_tune(f"X:1\n{header}\nM:4/4\nK:C\nABC\n")


def test_decimal_digits_of_other_scripts_still_read_as_numbers():
    """``\\d`` matches them and ``int`` reads them; only digits it cannot read are refused."""
    assert tokenize_tune(HEADER + "A |\u0662 B |]\n")[2:] == ["A", "|", "[\u0662", "B", "|]"]


def test_reasons_quote_at_most_a_short_stretch_of_the_tune():
    long = ["[" + "Ax" * 500 + "]", "A" + ">" * 999, "A+" + "x" * 5000, "[K:" + "x" * 5000 + "]"]
    for body in long:
        with pytest.raises(AbcError) as info:
            tokenize_tune(HEADER + body + "\n")
        assert len(str(info.value)) < 120


def test_a_track_number_in_other_digits_chooses_no_track():
    score = read_midi(smf(held_note(96)))
    with pytest.raises(MidiError, match="no notes in the chosen track"):
        select_notes(score, True, track="\u00b2")


# ---------------------------------------------------------------------------------------------
# What the commands say when they can read nothing


def test_music_stats_refuses_a_set_of_midi_files_it_cannot_read(tmp_path, cli):
    noise = tmp_path / "noise.mid"
    noise.write_bytes(random.Random(0).randbytes(500))
    refused = cli("music", "stats", str(noise))
    assert refused.exit_code == 1
    line = one_error_line(refused.stderr)
    assert "no readable MIDI files or tunes in" in line and "noise.mid: 1 skipped" in line
    assert "(most often: not a readable MIDI file)" in line
    good = tmp_path / "good.mid"
    good.write_bytes(smf(held_note(96) + held_note(96)))
    mixed = cli("music", "stats", str(noise), str(good))
    assert mixed.exit_code == 0, mixed.stderr
    assert "1 / 2 (50.0 %)" in mixed.stdout and "not a readable MIDI file 1" in mixed.stdout
    reference = cli("music", "stats", str(good), "--reference", str(noise))
    assert reference.exit_code == 1
    assert "in the reference" in one_error_line(reference.stderr)
