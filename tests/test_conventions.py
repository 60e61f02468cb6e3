"""The command line follows the ecosystem's conventions: shell completion that offers the
choices, -h beside --help, closed option sets checked by Click, `sample --help` in panels,
real examples in every command's help, tables that a pipe receives whole, one JSON row for
every kind of sample, and --device auto wherever a model runs."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys

import pytest
import typer
from genseq.commands.main import app
from testkit import GENSEQ, genseq_env, one_error_line, small

ROOT = typer.main.get_command(app)


def is_group(command) -> bool:
    """A group of commands (Typer vendors its own Click: its classes are not ``click.Group``)."""
    return hasattr(command, "commands")


def commands(group=ROOT, path: tuple[str, ...] = ()):
    """Every command and group below the app, as (path, click command)."""
    for name, command in group.commands.items():
        yield (*path, name), command
        if is_group(command):
            yield from commands(command, (*path, name))


ALL = [((), ROOT), *commands()]


def complete(words: str, incomplete_at: int, style: str = "complete_bash") -> list[str]:
    """What bash completion offers for ``words`` (COMP_CWORD ``incomplete_at``)."""
    env = {**genseq_env(), "_GENSEQ_COMPLETE": style, "COMP_WORDS": words}
    env["COMP_CWORD"] = str(incomplete_at)
    done = subprocess.run([GENSEQ], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


# ---------------------------------------------------------------------------------------------
# Shell completion


def test_the_bash_completion_script_in_both_instruction_styles():
    scripts = []
    for style in ("bash_source", "source_bash"):  # Click 8's order and Typer's
        env = {**genseq_env(), "_GENSEQ_COMPLETE": style}
        done = subprocess.run([GENSEQ], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        scripts.append(done.stdout)
    assert scripts[0] == scripts[1]
    assert "complete -o default -F _genseq_completion genseq" in scripts[0]
    assert "_GENSEQ_COMPLETE=complete_bash" in scripts[0]  # what the script asks genseq
    help_text = subprocess.run([GENSEQ, "-h"], capture_output=True, text=True).stdout
    assert "--install-completion" in help_text and "--show-completion" in help_text


def test_completion_offers_commands_and_choices():
    assert complete("genseq tr", 1) == ["train"]
    assert complete("genseq train x --cell ", 4) == ["lstm", "gru", "rnn-tanh", "rnn-relu"]
    assert complete("genseq train x --optimizer ", 4) == ["adamw", "adam", "sgd"]
    assert complete("genseq tokenize x --level midi", 4) == ["midi-melody", "midi-performance"]
    assert complete("genseq sample x --form ", 4, "bash_complete") == ["folk", "free"]
    assert complete("genseq sample x --device c", 4) == ["cpu", "cuda"]
    assert complete("genseq sample x --mode m", 4) == ["maj", "min", "mix"]
    assert complete("genseq eval x y --encoding-errors ", 5) == ["strict", "replace", "ignore"]


# ---------------------------------------------------------------------------------------------
# -h, examples and panels


@pytest.mark.parametrize("path", [p for p, _ in ALL], ids=lambda p: " ".join(p) or "genseq")
def test_h_is_help_and_every_help_ends_with_real_examples(cli, path):
    short, long = cli(*path, "-h"), cli(*path, "--help")
    assert short.exit_code == 0 and short.stdout == long.stdout
    assert short.stdout.startswith(f"Usage: {' '.join(('genseq', *path))} ")
    head, _, tail = short.stdout.partition("\nExamples:\n")
    examples = [line.strip() for line in tail.splitlines() if line.strip()]
    assert 2 <= len(examples) <= 3, short.stdout
    assert any(f"genseq {' '.join(path)}".strip() in line for line in examples)
    for line in examples:
        check_example(line)


def check_example(line: str) -> None:
    """Each genseq command of an example names a real command and only its real options."""
    for part in " ".join(shlex.split(line.replace("|", " | "))).split(" | "):
        words = shlex.split(part)
        if words[0] != "genseq":
            continue
        command, rest = ROOT, words[1:]
        while is_group(command) and rest and not rest[0].startswith("-"):
            assert rest[0] in command.commands, line
            command, rest = command.commands[rest[0]], rest[1:]
        known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        known |= {"-h", "--help"}
        for word in rest:
            if word.startswith("-") and word != "-":
                assert word.split("=")[0] in known, f"{word} in {line!r}"


def test_sample_help_is_grouped_in_panels(cli):
    from genseq.commands.help_format import PANELS

    text = cli("sample", "-h").stdout
    headings = [line[:-1] for line in text.splitlines() if line.endswith(":") and line[0] != " "]
    assert headings == ["Arguments", *PANELS, "Examples"]
    panel_of, heading = {}, None
    for line in text.splitlines():
        if line.endswith(":") and not line.startswith(" "):
            heading = line[:-1]
        elif line.startswith("  -"):  # an option's first line: its names, then its help
            for name in line.split("  ")[1].replace(",", " ").replace("/", " ").split():
                panel_of.setdefault(name, []).append(heading)
    where = {
        "--prompt": "Prompt and length",
        "--temperature": "Sampling",
        "--seed": "Sampling",
        "--meter": "Tunes (ABC models)",
        "--form": "Tunes (ABC models)",
        "--primer-midi": "MIDI models",
        "--wav": "Output files",
        "--json": "General",
        "--help": "General",
    }
    for option, panel in where.items():
        assert panel_of[option] == [panel], option


# ---------------------------------------------------------------------------------------------
# Choices


def test_choices_are_the_librarys_and_reach_it_as_plain_strings():
    from genseq.commands import choices
    from genseq.commands._common import options_for

    from genseq.model import ARCHS, CELLS
    from genseq.music.abc_vocab import MODES
    from genseq.plan import OPTIMIZERS, PRECISIONS, TrainConfig
    from genseq.schedule import SCHEDULES
    from genseq.tokenization import LEVELS

    assert tuple(choices.Cell) == CELLS
    assert tuple(choices.Arch) == ARCHS
    assert tuple(choices.Optimizer) == OPTIMIZERS
    assert tuple(choices.Schedule) == SCHEDULES
    assert tuple(choices.Precision) == ("auto", *PRECISIONS)
    assert tuple(choices.Level) == ("auto", *LEVELS)
    assert choices.MODES == MODES
    config = options_for(
        TrainConfig, {"cell": choices.Cell.gru, "optimizer": choices.Optimizer.sgd}
    )
    assert type(config.cell) is str and repr(config.cell) == "'gru'"
    assert type(config.optimizer) is str


@pytest.mark.parametrize(
    "args, option",
    [
        (["train", "x", "--cell", "transformer"], "--cell"),
        (["train", "x", "--optimizer", "lion"], "--optimizer"),
        (["train", "x", "--schedule", "linear"], "--schedule"),
        (["train", "x", "--precision", "fp8"], "--precision"),
        (["train", "x", "--on-nan", "retry"], "--on-nan"),
        (["tokenize", "x", "-o", "y", "--level", "morse"], "--level"),
        (["tokenize", "x", "-o", "y", "--split", "random"], "--split"),
        (["tokenize", "x", "-o", "y", "--dtype", "int8"], "--dtype"),
        (["eval", "x", "y", "--encoding-errors", "lenient"], "--encoding-errors"),
        (["sample", "x", "--form", "sonata"], "--form"),
    ],
)
def test_a_bad_choice_is_a_usage_error(args, option, monkeypatch, capsys):
    """Through the real entry point: one `error:` line naming the option and its choices,
    exit 2, before anything is read."""
    from genseq.commands.main import main

    monkeypatch.setattr(sys, "argv", ["genseq", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    assert exit_.value.code == 2
    line = one_error_line(capsys.readouterr().err)
    assert f"'{option}'" in line and "is not one of" in line


def test_device_defaults_to_auto_wherever_a_model_runs(cli):
    for name in ("train", "sample", "eval"):
        device = next(p for p in ROOT.commands[name].params if p.name == "device")
        assert device.default == "auto", name
        assert "default: auto" in " ".join(cli(name, "-h").stdout.split())


# ---------------------------------------------------------------------------------------------
# Tables


def test_tables_through_a_pipe_are_whole_tab_separated_rows(cli, tiny_run, words_file):
    from genseq.corpus import load_registry

    listed = cli("corpus", "list")  # CliRunner's stdout is not a terminal
    assert listed.exit_code == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "name\tstatus\tsize / place\tdescription"
    rows = [line.split("\t") for line in lines[1:]]
    assert {len(row) for row in rows} == {4}
    descriptions = {name: entry.description for name, entry in load_registry().items()}
    assert {row[0]: row[3] for row in rows} == descriptions  # nothing cut
    assert "…" not in listed.stdout and "┃" not in listed.stdout
    models = cli("models", "list").stdout.splitlines()
    assert models[0] == "name\tlevel\tsize\tstatus\tdescription"
    scores = cli("eval", tiny_run, words_file, words_file)
    assert scores.exit_code == 0, scores.stderr
    header, *rows = [line.split("\t") for line in scores.stdout.splitlines()]
    assert header == ["file", "tokens", "nats/token", "perplexity", "bits/char", "<unk>"]
    assert [row[0] for row in rows] == [str(words_file), str(words_file), "TOTAL"]


def test_tables_on_a_terminal_stay_rich(monkeypatch):
    from genseq.commands._common import print_table
    from rich.table import Table

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    table = Table(title="t")
    table.add_column("nats/token")
    table.add_row("1.0")
    print_table(table)
    drawn = re.sub(r"\x1b\[[0-9;]*m", "", screen.getvalue())  # without colours
    assert "┃ nats/token ┃" in drawn and "│ 1.0        │" in drawn


# ---------------------------------------------------------------------------------------------
# One JSON row for every kind of sample

SHARED_KEYS = {
    "schema",
    "kind",
    "index",
    "text",
    "prompt",
    "tokens",
    "finish_reason",
    "files",
    "seed",
    "num_samples",
    "temperature",
    "top_k",
    "top_p",
    "min_p",
    "repetition_penalty",
    "greedy",
    "checkpoint",
}
TUNE_KEYS = {"abc", "midi", "rhythm", "meter", "key", "mode", "tempo", "form", "constrained"}


@pytest.fixture(scope="module")
def melody_run(tmp_path_factory):
    """A tiny midi-melody model, trained on ABC tunes (the MIDI levels read them too)."""
    from genseq.corpus import resolve_sources
    from genseq.data import open_data
    from genseq.prepare import TokenizeOptions, tokenize_corpus
    from genseq.train import Trainer

    folder = tmp_path_factory.mktemp("melody")
    tunes = "".join(
        f"X:{n}\nT:t{n}\nM:4/4\nL:1/8\nK:D\n{'DEFG A2d2 | f2e2 d4 | ' * (n % 3 + 1)}|]\n\n"
        for n in range(1, 13)
    )
    (folder / "tunes.abc").write_text(tunes)
    data = folder / "data"
    corpus = resolve_sources([str(folder / "tunes.abc")])
    tokenize_corpus(corpus, data, TokenizeOptions(level="midi-melody", val_fraction=0.2))
    run = folder / "run"
    Trainer(small(max_steps=5, eval_every=5), open_data(data), run).run()
    return run


def rows_of(cli, *args) -> list[dict]:
    result = cli("sample", *args, "--json", "--seed", "3", "--num-samples", "2", "--quiet")
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_every_kind_of_sample_has_one_json_schema(cli, tiny_run, melody_run, tmp_path):
    from genseq.commands.sample_request import SAMPLE_SCHEMA

    shipped = os.path.join(os.path.dirname(__file__), "..", "checkpoints", "folk-tunes")
    text = rows_of(cli, tiny_run, "-p", "the", "-n", "5", "--top-k", "3")
    tunes = rows_of(cli, shipped, "--meter", "6/8", "--midi", tmp_path / "mid")
    midi = rows_of(cli, melody_run, "--num-steps", "8", "-o", tmp_path / "out")
    for kind, rows in (("text", text), ("abc", tunes), ("midi", midi)):
        assert [r["index"] for r in rows] == [0, 1]
        for row in rows:
            assert SHARED_KEYS <= set(row), (kind, SHARED_KEYS - set(row))
            assert row["schema"] == SAMPLE_SCHEMA and row["kind"] == kind
            assert row["num_samples"] == 2 and row["seed"] == 3
    assert text[0]["top_k"] == 3 and not {"abc", "midi"} & set(text[0])
    for row in tunes:
        assert TUNE_KEYS <= set(row) and row["text"] == row["abc"] and row["meter"] == "6/8"
        assert row["text"].startswith("X:") and row["midi"] in row["files"]
        assert row["midi"].endswith(f"tune_{row['index'] + 1:03d}.mid")
    for row in midi:
        assert len(row["text"].split()) == row["events"] == row["tokens"]
        assert row["midi"] == str(tmp_path / "out" / f"sample_{row['index'] + 1:03d}.mid")
