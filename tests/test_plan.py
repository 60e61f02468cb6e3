"""The planner's promises to a user, whatever its tuned numbers are.

A plan keeps every field the user set and refuses only settings that cannot run together; it
is the same for the same inputs; it fits the time it has and the limits it sets itself; a
bigger budget or a faster device never gets a smaller model; and every plan trains.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, fields, replace
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from genseq import plan as planner
from genseq.errors import UsageError
from genseq.model import CELLS
from genseq.plan import (
    OPTIMIZERS,
    PRECISIONS,
    TrainConfig,
    model_flops_per_token,
    parameter_count,
    plan,
    planned_epochs,
    tokens_per_second,
)
from genseq.schedule import SCHEDULES
from genseq.tokenization import LEVELS

MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CPU = torch.device("cpu")


@dataclass(frozen=True)
class Situation:
    """The inputs of ``plan`` besides the config."""

    train_tokens: int
    vocab_size: int
    level: str
    device: torch.device
    world_size: int
    distinct_tokens: int | None
    bf16_native: bool

    def plan(self, cfg: TrainConfig) -> TrainConfig:
        return plan(
            cfg,
            self.train_tokens,
            self.vocab_size,
            self.level,
            self.device,
            self.world_size,
            self.distinct_tokens,
            self.bf16_native,
        )

    @property
    def distinct(self) -> int:
        return min(self.train_tokens, self.distinct_tokens or self.train_tokens)


@st.composite
def any_situation(draw: st.DrawFn) -> Situation:
    n = draw(
        st.one_of(
            st.integers(3, 20_000), st.integers(20_000, 5_000_000), st.integers(5_000_000, 10**9)
        )
    )
    return Situation(
        train_tokens=n,
        vocab_size=draw(st.one_of(st.integers(2, 300), st.integers(300, 100_000))),
        level=draw(st.sampled_from(sorted(LEVELS))),
        device=torch.device(draw(st.sampled_from(["cpu", "cpu", "cuda", "mps"]))),
        world_size=draw(st.sampled_from([1, 1, 2, 3, 8])),
        distinct_tokens=draw(st.none() | st.integers(1, n)),
        bf16_native=draw(st.booleans()),
    )


def _corpus(tokens: int, vocab: int, level: str, *, distinct: int | None = None) -> list:
    devices = [
        (CPU, False),
        (CPU, True),
        (torch.device("cuda"), False),
        (torch.device("mps"), False),
    ]
    return [Situation(tokens, vocab, level, d, 1, distinct, bf16) for d, bf16 in devices]


# Corpora users train on (the README's and the benchmarks'), and the sizes where rules change.
TYPICAL = [
    *_corpus(1_003_856, 67, "char"),  # Tiny Shakespeare
    *_corpus(150_000, 40, "char"),
    *_corpus(2_000_000, 67, "char"),
    *_corpus(40_000_000, 200, "char"),
    *_corpus(225_105, 16_179, "word"),  # WikiText-2 stand-in
    *_corpus(5_000_000, 20_000, "word"),
    *_corpus(3_000_000, 4_096, "bpe"),
    *_corpus(657_778, 145, "abc"),  # folk-abc
    *_corpus(12 * 80_000, 145, "abc", distinct=80_000),  # with --augment-keys 11
    *_corpus(1_494_534, 52, "midi-melody"),  # Nottingham
    *_corpus(1_494_534, 300, "midi-performance"),
]


def situations() -> st.SearchStrategy[Situation]:
    return st.one_of(st.sampled_from(TYPICAL), any_situation())


STOPS = st.one_of(
    st.just({}),
    st.builds(lambda s: {"time_budget": s}, st.floats(1, 7200)),
    st.builds(lambda s: {"max_steps": s}, st.integers(1, 10**6)),
    st.builds(lambda e: {"epochs": e}, st.integers(1, 100)),
)

# A valid value for every field a user can set.
GIVEN = {
    # A recurrent plan's fields; tests/test_transformer.py holds a Transformer's and refusals.
    "arch": st.just("rnn"),
    "heads": st.none(),
    "context": st.none(),
    "attention": st.integers(0, 64),
    "cell": st.sampled_from(CELLS),
    "num_layers": st.integers(1, 3),
    "hidden_size": st.integers(1, 2048),
    "embed_size": st.integers(1, 1024),
    "dropout": st.floats(0, 0.95),
    "weight_drop": st.floats(0, 0.95),
    "tie_weights": st.booleans(),
    "adaptive_cutoffs": st.lists(st.integers(1, 50_000), max_size=3, unique=True).map(sorted),
    "seq_len": st.integers(1, 512),
    "batch_size": st.integers(1, 256),
    "optimizer": st.sampled_from(OPTIMIZERS),
    "lr": st.floats(1e-5, 20),
    "weight_decay": st.floats(0, 1),
    "schedule": st.sampled_from(SCHEDULES),
    "warmup_steps": st.integers(0, 1000),
    "clip_norm": st.floats(0, 10),
    "clip_value": st.floats(0, 10),
    "max_steps": st.integers(1, 10**6),
    "epochs": st.integers(1, 100),
    "time_budget": st.floats(1, 7200),
    "patience": st.integers(1, 20),
    "save_every": st.sampled_from(["500", "30s", "5m"]),
    "on_nan": st.sampled_from(["stop", "skip"]),
    "eval_every": st.integers(1, 1000),
    "eval_tokens": st.integers(2, 10**6),
    "log_every": st.integers(1, 100),
    "sample_tokens": st.integers(0, 500),
    "seed": st.integers(0, 2**31),
    "device": st.sampled_from(["auto", "cpu"]),
    "precision": st.sampled_from(PRECISIONS),
    "ema": st.floats(0, 0.9999),
    "embeddings": st.sampled_from(["glove.6B.100d.txt", "vectors.txt.gz"]),
    "embeddings_ignore_case": st.booleans(),
    "freeze_embeddings": st.booleans(),
    "embeddings_loaded": st.just({"file": "vectors.txt", "dimension": 50, "found": 3}),
}


@st.composite
def user_settings(draw: st.DrawFn) -> dict:
    names = draw(st.sets(st.sampled_from(sorted(GIVEN)), max_size=8))
    return {name: draw(GIVEN[name]) for name in names}


# What every plan fills (warm-up, evaluation, saving and patience are the trainer's).
FILLED = (
    "arch", "cell", "num_layers", "hidden_size", "embed_size", "dropout", "weight_drop",
    "tie_weights", "adaptive_cutoffs", "seq_len", "batch_size", "optimizer", "lr", "weight_decay",
    "schedule", "clip_norm", "clip_value", "log_every", "precision", "ema",
)  # fmt: skip


def test_every_field_a_user_can_set_is_covered():
    assert set(GIVEN) == {f.name for f in fields(TrainConfig)}, "add the new field to GIVEN"


def _refusal(user: dict, s: Situation) -> str | None:
    """What ``plan`` must refuse, as the message's key words: only what the user set."""
    cutoffs = [c for c in user.get("adaptive_cutoffs") or [] if c < s.vocab_size]
    bf16 = user.get("precision") == "bf16"
    if cutoffs and user.get("tie_weights"):
        return "--tie-weights"
    if not user.get("embeddings"):
        for name in ("embeddings_ignore_case", "freeze_embeddings"):
            if user.get(name):
                return f"--{name.replace('_', '-')} needs --embeddings"
    if bf16 and s.device.type != "cpu":
        return "CPUs only"
    if bf16 and cutoffs:
        return "bf16 cannot be used with --adaptive-softmax"
    return None


