"""Values made fit for strict JSON, which every parser reads (jq, JavaScript): Python's
``json`` writes NaN and infinities as bare words that they refuse."""

from __future__ import annotations

import math
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` with every NaN and infinity, at any depth of dicts, lists and tuples, as None
    (null); tuples become lists, as JSON has them."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value
