"""Tokenizers: lossless round trips (hypothesis), unknown words, line breaks, files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from genseq.tokenization import LEVELS, load_tokenizer, new_tokenizer
from genseq.tokenization.word import join_words

# abc: test_music_abc.py; midi-*: test_music_midi*.py
TEXT_LEVELS = sorted(level for level in LEVELS if level != "abc" and not level.startswith("midi"))

FAST = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

ALPHABET = "abcdefghij XYZ,.!?'\n\t\r-éü日本😀"


@pytest.fixture(scope="module")
def char_tok():
    tok = new_tokenizer("char")
    tok.fit(iter([ALPHABET[:10], ALPHABET[10:]]))  # chunks: the fit streams
    return tok


@pytest.fixture(scope="module")
def bpe_tok():
    tok = new_tokenizer("bpe", vocab_size=300)
    tok.fit(iter(["hello world, hello there\n", "the quick brown fox 😀\n"] * 20))
    return tok


@given(text=st.text(alphabet=ALPHABET, max_size=200))
@FAST
def test_char_round_trip(char_tok, text):
    ids = char_tok.encode(text)
    assert char_tok.decode(ids) == text
    assert len(ids) == len(text)  # one token per code point


@given(text=st.text(alphabet=ALPHABET, max_size=100))
@FAST
def test_char_fast_path_matches_the_tokenizers_file(char_tok, text):
    """The numpy encoder and the saved Hugging Face file give the same ids."""
    from tokenizers import Tokenizer as HF

    hf = HF.from_str(char_tok.to_json())
    assert char_tok.encode(text).tolist() == hf.encode(text, add_special_tokens=False).ids
    assert char_tok.encode_chunk(text).tolist() == char_tok.encode(text).tolist()


@given(text=st.text(max_size=100))
@FAST
def test_char_encoders_agree_beyond_a_byte_of_ids(text):
    """With more than 256 ids the ASCII byte table is off: the code-point table must agree."""
    from tokenizers import Tokenizer as HF

    tok = new_tokenizer("char")
    tok.fit(iter(["".join(map(chr, range(32, 400))), "abc\n"]))
    assert tok.vocab_size > 256
    expected = HF.from_str(tok.to_json()).encode(text, add_special_tokens=False).ids
    assert tok.encode_chunk(text).tolist() == expected


@given(text=st.text(max_size=100))
@example(text="日本")  # every character in the Basic Multilingual Plane: 16-bit units
@example(text="日😀")  # one beyond it: UTF-32
@example(text="é")  # Latin-1, not ASCII
@FAST
def test_char_code_points_in_the_narrowest_units(text):
    from genseq.tokenization.char import _code_points

    points = _code_points(text)
    assert points.tolist() == [ord(c) for c in text]
    widest = max(map(ord, text), default=0)
    assert points.itemsize == (1 if widest < 128 else 2 if widest < 0x10000 else 4)


def test_char_unknown_and_specials(char_tok):
    ids = char_tok.encode("aqb")  # q was never seen
    assert ids.tolist() == [char_tok.encode("a")[0], char_tok.unk_id, char_tok.encode("b")[0]]
    assert char_tok.unk_id == 0 and char_tok.eos_id == 1
    assert char_tok.never_generate == [char_tok.unk_id]


def test_char_vocab_cap_keeps_most_frequent():
    tok = new_tokenizer("char", vocab_size=4)  # 2 specials + the 2 most frequent characters
    tok.fit(iter(["aaaa bbb cc d"]))
    assert tok.vocab_size == 4
    assert tok.decode(tok.encode("a b")) == "a <unk>"
    assert set(tok.hf.get_vocab()) == {"<unk>", "<eos>", "a", " "}


ASCII_OR_ANY = st.text(st.characters(max_codepoint=127), max_size=300) | st.text(max_size=300)


@given(chunks=st.lists(ASCII_OR_ANY, min_size=1, max_size=4))
@example(chunks=["abc", "日本é", "😀x"])  # bytes, 16-bit and 32-bit code points
@FAST
def test_char_fit_counts_every_character(chunks):
    """The fit's count of each id (a byte pair at a time for ASCII chunks, as 16- or 32-bit
    code points for the others) is the count of the encoded text's ids."""
    from collections import Counter

    tok = new_tokenizer("char")
    tok.fit(iter(chunks))
    expected = Counter("".join(chunks))
    assert tok.vocab_size == 2 + len(expected)
    text = "".join(chunks)
    assert tok.decode(tok.encode_chunk(text)) == text
    for char, n in expected.items():
        assert tok.fit_id_counts[tok.encode(char)[0]] == n
    ids = np.concatenate([tok.encode(c) for c in chunks])
    assert tok.unk_id not in ids.tolist()
    assert np.array_equal(tok.fit_id_counts, np.bincount(ids, minlength=tok.vocab_size))


