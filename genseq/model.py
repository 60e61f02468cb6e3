"""RecurrentLM: embedding -> LSTM/GRU/RNN stack -> (tied or adaptive) output layer.

One model serves every level and domain; only the vocabulary differs. ``forward`` runs whole
windows for training and prompts; ``step`` advances a batch of samples by one token, carrying the
recurrent state, so generation never re-runs the prefix. With ``--attention N`` the top layer's
outputs go through ``genseq.output_attention`` (attention over the last N of them) before the
output layer, and the state also carries those N outputs. Run it (tiny, random weights)::

    python -c "from genseq.model import *; m = RecurrentLM(ModelConfig(vocab_size=16)); print(m)"
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass, field, fields
from numbers import Integral, Real

import torch
from torch import nn
from torch.nn import functional as F

from genseq.errors import shown
from genseq.output_attention import AttentionState, OutputAttention

ARCHS = ("rnn", "transformer")  # a recurrent stack (its cell: CELLS) or genseq.transformer
CELLS = ("lstm", "gru", "rnn-tanh", "rnn-relu")
GATES = {"lstm": 4, "gru": 3, "rnn-tanh": 1, "rnn-relu": 1}  # weight rows per hidden unit

# A checkpoint's config.json is input: sizes are held to bounds no real model reaches before
# anything is allocated, since torch meets an absurd size with minutes of work (100,000
# layers) or a C++ error (10**100 units).
SIZE_BOUNDS = {"vocab_size": 2**32, "num_layers": 256, "hidden_size": 2**20, "embed_size": 2**20}
# A Transformer's (0 in a recurrent model's config, which has neither).
ATTENTION_BOUNDS = {"heads": 4096, "context": 2**20}
MAX_ATTENTION = 2**16  # --attention N: past outputs a recurrent model attends over
MAX_CUTOFFS = 64
MAX_PARAMETERS = 2**35  # 128 GiB of fp32 weights: more than one device here holds

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor] | AttentionState
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
    # A config.json without ``arch`` is a recurrent model's (checkpoint.migrate says so).
    arch: str = "rnn"  # rnn | transformer (genseq.transformer: cell is then unused)
    heads: int = 0  # attention heads of a Transformer
    context: int = 0  # a Transformer's attention window in tokens
    # Pretrained word vectors of another width than embed_size (genseq.embeddings): the
    # embedding table keeps the file's width, so the loaded rows are the file's vectors, and a
    # learned linear map (``embed_proj``, no bias) takes them to embed_size (a Transformer's
    # width; its tied output layer goes back through the same map). 0: no such table.
    vector_size: int = 0
    # --attention N (genseq.output_attention): a recurrent model attends over its top layer's
    # last N outputs before the output layer. 0: none (and always 0 in a Transformer).
    attention: int = 0

    @property
    def table_size(self) -> int:
        """The embedding table's width (a tied output layer's too)."""
        return self.vector_size or self.embed_size

    def __post_init__(self) -> None:
        if not isinstance(self.arch, str) or self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}, not {shown(self.arch)}")
        if not isinstance(self.cell, str) or self.cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, not {shown(self.cell)}")
        for name, most in SIZE_BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
                raise ValueError(
                    f"{name} must be an integer from 1 to {most:,}, not {shown(value)}"
                )
        for name in ("dropout", "weight_drop"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Real) or not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), not {shown(value)}")
        v = self.vector_size
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 2**20:
            raise ValueError(f"vector_size must be an integer from 0 to {2**20:,}, not {shown(v)}")
        if not isinstance(self.tie_weights, bool):
            raise ValueError(f"tie_weights must be true or false, not {shown(self.tie_weights)}")
        self.adaptive_cutoffs = self._checked_cutoffs()
        self._check_attention()
        if (total := self.parameter_count()) > MAX_PARAMETERS:
            raise ValueError(
                f"{total:,} parameters is beyond what genseq builds ({MAX_PARAMETERS:,})"
            )

    @property
    def transformer(self) -> bool:
        return self.arch == "transformer"

    def _check_attention(self) -> None:
        """A recurrent model's attention window (never a Transformer's); a Transformer's heads
        and window; what genseq's Transformer does not have (its
        embedding is its width and tied to the output layer; no adaptive softmax, no
        DropConnect of recurrent weights) is refused rather than silently ignored."""
        n = self.attention
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_ATTENTION:
            raise ValueError(
                f"attention must be an integer from 0 to {MAX_ATTENTION:,}, not {shown(n)}"
            )
        for name, most in ATTENTION_BOUNDS.items():
            value = getattr(self, name)
            least = 1 if self.transformer else 0
            if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
                raise ValueError(
                    f"{name} must be an integer from {least} to {most:,}, not {shown(value)}"
                )
        if not self.transformer:
            return
        h, heads = self.hidden_size, self.heads
        if h % heads or (h // heads) % 2:
            raise ValueError(
                f"a Transformer's width ({h}) must split into {heads} heads of an even width"
            )
        refused = [
            (self.embed_size != h, f"its embedding is its width ({h}), not {self.embed_size}"),
            (not self.tie_weights, "its embedding is always tied to its output layer"),
            (bool(self.adaptive_cutoffs), "it has no adaptive softmax"),
            (bool(self.weight_drop), "it has no recurrent weights to drop"),
            (bool(self.attention), "it attends already (attention over outputs is for --arch rnn)"),
        ]
        for bad, why in refused:
            if bad:
                raise ValueError(f"a Transformer: {why}")

    def _checked_cutoffs(self) -> list[int]:
        cutoffs = self.adaptive_cutoffs
        if not isinstance(cutoffs, (list, tuple)) or len(cutoffs) > MAX_CUTOFFS:
            raise ValueError(f"adaptive cutoffs must be a list of at most {MAX_CUTOFFS} ids")
        if any(isinstance(c, bool) or not isinstance(c, Integral) for c in cutoffs):
            raise ValueError(f"adaptive cutoffs must be integers, not {shown(cutoffs)}")
        cutoffs = [int(c) for c in cutoffs]
        if cutoffs:
            if not cutoffs_rise(cutoffs) or cutoffs[-1] >= self.vocab_size:
                raise ValueError(
                    f"adaptive cutoffs must rise from above 0 to below the vocabulary size "
                    f"({self.vocab_size}), not {shown(cutoffs)}"
                )
            if self.tie_weights:
                raise ValueError("an adaptive softmax cannot share weights with the embedding")
        return cutoffs

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The name and shape of every tensor in this model's weights file, worked out
        without building the model, so a loader can check a file against its config before
        allocating anything. As in ``save_model``'s files, a tied output layer is stored
        once, as ``embed.weight``. tests/test_door.py holds this to real saved models."""
        if self.transformer:
            return self._transformer_shapes()
        v, e, h, t = self.vocab_size, self.embed_size, self.hidden_size, self.table_size
        gates = h * GATES[self.cell]
        shapes: dict[str, tuple[int, ...]] = {"embed.weight": (v, t)}
        if t != e:
            shapes["embed_proj.weight"] = (e, t)
        for layer in range(self.num_layers):
            shapes[f"rnn.weight_ih_l{layer}"] = (gates, e if layer == 0 else h)
            shapes[f"rnn.weight_hh_l{layer}"] = (gates, h)
            shapes[f"rnn.bias_ih_l{layer}"] = (gates,)
            shapes[f"rnn.bias_hh_l{layer}"] = (gates,)
        if self.attention:
            shapes["attn.query.weight"] = (h, h)
            shapes["attn.combine.weight"], shapes["attn.combine.bias"] = (h, 2 * h), (h,)
        head_in = h
        if self.tie_weights and h != t:
            shapes["bridge.weight"], shapes["bridge.bias"] = (t, h), (t,)
            head_in = t
        if self.adaptive_cutoffs:
            shapes.update(self._adaptive_shapes(head_in))
        else:
            if not self.tie_weights:
                shapes["head.weight"] = (v, head_in)
            shapes["head.bias"] = (v,)
        return shapes

    def _transformer_shapes(self) -> dict[str, tuple[int, ...]]:
        """``weight_shapes`` of a Transformer: the names ``TransformerLM`` saves (the output
        layer is the embedding)."""
        c = self
        v, d, t = c.vocab_size, c.hidden_size, c.table_size
        shapes: dict[str, tuple[int, ...]] = {"embed.weight": (v, t)}
        if t != d:
            shapes["embed_proj.weight"] = (d, t)
        for i in range(c.num_layers):
            p = f"blocks.{i}."
            shapes |= {
                p + "norm1.weight": (d,),
                p + "norm1.bias": (d,),
                p + "attn.qkv.weight": (3 * d, d),
                p + "attn.qkv.bias": (3 * d,),
                p + "attn.proj.weight": (d, d),
                p + "attn.proj.bias": (d,),
                p + "norm2.weight": (d,),
                p + "norm2.bias": (d,),
                p + "fc.weight": (4 * d, d),
                p + "fc.bias": (4 * d,),
                p + "out.weight": (d, 4 * d),
                p + "out.bias": (d,),
            }
        shapes |= {"norm.weight": (d,), "norm.bias": (d,)}
        return shapes

    def _adaptive_shapes(self, head_in: int) -> dict[str, tuple[int, ...]]:
        """``nn.AdaptiveLogSoftmaxWithLoss`` with ``div_value=4``: a head over the shortlist
        and one entry per cluster, then per cluster a projection a quarter narrower each
        time and an output layer over the cluster's ids."""
        bounds = [*self.adaptive_cutoffs, self.vocab_size]
        shapes: dict[str, tuple[int, ...]] = {
            "head.head.weight": (bounds[0] + len(bounds) - 1, head_in)
        }
        for i in range(len(bounds) - 1):
            width = int(head_in // (4.0 ** (i + 1)))
            shapes[f"head.tail.{i}.0.weight"] = (width, head_in)
            shapes[f"head.tail.{i}.1.weight"] = (bounds[i + 1] - bounds[i], width)
        return shapes

    def parameter_count(self) -> int:
        return sum(math.prod(shape) for shape in self.weight_shapes().values())

    def describe(self, parameters: int | None = None) -> str:
        """One line for people: shape, regularisation, output layer and size."""
        count = self.parameter_count() if parameters is None else parameters
        if self.transformer:
            vectors = (
                f", embedding from {self.vector_size}-d vectors"
                if self.table_size != self.hidden_size
                else ""
            )
            return (
                f"{self.num_layers}x{self.hidden_size} Transformer, {self.heads} heads, "
                f"context {self.context}, rotary positions{vectors}, dropout {self.dropout}, "
                f"tied, {count:,} parameters"
            )
        parts = [
            f"{self.num_layers}x{self.hidden_size} {self.cell.upper()}",
            f"embedding {self.embed_size}"
            + (
                f" (from {self.vector_size}-d vectors)"
                if self.table_size != self.embed_size
                else ""
            ),
            f"dropout {self.dropout}",
        ]
        if self.attention:
            parts.append(f"attention over the last {self.attention} outputs")
        if self.weight_drop:
            parts.append(f"weight drop {self.weight_drop}")
        if self.tie_weights:
            parts.append("tied")
        if self.adaptive_cutoffs:
            parts.append(f"adaptive softmax {','.join(map(str, self.adaptive_cutoffs))}")
        return ", ".join(parts) + f", {count:,} parameters"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        if not isinstance(data, dict):
            raise TypeError(f"a model config is an object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def build_model(config: ModelConfig) -> nn.Module:
    """The model a config describes: a ``RecurrentLM`` or a ``genseq.transformer.TransformerLM``
    (both speak the same state protocol, so the trainer and sampler take either)."""
    if config.transformer:
        from genseq.transformer import TransformerLM

        return TransformerLM(config)
    return RecurrentLM(config)


class RecurrentLM(nn.Module):
    carries_state = True  # truncated BPTT: the trainer carries the state between windows

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.embed = nn.Embedding(c.vocab_size, c.table_size)
        self.embed_proj: nn.Module = nn.Identity()  # pretrained vectors' width -> embed_size
        if c.table_size != c.embed_size:
            self.embed_proj = nn.Linear(c.table_size, c.embed_size, bias=False)
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
        self.attn: OutputAttention | None = None  # --attention N
        if c.attention:
            self.attn = OutputAttention(c.hidden_size, c.attention)
        # Tying needs the output layer's input to have the embedding's width: project down
        # first when the hidden state is wider (as AWD-LSTM sizes its last layer).
        head_in = c.hidden_size
        self.bridge: nn.Module = nn.Identity()
        if c.tie_weights and c.hidden_size != c.table_size:
            self.bridge = nn.Linear(c.hidden_size, c.table_size)
            head_in = c.table_size
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

    def flatten_parameters(self) -> None:
        """Pack the recurrent weights into cuDNN's one buffer (after loading or moving them)."""
        self.rnn.flatten_parameters()

    def describe(self) -> str:
        """One line for people: shape, regularisation, output layer and size."""
        return self.config.describe(self.num_parameters())

    def init_state(self, batch_size: int, device: torch.device | str = "cpu") -> State:
        c = self.config
        zeros = torch.zeros(c.num_layers, batch_size, c.hidden_size, device=device)
        state = (zeros, zeros.clone()) if c.cell == "lstm" else zeros
        if self.attn is not None:
            return AttentionState(state, self.attn.empty_memory(batch_size, device))
        return state

    def forward(
        self, idx: torch.Tensor, state: State | None = None, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, State]:
        """Logits ``(B, T, V)`` for inputs ``idx`` ``(B, T)``, and the state after them; with
        ``targets`` ``(B, T)`` (-1: padding), the mean loss in nats per target instead.

        The loss goes through ``forward`` so that a DistributedDataParallel wrapper sees it,
        and so that an adaptive softmax never builds the full ``(B, T, V)`` logits to train.
        """
        x = self.drop(self.embed_proj(self.embed(idx)))  # (B, T, E)
        out, state = self._recurrence(x, state)  # (B, T, H)
        if self.attn is not None:
            memory = state.memory  # type: ignore[union-attr]
            out, memory = self.attn(out, memory)
            state = AttentionState(state.recurrent, memory)  # type: ignore[union-attr]
        features = self.bridge(self.drop(out))  # (B, T, H')
        if targets is not None:
            return self._loss_of_features(features, targets), state
        return self.logits_of(features), state

    def advance(self, idx: torch.Tensor, state: State | None = None) -> State:
        """The state after inputs ``idx`` ``(B, T)``, without the output layer: reading a
        prompt needs logits after its last token only."""
        out, state = self._recurrence(self.drop(self.embed_proj(self.embed(idx))), state)
        if self.attn is not None:  # the outputs to attend over later; no attention needed yet
            memory = self.attn.remember(out, state.memory)  # type: ignore[union-attr]
            state = AttentionState(state.recurrent, memory)  # type: ignore[union-attr]
        return state

    def _recurrence(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
        """The stack's outputs ``(B, T, H)`` and its state after ``x``; with ``--attention``,
        the state is an ``AttentionState`` whose memory is passed through untouched (made
        empty when ``state`` is None) for the caller to update."""
        if self.attn is None:
            return self._stack(x, state)
        if state is None:
            state = self.init_state(x.size(0), x.device)
        out, recurrent = self._stack(x, state.recurrent)  # type: ignore[union-attr]
        return out, AttentionState(recurrent, state.memory)  # type: ignore[union-attr]

    def _stack(self, x: torch.Tensor, state: State | None) -> tuple[torch.Tensor, State]:
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
        # Functional calls skip the per-module dispatch, a real share of a batch-1 step.
        x = F.embedding(tokens, self.embed.weight)  # (B, E), or the vectors' width
        if c.table_size != c.embed_size:
            x = F.linear(x, self.embed_proj.weight)  # (B, E)
        if state is None:
            state = self.init_state(tokens.size(0), tokens.device)
        memory = None
        if isinstance(state, AttentionState):
            state, memory = state.recurrent, state.memory
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
        new_state: State = (
            (torch.stack(hs), torch.stack(cs)) if c.cell == "lstm" else torch.stack(hs)
        )
        if self.attn is not None and memory is not None:
            # The same attention as ``forward``'s, over a window of one position.
            mixed, memory = self.attn(x[:, None], memory)
            x, new_state = mixed[:, 0], AttentionState(new_state, memory)
        if not isinstance(self.bridge, nn.Identity):
            x = self.bridge(x)
        return self.logits_of(x), new_state  # (B, V)

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
    when given: a bf16 autocast window returns a bf16 state, carried on in fp32). A
    Transformer's ``KVCache`` detaches itself."""
    if hasattr(state, "detached"):  # a KVCache, or an AttentionState
        return state.detached(dtype)  # type: ignore[union-attr]
    if isinstance(state, tuple):
        return tuple(s.detach().to(dtype or s.dtype) for s in state)  # type: ignore[return-value]
    return state.detach().to(dtype or state.dtype)


def expand_state(state: State, batch_size: int) -> State:
    """Repeat a batch-1 state for ``batch_size`` samples (one prompt, many continuations)."""
    if hasattr(state, "expanded"):  # a Transformer's KVCache, or an AttentionState
        return state.expanded(batch_size)  # type: ignore[union-attr]
    if isinstance(state, tuple):
        return tuple(s.expand(-1, batch_size, -1).contiguous() for s in state)  # type: ignore
    return state.expand(-1, batch_size, -1).contiguous()
