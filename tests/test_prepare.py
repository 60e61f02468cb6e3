"""`tokenize_corpus`: token files, the split, meta.json, and nothing lost on failure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from genseq.corpus import resolve_sources
from genseq.data import open_data
from genseq.errors import GenseqError, UsageError
from genseq.prepare import TokenizeOptions, tokenize_corpus
from genseq.tokenization import load_tokenizer


def _docs(tmp_path, n: int, text: str = "tune {i}\nabc abc\n"):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(n):
        (folder / f"doc{i:02d}.txt").write_text(text.format(i=i), encoding="utf-8")
    return folder


def test_single_text_splits_by_position(tmp_path, words_file):
    out = tmp_path / "data"
    summary = tokenize_corpus(resolve_sources([str(words_file)]), out, TokenizeOptions())
    data = open_data(out)
    tok = data.tokenizer()
    text = words_file.read_text()
    assert summary.split == "position"
    assert summary.characters == len(text)
    # <eos> text <eos>, cut at the 90% mark: train then val read back the whole stream.
    stream = np.concatenate([data.train, data.val]).astype(np.int64)
    assert stream[0] == tok.eos_id and stream[-1] == tok.eos_id
    assert tok.decode(stream[1:-1]) == text
    assert len(data.val) == round(len(stream) * 0.1)
    assert data.train.dtype == np.uint16
    meta = json.loads((out / "meta.json").read_text())
    assert meta["sources"][0]["sha256"] and meta["level"] == "char"
    assert meta["splits"]["train"]["tokens"] == len(data.train)


def test_meta_holds_the_sha256_of_every_source(tmp_path, monkeypatch):
    """The hashes come from the blocks the first pass reads (on a helper thread), for text
    files and for tunebooks read tune by tune, and equal hashing each file on its own."""
    import hashlib

    import genseq.corpus

    def no_second_read(path):
        raise AssertionError(f"{path} was read again to be hashed")

    monkeypatch.setattr(genseq.corpus, "sha256_file", no_second_read)
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "a.txt").write_text("first file\n" * 300_000, encoding="utf-8")  # 4 reads
    (folder / "b.txt").write_bytes(b"\xef\xbb\xbfa BOM, then text\n")
    (folder / "c.abc").write_text("X:1\nT:t\nK:C\nCDE|\n\nX:2\nT:u\nK:G\nGAB|\n")
    out = tmp_path / "data"
    tokenize_corpus(resolve_sources([str(folder)]), out, TokenizeOptions(level="char"))
    sources = json.loads((out / "meta.json").read_text())["sources"]
    assert [Path(s["name"]).name for s in sources] == ["a.txt", "b.txt", "c.abc"]
    for source in sources:
        data = (folder / Path(source["name"]).name).read_bytes()
        assert source["sha256"] == hashlib.sha256(data).hexdigest()
        assert source["bytes"] == len(data)


def test_many_documents_split_by_document(tmp_path):
    folder = _docs(tmp_path, 20)
    out = tmp_path / "data"
    summary = tokenize_corpus(resolve_sources([str(folder)]), out, TokenizeOptions(seed=3))
    data = open_data(out)
    tok = data.tokenizer()
    assert summary.split == "document"
    meta = json.loads((out / "meta.json").read_text())
    assert len(meta["val_documents"]) == 2  # 10% of 20 documents, whole
    val_text = tok.decode(np.asarray(data.val, dtype=np.int64))
    train_text = tok.decode(np.asarray(data.train, dtype=np.int64))
    for name in meta["val_documents"]:
        i = int(name[-6:-4])
        assert f"tune {i}\n" in val_text and f"tune {i}\n" not in train_text
    assert train_text.count("<eos>") == 18 + 1  # before and after every document
    again = tmp_path / "again"
    tokenize_corpus(resolve_sources([str(folder)]), again, TokenizeOptions(seed=3))
    assert json.loads((again / "meta.json").read_text())["val_documents"] == meta["val_documents"]


def test_large_vocabulary_uses_uint32_and_uint16_is_refused(tmp_path):
    words = " ".join(f"w{i}" for i in range(70_000)) + "\n"
    src = tmp_path / "many.txt"
    src.write_text(words)
    with pytest.raises(UsageError, match="does not fit in uint16"):
        tokenize_corpus(
            resolve_sources([str(src)]),
            tmp_path / "a",
            TokenizeOptions(level="word", vocab_size=100_000, dtype="uint16"),
        )
    assert not (tmp_path / "a").exists()
    tokenize_corpus(
        resolve_sources([str(src)]),
        tmp_path / "b",
        TokenizeOptions(level="word", vocab_size=100_000),
    )
    data = open_data(tmp_path / "b")
    assert data.meta["dtype"] == "uint32" and data.vocab_size > 65_536
    assert int(np.max(data.train)) >= 65_536


def test_a_failed_tokenize_keeps_the_previous_data(tmp_path, words_file):
    out = tmp_path / "data"
    tokenize_corpus(resolve_sources([str(words_file)]), out, TokenizeOptions())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine text\n" * 100 + b"\xff\xfe broken\n")
    with pytest.raises(GenseqError, match="not valid UTF-8"):
        tokenize_corpus(resolve_sources([str(bad)]), out, TokenizeOptions())
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_empty_corpus_and_foreign_output_are_errors(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(GenseqError, match="empty"):
        tokenize_corpus(resolve_sources([str(empty)]), tmp_path / "d", TokenizeOptions())
    home = tmp_path / "home"
    home.mkdir()
    (home / "precious.txt").write_text("keep me")
    src = tmp_path / "src.txt"
    src.write_text("some text\n" * 10)
    with pytest.raises(GenseqError, match="not a genseq data directory"):
        tokenize_corpus(resolve_sources([str(src)]), home, TokenizeOptions())
    assert (home / "precious.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    "bad", [{"val_fraction": 0.9}, {"split": "random"}, {"vocab_size": 1}, {"min_frequency": 0}]
)
def test_impossible_options(tmp_path, words_file, bad):
    with pytest.raises(UsageError):
        tokenize_corpus(resolve_sources([str(words_file)]), tmp_path / "d", TokenizeOptions(**bad))


def test_summary_counts_unknown_tokens(tmp_path, words_file):
    summary = tokenize_corpus(
        resolve_sources([str(words_file)]),
        tmp_path / "d",
        TokenizeOptions(level="word", vocab_size=8),
    )
    assert summary.vocab_size == 8
    assert 0 < summary.unknown_rate < 1
    assert summary.top_tokens[0][1] >= summary.top_tokens[-1][1]


@pytest.mark.parametrize("options", [{}, {"lowercase": True}, {"vocab_size": 6}])
def test_char_summary_counts_what_the_token_files_hold(tmp_path, options):
    """The char level's id histogram comes from its fit, not a second count: it must match
    the ids written, unknown characters included."""
    src = tmp_path / "src.txt"
    src.write_text("Héllo wörld, HELLO 日本 😀!\n" * 30 + "abc\n" * 20, encoding="utf-8")
    summary = tokenize_corpus(
        resolve_sources([str(src)]), tmp_path / "d", TokenizeOptions(level="char", **options)
    )
    data = open_data(tmp_path / "d")
    ids = np.concatenate([np.asarray(data.train), np.asarray(data.val)])
    tok = load_tokenizer(tmp_path / "d" / "tokenizer.json", "char")
    ids = ids[ids != tok.eos_id]
    histogram = np.bincount(ids, minlength=summary.vocab_size)
    assert summary.tokens == len(ids)
    assert summary.unknown_tokens == histogram[tok.unk_id]
    assert [n for _, n in summary.top_tokens] == sorted(histogram[histogram > 0], reverse=True)[
        : len(summary.top_tokens)
    ]


@pytest.mark.parametrize("level", ["word", "bpe"])
def test_a_large_corpus_fits_its_vocabulary_on_an_evenly_spread_sample(tmp_path, level):
    """--fit-sample: the vocabulary comes from every 4th file here, but every file is encoded."""
    folder = _docs(tmp_path, 20, "song {i}\n" + "zq{i}x " * 40 + "\n")
    corpus_bytes = sum(p.stat().st_size for p in folder.iterdir())
    quarter = TokenizeOptions(level=level, fit_sample_mb=corpus_bytes / 4 / 1e6, val_fraction=0)
    sampled = tokenize_corpus(resolve_sources([str(folder)]), tmp_path / "s", quarter)
    whole = TokenizeOptions(level=level, fit_sample_mb=0, val_fraction=0)
    full = tokenize_corpus(resolve_sources([str(folder)]), tmp_path / "f", whole)
    assert sampled.fit_share == pytest.approx(0.25, abs=0.01) and full.fit_share == 1
    assert sampled.documents == full.documents == 20
    assert sampled.characters == full.characters
    tok = load_tokenizer(tmp_path / "s" / "tokenizer.json", level)
    seen = [i for i in range(20) if tok.token_to_id(f"zq{i}x") is not None]
    if level == "word":
        assert seen == [0, 4, 8, 12, 16]  # the first file, then every 4th
        assert sampled.unknown_tokens == 15 * 41  # the words and numbers of the other files
        assert full.unknown_tokens == 0
    text = tok.decode(np.asarray(open_data(tmp_path / "s").train))  # every file is encoded
    kept = range(20) if level == "bpe" else range(0, 20, 4)  # bpe: lossless, whatever it saw
    assert all(text.count(f"zq{i}x") == 40 for i in kept)
    meta = json.loads((tmp_path / "s" / "meta.json").read_text())
    assert meta["summary"]["fit_share"] == sampled.fit_share


def test_the_char_level_always_fits_on_every_character(tmp_path):
    folder = _docs(tmp_path, 20, "line {i}\n")
    (folder / "doc19.txt").write_text("only here: é\n", encoding="utf-8")
    options = TokenizeOptions(level="char", fit_sample_mb=1e-6, val_fraction=0)
    summary = tokenize_corpus(resolve_sources([str(folder)]), tmp_path / "c", options)
    assert summary.fit_share == 1 and summary.unknown_tokens == 0
    assert load_tokenizer(tmp_path / "c" / "tokenizer.json", "char").token_to_id("é") is not None


def test_fit_sample_must_be_a_size():
    with pytest.raises(UsageError, match="--fit-sample"):
        TokenizeOptions(fit_sample_mb=-1).validate()


def test_worker_processes_write_the_same_token_files(tmp_path):
    """``--workers 2`` encodes chunks in spawned processes, each with its own BPE word cache:
    the token files must be those of one process."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"line {i}: the cat sat, {i * 7} mats\n" for i in range(3000)))
    files = []
    for workers in (1, 2):
        out = tmp_path / f"data{workers}"
        options = TokenizeOptions(level="bpe", vocab_size=300, workers=workers)
        tokenize_corpus(resolve_sources([str(corpus)]), out, options)
        files.append([(out / name).read_bytes() for name in ("train.bin", "val.bin")])
    assert files[0] == files[1]


