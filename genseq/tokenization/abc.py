"""ABC level: one token per musical symbol (folk-rnn style), one document per tune.

``genseq.music.abc_lexer`` turns a tune's text into tokens; this class gives them ids. The
vocabulary is saved as a Hugging Face ``WordLevel`` tokenizer over whitespace-separated
tokens, so ``tokenizer.json`` also reads folk-rnn style token strings (``M:6/8 K:Dmaj |: A``)
in any program that uses the ``tokenizers`` library.

The vocabulary describes itself: chord symbols, decorations and grace notes are in it only if
they were kept, rhythm (``R:jig``) and tempo (``Q:120``) tokens only if the corpus named
them, and when every tune was moved to one tonic all its key tokens share that tonic. A
loaded tokenizer takes its lexer options from its vocabulary (``prompt_options``), so prompts
and evaluated files are read as the training tunes were (a vocabulary from before rhythm and
tempo tokens existed reads neither field), and nothing but the vocabulary needs saving.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np

from genseq.tokenization.base import EOS, SPECIAL_TOKENS, SkipDocument
from genseq.tokenization.symbols import SymbolTokenizer


class AbcTokenizer(SymbolTokenizer):
    level = "abc"
    lossless = False
    splits_tunes = True  # prepare reads every source as a tunebook, one document per tune

    def __init__(
        self,
        hf=None,
        vocab_size: int | None = None,
        min_frequency: int | None = None,
        lowercase: bool = False,
        chords: bool = False,
        decorations: bool = False,
        grace: bool = False,
        normalise_unit: bool = True,
        transpose: str | None = None,
        augment_keys: int = 0,
        rhythm: bool = True,
        tempo: bool = True,
    ) -> None:
        super().__init__(hf, vocab_size, min_frequency, lowercase)
        from genseq.music.abc_lexer import LexOptions

        self.options = LexOptions(
            chords, decorations, grace, normalise_unit, transpose, rhythm, tempo
        )
        self.augment_keys = augment_keys

    # -- tokens --------------------------------------------------------------------------------
    def tune_tokens(self, text: str, training: bool = False) -> list[list[str]]:
        """The tune's tokens, then its transposed copies when augmenting a training tune."""
        from genseq.music.abc_lexer import AbcError, tokenize_tune, transpose_by

        try:
            tokens = tokenize_tune(text, self.options)
            variants = [tokens]
            if training:
                for shift in augment_shifts(self.augment_keys):
                    variants.append(transpose_by(tokens, shift))
        except AbcError as exc:
            raise SkipDocument(str(exc)) from None
        return variants

    def fit(self, chunks: Iterable[str]) -> None:
        """Count the tokens of every readable tune (each chunk is one tune)."""
        counts: Counter[str] = Counter()
        for text in chunks:
            try:
                for variant in self.tune_tokens(text, training=True):
                    counts.update(variant)
            except SkipDocument:
                continue
        ranked = sorted(
            (t for t, n in counts.items() if n >= self.min_frequency and t not in SPECIAL_TOKENS),
            key=lambda t: (-counts[t], t),
        )
        if self.max_vocab is not None:
            ranked = ranked[: max(0, self.max_vocab - len(SPECIAL_TOKENS))]
        self.set_vocabulary([*SPECIAL_TOKENS, *ranked])

    # -- the Tokenizer interface ---------------------------------------------------------------
    def encode_document(self, text: str) -> np.ndarray:
        """One tune as ids."""
        return self.token_ids(self.tune_tokens(text)[0])

    def encode_training_document(self, text: str) -> list[np.ndarray]:
        """One tune, then its transposed copies, as ids."""
        return [self.token_ids(variant) for variant in self.tune_tokens(text, training=True)]

    def encode(self, text: str) -> np.ndarray:
        """A tune with its header, or a fragment of tune body (read in ``M:4/4 L:1/8``)."""
        from genseq.music.abc_lexer import AbcError, tokenize_fragment

        try:
            if any(line.lstrip().startswith("K:") for line in text.splitlines()):
                return self.encode_document(text)
            return self.token_ids(tokenize_fragment(text, self.options))
        except (AbcError, SkipDocument) as exc:
            from genseq.errors import GenseqError

            raise GenseqError(f"the ABC prompt cannot be read: {exc}") from None

    def encode_chunk(self, text: str) -> np.ndarray:
        return self.encode_document(text)

    def decode(self, ids: Sequence[int]) -> str:
        """Token text, folk-rnn style (``M:6/8 K:Dmaj |: A 2``); ABC itself comes from
        ``genseq.music.abc_writer``."""
        return " ".join(self.tokens_of(ids))

    # -- what the vocabulary says --------------------------------------------------------------
    def kinds(self) -> set[str]:
        from genseq.music.abc_vocab import info

        return {info(t).kind for t in self.ids}

    def common_tonic(self) -> str | None:
        """The one tonic of every key token, when the corpus was moved to a common tonic."""
        from genseq.music.abc_vocab import info

        tonics = {info(t).tonic for t in self.ids if info(t).kind == "key"}
        return next(iter(tonics)) if len(tonics) == 1 else None

    def settings(self) -> dict[str, Any]:
        return {**asdict(self.options), "augment_keys": self.augment_keys}

    @classmethod
    def from_json(cls, text: str, **settings: Any) -> AbcTokenizer:
        """Without ``settings``, the lexer options are those the vocabulary implies."""
        tokenizer = super().from_json(text, **settings)
        if not settings:
            tokenizer.options = tokenizer.prompt_options()
        return tokenizer

    def prompt_options(self):
        """Lexer options that read a prompt the way the training tunes were read."""
        from genseq.music.abc_lexer import LexOptions

        kinds = self.kinds()
        return LexOptions(
            chords="chord_symbol" in kinds,
            decorations="decoration" in kinds,
            grace="grace" in kinds,
            normalise_unit="unit" not in kinds,
            transpose=self.common_tonic(),
            rhythm="rhythm" in kinds,
            tempo="tempo" in kinds,
        )

    def describe(self) -> str:
        tonic = self.common_tonic()
        moved = f", every tune in {tonic}" if tonic else ""
        return f"abc level, {self.vocab_size:,} tokens (one per musical symbol{moved})"


def augment_shifts(n: int) -> list[int]:
    """The ``n`` smallest transpositions: +1, -1, +2, -2... semitones."""
    shifts = []
    step = 1
    while len(shifts) < n:
        shifts.append(step)
        if len(shifts) < n:
            shifts.append(-step)
        step += 1
    return shifts


__all__ = ["EOS", "AbcTokenizer", "SkipDocument", "augment_shifts"]
