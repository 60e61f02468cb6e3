"""Helpers shared by the commands: the stderr console, error handling, shared options."""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import time
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from genseq.commands.choices import EncodingErrors, complete_device

from genseq.errors import GenseqError, UsageError
from genseq.jsonable import jsonable


def _process_start() -> float:
    """When this process started, on the ``perf_counter`` clock (Linux: from /proc; elsewhere
    the import of this module, a fraction of a second later)."""
    now = time.perf_counter()
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # seconds after boot
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return now - min(max(0.0, uptime - started), 60.0)
    except (OSError, ValueError, IndexError):
        return now


PROCESS_START = _process_start()  # --time-budget counts whole-process wall time from here

DeviceOpt = Annotated[
    str,
    typer.Option(
        "--device",
        envvar="GENSEQ_DEVICE",
        help="auto | cpu | cuda | cuda:N | mps (auto: cuda, else mps, else cpu).",
        autocompletion=complete_device,
    ),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Write machine-readable JSON Lines to stdout.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on stderr.")]
CacheDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="GENSEQ_CACHE_DIR",
        help="Where downloaded corpora are kept (default: the platform's user cache directory).",
        show_default=False,
    ),
]
# The sound of tunes' MIDI and WAV files, shared by `sample` and `music render`.
ProgramOpt = Annotated[
    int | None,
    typer.Option(
        "--program",
        help="The General MIDI program (0-127, as pretty_midi counts) the MIDI and WAV files "
        "play [default: 40, Violin: the fiddle].",
        show_default=False,
        rich_help_panel="Output files",
    ),
]
SoundFontOpt = Annotated[
    Path | None,
    typer.Option(
        "--soundfont",
        help="The General MIDI SoundFont (.sf2) the WAV files play [default: "
        "$GENSEQ_SOUNDFONT, else one installed in the usual places; without one, sine tones].",
        show_default=False,
        rich_help_panel="Output files",
    ),
]
EncodingErrorsOpt = Annotated[
    EncodingErrors,
    typer.Option(
        "--encoding-errors",
        help="What to do with bytes that are not UTF-8: strict (stop), replace or ignore.",
    ),
]


def err_console():
    """Progress and diagnostics: stderr."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def out_console():
    """A command's result as a table: stdout, so `> file` and pipes capture it."""
    from rich.console import Console

    return Console(file=stdout(), highlight=False)


def print_table(*tables) -> None:
    """A command's result as Rich tables on a terminal; elsewhere (a pipe, a file) as plain
    tab-separated rows, the header first, never cut to a terminal's width, one blank line
    between two tables, and no title (the rows are the whole result, for cut, awk or a
    spreadsheet; --json says more).

    This is the one place that decides how tables look, for every command."""
    out = stdout()
    if out.isatty():
        console = out_console()
        for table in tables:
            console.print(table)
        return
    for n, table in enumerate(tables):
        lines = [[str(column.header) for column in table.columns]]
        cells = ([str(cell) for cell in column.cells] for column in table.columns)
        lines += zip(*cells, strict=True)
        text = "\n".join("\t".join(_cell(c) for c in line) for line in lines)
        out.write(("\n" if n else "") + text + "\n")
    out.flush()


def _cell(text: str) -> str:
    """A cell on one line of a tab-separated row."""
    return " ".join(text.split("\t")).replace("\n", " ")


def fail(message: str, code: int = 1) -> typer.Exit:
    rank = os.environ.get("RANK", "0")  # under torchrun, say which process failed
    where = f" (rank {rank})" if rank != "0" else ""
    print(f"error{where}: {message}", file=sys.stderr, flush=True)
    return typer.Exit(code)


def guard(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's errors into one line on stderr and an exit code, never a traceback.

    Exit codes: 1 input or runtime error, 2 usage error, 130 interrupted; a closed pipe on
    stdout (``genseq sample ... | head``) ends quietly. ``GENSEQ_DEBUG=1`` shows tracebacks.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except UsageError as exc:
            raise fail(str(exc), 2) from None
        except GenseqError as exc:
            raise fail(str(exc), 1) from None
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            raise typer.Exit(130) from None
        except BrokenPipeError:
            quiet_broken_pipe()
            raise typer.Exit(141) from None
        except MemoryError:
            raise fail("out of memory; try a smaller --batch-size or model", 1) from None
        except OSError as exc:
            if os.environ.get("GENSEQ_DEBUG"):
                raise
            raise fail(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), 1) from None

    return wrapper


def quiet_broken_pipe() -> None:
    """Point stdout at /dev/null so Python's exit-time flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def stdout():
    """Standard output, or a clear error when it was closed (``genseq sample 1>&-``)."""
    if sys.stdout is None:
        raise GenseqError("standard output is closed")
    return sys.stdout


def refuse_stdout(output: Path | None, what: str) -> None:
    """A usage error for ``-o -`` where the output is a directory, not a stream (rather than
    a directory named ``-``)."""
    if output is not None and str(output) == "-":
        raise UsageError(f"-o -: {what}, not a stream; name a directory")


def print_out(text: str) -> None:
    """A line of a command's result on stdout (an error when stdout is closed: a result
    nobody can read is a failure, not a success)."""
    out = stdout()
    out.write(text + "\n")
    out.flush()


def print_json(obj: dict) -> None:
    out = stdout()
    out.write(json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False) + "\n")
    out.flush()


def number(value, spec: str = ".4f") -> str:
    """A float for people: '-' when it is missing or not finite."""
    if isinstance(value, (int, float)) and math.isfinite(value):
        return format(value, spec)
    return "-"


def options_for(cls: type, values: dict[str, Any], **replaced: Any) -> Any:
    """``cls`` built from a command's parameters: each Typer parameter is named after the
    dataclass field it sets, so an option is declared once, as a parameter, and never listed
    again. ``replaced`` gives the fields whose value the command converts first."""
    from dataclasses import fields

    given = {f.name: values[f.name] for f in fields(cls) if f.name in values}
    return cls(**{name: plain(value) for name, value in {**given, **replaced}.items()})


def plain(value: Any) -> Any:
    """A choice's value as the plain ``str`` the library's dataclasses hold (an enum member
    is a ``str`` already, but one whose repr names the enum)."""
    return value.value if isinstance(value, Enum) else value