def test_worker_processes_read_tunes_with_the_parents_options(tmp_path):
    """Workers rebuild the tokenizer from its file and ``settings()``: the lexer options and
    the transposed copies (which the file does not hold) must be those of one process."""
    book = tmp_path / "book.abc"
    keys = "GDAEC"
    book.write_text(
        "\n".join(
            f'X:{i}\nT:T{i}\nM:4/4\nL:1/8\nK:{keys[i % 5]}\n"G"GABc d2B2 | "C"c2A2 G4 |]\n'
            for i in range(12)
        ),
        encoding="utf-8",
    )
    files = []
    for workers, augment in ((1, 1), (2, 1), (1, 0)):
        out = tmp_path / f"data{workers}-{augment}"
        options = TokenizeOptions(
            level="abc", abc_chords=True, augment_keys=augment, workers=workers
        )
        tokenize_corpus(resolve_sources([str(book)]), out, options)
        files.append([(out / name).read_bytes() for name in ("train.bin", "val.bin")])
    assert files[0] == files[1]
    assert len(files[0][0]) > len(files[2][0])  # the transposed copies are there
    tok = load_tokenizer(tmp_path / "data1-1" / "tokenizer.json", "abc")
    chords = [i for t, i in tok.ids.items() if t.startswith('"')]
    train = np.frombuffer(files[1][0], dtype=np.uint16)
    assert chords and np.isin(train, chords).any()  # and the chord symbols


