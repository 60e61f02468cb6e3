"""The tokenizer interface shared by text and music.

A tokenizer is fitted on a stream of text chunks (bounded memory), encodes text to ids, decodes
ids back to text, and saves itself as Hugging Face ``tokenizers`` JSON. Two special tokens come
first in every vocabulary: ``<unk>`` (id 0) for anything unseen, and ``<eos>`` (id 1), which
separates documents in token files and starts every generated sample. The sampler never
generates ``<unk>`` (``never_generate``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

UNK = "<unk>"
EOS = "<eos>"
SPECIAL_TOKENS = [UNK, EOS]


PIECE_CHARS = 1 << 16


class SkipDocument(ValueError):
    """A document the tokenizer cannot read (a malformed tune): skipped, counted, reported."""


def split_pieces(text: str, size: int = PIECE_CHARS) -> list[str]:
    """Cut text after line breaks into pieces of about ``size`` characters.

    The Hugging Face tokenizers encode and count a batch of pieces on all cores; per-line
    batches cost more in Python objects, one whole chunk runs on one core.
    """
    pieces = []
    start, n = 0, len(text)
    while start < n:
        end = text.find("\n", start + size, start + 4 * size)
        end = min(n, start + 4 * size) if end < 0 else end + 1  # a very long line is cut
        pieces.append(text[start:end])
        start = end
    return pieces


class Tokenizer(ABC):
    """Text <-> ids for one level. Subclasses wrap a ``tokenizers.Tokenizer`` (``self.hf``)."""

    level: str = ""
    lossless: bool = True  # decode(encode(x)) == x for text made of known symbols

    splits_tunes: bool = False  # every source is a tunebook: one document per tune
    reads_midi: bool = False  # MIDI files are documents (read whole, as bytes)
    # Set by a fit that already counted the ids of the text it read (the char level), so
    # that tokenizing that same text need not count them again; None: not known.
    fit_id_counts: np.ndarray | None = None
    default_vocab_size: int | None = None  # None: as many tokens as the corpus has
    # The vocabulary may be learned from an evenly spread sample of a large corpus
    # (``--fit-sample``): true where the fit only ranks frequent words or merges, false where
    # it must see every symbol (the char level would turn unseen characters into <unk>).
    fit_may_sample: bool = False
    default_min_frequency: int = 1

    def __init__(
        self,
        hf=None,
        vocab_size: int | None = None,
        min_frequency: int | None = None,
        lowercase: bool = False,
    ) -> None:
        """Wrap a loaded ``tokenizers.Tokenizer`` (``hf``), or take options for ``fit``."""
        self.hf = hf
        self.max_vocab = vocab_size or self.default_vocab_size
        self.min_frequency = min_frequency or self.default_min_frequency
        self.lowercase = lowercase

    # -- fitting -------------------------------------------------------------------------------
    @abstractmethod
    def fit(self, chunks: Iterable[str]) -> None:
        """Build the vocabulary from a stream of line-aligned text chunks."""

    # -- ids -----------------------------------------------------------------------------------
    def encode(self, text: str) -> np.ndarray:
        """Ids of ``text`` as an int64 array (no special tokens added)."""
        return np.asarray(self.hf.encode(text, add_special_tokens=False).ids, dtype=np.int64)

    def encode_chunk(self, text: str) -> np.ndarray:
        """Ids of a large line-aligned chunk, encoded as pieces in parallel on all cores."""
        pieces = split_pieces(text)
        if not pieces:
            return np.zeros(0, dtype=np.int64)
        encodings = self.hf.encode_batch_fast(pieces, add_special_tokens=False)
        return np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encodings])

    def encode_document(self, text: str) -> np.ndarray:
        """Ids of one whole document (a tune); may raise ``SkipDocument``."""
        return self.encode_chunk(text)

    def encode_training_document(self, text: str) -> list[np.ndarray]:
        """Ids of a training document, then of each augmented copy (``--augment-keys``).

        `genseq tokenize` writes copy k of every document in round k, so a tune and its
        transpositions lie a corpus apart in the training stream: read back to back, with the
        state carried across ``<eos>``, a model learns to copy the tune before instead of
        learning music (Nottingham: 1.67 against 1.80 nats/token after 1,000 steps).
        """
        return [self.encode_document(text)]

    def _fit_hf(self, trainer, chunks: Iterable[str]) -> None:
        """Train ``self.hf`` on chunks fed as batches of pieces (parallel word counting)."""
        self.hf.train_from_iterator((split_pieces(chunk) for chunk in chunks), trainer=trainer)

    def decode(self, ids: Sequence[int]) -> str:
        return self.hf.decode(list(map(int, ids)), skip_special_tokens=False)

    # -- vocabulary ----------------------------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return self.hf.get_vocab_size(with_added_tokens=True)

    @property
    def unk_id(self) -> int:
        return self.hf.token_to_id(UNK)

    @property
    def eos_id(self) -> int:
        return self.hf.token_to_id(EOS)

    @property
    def never_generate(self) -> list[int]:
        return [self.unk_id]

    def id_to_token(self, i: int) -> str:
        return self.hf.id_to_token(int(i))

    def token_to_id(self, token: str) -> int | None:
        return self.hf.token_to_id(token)

    def describe(self) -> str:
        """One line for `genseq info`."""
        return f"{self.level} level, {self.vocab_size:,} tokens"

    # -- files ---------------------------------------------------------------------------------
    def to_json(self) -> str:
        return self.hf.to_str(pretty=True)

    def settings(self) -> dict[str, Any]:
        """How this tokenizer reads documents beyond what its vocabulary file says (lexer
        options, augmentation), as ``from_json`` takes them back: an encoding worker process
        rebuilds the same tokenizer from ``to_json()`` and these."""
        return {}

    def save(self, path: Path) -> None:
        from genseq.fileio import atomic_write_text

        atomic_write_text(Path(path), self.to_json())

    @classmethod
    def from_json(cls, text: str, **settings: Any) -> Tokenizer:
        """A tokenizer from its vocabulary file; ``settings`` (from ``settings()``) restore
        what the file does not hold, else the level's defaults or what the vocabulary implies."""
        from tokenizers import Tokenizer as HFTokenizer

        return cls(HFTokenizer.from_str(text), **settings)

    @classmethod
    def load(cls, path: Path) -> Tokenizer:
        return cls.from_json(Path(path).read_text("utf-8"))
