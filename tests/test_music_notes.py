"""ABC tokens -> notes (genseq.music.notes) and notes -> MIDI/WAV/PNG (genseq.music.render).

Token lists are written by hand (the lexer is tested on its own), one token per word.
"""

from __future__ import annotations

import shutil
import subprocess
import wave
from fractions import Fraction as F

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genseq.music.abc_lexer import AbcError
from genseq.music.abc_vocab import duration_token, note_token
from genseq.music.notes import Note, TuneNotes, tune_notes


def notes_of(text: str, **kwargs) -> TuneNotes:
    return tune_notes(text.split(), **kwargs)


def pitches(text: str, **kwargs) -> list[int]:
    return [n.pitch for n in notes_of(text, **kwargs).notes]


def durations(text: str) -> list[F]:
    return [n.duration for n in notes_of(text).notes]


# --- pitch ----------------------------------------------------------------------------------


def test_key_signature_and_bar_scoped_accidentals():
    # D major sharpens F and C; ``=f`` holds for the rest of its bar only.
    assert pitches("M:4/4 K:Dmaj f c C | =f f | f") == [78, 73, 61, 77, 77, 78]


def test_accidental_applies_to_its_octave_only():
    assert pitches("M:4/4 K:Cmaj ^c c C |") == [73, 73, 60]


def test_flat_key_modes_and_key_change():
    assert pitches("M:4/4 K:Fmaj B | K:Ddor B c | K:Ador f") == [70, 71, 72, 78]


def test_octave_marks():
    assert pitches("M:4/4 K:Cmaj C, C c c' |") == [48, 60, 72, 84]


def test_first_meter_and_key_are_reported():
    tune = notes_of("M:6/8 K:Edor A | M:3/4 K:Gmaj B |")
    assert tune.meter == (6, 8)
    assert tune.key == ("E", "dor")


# --- time -----------------------------------------------------------------------------------


def test_default_unit_and_multipliers():
    tune = notes_of("M:4/4 K:Gmaj G 2 A B | c 2 B A | G 4 |]")
    assert [n.duration for n in tune.notes[:3]] == [F(1, 4), F(1, 8), F(1, 8)]
    assert tune.notes[-1] == Note(67, F(1), F(1, 2))
    assert tune.length == F(3, 2)
    assert tune.bar_lines == (F(1, 2), F(1))


def test_unit_length_field_and_fractional_multipliers():
    expected = [F(1, 4), F(1, 2), F(1, 8), F(3, 8)]
    assert durations("M:4/4 L:1/4 K:Cmaj A A 2 A /2 A 3/2 |") == expected


def test_rests_advance_time():
    tune = notes_of("M:4/4 K:Cmaj z 2 A z B |")
    assert [n.start for n in tune.notes] == [F(1, 4), F(1, 2)]
    assert tune.length == F(5, 8)


def test_chord_sounds_together_for_the_duration_after_it():
    tune = notes_of("M:4/4 K:Cmaj [ C E G ] 2 c |")
    assert [(n.pitch, n.start, n.duration) for n in tune.notes] == [
        (60, 0, F(1, 4)),
        (64, 0, F(1, 4)),
        (67, 0, F(1, 4)),
        (72, F(1, 4), F(1, 8)),
    ]


def test_ties_merge_notes_of_the_same_pitch_across_bars():
    tune = notes_of("M:4/4 K:Cmaj A 2 - | A B - B |")
    assert [(n.pitch, n.start, n.duration) for n in tune.notes] == [
        (69, 0, F(3, 8)),
        (71, F(3, 8), F(1, 4)),
    ]


def test_tied_chord_keeps_only_the_shared_pitch():
    tune = notes_of("M:4/4 K:Cmaj [ A c ] - [ A e ] 2 |")
    assert [(n.pitch, n.start, n.duration) for n in tune.notes] == [
        (69, 0, F(3, 8)),
        (72, 0, F(1, 8)),
        (76, F(1, 8), F(1, 4)),
    ]