@given(text=st.text(max_size=200))
@FAST
def test_bpe_round_trip_any_text(bpe_tok, text):
    """Byte-level BPE is lossless for any Unicode text, seen or not."""
    ids = bpe_tok.encode(text)
    assert bpe_tok.decode(ids) == text
    assert bpe_tok.unk_id not in ids.tolist()


# Spaces before and after letters, digits (² is a digit to the pre-tokenizer, not to Python's
# \d), apostrophes, other spaces (no-break, thin, \x1c, which Python alone calls a space),
# marks, line breaks and a long run.
WORD_PARTS = (
    " ",
    " ",
    "  ",
    "\n",
    "\t",
    "\r\n",
    "a",
    "Zq",
    "the",
    "7",
    "42",
    "²",
    "½",
    "'s",
    "'",
    "ll",
    ",",
    ".",
    "!",
    "é",
    "\u0301",
    "\xa0",
    "\u2009",
    "\x1c",
    "日本",
    "😀",
    "-",
    "x" * 70,
    "İ",  # lowercases to two characters
    "日本語の文章" * 12,  # a line without spaces, longer than a cached word
)
WORDY = st.lists(st.sampled_from(WORD_PARTS), max_size=60).map("".join) | st.text(max_size=200)


@pytest.fixture(scope="module", params=[False, True], ids=["cased", "lowercase"])
def wordy_bpe(request):
    """Merges for runs of spaces and line breaks, digits and marks, as well as words."""
    import random

    rng = random.Random(0)
    tok = new_tokenizer("bpe", vocab_size=600, min_frequency=1, lowercase=request.param)
    tok.fit(iter(["".join(rng.choices(WORD_PARTS, k=5000)) for _ in range(4)]))
    return tok


@given(text=WORDY)
@example(text="a  " + "x" * 70)  # the space before a run of 64 belongs to the spaces before
@example(text="a  b" + "İ" * 40)  # ... also when the run reaches 64 only once lowercased
@example(text="a \n日本\nb\n\n c" + "日本" * 40)  # a line break cuts between non-spaces only
@FAST
def test_bpe_chunk_encoding_is_the_whole_texts(wordy_bpe, text):
    """``encode_chunk`` cuts the text where GPT-2's pre-tokenizer always starts a piece and
    takes each word's ids from a cache (kept across examples here): the ids must be exactly
    those of encoding the whole text at once."""
    assert wordy_bpe.encode_chunk(text).tolist() == wordy_bpe.encode(text).tolist()


def test_bpe_word_cache_is_bounded_and_refitting_empties_it(monkeypatch):
    from genseq.tokenization import bpe

    tok = new_tokenizer("bpe", vocab_size=300)
    tok.fit(iter(["the cat sat on the mat\n"] * 50))
    monkeypatch.setattr(bpe, "WORD_CACHE_SIZE", 10)
    monkeypatch.setattr(bpe, "ENCODE_BATCH", 3)  # new words go to tokenizers 3 at a time
    for n in range(30):
        text = f"word{n} w{n}x the cat, {n} mats\n"
        assert tok.encode_chunk(text).tolist() == tok.encode(text).tolist()
        assert len(tok._word_slots) <= 10 + 8  # at most the bound and one chunk's words
    long = "x" * (bpe.CACHED_WORD_CHARS + 1)
    text = f"the {long} cat\n{long}\n"
    assert tok.encode_chunk(text).tolist() == tok.encode(text).tolist()
    assert long not in tok._word_slots and f" {long}" not in tok._word_slots
    assert len(tok._word_ids.lengths) == len(tok._word_slots)  # its ids are not kept either
    tok.fit(iter(["a different corpus: mats, words and numbers 123\n"] * 50))
    assert not tok._word_slots  # the old merges' ids are gone
    text = "the cat sat on the mat\n"
    assert tok.encode_chunk(text).tolist() == tok.encode(text).tolist()


