"""Errors a user can fix: the CLI prints their message on one line and exits non-zero.

The library raises these instead of printing or exiting, so that the same code serves the CLI,
tests and other programs. Anything else that escapes is a bug and is shown with its traceback
only when ``GENSEQ_DEBUG=1``.
"""


class GenseqError(Exception):
    """A problem with the user's input or environment (exit code 1)."""


class UsageError(GenseqError):
    """Settings that cannot work together or are out of range (exit code 2)."""


def shown(value: object, width: int = 40) -> str:
    """A value read from a file, as an error message quotes it: its repr, cut to ``width``
    characters, so that a megabyte-long string in a config makes a short line."""
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return "a number of thousands of digits"
    return text if len(text) <= width else text[: width - 3] + "..."


def brief(text: str, width: int = 200) -> str:
    """An error text from a library, as one short line: its first line, cut to ``width``
    characters (parsers quote the offending value, however long)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 3] + "..."