def test_tie_to_a_different_pitch_does_not_merge():
    assert durations("M:4/4 K:Cmaj A - B |") == [F(1, 8), F(1, 8)]


@pytest.mark.parametrize(
    ("broken", "first", "second"),
    [(">", F(3, 16), F(1, 16)), ("<", F(1, 16), F(3, 16)), (">>", F(7, 32), F(1, 32))],
)
def test_broken_rhythm(broken, first, second):
    tune = notes_of(f"M:4/4 K:Cmaj A {broken} B c |")
    assert [n.duration for n in tune.notes] == [first, second, F(1, 8)]
    assert tune.length == F(3, 8)


def test_broken_rhythm_after_a_duration():
    assert durations("M:4/4 K:Cmaj A 2 > B 2 |") == [F(3, 8), F(1, 8)]


def test_triplet_takes_the_time_of_two():
    tune = notes_of("M:4/4 K:Cmaj (3 A B c d |")
    assert [n.duration for n in tune.notes] == [F(1, 12)] * 3 + [F(1, 8)]
    assert tune.notes[-1].start == F(1, 4)


def test_tuplet_with_explicit_q_and_r_counts_chords_and_rests():
    # (3:2:2: only the next two events are scaled; a chord is one event.
    tune = notes_of("M:4/4 K:Cmaj (3:2:2 [ A c ] z B |")
    assert [n.duration for n in tune.notes] == [F(1, 12), F(1, 12), F(1, 8)]
    assert tune.length == F(1, 12) * 2 + F(1, 8)


def test_duplet_in_compound_meter():
    # In 6/8 two notes take the time of three.
    tune = notes_of("M:6/8 K:Cmaj (2 A B c |")
    assert [n.duration for n in tune.notes] == [F(3, 16), F(3, 16), F(1, 8)]


def test_ignored_tokens_make_no_sound():
    assert pitches('M:4/4 K:Cmaj "Am" !trill! A {g} B |') == [69, 71]


def test_final_eos_is_accepted():
    assert pitches("M:4/4 K:Cmaj A B |] <eos>") == [69, 71]


# --- repeats --------------------------------------------------------------------------------


def test_simple_repeat_plays_twice():
    tune = notes_of("M:4/4 K:Cmaj |: A B :|")
    assert [n.pitch for n in tune.notes] == [69, 71, 69, 71]
    assert [n.start for n in tune.notes] == [0, F(1, 8), F(1, 4), F(3, 8)]
    assert tune.length == F(1, 2)


def test_repeat_without_start_goes_back_to_the_beginning():
    assert pitches("M:4/4 K:Cmaj A | B :| c |]") == [69, 71, 69, 71, 72]


def test_first_and_second_endings():
    assert pitches("M:4/4 K:Cmaj |: A | B | [1 c :| [2 d ||") == [69, 71, 72, 69, 71, 74]


def test_section_end_limits_a_repeat_with_no_start():
    assert pitches("M:4/4 K:Cmaj A | B || c | d :|") == [69, 71, 72, 74, 72, 74]


def test_taken_repeat_starts_the_next_section():
    assert pitches("M:4/4 K:Cmaj A :| B :|") == [69, 69, 71, 71]


def test_two_repeated_sections_with_endings():
    text = "M:4/4 K:Cmaj |: A | [1 B :| [2 c || |: d | [1 e :| [2 f |]"
    assert pitches(text) == [69, 71, 69, 72, 74, 76, 74, 77]


def test_third_ending():
    assert pitches("M:4/4 K:Cmaj |: A | [1 B :| [2 c :| [3 d |]") == [69, 71, 69, 72, 69, 74]


def test_missing_second_ending_resumes_after_the_repeat():
    assert pitches("M:4/4 K:Cmaj |: A | [1 B :| c |]") == [69, 71, 69, 72]


def test_accidentals_are_read_as_written_when_repeated():
    assert pitches("M:4/4 K:Cmaj |: ^F F :|") == [66, 66, 66, 66]


