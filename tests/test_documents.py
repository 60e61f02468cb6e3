"""The document reader shared by `tokenize`, `eval` and `music stats`: which units a corpus
holds, how they are named, and that tokenize's token stream is made of exactly these units."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from genseq.background import Background
from genseq.corpus import SourceHashes, resolve_sources
from genseq.data import read_tokens
from genseq.documents import holds_midi, iter_units, read_music, read_tunes
from genseq.errors import GenseqError
from genseq.prepare import TokenizeOptions, tokenize_corpus
from genseq.tokenization import load_tokenizer

TUNE_1 = "X:1\nT:One\nM:4/4\nL:1/8\nK:G\nGABc d2B2 | c2A2 G4 |]\n"
TUNE_2 = "X:2\nT:Two\nM:3/4\nL:1/8\nK:D\nd2 f2 a2 | g4 f2 |]\n"
BOOK = f"% a header that is no tune\n{TUNE_1}\n{TUNE_2}"
TEXT = "a plain text file\nof two lines\n"
MIDI_BYTES = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60"  # read whole, never parsed here


@pytest.fixture
def folder(tmp_path) -> Path:
    root = tmp_path / "corpus"
    root.mkdir()
    (root / "a.txt").write_text(TEXT, encoding="utf-8")
    (root / "b.abc").write_text(BOOK, encoding="utf-8")
    return root


def _units(sources: list[str], **kwargs) -> list[tuple[str, bool, list]]:
    corpus = resolve_sources(sources)
    return [(u.name, u.whole, list(u.chunks)) for u in iter_units(corpus.documents, **kwargs)]


def test_text_files_stream_and_tunebooks_split_into_tunes(folder):
    units = _units([str(folder)])
    text, *tunes = units
    assert text == (f"{folder}/a.txt", False, [TEXT])
    assert [(name, whole) for name, whole, _ in tunes] == [
        (f"{folder}/b.abc:2 X:1", True),
        (f"{folder}/b.abc:9 X:2", True),
    ]
    assert [chunks for _, _, chunks in tunes] == [[TUNE_1], [TUNE_2]]


def test_a_tune_reader_reads_every_text_file_as_a_tunebook(tmp_path):
    path = tmp_path / "tunes.txt"
    path.write_text(BOOK, encoding="utf-8")
    assert [name for name, _, _ in _units([str(path)])] == [str(path)]
    split = _units([str(path)], tunes=True)
    assert [name for name, _, _ in split] == [f"{path}:2 X:1", f"{path}:9 X:2"]


def test_midi_files_are_read_whole_or_refused(tmp_path):
    path = tmp_path / "song.mid"
    path.write_bytes(MIDI_BYTES)
    assert _units([str(path)], midi=True) == [(str(path), True, [MIDI_BYTES])]
    with pytest.raises(GenseqError, match="song.mid is a MIDI file: read it with --level midi"):
        _units([str(path)])


def test_every_byte_read_is_hashed(folder):
    corpus = resolve_sources([str(folder)])
    background = Background()
    try:
        hashes = SourceHashes(background)
        for unit in iter_units(corpus.documents, hashes=hashes):
            list(unit.chunks)
        for doc in corpus.documents:
            assert hashes.sha256(doc.path) == hashlib.sha256(doc.path.read_bytes()).hexdigest()
    finally:
        background.close()


@pytest.mark.parametrize("level", ["char", "abc"])
def test_tokenize_writes_the_units_of_the_reader(folder, tmp_path, level):
    """The training stream is ``<eos>`` then every unit the reader gives, each followed by
    ``<eos>``: tokenize reads documents through this reader and no other way."""
    out = tmp_path / "data"
    options = TokenizeOptions(level=level, val_fraction=0, split="position")
    tokenize_corpus(resolve_sources([str(folder)]), out, options)
    tok = load_tokenizer(out / "tokenizer.json", level)
    eos = [tok.eos_id]
    expected = list(eos)
    docs = resolve_sources([str(folder)]).documents
    for unit in iter_units(docs, tunes=tok.splits_tunes):
        text = "".join(unit.chunks)
        ids = tok.encode_document(text) if unit.whole else tok.encode_chunk(text)
        expected += [*ids.tolist(), *eos]
    train = read_tokens(out / "train.bin", "uint16")
    assert np.array_equal(train, expected)
    assert len(expected) > 3 * len(eos)


def test_read_tunes_takes_abc_files_from_directories_and_any_file_named(folder, tmp_path):
    named = tmp_path / "more.txt"
    named.write_text(BOOK, encoding="utf-8")
    tunes = read_tunes([str(folder), str(named)])
    assert [(name, raw.number, raw.title, raw.line) for name, raw in tunes] == [
        (f"{folder}/b.abc", "1", "One", 2),
        (f"{folder}/b.abc", "2", "Two", 9),
        (str(named), "1", "One", 2),
        (str(named), "2", "Two", 9),
    ]


def test_read_music_takes_midi_files_and_tunes_and_leaves_other_files_out(folder):
    (folder / "c.mid").write_bytes(MIDI_BYTES)
    assert read_music([str(folder)]) == [
        (f"{folder}/b.abc:2", TUNE_1),
        (f"{folder}/b.abc:9", TUNE_2),
        (f"{folder}/c.mid", MIDI_BYTES),
    ]
    named = folder / "a.txt"
    named.write_text(BOOK, encoding="utf-8")
    assert [name for name, _ in read_music([str(named)])] == [f"{named}:2", f"{named}:9"]


def test_holds_midi_looks_into_directories(folder, tmp_path):
    assert not holds_midi([str(folder), "folk-abc"])
    (folder / "deep").mkdir()
    (folder / "deep" / "x.MID").write_bytes(MIDI_BYTES)
    assert holds_midi([str(folder)])
    assert holds_midi([str(folder / "deep" / "x.MID")])
