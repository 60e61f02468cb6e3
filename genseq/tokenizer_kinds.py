"""Which level wrote a tokenizer file, so that the level recorded beside it can be checked.

``meta.json`` and a checkpoint's ``config.json`` record the level, and the level picks the class
that reads ``tokenizer.json``. Every level's file is a Hugging Face tokenizer that any class
loads, so a wrong level reads the vocabulary as nonsense instead of failing: a character
vocabulary read at the abc level samples an empty tune and exits 0. The file's structure
(model, pre-tokenizer, decoder) tells the text levels apart; the music levels share one
structure and differ in their vocabularies. tests/test_door.py holds this to every level's
real files.
"""

from __future__ import annotations

import re
from pathlib import Path

from genseq.errors import GenseqError
from genseq.tokenization import EOS, UNK, Tokenizer, load_tokenizer

# (model, pre-tokenizer, decoder) as each level saves them.
STRUCTURES = {
    ("WordLevel", "Split", "Fuse"): ("char",),
    ("WordLevel", "Split", None): ("word",),
    ("BPE", "Sequence", "ByteLevel"): ("bpe",),
    ("WordLevel", "WhitespaceSplit", None): ("abc", "midi-melody", "midi-performance"),
}
MIDI_EVENT = re.compile(r"NOTE_ON_\d+|NOTE_OFF(_\d+)?|NO_EVENT|TIME_SHIFT_\d+|VELOCITY_\d+")
MELODY_GRID = re.compile(r"<steps_per_quarter=\d+>")


def _name(component: object) -> str | None:
    return None if component is None else type(component).__name__


def levels_of(tokenizer: Tokenizer) -> tuple[str, ...]:
    """The levels whose files look like this one (empty: no level's)."""
    hf = tokenizer.hf
    structure = (_name(hf.model), _name(hf.pre_tokenizer), _name(hf.decoder))
    levels = STRUCTURES.get(structure, ())
    if len(levels) > 1:
        return _music_levels(set(hf.get_vocab(with_added_tokens=True)) - {UNK, EOS})
    return levels


def _music_levels(tokens: set[str]) -> tuple[str, ...]:
    """A melody vocabulary holds its grid marker, a performance one only MIDI events, and
    an ABC one no MIDI events at all."""
    if any(MELODY_GRID.fullmatch(t) for t in tokens):
        return ("midi-melody",)
    events = sum(1 for t in tokens if MIDI_EVENT.fullmatch(t))
    if not events:
        return ("abc",)
    return ("midi-performance",) if events == len(tokens) else ()


def load_checked(path: Path, level: str, vocab_size: int, recorded_in: str) -> Tokenizer:
    """The tokenizer at ``path``, read at the ``level`` that ``recorded_in`` (meta.json or
    config.json) records, refused unless that level wrote it and it holds the ``vocab_size``
    tokens recorded there."""
    tokenizer = load_tokenizer(path, level)
    check_tokenizer(tokenizer, path, recorded_in)
    if tokenizer.vocab_size != vocab_size:
        raise GenseqError(
            f"{path}: {tokenizer.vocab_size:,} tokens, but {recorded_in} records {vocab_size:,}"
        )
    return tokenizer


def check_tokenizer(tokenizer: Tokenizer, path: Path, recorded_in: str) -> None:
    """Refuse a tokenizer file whose ids are not those of a vocabulary (0 to size - 1, with
    ``<unk>`` and ``<eos>`` first), which would index past the model's embedding, or that
    another level wrote than the one ``recorded_in`` names."""
    vocab = tokenizer.hf.get_vocab(with_added_tokens=True)
    size = tokenizer.vocab_size
    if len(vocab) != size or set(vocab.values()) != set(range(size)):
        raise GenseqError(f"{path}: its token ids are not 0 to {size - 1}")
    if vocab.get(UNK) != 0 or vocab.get(EOS) != 1:
        raise GenseqError(f"{path}: {UNK} and {EOS} are not ids 0 and 1")
    levels = levels_of(tokenizer)
    if tokenizer.level not in levels:
        written = f"written at the {' or '.join(levels)} level" if levels else "no level's file"
        raise GenseqError(f"{path}: {written}, but {recorded_in} says {tokenizer.level!r}")
