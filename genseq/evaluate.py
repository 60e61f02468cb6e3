"""Held-out loss: nats per token over every prediction of a token array, exactly once.

Used by the trainer for validation and by `genseq eval` for files (``evaluate_files``), which
are read as `genseq tokenize` reads them (``genseq.documents``). Bits per character divide the
same total by the number of characters, which compares models across tokenizations; nats per
tune and per note compare models across music encodings.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genseq.corpus import Document, resolve_sources
from genseq.data import TokenFileWriter, dtype_for_vocab, eval_windows, read_tokens
from genseq.documents import Unit, iter_units
from genseq.errors import GenseqError
from genseq.model import RecurrentLM
from genseq.tokenization import SkipDocument, Tokenizer


@dataclass
class EvalResult:
    nats: float  # summed negative log-likelihood
    tokens: int  # predictions counted

    @property
    def loss(self) -> float:
        return self.nats / max(self.tokens, 1)

    @property
    def perplexity(self) -> float:
        return math.exp(min(self.loss, 700.0))

    def bits_per_character(self, characters: int) -> float:
        return self.nats / max(characters, 1) / math.log(2)


@torch.no_grad()
def evaluate_tokens(
    model: RecurrentLM,
    tokens: np.ndarray,
    device: torch.device | str = "cpu",
    streams: int = 32,
    seq_len: int = 256,
) -> EvalResult:
    """Loss of ``model`` on ``tokens``; the recurrent state is carried along each stream."""
    was_training = model.training
    model.eval()
    nats = 0.0
    count = 0
    state = None
    for x, y in eval_windows(np.asarray(tokens), streams, seq_len):
        xt = torch.from_numpy(x).to(device)
        yt = torch.from_numpy(y).to(device)
        if state is None:
            state = model.init_state(xt.size(0), device)
        loss, state = model(xt, state, yt)  # mean nats over the window's targets
        targets = int((yt >= 0).sum().item())
        nats += float(loss) * targets
        count += targets
    model.train(was_training)
    return EvalResult(nats, count)


# ---------------------------------------------------------------------------------------------
# Files


@dataclass
class FileScore:
    """A model's loss on one file, or on all of them (``total``), and what it is counted over.

    ``tunes`` and ``skipped_tunes`` are kept for levels that read tunes, ``notes`` for the MIDI
    levels; None where the level has none.
    """

    file: str
    result: EvalResult
    characters: int  # characters of text, or bytes of a MIDI file
    unknown_tokens: int
    tunes: int | None = None
    skipped_tunes: int | None = None
    notes: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """The row `genseq eval --json` prints."""
        row: dict[str, Any] = {
            "file": self.file,
            "tokens": self.result.tokens,
            "characters": self.characters,
            "loss": self.result.loss,
            "perplexity": self.result.perplexity,
            "bits_per_character": self.result.bits_per_character(self.characters),
            "unknown_tokens": self.unknown_tokens,
        }
        if self.tunes is not None:
            row |= {
                "tunes": self.tunes,
                "skipped_tunes": self.skipped_tunes,
                "nats_per_tune": self.result.nats / self.tunes,
            }
        if self.notes is not None:
            row |= {"notes": self.notes, "nats_per_note": self.result.nats / max(self.notes, 1)}
        return row


def total(scores: list[FileScore]) -> FileScore:
    """The scores of several files summed into one (nats and every count)."""

    def added(name: str) -> int | None:
        counts = [getattr(s, name) for s in scores]
        return None if not counts or None in counts else sum(counts)

    nats = sum(s.result.nats for s in scores)
    result = EvalResult(nats, sum(s.result.tokens for s in scores))
    return FileScore(
        "TOTAL",
        result,
        sum(s.characters for s in scores),
        sum(s.unknown_tokens for s in scores),
        added("tunes"),
        added("skipped_tunes"),
        added("notes"),
    )


def evaluate_files(
    model: RecurrentLM,
    tokenizer: Tokenizer,
    sources: list[str],
    device: torch.device | str = "cpu",
    encoding_errors: str = "strict",
) -> list[FileScore]:
    """The loss of ``model`` on each file of ``sources`` (files, directories, corpus names or
    ``-``), every document read as in training: after ``<eos>``, and a tune or MIDI file
    followed by ``<eos>``. Unreadable tunes are skipped and counted."""
    corpus = resolve_sources(sources, encoding_errors=encoding_errors)
    try:
        return [
            evaluate_document(model, tokenizer, doc, device, encoding_errors)
            for doc in corpus.documents
        ]
    finally:
        corpus.close()


def evaluate_document(
    model: RecurrentLM,
    tokenizer: Tokenizer,
    document: Document,
    device: torch.device | str = "cpu",
    encoding_errors: str = "strict",
) -> FileScore:
    """The loss of ``model`` on one file. Its ids go to a temporary token file, read back as a
    memmap, so memory stays bounded whatever the file's size."""
    tok = tokenizer
    units = iter_units([document], encoding_errors, tunes=tok.splits_tunes, midi=tok.reads_midi)
    with tempfile.TemporaryDirectory(prefix="genseq-eval-") as tmp:
        path, dtype = Path(tmp) / "ids.bin", dtype_for_vocab(tok.vocab_size)
        writer = TokenFileWriter(path, dtype)
        score = _write_ids(tok, units, writer, document.name)
        writer.close()
        if score.characters == 0:
            raise GenseqError(
                f"{document.name}: {_nothing_read(tok, document)}, nothing to evaluate"
            )
        if tok.splits_tunes and score.tunes == 0:
            what = "MIDI notes or tunes" if tok.reads_midi else "tunes"
            raise GenseqError(f"{document.name}: no readable {what} to evaluate")
        ids = read_tokens(path, dtype)
        score.result = evaluate_tokens(model, ids, device)
        del ids  # the memmap, before its file is removed
    return score


def _nothing_read(tok: Tokenizer, document: Document) -> str:
    """Why a file gave no text to score: it is empty, or it holds no tune for a level that
    reads only the tunes of a file (plain text has no ``X:`` line)."""
    try:
        empty = document.path.stat().st_size == 0
    except OSError:
        empty = True
    if empty or not tok.splits_tunes:
        return "empty file"
    return "no tunes (X: lines) found"


def _write_ids(
    tok: Tokenizer, units: Iterator[Unit], writer: TokenFileWriter, name: str
) -> FileScore:
    """Write ``<eos>`` and every unit's ids; the score's counts, its loss not yet known."""
    score = FileScore(name, EvalResult(0.0, 0), 0, 0)
    tunes = skipped = notes = 0
    writer.write(np.array([tok.eos_id], dtype=np.int64))
    for unit in units:
        for chunk in unit.chunks:
            score.characters += len(chunk)
            if not unit.whole:
                part = tok.encode_chunk(chunk)
            else:
                try:
                    part = np.append(tok.encode_document(chunk), tok.eos_id)
                except SkipDocument:
                    skipped += 1
                    continue
                tunes += 1
                if tok.reads_midi:
                    notes += tok.note_count(part)
            score.unknown_tokens += int((part == tok.unk_id).sum())
            writer.write(part)
    if tok.splits_tunes:
        score.tunes, score.skipped_tunes = tunes, skipped
    if tok.reads_midi:
        score.notes = notes
    return score
