"""RecurrentLM: embedding -> LSTM/GRU/RNN stack -> (tied or adaptive) output layer.

One model serves every level and domain; only the vocabulary differs. ``forward`` runs whole
windows for training and prompts; ``step`` advances a batch of samples by one token, carrying the
recurrent state, so generation never re-runs the prefix. Run it (tiny, random weights)::

    python -c "from genseq.model import *; m = RecurrentLM(ModelConfig(vocab_size=16)); print(m)"
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn
from torch.nn import functional as F

CELLS = ("lstm", "gru", "rnn-tanh", "rnn-relu")

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]
_CELL_KERNELS = {
    "lstm": torch.lstm_cell,
    "gru": torch.gru_cell,
    "rnn-tanh": torch.rnn_tanh_cell,
    "rnn-relu": torch.rnn_relu_cell,
}


def cutoffs_rise(cutoffs: list[int]) -> bool:
    """Whether adaptive softmax cutoffs rise strictly from above 0."""
    return all(a < b for a, b in zip([0, *cutoffs], cutoffs, strict=False))


@dataclass
class ModelConfig:
    """The architecture, saved in every checkpoint's config.json."""

    vocab_size: int
    cell: str = "lstm"  # lstm | gru | rnn-tanh | rnn-relu
    num_layers: int = 1
    hidden_size: int = 256
    embed_size: int = 64
    dropout: float = 0.0  # between layers and before the output layer
    # DropConnect on the recurrent weights (AWD-LSTM's weight drop): each training window
    # drops this share of every hidden-to-hidden weight, the same mask at every time step, so
    # it regularises the recurrence itself while the fused sequence kernel still runs it.
    weight_drop: float = 0.0
    tie_weights: bool = False  # share the embedding with the output layer
    # Adaptive softmax (Grave et al. 2017) over frequency-ranked ids: the ids below the first
    # cutoff get the full width, each later band a quarter of the one before. A word-level
    # softmax is most of a small model's arithmetic; this makes it several times cheaper.
    adaptive_cutoffs: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, not {self.cell!r}")
        for name in ("vocab_size", "num_layers", "hidden_size", "embed_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        for name in ("dropout", "weight_drop"):
            value = getattr(self, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), not {value!r}")
        cutoffs = self.adaptive_cutoffs = [int(c) for c in self.adaptive_cutoffs]
        if cutoffs:
            if not cutoffs_rise(cutoffs) or cutoffs[-1] >= self.vocab_size:
                raise ValueError(
                    f"adaptive cutoffs must rise from above 0 to below the vocabulary size "
                    f"({self.vocab_size}), not {cutoffs}"
                )
            if self.tie_weights:
                raise ValueError("an adaptive softmax cannot share weights with the embedding")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class RecurrentLM(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.embed_size)
        self.drop = CheapDropout(c.dropout)
        rnn_dropout = c.dropout if c.num_layers > 1 else 0.0
        if c.cell == "lstm":
            self.rnn = nn.LSTM(
                c.embed_size, c.hidden_size, c.num_layers, batch_first=True, dropout=rnn_dropout
            )
        elif c.cell == "gru":
            self.rnn = nn.GRU(
                c.embed_size, c.hidden_size, c.num_layers, batch_first=True, dropout=rnn_dropout
            )
        else:
            self.rnn = nn.RNN(
                c.embed_size,
                c.hidden_size,
                c.num_layers,
                batch_first=True,
                dropout=rnn_dropout,
                nonlinearity=c.cell.split("-")[1],
            )
        # Tying needs the output layer's input to have the embedding's width: project down
        # first when the hidden state is wider (as AWD-LSTM sizes its last layer).
        head_in = c.hidden_size
        self.bridge: nn.Module = nn.Identity()
        if c.tie_weights and c.hidden_size != c.embed_size:
            self.bridge = nn.Linear(c.hidden_size, c.embed_size)
            head_in = c.embed_size
        self.head: nn.Module
        if c.adaptive_cutoffs:
            self.head = nn.AdaptiveLogSoftmaxWithLoss(
                head_in, c.vocab_size, c.adaptive_cutoffs, div_value=4.0
            )
        else:
            self.head = nn.Linear(head_in, c.vocab_size)
        if c.tie_weights:
            self.head.weight = self.embed.weight
        self._init_weights()

    @property
    def adaptive(self) -> bool:
        return bool(self.config.adaptive_cutoffs)

    def _init_weights(self) -> None:
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        if not self.config.tie_weights and not self.adaptive:
            nn.init.uniform_(self.head.weight, -0.1, 0.1)
            nn.init.zeros_(self.head.bias)
        if self.config.cell == "lstm":  # forget-gate bias 1: remember by default
            for name, param in self.rnn.named_parameters():
                if name.startswith("bias_ih"):
                    h = self.config.hidden_size
                    with torch.no_grad():
                        param[h : 2 * h].fill_(1.0)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def describe(self) -> str:
        """One line for people: shape, regularisation, output layer and size."""
        c = self.config
        parts = [
            f"{c.num_layers}x{c.hidden_size} {c.cell.upper()}",
            f"embedding {c.embed_size}",
            f"dropout {c.dropout}",
        ]
        if c.weight_drop:
            parts.append(f"weight drop {c.weight_drop}")
        if c.tie_weights:
            parts.append("tied")
        if c.adaptive_cutoffs:
            parts.append(f"adaptive softmax {','.join(map(str, c.adaptive_cutoffs))}")
        return ", ".join(parts) + f", {self.num_parameters():,} parameters"

    def init_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        c = self.config
        zeros = torch.zeros(c.num_layers, batch_size, c.hidden_size, device=device)
        return (zeros, zeros.clone()) if c.cell == "lstm" else zeros

    def forward(
        self, idx: torch.Tensor, state: State | None = None, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        """Logits ``(B, T, V)`` for inputs ``idx`` ``(B, T)``, and the state after them; with
        ``targets`` ``(B, T)`` (-1: padding), the mean loss in nats per target instead.

        The loss goes through ``forward`` so that a DistributedDataParallel wrapper sees it,
        and so that an adaptive softmax never builds the full ``(B, T, V)`` logits to train.
        """
        x = self.drop(self.embed(idx))  # (B, T, E)
        out, state = self._recurrence(x, state)  # (B, T, H)
        features = self.bridge(self.drop(out))  # (B, T, H')
        if targets is not None:
            return self._loss_of_features(features, targets), state
        return self.logits_of(features), state

    def _recurrence(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """The recurrent stack over a window; in training with ``weight_drop``, run on dropped
        copies of its hidden-to-hidden weights. The copies go into the module's list of the
        weights its kernel reads (``_flat_weights``, as ``step`` reads it) for this call only:
        the parameters stay whole and get their gradients through the masks.
        ``torch.func.functional_call`` is not used: it leaves the copies in that list."""
        p = self.config.weight_drop
        if not (self.training and p):
            return self.rnn(x, state)
        flat = self.rnn._flat_weights
        whole = list(flat)
        try:
            for i, name in enumerate(self.rnn._flat_weights_names):
                if name.startswith("weight_hh"):
                    flat[i] = cheap_dropout(whole[i], p)
            if x.device.type != "cuda":
                return self.rnn(x, state)
            with warnings.catch_warnings():  # cuDNN: the copies are not in its one buffer
                warnings.filterwarnings("ignore", "RNN module weights are not part")
                return self.rnn(x, state)
        finally:
            flat[:] = whole

    def logits_of(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., V)`` of output features ``(..., H')`` (log-probabilities for an
        adaptive softmax; softmax gives the same distribution either way)."""
        if not self.adaptive:
            return F.linear(features, self.head.weight, self.head.bias)
        flat = self.head.log_prob(features.reshape(-1, features.size(-1)))
        return flat.view(*features.shape[:-1], -1)

    def _loss_of_features(self, features: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if not self.adaptive:
            return self.loss(self.head(features), targets)
        flat, wanted = features.reshape(-1, features.size(-1)), targets.reshape(-1)
        keep = wanted >= 0
        if not bool(keep.all()):
            flat, wanted = flat[keep], wanted[keep]
        return self.head(flat, wanted).loss

    @torch.no_grad()
    def step(self, tokens: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """Logits ``(B, V)`` of the next token after ``tokens`` ``(B,)`` (inference only).

        Runs the recurrent layers one cell kernel at a time (``torch.lstm_cell`` and kin) with
        the same weights as ``forward``. For one time step these are several times faster on
        CPU than ``nn.LSTM``'s sequence kernel, whose oneDNN path costs 5 ms per batch-1 step
        of a 2x512 LSTM against 0.8 ms here (BENCHMARKS.md).
        """
        c = self.config
        x = F.embedding(tokens, self.embed.weight)  # (B, E); functional calls skip the
        if state is None:  # per-module dispatch, a real share of a batch-1 step
            state = self.init_state(tokens.size(0), tokens.device)
        cell = _CELL_KERNELS[c.cell]
        weights = self.rnn._flat_weights  # w_ih, w_hh, b_ih, b_hh per layer, in order
        hs, cs = [], []
        for layer in range(c.num_layers):
            w = weights[4 * layer : 4 * layer + 4]
            if c.cell == "lstm":
                h, cell_state = cell(x, (state[0][layer], state[1][layer]), *w)  # (B, H)
                cs.append(cell_state)
            else:
                h = cell(x, state[layer], *w)  # (B, H)
            hs.append(h)
            x = h
        if not isinstance(self.bridge, nn.Identity):
            x = self.bridge(x)
        logits = self.logits_of(x)  # (B, V)
        new_state: State = (
            (torch.stack(hs), torch.stack(cs)) if c.cell == "lstm" else torch.stack(hs)
        )
        return logits, new_state

    def loss(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy in nats per token; targets of -1 are padding."""
        return F.cross_entropy(
            logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-1
        )


class CheapDropout(nn.Dropout):
    """``nn.Dropout`` whose CPU mask costs a quarter as much.

    On a CPU, torch draws a dropout mask one ``bernoulli_`` sample per element: 4-6 ms for a
    32 x 32 x 512 batch, 10-15% of a bf16 training step of a 1x512 LSTM. Here each 64-bit random
    integer gives four 16-bit uniforms, compared with ``p`` quantized to 1/65536 (1.1-1.5 ms;
    BENCHMARKS.md). The kept values are scaled by the exact inverse of the kept share, as
    ``nn.Dropout`` does. Other devices, and evaluation, use ``nn.Dropout`` itself.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return cheap_dropout(x, self.p)


def cheap_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Training-time dropout of ``x`` (see ``CheapDropout``): a quarter of the mask's cost on
    a CPU, ``F.dropout`` elsewhere."""
    if x.device.type != "cpu":
        return F.dropout(x, p, training=True)
    cut = round(p * 65536)  # drop a value whose uniform 16-bit draw is below this
    if cut >= 65536:
        return torch.zeros_like(x)
    n = x.numel()
    words = torch.randint(-(2**63), 2**63 - 1, ((n + 3) // 4,), dtype=torch.int64)
    draws = words.view(torch.int16)[:n].view(x.shape)  # uniform over [-32768, 32767]
    keep = draws >= cut - 32768
    return x * keep * (65536 / (65536 - cut))


def detach_state(state: State, dtype: torch.dtype | None = None) -> State:
    """Cut the graph between BPTT windows while keeping the state's values (in ``dtype``
    when given: a bf16 autocast window returns a bf16 state, carried on in fp32)."""
    if isinstance(state, tuple):
        return tuple(s.detach().to(dtype or s.dtype) for s in state)  # type: ignore[return-value]
    return state.detach().to(dtype or state.dtype)


def expand_state(state: State, batch_size: int) -> State:
    """Repeat a batch-1 state for ``batch_size`` samples (one prompt, many continuations)."""
    if isinstance(state, tuple):
        return tuple(s.expand(-1, batch_size, -1).contiguous() for s in state)  # type: ignore
    return state.expand(-1, batch_size, -1).contiguous()
