"""Training settings, and the rules that choose them for a corpus, a budget and a device.

Every option of ``genseq train`` is a field of ``TrainConfig``; ``None`` means "choose for me".
``plan`` fills each unset field, so that ``genseq train DATA`` with no flag trains a model sized
to the data for a few minutes and a ``--time-budget`` run uses its time well. A field the user
set is never changed (cutoffs past the vocabulary are dropped). The resolved config is saved in
every checkpoint and printed at the start of training.

The rules, in the order ``plan`` applies them (a later rule reads what an earlier one chose):

 1. Cell: an LSTM. ``--arch transformer`` instead takes ``_size_transformer``'s small
    decoder (4 layers x 128 wide on a CPU, 256 on a GPU, 4 heads, context 128/256, trained
    on windows of its context, AdamW at 1e-3 with weight decay 0.1: nanoGPT's small recipe,
    unmeasured here) in place of rules 3-5, 8 and 9; its precision stays fp32 unless asked.
 2. Precision: bf16 autocast where it was measured to lose nothing and to train faster (the
    character level, an LSTM, a CPU that multiplies bf16 in hardware); fp32 elsewhere.
 3. Output layer: an adaptive softmax for small word corpora on a CPU, where the full softmax
    is most of the arithmetic; a full softmax elsewhere.
 4. Size by corpus: width and depth grow with the training split (twice as wide on a GPU);
    word-like levels tie their embedding to the output layer.
 5. Grow by budget (the character level on a CPU, when the run's length is a time): widen the
    layer while the run would read the corpus many times and the wider model still reads it
    a few times, with few enough weights per training token to learn rather than memorise.
 6. Dropout: the more often the run reads its corpus, the more dropout; measured per level.
 7. Batch shape: a window and a batch per level and device, shrunk until a small corpus still
    makes a few batches per epoch, and a multiple of the number of processes.
 8. Rate: AdamW at a rate that falls with the width (measured per width for characters).
 9. Weight decay: more where it was measured to pay (small word corpora, tunes, wide models).
10. Schedule and clipping: cosine, gradients clipped by norm.
11. Length: with no stop flag, the whole epochs that fill ``DEFAULT_MINUTES``.
12. Weight average: over a measured share of the planned steps, where it was measured.

Warm-up, evaluation sizes, saving and patience are left to the trainer, which sees the batches.
The rules run on a rate model, ``tokens_per_second``: a fixed cost per token plus its FLOPs at a
sustained rate. The measurements behind every constant are in BENCHMARKS.md, in the section
"Planner: the measurements behind its rules".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

import torch

from genseq.errors import UsageError
from genseq.model import ARCHS, CELLS, MAX_ATTENTION, cutoffs_rise
from genseq.schedule import SCHEDULES

OPTIMIZERS = ("adamw", "adam", "sgd")
PRECISIONS = ("fp32", "bf16")

# The rate model: seconds per token = SECONDS_PER_TOKEN + FLOPs per token / SUSTAINED_FLOPS.
SECONDS_PER_TOKEN = {"cpu": 3.1e-6, "mps": 1e-6, "cuda": 2e-7}  # launches, optimizer, data
SUSTAINED_FLOPS = {"cpu": 1.85e11, "mps": 5e11, "cuda": 5e12}  # fp32; CPU figures fit within 5%
SUSTAINED_FLOPS_BF16 = {"cpu": 3.1e11}  # an LSTM under bf16 autocast, where it is measured
UNKNOWN_SECONDS_PER_TOKEN = 4e-6  # another device: a slow CPU's figures
UNKNOWN_SUSTAINED_FLOPS = 8e10
LOOP_SHARE = 0.8  # the training loop, with its evaluations, runs at this share of the step's rate

# 1-3. Cell, precision and output layer.
BF16_LEVELS = ("char",)  # levels whose loss per token is the same in bf16 as in fp32
WORD_ADAPTIVE_BELOW = 3_000_000  # word corpora this small get the adaptive softmax on a CPU
WORD_ADAPTIVE_CUTOFFS = (1000, 6000)  # shortlist, then two bands a quarter and a 16th as wide
TAIL_SHARE = 0.2  # tokens outside an adaptive softmax's shortlist, for the rate model

# 4. Size by corpus: (below this many training tokens, width), then LARGEST_CORPUS_WIDTH.
WIDTH_BY_CORPUS = ((300_000, 128), (3_000_000, 256), (30_000_000, 512))
LARGEST_CORPUS_WIDTH = 1024  # also the widest a GPU's doubling goes
TWO_LAYERS_FROM = 3_000_000  # training tokens from which a model has two layers (a GPU: all)
CHAR_EMBED = 64  # the embedding of non-word levels: a small vocabulary needs no more
WORD_ADAPTIVE_MIN_HIDDEN = 256  # the adaptive softmax frees the time for a wider layer
WORD_ADAPTIVE_MAX_EMBED = 128  # ... with a narrower embedding than the tied default

# 5. Grow by budget (character level, CPU).
HIDDEN_LADDER = (128, 256, 384, 512, 768, 1024, 1536, 2048)
GROW_ABOVE_EPOCHS = 5  # a run that reads its corpus more often than this can afford more width
GROW_MIN_EPOCHS = 3  # ... as long as the wider model still reads it this often
GROW_MAX_PARAMS_PER_TOKEN = 3  # ... and has at most this many weights per distinct token
MAX_GROWN_HIDDEN = 768  # the widest a CPU run grows to
WIDE_HIDDEN = 512  # growing wider than this needs a long run and more regularisation:
WIDE_MIN_EPOCHS = 10  # ... this many planned epochs of the wider model
WIDE_DROPOUT = 0.3  # ... at least this dropout
WIDE_WEIGHT_DECAY = 0.1  # ... and this AdamW weight decay

# 6. Dropout.
DROPOUT_BY_EPOCHS = ((6, 0.0), (10, 0.1), (30, 0.2), (40, 0.3))  # (below planned epochs, p)
MOST_DROPOUT = 0.4  # for 40 planned epochs or more
NO_DROPOUT_FROM = 30_000_000  # training tokens from which a run reads too little to overfit
WORD_DROPOUT = 0.3  # word and BPE levels, untuned
OTHER_DROPOUT = 0.1  # other levels, untuned
WORD_ADAPTIVE_DROPOUT = 0.65  # the wider adaptive-softmax word model overfits without it
ABC_DROPOUT = 0.2  # ABC tunes on a CPU

# 7. Batch shape.
WORD_WINDOW = 35  # word level: the window of PyTorch's word language model
CHAR_CPU_WINDOW = 32  # character level on a CPU: twice the updates of 64 at the same rate
WINDOW = 64  # other levels: tunes lose with shorter windows
BATCH = 32  # rows per batch
GPU_BATCH = 64  # a GPU has the parallel work for more
WINDOWS_PER_ROW = 4  # a small corpus shrinks the batch until each row holds this many windows

# 8. Rate.
ADAM_LR_BY_WIDTH = ((256, 4e-3), (512, 2e-3))  # (up to this width, rate), then WIDEST_ADAM_LR
WIDEST_ADAM_LR = 1e-3
# Characters on a CPU, by width (the nearest is used): short runs learn fastest at these.
LR_BY_HIDDEN = {128: 1e-2, 256: 1e-2, 384: 8e-3, 512: 7e-3, 768: 5e-3, 1024: 2e-3}
WORD_ADAPTIVE_LR = 6e-3  # the adaptive-softmax word model, up to
WORD_ADAPTIVE_LR_UP_TO = 256  # ... the width it was measured at
SGD_TEXT_LR = 20.0  # plain SGD at the word and BPE levels, as PyTorch's word language model
SGD_LR = 1.0  # ... and at the other levels

# 9. Weight decay (AdamW's, decoupled).
WEIGHT_DECAY = 0.01
WORD_ADAPTIVE_WEIGHT_DECAY = 0.3  # the adaptive-softmax word model: it still learns at the end
TUNE_WEIGHT_DECAY = 0.1  # tunes on a CPU
TUNE_LEVELS = ("abc", "midi-melody")  # midi-performance is unmeasured

# 10. Clipping.
CLIP_NORM = 1.0
SGD_CLIP_NORM = 0.25  # plain SGD's large rate needs a tighter clip

# 11. Length.
DEFAULT_MINUTES = {"cpu": 5.0, "mps": 5.0, "cuda": 10.0}  # training time with no stop flag
UNKNOWN_DEFAULT_MINUTES = 5.0
MOST_DEFAULT_EPOCHS = 50

# 12. Weight average: (share of the planned steps, most steps) by level, on a CPU.
EMA_HORIZON = {"char": (1 / 12, 300), "word": (1.0, 100_000)}
EMA_MIN_HORIZON = 10.0  # steps

LOG_EVERY = 10  # steps between progress lines

# --arch transformer: nanoGPT's small character recipe. On a CPU its batch of 12 windows of 64
# tokens, measured at 90 s on Tiny Shakespeare (benchmarks/transformer_vs_nanogpt.py): 1.7755
# nats/char in 2,136 steps, against 1.9165 in 417 steps with 32 x 128 (BENCHMARKS.md). In a
# short budget the number of updates counts more than the tokens per update. GPU sizes are
# unmeasured.
TRANSFORMER_LAYERS = 4
TRANSFORMER_HEADS = 4
TRANSFORMER_WIDTH = {"cpu": 128, "cuda": 256}
TRANSFORMER_CONTEXT = {"cpu": 64, "cuda": 256}
TRANSFORMER_CPU_BATCH = 12
TRANSFORMER_LR = 1e-3
TRANSFORMER_WEIGHT_DECAY = 0.1
# bf16 autocast on a CPU with native bf16, Tiny Shakespeare (nats/char, bf16 against fp32):
# 1.7112 / 1.7744 at 90 s, 1.5880 / 1.5933 at 300 s, 1.5800 / 1.5443 at 600 s. In a short run
# its 15-25% more updates pay; in a long one its rounding costs more than they bring.
TRANSFORMER_BF16_SECONDS = 300.0


@dataclass
class TrainConfig:
    # model
    arch: str | None = None  # rnn | transformer
    cell: str | None = None
    num_layers: int | None = None
    hidden_size: int | None = None
    embed_size: int | None = None
    dropout: float | None = None
    weight_drop: float | None = None  # DropConnect share of the recurrent weights
    tie_weights: bool | None = None
    adaptive_cutoffs: list[int] | None = None  # [] = a full softmax
    heads: int | None = None  # a Transformer's attention heads
    context: int | None = None  # a Transformer's attention window (tokens)
    # A recurrent model's attention over its last N outputs (genseq.output_attention); the
    # planner never sets it: a run has it where the user asks for it (0 or unset: none).
    attention: int | None = None
    # pretrained word vectors (genseq.embeddings), word level only
    embeddings: str | None = None  # the vectors file as given
    embeddings_ignore_case: bool | None = None  # match a word the file lacks in any casing
    freeze_embeddings: bool | None = None  # the loaded rows stay fixed; the others train
    embeddings_loaded: dict | None = None  # set by the trainer: file, dimension, coverage
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
            (self.arch is None or self.arch in ARCHS, f"--arch must be one of {', '.join(ARCHS)}"),
            (self.cell is None or self.cell in CELLS, f"--cell must be one of {', '.join(CELLS)}"),
            (self.heads is None or self.heads >= 1, "--heads must be at least 1"),
            (self.context is None or self.context >= 1, "--context must be at least 1"),
            (
                self.attention is None or 0 <= self.attention <= MAX_ATTENTION,
                f"--attention must be from 0 (off) to {MAX_ATTENTION:,} past outputs",
            ),
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
        self._check_arch()
        if not self.embeddings:
            for name in ("embeddings_ignore_case", "freeze_embeddings"):
                if getattr(self, name):
                    raise UsageError(f"--{name.replace('_', '-')} needs --embeddings FILE")

    def _check_arch(self) -> None:
        """Options that one architecture has and the other has not."""
        if self.arch != "transformer":
            for name in ("heads", "context"):
                if getattr(self, name) is not None:
                    raise UsageError(f"--{name} is for --arch transformer")
            return
        refused = [
            (self.cell is not None, "--cell is for recurrent models (--arch rnn)"),
            (bool(self.weight_drop), "--weight-drop is for recurrent models (--arch rnn)"),
            (bool(self.adaptive_cutoffs), "--adaptive-softmax is for recurrent models"),
            (self.tie_weights is False, "a Transformer's embedding is always tied"),
            (
                bool(self.attention),
                "--attention is for recurrent models (--arch rnn); a Transformer attends already",
            ),
        ]
        h, e, heads = self.hidden_size, self.embed_size, self.heads
        if e is not None and e != (h or e):
            refused.append((True, f"--embed-size {e} must be the Transformer's width ({h})"))
        if h is not None and heads is not None and (h % heads or (h // heads) % 2):
            refused.append(
                (True, f"--hidden-size {h} must split into --heads {heads} of an even width")
            )
        for bad, message in refused:
            if bad:
                raise UsageError(message)


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


@dataclass(frozen=True)
class Facts:
    """What a plan is for: the corpus, the device and the time the run has."""

    train_tokens: int
    distinct_tokens: int  # without augmented copies: transposed tunes are not new music
    vocab_size: int
    level: str
    kind: str  # the device type
    world_size: int
    bf16_native: bool  # a CPU that multiplies bf16 in hardware
    seconds: float | None  # the time the run has; None when it stops after steps or epochs

    @property
    def cuda(self) -> bool:
        return self.kind == "cuda"

    @property
    def words(self) -> bool:
        return self.level in ("word", "bpe")

    @property
    def char_cpu(self) -> bool:
        """The character level on a CPU, where the tuned rules were measured (Tiny Shakespeare)."""
        return self.level == "char" and self.kind == "cpu"

    @property
    def small_words_cpu(self) -> bool:
        """A word corpus small enough for the adaptive softmax's plan, on a CPU."""
        small = self.train_tokens < WORD_ADAPTIVE_BELOW
        return self.level == "word" and self.kind == "cpu" and small


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
    """Resolve every unset field for this corpus and device by the rules of the module docstring.

    ``world_size`` processes share the global batch, so a chosen batch is a multiple of it.
    ``distinct_tokens`` (training tokens without augmented copies) sizes the model and its
    dropout. ``bf16_native`` (``device.native_bf16``) lets the character level train in bf16.
    """
    cfg.validate()
    facts = Facts(
        train_tokens=train_tokens,
        distinct_tokens=min(train_tokens, distinct_tokens or train_tokens),
        vocab_size=vocab_size,
        level=level,
        kind=device.type,
        world_size=world_size,
        bf16_native=bf16_native,
        seconds=planned_seconds(cfg, device.type),
    )
    c = replace(cfg)
    _choose_cell(c)  # 1
    _choose_precision(c, facts)  # 2
    if c.arch == "transformer":
        _size_transformer(c, facts)
        check_precision(c.precision, device, [], c.arch)
    else:
        _choose_output_layer(c, facts, device)  # 3
        _size_by_corpus(c, facts)  # 4
    sized = c.hidden_size
    _grow_by_budget(c, cfg, facts)  # 5
    grown_wide = c.hidden_size != sized and c.hidden_size > WIDE_HIDDEN  # rule 5 went wide
    _choose_dropout(c, facts, grown_wide)  # 6
    _choose_batch_shape(c, cfg, facts)  # 7
    _choose_rate(c, facts)  # 8
    _choose_weight_decay(c, facts, grown_wide)  # 9
    _choose_schedule_and_clipping(c)  # 10
    _choose_length(c, facts)  # 11
    _choose_average(c, facts)  # 12
    if c.log_every is None:
        c.log_every = LOG_EVERY
    return c


