"""--attention N: a recurrent model attending over its last N outputs. One step at a time gives
the logits of one forward pass (also where the window slides), and the model goes through the
one trainer, checkpoint format, sampler and CLI (resume bit for bit, round trips, the ABC
grammar, torchrun) like the plain cell."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from testkit import (
    TINY,
    assert_resume_is_exact,
    assert_sampled_tunes_keep_the_grammar,
    one_error_line,
    run,
    small,
)

from genseq.checkpoint import load_checkpoint, read_config
from genseq.data import open_data
from genseq.decode_step import LstmDecodeStep
from genseq.errors import UsageError
from genseq.model import ModelConfig, RecurrentLM, expand_state
from genseq.output_attention import AttentionState
from genseq.plan import TrainConfig, parameter_count
from genseq.sample import read_prompt
from genseq.train import Trainer

TOLERANCE = 1e-5  # float32 rounding of the same sums taken in another order
VOCAB = 23


def tiny(cell: str = "lstm", window: int = 4, **config) -> RecurrentLM:
    torch.manual_seed(0)
    settings = {"num_layers": 2, "hidden_size": 16, "embed_size": 8, **config}
    model = RecurrentLM(ModelConfig(vocab_size=VOCAB, cell=cell, attention=window, **settings))
    return model.eval()


def stepped(model: RecurrentLM, x: torch.Tensor) -> torch.Tensor:
    """Logits ``(B, T, V)`` one token at a time, the state carried."""
    state, out = model.init_state(x.size(0)), []
    for t in range(x.size(1)):
        logits, state = model.step(x[:, t], state)
        out.append(logits)
        assert state.memory.shape == (model.config.attention, x.size(0), 16)
    return torch.stack(out, dim=1)


def tokens(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


# -- the model -------------------------------------------------------------------------------------

VARIANTS = [
    {},
    {"tie_weights": True},  # the hidden state is wider than the tied embedding: a bridge
    {"adaptive_cutoffs": [5, 12]},
    {"vector_size": 6},  # pretrained vectors of another width: a projection
    {"dropout": 0.3, "weight_drop": 0.2},  # off in evaluation
]


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn-tanh"])
@pytest.mark.parametrize("window", [1, 4, 9])
def test_steps_give_the_logits_of_one_forward_pass(cell, window):
    """17 tokens: the window of past outputs fills, then slides."""
    model = tiny(cell, window)
    x = tokens(3, 17, seed=window)
    full, _ = model(x)
    assert (stepped(model, x) - full).abs().max() < TOLERANCE
    # A prompt read in windows with the state carried (as the sampler reads one) agrees too:
    # ``advance`` keeps the outputs it skips the output layer for.
    last, _ = read_prompt(model, x, 5)
    assert (last - full[:, -1]).abs().max() < TOLERANCE
    head, state = model(x[:, :6])
    tail, _ = model(x[:, 6:], state)
    assert (torch.cat([head, tail], dim=1) - full).abs().max() < TOLERANCE


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: ",".join(v) or "plain")
def test_every_output_layer_takes_the_attended_features(variant):
    model = tiny(**variant)
    x = tokens(2, 11)
    full, _ = model(x)
    assert (stepped(model, x) - full).abs().max() < TOLERANCE
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items() if k != "head.weight"}
    expected = model.config.weight_shapes()
    expected.pop("head.weight", None)  # a tied output layer is stored as embed.weight
    assert shapes == expected
    assert model.config.parameter_count() == model.num_parameters()


def test_the_attention_reaches_exactly_the_last_n_outputs():
    """Changing a token moves the logits of later positions through the recurrence, so the
    attention is checked on its own: keys outside the N before a query do not matter."""
    model = tiny(window=3)
    out = torch.randn(1, 8, 16)
    memory = torch.randn(3, 1, 16)
    mixed, _ = model.attn(out, memory)
    changed = out.clone()
    changed[0, 2] += 5.0  # the output at position 2: a key of queries 3, 4 and 5 only
    again, _ = model.attn(changed, memory)
    moved = (again - mixed).abs().amax(dim=-1)[0] > 0
    assert moved.tolist() == [False, False, True, True, True, True, False, False]


def test_one_prompt_expanded_to_a_batch_samples_like_batch_one():
    model = tiny("gru", window=5)
    prompt = tokens(1, 9)
    logits, state = read_prompt(model, prompt, 4)
    batch = expand_state(state, 3)
    assert isinstance(batch, AttentionState) and batch.memory.shape == (5, 3, 16)
    nxt = torch.tensor([1, 2, 3])
    many, _ = model.step(nxt, batch)
    for i in range(3):
        one, _ = model.step(nxt[i : i + 1], state)
        assert (many[i] - one[0]).abs().max() < TOLERANCE


def test_the_fused_lstm_decode_step_leaves_attention_models_to_step():
    plain = RecurrentLM(ModelConfig(vocab_size=VOCAB, hidden_size=256))
    attending = RecurrentLM(ModelConfig(vocab_size=VOCAB, hidden_size=256, attention=4))
    cpu = torch.device("cpu")
    assert LstmDecodeStep.suits(plain, 1, cpu) and not LstmDecodeStep.suits(attending, 1, cpu)


def test_evaluation_carries_the_outputs_as_the_sampler_does():
    from genseq.evaluate import evaluate_tokens

    model = tiny(window=6)
    stream = tokens(1, 40, seed=4)[0]
    result = evaluate_tokens(model, stream.numpy(), streams=1, seq_len=7)
    logits, _ = model(stream[None, :-1])
    expected = model.loss(logits, stream[None, 1:]).item()
    assert result.tokens == 39 and abs(result.loss - expected) < TOLERANCE


# -- configs, the planner, old checkpoints ---------------------------------------------------------


def test_the_planner_leaves_attention_as_given_and_counts_its_weights():
    from genseq.plan import plan

    cpu = torch.device("cpu")
    assert plan(TrainConfig(), 10**6, 65, "char", cpu).attention is None
    planned = plan(TrainConfig(attention=8), 10**6, 65, "char", cpu)
    assert planned.attention == 8
    from genseq.training.build import model_config

    config = model_config(planned, 65)
    assert config.attention == 8 and "attention over the last 8 outputs" in config.describe()
    assert parameter_count(planned, 65) == RecurrentLM(config).num_parameters()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"attention": -1}, "--attention must be from 0"),
        ({"arch": "transformer", "attention": 4}, "--attention is for recurrent models"),
    ],
)
def test_impossible_attention_settings_are_usage_errors(settings, message):
    with pytest.raises(UsageError, match=message):
        TrainConfig(**settings).validate()


def test_a_config_json_with_impossible_attention_describes_no_model():
    with pytest.raises(ValueError, match="attention must be an integer from 0"):
        ModelConfig(vocab_size=9, attention=-1)
    with pytest.raises(ValueError, match="it attends already"):
        transformer = {"arch": "transformer", "heads": 2, "context": 4, "tie_weights": True}
        ModelConfig(vocab_size=9, hidden_size=8, embed_size=8, attention=4, **transformer)


def test_a_checkpoint_from_before_attention_loads_without_it(tiny_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(tiny_run / "best", old)
    config = json.loads((old / "config.json").read_text())
    for section in ("model", "train"):
        config[section].pop("attention", None)
    (old / "config.json").write_text(json.dumps(config))
    assert read_config(old)["model"]["attention"] == 0
    model = load_checkpoint(old).model
    assert model.config.attention == 0 and model.attn is None
    assert not isinstance(model.init_state(1), AttentionState)


# -- the trainer, resume, the CLI ------------------------------------------------------------------


@pytest.mark.parametrize("cell, precision", [("lstm", "fp32"), ("gru", "fp32"), ("lstm", "bf16")])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, tiny_data, cell, precision):
    """The past outputs are carried across batches like (h, c), and saved with them: an
    interrupted and resumed run ends with the same weights, bit for bit (under bf16 autocast
    too, whose windows return bf16 outputs that are carried on in fp32)."""
    cfg = {"cell": cell, "attention": 5, "max_steps": 12, "eval_every": 6, "dropout": 0.2}
    cfg["precision"] = precision

    def carries_past_outputs(trainer):
        assert isinstance(trainer.hidden, AttentionState)

    straight, _ = assert_resume_is_exact(
        small(**cfg), open_data(tiny_data), tmp_path, 5, at_stop=carries_past_outputs
    )
    assert "attn.query.weight" in straight


@pytest.mark.parametrize(
    "change, message",
    [
        ({"attention": 0}, "holds attn.combine.bias, which config.json's model has not"),
        ({"attention": -3}, "describes no valid model"),
    ],
)
def test_a_damaged_attention_checkpoint_is_refused_at_the_door(
    tmp_path, tiny_data, change, message
):
    from genseq.errors import GenseqError

    Trainer(small(attention=4, max_steps=2), open_data(tiny_data), tmp_path / "run").run()
    bad = tmp_path / "run" / "best"
    config = json.loads((bad / "config.json").read_text())
    config["model"].update(change)
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(GenseqError, match=message):
        load_checkpoint(bad)


def test_train_sample_info_eval_and_resume_from_the_cli(tmp_path, words_file):
    out = tmp_path / "run"
    flags = [*TINY, "--attention", "8", "--dropout", "0.1"]
    trained = run("train", words_file, "-o", out, *flags, "--max-steps", "5", "--json")
    assert trained.returncode == 0, trained.stderr.decode()
    assert "attention over the last 8 outputs" in trained.stderr.decode()
    assert read_config(out / "best")["model"]["attention"] == 8
    sampled = run("sample", out, "--num-samples", "3", "-n", "40", "--seed", "3", "--json")
    assert sampled.returncode == 0, sampled.stderr.decode()
    rows = [json.loads(line) for line in sampled.stdout.decode().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert len({r["text"] for r in rows}) == 3  # three samples, drawn as one batch
    info = run("info", out)
    assert "attention over the last 8 outputs" in info.stdout.decode()
    assert json.loads(run("info", out, "--json").stdout)["model"]["attention"] == 8
    evaluated = run("eval", out, words_file, "--json")
    assert evaluated.returncode == 0, evaluated.stderr.decode()
    resumed = run("train", words_file, "-o", out, "--resume", "--max-steps", "7", "--json")
    assert json.loads(resumed.stdout)["step"] == 7, resumed.stderr.decode()
    changed = run("train", words_file, "-o", out, "--resume", "--attention", "4")
    assert changed.returncode == 2
    assert "--attention 4 differs" in one_error_line(changed.stderr.decode())


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--attention", "-1"], "--attention must be from 0 (off)"),
        (["--arch", "transformer", "--attention", "8"], "--attention is for recurrent models"),
    ],
)
def test_bad_attention_options_are_one_usage_error(tmp_path, words_file, extra, message):
    result = run("train", words_file, "-o", tmp_path / "r", *extra, "--max-steps", "1")
    assert result.returncode == 2
    assert message in one_error_line(result.stderr.decode())
    assert not (tmp_path / "r").exists()


def test_tunes_sampled_from_an_attention_lstm_keep_the_grammar(tmp_path, cli):
    """The ABC grammar constraint is the sampler's: it holds an attention LSTM to valid tunes."""
    cfg = small(attention=16, batch_size=8, max_steps=6, seed=3)
    run = assert_sampled_tunes_keep_the_grammar(cfg, tmp_path, cli)
    info = cli("info", run)
    assert "attention over the last 16 outputs" in info.stdout


@pytest.mark.slow
def test_two_processes_train_an_attention_lstm_like_one_and_resume_exactly(tmp_path, tiny_data):
    """torchrun's 2-process gloo run: each process carries its own streams' past outputs; the
    same weights as one process, and an interrupted two-process run resumes bit for bit."""
    from test_distributed import SETTINGS, assert_close, params, train

    mine = [*SETTINGS, "--attention", "6"]

    def go(run_dir, *extra):
        return train(tiny_data, run_dir, *extra, settings=mine)

    one = go(tmp_path / "one", "--max-steps", "8")
    two = go(tmp_path / "two", "--max-steps", "8", "--nproc", "2")
    assert two["processes"] == 2 and two["replicas_in_sync"] is True
    assert two["tokens_seen"] == one["tokens_seen"]
    assert_close(params(tmp_path / "one"), params(tmp_path / "two"))
    go(tmp_path / "resumed", "--max-steps", "4", "--nproc", "2")
    go(tmp_path / "resumed", "--resume", "--max-steps", "8", "--nproc", "2")
    assert_close(params(tmp_path / "two"), params(tmp_path / "resumed"), exact=True)
