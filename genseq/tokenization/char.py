"""Character level: one token per Unicode code point, lossless, as char-rnn.

Saved as a ``tokenizers`` WordLevel model whose pre-tokenizer splits every character and whose
decoder fuses them back, so other tools can load the file. Encoding here bypasses the generic
path, which keeps tokenizing large corpora bound by disk rather than Python: a table from code
point to id turns a megabyte chunk into ids with one numpy gather, and an ASCII chunk (most
English text) is mapped byte by byte with ``bytes.translate`` when every id fits in a byte.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from genseq.tokenization.base import SPECIAL_TOKENS, UNK, Tokenizer


def _code_points(text: str) -> np.ndarray:
    """The code points of ``text`` in the narrowest units that hold them: bytes for ASCII (a
    copy of the string's own buffer), UTF-16 units when every character lies in the Basic
    Multilingual Plane (the UTF-16 text then has one unit per character), else UTF-32.
    Counting and looking up 16-bit units costs half as much as 32-bit ones (BENCHMARKS.md)."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    units = text.encode("utf-16-le")
    if len(units) == 2 * len(text):  # no surrogate pairs: each unit is a code point
        return np.frombuffer(units, dtype=np.uint16)
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)


def _histogram(points: np.ndarray) -> np.ndarray:
    """How often each code point occurs, up to the highest one seen. ``np.bincount`` first
    converts its input to 64-bit integers; bytes are counted two at a time instead (as 16-bit
    pairs, then summed by position), half as many to convert: 0.7 ms a megabyte against 1.6."""
    if points.dtype != np.uint8 or len(points) < 2:
        return np.bincount(points)
    pairs = np.bincount(points[: len(points) // 2 * 2].view(np.uint16), minlength=1 << 16)
    square = pairs.reshape(256, 256)  # [one byte, the other] of each pair (either order)
    counts = square.sum(axis=0) + square.sum(axis=1)
    if len(points) % 2:
        counts[points[-1]] += 1
    return counts


def _build_hf(vocab: dict[str, int]):
    from tokenizers import Regex, decoders, models, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

    hf = HFTokenizer(models.WordLevel(vocab, unk_token=UNK))
    hf.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    hf.decoder = decoders.Fuse()
    return hf


class CharTokenizer(Tokenizer):
    level = "char"

    def __init__(self, hf=None, **options) -> None:
        super().__init__(hf, **options)
        if hf is not None:
            self._index_vocab()

    def fit(self, chunks: Iterable[str]) -> None:
        counts = np.zeros(0x110000, dtype=np.int64)  # one counter per Unicode code point
        for chunk in chunks:
            text = chunk.lower() if self.lowercase else chunk
            seen = _histogram(_code_points(text))
            counts[: len(seen)] += seen
        seen = np.flatnonzero(counts >= self.min_frequency)
        order = seen[np.argsort(-counts[seen], kind="stable")]  # most frequent first
        kept = [(chr(int(c)), int(counts[c])) for c in order]
        if self.max_vocab:  # the most frequent characters; the rest become <unk>
            kept = kept[: max(0, self.max_vocab - len(SPECIAL_TOKENS))]
        chars = sorted(c for c, _ in kept)
        vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
        for c in chars:
            vocab.setdefault(c, len(vocab))
        self.hf = _build_hf(vocab)
        if self.lowercase:
            from tokenizers import normalizers

            self.hf.normalizer = normalizers.Lowercase()
        self._index_vocab()
        # The id histogram of the text just read, so that tokenizing the same text again
        # need not count its ids a second time.
        points = np.flatnonzero(counts)
        histogram = np.bincount(self._lut[points], weights=counts[points], minlength=len(vocab))
        self.fit_id_counts = histogram.astype(np.int64)

    def _index_vocab(self) -> None:
        vocab = self.hf.get_vocab()
        small = np.uint16 if len(vocab) <= 1 << 16 else np.int32
        self._lut = np.full(0x110000, vocab[UNK], dtype=small)  # code point -> id
        for token, i in vocab.items():
            if len(token) == 1:
                self._lut[ord(token)] = i
        # ASCII byte -> id byte, when every id fits in a byte (bytes.translate).
        self._ascii_table = bytes(self._lut[:256].tolist()) if len(vocab) <= 256 else None
        self._id_to_char = {i: t for t, i in vocab.items()}
        self.lowercase = self.hf.normalizer is not None

    def encode(self, text: str) -> np.ndarray:
        return self.encode_chunk(text).astype(np.int64)

    def encode_chunk(self, text: str) -> np.ndarray:
        """Ids in the smallest unsigned type that holds them (the token file's, usually)."""
        if self.lowercase:
            text = text.lower()
        if self._ascii_table is not None and text.isascii():
            ids = text.encode("ascii").translate(self._ascii_table)
            return np.frombuffer(ids, dtype=np.uint8)
        return np.take(self._lut, _code_points(text))  # twice as fast as self._lut[...]

    def decode(self, ids: Sequence[int]) -> str:
        table = self._id_to_char
        return "".join(table.get(int(i), UNK) for i in ids)

    def describe(self) -> str:
        return f"char level, {self.vocab_size:,} tokens ({self.vocab_size - 2} characters)"