def _auto_bf16_meets_given_cutoffs(user: dict, s: Situation) -> bool:
    """The case of test_auto_precision_does_not_refuse_a_given_adaptive_softmax."""
    cutoffs = [c for c in user.get("adaptive_cutoffs") or [] if c < s.vocab_size]
    auto = "precision" not in user and s.level in planner.BF16_LEVELS and s.bf16_native
    return bool(cutoffs) and auto and s.device.type == "cpu" and user.get("cell", "lstm") == "lstm"


@MANY
@given(s=situations(), user=user_settings())
def test_what_the_user_sets_is_kept_and_only_impossible_settings_are_refused(s, user):
    assume(not _auto_bf16_meets_given_cutoffs(user, s))
    refusal = _refusal(user, s)
    if refusal:
        with pytest.raises(UsageError, match=refusal):
            s.plan(TrainConfig(**user))
        return
    planned = s.plan(TrainConfig(**user))
    for name, value in user.items():
        if name == "adaptive_cutoffs":  # cutoffs past the vocabulary are dropped
            value = [c for c in value if c < s.vocab_size]
        assert getattr(planned, name) == value, name


def test_auto_precision_does_not_refuse_a_given_adaptive_softmax():
    mine = TrainConfig(adaptive_cutoffs=[10])
    planned = plan(mine, 1_000_000, 67, "char", CPU, bf16_native=True)
    assert planned.adaptive_cutoffs == [10] and planned.precision == "fp32"


