"""Pretrained word vectors (`genseq train --embeddings FILE`): the two text formats, plain and
gzipped, matched to the vocabulary; the loaded rows in the model; frozen rows fixed through
training and resume; the projection to another width; every bad file one error line before
anything is written; a checkpoint that samples without the file."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch
from testkit import TINY, assert_resume_is_exact, one_error_line, run, small

from genseq.checkpoint import load_checkpoint
from genseq.corpus import resolve_sources
from genseq.data import open_data
from genseq.decode_step import LstmDecodeStep
from genseq.embeddings import read_vectors
from genseq.errors import GenseqError
from genseq.model import ModelConfig, RecurrentLM
from genseq.plan import TrainConfig
from genseq.prepare import TokenizeOptions, tokenize_corpus
from genseq.train import Trainer

DIM = 6
KNOWN = 5  # vocabulary words the test files hold


def vector(k: int) -> list[float]:
    """Values exact in float32, distinct per row and column."""
    return [(k % 16) / 8 + j / 64 - 1 for j in range(DIM)]


def text_row(word: str, k: int) -> str:
    return word + " " + " ".join(repr(v) for v in vector(k)) + "\n"


@pytest.fixture(scope="module")
def word_data(tmp_path_factory, words_file):
    out = tmp_path_factory.mktemp("word-data") / "d"
    tokenize_corpus(resolve_sources([str(words_file)]), out, TokenizeOptions(level="word"))
    return out


@pytest.fixture(scope="module")
def known(word_data) -> dict[str, int]:
    """KNOWN vocabulary words (the most frequent, after the special tokens) and their ids."""
    vocab = open_data(word_data).tokenizer().hf.get_vocab()
    words = sorted((i, w) for w, i in vocab.items() if w.isalpha())
    return {w: i for i, w in words[:KNOWN]}


def rows_text(known: dict[str, int]) -> list[str]:
    """Rows for the known words, between rows no vocabulary word matches (one, as in GloVe
    840B, with a space in its word)."""
    rows = [text_row("zzzunseen", 15), text_row("new york", 14)]
    rows += [text_row(w, k) for k, w in enumerate(known)]
    return rows + [text_row("qqqunseen", 13)]


def write_glove(path, known, gz: bool = False):
    text = "".join(rows_text(known))
    if gz:
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_word2vec(path, known):
    rows = rows_text(known)
    path.write_text(f"{len(rows)} {DIM}\n" + "".join(rows), encoding="utf-8")
    return path


def expected(known: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    ids = np.array([known[w] for w in known])
    vectors = np.array([vector(k) for k in range(len(known))], dtype=np.float32)
    order = np.argsort(ids)
    return ids[order], vectors[order]


@pytest.mark.parametrize("kind", ["glove", "glove.gz", "word2vec"])
def test_both_formats_plain_and_gzipped_give_the_vocabulary_rows(tmp_path, word_data, known, kind):
    path = {
        "glove": lambda: write_glove(tmp_path / "v.txt", known),
        "glove.gz": lambda: write_glove(tmp_path / "v.txt.gz", known, gz=True),
        "word2vec": lambda: write_word2vec(tmp_path / "v.txt", known),
    }[kind]()
    vocab = open_data(word_data).tokenizer().hf.get_vocab()
    got = read_vectors(path, vocab)
    assert got.format == kind.split(".")[0] and got.dimension == DIM
    assert (got.found, got.vocab_size) == (KNOWN, len(vocab))
    ids, vectors = expected(known)
    assert np.array_equal(got.ids, ids) and np.array_equal(got.vectors, vectors)


def test_case_matching_exact_first_then_the_files_first_casing(tmp_path):
    vocab = {"<unk>": 0, "<eos>": 1, "\n": 2, "apple": 3, "Paris": 4, "berlin": 5, "Rome": 6}
    path = tmp_path / "v.txt"
    rows = [("<unk>", 9), ("Apple", 1), ("APPLE", 2), ("paris", 3), ("Paris", 4), ("BERLIN", 5)]
    path.write_text("".join(text_row(w, k) for w, k in rows), encoding="utf-8")
    exact = read_vectors(path, vocab)
    assert exact.ids.tolist() == [4] and exact.vectors[0].tolist() == vector(4)
    folded = read_vectors(path, vocab, ignore_case=True)
    assert folded.ids.tolist() == [3, 4, 5]  # <unk> is never looked up; Rome is not there
    assert [v.tolist() for v in folded.vectors] == [vector(1), vector(4), vector(5)]


def _built(cfg: TrainConfig, data, out) -> RecurrentLM:
    """The model a run starts from, before its first step."""
    trainer = Trainer(cfg, open_data(data), out)
    trainer._prepare_run_dir()
    trainer._build()
    return trainer.model


def test_loaded_rows_hold_the_files_vectors_and_the_rest_genseqs_own(tmp_path, word_data, known):
    glove = write_glove(tmp_path / "g.txt", known)
    plain = _built(small(embed_size=DIM, max_steps=1), word_data, tmp_path / "a")
    loaded = _built(
        small(embed_size=DIM, max_steps=1, embeddings=str(glove)), word_data, tmp_path / "b"
    )
    ids, vectors = expected(known)
    table = loaded.embed.weight.detach()
    assert torch.equal(table[ids], torch.from_numpy(vectors))
    others = torch.ones(len(table), dtype=torch.bool)
    others[ids] = False
    assert torch.equal(table[others], plain.embed.weight.detach()[others])
    assert isinstance(loaded.embed_proj, torch.nn.Identity)  # the file's width: no projection


def _trained(tmp_path, word_data, glove, name, **settings):
    cfg = small(
        embed_size=8, max_steps=12, weight_decay=0.1, ema=0.9, embeddings=str(glove), **settings
    )
    Trainer(cfg, open_data(word_data), tmp_path / name).run()
    return load_checkpoint(tmp_path / name / "last").model


def test_frozen_rows_stay_while_the_others_and_the_projection_train(tmp_path, word_data, known):
    glove = write_glove(tmp_path / "g.txt", known)
    ids, vectors = expected(known)
    start = _built(small(embed_size=8, embeddings=str(glove)), word_data, tmp_path / "s")
    frozen = _trained(tmp_path, word_data, glove, "frozen", freeze_embeddings=True)
    free = _trained(tmp_path, word_data, glove, "free")
    assert frozen.config.vector_size == DIM and frozen.embed_proj.weight.shape == (8, DIM)
    assert torch.equal(frozen.embed.weight[ids], torch.from_numpy(vectors))
    assert not torch.equal(free.embed.weight[ids], torch.from_numpy(vectors))
    others = torch.ones(len(frozen.embed.weight), dtype=torch.bool)
    others[ids] = False
    moved = (frozen.embed.weight[others] != start.embed.weight[others]).all(dim=1)
    assert bool(moved.all())
    assert not torch.equal(frozen.embed_proj.weight, start.embed_proj.weight)


def test_a_resumed_frozen_run_equals_an_uninterrupted_one(tmp_path, word_data, known):
    glove = write_glove(tmp_path / "g.txt", known)
    cfg = {"embed_size": 8, "max_steps": 10, "ema": 0.9}  # the average starts at step 5
    cfg |= {"embeddings": str(glove), "freeze_embeddings": True}
    # a resumed run reads its vectors from the checkpoint: the file is gone by then
    assert_resume_is_exact(
        small(**cfg), open_data(word_data), tmp_path, 7, before_resume=glove.unlink
    )


@pytest.mark.parametrize("tie", [False, True])
def test_a_projected_model_steps_as_it_runs_whole_windows(tie):
    config = ModelConfig(
        vocab_size=30, hidden_size=16, embed_size=8, vector_size=DIM, tie_weights=tie
    )
    model = RecurrentLM(config).eval()
    names = {
        n: tuple(p.shape) for n, p in model.state_dict().items() if n != "head.weight" or not tie
    }
    assert names == config.weight_shapes()
    assert config.parameter_count() == model.num_parameters()
    tokens = torch.tensor([[3, 7, 1, 29, 4]])
    logits, _ = model(tokens)
    state = None
    fast = LstmDecodeStep(model, half=False)
    fast_state = None
    for t in range(tokens.size(1)):
        step, state = model.step(tokens[:, t], state)
        quick, fast_state = fast(tokens[:, t], fast_state)
        assert torch.allclose(step, logits[:, t], atol=1e-5)
        assert torch.allclose(quick, logits[:, t], atol=1e-5)


def test_the_cli_prints_coverage_and_the_checkpoint_samples_without_the_file(
    tmp_path, words_file, word_data, known
):
    glove = write_glove(tmp_path / "glove.txt", known)
    out = tmp_path / "run"
    args = ["--level", "word", "--embeddings", glove, "--max-steps", "3", *TINY]
    done = run("train", words_file, "-o", out, *args)
    assert done.returncode == 0, done.stderr.decode()
    vocab = open_data(out / "data").tokenizer().vocab_size
    share = f"{100 * KNOWN / vocab:.1f}%"
    line = f"embeddings: {KNOWN} of {vocab} vocabulary words found in glove.txt ({share})"
    assert line in done.stderr.decode()
    glove.unlink()
    sampled = run("sample", out, "-n", "10", "--seed", "1")
    assert sampled.returncode == 0, sampled.stderr.decode()
    assert sampled.stdout.strip()
    info = run("info", out).stdout.decode()
    assert f"embeddings   {KNOWN} of {vocab} vocabulary words ({share}) from glove.txt" in info


BAD_FILES = {
    "missing": (None, "no such embeddings file"),
    "neither format": (b"just some words\n", "neither GloVe"),
    "mixed dimension": (b"the 0.1 0.2 0.3\nand 0.1 0.2\n", "line 2 has 2 values where"),
    "bad UTF-8": (b"the 0.1 0.2\n\xff\xfe 0.1 0.2\n", "line 2 is not UTF-8"),
    "a non-number": (b"zzz 0.1 0.2\nthe 0.1 zero\n", "line 2: 'zero' is not a number"),
    "not finite": (b"the 0.1 nan\n", "line 1 holds a NaN"),
    "no vocabulary word": (b"zzzunseen 0.1 0.2\n", "none of the"),
    "word2vec cut short": (b"3 2\nthe 0.1 0.2\n", "header gives 3 rows but the file holds 1"),
    "empty": (b"", "empty"),
    "bad gzip": (b"\x1f\x8bnot gzip at all", "cannot be read"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_vectors_file_is_one_error_line_and_nothing_written(tmp_path, words_file, case):
    content, message = BAD_FILES[case]
    path = tmp_path / ("v.txt.gz" if case == "bad gzip" else "v.txt")
    if content is not None:
        path.write_bytes(content)
    out = tmp_path / "run"
    done = run("train", words_file, "-o", out, "--level", "word", "--embeddings", path, *TINY)
    assert done.returncode == 1
    assert message in one_error_line(done.stderr.decode())
    assert not out.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--level", "char"],
        ["--level", "bpe"],
        ["--level", "abc"],
        ["--level", "midi-melody"],
        [],  # auto: char for text
    ],
)
def test_embeddings_at_another_level_is_a_usage_error(tmp_path, words_file, known, args):
    glove = write_glove(tmp_path / "g.txt", known)
    out = tmp_path / "run"
    done = run("train", words_file, "-o", out, "--embeddings", glove, *args, *TINY)
    assert done.returncode == 2
    assert "needs --level word" in one_error_line(done.stderr.decode())
    assert not out.exists()


def test_a_char_data_directory_is_refused_and_flags_need_a_file(tmp_path, tiny_data, known):
    glove = write_glove(tmp_path / "g.txt", known)
    out = tmp_path / "run"
    done = run("train", tiny_data, "-o", out, "--embeddings", glove, *TINY)
    assert done.returncode == 2
    assert "needs word-level data" in one_error_line(done.stderr.decode())
    assert not out.exists()
    for flag in ("--freeze-embeddings", "--embeddings-ignore-case"):
        done = run("train", tiny_data, "-o", out, flag, *TINY)
        assert done.returncode == 2
        assert f"{flag} needs --embeddings FILE" in one_error_line(done.stderr.decode())
    with pytest.raises(GenseqError, match="needs word-level data"):
        Trainer(small(embeddings=str(glove)), open_data(tiny_data), tmp_path / "lib")


def test_frozen_rows_get_no_gradient_and_no_weight_decay():
    """The mask keeps frozen rows out of clipping and Adam's moments; putting them back after
    the step undoes AdamW's decoupled decay, which moves a weight whose gradient is zero."""
    from genseq.embeddings import freeze_rows

    torch.manual_seed(0)
    model = RecurrentLM(ModelConfig(vocab_size=12, hidden_size=8, embed_size=4, tie_weights=True))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    rows = torch.tensor([2, 5, 7])
    before = model.embed.weight.detach().clone()
    freeze_rows(model, optimizer, rows)
    tokens = torch.arange(12).view(2, 6)
    loss, _ = model(tokens, targets=tokens.roll(1, dims=1))
    loss.backward()
    grad = model.embed.weight.grad
    assert bool((grad[rows] == 0).all()) and bool((grad.abs().sum(dim=1) > 0).sum() >= 9)
    optimizer.step()
    assert torch.equal(model.embed.weight[rows], before[rows])
    others = torch.tensor([0, 1, 3, 4, 6, 8, 9, 10, 11])
    assert bool((model.embed.weight[others] != before[others]).any(dim=1).all())


