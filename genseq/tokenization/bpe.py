"""Byte-level BPE, as GPT-2: lossless for any text, with no unknown tokens.

Merges are learned with the ``tokenizers`` BPE trainer over the corpus stream; the byte
alphabet is always in the vocabulary, so any prompt encodes. Text that spells a special token
(``<eos>``, ``<unk>``) is encoded as the bytes it is, never as the special token: a document
that quotes ``<eos>`` does not end there.

Large chunks are encoded a distinct word at a time, through a cache (``encode_chunk``): the
pre-tokenizer's regex and byte mapping were 80% of encoding, ahead of the ``tokenizers``
cache, and a megabyte of English holds about 150,000 words but only 25,000 distinct ones,
most of them seen in earlier megabytes.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable
from typing import Any

import numpy as np

from genseq.tokenization.base import SPECIAL_TOKENS, Tokenizer

DEFAULT_VOCAB_SIZE = 4096
# Where GPT-2's pre-tokenizer always starts a piece (Python's \s holds every space Oniguruma's
# does, so its \S is safe to use):
# - before a space followed by an ASCII letter or digit: its `` ?\p{L}+`` and `` ?\p{N}+``
#   take that space, and no other alternative matches across it; unless the run of non-spaces
#   that follows is 64 long, or would be once lowercased (U+0130 lowercases to two
#   characters): such runs are cut off first (``fit``), which parts them from the space;
# - after a line break between two non-spaces: no alternative goes on past a space that a
#   non-space follows, except from a space that takes a letter, digit or symbol. Used only
#   inside words that are too long to cache (text without such spaces: 30% slower to look for).
# Text cut there and encoded piece by piece gives the ids of the whole text (hypothesis tests).
_WORD_START = re.compile(r"(?= [A-Za-z0-9][^ \t\n\r\u0130]{0,62}(?:[ \t\n\r]|\Z))")
_LINE_START = re.compile(r"(?<=\S\n)(?=\S)")
WORD_CACHE_SIZE = 500_000  # distinct words whose ids encode_chunk keeps (100-150 MB)
CACHED_WORD_CHARS = 64  # longer words (a line without spaces) are encoded every time
ENCODE_BATCH = 16_384  # new words per call to tokenizers


class _WordIds:
    """The ids of each cached word, in one array, by slot (``BpeTokenizer.encode_chunk``)."""

    def __init__(self) -> None:
        self.flat = np.zeros(0, dtype=np.int32)
        self.starts = np.zeros(0, dtype=np.int64)
        self.lengths = np.zeros(0, dtype=np.int64)

    def extend(self, encodings) -> None:
        ids = [e.ids for e in encodings]
        lengths = np.fromiter(map(len, ids), np.int64, len(ids))
        more = np.fromiter(itertools.chain.from_iterable(ids), np.int32, int(lengths.sum()))
        self.starts = np.concatenate([self.starts, len(self.flat) + np.cumsum(lengths) - lengths])
        self.lengths = np.concatenate([self.lengths, lengths])
        self.flat = np.concatenate([self.flat, more])

    def size(self) -> tuple[int, int]:
        return len(self.flat), len(self.lengths)

    def truncate(self, size: tuple[int, int]) -> None:
        """Forget the words added after ``size()`` gave ``size``."""
        self.flat, self.starts, self.lengths = (
            self.flat[: size[0]],
            self.starts[: size[1]],
            self.lengths[: size[1]],
        )

    def gather(self, slots: np.ndarray) -> np.ndarray:
        """The ids of the words in ``slots``, one after another."""
        counts = self.lengths[slots]
        ends = np.cumsum(counts)
        if not len(ends) or not ends[-1]:
            return np.zeros(0, dtype=np.int64)
        # Output j is flat[start of its word's ids + its offset within them].
        shift = np.repeat(self.starts[slots] - (ends - counts), counts)
        return self.flat[np.arange(ends[-1]) + shift].astype(np.int64)


class BpeTokenizer(Tokenizer):
    level = "bpe"

    default_vocab_size = DEFAULT_VOCAB_SIZE
    fit_may_sample = True
    default_min_frequency = 2

    def __init__(self, hf=None, **options) -> None:
        super().__init__(hf, **options)
        self._forget_words()

    def _forget_words(self) -> None:
        self._word_slots: dict[str, int] = {}  # word -> its slot in _word_ids
        self._word_ids = _WordIds()

    def fit(self, chunks: Iterable[str]) -> None:
        from tokenizers import Regex, decoders, models, normalizers, pre_tokenizers, trainers
        from tokenizers import Tokenizer as HFTokenizer

        hf = HFTokenizer(models.BPE())
        # Runs of 64+ non-space characters (DNA, base64, a minified line) are cut into 64s
        # first: one huge "word" makes BPE training quadratic. Ordinary words are untouched.
        hf.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(r"\S{64}"), behavior="isolated"),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
        hf.decoder = decoders.ByteLevel()
        if self.lowercase:
            hf.normalizer = normalizers.Lowercase()
        trainer = trainers.BpeTrainer(
            vocab_size=max(self.max_vocab, 256 + len(SPECIAL_TOKENS)),
            min_frequency=self.min_frequency,
            special_tokens=SPECIAL_TOKENS,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        self.hf = hf
        self._forget_words()  # ids of the merges before
        self._fit_hf(trainer, chunks)
        hf.encode_special_tokens = True

    def encode_chunk(self, text: str) -> np.ndarray:
        """Ids of a large chunk, equal to ``encode(text)``, from a cache of each distinct
        word's ids: only the words not seen in earlier chunks go through ``tokenizers``.
        The cache is emptied when it holds ``WORD_CACHE_SIZE`` words; words longer than
        ``CACHED_WORD_CHARS`` are not kept (bounded memory)."""
        if len(self._word_slots) > WORD_CACHE_SIZE:
            self._forget_words()
        slots, store = self._word_slots, self._word_ids
        known = len(slots)
        words = _WORD_START.split(text)
        long_words: list[str] = []
        if words and max(map(len, words)) > CACHED_WORD_CHARS:
            words = [
                piece
                for word in words
                for piece in (_LINE_START.split(word) if len(word) > CACHED_WORD_CHARS else (word,))
            ]

            def slot(word: str) -> int:  # a long word: a slot of its own, below 0 for now
                if len(word) <= CACHED_WORD_CHARS:
                    return slots.setdefault(word, len(slots))
                long_words.append(word)
                return -len(long_words)

            found = map(slot, words)
        else:
            found = (slots.setdefault(word, len(slots)) for word in words)
        occurrences = np.fromiter(found, np.int64, len(words))
        fresh = np.flatnonzero(occurrences >= known)
        _, first = np.unique(occurrences[fresh], return_index=True)  # new slots, in order
        self._encode_into(store, [words[i] for i in fresh[first]])
        if not long_words:
            return store.gather(occurrences)
        kept = store.size()
        self._encode_into(store, long_words)  # after the cache, then taken out again
        occurrences[occurrences < 0] = kept[1] - 1 - occurrences[occurrences < 0]
        ids = store.gather(occurrences)
        store.truncate(kept)
        return ids

    def _encode_into(self, store: _WordIds, words: list[str]) -> None:
        for start in range(0, len(words), ENCODE_BATCH):  # bounded: an Encoding is large
            batch = words[start : start + ENCODE_BATCH]
            store.extend(self.hf.encode_batch_fast(batch, add_special_tokens=False))

    @classmethod
    def from_json(cls, text: str, **settings: Any) -> BpeTokenizer:
        tokenizer = super().from_json(text, **settings)
        tokenizer.hf.encode_special_tokens = True  # a runtime flag: not kept in the file
        return tokenizer
