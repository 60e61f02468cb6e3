"""Byte-level BPE, as GPT-2: lossless for any text, with no unknown tokens.

Merges are learned with the ``tokenizers`` BPE trainer over the corpus stream; the byte
alphabet is always in the vocabulary, so any prompt encodes. Text that spells a special token
(``<eos>``, ``<unk>``) is encoded as the bytes it is, never as the special token: a document
that quotes ``<eos>`` does not end there.
"""

from __future__ import annotations

from collections.abc import Iterable

from genseq.tokenization.base import SPECIAL_TOKENS, Tokenizer

DEFAULT_VOCAB_SIZE = 4096


class BpeTokenizer(Tokenizer):
    level = "bpe"

    default_vocab_size = DEFAULT_VOCAB_SIZE
    fit_may_sample = True
    default_min_frequency = 2

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
        self._fit_hf(trainer, chunks)
        hf.encode_special_tokens = True

    @classmethod
    def from_json(cls, text: str) -> BpeTokenizer:
        tokenizer = super().from_json(text)
        tokenizer.hf.encode_special_tokens = True  # a runtime flag: not kept in the file
        return tokenizer