# -- the rules, in order; each fills only the fields still unset --------------------------------


def _choose_cell(c: TrainConfig) -> None:
    """1. An LSTM: every measurement behind the other rules used one."""
    if c.arch is None:
        c.arch = "rnn"
    if c.cell is None and c.arch == "rnn":
        c.cell = "lstm"


def _size_transformer(c: TrainConfig, f: Facts) -> None:
    """1 (--arch transformer). A small decoder, in place of rules 3-5: tied embeddings of its
    width, no adaptive softmax; as many heads (4, 2 or 1) as split a given width evenly."""
    kind = "cuda" if f.cuda else "cpu"
    c.adaptive_cutoffs, c.tie_weights, c.weight_drop = [], True, 0.0
    if c.hidden_size is None:
        c.hidden_size = TRANSFORMER_WIDTH[kind]
    if c.num_layers is None:
        c.num_layers = TRANSFORMER_LAYERS
    if c.heads is None:
        fits = [n for n in (TRANSFORMER_HEADS, 2, 1) if c.hidden_size % (2 * n) == 0]
        c.heads = fits[0] if fits else 1
    c.embed_size = c.hidden_size
    if c.context is None:
        c.context = c.seq_len or TRANSFORMER_CONTEXT[kind]
    if c.seq_len is None:
        c.seq_len = c.context
    if c.batch_size is None and not f.cuda:
        c.batch_size = TRANSFORMER_CPU_BATCH
    if c.lr is None and c.optimizer in (None, "adamw", "adam"):
        c.lr = TRANSFORMER_LR
    if c.weight_decay is None and c.optimizer in (None, "adamw"):
        c.weight_decay = TRANSFORMER_WEIGHT_DECAY
    if c.ema is None:
        c.ema = 0.0  # the weight average was measured on LSTMs only