@pytest.mark.parametrize("level", TEXT_LEVELS)
def test_chunk_encoding_in_pieces_round_trips(level):
    """Large chunks are encoded as parallel pieces; the text comes back whole."""
    from genseq.tokenization.base import split_pieces

    text = "".join(f"line {i}: the quick brown fox, 😀\n" for i in range(5000))
    assert "".join(split_pieces(text, 1000)) == text
    assert len(split_pieces(text, 1000)) > 10
    tok = new_tokenizer(level)
    tok.fit(iter([text]))
    ids = tok.encode_chunk(text)
    if tok.lossless:
        assert tok.decode(ids) == text
    assert ids.tolist() == tok.encode(text).tolist()


WORDS = ["love", "night", "don't", "well-known", "we", "sing", "Moon"]
PUNCT = [",", ".", "!", "?", "(", ")"]


@st.composite
def normal_form_text(draw):
    """Text in the word tokenizer's normal form: what decode(encode(x)) must give back."""
    tokens = draw(st.lists(st.sampled_from(WORDS + PUNCT + ["\n"]), max_size=40))
    return join_words(tokens)


@pytest.fixture(scope="module")
def word_tok():
    tok = new_tokenizer("word")
    tok.fit(iter([" ".join(WORDS + PUNCT) + "\n", "love love night\n"]))
    return tok


@given(text=normal_form_text())
@FAST
def test_word_round_trip_normal_form(word_tok, text):
    assert word_tok.decode(word_tok.encode(text)) == text


@given(text=st.text(alphabet="ab1_ '-\n\t.,éü日😀", max_size=80) | st.text(max_size=80))
@FAST
def test_word_pre_tokenizer_cuts_as_the_three_step_rule(text):
    r"""The one-pattern pre-tokenizer splits text exactly as the three Splits of older
    vocabularies: drop spaces, isolate line breaks, isolate punctuation (a ' or - counts as
    punctuation unless a word character is on both sides). Older files wrote the lookarounds
    as bare \w, which in Oniguruma also takes "¼": they keep their own rule."""
    from tokenizers import Regex, pre_tokenizers

    from genseq.tokenization.word import _empty_hf

    reference = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(r"[^\S\n]+"), behavior="removed"),
            pre_tokenizers.Split(Regex(r"\n"), behavior="isolated"),
            pre_tokenizers.Split(
                Regex(r"[^\w\s'\-]|(?<![\w])['\-]|['\-](?![\w])"), behavior="isolated"
            ),
        ]
    )
    pieces = [w for w, _ in _empty_hf(False).pre_tokenizer.pre_tokenize_str(text)]
    assert pieces == [w for w, _ in reference.pre_tokenize_str(text)]


def test_word_keeps_line_breaks(word_tok):
    text = "we sing\n\nlove night\n"
    ids = word_tok.encode(text).tolist()
    newline = word_tok.token_to_id("\n")
    assert ids.count(newline) == 3
    assert word_tok.decode(ids) == text


def test_word_unknown_words_map_to_unk(word_tok):
    ids = word_tok.encode("we sing zebras tonight\n").tolist()
    assert ids.count(word_tok.unk_id) == 2
    assert word_tok.decode(ids) == "we sing <unk> <unk>\n"


def test_word_vocab_cap_and_min_frequency():
    text = "a a a a b b b c c d\n"
    capped = new_tokenizer("word", vocab_size=4)  # <unk>, <eos> + the 2 most frequent
    capped.fit(iter([text]))
    assert set(capped.hf.get_vocab()) == {"<unk>", "<eos>", "a", "b"}
    frequent = new_tokenizer("word", min_frequency=3)
    frequent.fit(iter([text]))
    assert {"a", "b"} <= set(frequent.hf.get_vocab())
    assert "c" not in frequent.hf.get_vocab()


def test_word_lowercase():
    tok = new_tokenizer("word", lowercase=True)
    tok.fit(iter(["Moon moon MOON\n"]))
    ids = tok.encode("MoOn\n").tolist()
    assert tok.unk_id not in ids
    assert tok.decode(ids) == "moon\n"


@pytest.mark.parametrize("level", TEXT_LEVELS)
def test_save_and_load_give_the_same_tokenizer(tmp_path, level):
    tok = new_tokenizer(level)
    tok.fit(iter(["Hello there, friend.\nHow are you?\n"] * 5))
    path = tmp_path / "tokenizer.json"
    tok.save(path)
    json.loads(path.read_text())  # a plain Hugging Face tokenizers JSON file
    again = load_tokenizer(path, level)
    text = "Hello friend.\nHow are you?\n"
    assert np.array_equal(again.encode(text), tok.encode(text))
    assert again.vocab_size == tok.vocab_size
    assert again.decode(again.encode(text)) == tok.decode(tok.encode(text))


