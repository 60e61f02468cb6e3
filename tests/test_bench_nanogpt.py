"""The pieces of benchmarks/transformer_vs_nanogpt.py that decide what is compared: nanoGPT's
data as its prepare.py writes it, every validation character scored once, the fitted schedule
ending on an evaluation, and a clear exit without nanoGPT. (The benchmark itself is not run.)"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import transformer_vs_nanogpt as bench  # noqa: E402


def test_data_as_prepare_py_writes_it(tmp_path: Path) -> None:
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n" * 7
    train, val = bench.prepare_shakespeare_char(text, tmp_path)
    n = len(text)
    assert (train, val) == (text[: int(n * 0.9)], text[int(n * 0.9) :])
    folder = tmp_path / "data" / "shakespeare_char"
    meta = pickle.loads((folder / "meta.pkl").read_bytes())
    assert meta["vocab_size"] == len(set(text))
    assert list(meta["stoi"]) == sorted(set(text))
    for name, part in (("train.bin", train), ("val.bin", val)):
        ids = np.fromfile(folder / name, dtype=np.uint16)
        assert "".join(meta["itos"][int(i)] for i in ids) == part


@pytest.mark.parametrize(
    ("length", "block", "stride"), [(1000, 64, 32), (97, 64, 16), (66, 64, 32)]
)
def test_windows_predict_every_character_but_the_first_once(
    length: int, block: int, stride: int
) -> None:
    predicted: list[int] = []
    for start, first in bench.window_plan(length, block, stride):
        assert 0 <= start and start + block < length  # inputs and targets inside the data
        targets = range(start + 1 + first, start + 1 + block)
        predicted += targets
        if start:  # after the first window, every scored character has this much context
            assert first >= block - stride or start + block == length - 1
    assert sorted(predicted) == list(range(1, length))


@pytest.mark.parametrize("n", [1, 7, 249, 250, 400, 2000, 13_337])
def test_schedule_ends_on_an_evaluation(n: int) -> None:
    iters, every = bench.schedule(n)
    assert iters % every == 0  # nanoGPT evaluates (and saves) at the last iteration
    assert n - iters < max(1, round(n / bench.EVAL_EVERY))  # almost nothing lost
    assert abs(iters / every - n / bench.EVAL_EVERY) <= 1


def test_fitted_run_fills_the_budget_without_overrunning() -> None:
    cal = bench.Calibration(fixed_s=4.0, iter_s=0.04, eval_s=1.5)
    for budget in (90, 600):
        iters, every = bench.fit_iters(budget, cal)
        cost = cal.fixed_s + (iters + 1) * cal.iter_s + (iters // every + 1) * cal.eval_s
        assert 0.9 * budget < cost <= bench.SAFETY * budget


def test_exits_with_a_message_without_nanogpt(tmp_path: Path) -> None:
    for source in (None, tmp_path / "absent", tmp_path):
        with pytest.raises(SystemExit, match="skipped: .*--nanogpt"):
            bench.nanogpt_tree(source, tmp_path / "tree")