def _choose_precision(c: TrainConfig, f: Facts) -> None:
    """2. bf16 only where it loses nothing and runs faster, on a CPU that multiplies bf16 in
    hardware: an LSTM, and a Transformer in a run of at most ``TRANSFORMER_BF16_SECONDS`` (its
    extra updates pay in a short run, its rounding costs in a long one; BENCHMARKS.md). A GRU's
    recurrence stays fp32, and so does a given adaptive softmax, whose loss bf16 would round."""
    if c.precision is None:
        short = f.seconds is not None and f.seconds <= TRANSFORMER_BF16_SECONDS
        measured = (c.arch == "rnn" and c.cell == "lstm") or (c.arch == "transformer" and short)
        auto = f.level in BF16_LEVELS and measured and f.kind == "cpu" and f.bf16_native
        auto = auto and not [x for x in c.adaptive_cutoffs or [] if x < f.vocab_size]
        c.precision = "bf16" if auto else "fp32"


def _choose_output_layer(c: TrainConfig, f: Facts, device: torch.device) -> None:
    """3. An adaptive softmax where the full one is most of the arithmetic. It has no single
    output matrix to tie, and under bf16 its loss would be rounded (``check_precision``)."""
    if c.adaptive_cutoffs is None:
        wanted = f.small_words_cpu and not c.tie_weights and c.precision != "bf16"
        wanted = wanted and f.vocab_size > 2 * WORD_ADAPTIVE_CUTOFFS[0]
        c.adaptive_cutoffs = list(WORD_ADAPTIVE_CUTOFFS) if wanted else []
    c.adaptive_cutoffs = [x for x in c.adaptive_cutoffs if x < f.vocab_size]
    if c.adaptive_cutoffs and c.tie_weights:
        raise UsageError("--adaptive-softmax cannot be used with --tie-weights")
    check_precision(c.precision, device, c.adaptive_cutoffs)


