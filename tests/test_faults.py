"""Training survives faults: SIGKILL at random moments, SIGTERM, a full disk, a NaN loss."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from testkit import TINY as TINY_FLAGS
from testkit import small
from testkit import start as start_genseq

from genseq.checkpoint import load_checkpoint
from genseq.data import open_data
from genseq.errors import GenseqError
from genseq.plan import TrainConfig, parse_save_every
from genseq.train import Trainer

TINY = [*TINY_FLAGS, "--dropout", "0.1"]


def start(args: list[str]) -> subprocess.Popen:
    return start_genseq("train", *args)


def all_params(run: Path) -> dict[str, torch.Tensor]:
    return dict(load_checkpoint(run / "last").model.state_dict())


def again(run: Path) -> list[str]:
    """What a user adds to start a killed run again: --resume once it saved a checkpoint,
    else --overwrite (the directory may hold a log, or nothing but a killed save)."""
    if (run / "last").exists() or (run / ".last.old").exists():
        return ["--resume"]
    return ["--overwrite"]


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path, tiny_data):
    plan = [str(tiny_data), "--max-steps", "1000", "--save-every", "25", "--eval-every", "200",
            *TINY, "--quiet"]  # fmt: skip
    straight = tmp_path / "straight"
    began = time.monotonic()
    done = start([*plan, "-o", str(straight)])
    while done.poll() is None and not (straight / "last").exists():
        time.sleep(0.02)
    first_save = time.monotonic() - began  # start-up and the first 25 steps
    assert done.wait(timeout=300) == 0, done.stderr.read()
    training = time.monotonic() - began - first_save

    # Kill moments are measured on this machine: past start-up, then a fraction of the
    # training time, three fractions adding up to less than one run, so a fast machine
    # cannot finish the run before the last kill.
    run = tmp_path / "killed"
    rng = random.Random(7)
    for _ in range(3):
        proc = start([*plan, "-o", str(run), *again(run)])
        time.sleep(first_save + rng.uniform(0.05, 0.25) * training)
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # Whatever the moment of the kill, what is on disk loads.
        for name in ("last", "best"):
            if (run / name).exists() or (run / f".{name}.old").exists():
                load_checkpoint(run / name)
    final = start([*plan, "-o", str(run), *again(run)])
    assert final.wait(timeout=300) == 0, final.stderr.read()
    a, b = all_params(straight), all_params(run)
    for name in a:
        assert torch.equal(a[name], b[name]), name
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # no staging left behind


@pytest.mark.slow
def test_sigterm_saves_and_exits_143(tmp_path, tiny_data):
    run = tmp_path / "run"
    proc = start(
        [str(tiny_data), "-o", str(run), "--max-steps", "1000000", "--eval-every", "20", *TINY]
    )
    deadline = time.time() + 90
    while time.time() < deadline and not (run / "last").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err.decode()
    assert b"Traceback" not in err
    summary = load_checkpoint(run / "last").config["summary"]
    assert summary["stop_reason"] == "terminated"


def test_save_every_steps_and_seconds(tmp_path, tiny_data):
    assert parse_save_every("500") == (500, 0.0)
    assert parse_save_every("30s") == (0, 30.0)
    assert parse_save_every("2m") == (0, 120.0)
    for bad in ("0", "-3", "soon", "s"):
        with pytest.raises(Exception, match="--save-every"):
            parse_save_every(bad)
    saves = []
    real = Trainer.run.__globals__["save_checkpoint"]

    def spy(target, *args, **kwargs):
        saves.append(Path(target).name)
        return real(target, *args, **kwargs)

    Trainer.run.__globals__["save_checkpoint"] = spy
    try:
        Trainer(
            small(max_steps=20, eval_every=1000, save_every="5"),
            open_data(tiny_data),
            tmp_path / "r",
        ).run()
    finally:
        Trainer.run.__globals__["save_checkpoint"] = real
    assert saves.count("last") == 4 + 1  # steps 5, 10, 15, 20 and the end


def test_a_full_disk_during_a_save_keeps_the_last_good_checkpoint(tmp_path, tiny_data, monkeypatch):
    data = open_data(tiny_data)
    Trainer(small(max_steps=5), data, tmp_path / "r").run()
    before = (tmp_path / "r" / "last" / "model.safetensors").read_bytes()
    import safetensors.torch

    def no_space(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_model", no_space)
    with pytest.raises(GenseqError, match="checkpoint not saved .*No space"):
        Trainer(TrainConfig(max_steps=10, device="cpu"), data, tmp_path / "r", resume=True).run()
    monkeypatch.undo()
    assert (tmp_path / "r" / "last" / "model.safetensors").read_bytes() == before
    assert load_checkpoint(tmp_path / "r" / "last").config["summary"]["step"] == 5
    leftovers = [p.name for p in (tmp_path / "r").iterdir() if p.name.startswith(".")]
    assert leftovers == [".lock"]  # no staging directory; the run's lock file stays


def _on_loss_call(monkeypatch, n: int, corrupt) -> None:
    """Pass the n-th training loss (and its logits) through ``corrupt``."""
    from genseq.model import RecurrentLM

    real_loss = RecurrentLM.loss
    calls = [0]

    def patched(self, logits, targets):
        loss = real_loss(self, logits, targets)
        if not self.training:  # evaluations compute their loss the same way: not counted
            return loss
        calls[0] += 1
        return corrupt(logits, loss) if calls[0] == n else loss

    monkeypatch.setattr(RecurrentLM, "loss", patched)


def _nan_on_call(monkeypatch, n: int) -> None:
    """Make the n-th training loss NaN, as a diverging run would."""
    _on_loss_call(monkeypatch, n, lambda _logits, loss: loss * float("nan"))


def test_a_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(
    tmp_path, tiny_data, monkeypatch
):
    _nan_on_call(monkeypatch, 4)
    cfg = small(max_steps=50, eval_every=1, eval_tokens=64, log_every=1)
    with pytest.raises(GenseqError, match="--on-nan skip"):
        Trainer(cfg, open_data(tiny_data), tmp_path / "r").run()
    last = load_checkpoint(tmp_path / "r" / "last")
    assert last.config["summary"]["step"] == 3
    assert all(torch.isfinite(p).all() for p in last.model.parameters())


def test_on_nan_skip_skips_the_step_and_halves_the_learning_rate(tmp_path, tiny_data, monkeypatch):
    _nan_on_call(monkeypatch, 4)
    cfg = small(
        max_steps=10,
        on_nan="skip",
        schedule="constant",
        warmup_steps=0,
        lr=1e-3,
        log_every=1,
        eval_every=1000,
    )
    result = Trainer(cfg, open_data(tiny_data), tmp_path / "r").run()
    assert result.summary["skipped_steps"] == 1 and result.summary["step"] == 10
    log = [json.loads(x) for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in log if r["kind"] == "train"]
    assert lrs[0] == pytest.approx(1e-3) and lrs[-1] == pytest.approx(5e-4)
    assert all(torch.isfinite(p).all() for p in load_checkpoint(tmp_path / "r").model.parameters())


def test_on_nan_skip_gives_up_when_the_loss_stays_non_finite(tmp_path, tiny_data, monkeypatch):
    from genseq.model import RecurrentLM

    monkeypatch.setattr(RecurrentLM, "loss", lambda self, logits, y: logits.sum() * float("nan"))
    cfg = small(max_steps=30, on_nan="skip", eval_every=1000)
    with pytest.raises(GenseqError, match="in a row"):
        Trainer(cfg, open_data(tiny_data), tmp_path / "r").run()


def test_a_nan_between_log_intervals_never_reaches_a_checkpoint(tmp_path, tiny_data, monkeypatch):
    _nan_on_call(monkeypatch, 5)  # step 5: between the log at 10 and after the save at 3
    cfg = small(max_steps=50, eval_every=3, eval_tokens=64, log_every=10)
    with pytest.raises(GenseqError, match="non-finite"):
        Trainer(cfg, open_data(tiny_data), tmp_path / "r").run()
    last = load_checkpoint(tmp_path / "r" / "last")
    assert last.config["summary"]["step"] == 3
    assert all(torch.isfinite(p).all() for p in last.model.parameters())


def test_replace_dir_always_keeps_a_complete_copy(tmp_path, monkeypatch):
    """At every rename, the target or its .old copy exists, also after an earlier crash left
    only the .old copy."""
    import genseq.fileio as fileio

    target = tmp_path / "last"
    old = tmp_path / ".last.old"
    old.mkdir()
    (old / "model").write_text("v1")  # a crash between the two renames left only this
    real_rename = os.rename

    def checked_rename(src, dst):
        assert target.exists() or old.exists(), "no complete copy at this moment"
        real_rename(src, dst)

    monkeypatch.setattr(fileio.os, "rename", checked_rename)
    for version in ("v2", "v3"):
        staging = fileio.staging_dir(target)
        (staging / "model").write_text(version)
        fileio.replace_dir(staging, target)
        assert (target / "model").read_text() == version
        assert not old.exists()


def test_non_finite_gradients_from_a_finite_loss_are_caught_too(tmp_path, tiny_data, monkeypatch):
    def infinite_gradients(logits, loss):
        logits.register_hook(lambda grad: grad * float("inf"))
        return loss  # finite: only the gradients are poisoned

    _on_loss_call(monkeypatch, 5, infinite_gradients)
    cfg = small(max_steps=50, eval_every=1, eval_tokens=64, log_every=10, clip_norm=1.0)
    with pytest.raises(GenseqError, match="gradients became non-finite"):
        Trainer(cfg, open_data(tiny_data), tmp_path / "r").run()
    last = load_checkpoint(tmp_path / "r" / "last")
    assert last.config["summary"]["step"] == 4
    assert all(torch.isfinite(p).all() for p in last.model.parameters())
