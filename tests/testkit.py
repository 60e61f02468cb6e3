"""What many test files share: the installed console script and a way to run it, the tiny
model every training test uses (as a config and as flags), and the one-error-line contract."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from genseq.plan import TrainConfig

GENSEQ = str(Path(sys.executable).with_name("genseq"))  # the script installed beside python
TINY_MODEL = {"hidden_size": 16, "embed_size": 8, "seq_len": 16, "batch_size": 4, "device": "cpu"}


def flags(settings: dict) -> list[str]:
    """``{"hidden_size": 16}`` as command-line flags, ``["--hidden-size", "16"]``."""
    pairs = (("--" + name.replace("_", "-"), str(value)) for name, value in settings.items())
    return [item for pair in pairs for item in pair]


TINY = flags(TINY_MODEL)  # the tiny model for `genseq train`


def small(**overrides) -> TrainConfig:
    """The tiny model's training config, with ``overrides``."""
    return TrainConfig(**{**TINY_MODEL, **overrides})


def genseq_env() -> dict[str, str]:
    """One thread per process: tests run several processes on a 2-core machine."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def run(*args, input: bytes | None = None, **kwargs) -> subprocess.CompletedProcess:
    """`genseq ARGS...` as a user runs it, in its own process."""
    kwargs.setdefault("timeout", 120)
    return subprocess.run(
        [GENSEQ, *map(str, args)], input=input, capture_output=True, env=genseq_env(), **kwargs
    )


def start(*args) -> subprocess.Popen:
    """`genseq ARGS...` started in the background (to be signalled or killed)."""
    return subprocess.Popen(
        [GENSEQ, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=genseq_env(),
    )


def files_below(path: Path) -> dict[str, bytes]:
    """Every file below ``path`` and its bytes, to show a command changed nothing (the run
    directory's lock file aside: it holds the last holder's pid)."""
    return {
        str(p.relative_to(path)): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def one_error_line(stderr: str) -> str:
    """The single `error: ...` line (progress lines before it are fine); no traceback."""
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


def write_midi(path: Path, parts: list[dict], tempo: float = 120.0, velocity: int = 90) -> Path:
    """A MIDI file from ``parts``: dicts of name, program, drums and notes (pitch, start, end
    in seconds)."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    for part in parts:
        inst = pretty_midi.Instrument(
            program=part.get("program", 0), is_drum=part.get("drums", False), name=part["name"]
        )
        for pitch, start, end in part["notes"]:
            inst.notes.append(pretty_midi.Note(velocity, pitch, start, end))
        midi.instruments.append(inst)
    midi.write(str(path))
    return path


def assert_resume_is_exact(
    config: TrainConfig, data, runs: Path, stop_at: int, *, at_stop=None, before_resume=None
) -> tuple[dict, dict]:
    """Train ``config`` on ``data`` straight through (``runs/straight``), and again
    (``runs/resumed``) stopped after step ``stop_at`` (``at_stop(trainer)`` called there) and
    continued with nothing but --resume (``before_resume()`` called first). Assert both end
    with the same weights, bit for bit, and return the two state dicts."""
    import copy

    import torch

    from genseq.checkpoint import load_checkpoint
    from genseq.train import Trainer

    def interrupt(trainer) -> None:
        if trainer.step == stop_at:
            if at_stop is not None:
                at_stop(trainer)
            trainer.request_stop()

    Trainer(copy.deepcopy(config), data, runs / "straight").run()
    first = Trainer(copy.deepcopy(config), data, runs / "resumed", on_step=interrupt).run()
    assert first.summary["step"] == stop_at
    if before_resume is not None:
        before_resume()
    second = Trainer(TrainConfig(device="cpu"), data, runs / "resumed", resume=True).run()
    assert second.summary["step"] == config.max_steps
    straight, resumed = (
        dict(load_checkpoint(runs / name / "last").model.state_dict())
        for name in ("straight", "resumed")
    )
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name
    return straight, resumed


def assert_sampled_tunes_keep_the_grammar(config: TrainConfig, tmp: Path, cli) -> Path:
    """Train ``config`` a few steps on a small ABC corpus, sample three 6/8 tunes into a
    tunebook through the CLI (the grammar constraint on, as by default), and assert each is
    in 6/8 with every bar valid. The run's directory, for more checks."""
    from genseq.corpus import resolve_sources
    from genseq.data import open_data
    from genseq.music.abc_lexer import split_tunebook, tokenize_tune
    from genseq.music.bars import bar_report
    from genseq.prepare import TokenizeOptions, tokenize_corpus
    from genseq.train import Trainer

    data, run, book = tmp / "abc", tmp / "run", tmp / "tunes.abc"
    tokenize_corpus(resolve_sources(["ryans-mammoth"]), data, TokenizeOptions(level="abc"))
    Trainer(config, open_data(data), run).run()
    result = cli(
        *["sample", run, "--num-samples", "3", "--seed", "5", "-o", book],
        *["--meter", "6/8", "-n", "120"],
    )
    assert result.exit_code == 0, result.stderr
    entries = split_tunebook(book.read_text())
    assert len(entries) == 3
    for entry in entries:
        assert "M:6/8" in entry.text
        assert bar_report(tokenize_tune(entry.text)).clean
    return run
