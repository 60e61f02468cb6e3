"""Shared fixtures: an isolated cache, the shared corpora (or a clear skip), tiny corpora, a
tiny tokenized data directory and a tiny trained run, and a CLI runner with separate streams."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
SHARED_CORPORA = REPO.parent / "shared" / "corpora"


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Never read or write the real user cache."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("GENSEQ_CACHE_DIR", str(cache))
    return cache


@pytest.fixture(scope="session")
def shared_corpora() -> Path:
    if not (SHARED_CORPORA / "tinyshakespeare" / "input.txt").is_file():
        pytest.skip(f"the shared corpora are not present at {SHARED_CORPORA}")
    return SHARED_CORPORA


def make_words_text(n_lines: int = 400, seed: int = 0) -> str:
    """Lyrics-like text: short lines of common words, stanzas separated by blank lines."""
    rng = random.Random(seed)
    words = "the night is long and we sing under a silver moon while rivers run home".split()
    lines = []
    for i in range(n_lines):
        lines.append(" ".join(rng.choice(words) for _ in range(rng.randint(3, 7))))
        if i % 4 == 3:
            lines.append("")
    return "\n".join(lines) + "\n"


PATTERN = "0123456789\n"


@pytest.fixture(scope="session")
def pattern_file(tmp_path_factory) -> Path:
    """A corpus with a fully predictable pattern: a model that learns it samples it back."""
    path = tmp_path_factory.mktemp("pattern") / "pattern.txt"
    path.write_text(PATTERN * 2000, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def words_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("words") / "lyrics.txt"
    path.write_text(make_words_text(), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory, words_file) -> Path:
    """A char-level data directory of the lyrics-like corpus."""
    from genseq.corpus import resolve_sources
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    out = tmp_path_factory.mktemp("data") / "lyrics"
    tokenize_corpus(resolve_sources([str(words_file)]), out, TokenizeOptions(level="char"))
    return out


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data) -> Path:
    """A run directory trained for a few steps (through the library, as the CLI does)."""
    from testkit import small

    from genseq.data import open_data
    from genseq.train import Trainer

    out = tmp_path_factory.mktemp("runs") / "tiny"
    cfg = small(max_steps=30, eval_every=10)
    Trainer(cfg, open_data(tiny_data), out).run()
    return out


class Cli:
    """Runs the app in-process with stdout and stderr kept apart."""

    def __init__(self) -> None:
        from genseq.commands.main import app

        self.app = app
        self.runner = CliRunner()

    def __call__(self, *args: str, input: str | None = None):
        return self.runner.invoke(self.app, [str(a) for a in args], input=input)


@pytest.fixture
def cli() -> Cli:
    return Cli()