# -- a Transformer (--arch transformer): the table at the vectors' width, tied through embed_proj


def transformer(**overrides) -> TrainConfig:
    """A tiny Transformer's training config (its width is 16 unless overridden)."""
    settings = {"arch": "transformer", "embed_size": None, "hidden_size": 16, "heads": 2}
    return small(**{**settings, "context": 12, "num_layers": 2, **overrides})


@pytest.mark.parametrize("width, heads", [(DIM, 1), (16, 2)])  # the file's width, and wider
def test_a_transformer_loads_the_files_rows_and_ties_its_output_to_what_they_enter_as(
    tmp_path, word_data, known, width, heads
):
    glove = write_glove(tmp_path / "g.txt", known)
    cfg = {"hidden_size": width, "heads": heads, "max_steps": 1}
    plain = _built(transformer(**cfg), word_data, tmp_path / "a")
    loaded = _built(transformer(**cfg, embeddings=str(glove)), word_data, tmp_path / "b")
    ids, vectors = expected(known)
    table = loaded.embed.weight.detach()
    assert table.shape == (loaded.config.vocab_size, DIM)
    assert torch.equal(table[ids], torch.from_numpy(vectors))
    others = torch.ones(len(table), dtype=torch.bool)
    others[ids] = False
    projected = width != DIM
    assert isinstance(loaded.embed_proj, torch.nn.Linear) == projected
    assert loaded.config.vector_size == (DIM if projected else 0)
    if not projected:  # no projection: the other rows are the plain model's
        assert torch.equal(table[others], plain.embed.weight.detach()[others])
    # Tied: a word's logit is the features' dot product with the vector the word enters as.
    features = torch.randn(3, width)
    entered = loaded.embed_proj(loaded.embed.weight).detach()  # (V, width)
    assert torch.allclose(loaded.logits_of(features), features @ entered.T, atol=1e-5)


