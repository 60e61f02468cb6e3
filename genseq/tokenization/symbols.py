"""The shared base of the music levels: a fixed vocabulary of symbols (ABC tokens or MIDI
events), saved as a Hugging Face ``WordLevel`` model over whitespace-split tokens, and read
by table lookup, since the music readers produce token strings, not text to split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from genseq.tokenization.base import UNK, Tokenizer


def hf_word_level(tokens: list[str]):
    """A ``tokenizers`` WordLevel model whose ids are the positions in ``tokens``."""
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import models, pre_tokenizers

    hf = HFTokenizer(models.WordLevel({t: i for i, t in enumerate(tokens)}, unk_token=UNK))
    hf.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return hf


class SymbolTokenizer(Tokenizer):
    """Symbols <-> ids through the vocabulary table (cached until ``hf`` is replaced)."""

    _ids: dict[str, int] | None = None

    def set_vocabulary(self, tokens: list[str]) -> None:
        self.hf = hf_word_level(tokens)
        self._ids = None

    @property
    def ids(self) -> dict[str, int]:
        if self._ids is None:
            self._ids = self.hf.get_vocab(with_added_tokens=True)
        return self._ids

    def token_ids(self, tokens: Sequence[str]) -> np.ndarray:
        ids, unk = self.ids, self.unk_id
        return np.fromiter((ids.get(t, unk) for t in tokens), dtype=np.int64, count=len(tokens))

    def tokens_of(self, ids: Sequence[int]) -> list[str]:
        return [self.hf.id_to_token(int(i)) for i in ids]