def _adaptive_words(c: TrainConfig, f: Facts) -> bool:
    """The small-word-corpus plan (rule 3 took the adaptive softmax): its own tuned settings."""
    return f.small_words_cpu and bool(c.adaptive_cutoffs)


def _size_by_corpus(c: TrainConfig, f: Facts) -> None:
    """4. More data feeds a bigger model; word-like levels tie their large embedding."""
    adaptive = _adaptive_words(c, f)
    if c.hidden_size is None:
        widths = (width for below, width in WIDTH_BY_CORPUS if f.train_tokens < below)
        width = next(widths, LARGEST_CORPUS_WIDTH)
        c.hidden_size = min(2 * width, LARGEST_CORPUS_WIDTH) if f.cuda else width
        if adaptive:
            c.hidden_size = max(c.hidden_size, WORD_ADAPTIVE_MIN_HIDDEN)
    if c.num_layers is None:
        c.num_layers = 1 if f.train_tokens < TWO_LAYERS_FROM and not f.cuda else 2
    if c.tie_weights is None:
        c.tie_weights = f.words and not c.adaptive_cutoffs
    if c.embed_size is None:
        c.embed_size = c.hidden_size if f.words else min(CHAR_EMBED, c.hidden_size)
        if adaptive:
            c.embed_size = min(WORD_ADAPTIVE_MAX_EMBED, c.hidden_size)