def test_val_files_are_the_whole_validation_split_and_never_shape_the_vocabulary(tmp_path):
    train_file, val_file = tmp_path / "train.txt", tmp_path / "valid.txt"
    train_file.write_text("abc abc cab\n" * 50, encoding="utf-8")
    val_file.write_text("cab xyz\n", encoding="utf-8")  # x, y and z are not in training
    out = tmp_path / "data"
    summary = tokenize_corpus(
        resolve_sources([str(train_file)]),
        out,
        TokenizeOptions(val_fraction=0.3),  # --val decides the split, not the fraction
        val_corpus=resolve_sources([str(val_file)]),
    )
    data = open_data(out)
    tok = data.tokenizer()
    assert summary.split == "files" and summary.val_sources == [str(val_file)]
    assert tok.decode(data.train[1:-1].astype(np.int64)) == train_file.read_text()
    val_ids = data.val.astype(np.int64)
    assert val_ids[0] == tok.eos_id and val_ids[-1] == tok.eos_id
    assert list(val_ids[1:5]) == list(tok.encode("cab "))
    assert list(val_ids[5:8]) == [tok.unk_id] * 3  # outside the training vocabulary
    assert summary.val_unknown_tokens == 3 and summary.unknown_tokens == 3
    meta = json.loads((out / "meta.json").read_text())
    assert [(s["name"], s["split"]) for s in meta["sources"]] == [
        (str(train_file), "train"),
        (str(val_file), "val"),
    ]


def test_val_files_refuse_another_split_and_empty_files(tmp_path, words_file):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(UsageError, match="--val gives the validation split"):
        tokenize_corpus(
            resolve_sources([str(words_file)]),
            tmp_path / "a",
            TokenizeOptions(split="document"),
            val_corpus=resolve_sources([str(words_file)]),
        )
    with pytest.raises(GenseqError, match="--val: no text"):
        tokenize_corpus(
            resolve_sources([str(words_file)]),
            tmp_path / "b",
            TokenizeOptions(),
            val_corpus=resolve_sources([str(empty)]),
        )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
