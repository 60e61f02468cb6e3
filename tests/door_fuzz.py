"""Mutation fuzzers for the two loaders that take files from outside: checkpoints and data
directories (shared by tests/test_door.py and benchmarks/fuzz_loaders.py).

Each fuzz input is a real checkpoint or data directory copied and then damaged by one to three
mutations drawn from a ``random.Random``: a JSON value set, deleted or retyped anywhere in
config.json or meta.json, a file truncated, bit-flipped, overwritten, extended, emptied,
deleted or swapped for a directory, a token id set past the vocabulary, a tokenizer swapped for
another level's. The loader must then either load something usable or raise a GenseqError with
a one-line message; anything else (another exception, a multi-line message, a slow load) is a
failure. The suite draws the Random from hypothesis (``st.randoms``), which also shrinks a
failing input; the benchmark script uses seeded Randoms for as long as it is given.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from genseq.errors import GenseqError

SLOW_S = 5.0  # a load that takes longer than this on a tiny input counts as a hang
LEVEL_TEXTS = {
    "char": "the night is long\n" * 20,
    "word": "the night is long and we sing\n" * 20,
    "bpe": "the night is long and we sing under a silver moon\n" * 40,
}

# JSON values that have broken loaders: wrong types, sizes past every bound, non-finite
# numbers, paths out of the directory, other levels' and dtypes' names.
# fmt: off
NASTY = [
    None, True, False, 0, -1, 1, 2, 3, 255, 256, 65535, 65536, 2**31, 2**32, 2**63, 10**100,
    -(10**100), 0.5, 1.0, -0.0, 1e308, float("inf"), float("-inf"), float("nan"), "", "x",
    "char", "word", "bpe", "abc", "midi-melody", "midi-performance", "lstm", "gru", "rnn-tanh",
    "transformer", "uint8", "int8", "int64", "float32", "object", "uint16", "uint32",
    "../../../../etc/group", "/etc/passwd", "train.bin", "val.bin", "tokenizer.json",
    "genseq-data", "genseq-checkpoint", [], [0], [1, 2], [10**9], [[]], {}, {"a": 1}, "\udcff",
    16384, 100000, "x" * 100_000, "<huge number>",
]
# fmt: on
HUGE_NUMBER = "9" * 5000  # more digits than Python's json reads


@dataclass
class Outcome:
    """What one fuzz input did: ``loaded`` or ``refused`` (one line), or ``failure`` with the
    traceback or reason, and the mutations that made it."""

    kind: str
    mutations: list[str]
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Bases:
    """Real inputs the mutations start from."""

    checkpoints: list[Path]
    data_dirs: list[Path]
    tokenizer_files: list[Path] = field(default_factory=list)  # every level's, for swaps


# -- base inputs ---------------------------------------------------------------------------------


def other_level_tokenizers(out: Path) -> list[Path]:
    """A tokenizer.json of every level, fitted on a few lines (or the fixed MIDI vocabularies)."""
    from genseq.tokenization import LEVELS, new_tokenizer

    tune = "X:1\nT:a\nM:4/4\nL:1/8\nK:D\nABcd efga|bagf edcB|\n"
    texts = {**LEVEL_TEXTS, "abc": tune}
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for level in LEVELS:
        options = {"pitch_range": (55, 72)} if level == "midi-melody" else {}
        tokenizer = new_tokenizer(level, **options)
        tokenizer.fit([texts[level]] if level in texts else [])
        path = out / f"{level}.json"
        tokenizer.save(path)
        paths.append(path)
    return paths


def build_bases(work: Path, run: Path | None = None, data: Path | None = None) -> Bases:
    """A trained tiny checkpoint and its data directory (``run``/``data`` when given, else made
    here in seconds), the shipped ABC checkpoint, and every level's tokenizer file."""
    repo = Path(__file__).resolve().parents[1]
    if data is None:
        data = _tiny_data(work / "data")
    if run is None:
        run = _tiny_run(work / "run", data)
    checkpoints = [run / "best", repo / "checkpoints" / "folk-tunes"]
    return Bases(checkpoints, [data], other_level_tokenizers(work / "tokenizers"))


def _tiny_data(out: Path) -> Path:
    from genseq.corpus import resolve_sources
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    out.parent.mkdir(parents=True, exist_ok=True)
    text = out.parent / "lyrics.txt"
    words = "the night is long and we sing under a silver moon while rivers run home".split()
    rng = random.Random(0)
    text.write_text("".join(" ".join(rng.choices(words, k=5)) + "\n" for _ in range(400)))
    tokenize_corpus(resolve_sources([str(text)]), out, TokenizeOptions(level="char"))
    return out


