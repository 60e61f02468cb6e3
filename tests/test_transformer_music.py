"""--arch transformer at the levels test_transformer.py does not train: MIDI melodies and
performances straight from .mid files (constrained samples, drawn as one batch, read back as
valid MIDI), word and BPE text (prompted samples, eval, info), and streamed text. The sampler
and its MIDI constraints are the LSTM's; these tests hold a Transformer to them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from test_music_midi_cli import check_midi_file, corpus  # noqa: F401 (corpus: a fixture)
from testkit import run as run_genseq
from testkit import small

pytestmark = pytest.mark.slow  # subprocesses and tiny training runs

MODEL = [
    *["--arch", "transformer", "--layers", "2", "--heads", "2", "--hidden-size", "16"],
    *["--context", "16", "--batch-size", "8", "--device", "cpu", "--seed", "3"],
]


def run(*args) -> subprocess.CompletedProcess:
    return run_genseq(*args, text=True, timeout=300)


def rows_of(result: subprocess.CompletedProcess) -> list[dict]:
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module", params=["midi-melody", "midi-performance"])
def midi_run(request, tmp_path_factory, corpus) -> tuple[str, Path]:  # noqa: F811
    """A tiny Transformer trained from the MIDI files themselves at each MIDI level."""
    out = tmp_path_factory.mktemp(request.param) / "run"
    result = run("train", corpus, "-o", out, "--level", request.param, *MODEL, "--max-steps", "20")
    assert result.returncode == 0, result.stderr
    assert "2x16 Transformer, 2 heads, context 16" in result.stderr
    return request.param, out


def test_constrained_samples_from_a_transformer_are_valid_midi(midi_run, tmp_path):
    """Three samples as one batch, longer than the attention window (the cache slides), each
    a .mid file that pretty_midi and mido read with every note closed; a melody's pitches
    stay in the corpus's range, a performance ends at the length asked for."""
    from genseq.checkpoint import load_checkpoint

    level, trained = midi_run
    length = ["--num-steps", "48"] if level == "midi-melody" else ["--seconds", "2"]
    out = tmp_path / "mid"
    result = run(
        "sample", trained, *length, "--num-samples", "3", "--seed", "5", "-o", out, "--json"
    )
    rows = rows_of(result)
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert all(r["constrained"] and r["primer_events"] == 0 for r in rows)
    assert len({r["text"] for r in rows}) == 3
    files = sorted(out.glob("*.mid"))
    assert [r["midi"] for r in rows] == [str(f) for f in files] and len(files) == 3
    if level == "midi-melody":
        assert all(r["new_events"] == 48 for r in rows)
        low, high = load_checkpoint(trained).tokenizer.pitch_range
        assert all(check_midi_file(f, low, high) > 0 for f in files)
    else:
        import pretty_midi

        assert all(r["new_events"] > 16 for r in rows)  # past the window of 16
        assert all(check_midi_file(f) > 0 for f in files)
        assert all(pretty_midi.PrettyMIDI(str(f)).get_end_time() <= 2.0 for f in files)


def test_a_transformer_continues_a_midi_primer_and_evaluates_per_note(midi_run, corpus, tmp_path):  # noqa: F811
    level, trained = midi_run
    out = tmp_path / "mid"
    primed = run(
        *["sample", trained, "--primer-midi", corpus / "t00.mid", "--num-steps", "24"],
        *["--seed", "1", "-o", out, "--json"],
    )
    (row,) = rows_of(primed)
    assert row["primer_events"] > 0 and row["events"] > row["primer_events"]
    assert check_midi_file(out / "sample_001.mid") >= 1
    evaluated = rows_of(run("eval", trained, corpus / "t00.mid", "--json"))
    notes = 32 if level == "midi-melody" else 32 + 3 * 11  # t00: its tune, and 11 chords of 3
    assert evaluated[-1]["notes"] == notes and 0 < evaluated[-1]["nats_per_note"] < 50


@pytest.mark.parametrize("level", ["word", "bpe"])
def test_a_transformer_trains_samples_evaluates_and_resumes_at_word_and_bpe_level(
    level, tmp_path, words_file
):
    out = tmp_path / "run"
    extra = ["--vocab-size", "80"] if level == "bpe" else []
    trained = run(
        *["train", words_file, "-o", out, "--level", level, *extra, *MODEL],
        *["--max-steps", "6", "--json"],
    )
    assert rows_of(trained)[-1]["step"] == 6
    sampled = rows_of(
        run(
            "sample",
            out,
            "-p",
            "the night",
            "-n",
            "30",
            "--num-samples",
            "2",
            "--seed",
            "4",
            "--json",
        )
    )
    assert [r["index"] for r in sampled] == [0, 1]
    assert all(r["prompt"] == "the night" for r in sampled)
    assert all(r["tokens"] == 30 or r["finish_reason"] != "length" for r in sampled)
    info = run("info", out)
    assert info.returncode == 0, info.stderr
    assert "2x16 Transformer, 2 heads, context 16" in info.stdout
    assert f"{level} level" in info.stdout
    evaluated = rows_of(run("eval", out, words_file, "--json"))
    assert evaluated[-1]["tokens"] > 0 and evaluated[-1]["loss"] > 0
    resumed = run("train", words_file, "-o", out, "--resume", "--max-steps", "8", "--json")
    assert json.loads(resumed.stdout)["step"] == 8, resumed.stderr


def test_one_transformer_sample_streams_the_text_a_json_run_returns(tmp_path, tiny_data):
    """A single text sample is written as it is drawn; the pieces a Transformer streams make
    the text that the same seed gives in one piece."""
    from genseq.checkpoint import load_checkpoint
    from genseq.data import open_data
    from genseq.generate import generate
    from genseq.train import Trainer

    out = tmp_path / "run"
    settings = {"arch": "transformer", "embed_size": None, "heads": 2, "context": 12}
    Trainer(small(**settings, num_layers=2, max_steps=4), open_data(tiny_data), out).run()
    ckpt = load_checkpoint(out)
    pieces: list[str] = []
    (streamed,) = generate(
        ckpt, "the", max_new_tokens=40, seed=9, on_text=lambda i, p: pieces.append(p)
    )
    (whole,) = generate(ckpt, "the", max_new_tokens=40, seed=9)
    assert len(pieces) > 1 and "".join(pieces) == streamed.text == whole.text
    printed = run("sample", out, "-p", "the", "-n", "40", "--seed", "9", "--no-echo")
    (row,) = rows_of(run("sample", out, "-p", "the", "-n", "40", "--seed", "9", "--json"))
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == row["text"] + "\n"