def test_expand_repeats_false_plays_straight_through():
    text = "M:4/4 K:Cmaj |: A | B | [1 c :| [2 d ||"
    assert pitches(text, expand_repeats=False) == [69, 71, 72, 74]
    assert notes_of(text, expand_repeats=False).length == F(1, 2)


# --- unreadable -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("M:4/4 K:Cmaj 2 A |", "duration"),
        ("M:4/4 K:Cmaj | 2 |", "duration"),
        ("M:4/4 K:Cmaj A 2 2 |", "duration"),
        ("M:4/4 K:Cmaj [ A 2 ] |", "duration"),
        ("M:4/4 K:Cmaj A ] |", "without"),
        ("M:4/4 K:Cmaj [ A c", "unclosed chord"),
        ("M:4/4 K:Cmaj [ ] |", "empty chord"),
        ("M:4/4 K:Cmaj [ A | c ] |", "inside a chord"),
        ("M:4/4 K:Cmaj [ A [ c ] ] |", "inside a chord"),
        ("M:4/4 K:Cmaj (3 A B", "tuplet"),
        ("M:4/4 K:Cmaj (3 (3 A B c |", "tuplet"),
        ("M:4/4 K:Cmaj A B [1 c :|", "ending"),
        ("[1 M:4/4 K:Cmaj A |", "ending"),
        ("M:4/4 K:Cmaj A B -", "tie at the end"),
        ("M:4/4 K:Cmaj A B - z |", "tie at the end"),
        ("M:4/4 K:Cmaj - A |", "tie"),
        ("M:4/4 K:Cmaj z - A |", "tie"),
        ("M:4/4 K:Cmaj > A |", "broken"),
        ("M:4/4 K:Cmaj A > | B |", "broken"),
        ("M:4/4 K:Cmaj A >", "broken"),
        ("M:4/4 K:Cmaj A <eos> B |", "<eos>"),
        ("M:4/4 K:Cmaj A <unk> |", "<unk>"),
        ("M:4/4 K:Cmaj A Q:1/4=120 |", "unknown"),
        ("M:4/4 K:Cmaj z 2 | z |]", "no notes"),
        ("", "no notes"),
        ("M:4/4 K:Cmaj c'''''''' |", "MIDI range"),
    ],
)
def test_unreadable_sequences_raise_abc_error(text, reason):
    with pytest.raises(AbcError, match=reason.replace("[", r"\[")):
        notes_of(text)


# --- property -------------------------------------------------------------------------------

UNITS = {"": F(1, 8), "L:1/16": F(1, 16), "L:1/4": F(1, 4)}
MULTIPLIERS = [F(1), F(2), F(3), F(4), F(1, 2), F(3, 2), F(1, 4)]
KEYS = ["K:Cmaj", "K:Dmaj", "K:Bbmin", "K:F#dor", "K:Emix"]

events = st.tuples(
    st.booleans(),  # a rest?
    st.sampled_from("CDEFGAB"),
    st.integers(3, 6),  # octave
    st.sampled_from([None, -1, 0, 1]),  # explicit accidental
    st.sampled_from(MULTIPLIERS),
)
tunes = st.tuples(
    st.sampled_from(sorted(UNITS)),
    st.sampled_from(KEYS),
    st.lists(st.lists(events, min_size=1, max_size=6), min_size=1, max_size=6),
).filter(lambda t: any(not rest for bar in t[2] for rest, *_ in bar))


def build(unit: str, key: str, bars) -> tuple[list[str], F, F, int]:
    """Tokens for ``bars``, with the note time, total time and note count they must give."""
    tokens = ["M:4/4", *([unit] if unit else []), key]
    note_time = total = F(0)
    count = 0
    for bar in bars:
        for rest, letter, octave, accidental, multiplier in bar:
            tokens.append("z" if rest else note_token(letter, octave, accidental))
            tokens += [duration_token(multiplier)] if multiplier != 1 else []
            length = UNITS[unit] * multiplier
            total += length
            if not rest:
                note_time += length
                count += 1
        tokens.append("|")
    tokens[-1] = "|]"
    return tokens, note_time, total, count


