"""Values made fit for strict JSON, which every parser reads (jq, JavaScript): Python's
``json`` writes NaN and infinities as bare words that they refuse, and a file name that is not
UTF-8 reaches Python as a string with lone surrogates, which no UTF-8 file can hold."""

from __future__ import annotations

import math
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` with every NaN and infinity, at any depth of dicts, lists and tuples, as None
    (null), and every string UTF-8 can write (undecodable bytes of a file name shown as U+FFFD);
    tuples become lists, as JSON has them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, dict):
        return {printable(k) if isinstance(k, str) else k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def printable(text: str) -> str:
    """``text`` as UTF-8 can write it: the bytes behind lone surrogates (``surrogateescape``,
    how Python reads a file name that is not UTF-8) become U+FFFD."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text