def _grow_by_budget(c: TrainConfig, given: TrainConfig, f: Facts) -> None:
    """5. Spend a long budget on width: a wider layer read a few times beats a narrower one
    read many times, until the wider model has too many weights for its data."""
    if not (f.char_cpu and f.seconds is not None) or c.arch == "transformer":
        return
    if given.hidden_size is not None or given.num_layers is not None:
        return
    while planned_epochs(c, f.distinct_tokens, f.vocab_size, f.kind) > GROW_ABOVE_EPOCHS:
        wider = next((h for h in HIDDEN_LADDER if h > c.hidden_size), None)
        if wider is None or wider > MAX_GROWN_HIDDEN:
            return
        grown = replace(c, hidden_size=wider)
        if given.embed_size is None:
            grown.embed_size = min(CHAR_EMBED, wider)
        least = GROW_MIN_EPOCHS if wider <= WIDE_HIDDEN else WIDE_MIN_EPOCHS
        most_weights = GROW_MAX_PARAMS_PER_TOKEN * f.distinct_tokens
        too_big = parameter_count(grown, f.vocab_size) > most_weights
        if too_big or planned_epochs(grown, f.distinct_tokens, f.vocab_size, f.kind) < least:
            return
        c.hidden_size, c.embed_size = grown.hidden_size, grown.embed_size