def test_settings_that_cannot_run_together_are_refused_with_the_flags_to_change():
    with pytest.raises(UsageError, match="--precision must be"):
        plan(TrainConfig(precision="fp16"), 225_000, 145, "abc", CPU)
    with pytest.raises(UsageError, match="--ema"):
        plan(TrainConfig(ema=1.0), 225_000, 145, "abc", CPU)
    with pytest.raises(UsageError, match="--precision bf16 is for CPUs only"):
        plan(TrainConfig(precision="bf16"), 1_000_000, 67, "char", torch.device("cuda"))
    both = TrainConfig(precision="bf16", adaptive_cutoffs=[100])
    with pytest.raises(UsageError, match="cannot be used with --adaptive-softmax; use fp32"):
        plan(both, 225_000, 5_000, "word", CPU)
    tied = TrainConfig(adaptive_cutoffs=[100], tie_weights=True)
    with pytest.raises(UsageError, match="--adaptive-softmax cannot be used with --tie-weights"):
        plan(tied, 225_000, 5_000, "word", CPU)
    # Cutoffs past the vocabulary are dropped, and then nothing is in the way.
    narrow = plan(TrainConfig(adaptive_cutoffs=[100, 5000]), 225_000, 5_000, "word", CPU)
    assert narrow.adaptive_cutoffs == [100]
    past = TrainConfig(adaptive_cutoffs=[9000], tie_weights=True)
    assert plan(past, 225_000, 5_000, "word", CPU).adaptive_cutoffs == []


@MANY
@given(s=situations(), stop=STOPS)
def test_the_plan_is_valid_and_never_chooses_what_it_would_refuse(s, stop):
    cfg = TrainConfig(**stop)
    planned = s.plan(cfg)  # no UsageError: nothing was set that could conflict
    assert all(getattr(planned, name) is not None for name in FILLED), planned
    assert (planned.time_budget, planned.max_steps, planned.epochs) != (None, None, None)
    planned.validate()
    if planned.precision == "bf16":  # only where it runs, and runs faster
        assert s.device.type == "cpu" and s.bf16_native
        assert planned.arch == "transformer" or planned.cell == "lstm"
        assert not planned.adaptive_cutoffs
    assert not (planned.adaptive_cutoffs and planned.tie_weights)
    assert all(0 < c < s.vocab_size for c in planned.adaptive_cutoffs)


@MANY
@given(s=situations(), stop=STOPS, user=user_settings())
def test_plans_are_deterministic_and_leave_the_given_config_alone(s, stop, user):
    assume(_refusal(user, s) is None and not _auto_bf16_meets_given_cutoffs(user, s))
    cfg = TrainConfig(**{**user, **stop})
    before = cfg.to_dict()
    assert s.plan(cfg) == s.plan(replace(cfg))
    assert cfg.to_dict() == before


@MANY
@given(s=situations(), stop=STOPS)
def test_the_batch_fits_the_corpus_and_splits_evenly_between_processes(s, stop):
    assume(s.train_tokens - 1 >= 2 * s.world_size)  # two tokens for each process's stream
    planned = s.plan(TrainConfig(**stop))
    stream_len = (s.train_tokens - 1) // planned.batch_size  # what StreamBatches accepts
    assert stream_len >= planned.seq_len + 1
    assert planned.batch_size % s.world_size == 0


