"""MIDI of sampled tunes on the bar grid: a pickup at the end of bar 1, repeats on the beat,
the tempo in ``Q:`` and the file, the track named after the tune, the instrument chosen."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from genseq.music.notes import tune_notes
from genseq.music.render import on_bar_grid, write_midi

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
        prompt = build_prompt(ckpt, "", meter, "D")
        for t in sample_tunes(ckpt, prompt, SamplingSettings(), 6, seed=11, form=PartForm()):
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