def test_a_projected_transformer_steps_as_it_runs_whole_windows():
    from genseq.model import build_model

    config = ModelConfig(
        vocab_size=30,
        arch="transformer",
        hidden_size=16,
        embed_size=16,
        heads=2,
        context=4,
        num_layers=2,
        tie_weights=True,
        vector_size=DIM,
    )
    torch.manual_seed(0)
    model = build_model(config).eval()
    shapes = {n: tuple(p.shape) for n, p in model.state_dict().items()}
    assert shapes == config.weight_shapes() and shapes["embed_proj.weight"] == (16, DIM)
    assert config.parameter_count() == model.num_parameters()
    tokens = torch.tensor([[3, 7, 1, 29, 4, 4, 0, 12]])  # past the context: the cache slides
    logits, _ = model(tokens)
    state = model.init_state(1)
    for t in range(tokens.size(1)):
        step, state = model.step(tokens[:, t], state)
        assert torch.allclose(step, logits[:, t], atol=1e-5)


def test_a_transformers_frozen_rows_stay_while_the_rest_trains_and_resume_is_exact(
    tmp_path, word_data, known
):
    glove = write_glove(tmp_path / "g.txt", known)
    ids, vectors = expected(known)
    cfg = {"max_steps": 10, "weight_decay": 0.1, "dropout": 0.1, "ema": 0.9}
    cfg |= {"embeddings": str(glove), "freeze_embeddings": True}
    data = open_data(word_data)
    start = _built(transformer(**cfg), word_data, tmp_path / "s")
    # a resumed run reads its vectors from the checkpoint: the file is gone by then
    straight, _ = assert_resume_is_exact(
        transformer(**cfg), data, tmp_path, 7, before_resume=glove.unlink
    )
    table = straight["embed.weight"]
    assert torch.equal(table[ids], torch.from_numpy(vectors))
    others = torch.ones(len(table), dtype=torch.bool)
    others[ids] = False
    moved = (table[others] != start.embed.weight[others]).all(dim=1)
    assert bool(moved.all())
    assert not torch.equal(straight["embed_proj.weight"], start.embed_proj.weight)


