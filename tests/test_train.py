"""The trainer: it learns, it resumes exactly, and its checkpoints are safe to load."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch
from safetensors import safe_open
from testkit import small

from genseq.checkpoint import find_checkpoint, load_checkpoint, load_train_state, read_config
from genseq.corpus import resolve_sources
from genseq.data import open_data
from genseq.errors import GenseqError, UsageError
from genseq.generate import generate
from genseq.plan import TrainConfig
from genseq.prepare import TokenizeOptions, tokenize_corpus
from genseq.sample import SamplingSettings
from genseq.train import Trainer

PATTERN = "0123456789\n"


@pytest.fixture(scope="module")
def pattern_data(tmp_path_factory, pattern_file):
    out = tmp_path_factory.mktemp("pattern-data") / "d"
    tokenize_corpus(resolve_sources([str(pattern_file)]), out, TokenizeOptions())
    return out


def test_a_tiny_model_learns_a_pattern_and_samples_it(tmp_path, pattern_data):
    cfg = small(hidden_size=32, max_steps=250, lr=1e-2, dropout=0.0, eval_every=125)
    result = Trainer(cfg, open_data(pattern_data), tmp_path / "run").run()
    assert result.summary["val_loss"] < 0.1  # the pattern is fully predictable
    ckpt = load_checkpoint(tmp_path / "run")
    samples = generate(ckpt, "345", SamplingSettings(greedy=True), max_new_tokens=30, seed=0)
    assert samples[0].text == (PATTERN * 4)[6:36]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if r["kind"] == "eval"] == [125, 250]  # not 250 twice
    assert (tmp_path / "run" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("cell", ["gru", "rnn-tanh"])
def test_other_cells_train(tmp_path, pattern_data, cell):
    result = Trainer(small(cell=cell, max_steps=20), open_data(pattern_data), tmp_path / "r").run()
    assert result.summary["step"] == 20
    assert load_checkpoint(tmp_path / "r").model.config.cell == cell


def _params(run_dir):
    return dict(load_checkpoint(run_dir / "last").model.state_dict())


@pytest.mark.parametrize("stop_at", [17, 27])
def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, tiny_data, stop_at):
    """Dropout, a stateful hidden state, a cosine schedule and (from step 20 of 40) the weight
    average: all must be restored."""
    cfg = {"max_steps": 40, "eval_every": 10, "dropout": 0.2, "num_layers": 2}
    data = open_data(tiny_data)
    Trainer(small(**cfg), data, tmp_path / "straight").run()

    def interrupt(trainer):
        if trainer.step == stop_at:
            trainer.request_stop()

    first = Trainer(small(**cfg), data, tmp_path / "resumed", on_step=interrupt).run()
    assert first.summary["stop_reason"] == "interrupted" and first.summary["step"] == stop_at
    state = load_train_state(tmp_path / "resumed" / "last")
    assert state["step"] == stop_at
    assert read_config(tmp_path / "resumed" / "last")["train"]["ema"] > 0  # char level: auto
    assert (state["ema"] is not None) == (stop_at > 20)
    second = Trainer(TrainConfig(device="cpu"), data, tmp_path / "resumed", resume=True).run()
    assert second.summary["step"] == 40
    straight, resumed = _params(tmp_path / "straight"), _params(tmp_path / "resumed")
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert torch.equal(straight[name], resumed[name]), name


def test_resume_may_extend_but_not_change_the_model(tmp_path, tiny_data):
    data = open_data(tiny_data)
    Trainer(small(max_steps=5), data, tmp_path / "r").run()
    with pytest.raises(UsageError, match="hidden-size"):
        Trainer(small(hidden_size=32), data, tmp_path / "r", resume=True)
    longer = Trainer(TrainConfig(max_steps=8, device="cpu"), data, tmp_path / "r", resume=True)
    assert longer.run().summary["step"] == 8


def test_an_existing_run_is_not_overwritten(tmp_path, tiny_data):
    data = open_data(tiny_data)
    Trainer(small(max_steps=3), data, tmp_path / "r").run()
    before = (tmp_path / "r" / "last" / "model.safetensors").read_bytes()
    with pytest.raises(GenseqError, match="--resume"):
        Trainer(small(max_steps=3), data, tmp_path / "r")
    assert (tmp_path / "r" / "last" / "model.safetensors").read_bytes() == before
    with pytest.raises(GenseqError, match="no last/ checkpoint"):
        Trainer(small(), data, tmp_path / "empty", resume=True)


def test_patience_stops_early(tmp_path, tiny_data):
    cfg = small(
        max_steps=400,
        eval_every=1,
        eval_tokens=64,
        patience=2,
        lr=3.0,
        optimizer="sgd",
        schedule="constant",
    )
    result = Trainer(cfg, open_data(tiny_data), tmp_path / "r").run()
    assert result.summary["stop_reason"] == "patience"
    assert result.summary["step"] < 400


def test_time_budget_ends_on_time(tmp_path, tiny_data):
    import time

    t0 = time.perf_counter()
    result = Trainer(
        small(time_budget=6.0), open_data(tiny_data), tmp_path / "r", process_start=t0
    ).run()
    assert result.summary["stop_reason"] == "time_budget"
    assert time.perf_counter() - t0 < 6.0 + 3.0  # ends near the budget, even on a loaded machine
    assert result.summary["step"] > 5


def test_a_bf16_run_trains_keeps_fp32_weights_and_resumes_exactly(tmp_path, tiny_data):
    from genseq.checkpoint import load_checkpoint

    settings = {"hidden_size": 32, "embed_size": 8, "seq_len": 16, "batch_size": 4}
    settings |= {"precision": "bf16", "schedule": "constant", "warmup_steps": 0}
    settings["ema"] = 0.0  # a longer --max-steps on resume would start the average later
    straight = Trainer(TrainConfig(max_steps=8, **settings), open_data(tiny_data), tmp_path / "a")
    result = straight.run()
    assert result.summary["train_loss"] < math.log(open_data(tiny_data).vocab_size)
    ckpt = load_checkpoint(tmp_path / "a" / "last")
    with safe_open(str(tmp_path / "a" / "last" / "model.safetensors"), "pt") as saved:
        assert {saved.get_slice(k).get_dtype() for k in saved.keys()} == {"F32"}
    assert read_config(tmp_path / "a" / "last")["train"]["precision"] == "bf16"
    Trainer(TrainConfig(max_steps=4, **settings), open_data(tiny_data), tmp_path / "b").run()
    resumed = Trainer(TrainConfig(max_steps=8), open_data(tiny_data), tmp_path / "b", resume=True)
    resumed.run()
    again = load_checkpoint(tmp_path / "b" / "last")
    pairs = zip(ckpt.model.named_parameters(), again.model.parameters(), strict=True)
    for (name, a), b in pairs:
        assert torch.equal(a, b), name
    # The precision may change on resume (the weights are fp32 either way); a run saved before
    # the setting existed resumes in fp32.
    fp32 = TrainConfig(max_steps=9, precision="fp32")
    switched = Trainer(fp32, open_data(tiny_data), tmp_path / "b", resume=True)
    assert switched.cfg.precision == "fp32"
    config_path = tmp_path / "a" / "last" / "config.json"
    config = json.loads(config_path.read_text())
    del config["train"]["precision"], config["train"]["ema"]
    config["schema"] = 1  # as a run saved before either setting existed
    config_path.write_text(json.dumps(config))
    old = Trainer(TrainConfig(max_steps=9), open_data(tiny_data), tmp_path / "a", resume=True)
    assert old.cfg.precision == "fp32" and old.cfg.ema == 0  # saved before either existed
    no_average = TrainConfig(max_steps=9, ema=0.0)  # ... which is what --ema 0 asks for
    assert Trainer(no_average, open_data(tiny_data), tmp_path / "a", resume=True).cfg.ema == 0
    # A saved bf16 run that may not go on in bf16 here (an adaptive softmax, as on a GPU) is
    # refused, and continues when asked for fp32: the check reads the setting after --precision.
    config["train"] |= {"precision": "bf16", "adaptive_cutoffs": [5]}
    config_path.write_text(json.dumps(config))
    with pytest.raises(UsageError, match="use fp32"):
        Trainer(TrainConfig(max_steps=9), open_data(tiny_data), tmp_path / "a", resume=True)
    fp32 = TrainConfig(max_steps=9, precision="fp32")
    assert Trainer(fp32, open_data(tiny_data), tmp_path / "a", resume=True).cfg.precision == "fp32"


def test_a_character_run_averages_its_weights_over_the_second_half(tmp_path, tiny_data):
    from genseq.evaluate import evaluate_tokens

    with pytest.raises(UsageError, match="--ema"):
        TrainConfig(ema=1.0).validate()

    data = open_data(tiny_data)
    result = Trainer(small(max_steps=30, ema=0.8, precision="fp32"), data, tmp_path / "r").run()
    saved = load_checkpoint(tmp_path / "r" / "last")
    raw = load_train_state(tmp_path / "r" / "last")["ema"]
    assert raw["count"] == 15  # steps 16 to 30
    pairs = zip(saved.model.parameters(), raw["raw"], strict=True)
    assert any(not torch.equal(p, r) for p, r in pairs)  # the file holds the average
    # The final evaluation scored the weights that were saved.
    again = evaluate_tokens(saved.model, data.val, "cpu", 32, 256).loss
    assert again == pytest.approx(result.summary["val_loss"], abs=1e-6)
    # Off: the last training weights are saved, with nothing to restore them from.
    Trainer(small(max_steps=30, ema=0.0), data, tmp_path / "off").run()
    assert load_train_state(tmp_path / "off" / "last")["ema"] is None


def test_parameter_count_matches_the_model():
    from genseq.model import ModelConfig, RecurrentLM
    from genseq.plan import parameter_count

    cases = [
        ("lstm", 1, False, []),
        ("gru", 2, True, []),
        ("rnn-tanh", 2, False, []),
        ("lstm", 1, False, [5, 12]),
    ]
    for cell, layers, tie, cutoffs in cases:
        cfg = TrainConfig(cell=cell, num_layers=layers, hidden_size=48, embed_size=16)
        cfg.tie_weights = tie
        cfg.adaptive_cutoffs = cutoffs
        model = RecurrentLM(
            ModelConfig(
                vocab_size=30,
                cell=cell,
                num_layers=layers,
                hidden_size=48,
                embed_size=16,
                tie_weights=tie,
                adaptive_cutoffs=cutoffs,
            )
        )
        assert parameter_count(cfg, 30) == model.num_parameters()


def test_checkpoint_loading_is_safe_and_checked(tmp_path, tiny_run):
    ckpt_dir = find_checkpoint(tiny_run)
    assert ckpt_dir.name == "best"
    config = json.loads((ckpt_dir / "config.json").read_text())
    assert config["format"] == "genseq-checkpoint"
    assert config["tokenizer"]["level"] == "char"
    # A staging directory left by a killed save is never mistaken for a checkpoint.
    (tiny_run / ".last.x.tmp").mkdir(exist_ok=True)
    assert load_checkpoint(tiny_run / "last").path.name == "last"
    # Corrupt weights, a foreign config, a missing tokenizer: one clear error each.
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run / "last", broken)
    (broken / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(GenseqError, match="weights"):
        load_checkpoint(broken)
    foreign = tmp_path / "foreign"
    shutil.copytree(tiny_run / "last", foreign)
    (foreign / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(GenseqError, match="not from a genseq checkpoint"):
        load_checkpoint(foreign)
    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_run / "last", pickled)
    torch.save({"evil": TrainConfig()}, pickled / "train_state.pt")  # arbitrary object: refused
    with pytest.raises(GenseqError, match="cannot be resumed"):
        load_train_state(pickled)


def test_a_crash_between_the_two_renames_still_finds_the_checkpoint(tmp_path, tiny_run):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "last").rename(run / ".last.old")  # as if killed inside replace_dir
    assert load_checkpoint(run / "last").model is not None


@pytest.mark.parametrize("final_wins", [True, False])
def test_best_is_settled_on_the_whole_validation_split(
    tmp_path, tiny_data, monkeypatch, final_wins
):
    """Periodic evaluations read a prefix of the validation split, which here ranks step 8
    best; on the whole split the final model (step 12) scores better or worse than step 8.
    best/ must end as whichever is better on the whole split, and say so."""
    import genseq.training.evaluation as evaluation_module
    from genseq.evaluate import EvalResult

    trainers: list[Trainer] = []
    prefix_losses = iter([3.0, 2.0, 2.5])  # steps 4, 8 and 12

    def fake(model, tokens, *args, **kwargs):
        n = len(tokens)
        if n < len(whole):
            loss = next(prefix_losses)
        else:
            is_final = model is trainers[0].model
            loss = 4.0 if is_final == final_wins else 5.0
        return EvalResult(nats=loss * n, tokens=n)

    monkeypatch.setattr(evaluation_module, "evaluate_tokens", fake)
    data = open_data(tiny_data)
    whole = data.val
    assert len(whole) > 64
    trainers.append(
        Trainer(small(max_steps=12, eval_every=4, eval_tokens=64, ema=0.0), data, tmp_path / "r")
    )
    summary = trainers[0].run().summary
    best_step = 12 if final_wins else 8
    assert summary["val_loss"] == (4.0 if final_wins else 5.0)  # the final model, whole split
    assert (summary["best_step"], summary["best_val_loss"]) == (best_step, 4.0)
    assert summary["best_measured_on"] == "the whole validation split"
    best = read_config(tmp_path / "r" / "best")["summary"]
    assert (best["step"], best["best_val_loss"]) == (best_step, 4.0)
    assert best["best_measured_on"] == "the whole validation split"


def test_best_is_never_worse_than_last_on_the_whole_split(tmp_path, tiny_data):
    """A real run whose periodic evaluations read a small prefix, with a noisy learning rate."""
    from genseq.evaluate import evaluate_tokens

    data = open_data(tiny_data)
    cfg = small(
        max_steps=40, eval_every=5, eval_tokens=64, lr=0.05, schedule="constant", precision="fp32"
    )
    summary = Trainer(cfg, data, tmp_path / "r").run().summary
    best = load_checkpoint(tmp_path / "r" / "best").model
    last = load_checkpoint(tmp_path / "r" / "last").model
    best_loss = evaluate_tokens(best, data.val, "cpu", 32, 256).loss
    last_loss = evaluate_tokens(last, data.val, "cpu", 32, 256).loss
    assert best_loss <= last_loss + 1e-6
    assert summary["best_val_loss"] == pytest.approx(best_loss, abs=1e-5)


def test_a_schema_1_checkpoint_loads_as_schema_2():
    """Schema 2 writes every training setting; a schema 1 config (genseq 0.1's, kept as the
    model genseq shipped then) gets the values its missing settings meant then, in one
    migration."""
    from pathlib import Path

    from genseq.checkpoint import CHECKPOINT_SCHEMA, SCHEMA_1_DEFAULTS

    shipped = Path(__file__).resolve().parent / "data" / "folk-tunes-schema1"
    raw = json.loads((shipped / "config.json").read_text())
    assert raw["schema"] == 1 and not set(SCHEMA_1_DEFAULTS) & set(raw["train"])
    ckpt = load_checkpoint(shipped)
    assert ckpt.config["schema"] == CHECKPOINT_SCHEMA == 2
    assert {k: ckpt.config["train"][k] for k in SCHEMA_1_DEFAULTS} == SCHEMA_1_DEFAULTS
    assert read_config(shipped)["train"]["precision"] == "fp32"


def test_a_new_checkpoint_writes_every_training_setting(tiny_run):
    config = json.loads((tiny_run / "last" / "config.json").read_text())
    assert config["schema"] == 2
    assert all(config["train"][name] is not None for name in ("ema", "weight_drop", "precision"))


def test_a_checkpoint_from_a_newer_genseq_is_refused(tmp_path, tiny_run):
    newer = tmp_path / "newer"
    shutil.copytree(tiny_run / "last", newer)
    config = json.loads((newer / "config.json").read_text())
    (newer / "config.json").write_text(json.dumps({**config, "schema": 3}))
    with pytest.raises(GenseqError, match="newer genseq"):
        load_checkpoint(newer)


def test_sample_tokens_prints_a_sample_at_each_periodic_evaluation(tmp_path, pattern_data):
    from genseq.progress import SilentReporter

    class Recorder(SilentReporter):
        def __init__(self) -> None:
            self.messages: list[str] = []

        def message(self, text: str) -> None:
            self.messages.append(text)

    reporter = Recorder()
    cfg = small(max_steps=10, eval_every=5, sample_tokens=12, lr=1e-2)
    Trainer(cfg, open_data(pattern_data), tmp_path / "r", reporter).run()
    samples = [m for m in reporter.messages if m.startswith("sample: ")]
    assert len(samples) == 2  # steps 5 and 10; not at the end's whole-split evaluation
    assert all(len(m) - len("sample: ") <= 12 for m in samples)  # 12 characters at most
