"""Tokenizers: one interface (``base.Tokenizer``) with one class per level.

Every level saves to a Hugging Face ``tokenizers`` JSON file. The level is recorded beside it
(in ``meta.json`` and in checkpoint configs), and ``load_tokenizer`` uses it to pick the class.
Music encodings register new levels in ``LEVELS`` without touching the trainer or sampler.
"""

from __future__ import annotations

from pathlib import Path

from genseq.errors import GenseqError, brief
from genseq.tokenization.abc import AbcTokenizer
from genseq.tokenization.base import EOS, UNK, SkipDocument, Tokenizer
from genseq.tokenization.bpe import BpeTokenizer
from genseq.tokenization.char import CharTokenizer
from genseq.tokenization.midi import MelodyTokenizer, PerformanceTokenizer
from genseq.tokenization.word import WordTokenizer

LEVELS: dict[str, type[Tokenizer]] = {
    "char": CharTokenizer,
    "word": WordTokenizer,
    "bpe": BpeTokenizer,
    "abc": AbcTokenizer,
    "midi-melody": MelodyTokenizer,
    "midi-performance": PerformanceTokenizer,
}
MIDI_LEVELS = ("midi-melody", "midi-performance")

__all__ = [
    "EOS",
    "LEVELS",
    "MIDI_LEVELS",
    "UNK",
    "SkipDocument",
    "Tokenizer",
    "load_tokenizer",
    "new_tokenizer",
]


def new_tokenizer(level: str, **options) -> Tokenizer:
    if level not in LEVELS:
        raise GenseqError(f"unknown level {level!r}; choose one of {', '.join(LEVELS)}")
    return LEVELS[level](**options)


def load_tokenizer(path: Path, level: str) -> Tokenizer:
    if level not in LEVELS:
        raise GenseqError(f"{path}: unknown tokenizer level {level!r}")
    try:
        return LEVELS[level].load(Path(path))
    except GenseqError:
        raise
    except Exception as exc:  # a corrupt or foreign JSON file
        raise GenseqError(f"{path}: not a readable {level} tokenizer ({brief(str(exc))})") from None
