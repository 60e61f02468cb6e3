"""MIDI of sampled tunes on the bar grid: a pickup at the end of bar 1, repeats on the beat,
the tempo in ``Q:`` and the file, the track named after the tune, the instrument chosen."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from genseq.music.abc_writer import tune_text
from genseq.music.notes import tune_notes
from genseq.music.render import on_bar_grid, whole_note_seconds, write_midi, write_wav

SHIPPED = Path(__file__).resolve().parents[1] / "checkpoints" / "folk-tunes"


def read(path: Path):
    import pretty_midi

    return pretty_midi.PrettyMIDI(str(path))


def test_a_pickup_ends_the_first_bar(tmp_path):
    tune = tune_notes("M:6/8 K:Dmaj A | d 3 f 3 | a 6 :|".split())
    midi = read(write_midi(tune, tmp_path / "t.mid", tempo_qpm=120, program=40, title="T"))
    bar_seconds = 1.5  # 6/8 at 120 quarters a minute
    starts = [round(n.start, 6) for n in midi.instruments[0].notes]
    assert starts[0] == pytest.approx(bar_seconds * 5 / 6)  # the pickup: the bar's last eighth
    assert starts[1] == pytest.approx(bar_seconds)  # the first downbeat: bar 2
    assert midi.instruments[0].program == 40 and midi.instruments[0].name == "T"
    assert list(midi.get_tempo_changes()[1]) == [120]


def test_a_tune_without_a_pickup_starts_at_zero(tmp_path):
    tune = tune_notes("M:2/4 K:Dmaj d 2 f 2 | a 4 |]".split())
    assert on_bar_grid(tune) is tune
    midi = read(write_midi(tune, tmp_path / "t.mid"))
    assert midi.instruments[0].notes[0].start == 0


def test_a_tune_without_a_meter_is_left_as_it_is():
    tune = tune_notes("K:Dmaj A | d 2 f |]".split())
    assert tune.meter is None and on_bar_grid(tune) is tune


# Tunes whose every pitch sits at one place in the bar (C on the downbeat, D an eighth later:
# ``POSITIONS``, in units of L), so where a note lands in the MIDI bar can be checked
# against where it was written, replayed pickups, endings and triplets included. Closing bars
# complete the pickup, as the grammar writes them.
POSITIONS = {"C": 0, "D": 1, "E": 2, "F": 3, "G": 4, "A": 5, "B": 6, "c": 7}
POSITIONS |= {"d": 0, "e": Fraction(2, 3), "f": Fraction(4, 3)}  # a triplet of eighths
PITCHES = {"C": 60, "D": 62, "E": 64, "F": 65, "G": 67, "A": 69, "B": 71, "c": 72}
PITCHES |= {"d": 74, "e": 76, "f": 77}
GRID_TUNES = [
    # 6/8, two repeated parts, each with a pickup of an eighth (the grammar gives every part
    # the tune's pickup: the closing bar of one part leaves room for the next one's)
    "M:6/8 K:Cmaj |: A | C D E F G A | C D E F G :| |: A | C 3 F G A | C 2 E F G :|",
    # 2/4 in sixteenths, a repeat with first and second endings
    "M:2/4 L:1/16 K:Cmaj |: B c | C 2 E 2 G A B c | [1 C 2 E 2 G 2 :| [2 C 4 G 2 |]",
    # 4/4, a triplet on the downbeat
    "M:4/4 K:Cmaj |: A B c | (3 d e f E 2 G A B c | C 8 | C D E F G :|",
    # 3/4 without repeats, and a tune without a pickup
    "M:3/4 K:Cmaj G A | C 2 E 2 G A | C 6 | C 2 E 2 |]",
    "M:3/4 K:Cmaj C 2 E 2 G A | C 6 |]",
]


@pytest.mark.parametrize("abc", GRID_TUNES)
def test_every_note_lands_where_it_sits_in_its_abc_bar(tmp_path, abc):
    tune = tune_notes(abc.split())
    unit = Fraction(1, 16) if "L:1/16" in abc else Fraction(1, 8)
    midi = read(write_midi(tune, tmp_path / "t.mid", tempo_qpm=120))
    notes = midi.instruments[0].notes
    assert len(notes) == len(tune.notes)  # repeats are played out
    scale = whole_note_seconds(120)
    bar_seconds = float(Fraction(*tune.meter)) * scale
    by_pitch = {pitch: POSITIONS[letter] for letter, pitch in PITCHES.items()}
    for note in notes:
        bars = (note.start - float(by_pitch[note.pitch] * unit) * scale) / bar_seconds
        assert bars == pytest.approx(round(bars), abs=1e-3), (note, abc)  # within a tick


def test_the_wav_sounds_the_pickup_where_the_midi_plays_it(tmp_path):
    import wave

    import numpy as np

    tune = tune_notes("M:6/8 K:Dmaj A | d 3 f 3 | a 5 |]".split())
    with wave.open(str(write_wav(tune, tmp_path / "t.wav", tempo_qpm=120)), "rb") as f:
        rate = f.getframerate()
        audio = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    first = int(np.flatnonzero(np.abs(audio) > 100)[0])
    assert first / rate == pytest.approx(1.25, abs=0.002)  # 5/8 of a whole note at 120 qpm
    assert len(audio) / rate >= 1.5 + 1.5 + 1.25  # the pickup bar, a bar, the closing bar


def test_tune_text_writes_the_tempo_before_the_key():
    tokens = "M:6/8 K:Dmaj A | d 3 f 3 | a 5 |]".split()
    header = tune_text(tokens, 3, "Jig", tempo=95.6).splitlines()[:6]
    assert header == ["X:3", "T:Jig", "M:6/8", "L:1/8", "Q:1/4=96", "K:D"]
    assert "Q:" not in tune_text(tokens, 3, "Jig")


def test_sampled_tunes_keep_every_downbeat_on_the_grid():
    """Repeats replay the pickup after the closing bar that completes it: every multiple of
    the bar length is a bar line the tune crosses."""
    from genseq.checkpoint import load_checkpoint
    from genseq.music.abc_constraint import PartForm
    from genseq.music.tune_sampling import build_prompt, sample_tunes
    from genseq.sample import SamplingSettings

    ckpt = load_checkpoint(SHIPPED)
    checked = 0
    for meter in ("6/8", "2/4", "3/4"):
        prompt = build_prompt(ckpt, meter=meter, key="D")
        tunes = sample_tunes(
            ckpt, prompt, SamplingSettings(), num_samples=3, seed=11, form=PartForm()
        )
        for t in tunes:
            grid = on_bar_grid(tune_notes(t.tokens))
            bar = Fraction(*grid.meter)
            downbeats = {bar * k for k in range(1, int(grid.length / bar))}
            assert downbeats <= set(grid.bar_lines), t.abc
            checked += grid.bar_lines[0] == bar  # had a pickup
    assert checked  # some tunes had a pickup


def test_sample_writes_tempo_program_and_title(cli, tmp_path):
    out = tmp_path / "midi"
    book = tmp_path / "tunes.abc"
    result = cli(
        *["sample", SHIPPED, "--num-samples", "2", "--seed", "1", "--midi", out, "-o", book],
        *["--program", "73", "--tempo", "96"],
    )
    assert result.exit_code == 0, result.stderr
    assert book.read_text("utf-8").count("Q:1/4=96") == 2
    midi = read(out / "tune_001.mid")
    assert midi.instruments[0].program == 73
    assert midi.instruments[0].name == "genseq tune 1 (seed 1)"
    assert list(midi.get_tempo_changes()[1]) == [96]
    default = cli("sample", SHIPPED, "--num-samples", "1", "--seed", "1", "--midi", tmp_path / "d")
    assert default.exit_code == 0, default.stderr
    assert read(tmp_path / "d" / "tune_001.mid").instruments[0].program == 40
    bad = cli("sample", SHIPPED, "--program", "128", "--midi", tmp_path / "bad")
    assert bad.exit_code == 2 and bad.stderr.count("error:") == 1
    assert not (tmp_path / "bad").exists()
