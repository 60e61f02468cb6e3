"""`evaluate_files`, the library behind `genseq eval`: a file's loss is the loss of the token
stream tokenize would make of it, after ``<eos>``; counts and totals are those of the rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from genseq.errors import GenseqError
from genseq.evaluate import EvalResult, FileScore, evaluate_files, evaluate_tokens, total
from genseq.model import ModelConfig, RecurrentLM
from genseq.tokenization import new_tokenizer

TUNE_1 = "X:1\nT:One\nM:4/4\nL:1/8\nK:G\nGABc d2B2 | c2A2 G4 |]\n"
TUNE_2 = "X:2\nT:Two\nM:3/4\nL:1/8\nK:D\nd2 f2 a2 | g4 f2 |]\n"
BROKEN = "X:3\nT:No key\nM:4/4\nA B c d |\n"
BOOK = f"% a header that is no tune\n{TUNE_1}\n{TUNE_2}\n{BROKEN}"


def _model(vocab_size: int) -> RecurrentLM:
    torch.manual_seed(0)
    model = RecurrentLM(ModelConfig(vocab_size=vocab_size, hidden_size=16, embed_size=8))
    return model.eval()


def _by_hand(model: RecurrentLM, ids: list[int]) -> EvalResult:
    return evaluate_tokens(model, np.array(ids, dtype=np.int64))


def test_a_text_file_scores_as_its_token_stream_after_eos(tmp_path):
    text = "the cat sat on the mat\n" * 40 + "é\n"
    path = tmp_path / "cat.txt"
    path.write_text(text, encoding="utf-8")
    tok = new_tokenizer("char")
    tok.fit(["the cat sat on a mat\n"])  # é is unknown
    model = _model(tok.vocab_size)
    (score,) = evaluate_files(model, tok, [str(path)])
    expected = _by_hand(model, [tok.eos_id, *tok.encode(text).tolist()])
    assert score.result.tokens == len(text) == expected.tokens
    assert score.result.loss == pytest.approx(expected.loss, rel=1e-6)
    assert score.characters == len(text) and score.unknown_tokens == 1
    assert score.tunes is None and score.notes is None
    row = score.as_dict()
    assert list(row) == [
        "file",
        "tokens",
        "characters",
        "loss",
        "perplexity",
        "bits_per_character",
        "unknown_tokens",
    ]
    assert row["bits_per_character"] == pytest.approx(expected.nats / len(text) / np.log(2))


def test_tunes_score_each_followed_by_eos_and_unreadable_ones_are_counted(tmp_path):
    path = tmp_path / "book.abc"
    path.write_text(BOOK, encoding="utf-8")
    tok = new_tokenizer("abc")
    tok.fit([TUNE_1, TUNE_2])
    model = _model(tok.vocab_size)
    (score,) = evaluate_files(model, tok, [str(path)])
    eos = tok.eos_id
    ids = [eos, *tok.encode_document(TUNE_1).tolist(), eos, *tok.encode_document(TUNE_2), eos]
    expected = _by_hand(model, ids)
    assert score.result.tokens == len(ids) - 1
    assert score.result.loss == pytest.approx(expected.loss, rel=1e-6)
    assert (score.tunes, score.skipped_tunes) == (2, 1)
    assert score.characters == len(TUNE_1) + len(TUNE_2) + len(BROKEN)
    row = score.as_dict()
    assert row["nats_per_tune"] == pytest.approx(expected.nats / 2, rel=1e-6)
    assert list(row)[-3:] == ["tunes", "skipped_tunes", "nats_per_tune"]


def test_a_text_model_reads_a_tunebook_as_tokenize_does(tmp_path):
    """Tokenize makes each tune of an .abc file a document at every level; eval scores the
    same stream, not the file's text."""
    path = tmp_path / "book.abc"
    path.write_text(BOOK, encoding="utf-8")
    tok = new_tokenizer("char")
    tok.fit([BOOK])
    model = _model(tok.vocab_size)
    (score,) = evaluate_files(model, tok, [str(path)])
    ids = [tok.eos_id]
    for tune in (TUNE_1, TUNE_2, BROKEN):
        ids += [*tok.encode(tune).tolist(), tok.eos_id]
    expected = _by_hand(model, ids)
    assert score.result.tokens == expected.tokens == len(ids) - 1
    assert score.result.loss == pytest.approx(expected.loss, rel=1e-6)
    assert score.tunes is None  # the tune columns belong to levels that read tunes


