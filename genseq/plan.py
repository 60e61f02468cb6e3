"""Training settings, and the defaults chosen for a corpus and a device.

Every option of ``genseq train`` is a field of ``TrainConfig``; ``None`` means "choose for me".
``plan`` fills each unset field from the size of the training split, the tokenizer level and
the device, so that ``genseq train DATA`` with no flag trains a model sized to the data for a
few minutes, and ``--time-budget`` runs stay within their budget. The resolved config is saved
in every checkpoint and printed at the start of training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch

from genseq.errors import UsageError
from genseq.model import CELLS, cutoffs_rise
from genseq.schedule import SCHEDULES

OPTIMIZERS = ("adamw", "adam", "sgd")
PRECISIONS = ("fp32", "bf16")
DEFAULT_MINUTES = {"cpu": 5.0, "mps": 5.0, "cuda": 10.0}  # planned training time, no stop flag
# Training rate = 1 / (SECONDS_PER_TOKEN + FLOPs per token / SUSTAINED_FLOPS): the first is the
# fixed cost per token (kernel launches, the fused optimizer, data). On a 2-core CPU with batch
# 32 x 32, fp32: 1x128 151k, 1x256 67k, 1x384 37k, 1x512 24k tokens/s; bf16 autocast (a CPU
# with AVX512-BF16): 196k, 101k, 59k, 38k, 1.3-1.6x fp32. Both fit within 5% (BENCHMARKS.md).
# These are rates of the step alone: the training loop with its evaluations ran 20-25% slower
# without dropout, and 40% slower with 0.3 before the cheaper masks (CheapDropout), so planned
# epochs overstate the real ones; the dropout table below is keyed to planned epochs.
LOOP_SHARE = 0.8  # the loop's rate over the step's, where a count of steps is wanted
SUSTAINED_FLOPS = {"cpu": 1.85e11, "mps": 5e11, "cuda": 5e12}
SUSTAINED_FLOPS_BF16 = {"cpu": 3.1e11}
SECONDS_PER_TOKEN = {"cpu": 3.1e-6, "mps": 1e-6, "cuda": 2e-7}
# Levels whose loss per token was measured the same in bf16 as in fp32 on a CPU (Tiny
# Shakespeare, 1x384, 2.4M tokens: 1.4998 against 1.5015): there auto picks bf16.
BF16_LEVELS = ("char",)
# Model growth under a long budget (character level): a corpus that the planned run
# would read more than GROW_ABOVE_EPOCHS times gets a wider layer, as long as the wider
# model still reads it at least GROW_MIN_EPOCHS times, up to MAX_GROWN_HIDDEN.
GROW_ABOVE_EPOCHS = 5
GROW_MIN_EPOCHS = 3
GROW_MAX_PARAMS_PER_TOKEN = 3  # ... and while it has at most this many weights per token
MAX_GROWN_HIDDEN = {"cpu": 768, "mps": 1024, "cuda": 2048}
# Wider than 512 only for a long run, and then with more dropout. Tiny Shakespeare, 600 s, bf16
# (1x512: 17 epochs, its validation loss flat after the 11th): 1x512 with dropout 0.2 1.4314,
# 1.4326 and 1.4433 (1.4337 at 300 s); 1x768 with 0.2 1.4311, with 0.3 1.4154 (BENCHMARKS.md).
WIDE_HIDDEN = 512
WIDE_MIN_EPOCHS = 10  # planned epochs (about 7 made at 600 s) a width above WIDE_HIDDEN needs
WIDE_DROPOUT = 0.3  # ... and its least dropout
# ... and AdamW weight decay 0.1: 7,000 steps of 1x768 with dropout 0.3 (what 600 s makes),
# decay 0.01 1.4181, 0.1 1.3900, 0.3 1.4117. At 90 s (1x384, 3,287 steps) 0.1 did not help.
WIDE_WEIGHT_DECAY = 0.1
HIDDEN_LADDER = (128, 256, 384, 512, 768, 1024, 1536, 2048)
# Dropout by the number of times the planned run reads the training split (more reads,
# more overfitting): (fewer than this many epochs, dropout). 600 s bf16 runs of 1x512 on Tiny
# Shakespeare (22 planned epochs, 14-15 made): dropout 0.2 1.4314 and 1.4433, 0.3 1.4403; the
# spread between seeds is about 0.01, so this is weak evidence, but 0.2 also trains faster.
DROPOUT_BY_EPOCHS = ((6, 0.0), (10, 0.1), (30, 0.2), (40, 0.3))
MOST_DROPOUT = 0.4
# Word level on a CPU below 3M words (tuned on WikiText-2's stand-in split, BENCHMARKS.md).
WORD_ADAPTIVE_CUTOFFS = (1000, 6000)  # shortlist, then two bands a quarter and a 16th as wide
WORD_ADAPTIVE_DROPOUT = 0.65
WORD_ADAPTIVE_LR = 6e-3
# AdamW's decoupled weight decay for it: WikiText-2's valid.txt (202,595 words, 10% held out),
# 4,700 steps: 0.01 6.190 nats, 0.1 5.999, 0.3 5.924, 1.0 6.043 (BENCHMARKS.md). At 0.01 the
# validation loss was lowest after 470 steps; at 0.3 it still fell at the end.
WORD_ADAPTIVE_WEIGHT_DECAY = 0.3
# Tunes on a CPU (ABC and MIDI melodies, the corpus-sized 1x256 plan with dropout 0.1): AdamW
# weight decay 0.1. Fixed-step runs, one thread, whole validation split (BENCHMARKS.md):
# folk-abc 9,926 steps (31 epochs, the 5-minute default) 0.01 1.2821, 0.1 1.2452, 0.3 1.2496;
# 2,724 steps (the README's 120 s) 0.01 1.3859, 0.1 1.3820, 0.3 1.4069, 1.0 1.5336. Nottingham's
# MIDI files at the midi-melody level, 10,206 steps (14 epochs): 0.01 0.5390, 0.1 0.5258.
# midi-performance was not measured and keeps 0.01.
TUNE_WEIGHT_DECAY = 0.1
TUNE_LEVELS = ("abc", "midi-melody")
# ... and for ABC, dropout 0.2 (with that decay): folk-abc 9,926 steps, dropout 0.1 1.2452, 0.2
# 1.2338, 0.3 1.2399; 2,724 steps 0.1 1.3820, 0.2 1.3827. MIDI melodies keep 0.1 (10,206
# steps: 0.1 0.5258, 0.2 0.5288).
ABC_DROPOUT = 0.2
TAIL_SHARE = 0.2  # tokens outside an adaptive softmax's shortlist, for the rate model
# Adam's rate for the character level on a CPU, by layer width (nearest is used). At 512, 2.5M
# tokens of Tiny Shakespeare: 5e-3 1.471, 7e-3 1.458, 8.5e-3 1.465, 1e-2 1.464 (BENCHMARKS.md).
LR_BY_HIDDEN = {128: 1e-2, 256: 1e-2, 384: 8e-3, 512: 7e-3, 768: 5e-3, 1024: 2e-3}
# The average of the weights (genseq.averaging), by level on a CPU: it spans this share of the
# planned steps, up to this many steps (BENCHMARKS.md). Characters, Tiny Shakespeare, the best
# of three horizons: 100 of 1,200 steps (of 50, 100, 200), 200 of 2,400 (of 100, 200, 500), 200
# of 6,000 (of 200, 500, 1,000): the noise it averages out does not grow with the run. Words
# (dropout 0.65, WikiText-2's valid.txt, 4,700 steps): the longer the better, 300 steps -0.003
# nats, 1,000 -0.093, 5,000 -0.196. Started as a copy of the halfway weights, such a long
# average keeps about 60% of its weight on them and spreads the rest over the second half: it
# is partly a guard against the late overfitting of 20+ epochs. An even mean (averaged SGD)
# was not measured. The character cap of 300 lies between the 200 and 500 measured. Other
# levels and larger word corpora have not been measured: no average unless --ema is given.
EMA_HORIZON = {"char": (1 / 12, 300), "word": (1.0, 100_000)}


@dataclass
class TrainConfig:
    # model
    cell: str | None = None
    num_layers: int | None = None
    hidden_size: int | None = None
    embed_size: int | None = None
    dropout: float | None = None
    weight_drop: float | None = None  # DropConnect share of the recurrent weights
    tie_weights: bool | None = None
    adaptive_cutoffs: list[int] | None = None  # [] = a full softmax
    # batches
    seq_len: int | None = None
    batch_size: int | None = None
    # optimisation
    optimizer: str | None = None
    lr: float | None = None
    weight_decay: float | None = None
    schedule: str | None = None
    warmup_steps: int | None = None
    clip_norm: float | None = None
    clip_value: float | None = None
    # stopping
    max_steps: int | None = None
    epochs: int | None = None
    time_budget: float | None = None
    patience: int | None = None
    # fault tolerance
    save_every: str | None = None  # steps ("500") or seconds ("30s", "5m"); evals save too
    on_nan: str = "stop"  # stop | skip (skip the update and halve the learning rate)
    # evaluation and logging
    eval_every: int | None = None
    eval_tokens: int | None = None
    log_every: int | None = None
    sample_tokens: int = 0
    # reproducibility and placement
    seed: int = 1337
    device: str = "auto"
    precision: str | None = None  # fp32 | bf16 (autocast; weights and optimizer stay fp32)
    ema: float | None = None  # decay of the weight average (genseq.averaging); 0: none

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def validate(self) -> None:
        checks = [
            (self.cell is None or self.cell in CELLS, f"--cell must be one of {', '.join(CELLS)}"),
            (
                self.optimizer is None or self.optimizer in OPTIMIZERS,
                f"--optimizer must be one of {', '.join(OPTIMIZERS)}",
            ),
            (
                self.schedule is None or self.schedule in SCHEDULES,
                f"--schedule must be one of {', '.join(SCHEDULES)}",
            ),
            (self.num_layers is None or self.num_layers >= 1, "--layers must be at least 1"),
            (self.hidden_size is None or self.hidden_size >= 1, "--hidden-size must be >= 1"),
            (self.embed_size is None or self.embed_size >= 1, "--embed-size must be >= 1"),
            (self.dropout is None or 0 <= self.dropout < 1, "--dropout must be in [0, 1)"),
            (
                self.weight_drop is None or 0 <= self.weight_drop < 1,
                "--weight-drop must be in [0, 1)",
            ),
            (self.seq_len is None or self.seq_len >= 1, "--seq-len must be at least 1"),
            (self.batch_size is None or self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.lr is None or self.lr > 0, "--lr must be positive"),
            (self.weight_decay is None or self.weight_decay >= 0, "--weight-decay must be >= 0"),
            (self.warmup_steps is None or self.warmup_steps >= 0, "--warmup-steps must be >= 0"),
            (self.clip_norm is None or self.clip_norm >= 0, "--clip-norm must be >= 0"),
            (self.clip_value is None or self.clip_value >= 0, "--clip-value must be >= 0"),
            (self.max_steps is None or self.max_steps >= 1, "--max-steps must be at least 1"),
            (self.epochs is None or self.epochs >= 1, "--epochs must be at least 1"),
            (self.time_budget is None or self.time_budget > 0, "--time-budget must be positive"),
            (self.patience is None or self.patience >= 1, "--patience must be at least 1"),
            (self.eval_every is None or self.eval_every >= 1, "--eval-every must be at least 1"),
            (self.eval_tokens is None or self.eval_tokens >= 2, "--eval-tokens must be >= 2"),
            (self.sample_tokens >= 0, "--sample-tokens must be >= 0"),
            (self.on_nan in ("stop", "skip"), "--on-nan must be stop or skip"),
            (self.ema is None or 0 <= self.ema < 1, "--ema must be 0 (off) or a decay below 1"),
            (
                self.precision is None or self.precision in PRECISIONS,
                f"--precision must be auto or one of {', '.join(PRECISIONS)}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        parse_save_every(self.save_every)


def parse_save_every(spec: str | None) -> tuple[int, float]:
    """``--save-every 500`` (steps) or ``--save-every 30s`` / ``5m`` (seconds)."""
    if not spec:
        return 0, 0.0
    text = str(spec).strip().lower()
    try:
        if text[-1] in "sm":
            seconds = float(text[:-1]) * (60 if text[-1] == "m" else 1)
            if seconds > 0:
                return 0, seconds
        elif int(text) > 0:
            return int(text), 0.0
    except (ValueError, IndexError):
        pass
    raise UsageError(f"--save-every {spec!r}: give steps (500) or seconds (30s, 5m)")


def parse_cutoffs(text: str) -> list[int]:
    """``--adaptive-softmax``: ``off`` or rising cutoffs such as ``2000,10000``."""
    if text.strip().lower() in ("off", "none", "0", ""):
        return []
    try:
        cutoffs = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(
            f"--adaptive-softmax takes off or rising cutoffs such as 2000,10000, not {text!r}"
        ) from None
    if not cutoffs_rise(cutoffs):
        raise UsageError(f"--adaptive-softmax cutoffs must rise from above 0, not {text!r}")
    return cutoffs


def _head_weights(cfg: TrainConfig, vocab_size: int, head_in: int) -> tuple[int, float]:
    """The output layer's weights, and those one token touches on average (an adaptive
    softmax reads a tail band only for the tokens in it: about a fifth of a word corpus)."""
    cutoffs = [c for c in (cfg.adaptive_cutoffs or []) if c < vocab_size]
    if not cutoffs:
        return head_in * vocab_size + vocab_size, head_in * vocab_size
    bounds = [*cutoffs, vocab_size]
    shortlist = head_in * (cutoffs[0] + len(cutoffs))
    tails = 0.0
    for i in range(len(cutoffs)):
        width = max(1, head_in // 4 ** (i + 1))
        tails += head_in * width + width * (bounds[i + 1] - bounds[i])
    return int(shortlist + tails), shortlist + TAIL_SHARE * tails


def model_flops_per_token(cfg: TrainConfig, vocab_size: int) -> float:
    """Forward + backward multiply-adds x 2 for one token (6 x the weights it touches)."""
    gates = {"lstm": 4, "gru": 3}.get(cfg.cell or "lstm", 1)
    h, e, layers = cfg.hidden_size or 0, cfg.embed_size or 0, cfg.num_layers or 1
    recurrent = gates * h * (e + h) + (layers - 1) * gates * h * (2 * h)
    head_in = e if (cfg.tie_weights and h != e) else h
    return 6.0 * (recurrent + _head_weights(cfg, vocab_size, head_in)[1])


def parameter_count(cfg: TrainConfig, vocab_size: int) -> int:
    """Weights of the model ``cfg`` describes (as ``RecurrentLM`` builds it)."""
    gates = {"lstm": 4, "gru": 3}.get(cfg.cell or "lstm", 1)
    h, e, layers = cfg.hidden_size or 0, cfg.embed_size or 0, cfg.num_layers or 1
    recurrent = gates * h * (e + h + 2) + (layers - 1) * gates * h * (2 * h + 2)
    head_in = e if (cfg.tie_weights and h != e) else h
    bridge = h * e + e if (cfg.tie_weights and h != e) else 0
    head = vocab_size if cfg.tie_weights else _head_weights(cfg, vocab_size, head_in)[0]
    return vocab_size * e + recurrent + bridge + head


def tokens_per_second(cfg: TrainConfig, vocab_size: int, kind: str) -> float:
    """A rough training rate for planning (see ``SECONDS_PER_TOKEN``)."""
    flops = model_flops_per_token(cfg, vocab_size)
    sustained = SUSTAINED_FLOPS.get(kind, 8e10)
    if cfg.precision == "bf16" and (cfg.cell or "lstm") == "lstm":
        sustained = SUSTAINED_FLOPS_BF16.get(kind, sustained)
    seconds = SECONDS_PER_TOKEN.get(kind, 4e-6) + flops / sustained
    return 1.0 / seconds


def planned_seconds(cfg: TrainConfig, kind: str) -> float | None:
    """How long the run will train: its budget, the default time with no stop flag, or None
    when it stops after a number of steps or epochs (its length is then not a time)."""
    if cfg.time_budget:
        return cfg.time_budget
    if cfg.max_steps is None and cfg.epochs is None:
        return DEFAULT_MINUTES.get(kind, 5.0) * 60
    return None


def planned_epochs(cfg: TrainConfig, train_tokens: int, vocab_size: int, kind: str) -> float:
    seconds = planned_seconds(cfg, kind)
    if seconds is None:
        return 0.0
    return seconds * tokens_per_second(cfg, vocab_size, kind) / max(train_tokens, 1)


def dropout_for_epochs(epochs: float) -> float:
    for below, dropout in DROPOUT_BY_EPOCHS:
        if epochs < below:
            return dropout
    return MOST_DROPOUT


def check_precision(
    precision: str | None, device: torch.device, adaptive_cutoffs: list[int] | None = None
) -> None:
    """bf16 autocast is measured on CPUs only: on CUDA, cuDNN's LSTM autocasts to fp16, not
    bf16, and nothing here has been run on a GPU, so a GPU trains in fp32. An adaptive
    softmax computes its loss in bf16 under autocast (rounded to about 0.02 nats), so it
    trains in fp32 too."""
    if precision != "bf16":
        return
    if device.type != "cpu":
        raise UsageError(f"--precision bf16 is for CPUs only; on {device.type} use fp32")
    if adaptive_cutoffs:
        raise UsageError("--precision bf16 cannot be used with --adaptive-softmax; use fp32")


def plan(
    cfg: TrainConfig,
    train_tokens: int,
    vocab_size: int,
    level: str,
    device: torch.device,
    world_size: int = 1,
    distinct_tokens: int | None = None,
    bf16_native: bool = False,
) -> TrainConfig:
    """Resolve every unset field for this corpus and device (see the module docstring).

    ``world_size`` processes share the global batch, so a chosen batch is a multiple of it.
    ``distinct_tokens`` (training tokens without augmented copies) sizes the model and its
    dropout: transposed copies of a tune do not let a wider model read more new music.
    ``bf16_native`` (``device.native_bf16``) lets the character level train in bf16.
    """
    cfg.validate()
    n = train_tokens
    kind = device.type
    big = kind == "cuda"
    text_words = level in ("word", "bpe")
    c = replace(cfg)
    if c.cell is None:
        c.cell = "lstm"
    if c.precision is None:  # measured for LSTMs: under autocast a GRU's recurrence stays fp32
        auto_bf16 = level in BF16_LEVELS and c.cell == "lstm" and kind == "cpu" and bf16_native
        c.precision = "bf16" if auto_bf16 else "fp32"
    # Word level on a CPU, corpora up to a few million words: the softmax over the vocabulary
    # is most of the arithmetic, so an adaptive softmax buys several times the updates (5.6x
    # on WikiText-2's stand-in split), which a wider, more regularised model then uses:
    # perplexity 310 -> 264 in 260 s (BENCHMARKS.md).
    word_cpu = level == "word" and kind == "cpu" and n < 3_000_000
    if c.adaptive_cutoffs is None:
        wanted = word_cpu and not c.tie_weights and vocab_size > 2 * WORD_ADAPTIVE_CUTOFFS[0]
        wanted = wanted and c.precision != "bf16"  # its loss would be bf16 (check_precision)
        c.adaptive_cutoffs = list(WORD_ADAPTIVE_CUTOFFS) if wanted else []
    c.adaptive_cutoffs = [x for x in c.adaptive_cutoffs if x < vocab_size]
    if c.adaptive_cutoffs and c.tie_weights:
        raise UsageError("--adaptive-softmax cannot be used with --tie-weights")
    check_precision(c.precision, device, c.adaptive_cutoffs)
    adaptive_words = word_cpu and bool(c.adaptive_cutoffs)
    if c.hidden_size is None:
        size = 128 if n < 300_000 else 256 if n < 3_000_000 else 512 if n < 30_000_000 else 1024
        c.hidden_size = size * 2 if big and size < 1024 else size
        if adaptive_words:
            c.hidden_size = max(c.hidden_size, 256)
    if c.num_layers is None:
        c.num_layers = 1 if n < 3_000_000 and not big else 2
    if c.tie_weights is None:
        c.tie_weights = text_words and not c.adaptive_cutoffs
    if c.embed_size is None:
        c.embed_size = c.hidden_size if text_words else min(64, c.hidden_size)
        if adaptive_words:
            c.embed_size = min(128, c.hidden_size)
    # Character level on a CPU: the time the run has decides the width, the regularisation,
    # the rate and the window (tuned on Tiny Shakespeare). On ABC tunes the same choices
    # scored worse (273.6 against 269.3 nats per tune on Nottingham, BENCHMARKS.md), so the
    # other levels keep the corpus-sized defaults until they have their own measurements.
    tuned = level == "char" and kind == "cpu"
    by_budget = tuned and planned_seconds(c, kind) is not None
    distinct = min(n, distinct_tokens or n)
    grown_wide = False  # grown past WIDE_HIDDEN here (not sized so by the corpus or the user)
    if by_budget and cfg.hidden_size is None and cfg.num_layers is None:
        while planned_epochs(c, distinct, vocab_size, kind) > GROW_ABOVE_EPOCHS:
            wider = [h for h in HIDDEN_LADDER if h > c.hidden_size]
            if not wider or wider[0] > MAX_GROWN_HIDDEN.get(kind, 512):
                break
            grown = replace(c, hidden_size=wider[0])
            if cfg.embed_size is None:
                grown.embed_size = min(64, wider[0])
            too_big = parameter_count(grown, vocab_size) > GROW_MAX_PARAMS_PER_TOKEN * distinct
            least = GROW_MIN_EPOCHS if wider[0] <= WIDE_HIDDEN else WIDE_MIN_EPOCHS
            if too_big or planned_epochs(grown, distinct, vocab_size, kind) < least:
                break
            c = grown
            grown_wide = c.hidden_size > WIDE_HIDDEN
    if c.dropout is None:
        if adaptive_words:
            c.dropout = WORD_ADAPTIVE_DROPOUT
        elif by_budget and n < 30_000_000:
            c.dropout = dropout_for_epochs(planned_epochs(c, distinct, vocab_size, kind))
            if grown_wide:
                c.dropout = max(c.dropout, WIDE_DROPOUT)
        elif level == "abc" and kind == "cpu" and n < 30_000_000:
            c.dropout = ABC_DROPOUT
        else:
            c.dropout = (0.3 if text_words else 0.1) if n < 30_000_000 else 0.0
    if c.weight_drop is None:
        c.weight_drop = 0.0
    if c.seq_len is None:
        # Shorter windows on a CPU: at the same tokens per second, twice the updates (Tiny
        # Shakespeare, 4.8M tokens: 1.535 with 32 x 64, 1.515 with 32 x 32; BENCHMARKS.md).
        c.seq_len = 35 if level == "word" else 32 if tuned else 64
    if c.batch_size is None:
        c.batch_size = 64 if big else 32
    # Small corpora: shrink the batch (then the window) until one epoch has a few batches.
    while (
        cfg.batch_size is None
        and c.batch_size > 1
        and (n - 1) // c.batch_size < 4 * (c.seq_len + 1)
    ):
        c.batch_size //= 2
    if cfg.batch_size is None and c.batch_size % world_size:
        c.batch_size = world_size * max(1, round(c.batch_size / world_size))
    if (n - 1) // c.batch_size < c.seq_len + 1 and cfg.seq_len is None:
        c.seq_len = max(1, (n - 1) // c.batch_size - 1)
    if c.optimizer is None:
        c.optimizer = "adamw"
    if c.lr is None:
        if c.optimizer == "sgd":
            c.lr = 20.0 if text_words else 1.0
        else:
            c.lr = 4e-3 if c.hidden_size <= 256 else 2e-3 if c.hidden_size <= 512 else 1e-3
            if tuned:  # short CPU runs: a higher rate (BENCHMARKS.md)
                c.lr = LR_BY_HIDDEN[min(LR_BY_HIDDEN, key=lambda h: abs(h - c.hidden_size))]
            if adaptive_words and c.hidden_size <= 256:
                c.lr = WORD_ADAPTIVE_LR
    if c.weight_decay is None:
        if c.optimizer != "adamw":
            c.weight_decay = 0.0
        elif adaptive_words:
            c.weight_decay = WORD_ADAPTIVE_WEIGHT_DECAY
        elif grown_wide:
            c.weight_decay = WIDE_WEIGHT_DECAY
        elif level in TUNE_LEVELS and kind == "cpu":
            c.weight_decay = TUNE_WEIGHT_DECAY
        else:
            c.weight_decay = 0.01
    if c.schedule is None:
        c.schedule = "cosine"
    if c.clip_norm is None:
        c.clip_norm = 0.25 if c.optimizer == "sgd" else 1.0
    if c.clip_value is None:
        c.clip_value = 0.0
    if c.max_steps is None and c.epochs is None and c.time_budget is None:
        # Train for about DEFAULT_MINUTES on this device, between 1 and 50 epochs.
        seconds = DEFAULT_MINUTES.get(kind, 5.0) * 60
        tokens = seconds * tokens_per_second(c, vocab_size, kind)
        c.epochs = int(min(50, max(1, round(tokens / max(n, 1)))))
    if c.ema is None:
        steps = planned_steps(c, n, vocab_size, kind)
        # Words: measured on small corpora, with an adaptive softmax and heavy dropout.
        measured = kind == "cpu" and steps > 0 and (level == "char" or adaptive_words)
        c.ema = ema_decay(steps, level) if measured else 0.0
    if c.log_every is None:
        c.log_every = 10
    return c


def planned_steps(cfg: TrainConfig, train_tokens: int, vocab_size: int, kind: str) -> float:
    """About how many updates the planned run makes (its first stop); 0 when unknown."""
    per_step = cfg.batch_size * cfg.seq_len
    steps: list[float] = []
    if cfg.max_steps:
        steps.append(float(cfg.max_steps))
    if cfg.epochs:
        steps.append(cfg.epochs * train_tokens / per_step)
    if cfg.time_budget:  # the loop with its evaluations is slower than the step alone
        rate = LOOP_SHARE * tokens_per_second(cfg, vocab_size, kind)
        steps.append(cfg.time_budget * rate / per_step)
    return min(steps, default=0.0)


def ema_decay(steps: float, level: str = "char") -> float:
    """The decay of an average spanning the level's share of ``steps`` (``EMA_HORIZON``), at
    least 10 steps; a horizon of h steps is a decay of 1 - 1/h."""
    share, most = EMA_HORIZON[level]
    horizon = min(most, max(10.0, share * steps))
    return round(1 - 1 / horizon, 5)
