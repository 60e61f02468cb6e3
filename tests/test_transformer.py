"""--arch transformer: the KV cache gives a full forward pass's logits, the cache slides as
documented past --context, and the Transformer goes through the one trainer, checkpoint
format, sampler and CLI (resume bit for bit, round trips, the door, the planner)."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from testkit import (
    assert_resume_is_exact,
    assert_sampled_tunes_keep_the_grammar,
    one_error_line,
    run,
    small,
)

from genseq.checkpoint import load_checkpoint, read_config
from genseq.data import open_data
from genseq.errors import UsageError
from genseq.model import ModelConfig, build_model
from genseq.plan import TrainConfig, plan
from genseq.sample import read_prompt
from genseq.train import Trainer
from genseq.transformer import TransformerLM

TOLERANCE = 1e-5  # float32 rounding of the same sums taken in another order


def tiny(context: int = 5, layers: int = 2, vocab: int = 23, seed: int = 0) -> TransformerLM:
    torch.manual_seed(seed)
    config = ModelConfig(
        vocab_size=vocab,
        arch="transformer",
        num_layers=layers,
        hidden_size=16,
        embed_size=16,
        heads=2,
        context=context,
        tie_weights=True,
    )
    return build_model(config).eval()


def stepped(model: TransformerLM, x: torch.Tensor) -> torch.Tensor:
    """Logits ``(B, T, V)`` one token at a time through the cache."""
    state, out = model.init_state(x.size(0)), []
    for t in range(x.size(1)):
        logits, state = model.step(x[:, t], state)
        out.append(logits)
        assert state.layers[0][0].size(2) == min(t + 1, model.config.context - 1)
    return torch.stack(out, dim=1)


# -- the KV cache ----------------------------------------------------------------------------------


@pytest.mark.parametrize("context", [1, 4, 40])  # shorter than, and longer than, the sequence
def test_cached_steps_give_the_logits_of_one_forward_pass(context):
    model = tiny(context)
    x = torch.randint(0, 23, (3, 17), generator=torch.Generator().manual_seed(context))
    full, _ = model(x)
    assert (stepped(model, x) - full).abs().max() < TOLERANCE
    # A prompt read in windows with the cache carried (as the sampler reads one) agrees too.
    logits, state = read_prompt(model, x[:1], window=6)
    assert (logits - full[:1, -1]).abs().max() < TOLERANCE
    assert state.position == 17


def test_past_the_context_a_layer_sees_only_the_last_context_tokens():
    """One layer: a token more than ``context - 1`` back changes nothing (the cache slid past
    it). Two layers: it still reaches through the cached keys of the first layer, as
    documented (Mistral-style sliding-window attention; receptive field layers x context)."""
    x = torch.randint(0, 23, (1, 12), generator=torch.Generator().manual_seed(1))
    y = x.clone()
    y[0, 0] = (x[0, 0] + 1) % 23
    one = tiny(context=4, layers=1)
    a, b = stepped(one, x), stepped(one, y)
    assert (a[0, 4:] - b[0, 4:]).abs().max() < TOLERANCE  # positions 4.. see 1.. only
    assert (a[0, 3] - b[0, 3]).abs().max() > 1e-4  # position 3 still sees position 0
    two = tiny(context=4, layers=2)
    a, b = stepped(two, x), stepped(two, y)
    assert (a[0, 4:7] - b[0, 4:7]).abs().max() > 1e-4
    assert (a[0, 7:] - b[0, 7:]).abs().max() < TOLERANCE  # beyond 2 x (context - 1)


def test_a_long_sample_keeps_a_bounded_cache():
    model = tiny(context=8, layers=1)
    state = model.init_state(2)
    for _ in range(50):
        _, state = model.step(torch.tensor([1, 2]), state)
    assert state.position == 50 and state.layers[0][0].shape == (2, 2, 7, 8)


# -- config, shapes and the planner ----------------------------------------------------------------


def test_weight_shapes_are_the_models_and_migrate_reads_old_configs_as_recurrent():
    model = tiny()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes == model.config.weight_shapes()
    assert model.config.parameter_count() == model.num_parameters()
    old = ModelConfig(vocab_size=9).to_dict()
    del old["arch"], old["heads"], old["context"]
    assert ModelConfig.from_dict(old).arch == "rnn"


def test_a_checkpoint_from_before_transformers_loads_as_recurrent(tiny_run, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(tiny_run / "best", old)
    config = json.loads((old / "config.json").read_text())
    for section in ("model", "train"):
        for name in ("arch", "heads", "context"):
            del config[section][name]
    (old / "config.json").write_text(json.dumps(config))
    migrated = read_config(old)
    assert migrated["model"]["arch"] == migrated["train"]["arch"] == "rnn"
    assert load_checkpoint(old).model.config.arch == "rnn"


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"hidden_size": 30, "heads": 4}, "--hidden-size 30 must split into --heads 4"),
        ({"hidden_size": 12, "heads": 4}, "--hidden-size 12 must split into --heads 4"),  # odd
        ({"cell": "gru"}, "--cell is for recurrent models"),
        ({"weight_drop": 0.2}, "--weight-drop is for recurrent models"),
        ({"tie_weights": False}, "always tied"),
        ({"hidden_size": 32, "embed_size": 16}, "--embed-size 16 must be"),
    ],
)
def test_impossible_transformer_settings_are_usage_errors(settings, message):
    with pytest.raises(UsageError, match=message):
        TrainConfig(arch="transformer", **settings).validate()


def test_attention_options_need_the_transformer():
    with pytest.raises(UsageError, match="--heads is for --arch transformer"):
        TrainConfig(heads=4).validate()


def test_the_planner_sizes_a_small_transformer_and_keeps_the_lstm_default():
    cpu = torch.device("cpu")
    from genseq import plan as rules

    c = plan(TrainConfig(arch="transformer"), 1_000_000, 65, "char", cpu)
    width, context = rules.TRANSFORMER_WIDTH["cpu"], rules.TRANSFORMER_CONTEXT["cpu"]
    assert (c.num_layers, c.hidden_size, c.heads) == (rules.TRANSFORMER_LAYERS, width, 4)
    assert c.context == c.seq_len == context  # training windows are the attention window
    assert c.batch_size == rules.TRANSFORMER_CPU_BATCH
    assert (c.embed_size, c.tie_weights, c.adaptive_cutoffs) == (width, True, [])
    assert c.lr == rules.TRANSFORMER_LR
    assert plan(TrainConfig(arch="transformer", hidden_size=24), 10**6, 65, "char", cpu).heads == 4
    assert plan(TrainConfig(arch="transformer", hidden_size=12), 10**6, 65, "char", cpu).heads == 2
    default = plan(TrainConfig(), 1_000_000, 65, "char", cpu)
    assert (default.arch, default.cell, default.heads) == ("rnn", "lstm", None)
    # bf16 autocast where it was measured to pay: characters, a CPU that multiplies bf16
    # natively, a run of the default length or shorter
    assert c.precision == "fp32"
    native = plan(TrainConfig(arch="transformer"), 10**6, 65, "char", cpu, bf16_native=True)
    assert native.precision == "bf16"
    short = TrainConfig(arch="transformer", time_budget=rules.TRANSFORMER_BF16_SECONDS)
    assert plan(short, 10**6, 65, "char", cpu, bf16_native=True).precision == "bf16"
    long = TrainConfig(arch="transformer", time_budget=rules.TRANSFORMER_BF16_SECONDS + 1)
    assert plan(long, 10**6, 65, "char", cpu, bf16_native=True).precision == "fp32"
    steps = TrainConfig(arch="transformer", max_steps=100)  # a length that is not a time
    assert plan(steps, 10**6, 65, "char", cpu, bf16_native=True).precision == "fp32"
    assert (
        plan(TrainConfig(arch="transformer"), 10**6, 65, "abc", cpu, bf16_native=True).precision
        == "fp32"
    )


# -- the trainer, checkpoints and resume -----------------------------------------------------------

TINY_TRANSFORMER = {
    "arch": "transformer",
    "embed_size": None,
    "hidden_size": 16,
    "heads": 2,
    "context": 12,
    "num_layers": 2,
}


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, tiny_data):
    """Dropout (embedding, attention, residual), a cosine schedule and the data position:
    an interrupted and resumed run ends with the same weights, bit for bit."""
    cfg = {**TINY_TRANSFORMER, "max_steps": 16, "eval_every": 8, "dropout": 0.2}
    assert_resume_is_exact(small(**cfg), open_data(tiny_data), tmp_path, 7)


@pytest.fixture(scope="module")
def transformer_run(tmp_path_factory, tiny_data):
    out = tmp_path_factory.mktemp("transformer") / "run"
    Trainer(small(**TINY_TRANSFORMER, max_steps=6, eval_every=3), open_data(tiny_data), out).run()
    return out


def test_a_checkpoint_round_trips(transformer_run, tmp_path):
    ckpt = load_checkpoint(transformer_run)
    model = ckpt.model
    assert isinstance(model, TransformerLM) and not model.training
    saved = read_config(ckpt.path)["model"]
    assert (saved["arch"], saved["heads"], saved["context"]) == ("transformer", 2, 12)
    x = torch.randint(0, model.config.vocab_size, (2, 20))
    again = load_checkpoint(transformer_run).model
    assert torch.equal(model(x)[0], again(x)[0])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"heads": 3}, "describes no valid model"),
        ({"hidden_size": 32, "embed_size": 32}, "embed.weight is"),
        ({"vector_size": 6}, "embed.weight is"),  # a projection the weights file lacks
        ({"arch": "rnn"}, "no rnn.weight_ih_l0"),
        ({"num_layers": 1}, "holds blocks.1."),
        ({"context": 0}, "describes no valid model"),
    ],
)
def test_a_damaged_transformer_checkpoint_is_refused_at_the_door(
    transformer_run, tmp_path, change, message
):
    bad = tmp_path / "bad"
    shutil.copytree(transformer_run / "best", bad)
    config = json.loads((bad / "config.json").read_text())
    config["model"].update(change)
    (bad / "config.json").write_text(json.dumps(config))
    for command in (["sample", bad, "-n", "5"], ["info", bad]):
        result = run(*command)
        assert result.returncode == 1
        assert message in one_error_line(result.stderr.decode())


# -- the CLI ---------------------------------------------------------------------------------------

CLI_FLAGS = [
    *["--arch", "transformer", "--layers", "2", "--heads", "2", "--hidden-size", "16"],
    *["--context", "16", "--dropout", "0.1", "--batch-size", "4", "--device", "cpu"],
]


def test_train_sample_info_and_eval_from_the_cli(tmp_path, words_file):
    out = tmp_path / "run"
    trained = run("train", words_file, "-o", out, *CLI_FLAGS, "--max-steps", "5", "--json")
    assert trained.returncode == 0, trained.stderr.decode()
    assert "2x16 Transformer, 2 heads, context 16" in trained.stderr.decode()
    assert json.loads(trained.stdout)["step"] == 5
    sampled = run("sample", out, "--num-samples", "3", "-n", "40", "--seed", "3", "--json")
    assert sampled.returncode == 0, sampled.stderr.decode()
    rows = [json.loads(line) for line in sampled.stdout.decode().splitlines()]
    assert [r["index"] for r in rows] == [0, 1, 2]
    assert all(r["tokens"] == 40 or r["finish_reason"] == "eos" for r in rows)
    assert len({r["text"] for r in rows}) == 3  # three samples, drawn as one batch
    model = json.loads(run("info", out, "--json").stdout)["model"]
    assert (model["arch"], model["heads"], model["context"]) == ("transformer", 2, 16)
    assert b"2x16 Transformer, 2 heads, context 16" in run("info", out).stdout
    evaluated = run("eval", out, words_file, "--json")
    assert evaluated.returncode == 0, evaluated.stderr.decode()
    resumed = run("train", words_file, "-o", out, "--resume", "--max-steps", "7", "--json")
    assert json.loads(resumed.stdout)["step"] == 7, resumed.stderr.decode()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--arch", "transformer", "--hidden-size", "30", "--heads", "4"], "--heads 4"),
        (["--arch", "lstm"], "--arch"),
        (["--heads", "2"], "--heads is for --arch transformer"),
        (["--arch", "transformer", "--context", "0"], "--context must be at least 1"),
    ],
)
def test_bad_transformer_options_are_one_usage_error(tmp_path, words_file, extra, message):
    result = run("train", words_file, "-o", tmp_path / "r", *extra, "--max-steps", "1")
    assert result.returncode == 2
    assert message in one_error_line(result.stderr.decode())
    assert not (tmp_path / "r").exists()


# -- several processes, bf16, tunes -------------------------------------------------------------


@pytest.mark.slow
def test_two_processes_train_a_transformer_like_one_and_resume_exactly(tmp_path, tiny_data):
    """torchrun's 2-process gloo run: the same weights as one process with the same global
    batch, and an interrupted two-process run resumes bit for bit."""
    from test_distributed import SETTINGS, assert_close, params, train

    mine = [*SETTINGS, "--arch", "transformer", "--embed-size", "16", "--heads", "2"]
    mine += ["--context", "16", "--layers", "2"]

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


def test_a_bf16_transformer_keeps_fp32_weights_and_resumes_exactly(tmp_path, tiny_data):
    cfg = {**TINY_TRANSFORMER, "max_steps": 8, "precision": "bf16", "dropout": 0.1}
    straight, _ = assert_resume_is_exact(small(**cfg), open_data(tiny_data), tmp_path, 3)
    assert all(p.dtype == torch.float32 for p in straight.values())


def test_tunes_sampled_from_a_transformer_keep_the_grammar(tmp_path, cli):
    """The ABC grammar constraint is the sampler's: it holds a Transformer to valid tunes."""
    cfg = small(**{**TINY_TRANSFORMER, "context": 32}, batch_size=8, max_steps=6, seed=3)
    assert_sampled_tunes_keep_the_grammar(cfg, tmp_path, cli)