@MANY
@given(s=situations())
def test_with_no_stop_flag_the_run_is_planned_for_about_the_default_time(s):
    planned = s.plan(TrainConfig())
    assert planned.time_budget is None and planned.max_steps is None
    default = planner.planned_seconds(TrainConfig(), s.device.type)
    epoch = s.train_tokens / tokens_per_second(planned, s.vocab_size, s.device.type)
    assert 1 <= planned.epochs <= planner.MOST_DEFAULT_EPOCHS
    # Whole epochs: within half an epoch of the default time, unless one epoch is longer.
    close = 1 + 1e-9  # float rounding
    assert planned.epochs == 1 or planned.epochs * epoch <= (default + epoch / 2) * close
    capped = planned.epochs == planner.MOST_DEFAULT_EPOCHS
    assert capped or planned.epochs * epoch * close >= default - epoch / 2


@MANY
@given(s=situations(), budget=st.floats(1, 7200))
@example(s=Situation(1_003_856, 67, "char", CPU, 1, None, False), budget=250.0)
@example(s=Situation(1_003_856, 67, "char", CPU, 1, None, True), budget=300.0)
@example(s=Situation(1_003_856, 67, "char", CPU, 1, None, True), budget=600.0)
@example(s=Situation(2_000_000, 67, "char", CPU, 1, None, True), budget=7200.0)
def test_a_budget_is_the_stop_and_a_grown_model_stays_within_the_plans_limits(s, budget):
    planned = s.plan(TrainConfig(time_budget=budget))
    assert planned.epochs is None and planned.max_steps is None  # the budget decides
    sized = s.plan(TrainConfig(max_steps=1))  # the same corpus, with no time to spend
    assert planned.hidden_size <= max(sized.hidden_size, planner.MAX_GROWN_HIDDEN)
    if planned.hidden_size > sized.hidden_size:  # grown for the budget
        weights = parameter_count(planned, s.vocab_size)
        assert weights <= planner.GROW_MAX_PARAMS_PER_TOKEN * s.distinct
        # The budget still reads the corpus a few times, and more if the model grew wide.
        epochs = planned_epochs(planned, s.distinct, s.vocab_size, s.device.type)
        wide = planned.hidden_size > planner.WIDE_HIDDEN
        assert epochs >= (planner.WIDE_MIN_EPOCHS if wide else planner.GROW_MIN_EPOCHS)


def _no_smaller(small: TrainConfig, big: TrainConfig, vocab_size: int) -> bool:
    """Neither fewer layers, nor a narrower layer, nor fewer weights."""
    sizes = [(c.num_layers, c.hidden_size, parameter_count(c, vocab_size)) for c in (small, big)]
    return all(a <= b for a, b in zip(*sizes, strict=True))


@MANY
@given(s=situations(), budgets=st.lists(st.floats(1, 7200), min_size=2, max_size=2))
def test_a_bigger_budget_never_plans_a_smaller_model(s, budgets):
    short, long = sorted(budgets)
    small = s.plan(TrainConfig(time_budget=short))
    big = s.plan(TrainConfig(time_budget=long))
    assert _no_smaller(small, big, s.vocab_size)


@MANY
@given(s=situations(), stop=STOPS)
def test_a_cpu_with_native_bf16_never_plans_a_smaller_model(s, stop):
    slow = replace(s, bf16_native=False).plan(TrainConfig(**stop))
    fast = replace(s, bf16_native=True).plan(TrainConfig(**stop))
    assert _no_smaller(slow, fast, s.vocab_size)


@MANY
@given(s=situations(), more=st.integers(0, 10**9), steps=st.integers(1, 10**6))
def test_with_a_number_of_steps_a_bigger_corpus_never_plans_a_smaller_model(s, more, steps):
    bigger = replace(s, train_tokens=s.train_tokens + more, distinct_tokens=None)
    small = replace(s, distinct_tokens=None).plan(TrainConfig(max_steps=steps))
    big = bigger.plan(TrainConfig(max_steps=steps))
    assert _no_smaller(small, big, s.vocab_size)


