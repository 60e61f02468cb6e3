"""The genseq app: every command is registered here, in one visible list.

genseq tokenize SOURCE... -o DATA      corpus -> tokenizer + token files
genseq train DATA|SOURCE -o RUN        the one training loop
genseq sample RUN                      text on stdout
genseq eval RUN FILE...                loss, perplexity, bits per character
genseq info RUN                        what a checkpoint holds
genseq corpus list | fetch             the corpora genseq knows by name
genseq music stats FILE...             ABC tunes: bar validity, features, memorisation
genseq music render FILE... --svg DIR  tunebooks -> sheet music, MusicXML, MIDI, WAV
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from genseq.commands import (
    corpus,
    evaluate,
    info,
    music,
    music_render,
    sample,
    tokenize_corpus,
    train,
)
from genseq.commands._common import guard, quiet_broken_pipe

from genseq import __version__

app = typer.Typer(
    name="genseq",
    help="Train and sample recurrent language models for text and music.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

COMMANDS = {
    "tokenize": tokenize_corpus.tokenize,
    "train": train.train,
    "sample": sample.sample,
    "eval": evaluate.evaluate,
    "info": info.info,
}
for _name, _function in COMMANDS.items():
    app.command(_name)(guard(_function))

corpus_app = typer.Typer(help="The corpora genseq knows by name.", no_args_is_help=True)
corpus_app.command("list")(guard(corpus.list_corpora))
corpus_app.command("fetch")(guard(corpus.fetch_corpus))
app.add_typer(corpus_app, name="corpus")

music_app = typer.Typer(
    help="Statistics of ABC tunes and MIDI files; tunebooks as sheet music, MIDI and audio.",
    no_args_is_help=True,
)
music_app.command("stats")(guard(music.stats))
music_app.command("render")(guard(music_render.render))
app.add_typer(music_app, name="music")

GROUPS = {"corpus": ["list", "fetch"], "music": ["stats", "render"]}


def _version(value: bool) -> None:
    if value:
        print(f"genseq {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Train and sample recurrent language models for text and music."""


def main() -> None:
    """Console entry point: the app, with one-line usage errors and a quiet closed pipe."""
    try:
        code = app(prog_name="genseq", standalone_mode=False)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument...
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        if message.startswith("Usage:"):  # no command given: the help itself
            print(message, file=sys.stderr)
            sys.exit(getattr(exc, "exit_code", 2))
        command = " ".join(a for a in sys.argv[1:2] if not a.startswith("-"))
        print(
            f"error: {message} (see `genseq {command} --help`)".replace("genseq  ", "genseq "),
            file=sys.stderr,
        )
        sys.exit(getattr(exc, "exit_code", 2))
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    except BrokenPipeError:
        quiet_broken_pipe()
        sys.exit(141)
    sys.exit(code or 0)
