"""Errors a user can fix: the CLI prints their message on one line and exits non-zero.

The library raises these instead of printing or exiting, so that the same code serves the CLI,
tests and other programs. Anything else that escapes is a bug and is shown with its traceback
only when ``GENSEQ_DEBUG=1``.
"""


class GenseqError(Exception):
    """A problem with the user's input or environment (exit code 1)."""


class UsageError(GenseqError):
    """Settings that cannot work together or are out of range (exit code 2)."""