# -- evaluation and faults ------------------------------------------------------------------------


def test_evaluation_carries_the_cache_as_the_sampler_does():
    """``genseq eval`` reads a stream in windows with the cache carried: the same loss as one
    forward pass over the whole stream (every token sees its last ``context`` tokens)."""
    from genseq.evaluate import evaluate_tokens

    model = tiny(context=6)
    tokens = torch.randint(0, 23, (40,), generator=torch.Generator().manual_seed(4))
    result = evaluate_tokens(model, tokens.numpy(), streams=1, seq_len=7)
    logits, _ = model(tokens[None, :-1])
    expected = model.loss(logits, tokens[None, 1:]).item()
    assert result.tokens == 39 and abs(result.loss - expected) < TOLERANCE


def test_on_nan_skip_restarts_a_transformer_cleanly(tmp_path, tiny_data, monkeypatch):
    real_loss, calls = TransformerLM.loss, [0]

    def patched(self, logits, targets):
        loss = real_loss(self, logits, targets)
        calls[0] += self.training
        return loss * float("nan") if self.training and calls[0] == 3 else loss

    monkeypatch.setattr(TransformerLM, "loss", patched)
    cfg = small(**TINY_TRANSFORMER, max_steps=6, on_nan="skip", eval_every=1000)
    result = Trainer(cfg, open_data(tiny_data), tmp_path / "r").run()
    assert result.summary["skipped_steps"] == 1 and result.summary["step"] == 6
    assert all(torch.isfinite(p).all() for p in load_checkpoint(tmp_path / "r").model.parameters())


@pytest.mark.slow
def test_sigterm_saves_a_transformer_run_that_resumes(tmp_path, tiny_data):
    import signal
    import time

    from testkit import start

    out = tmp_path / "run"
    flags = [*CLI_FLAGS, "--eval-every", "5", "--max-steps", "1000000"]
    proc = start("train", tiny_data, "-o", out, *flags)
    deadline = time.time() + 90
    while time.time() < deadline and not (out / "last").exists():
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143 and b"Traceback" not in err, err.decode()
    step = load_checkpoint(out / "last").config["summary"]["step"]
    resumed = run("train", tiny_data, "-o", out, "--resume", "--max-steps", step + 2, "--json")
    assert json.loads(resumed.stdout)["step"] == step + 2, resumed.stderr.decode()
