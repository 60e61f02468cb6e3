"""Checked at the door: a checkpoint or data directory from outside is refused with one line,
cheaply and before anything is allocated, when its parts disagree or hold what no genseq
wrote; and a save that the disk cuts short says so in one line, keeping the previous one."""

from __future__ import annotations

import errno
import resource
from pathlib import Path

import pytest
import torch
from testkit import TINY, one_error_line, run

from genseq.checkpoint import load_checkpoint, save_checkpoint
from genseq.errors import GenseqError
from genseq.model import ModelConfig, RecurrentLM

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints" / "folk-tunes"


def the_only_line(stderr: str) -> str:
    """The error line, and nothing else on stderr (no C++ frames, no traceback)."""
    line = one_error_line(stderr)
    assert stderr.strip().splitlines() == [line], stderr
    assert len(line) < 500, line
    return line


# -- 2: a full disk during a save ----------------------------------------------------------------


def _no_space_in_safetensors(monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    def save_model(*_args, **_kwargs):  # what safetensors raises on a full disk
        raise SafetensorError(
            "Error while serializing: I/O error: No space left on device (os error 28)"
        )

    monkeypatch.setattr(safetensors.torch, "save_model", save_model)


def _no_space_in_torch_save(monkeypatch):
    def save(*_args, **_kwargs):  # what torch.save raises when the disk cuts its zip short
        raise RuntimeError(
            "[enforce fail at inline_container.cc:672] . unexpected pos 105472 vs 105360\n"
            "frame #0: c10::ThrowEnforceNotMet(char const*, int, char const*) + 0x68\n"
            "frame #1: caffe2::serialize::PyTorchStreamWriter::writeRecord + 0x4cf"
        )

    monkeypatch.setattr(torch, "save", save)


def _no_space_in_config(monkeypatch):
    import genseq.checkpoint

    def write(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(genseq.checkpoint, "atomic_write_text", write)


@pytest.mark.parametrize(
    "fill, cause",
    [
        (_no_space_in_safetensors, "model.safetensors: No space left on device"),
        (_no_space_in_torch_save, "train_state.pt: the write stopped short (unexpected pos"),
        (_no_space_in_config, "No space left on device"),
    ],
)
def test_a_full_disk_during_a_save_is_one_line_and_keeps_the_previous_checkpoint(
    tmp_path, tiny_run, monkeypatch, fill, cause
):
    loaded = load_checkpoint(tiny_run / "best")
    target = tmp_path / "last"
    state = {"step": torch.tensor(1)}
    save_checkpoint(target, loaded.model, loaded.tokenizer, {}, {"step": 1}, state)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    fill(monkeypatch)
    with pytest.raises(GenseqError) as caught:
        save_checkpoint(target, loaded.model, loaded.tokenizer, {}, {"step": 2}, state)
    message = str(caught.value)
    assert "\n" not in message and cause in message, message
    assert message.startswith(f"{target}: checkpoint not saved")
    assert message.endswith("the previous one is kept")
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]  # no staging left behind


def _file_size_limit(limit: int):
    """Writes past ``limit`` bytes fail (EFBIG), as on a full disk; Python ignores SIGXFSZ."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.slow
@pytest.mark.parametrize("fails_in", ["model.safetensors", "train_state.pt"])
def test_train_on_a_disk_that_fills_during_the_save_says_so_in_one_line(
    tmp_path, tiny_data, fails_in
):
    run_dir = tmp_path / "run"
    first = run("train", tiny_data, "-o", run_dir, "--max-steps", "5", "--quiet", *TINY)
    assert first.returncode == 0, first.stderr
    last = run_dir / "last"
    before = {p.name: p.read_bytes() for p in last.iterdir()}
    weights, state = len(before["model.safetensors"]), len(before["train_state.pt"])
    # The real writers fail: below the weights' size safetensors does; between it and the
    # training state's size, torch.save does.
    limit = weights // 2 if fails_in == "model.safetensors" else (weights + state) // 2
    resumed = run(
        "train", tiny_data, "-o", run_dir, "--resume", "--max-steps", "10", "--quiet",
        preexec_fn=_file_size_limit(limit),
    )  # fmt: skip
    assert resumed.returncode == 1, resumed.stderr
    line = the_only_line(resumed.stderr.decode())
    assert "checkpoint not saved" in line and fails_in in line, line
    assert line.endswith("the previous one is kept")
    assert {p.name: p.read_bytes() for p in last.iterdir()} == before
    assert load_checkpoint(last).config["summary"]["step"] == 5
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(vocab_size=30, hidden_size=16, embed_size=8),
        ModelConfig(vocab_size=30, hidden_size=8, embed_size=8, tie_weights=True),
        ModelConfig(vocab_size=30, hidden_size=16, embed_size=8, tie_weights=True),
        ModelConfig(vocab_size=30, hidden_size=12, embed_size=4, num_layers=3, cell="gru"),
        ModelConfig(vocab_size=30, hidden_size=6, embed_size=4, num_layers=2, cell="rnn-tanh"),
        ModelConfig(vocab_size=90, hidden_size=32, embed_size=8, adaptive_cutoffs=[10, 40]),
        ModelConfig(vocab_size=90, hidden_size=3, embed_size=8, adaptive_cutoffs=[5, 9, 89]),
        ModelConfig(vocab_size=90, hidden_size=64, embed_size=8, cell="rnn-relu", tie_weights=True),
    ],
)
def test_weight_shapes_are_those_of_the_saved_model(tmp_path, config):
    from safetensors import safe_open
    from safetensors.torch import save_model

    model = RecurrentLM(config)
    save_model(model, str(tmp_path / "w.safetensors"))
    with safe_open(str(tmp_path / "w.safetensors"), framework="pt") as f:
        saved = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    assert config.weight_shapes() == saved
    assert config.parameter_count() == model.num_parameters()


@pytest.mark.parametrize(
    "values",
    [
        {"hidden_size": 10**100},
        {"num_layers": 257},
        {"vocab_size": 2**32 + 1},
        {"hidden_size": 2**16, "num_layers": 200},  # 2**42 parameters
        {"dropout": True},
        {"weight_drop": "0.1"},
        {"cell": ["lstm"]},
        {"adaptive_cutoffs": "12"},
        {"adaptive_cutoffs": [2.5]},
    ],
)
def test_model_config_bounds(values):
    with pytest.raises(ValueError):
        ModelConfig(**{"vocab_size": 100, **values})


def test_model_config_from_something_not_an_object_is_a_type_error():
    with pytest.raises(TypeError):
        ModelConfig.from_dict(["vocab_size", 10])
