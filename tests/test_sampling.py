"""Sampling invariants: logit processors, BatchSampler and generate(), on CPU with tiny models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import genseq.sample as sample_module
from genseq.checkpoint import Checkpoint
from genseq.errors import UsageError
from genseq.generate import encode_prompt, generate
from genseq.model import ModelConfig, RecurrentLM
from genseq.sample import (
    BatchSampler,
    SamplingSettings,
    apply_repetition_penalty,
    choose,
    filter_logits,
)
from genseq.tokenization.char import CharTokenizer

FAST = settings(max_examples=60, deadline=None)
TEXT = "hello world, the quick brown fox jumps over the lazy dog.\n"
REPEATS = 40  # draws per row in the sampling property tests


# ---------------------------------------------------------------------------------------------
# helpers


def make_model(
    vocab: int,
    seed: int = 0,
    cell: str = "lstm",
    layers: int = 1,
    hidden: int = 12,
    scale: float = 1.0,
    bias: dict[int, float] | None = None,
) -> RecurrentLM:
    """A tiny random model; ``scale`` sharpens its logits, ``bias`` favours some ids."""
    torch.manual_seed(seed)
    model = RecurrentLM(
        ModelConfig(
            vocab_size=vocab, cell=cell, num_layers=layers, hidden_size=hidden, embed_size=8
        )
    )
    with torch.no_grad():
        if scale != 1.0:
            for p in model.parameters():
                p.mul_(scale)
        for i, b in (bias or {}).items():
            model.head.bias[i] = b
    model.eval()
    return model


def char_tokenizer(text: str = TEXT) -> CharTokenizer:
    tok = CharTokenizer()
    tok.fit([text])
    return tok


def char_ckpt(
    tok: CharTokenizer,
    seed: int = 0,
    scale: float = 1.0,
    bias: dict[str, float] | None = None,
    id_bias: dict[int, float] | None = None,
) -> Checkpoint:
    """A checkpoint around a random model; ``bias`` maps characters to head biases."""
    biases = dict(id_bias or {})
    for ch, b in (bias or {}).items():
        biases[tok.token_to_id(ch)] = b
    model = make_model(tok.vocab_size, seed=seed, scale=scale, bias=biases)
    return Checkpoint(Path("unused"), {}, model, tok)


def random_logits(seed: int, rows: int, vocab: int, spread: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(rows, vocab, generator=gen) * spread


def kept(filtered: torch.Tensor) -> torch.Tensor:
    """Which tokens a filter left (removed ones are set to -inf)."""
    return filtered > float("-inf")


def draws(logits: torch.Tensor, s: SamplingSettings, seed: int) -> torch.Tensor:
    """``REPEATS`` draws for every row of ``logits``: shape (REPEATS, rows)."""
    rows = logits.size(0)
    gen = torch.Generator().manual_seed(seed)
    ids = choose(logits.repeat(REPEATS, 1), s, gen)
    assert ids.shape == (REPEATS * rows,)
    assert ids.dtype == torch.long
    return ids.view(REPEATS, rows)


logit_params = {
    "seed": st.integers(0, 2**31 - 1),
    "rows": st.integers(1, 4),
    "vocab": st.integers(2, 40),
    "spread": st.floats(0.1, 6.0),
}


# ---------------------------------------------------------------------------------------------
# filter_logits and choose on raw logits


@given(
    arr=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(2, 30)),
        elements=st.floats(-20, 20, width=32),
    ),
    data=st.data(),
    seed=st.integers(0, 2**31 - 1),
)
@FAST
def test_top_k_samples_among_k_largest(arr, data, seed):
    logits = torch.from_numpy(arr)
    k = data.draw(st.integers(1, logits.size(1)))
    s = SamplingSettings(top_k=k)
    kth = torch.sort(logits, dim=-1, descending=True).values[:, k - 1]  # (rows,)
    mask = kept(filter_logits(logits, s))
    assert torch.all(mask.sum(-1) == k)  # exactly k, ties with the k-th broken by topk
    assert torch.all(mask[logits > kth[:, None]])  # every token better than the k-th ...
    assert not torch.any(mask & (logits < kth[:, None]))  # ... and none worse
    ids = draws(logits, s, seed)
    picked = torch.gather(logits.repeat(REPEATS, 1), 1, ids.reshape(-1, 1)).view(ids.shape)
    assert torch.all(picked >= kth[None, :])


@given(
    arr=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(2, 30)),
        elements=st.floats(-20, 20, width=32),
    ),
    seed=st.integers(0, 2**31 - 1),
)
@FAST
def test_top_k_one_and_greedy_give_the_argmax(arr, seed):
    logits = torch.from_numpy(arr)
    best = logits.max(dim=-1).values
    for s in (
        SamplingSettings(top_k=1),
        SamplingSettings(temperature=0.0),
        SamplingSettings(greedy=True),
        SamplingSettings(greedy=True, temperature=3.0, top_p=0.2, min_p=0.5),
        SamplingSettings(temperature=0.0, top_k=5),
    ):
        ids = draws(logits, s, seed)
        picked = torch.gather(logits.repeat(REPEATS, 1), 1, ids.reshape(-1, 1)).view(ids.shape)
        assert torch.all(picked == best[None, :])
    greedy = choose(logits, SamplingSettings(greedy=True), torch.Generator())
    assert torch.equal(greedy, torch.argmax(logits, dim=-1))


@given(**logit_params, top_p=st.floats(0.01, 0.999), temperature=st.sampled_from([1.0, 0.7, 1.6]))
@FAST
def test_top_p_keeps_the_nucleus(seed, rows, vocab, spread, top_p, temperature):
    logits = random_logits(seed, rows, vocab, spread)
    s = SamplingSettings(top_p=top_p, temperature=temperature)
    mask = kept(filter_logits(logits, s))
    probs = torch.softmax(logits.double() / temperature, dim=-1)
    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs  # mass ahead of each token
    eps = 1e-5
    must = torch.zeros_like(mask).scatter(-1, order, before < top_p - eps)
    may = torch.zeros_like(mask).scatter(-1, order, before < top_p + eps)
    assert torch.all(mask[must])  # the whole nucleus is kept ...
    assert not torch.any(mask & ~may)  # ... and nothing outside it
    assert torch.all(mask.gather(1, order[:, :1]))  # the most likely token always stays
    ids = draws(logits, s, seed)
    assert torch.all(may.repeat(REPEATS, 1).gather(1, ids.reshape(-1, 1)))
    # Kept tokens keep their temperature-scaled logits, up to a shift by the row's best score
    # (which leaves the distribution unchanged).
    filtered = filter_logits(logits, s)
    scaled = logits / temperature
    shift = filtered.max(dim=-1, keepdim=True).values - scaled.max(dim=-1, keepdim=True).values
    torch.testing.assert_close(filtered[mask], (scaled + shift.expand_as(scaled))[mask])


@given(**logit_params)
@FAST
def test_top_p_one_changes_nothing(seed, rows, vocab, spread):
    logits = random_logits(seed, rows, vocab, spread)
    assert torch.equal(filter_logits(logits, SamplingSettings(top_p=1.0)), logits)
    assert torch.equal(filter_logits(logits, SamplingSettings()), logits)
    a = draws(logits, SamplingSettings(top_p=1.0), seed)
    b = draws(logits, SamplingSettings(), seed)
    assert torch.equal(a, b)


@given(**logit_params, min_p=st.floats(0.0, 1.0))
@FAST
def test_min_p_drops_unlikely_tokens(seed, rows, vocab, spread, min_p):
    logits = random_logits(seed, rows, vocab, spread)
    s = SamplingSettings(min_p=min_p)
    mask = kept(filter_logits(logits, s))
    probs = torch.softmax(logits.double(), dim=-1)
    threshold = probs.max(dim=-1, keepdim=True).values * min_p
    eps = 1e-6
    assert torch.all(mask[probs > threshold + eps])
    assert not torch.any(mask & (probs < threshold - eps))
    assert torch.all(mask.gather(1, probs.argmax(-1, keepdim=True)))
    ids = draws(logits, s, seed)
    p = probs.repeat(REPEATS, 1).gather(1, ids.reshape(-1, 1)).view(ids.shape)
    assert torch.all(p >= threshold.view(1, -1) - eps)


@given(**logit_params)
@FAST
def test_very_low_temperature_gives_the_argmax(seed, rows, vocab, spread):
    logits = random_logits(seed, rows, vocab, spread)
    top2 = torch.topk(logits, 2, dim=-1).values
    assume(torch.all(top2[:, 0] - top2[:, 1] > 0.02))  # a unique, clear maximum
    ids = draws(logits, SamplingSettings(temperature=1e-4), seed)
    assert torch.all(ids == logits.argmax(-1)[None, :])


@given(**logit_params, k=st.integers(1, 40), top_p=st.floats(0.05, 1.0), min_p=st.floats(0, 1))
@FAST
def test_combined_filters_respect_each_rule(seed, rows, vocab, spread, k, top_p, min_p):
    logits = random_logits(seed, rows, vocab, spread)
    s = SamplingSettings(temperature=0.8, top_k=k, top_p=top_p, min_p=min_p)
    ids = draws(logits, s, seed).reshape(-1, 1)
    rep = logits.repeat(REPEATS, 1)
    kk = min(k, vocab)
    kth = torch.topk(rep, kk, dim=-1).values[:, -1:]
    assert torch.all(rep.gather(1, ids) >= kth)
    probs = torch.softmax(rep.double() / 0.8, dim=-1)
    # min-p relative to the best token (which top-k and top-p always keep).
    assert torch.all(probs.gather(1, ids) >= probs.max(-1, keepdim=True).values * min_p - 1e-6)


masked_logits = {
    "arr": hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(2, 30)),
        elements=st.floats(-20, 20, width=32),
    ),
    "data": st.data(),
    "seed": st.integers(0, 2**31 - 1),
}


def draw_mask(data, shape: tuple[int, int]) -> torch.Tensor:
    """A random allowed-token mask with at least one allowed token in every row."""
    flat = data.draw(
        st.lists(st.booleans(), min_size=shape[0] * shape[1], max_size=shape[0] * shape[1])
    )
    mask = torch.tensor(flat).view(shape)
    first = torch.tensor([data.draw(st.integers(0, shape[1] - 1)) for _ in range(shape[0])])
    mask[torch.arange(shape[0]), first] = True
    return mask


@given(**masked_logits)
@FAST
def test_filters_rank_the_allowed_tokens_only(arr, data, seed):
    logits = torch.from_numpy(arr)
    allowed = draw_mask(data, tuple(logits.shape))
    k = data.draw(st.integers(1, logits.size(1)))
    mask = kept(filter_logits(logits, SamplingSettings(top_k=k), allowed))
    assert not torch.any(mask & ~allowed)
    # Exactly the k best allowed tokens (all of them when fewer are allowed).
    assert torch.equal(mask.sum(-1), allowed.sum(-1).clamp(max=k))
    masked = logits.masked_fill(~allowed, float("-inf"))
    worst_kept = masked.masked_fill(~mask, float("inf")).min(-1, keepdim=True).values
    assert not torch.any(allowed & ~mask & (masked > worst_kept))
    for s in (
        SamplingSettings(),
        SamplingSettings(temperature=2.5, top_k=k),
        SamplingSettings(top_p=data.draw(st.floats(1e-6, 1.0))),
        SamplingSettings(temperature=0.3, min_p=data.draw(st.floats(0.0, 1.0))),
        SamplingSettings(top_k=k, top_p=0.5, min_p=0.2),
    ):
        ids = choose(
            logits.repeat(REPEATS, 1),
            s,
            torch.Generator().manual_seed(seed),
            allowed.repeat(REPEATS, 1),
        )
        assert torch.all(allowed.repeat(REPEATS, 1).gather(1, ids[:, None]))


@given(**masked_logits)
@FAST
def test_top_k_one_and_tiny_top_p_equal_greedy_under_a_mask(arr, data, seed):
    """The best allowed token, even when the mask removes every token top-k would keep
    without it (the case that once gave a uniform draw over the whole grammar)."""
    logits = torch.from_numpy(arr)
    allowed = draw_mask(data, tuple(logits.shape))
    greedy = choose(logits, SamplingSettings(greedy=True), torch.Generator(), allowed)
    best = logits.masked_fill(~allowed, float("-inf")).max(-1).values
    assert torch.equal(logits.gather(1, greedy[:, None])[:, 0], best)
    for s in (SamplingSettings(top_k=1), SamplingSettings(top_p=1e-9, temperature=1.3)):
        ids = draws_masked(logits, allowed, s, seed)
        picked = torch.gather(logits.repeat(REPEATS, 1), 1, ids.reshape(-1, 1)).view(ids.shape)
        assert torch.all(picked == best[None, :])


def draws_masked(
    logits: torch.Tensor, allowed: torch.Tensor, s: SamplingSettings, seed: int
) -> torch.Tensor:
    rows = logits.size(0)
    gen = torch.Generator().manual_seed(seed)
    ids = choose(logits.repeat(REPEATS, 1), s, gen, allowed.repeat(REPEATS, 1))
    return ids.view(REPEATS, rows)


def test_temperature_scales_the_distribution():
    logits = random_logits(0, 3, 12, 2.0)
    for t in (0.5, 2.0, 7.0):
        filtered = filter_logits(logits, SamplingSettings(temperature=t))
        torch.testing.assert_close(torch.softmax(filtered, -1), torch.softmax(logits / t, -1))


def test_draws_follow_the_softmax_distribution():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, 0.5]])
    gen = torch.Generator().manual_seed(0)
    n = 20000
    for t in (1.0, 2.0):
        ids = choose(logits.repeat(n, 1), SamplingSettings(temperature=t), gen)
        freq = torch.bincount(ids, minlength=5).double() / n
        expected = torch.softmax(logits[0].double() / t, dim=-1)
        assert torch.allclose(freq, expected, atol=0.015), (freq, expected)


def test_choose_is_reproducible_with_a_generator():
    logits = random_logits(3, 4, 30, 1.0)
    s = SamplingSettings(top_p=0.9)
    a = choose(logits.repeat(10, 1), s, torch.Generator().manual_seed(5))
    b = choose(logits.repeat(10, 1), s, torch.Generator().manual_seed(5))
    c = choose(logits.repeat(10, 1), s, torch.Generator().manual_seed(6))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


# ---------------------------------------------------------------------------------------------
# SamplingSettings.validate


@pytest.mark.parametrize(
    "bad",
    [
        {"temperature": -0.01},
        {"temperature": -5.0},
        {"top_k": 0},
        {"top_k": -3},
        {"top_p": 0.0},
        {"top_p": -0.2},
        {"top_p": 1.0001},
        {"top_p": 2.0},
        {"min_p": -0.01},
        {"min_p": 1.01},
        {"repetition_penalty": 0.0},
        {"repetition_penalty": -1.2},
    ],
)
def test_validate_rejects_bad_settings(bad):
    s = SamplingSettings(**bad)
    with pytest.raises(UsageError):
        s.validate()
    model = make_model(10)
    with pytest.raises(UsageError):
        BatchSampler(model, [1], 2, SamplingSettings(**bad), torch.Generator())
    ckpt = char_ckpt(char_tokenizer())
    with pytest.raises(UsageError):
        generate(ckpt, settings=SamplingSettings(**bad), max_new_tokens=3, seed=0)


@pytest.mark.parametrize(
    "good",
    [
        {},
        {"temperature": 0.0},
        {"top_k": 1},
        {"top_p": 1.0},
        {"top_p": 1e-9},
        {"min_p": 0.0},
        {"min_p": 1.0},
        {"repetition_penalty": 1e-3},
        {"temperature": 3.0, "top_k": 500, "top_p": 0.5, "min_p": 0.1},
    ],
)
def test_validate_accepts_good_settings(good):
    SamplingSettings(**good).validate()


def test_is_greedy():
    assert SamplingSettings(temperature=0).is_greedy
    assert SamplingSettings(greedy=True, temperature=1.5).is_greedy
    assert not SamplingSettings().is_greedy
    assert not SamplingSettings(temperature=1e-4).is_greedy


def test_generate_rejects_bad_counts():
    ckpt = char_ckpt(char_tokenizer())
    with pytest.raises(UsageError):
        generate(ckpt, max_new_tokens=0, seed=0)
    with pytest.raises(UsageError):
        generate(ckpt, num_samples=0, seed=0)


# ---------------------------------------------------------------------------------------------
# repetition penalty


def test_repetition_penalty_semantics():
    logits = torch.tensor([[2.0, -2.0, 0.0, 3.0, -1.0], [4.0, -4.0, 1.0, 0.5, -0.5]])
    seen = torch.tensor([[True, True, True, False, False], [False, True, False, True, True]])
    out = logits.clone()
    assert apply_repetition_penalty(out, seen, 2.0) is None  # in place
    expected = torch.tensor([[1.0, -4.0, 0.0, 3.0, -1.0], [4.0, -8.0, 1.0, 0.25, -1.0]])
    assert torch.equal(out, expected)
    # A penalty below 1 favours seen tokens instead; a penalty of 1 changes nothing.
    out = logits.clone()
    apply_repetition_penalty(out, seen, 0.5)
    assert torch.equal(out[0], torch.tensor([4.0, -1.0, 0.0, 3.0, -1.0]))
    out = logits.clone()
    apply_repetition_penalty(out, seen, 1.0)
    assert torch.equal(out, logits)


@given(**logit_params, penalty=st.floats(0.1, 10.0), frac=st.floats(0, 1))
@FAST
def test_repetition_penalty_property(seed, rows, vocab, spread, penalty, frac):
    logits = random_logits(seed, rows, vocab, spread)
    seen = torch.rand(rows, vocab, generator=torch.Generator().manual_seed(seed + 1)) < frac
    out = logits.clone()
    apply_repetition_penalty(out, seen, penalty)
    assert torch.equal(out[~seen], logits[~seen])
    pos = seen & (logits > 0)
    neg = seen & (logits <= 0)
    torch.testing.assert_close(out[pos], logits[pos] / penalty)
    torch.testing.assert_close(out[neg], logits[neg] * penalty)
    if penalty > 1:
        assert torch.all(out[seen] <= logits[seen])  # seen tokens only lose probability


def test_batch_sampler_applies_the_penalty_to_prompt_and_sampled_tokens(monkeypatch):
    model = make_model(20, seed=2, scale=3.0)
    prompt = [1, 5, 7, 5]
    penalty = 1.7
    seen_logits = record_choose(monkeypatch)
    sampler = BatchSampler(
        model,
        prompt,
        3,
        SamplingSettings(repetition_penalty=penalty),
        torch.Generator().manual_seed(0),
    )
    rows = [[] for _ in range(3)]
    for _ in range(12):
        for b, t in enumerate(sampler.next().tolist()):
            rows[b].append(t)
    for step, used in enumerate(seen_logits):
        for b in range(3):
            prefix = prompt + rows[b][:step]
            raw = last_logits(model, prefix)
            expected = raw.clone()[None]
            seen = torch.zeros(1, 20, dtype=torch.bool)
            seen[0, prefix] = True
            apply_repetition_penalty(expected, seen, penalty)
            torch.testing.assert_close(used[b], expected[0], rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# BatchSampler


def record_choose(monkeypatch) -> list[torch.Tensor]:
    """Record the processed logits BatchSampler hands to ``choose`` at every step."""
    calls: list[torch.Tensor] = []
    real = sample_module.choose

    def spy(logits, s, generator, *args):
        calls.append(logits.detach().clone())
        return real(logits, s, generator, *args)

    monkeypatch.setattr(sample_module, "choose", spy)
    return calls


def last_logits(model: RecurrentLM, prefix: list[int]) -> torch.Tensor:
    """Last-position logits of a fresh forward pass over the whole prefix."""
    with torch.no_grad():
        logits, _ = model(torch.tensor([prefix]))
    return logits[0, -1]


def run_sampler(sampler: BatchSampler, steps: int) -> torch.Tensor:
    return torch.stack([sampler.next() for _ in range(steps)], dim=1)  # (B, steps)


def test_batch_sampler_same_seed_same_tokens():
    model = make_model(40, seed=1)
    s = SamplingSettings(temperature=1.0)
    a = run_sampler(BatchSampler(model, [1, 2, 3], 4, s, torch.Generator().manual_seed(7)), 30)
    b = run_sampler(BatchSampler(model, [1, 2, 3], 4, s, torch.Generator().manual_seed(7)), 30)
    assert torch.equal(a, b)


def test_batch_sampler_different_seeds_differ():
    model = make_model(40, seed=1)
    s = SamplingSettings(temperature=1.0)
    a = run_sampler(BatchSampler(model, [1], 1, s, torch.Generator().manual_seed(0)), 50)
    b = run_sampler(BatchSampler(model, [1], 1, s, torch.Generator().manual_seed(1)), 50)
    assert not torch.equal(a, b)


def test_batch_sampler_shapes_and_valid_ids():
    vocab = 33
    model = make_model(vocab, seed=4)
    sampler = BatchSampler(
        model, [1, 4, 9], 6, SamplingSettings(top_p=0.95), torch.Generator().manual_seed(2)
    )
    for _ in range(25):
        tokens = sampler.next()
        assert tokens.shape == (6,)
        assert tokens.dtype == torch.long
        assert torch.all((tokens >= 0) & (tokens < vocab))
    assert sampler.logits.shape == (6, vocab)
    h, c = sampler.state
    assert h.shape == c.shape == (1, 6, 12)
    # The rows are independent draws, not one draw repeated.
    rows = run_sampler(sampler, 30)
    assert len({tuple(r) for r in rows.tolist()}) > 1


def test_batch_sampler_needs_a_prompt():
    with pytest.raises(ValueError):
        BatchSampler(make_model(10), [], 1, SamplingSettings(), torch.Generator())


def test_banned_ids_are_never_produced():
    vocab = 24
    favourite = [3, 11, 17]
    model = make_model(vocab, seed=5, bias=dict.fromkeys(favourite, 25.0))
    for s in (
        SamplingSettings(),
        SamplingSettings(temperature=3.0),
        SamplingSettings(temperature=0.3, top_k=2),
        SamplingSettings(top_p=0.5),
        SamplingSettings(min_p=0.9),
        SamplingSettings(greedy=True),
    ):
        control = run_sampler(BatchSampler(model, [1], 4, s, torch.Generator().manual_seed(0)), 20)
        assert torch.isin(control, torch.tensor(favourite)).float().mean() > 0.9  # the bias works
        banned = BatchSampler(model, [1], 4, s, torch.Generator().manual_seed(0), favourite)
        tokens = run_sampler(banned, 50)
        assert not torch.isin(tokens, torch.tensor(favourite)).any()


class EvenOnly:
    """Allows even ids only."""

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab
        self.started: list[tuple[int, torch.device]] = []
        self.advanced: list[torch.Tensor] = []

    def start(self, batch_size: int, device: torch.device) -> None:
        self.started.append((batch_size, device))
        self.batch = batch_size

    def allowed(self) -> torch.Tensor:
        mask = torch.arange(self.vocab) % 2 == 0
        return mask.expand(self.batch, -1)

    def advance(self, tokens: torch.Tensor) -> None:
        self.advanced.append(tokens.clone())


class Alternating:
    """Per row and step: low half of the vocabulary when (step + row) is even, else high half;
    never the same token twice in a row."""

    def __init__(self, vocab: int) -> None:
        self.vocab = vocab

    def start(self, batch_size: int, device: torch.device) -> None:
        self.step = 0
        self.rows = torch.arange(batch_size)
        self.last = torch.full((batch_size,), -1)

    def allowed(self) -> torch.Tensor:
        ids = torch.arange(self.vocab)[None, :]
        low = ids < self.vocab // 2
        even = ((self.step + self.rows) % 2 == 0)[:, None]
        mask = torch.where(even, low, ~low)
        return mask & (ids != self.last[:, None])

    def advance(self, tokens: torch.Tensor) -> None:
        self.step += 1
        self.last = tokens.clone()


def test_constraint_even_ids():
    vocab = 30
    model = make_model(vocab, seed=6, bias={1: 8.0, 3: 8.0})  # odd ids are the likely ones
    constraint = EvenOnly(vocab)
    sampler = BatchSampler(
        model,
        [1],
        5,
        SamplingSettings(temperature=2.0),
        torch.Generator().manual_seed(1),
        constraint=constraint,
    )
    tokens = run_sampler(sampler, 40)
    assert torch.all(tokens % 2 == 0)
    assert constraint.started == [(5, torch.device("cpu"))]
    assert len(constraint.advanced) == 40
    assert torch.equal(torch.stack(constraint.advanced, dim=1), tokens)


@pytest.mark.parametrize("greedy", [False, True])
def test_constraint_alternating_pattern(greedy):
    vocab = 20
    model = make_model(vocab, seed=7, scale=3.0)
    sampler = BatchSampler(
        model,
        [1, 2],
        4,
        SamplingSettings(greedy=greedy),
        torch.Generator().manual_seed(3),
        constraint=Alternating(vocab),
    )
    tokens = run_sampler(sampler, 30)
    for b in range(4):
        for t in range(30):
            low = tokens[b, t] < vocab // 2
            assert bool(low) == ((t + b) % 2 == 0)
            if t:
                assert tokens[b, t] != tokens[b, t - 1]


@pytest.mark.parametrize(("cell", "layers"), [("lstm", 2), ("gru", 1), ("rnn-tanh", 2)])
def test_incremental_decoding_matches_full_forward(monkeypatch, cell, layers):
    vocab = 25
    model = make_model(vocab, seed=8, cell=cell, layers=layers, scale=3.0)
    prompt = [1, 4, 4, 20, 7]
    sampler = BatchSampler(
        model, prompt, 3, SamplingSettings(temperature=1.0), torch.Generator().manual_seed(4)
    )
    assert sampler.fast  # temperature only: the Gumbel-max path
    used = [sampler.logits.clone()]  # the prompt's, then each step's (logits of the next draw)
    real_step = model.step

    def spy(tokens, state):
        logits, state = real_step(tokens, state)
        used.append(logits.clone())
        return logits, state

    monkeypatch.setattr(model, "step", spy)
    tokens = run_sampler(sampler, 15)
    assert len(used) == 15
    for t, logits in enumerate(used):
        assert logits.shape == (3, vocab)
        for b in range(3):
            prefix = prompt + tokens[b, :t].tolist()
            expected = last_logits(model, prefix)
            torch.testing.assert_close(logits[b], expected, rtol=0, atol=1e-5)


def test_greedy_sampler_follows_the_argmax_of_full_forward():
    vocab = 22
    model = make_model(vocab, seed=9, scale=3.0)
    prompt = [1, 3]
    tokens = run_sampler(
        BatchSampler(model, prompt, 2, SamplingSettings(greedy=True), torch.Generator()), 12
    )
    assert torch.equal(tokens[0], tokens[1])
    prefix = list(prompt)
    for t in range(12):
        nxt = int(last_logits(model, prefix).argmax())
        assert tokens[0, t].item() == nxt
        prefix.append(nxt)


# ---------------------------------------------------------------------------------------------
# generate()


def test_generate_same_seed_same_text():
    tok = char_tokenizer()
    ckpt = char_ckpt(tok, seed=1)
    a = generate(ckpt, "the", max_new_tokens=40, num_samples=3, seed=11)
    b = generate(ckpt, "the", max_new_tokens=40, num_samples=3, seed=11)
    c = generate(ckpt, "the", max_new_tokens=40, num_samples=3, seed=12)
    assert [s.text for s in a] == [s.text for s in b]
    assert [s.ids for s in a] == [s.ids for s in b]
    assert [s.text for s in a] != [s.text for s in c]
    assert [s.index for s in a] == [0, 1, 2]


@pytest.mark.parametrize("n", [1, 5, 17])
def test_generate_respects_max_new_tokens(n):
    tok = char_tokenizer()
    ckpt = char_ckpt(tok, seed=2, id_bias={tok.eos_id: 2.0})  # some samples end early
    samples = generate(ckpt, "a", max_new_tokens=n, num_samples=8, seed=3)
    for s in samples:
        assert s.tokens <= n
        assert s.tokens == len(s.ids)
        assert s.text == tok.decode(s.ids)
        assert tok.eos_id not in s.ids
        if s.finish_reason == "length":
            assert s.tokens == n
        else:
            assert s.finish_reason == "eos" and s.tokens < n
    no_eos = generate(ckpt, "a", max_new_tokens=n, num_samples=4, seed=3, stop_at_eos=False)
    for s in no_eos:
        assert s.tokens == n and s.finish_reason == "length"


def check_stops(samples, tok, stops):
    """Every sample ends just after the first stop string completes, which is cut off."""
    stopped = 0
    for s in samples:
        full = tok.decode(s.ids)
        assert full.startswith(s.text)
        for x in stops:
            assert x not in s.text
        if s.finish_reason == "stop":
            stopped += 1
            first = min(full.find(x) for x in stops if x in full)
            assert first == len(s.text)
            head = tok.decode(s.ids[:-1])
            assert not any(x in head for x in stops)  # stopped as soon as one formed
        else:
            assert s.text == full
            assert not any(x in full for x in stops)
    return stopped


def test_stop_string_ends_the_sample():
    tok = char_tokenizer()
    ckpt = char_ckpt(tok, seed=3, bias={"o": 3.0})
    samples = generate(ckpt, "", max_new_tokens=300, num_samples=16, seed=5, stop=["o"])
    assert check_stops(samples, tok, ["o"]) == 16
    assert all(s.finish_reason == "stop" for s in samples)
    assert any(s.text for s in samples)  # not all stopped at the first token


@pytest.mark.parametrize("stops", [["oo"], ["oo", "e ", "zzzz"], ["o o", "lo"]])
def test_multi_character_stop_strings(stops):
    tok = char_tokenizer()
    ckpt = char_ckpt(tok, seed=4, bias={"o": 2.5, "l": 1.5, " ": 1.5, "e": 1.0})
    samples = generate(
        ckpt, "he", max_new_tokens=300, num_samples=12, seed=6, stop=stops, stop_at_eos=False
    )
    assert check_stops(samples, tok, stops) == 12
    assert sum(len(s.text) for s in samples) > 12


def test_overlapping_stop_strings_cut_at_the_earliest():
    tok = char_tokenizer()
    ckpt = char_ckpt(tok, seed=4, bias={"o": 2.5, "l": 3.0})
    stops = ["o", "lo"]  # after "l", one "o" completes both; "lo" starts first
    samples = generate(
        ckpt, "", max_new_tokens=300, num_samples=16, seed=6, stop=stops, stop_at_eos=False
    )
    assert check_stops(samples, tok, stops) == 16
    both = [s for s in samples if tok.decode(s.ids).endswith("lo")]
    assert both  # the case under test happened
    for s in both:
        assert tok.decode(s.ids) == s.text + "lo"


def test_eos_ends_the_sample():
    tok = char_tokenizer()
    ckpt = char_ckpt(tok, seed=5, id_bias={tok.eos_id: 30.0})
    pieces: list[tuple[int, str]] = []
    samples = generate(
        ckpt,
        "hello",
        max_new_tokens=20,
        num_samples=3,
        seed=0,
        on_text=lambda i, p: pieces.append((i, p)),
    )
    for s in samples:
        assert s.finish_reason == "eos"
        assert s.text == "" and s.tokens == 0 and s.ids == []
    assert pieces == []


@pytest.mark.parametrize(
    ("stops", "eos_bias", "n"),
    [([], 0.0, 30), (["o"], 0.0, 60), (["oo", "the"], 1.5, 60), (["e"], 2.5, 8), (["lo w"], 0, 50)],
)
def test_streamed_pieces_concatenate_to_the_text(stops, eos_bias, n):
    tok = char_tokenizer()
    ckpt = char_ckpt(tok, seed=6, bias={"o": 2.0, "e": 1.0}, id_bias={tok.eos_id: eos_bias})
    streamed: dict[int, list[str]] = {}

    def on_text(i, piece):
        assert piece  # only non-empty pieces are sent
        streamed.setdefault(i, []).append(piece)

    samples = generate(
        ckpt, "th", max_new_tokens=n, num_samples=10, seed=7, stop=stops, on_text=on_text
    )
    for s in samples:
        assert "".join(streamed.get(s.index, [])) == s.text
    if stops:
        check_stops(samples, tok, stops)
    # Same seed without streaming: identical results.
    quiet = generate(ckpt, "th", max_new_tokens=n, num_samples=10, seed=7, stop=stops)
    assert [(s.text, s.finish_reason) for s in quiet] == [
        (s.text, s.finish_reason) for s in samples
    ]


def test_unknown_prompt_characters_are_reported():
    tok = char_tokenizer("hello world")
    info = encode_prompt(tok, "hello Zq!")
    assert info.unknown == ["!", "Z", "q"]
    assert info.ids[0] == tok.eos_id
    assert info.ids[1:] == tok.encode("hello Zq!").tolist()
    assert info.ids.count(tok.unk_id) == 3
    known = encode_prompt(tok, "hello")
    assert known.unknown == []
    assert known.ids == [tok.eos_id, *tok.encode("hello").tolist()]
    assert encode_prompt(tok, "").ids == [tok.eos_id]
    ckpt = char_ckpt(tok, seed=7)
    samples = generate(ckpt, "hello Zq!", max_new_tokens=10, num_samples=2, seed=0)
    assert len(samples) == 2
    for s in samples:
        assert s.tokens >= 1 or s.finish_reason == "eos"
        assert tok.unk_id not in s.ids


def test_top_k_one_equals_greedy():
    tok = char_tokenizer()
    ckpt = char_ckpt(tok, seed=8, scale=3.0)
    kwargs = {"max_new_tokens": 40, "num_samples": 3, "seed": 9, "stop_at_eos": False}
    greedy = generate(ckpt, "the ", SamplingSettings(greedy=True), **kwargs)
    top1 = generate(ckpt, "the ", SamplingSettings(top_k=1), **kwargs)
    zero_t = generate(ckpt, "the ", SamplingSettings(temperature=0), **kwargs)
    assert [s.ids for s in greedy] == [s.ids for s in top1] == [s.ids for s in zero_t]
    other_seed = generate(ckpt, "the ", SamplingSettings(greedy=True), **{**kwargs, "seed": 1})
    assert [s.ids for s in other_seed] == [s.ids for s in greedy]


def test_generate_greedy_matches_independent_decoding():
    tok = char_tokenizer()
    ckpt = char_ckpt(tok, seed=10, scale=3.0)
    prompt = "the q"
    samples = generate(ckpt, prompt, SamplingSettings(greedy=True), max_new_tokens=25, seed=0)
    prefix = [tok.eos_id, *tok.encode(prompt).tolist()]
    ids = []
    for _ in range(25):
        logits = last_logits(ckpt.model, prefix)
        logits[tok.unk_id] = -float("inf")
        nxt = int(logits.argmax())
        if nxt == tok.eos_id:
            break
        ids.append(nxt)
        prefix.append(nxt)
    assert samples[0].ids == ids
    assert samples[0].text == tok.decode(ids)


@pytest.mark.parametrize(
    "s",
    [
        SamplingSettings(),
        SamplingSettings(temperature=0.5),
        SamplingSettings(temperature=2.5),
        SamplingSettings(greedy=True),
        SamplingSettings(top_k=1),
        SamplingSettings(top_p=0.3),
        SamplingSettings(min_p=0.5),
        SamplingSettings(repetition_penalty=1.5),
    ],
)
def test_never_generates_unk(s):
    tok = char_tokenizer()
    ckpt = char_ckpt(tok, seed=11, id_bias={tok.unk_id: 1e4})
    samples = generate(ckpt, "he", s, max_new_tokens=30, num_samples=4, seed=2, stop_at_eos=False)
    for sample in samples:
        assert sample.tokens == 30
        assert tok.unk_id not in sample.ids
        assert "<unk>" not in sample.text
    assert tok.never_generate == [tok.unk_id]


def test_gumbel_fast_path_follows_the_softmax_distribution():
    """Temperature-only sampling takes the Gumbel-max path; its draws must follow
    softmax(logits / T) like ``choose``'s, and never give a banned id."""
    vocab, n = 6, 6000
    model = make_model(vocab, seed=3, bias={2: 1.5, 4: -1.0})
    for t in (1.0, 0.7, 2.0):
        sampler = BatchSampler(
            model, [1], n, SamplingSettings(temperature=t), torch.Generator().manual_seed(1), [5]
        )
        assert sampler.fast
        ids = sampler.next()  # the first draw: every row from the prompt's logits
        expected = torch.softmax(sampler.logits[0].double() / t, dim=-1)
        expected[5] = 0
        expected /= expected.sum()
        freq = torch.bincount(ids, minlength=vocab).double() / n
        assert freq[5] == 0
        assert torch.allclose(freq, expected, atol=0.02), (t, freq, expected)


def test_take_returns_the_tokens_next_would_give():
    model = make_model(30, seed=2)
    for s in (SamplingSettings(temperature=0.9), SamplingSettings(top_k=5)):
        a = BatchSampler(model, [1, 3], 3, s, torch.Generator().manual_seed(9))
        b = BatchSampler(model, [1, 3], 3, s, torch.Generator().manual_seed(9))
        blocks = torch.cat([a.take(1), a.take(7), a.take(100)], dim=1)
        assert torch.equal(blocks, run_sampler(b, 108))


def test_generate_in_blocks_stops_at_eos_and_at_the_token_limit():
    tok = char_tokenizer()
    ckpt = char_ckpt(tok, seed=1)
    eos = tok.eos_id
    for n in (1, 3, 64, 200):
        samples = generate(ckpt, max_new_tokens=n, num_samples=5, seed=4)
        for s in samples:
            assert eos not in s.ids
            assert s.tokens == len(s.ids) <= n
            assert (s.finish_reason == "length") == (s.tokens == n)
            assert s.text == tok.decode(s.ids)
