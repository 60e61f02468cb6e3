"""Character level: one token per Unicode code point, lossless, as char-rnn.

Saved as a ``tokenizers`` WordLevel model whose pre-tokenizer splits every character and whose
decoder fuses them back, so other tools can load the file. Encoding here bypasses the generic
path: a table from code point to id turns a megabyte chunk into ids with one numpy gather,
which keeps tokenizing large corpora bound by disk rather than Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from genseq.tokenization.base import SPECIAL_TOKENS, UNK, Tokenizer


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
            points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
            counts += np.bincount(points, minlength=len(counts))
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

    def _index_vocab(self) -> None:
        vocab = self.hf.get_vocab()
        self._lut = np.full(0x110000, vocab[UNK], dtype=np.int32)  # code point -> id
        for token, i in vocab.items():
            if len(token) == 1:
                self._lut[ord(token)] = i
        self._id_to_char = {i: t for t, i in vocab.items()}
        self.lowercase = self.hf.normalizer is not None

    def encode(self, text: str) -> np.ndarray:
        if self.lowercase:
            text = text.lower()
        points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        return self._lut[points].astype(np.int64)

    def encode_chunk(self, text: str) -> np.ndarray:
        return self.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        table = self._id_to_char
        return "".join(table.get(int(i), UNK) for i in ids)

    def describe(self) -> str:
        return f"char level, {self.vocab_size:,} tokens ({self.vocab_size - 2} characters)"
