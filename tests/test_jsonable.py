"""`jsonable`: the one helper that makes `--json` output and checkpoint configs strict JSON
(the checkpoint side: test_cli.py's test_json_is_strict_without_a_validation_split)."""

from __future__ import annotations

import json
import math

import numpy as np

from genseq.jsonable import jsonable


def test_non_finite_floats_become_null_at_any_depth():
    value = {
        "loss": math.nan,
        "rows": [1.5, math.inf, (2, -math.inf)],
        "nested": {"deep": [{"x": np.float64("nan")}]},
        "kept": [0, 1.0, "nan", None, True],
    }
    assert jsonable(value) == {
        "loss": None,
        "rows": [1.5, None, [2, None]],
        "nested": {"deep": [{"x": None}]},
        "kept": [0, 1.0, "nan", None, True],
    }
    json.dumps(jsonable(value), allow_nan=False)  # raises on any NaN left behind


def test_undecodable_file_name_bytes_become_replacement_characters():
    import os

    name = os.fsdecode(b"caf\xe9.txt")  # how Python reads a Latin-1 file name
    out = jsonable({name: [name, "plain"]})
    assert out == {"caf\ufffd.txt": ["caf\ufffd.txt", "plain"]}
    json.dumps(out, ensure_ascii=False).encode("utf-8")  # writable as UTF-8