@settings(max_examples=150, deadline=None)
@given(tunes)
def test_generated_tunes_keep_every_duration(tune):
    tokens, note_time, total, count = build(*tune)
    result = tune_notes(tokens)
    assert sum(n.duration for n in result.notes) == note_time
    assert result.length == total
    assert len(result.notes) == count
    assert result.notes == sorted(result.notes, key=lambda n: (n.start, n.pitch))
    assert all(0 <= n.pitch <= 127 and n.duration > 0 for n in result.notes)
    assert all(n.start + n.duration <= total for n in result.notes)


@settings(max_examples=50, deadline=None)
@given(tunes)
def test_generated_repeated_section_plays_twice(tune):
    tokens, note_time, total, count = build(*tune)
    header = 3 if tune[0] else 2
    repeated = [*tokens[:header], "|:", *tokens[header:-1], ":|"]
    result = tune_notes(repeated)
    assert result.length == 2 * total
    assert len(result.notes) == 2 * count
    assert sum(n.duration for n in result.notes) == 2 * note_time


VOCAB = (
    "M:4/4 M:6/8 M:5/6 L:1/16 K:Cmaj K:Bbmin A c ^f =F _B, z [ ] 2 /2 3/2 - > < >> (3 (3:2:2"
    ' | || |] |: :| [1 [2 [3 "Am" !trill! {g} <eos> <unk> Q:x'
).split()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(VOCAB), max_size=40))
def test_any_token_sequence_reads_or_raises_abc_error(tokens):
    """Unconstrained samples: the interpreter either reads them or says why it cannot."""
    try:
        result = tune_notes(tokens)
    except AbcError:
        return
    assert result.notes and all(n.duration > 0 for n in result.notes)
    assert all(n.start + n.duration <= result.length for n in result.notes)
    assert tune_notes(tokens, expand_repeats=False).notes  # reading does not depend on it


# --- rendering ------------------------------------------------------------------------------

TUNE = "M:6/8 K:Dmix |: A B c d 2 e | [ D F A ] 3 z 3 :| f 3 - f 2 z |]"


def test_midi_round_trips_through_pretty_midi_and_mido(tmp_path):
    import mido
    import pretty_midi

    from genseq.music.render import write_midi

    tune = notes_of(TUNE)
    path = write_midi(tune, tmp_path / "tune.mid", tempo_qpm=90)
    loaded = pretty_midi.PrettyMIDI(str(path))
    assert sum(len(i.notes) for i in loaded.instruments) == len(tune.notes)
    assert sorted(n.pitch for n in loaded.instruments[0].notes) == sorted(
        n.pitch for n in tune.notes
    )
    assert loaded.time_signature_changes[0].numerator == 6
    assert loaded.time_signature_changes[0].denominator == 8
    assert loaded.instruments[0].notes[-1].end == pytest.approx(float((3 + F(5, 8)) * 4 * 60 / 90))
    assert_every_note_closed(mido.MidiFile(str(path)), len(tune.notes))
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic write cleaned up


def assert_every_note_closed(midi, expected_notes: int) -> None:
    ons = 0
    for track in midi.tracks:
        sounding: dict[tuple[int, int], int] = {}
        for msg in track:
            if msg.type == "note_on" and msg.velocity > 0:
                sounding[msg.channel, msg.note] = sounding.get((msg.channel, msg.note), 0) + 1
                ons += 1
            elif msg.type in ("note_off", "note_on"):
                assert sounding.get((msg.channel, msg.note), 0) > 0, f"stray note-off: {msg}"
                sounding[msg.channel, msg.note] -= 1
        assert not any(sounding.values()), f"notes left sounding: {sounding}"
    assert ons == expected_notes


def test_very_short_notes_still_get_a_note_off(tmp_path):
    import mido

    from genseq.music.render import to_pretty_midi, write_midi

    tune = notes_of("M:4/4 L:1/64 K:Cmaj A /64 B /64 c 4 |")
    assert all(n.end > n.start for n in to_pretty_midi(tune).instruments[0].notes)
    path = write_midi(tune, tmp_path / "short.mid", tempo_qpm=240)
    assert_every_note_closed(mido.MidiFile(str(path)), len(tune.notes))