def test_midi_files_score_per_note(tmp_path):
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=0, name="Tune")
    inst.notes += [pretty_midi.Note(80, 60 + i % 5, 0.25 * i, 0.25 * i + 0.25) for i in range(12)]
    midi.instruments.append(inst)
    path = tmp_path / "tune.mid"
    midi.write(str(path))
    tok = new_tokenizer("midi-melody", pitch_range=(55, 72))
    data = path.read_bytes()
    tok.fit([data])
    model = _model(tok.vocab_size)
    (score,) = evaluate_files(model, tok, [str(path)])
    ids = [tok.eos_id, *tok.encode_document(data).tolist(), tok.eos_id]
    expected = _by_hand(model, ids)
    assert score.result.loss == pytest.approx(expected.loss, rel=1e-6)
    assert score.notes == 12 and score.tunes == 1 and score.characters == len(data)
    assert score.as_dict()["nats_per_note"] == pytest.approx(expected.nats / 12, rel=1e-6)


def test_total_adds_every_count_and_divides_once():
    a = FileScore("a", EvalResult(10.0, 4), 8, 1, tunes=2, skipped_tunes=0, notes=None)
    b = FileScore("b", EvalResult(2.0, 2), 4, 0, tunes=1, skipped_tunes=3, notes=None)
    summed = total([a, b])
    assert summed.file == "TOTAL"
    assert (summed.result.nats, summed.result.tokens) == (12.0, 6)
    assert (summed.characters, summed.unknown_tokens) == (12, 1)
    assert (summed.tunes, summed.skipped_tunes, summed.notes) == (3, 3, None)
    assert summed.as_dict()["nats_per_tune"] == 4.0
    assert summed.as_dict()["loss"] == 2.0


def test_files_with_nothing_to_score_are_refused(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    no_tunes = tmp_path / "notes.abc"
    no_tunes.write_text(BROKEN, encoding="utf-8")
    tok = new_tokenizer("abc")
    tok.fit([TUNE_1])
    model = _model(tok.vocab_size)
    with pytest.raises(GenseqError, match="empty.txt: empty file, nothing to evaluate"):
        evaluate_files(model, tok, [str(empty)])
    with pytest.raises(GenseqError, match="notes.abc: no readable tunes to evaluate"):
        evaluate_files(model, tok, [str(no_tunes)])


@pytest.mark.parametrize("level", ["abc", "midi-melody"])
def test_a_plain_text_file_has_no_tunes_rather_than_being_empty(tmp_path, level):
    plain = tmp_path / "plain.txt"
    plain.write_text("a plain text file\nwith no X: line\n", encoding="utf-8")
    tok = new_tokenizer(level)
    tok.fit([TUNE_1])
    model = _model(tok.vocab_size)
    with pytest.raises(GenseqError, match=r"plain.txt: no tunes \(X: lines\) found, nothing to"):
        evaluate_files(model, tok, [str(plain)])


def test_files_are_scored_one_by_one_in_order(tmp_path):
    paths = []
    for name, text in (("b.txt", "cccc\n"), ("a.txt", "ab\n" * 5)):
        paths.append(tmp_path / name)
        paths[-1].write_text(text, encoding="utf-8")
    tok = new_tokenizer("char")
    tok.fit(["ab\n"])
    model = _model(tok.vocab_size)
    scores = evaluate_files(model, tok, [str(p) for p in paths])
    assert [Path(s.file).name for s in scores] == ["b.txt", "a.txt"]
    assert [s.result.tokens for s in scores] == [5, 15]
    assert scores[0].unknown_tokens == 4
