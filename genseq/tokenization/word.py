"""Word level: words and punctuation are tokens, line breaks are tokens, the rest is unknown.

Lyrics and poems must keep their shape, so ``"\\n"`` is a token of its own. The vocabulary keeps
the ``vocab_size`` most frequent words (at least ``min_frequency`` occurrences) and maps every
other word to ``<unk>``, as the Keras ``Tokenizer``'s ``num_words``/``oov_token`` do.
Apostrophes and hyphens inside words stay in the word (``don't``, ``well-known``).

Decoding joins tokens with single spaces, except around line breaks, before closing punctuation
and after opening brackets, so text in that normal form round-trips exactly.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from genseq.tokenization.base import EOS, SPECIAL_TOKENS, UNK, Tokenizer

DEFAULT_VOCAB_SIZE = 20_000
NO_SPACE_BEFORE = frozenset(".,;:!?)]}%")
NO_SPACE_AFTER = frozenset("([{")
# One token: a line break, a word (apostrophes and hyphens only between word characters), or
# one punctuation character. Other whitespace separates tokens and is dropped. One inverted
# Split with this pattern reads text twice as fast as the three Splits (spaces, line breaks,
# punctuation) that earlier vocabularies saved, and cuts it the same way (tested).
# ``[\w]``, not ``\w``: Oniguruma's bare \w also takes numbers such as "¼" and "²", its class
# form does not, and punctuation is the complement of the class form.
TOKEN = r"\n|[\w]+(?:['\-][\w]+)*|[^\w\s]"


def _empty_hf(lowercase: bool):
    from tokenizers import Regex, models, normalizers, pre_tokenizers
    from tokenizers import Tokenizer as HFTokenizer

    hf = HFTokenizer(models.WordLevel(unk_token=UNK))
    hf.pre_tokenizer = pre_tokenizers.Split(Regex(TOKEN), behavior="removed", invert=True)
    if lowercase:
        hf.normalizer = normalizers.Lowercase()
    return hf


def join_words(tokens: Sequence[str]) -> str:
    """Detokenize: the inverse of the pre-tokenizer on text in normal form."""
    out: list[str] = []
    prev: str | None = None
    for tok in tokens:
        if tok == EOS:
            tok = "\n"
        if not (
            prev is None
            or prev == "\n"
            or tok == "\n"
            or tok in NO_SPACE_BEFORE
            or prev in NO_SPACE_AFTER
        ):
            out.append(" ")
        out.append(tok)
        prev = tok
    return "".join(out)


class WordTokenizer(Tokenizer):
    level = "word"
    lossless = False

    default_vocab_size = DEFAULT_VOCAB_SIZE
    fit_may_sample = True

    def fit(self, chunks: Iterable[str]) -> None:
        from tokenizers import trainers

        self.hf = _empty_hf(self.lowercase)
        trainer = trainers.WordLevelTrainer(
            vocab_size=self.max_vocab,
            min_frequency=self.min_frequency,
            special_tokens=SPECIAL_TOKENS,
            show_progress=False,
        )
        # A literal <unk> in the text (WikiText's convention) encodes as the unknown word; it
        # must not be counted as the words "<", "unk" and ">".
        plain = (chunk.replace(UNK, " ").replace(EOS, " ") for chunk in chunks)
        self._fit_hf(trainer, plain)

    def decode(self, ids: Sequence[int]) -> str:
        return join_words([self.hf.id_to_token(int(i)) for i in ids])

    def describe(self) -> str:
        return f"word level, {self.vocab_size:,} tokens (unknown words -> {UNK})"