def _tiny_run(out: Path, data: Path) -> Path:
    from genseq.data import open_data
    from genseq.plan import TrainConfig
    from genseq.train import Trainer

    cfg = TrainConfig(
        hidden_size=16, embed_size=8, seq_len=16, batch_size=4, device="cpu", max_steps=10
    )
    Trainer(cfg, open_data(data), out).run()
    return out


# -- mutations -----------------------------------------------------------------------------------


def nasty_value(rng: random.Random, like: object = None):
    """A JSON value: a known troublemaker, or one near ``like`` (a size a little off)."""
    if isinstance(like, int) and not isinstance(like, bool) and rng.random() < 0.4:
        return rng.choice([like + rng.randint(-3, 3), like * rng.choice([2, 4, 64, 1024])])
    return rng.choice(NASTY)


def _paths(value, prefix=()) -> list[tuple]:
    """Every key path into a JSON value (dicts and lists)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value[:50]):
            found += _paths(child, (*prefix, i))
    return found


def edit_json(rng: random.Random, path: Path) -> str:
    """Set, delete or add one value anywhere in a JSON file; or nest it too deep to parse."""
    try:
        doc = json.loads(path.read_text("utf-8"))
    except (ValueError, RecursionError):  # damaged by an earlier mutation
        return damage_bytes(rng, path)
    if rng.random() < 0.03:
        path.write_text("[" * 100_000 + "]" * 100_000)
        return f"{path.name}: nested 100,000 deep"
    where = rng.choice(_paths(doc)[1:] or [()])
    if not where:
        doc = nasty_value(rng)
        path.write_text(json.dumps(doc))
        return f"{path.name} = {doc!r}"[:200]
    parent = doc
    for key in where[:-1]:
        parent = parent[key]
    key, action = where[-1], rng.random()
    if action < 0.15 and isinstance(parent, dict):
        del parent[key]
        change = "deleted"
    elif action < 0.2 and isinstance(parent, dict):
        parent[str(rng.choice(NASTY))] = nasty_value(rng)
        change = "a key added beside it"
    else:
        parent[key] = nasty_value(rng, parent[key])
        change = f"= {parent[key]!r}"
    text = json.dumps(doc, ensure_ascii=False).replace('"<huge number>"', HUGE_NUMBER)
    path.write_text(text, "utf-8", errors="surrogatepass")
    return f"{path.name}: {'.'.join(map(str, where))} {change[:100]}"


def damage_bytes(rng: random.Random, path: Path) -> str:
    """Truncate, flip bits in, overwrite, extend, empty, delete or replace a file."""
    data = bytearray(path.read_bytes())
    action = rng.choice(["truncate", "flip", "flip-head", "overwrite", "extend", "empty", "gone"])
    if action == "gone" or (action == "empty" and rng.random() < 0.3):
        path.unlink()
        if rng.random() < 0.3:
            path.mkdir()
            return f"{path.name}: replaced by a directory"
        return f"{path.name}: deleted"
    if action == "empty":
        data = bytearray()
    elif action == "truncate":
        data = data[: rng.randrange(len(data) or 1)]
    elif action in ("flip", "flip-head") and data:
        span = min(len(data), 256) if action == "flip-head" else len(data)
        for _ in range(rng.randint(1, 8)):
            bit = rng.randrange(span * 8)
            data[bit // 8] ^= 1 << (bit % 8)
    elif action == "overwrite" and data:
        at = rng.randrange(len(data))
        data[at : at + 16] = rng.randbytes(min(16, len(data) - at))
    else:
        data += rng.randbytes(rng.choice([1, 2, 3, 7, 64, 4096]))
    path.write_bytes(bytes(data))
    return f"{path.name}: {action}"


def set_token(rng: random.Random, path: Path, dtype: str) -> str:
    """One id of a token file set to a value of its dtype, most likely past the vocabulary."""
    import numpy as np

    tokens = np.fromfile(path, dtype=dtype) if path.is_file() else None
    if tokens is None or not len(tokens):
        return damage_bytes(rng, path) if path.is_file() else "nothing to set"
    top = np.iinfo(dtype).max
    value = rng.choice([top, top - 1, 1 << 15, 255, 256, min(top, int(tokens.max()) + 1), 0])
    tokens[rng.randrange(len(tokens))] = value
    tokens.tofile(path)
    return f"{path.name}: an id set to {value}"


def swap_tokenizer(rng: random.Random, path: Path, pool: list[Path]) -> str:
    if not pool:
        return "no tokenizer to swap in"
    other = rng.choice(pool)
    if path.is_dir():
        shutil.rmtree(path)
    shutil.copyfile(other, path)
    return f"{path.name}: swapped for {other.stem}'s"


def mutate_checkpoint(rng: random.Random, ckpt: Path, pool: list[Path]) -> list[str]:
    files = ["config.json"] * 4 + ["model.safetensors"] * 3 + ["tokenizer.json"]
    return [_mutate(rng, ckpt / rng.choice(files), pool) for _ in range(_how_many(rng))]


def mutate_data(rng: random.Random, data: Path, pool: list[Path]) -> list[str]:
    files = ["meta.json"] * 4 + ["train.bin", "val.bin"] * 2 + ["tokenizer.json"]
    dtype = _dtype_of(data)
    return [_mutate(rng, data / rng.choice(files), pool, dtype) for _ in range(_how_many(rng))]


def _how_many(rng: random.Random) -> int:
    return rng.choice([1, 1, 1, 2, 3])


def _mutate(rng: random.Random, path: Path, pool: list[Path], dtype: str | None = None) -> str:
    """One mutation of one file, of a kind that suits it."""
    if not path.is_file():
        return f"{path.name}: already gone"
    pick = rng.random()
    if path.name == "tokenizer.json":
        if pick < 0.35:
            return swap_tokenizer(rng, path, pool)
        if pick < 0.7:
            return edit_json(rng, path)
    elif path.suffix == ".json" and pick < 0.85:
        return edit_json(rng, path)
    elif path.suffix == ".bin" and dtype and pick < 0.5:
        return set_token(rng, path, dtype)
    return damage_bytes(rng, path)


def _dtype_of(data: Path) -> str | None:
    try:
        dtype = json.loads((data / "meta.json").read_text("utf-8")).get("dtype")
    except (OSError, ValueError, AttributeError):
        return None
    return dtype if dtype in ("uint16", "uint32") else None


# -- the loaders under test ----------------------------------------------------------------------


def load_checkpoint_fully(ckpt: Path) -> None:
    """Everything a user's command does with a checkpoint before sampling: `genseq info` (text
    and JSON), loading, and one step of the model on ``<eos>``."""
    import torch
    from genseq.commands.info import info

    from genseq.checkpoint import load_checkpoint

    with contextlib.redirect_stdout(io.StringIO()):
        info(ckpt, json_out=False)
        info(ckpt, json_out=True)
    loaded = load_checkpoint(ckpt)
    logits, _ = loaded.model.step(torch.tensor([loaded.tokenizer.eos_id]), None)
    assert logits.shape == (1, loaded.tokenizer.vocab_size), "logits of the wrong width"


def open_data_fully(data: Path) -> None:
    """What training takes from a data directory before its first step, and the promise the
    door makes: every id below the vocabulary, the tokenizer's vocabulary that one."""
    from genseq.data import largest_id, open_data

    opened = open_data(data)
    tokenizer = opened.tokenizer()
    for split in (opened.train, opened.val):
        assert largest_id(split) < tokenizer.vocab_size == opened.vocab_size, "ids past vocab"
    opened.distinct_train_tokens  # noqa: B018 (planning reads it)


def try_once(
    rng: random.Random,
    base: Path,
    work: Path,
    mutate: Callable[[random.Random, Path, list[Path]], list[str]],
    load: Callable[[Path], None],
    pool: list[Path],
) -> Outcome:
    """Copy ``base`` into ``work``, damage it, load it, and judge what happened."""
    target = work / base.name
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(base, target, ignore=shutil.ignore_patterns("train_state.pt"))
    mutations = mutate(rng, target, pool)
    started = time.perf_counter()
    kind, detail = "loaded", ""
    try:
        load(target)
    except GenseqError as exc:
        message = str(exc)
        kind, detail = "refused", message
        if "\n" in message or len(message) > 1000 or not message.strip():
            kind, detail = "failure", f"not a one-line message: {message[:2000]!r}"
    except Exception:  # noqa: BLE001 (anything else is what the fuzzer looks for)
        kind, detail = "failure", traceback.format_exc()
    seconds = time.perf_counter() - started
    if seconds > SLOW_S and kind != "failure":
        kind, detail = "failure", f"took {seconds:.1f} s ({kind}: {detail})"
    shutil.rmtree(target, ignore_errors=True)
    return Outcome(kind, mutations, detail, seconds)
