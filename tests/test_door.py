"""Checked at the door: a checkpoint or data directory from outside is refused with one line,
cheaply and before anything is allocated, when its parts disagree or hold what no genseq
wrote; and a save that the disk cuts short says so in one line, keeping the previous one."""

from __future__ import annotations

from pathlib import Path

import pytest

from genseq.model import ModelConfig, RecurrentLM

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints" / "folk-tunes"


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
