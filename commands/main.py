"""The genseq app: every command is registered here, in one visible list.

genseq tokenize SOURCE... -o DATA      corpus -> tokenizer + token files
genseq train DATA|SOURCE -o RUN        the one training loop
genseq sample RUN                      text on stdout
genseq eval RUN FILE...                loss, perplexity, bits per character
genseq info RUN                        what a checkpoint holds
genseq corpus list | fetch             the corpora genseq knows by name
genseq models list                     the models genseq ships (sample/info/eval take the name)
genseq music stats FILE...             ABC tunes: bar validity, features, memorisation
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from genseq.commands import corpus, evaluate, info, models, music, sample, tokenize_corpus, train
from genseq.commands._common import guard, quiet_broken_pipe
from genseq.commands.help_format import GenseqCommand, GenseqGroup, examples

from genseq import __version__

CONTEXT = {"help_option_names": ["-h", "--help"]}  # -h is --help, in every command

app = typer.Typer(
    name="genseq",
    help="Train and sample recurrent language models for text and music.",
    no_args_is_help=True,
    context_settings=CONTEXT,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    cls=GenseqGroup,
    epilog=examples(""),
)

COMMANDS = {
    "tokenize": tokenize_corpus.tokenize,
    "train": train.train,
    "sample": sample.sample,
    "eval": evaluate.evaluate,
    "info": info.info,
}
for _name, _function in COMMANDS.items():
    app.command(_name, cls=GenseqCommand, epilog=examples(_name))(guard(_function))


def group(name: str, help: str, commands: dict) -> None:
    """A command group such as `genseq corpus`, with -h, examples and no-argument help."""
    sub = typer.Typer(
        help=help,
        no_args_is_help=True,
        context_settings=CONTEXT,
        rich_markup_mode=None,
        cls=GenseqGroup,
        epilog=examples(name),
    )
    for command, function in commands.items():
        path = f"{name} {command}"
        sub.command(command, cls=GenseqCommand, epilog=examples(path))(guard(function))
    app.add_typer(sub, name=name)


group(
    "corpus",
    "The corpora genseq knows by name.",
    {"list": corpus.list_corpora, "fetch": corpus.fetch_corpus},
)
group("models", "The models genseq ships, usable by name.", {"list": models.list_models})
group("music", "Statistics of real or generated ABC tunes and MIDI files.", {"stats": music.stats})

GROUPS = {"corpus": ["list", "fetch"], "models": ["list"], "music": ["stats"]}


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


COMPLETE_VAR = "_GENSEQ_COMPLETE"
SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def click8_completion_style() -> None:
    """Accept Click 8's ``_GENSEQ_COMPLETE=bash_source`` (shell first) beside Typer's own
    ``source_bash``, which the scripts of --install-completion and --show-completion use."""
    shell, _, instruction = os.environ.get(COMPLETE_VAR, "").partition("_")
    if shell in SHELLS and instruction in ("source", "complete"):
        os.environ[COMPLETE_VAR] = f"{instruction}_{shell}"


def main() -> None:
    """Console entry point: the app, with one-line usage errors and a quiet closed pipe."""
    click8_completion_style()
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