def test_loading_a_foreign_file_is_a_clear_error(tmp_path):
    from genseq.errors import GenseqError

    path = tmp_path / "tokenizer.json"
    path.write_text('{"not": "a tokenizer"}')
    with pytest.raises(GenseqError, match="not a readable char tokenizer"):
        load_tokenizer(path, "char")


def test_literal_special_tokens_in_text():
    """BPE encodes text that spells <eos> or <unk> as plain bytes; word level reads a literal
    <unk> as the unknown word (WikiText's convention) without counting its pieces as words."""
    text = "a <unk> b <eos> c\n" * 20
    bpe = new_tokenizer("bpe", vocab_size=300)
    bpe.fit(iter([text]))
    ids = bpe.encode(text).tolist()
    assert bpe.eos_id not in ids and bpe.unk_id not in ids
    assert bpe.decode(ids) == text
    again = load_tokenizer_from_text(bpe)
    assert again.encode(text).tolist() == ids
    word = new_tokenizer("word")
    word.fit(iter([text]))
    assert not {"<", "unk", ">"} & set(word.hf.get_vocab())
    assert word.unk_id in word.encode("a <unk> b").tolist()


def load_tokenizer_from_text(tokenizer):
    return type(tokenizer).from_json(tokenizer.to_json())


def test_bpe_copes_with_one_enormous_word():
    """A 300,000-character line without spaces (DNA, base64) would make BPE training
    quadratic; it is cut into 64-character runs and still round-trips."""
    import random

    rng = random.Random(0)
    text = "".join(rng.choice("ACGT") for _ in range(300_000)) + "\nshort words here\n"
    tok = new_tokenizer("bpe", vocab_size=300)
    tok.fit(iter([text]))
    assert tok.decode(tok.encode_chunk(text)) == text


REBUILD_TUNES = [
    "X:1\nT:One\nM:4/4\nL:1/8\nK:G\nGABc d2B2 | c2A2 G4 |]\n",
    "X:2\nT:Two\nM:3/4\nL:1/8\nK:D\nd2 f2 a2 | g4 f2 |]\n",
]


def _fitted(level: str, options: dict):
    tok = new_tokenizer(level, **options)
    if level in TEXT_LEVELS:
        tok.fit(iter(["Hello there, friend.\nHow are you?\n"] * 5))
    else:
        tok.fit(iter(REBUILD_TUNES))  # the MIDI levels read ABC tunes too
    return tok


@pytest.mark.parametrize(
    ("level", "options"),
    [
        ("char", {"lowercase": True}),
        ("word", {}),
        ("bpe", {"vocab_size": 300}),
        ("abc", {"chords": True, "grace": True, "augment_keys": 2}),
        ("midi-melody", {"steps_per_quarter": 2, "track": "Tune", "augment_keys": 1}),
        ("midi-performance", {"program": 0, "augment_keys": 1}),
    ],
)
def test_a_tokenizer_is_rebuilt_from_its_json_and_settings(level, options):
    """Encoding worker processes rebuild the parent's tokenizer this way; the options that
    the vocabulary file does not hold (the lexer's, augmentation, the MIDI track) come back."""
    tok = _fitted(level, options)
    again = LEVELS[level].from_json(tok.to_json(), **tok.settings())
    assert again.settings() == tok.settings()
    assert again.reads_midi == tok.reads_midi
    if level in ("char", "word", "bpe"):
        text = "Hello Friend.\nHow are you?\n"
        assert np.array_equal(again.encode_chunk(text), tok.encode_chunk(text))
        return
    copies = tok.encode_training_document(REBUILD_TUNES[0])
    assert len(copies) == 1 + options["augment_keys"]
    for mine, theirs in zip(copies, again.encode_training_document(REBUILD_TUNES[0]), strict=True):
        assert np.array_equal(mine, theirs)
    # The file alone does not hold them: a test that the settings are what brings them back.
    assert LEVELS[level].from_json(tok.to_json()).settings() != tok.settings()


def test_every_level_declares_whether_it_reads_midi():
    assert {level: cls.reads_midi for level, cls in LEVELS.items()} == {
        "char": False,
        "word": False,
        "bpe": False,
        "abc": False,
        "midi-melody": True,
        "midi-performance": True,
    }