def test_a_transformer_with_vectors_from_the_cli_prints_coverage_and_needs_no_file_after(
    tmp_path, words_file, word_data, known
):
    glove = write_glove(tmp_path / "glove.txt", known)
    out = tmp_path / "run"
    model = ["--arch", "transformer", "--layers", "2", "--heads", "2", "--hidden-size", "16"]
    args = [*model, "--context", "16", "--batch-size", "4", "--device", "cpu"]
    args += ["--level", "word", "--embeddings", glove, "--freeze-embeddings", "--max-steps", "3"]
    done = run("train", words_file, "-o", out, *args)
    assert done.returncode == 0, done.stderr.decode()
    err = done.stderr.decode()
    vocab = open_data(out / "data").tokenizer().vocab_size
    share = f"{100 * KNOWN / vocab:.1f}%"
    line = f"embeddings: {KNOWN} of {vocab} vocabulary words found in glove.txt ({share})"
    assert line + f"; {DIM}-dimensional, projected to 16; loaded rows frozen" in err
    assert f"2x16 Transformer, 2 heads, context 16, rotary positions, embedding from {DIM}-d" in err
    glove.unlink()
    sampled = run("sample", out, "-n", "10", "--seed", "1", "--num-samples", "2", "--json")
    assert sampled.returncode == 0, sampled.stderr.decode()
    assert len(sampled.stdout.decode().splitlines()) == 2
    info = run("info", out).stdout.decode()
    assert f"embeddings   {KNOWN} of {vocab} vocabulary words ({share}) from glove.txt" in info
    assert "Transformer, 2 heads, context 16" in info
    evaluated = run("eval", out, words_file, "--json")
    assert evaluated.returncode == 0, evaluated.stderr.decode()
    resumed = run("train", words_file, "-o", out, "--resume", "--max-steps", "5", "--json")
    assert resumed.returncode == 0, resumed.stderr.decode()