def test_key_signature_in_midi():
    from genseq.music.render import midi_key_number, to_pretty_midi

    assert midi_key_number("D", "mix") == 7  # one sharp: written as G major
    assert midi_key_number("E", "min") == 16
    assert midi_key_number("Bb", "maj") == 10
    assert midi_key_number("C#", "min") == 13
    midi = to_pretty_midi(notes_of("M:3/4 K:Amin A B c |"))
    assert midi.key_signature_changes[0].key_number == 21


def test_wav_is_valid_pcm(tmp_path):
    from genseq.music.render import write_wav

    tune = notes_of(TUNE)
    path = write_wav(tune, tmp_path / "tune.wav", tempo_qpm=120, sample_rate=8000)
    assert path.read_bytes()[:4] == b"RIFF"
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 8000)
        # at least as long as the tune, trailing rest included (pretty_midi adds a 1 s tail)
        assert w.getnframes() >= round(float(tune.length) * 2 * 8000)
        frames = w.readframes(w.getnframes())
    assert any(frames)


def test_piano_roll_png(tmp_path):
    from genseq.music.render import write_piano_roll

    path = write_piano_roll(notes_of(TUNE), tmp_path / "roll" / "tune.png", title="A tune")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_render_a_tune_without_notes(tmp_path):
    from genseq.music.render import write_midi, write_piano_roll, write_wav

    empty = TuneNotes([], None, None, F(1, 2))
    write_midi(empty, tmp_path / "e.mid")
    write_piano_roll(empty, tmp_path / "e.png")
    with wave.open(str(write_wav(empty, tmp_path / "e.wav", sample_rate=8000))) as w:
        assert w.getnframes() == 8000


# ---------------------------------------------------------------------------------------------
# ABC 2.1 ending lists


def _read(body: str) -> list[str]:
    from genseq.music.abc_lexer import LexOptions, tokenize_tune

    return tokenize_tune(f"X:1\nT:t\nM:2/4\nL:1/8\nK:D\n{body}\n", LexOptions())


@pytest.mark.parametrize("body", ["|:d4|[1,2 e4:|[3 f4|]", "|:d4|1,2 e4:|3 f4|]"])
def test_ending_lists_are_read_played_and_written(body):
    from genseq.music.abc_vocab import info
    from genseq.music.abc_writer import tune_text

    tokens = _read(body)
    assert "[1,2" in tokens and info("[1,2").passes == (1, 2)
    pitches = [n.pitch for n in tune_notes(tokens).notes]
    assert pitches == [74, 76, 74, 76, 74, 78]  # d e, d e, d f: three passes
    text = tune_text(tokens)
    assert "|1,2" in text and _read(text.split("K:D\n")[1].strip()) == tokens


def test_ending_list_forms():
    from genseq.music.abc_vocab import ending_passes, info

    assert ending_passes("1-3,5") == (1, 2, 3, 5)
    assert ending_passes("2,1") is None and ending_passes("0") is None
    assert info("[1-3").passes == (1, 2, 3)
    assert info("[3,1").kind == "unknown"


@pytest.mark.skipif(shutil.which("abc2midi") is None, reason="abc2midi (abcmidi) not installed")
def test_abc2midi_plays_ending_lists_as_genseq_does(tmp_path):
    import pretty_midi

    from genseq.music.abc_writer import tune_text

    tokens = _read("|:d4|[1,2 e4:|[3 f4|]")
    (tmp_path / "t.abc").write_text(tune_text(tokens), "utf-8")
    subprocess.run(
        ["abc2midi", str(tmp_path / "t.abc"), "-o", str(tmp_path / "t.mid")], capture_output=True
    )
    theirs = pretty_midi.PrettyMIDI(str(tmp_path / "t.mid"))
    played = sorted((n.start, n.pitch) for i in theirs.instruments for n in i.notes)
    assert [p for _, p in played] == [n.pitch for n in tune_notes(tokens).notes]