def _choose_dropout(c: TrainConfig, f: Facts, grown_wide: bool) -> None:
    """6. The more often a run reads its corpus, the more it overfits and the more dropout pays."""
    if c.weight_drop is None:
        c.weight_drop = 0.0  # DropConnect slowed learning more than it helped
    if c.dropout is not None:
        return
    large = f.train_tokens >= NO_DROPOUT_FROM
    if _adaptive_words(c, f):
        c.dropout = WORD_ADAPTIVE_DROPOUT
    elif f.char_cpu and f.seconds is not None and not large:
        epochs = planned_epochs(c, f.distinct_tokens, f.vocab_size, f.kind)
        c.dropout = dropout_for_epochs(epochs)
        if grown_wide:
            c.dropout = max(c.dropout, WIDE_DROPOUT)
    elif f.level == "abc" and f.kind == "cpu" and not large:
        c.dropout = ABC_DROPOUT
    elif large:
        c.dropout = 0.0
    else:
        c.dropout = WORD_DROPOUT if f.words else OTHER_DROPOUT


def _choose_batch_shape(c: TrainConfig, given: TrainConfig, f: Facts) -> None:
    """7. A window and batch per level and device, small enough that a small corpus still
    makes a few batches an epoch, and shared equally by the processes."""
    if c.seq_len is None:
        c.seq_len = WORD_WINDOW if f.level == "word" else CHAR_CPU_WINDOW if f.char_cpu else WINDOW
    if c.batch_size is None:
        c.batch_size = GPU_BATCH if f.cuda else BATCH
    rows = f.train_tokens - 1  # tokens that have a next token to predict
    if given.batch_size is None:
        while c.batch_size > 1 and rows // c.batch_size < WINDOWS_PER_ROW * (c.seq_len + 1):
            c.batch_size //= 2
        if c.batch_size % f.world_size:
            c.batch_size = f.world_size * max(1, round(c.batch_size / f.world_size))
    if rows // c.batch_size < c.seq_len + 1 and given.seq_len is None:
        c.seq_len = max(1, rows // c.batch_size - 1)


def _choose_rate(c: TrainConfig, f: Facts) -> None:
    """8. AdamW, at a rate that falls as the layer widens (measured per width for characters)."""
    if c.optimizer is None:
        c.optimizer = "adamw"
    if c.lr is not None:
        return
    if c.optimizer == "sgd":
        c.lr = SGD_TEXT_LR if f.words else SGD_LR
    elif f.char_cpu:
        nearest = min(LR_BY_HIDDEN, key=lambda width: abs(width - c.hidden_size))
        c.lr = LR_BY_HIDDEN[nearest]
    elif _adaptive_words(c, f) and c.hidden_size <= WORD_ADAPTIVE_LR_UP_TO:
        c.lr = WORD_ADAPTIVE_LR
    else:
        rates = (lr for up_to, lr in ADAM_LR_BY_WIDTH if c.hidden_size <= up_to)
        c.lr = next(rates, WIDEST_ADAM_LR)


def _choose_weight_decay(c: TrainConfig, f: Facts, grown_wide: bool) -> None:
    """9. AdamW's decay, stronger where it was measured to pay; Adam and SGD get none, since
    theirs is coupled to the gradient and was never measured."""
    if c.weight_decay is not None:
        return
    if c.optimizer != "adamw":
        c.weight_decay = 0.0
    elif _adaptive_words(c, f):
        c.weight_decay = WORD_ADAPTIVE_WEIGHT_DECAY
    elif grown_wide:
        c.weight_decay = WIDE_WEIGHT_DECAY
    elif f.level in TUNE_LEVELS and f.kind == "cpu":
        c.weight_decay = TUNE_WEIGHT_DECAY
    else:
        c.weight_decay = WEIGHT_DECAY


def _choose_schedule_and_clipping(c: TrainConfig) -> None:
    """10. A cosine schedule, and gradients clipped by their norm against exploding steps."""
    if c.schedule is None:
        c.schedule = "cosine"
    if c.clip_norm is None:
        c.clip_norm = SGD_CLIP_NORM if c.optimizer == "sgd" else CLIP_NORM
    if c.clip_value is None:
        c.clip_value = 0.0


def _choose_length(c: TrainConfig, f: Facts) -> None:
    """11. With no stop flag, the whole epochs that fill about ``DEFAULT_MINUTES``."""
    if c.max_steps is None and c.epochs is None and c.time_budget is None:
        seconds = DEFAULT_MINUTES.get(f.kind, UNKNOWN_DEFAULT_MINUTES) * 60
        epochs = seconds * tokens_per_second(c, f.vocab_size, f.kind) / max(f.train_tokens, 1)
        c.epochs = int(min(MOST_DEFAULT_EPOCHS, max(1, round(epochs))))


def _choose_average(c: TrainConfig, f: Facts) -> None:
    """12. Average the weights where it was measured to help: characters, and small word
    corpora with an adaptive softmax, on a CPU, when the run's length is known."""
    if c.ema is None:
        steps = planned_steps(c, f.train_tokens, f.vocab_size, f.kind)
        measured = f.kind == "cpu" and steps > 0 and (f.level == "char" or _adaptive_words(c, f))
        c.ema = ema_decay(steps, f.level) if measured else 0.0


# -- the estimates the rules use -----------------------------------------------------------------


def _head_weights(cfg: TrainConfig, vocab_size: int, head_in: int) -> tuple[int, float]:
    """The output layer's weights, and those one token touches on average (an adaptive
    softmax reads a tail band only for the tokens in it)."""
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
    if cfg.arch == "transformer":
        d, layers, ctx = cfg.hidden_size or 0, cfg.num_layers or 1, cfg.context or 1
        attention = layers * min(ctx, cfg.seq_len or ctx) * d  # scores and mix, causal half
        return 6.0 * (12 * layers * d * d + vocab_size * d + attention)
    gates = {"lstm": 4, "gru": 3}.get(cfg.cell or "lstm", 1)
    h, e, layers = cfg.hidden_size or 0, cfg.embed_size or 0, cfg.num_layers or 1
    recurrent = gates * h * (e + h) + (layers - 1) * gates * h * (2 * h)
    n = cfg.attention or 0
    attention = (3 * h * h + 2 * n * h) if n else 0  # W_a, W_c; scores and mix over N outputs
    head_in = e if (cfg.tie_weights and h != e) else h
    return 6.0 * (recurrent + attention + _head_weights(cfg, vocab_size, head_in)[1])


def parameter_count(cfg: TrainConfig, vocab_size: int) -> int:
    """Weights of the model ``cfg`` describes (as ``RecurrentLM`` builds it)."""
    if cfg.arch == "transformer":
        d, layers = cfg.hidden_size or 0, cfg.num_layers or 1
        return vocab_size * d + layers * (12 * d * d + 13 * d) + 2 * d
    gates = {"lstm": 4, "gru": 3}.get(cfg.cell or "lstm", 1)
    h, e, layers = cfg.hidden_size or 0, cfg.embed_size or 0, cfg.num_layers or 1
    recurrent = gates * h * (e + h + 2) + (layers - 1) * gates * h * (2 * h + 2)
    head_in = e if (cfg.tie_weights and h != e) else h
    bridge = h * e + e if (cfg.tie_weights and h != e) else 0
    head = vocab_size if cfg.tie_weights else _head_weights(cfg, vocab_size, head_in)[0]
    attention = 3 * h * h + h if cfg.attention else 0  # W_a (H x H), W_c (H x 2H) and its bias
    return vocab_size * e + recurrent + attention + bridge + head


def tokens_per_second(cfg: TrainConfig, vocab_size: int, kind: str) -> float:
    """The training step's rate by the rate model (``SECONDS_PER_TOKEN``, ``SUSTAINED_FLOPS``)."""
    flops = model_flops_per_token(cfg, vocab_size)
    sustained = SUSTAINED_FLOPS.get(kind, UNKNOWN_SUSTAINED_FLOPS)
    if cfg.precision == "bf16" and (cfg.cell or "lstm") == "lstm":
        sustained = SUSTAINED_FLOPS_BF16.get(kind, sustained)
    seconds = SECONDS_PER_TOKEN.get(kind, UNKNOWN_SECONDS_PER_TOKEN) + flops / sustained
    return 1.0 / seconds


def planned_seconds(cfg: TrainConfig, kind: str) -> float | None:
    """How long the run will train: its budget, the default time with no stop flag, or None
    when it stops after a number of steps or epochs (its length is then not a time)."""
    if cfg.time_budget:
        return cfg.time_budget
    if cfg.max_steps is None and cfg.epochs is None:
        return DEFAULT_MINUTES.get(kind, UNKNOWN_DEFAULT_MINUTES) * 60
    return None


def planned_epochs(cfg: TrainConfig, train_tokens: int, vocab_size: int, kind: str) -> float:
    """How many times the planned time reads ``train_tokens`` at the step's rate; 0 if unknown.
    The loop runs slower than the step, so the runs make fewer: the tables are keyed to these."""
    seconds = planned_seconds(cfg, kind)
    if seconds is None:
        return 0.0
    return seconds * tokens_per_second(cfg, vocab_size, kind) / max(train_tokens, 1)


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


def dropout_for_epochs(epochs: float) -> float:
    """Rule 6's table: the dropout for a run that reads its corpus ``epochs`` times."""
    for below, dropout in DROPOUT_BY_EPOCHS:
        if epochs < below:
            return dropout
    return MOST_DROPOUT


def ema_decay(steps: float, level: str = "char") -> float:
    """The decay of an average spanning the level's share of ``steps`` (``EMA_HORIZON``), at
    least ``EMA_MIN_HORIZON`` steps; a horizon of h steps is a decay of 1 - 1/h."""
    share, most = EMA_HORIZON[level]
    horizon = min(most, max(EMA_MIN_HORIZON, share * steps))
    return round(1 - 1 / horizon, 5)


def check_precision(
    precision: str | None,
    device: torch.device,
    adaptive_cutoffs: list[int] | None = None,
    arch: str | None = None,
) -> None:
    """bf16 autocast is measured on CPUs only: on CUDA, cuDNN's LSTM autocasts to fp16, not
    bf16, so a GPU trains in fp32. An adaptive softmax computes its loss in bf16 under
    autocast (rounded to about 0.02 nats), so it trains in fp32 too. A Transformer has no
    cuDNN recurrence: bf16 autocast is allowed on a GPU too (flash attention's dtype)."""
    if precision != "bf16":
        return
    if device.type != "cpu" and not (arch == "transformer" and device.type == "cuda"):
        raise UsageError(f"--precision bf16 is for CPUs only; on {device.type} use fp32")
    if adaptive_cutoffs:
        raise UsageError("--precision bf16 cannot be used with --adaptive-softmax; use fp32")
