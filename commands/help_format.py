"""How `genseq ... --help` reads: plain text (readable in a pipe and in a file), options grouped
under the ``rich_help_panel`` each one names, and real examples at the end of every command.

Typer draws help panels only with its Rich formatter, which boxes the help in a frame; the app
uses Click's plain formatter (``rich_markup_mode=None``) and this command class gives it the
panels as plain sections, in the order of ``PANELS``.
"""

from __future__ import annotations

import click
from typer.core import TyperCommand, TyperGroup

# The panels of `genseq sample --help`, in the order shown; an option without one is General.
PANELS = (
    "Prompt and length",
    "Sampling",
    "Tunes (ABC models)",
    "MIDI models",
    "Output files",
    "General",
)
GENERAL = "General"

# Real examples for every command and group, by command path; the epilog of each.
EXAMPLES = {
    "": [
        "genseq sample folk-tunes --num-samples 3 --temperature 0.8",
        "genseq train tinyshakespeare -o checkpoints/shakespeare --time-budget 60",
        "genseq sample -h",
    ],
    "tokenize": [
        "genseq tokenize tinyshakespeare -o data/shakespeare",
        "genseq tokenize folk-abc -o data/folk --transpose C",
        "cat lyrics/*.txt | genseq tokenize - -o data/lyrics --level word --lowercase",
    ],
    "train": [
        "genseq train data/shakespeare -o checkpoints/shakespeare --time-budget 60",
        "genseq train folk-abc -o checkpoints/folk --cell gru --attention 16 --max-steps 2000",
        "genseq train data/shakespeare -o checkpoints/shakespeare --resume --max-steps 5000",
    ],
    "sample": [
        'genseq sample checkpoints/shakespeare -p "ROMEO:" -n 300 -s 1 --temperature 0.8',
        "genseq sample folk-tunes --meter 6/8 --key D --midi tunes/ --json",
        "genseq sample runs/melody --primer-midi tune.mid --num-steps 128 -o out/",
    ],
    "eval": [
        "genseq eval checkpoints/shakespeare held-out.txt",
        "genseq eval folk-tunes new-tunes.abc --json",
    ],
    "info": [
        "genseq info folk-tunes",
        "genseq info checkpoints/shakespeare --json | jq .summary",
    ],
    "corpus": ["genseq corpus list", "genseq corpus fetch tinyshakespeare"],
    "models": ["genseq models list", "genseq sample folk-tunes --num-samples 2"],
    "models list": ["genseq models list", "genseq models list --json | jq -r .path"],
    "corpus list": ["genseq corpus list", "genseq corpus list --json | jq -r .name"],
    "corpus fetch": [
        "genseq corpus fetch tinyshakespeare",
        "wc -l $(genseq corpus fetch tinyshakespeare)",
    ],
    "music": [
        "genseq music stats tunes.abc --reference folk-abc",
        "genseq music render tunes.abc --svg sheets/ --musicxml sheets/",
    ],
    "music render": [
        "genseq music render tunes.abc --svg sheets/ --musicxml sheets/",
        "genseq sample folk-tunes --num-samples 4 | genseq music render - --svg out/ --wav out/",
        "genseq music render oneills1850 --midi oneills/",
    ],
    "music stats": [
        "genseq music stats tunes.abc --reference folk-abc",
        "genseq sample folk-tunes --num-samples 20 | genseq music stats -",
        "genseq music stats out/*.mid --reference folk-abc --json",
    ],
}


def examples(path: str) -> str:
    """The epilog of the command at ``path`` ("" for the app itself): its examples."""
    return "\n".join(EXAMPLES[path])


def write_examples(epilog: str | None, formatter: click.HelpFormatter) -> None:
    """The examples under their own heading, each on one line as typed (never rewrapped)."""
    if epilog:
        with formatter.section("Examples"):
            for line in epilog.splitlines():
                formatter.write(f"{'':>{formatter.current_indent}}{line}\n")


class GenseqCommand(TyperCommand):
    """A command whose options are grouped by panel and whose examples close the help."""

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        arguments, panels = [], {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append(record)
            else:
                panel = getattr(param, "rich_help_panel", None) or GENERAL
                panels.setdefault(panel, []).append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        if list(panels) == [GENERAL]:  # a command without panels: Click's usual heading
            panels = {"Options": panels[GENERAL]}
        order = {name: i for i, name in enumerate(PANELS)}
        for name in sorted(panels, key=lambda n: order.get(n, order[GENERAL] - 0.5)):
            with formatter.section(name):
                formatter.write_dl(panels[name])

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        write_examples(self.epilog, formatter)


class GenseqGroup(TyperGroup):
    """A group (the app, `corpus`, `music`) whose examples close the help."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        write_examples(self.epilog, formatter)