def test_an_adaptive_softmax_costs_less_per_token_than_the_full_one():
    """Its reason to be (README: several times cheaper over a big vocabulary)."""
    words = TrainConfig(hidden_size=256, embed_size=128, tie_weights=False, num_layers=1)
    adaptive = replace(words, adaptive_cutoffs=[1000, 6000])
    full = replace(words, adaptive_cutoffs=[])
    for vocab in (2_001, 16_000, 100_000):
        assert model_flops_per_token(adaptive, vocab) < model_flops_per_token(full, vocab)
    assert model_flops_per_token(adaptive, 16_000) < model_flops_per_token(full, 16_000) / 3


# -- every plan trains ---------------------------------------------------------------------------


def _tokenize(tmp_path_factory, name: str, text: str, **options) -> Path:
    from genseq.corpus import resolve_sources
    from genseq.prepare import TokenizeOptions, tokenize_corpus

    folder = tmp_path_factory.mktemp(name)
    suffix = ".abc" if options.get("level") == "abc" else ".txt"
    source = folder / f"corpus{suffix}"
    source.write_text(text, encoding="utf-8")
    tokenize_corpus(resolve_sources([str(source)]), folder / "data", TokenizeOptions(**options))
    return folder / "data"


@pytest.fixture(scope="module")
def corpora(tmp_path_factory, words_file):
    """Small data directories of several levels; the word one has a vocabulary big enough
    for the adaptive softmax."""
    rng = random.Random(0)
    many_words = " ".join(f"w{rng.randrange(3000)}" for _ in range(12_000)) + "\n"
    tunes = "".join(f"X:{i}\nT:t\nM:2/4\nK:D\nDF A{i % 3 + 1}|d4|]\n\n" for i in range(40))
    lyrics = words_file.read_text(encoding="utf-8")
    return {
        "char": _tokenize(tmp_path_factory, "char", lyrics, level="char"),
        "word": _tokenize(tmp_path_factory, "word", lyrics, level="word"),
        "many-words": _tokenize(tmp_path_factory, "many", many_words, level="word"),
        "bpe": _tokenize(tmp_path_factory, "bpe", lyrics, level="bpe", vocab_size=300),
        "abc": _tokenize(tmp_path_factory, "abc", tunes, level="abc", augment_keys=2),
    }


# (corpus, the stop flags planned for, the corpus size planned for (None: its own), the device
# planned for, bf16_native); each trains on the corpus itself, on the CPU.
PLANS = [
    ("char", {}, None, "cpu", False),
    ("char", {"time_budget": 3600}, None, "cpu", True),
    ("char", {"time_budget": 600}, 1_003_856, "cpu", True),  # grown wide, bf16
    ("char", {"time_budget": 90}, 1_003_856, "cpu", False),
    ("word", {"max_steps": 100}, None, "cpu", False),  # tied
    ("many-words", {}, None, "cpu", False),  # adaptive softmax
    ("bpe", {"epochs": 2}, 5_000_000, "cpu", False),  # two layers
    ("abc", {"time_budget": 120}, None, "cpu", False),  # augmented copies
    ("word", {}, None, "cuda", False),  # a GPU's plan
]


@pytest.mark.parametrize(("corpus", "stop", "tokens", "device", "bf16"), PLANS)
def test_every_plan_trains_a_step(tmp_path, corpora, corpus, stop, tokens, device, bf16):
    from genseq.data import open_data
    from genseq.train import Trainer

    data = open_data(corpora[corpus])
    planned = plan(
        TrainConfig(**stop),
        tokens or len(data.train),
        data.vocab_size,
        data.level,
        torch.device(device),
        1,
        None if tokens else data.distinct_train_tokens,
        bf16,
    )
    if (len(data.train) - 1) // planned.batch_size < planned.seq_len + 1:
        planned = replace(planned, batch_size=4, seq_len=16)  # planned for a bigger corpus
    one_step = replace(planned, max_steps=1, device="cpu")
    result = Trainer(one_step, data, tmp_path / "run").run()
    assert result.summary["step"] == 1
    assert math.isfinite(result.summary["train_loss"]) and math.isfinite(result.summary["val_loss"])
