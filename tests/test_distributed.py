"""Multi-process training: 2 gloo processes on 127.0.0.1 train like 1 process with the same
global batch, resume exactly, and resume across a change in the number of processes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch
from testkit import GENSEQ, genseq_env

from genseq.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

# Constant learning rate, no dropout, fp32 (bf16 rounds a split batch's sums differently):
# runs of different lengths and process counts are comparable step for step.
SETTINGS = [  # pinned: a longer --max-steps on resume would start the weight average later
    "--ema",
    "0",
    "--precision",
    "fp32",
    "--hidden-size",
    "16",
    "--embed-size",
    "8",
    "--seq-len",
    "16",
    "--batch-size",
    "8",
    "--dropout",
    "0",
    "--schedule",
    "constant",
    "--warmup-steps",
    "0",
    "--eval-every",
    "1000",
    "--device",
    "cpu",
    "--quiet",
    "--json",
]


def train(data: Path, run: Path, *extra, settings: list[str] = SETTINGS) -> dict:
    env = genseq_env()
    # Run outside the source tree: `-m genseq` there would import the uninstalled package.
    done = subprocess.run(
        [GENSEQ, "train", str(data), "-o", str(run), *settings, *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=run.parent,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def params(run: Path) -> dict[str, torch.Tensor]:
    return dict(load_checkpoint(run / "last").model.state_dict())


def assert_close(a: dict, b: dict, exact: bool = False) -> None:
    assert a.keys() == b.keys()
    for name in a:
        if exact:
            assert torch.equal(a[name], b[name]), name
        else:
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)


def test_two_processes_match_one_with_the_same_global_batch(tmp_path, tiny_data):
    one = train(tiny_data, tmp_path / "one", "--max-steps", "12")
    two = train(tiny_data, tmp_path / "two", "--max-steps", "12", "--nproc", "2")
    assert two["processes"] == 2 and two["replicas_in_sync"] is True
    assert two["tokens_seen"] == one["tokens_seen"]
    assert_close(params(tmp_path / "one"), params(tmp_path / "two"))
    log = (tmp_path / "two" / "log.jsonl").read_text().splitlines()
    replicas = [json.loads(line) for line in log if '"replicas"' in line]
    assert replicas and replicas[-1]["in_sync"] and len(set(replicas[-1]["digests"])) == 1


def test_a_resumed_two_process_run_matches_an_uninterrupted_one(tmp_path, tiny_data):
    train(tiny_data, tmp_path / "straight", "--max-steps", "12", "--nproc", "2")
    train(tiny_data, tmp_path / "resumed", "--max-steps", "6", "--nproc", "2")
    resumed = train(
        tiny_data, tmp_path / "resumed", "--resume", "--max-steps", "12", "--nproc", "2"
    )
    assert resumed["step"] == 12
    assert_close(params(tmp_path / "straight"), params(tmp_path / "resumed"), exact=True)


def test_two_processes_keep_the_same_weight_average_as_one(tmp_path, tiny_data):
    """Only rank 0 keeps the average; the replicas stay in sync and the saved average matches a
    one-process run's (the last --ema wins over SETTINGS's)."""
    one = train(tiny_data, tmp_path / "one", "--max-steps", "12", "--ema", "0.8")
    two = train(tiny_data, tmp_path / "two", "--max-steps", "12", "--ema", "0.8", "--nproc", "2")
    assert two["replicas_in_sync"] and one["step"] == two["step"] == 12
    state = torch.load(tmp_path / "two" / "last" / "train_state.pt", weights_only=True)
    assert state["ema"]["count"] == 6  # steps 7 to 12
    assert_close(params(tmp_path / "one"), params(tmp_path / "two"))


def test_resume_with_another_number_of_processes(tmp_path, tiny_data):
    train(tiny_data, tmp_path / "one", "--max-steps", "12")
    train(tiny_data, tmp_path / "switched", "--max-steps", "6", "--nproc", "2")
    state = torch.load(tmp_path / "switched" / "last" / "train_state.pt", weights_only=True)
    assert state["hidden"][0].shape[1] == 8  # the global batch's streams, not one rank's
    done = train(tiny_data, tmp_path / "switched", "--resume", "--max-steps", "12")
    assert done["processes"] == 1 and done["step"] == 12
    assert_close(params(tmp_path / "one"), params(tmp_path / "switched"))


def test_the_global_batch_must_divide_among_processes(tmp_path, tiny_data):
    env = genseq_env()
    done = subprocess.run(
        [
            GENSEQ,
            "train",
            str(tiny_data),
            "-o",
            str(tmp_path / "r"),
            "--nproc",
            "2",
            "--batch-size",
            "5",
            "--max-steps",
            "2",
            "--device",
            "cpu",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
    )
    assert done.returncode == 2  # refused before any process starts
    assert done.stderr.strip().splitlines() == [
        "error: --batch-size 5 must be a multiple of --nproc 2 (it is the global batch, shared "
        "out among the processes)"
    ]
