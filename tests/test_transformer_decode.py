"""The sampler's faster Transformer step (genseq/transformer_decode.py) gives the logits of
one forward pass over the whole sequence, from any cache the prompt leaves, past --context
(where its ring buffer wraps), and the sampler draws the same tokens with it as without."""

from __future__ import annotations

import pytest
import torch
from test_transformer import TOLERANCE, tiny

from genseq.model import ModelConfig, build_model
from genseq.sample import BatchSampler, SamplingSettings, fast_step, read_prompt
from genseq.transformer import rotate
from genseq.transformer_decode import RingCache, TransformerDecodeStep, turned_rows


def test_turned_rows_compute_rotate_half_of_the_outputs():
    """rotate_half is linear, so rows folded into a weight give it from the input."""
    torch.manual_seed(0)
    weight, bias, x = torch.randn(12, 5), torch.randn(12), torch.randn(4, 5)
    heads, half = 3, 2
    y = (x @ weight.T + bias).view(4, heads, 4)
    expected = torch.cat([-y[..., half:], y[..., :half]], dim=-1).view(4, 12)
    got = x @ turned_rows(weight, heads).T + turned_rows(bias, heads)
    assert torch.allclose(got, expected, atol=1e-6)
    # ... and x * cos + turned * sin is the model's own rotation
    cos, sin = torch.rand(4), torch.rand(4)
    assert torch.allclose(y * cos + got.view(4, heads, 4) * sin, rotate(y, cos, sin), atol=1e-6)


def assert_decodes_like_one_forward_pass(model, x: torch.Tensor, prompt: int, state) -> None:
    """From ``state`` (the cache after ``x[:, :prompt]``, or None at 0), every decode step
    gives the logits of one forward pass over ``x``, and the ring advances one position."""
    full, _ = model(x)
    decode = TransformerDecodeStep(model)
    for t in range(prompt, x.size(1)):
        logits, state = decode(x[:, t], state)
        assert isinstance(state, RingCache) and state.position == t + 1
        assert (logits - full[:, t]).abs().max() < TOLERANCE, t


@pytest.mark.parametrize(("context", "prompt"), [(1, 3), (4, 2), (4, 9), (40, 5)])
def test_decode_steps_give_the_logits_of_one_forward_pass(context, prompt):
    """From the cache a prompt leaves (shorter or longer than the context, so the ring is
    filled part way or wrapped), every later step matches the full forward pass."""
    model = tiny(context)
    x = torch.randint(0, 23, (3, 30), generator=torch.Generator().manual_seed(context))
    _, state = model(x[:, :prompt])
    assert_decodes_like_one_forward_pass(model, x, prompt, state)


def test_a_model_with_projected_word_vectors_decodes_the_same():
    """--embeddings of another width: rows enter through embed_proj and the tied output
    layer goes back through it."""
    torch.manual_seed(2)
    config = ModelConfig(
        vocab_size=23, arch="transformer", num_layers=2, hidden_size=16, embed_size=16,
        heads=2, context=5, tie_weights=True, vector_size=6,
    )  # fmt: skip
    model = build_model(config).eval()
    x = torch.randint(0, 23, (2, 12), generator=torch.Generator().manual_seed(4))
    assert_decodes_like_one_forward_pass(model, x, 0, None)


def test_decode_steps_from_no_state_start_at_position_zero():
    model = tiny(4)
    x = torch.randint(0, 23, (2, 11), generator=torch.Generator().manual_seed(3))
    assert_decodes_like_one_forward_pass(model, x, 0, None)


def test_rotations_are_right_across_a_block_boundary(monkeypatch):
    """The rotations are worked out a block of positions at a time: a step on each side of
    a block's edge still matches the model's own step."""
    monkeypatch.setattr("genseq.transformer_decode.ROTARY_BLOCK", 4)
    model = tiny(3)
    x = torch.randint(0, 23, (1, 14), generator=torch.Generator().manual_seed(5))
    assert_decodes_like_one_forward_pass(model, x, 0, None)


def test_the_sampler_uses_it_on_a_cpu_and_draws_the_same_tokens():
    model = tiny(6, vocab=23)
    assert isinstance(fast_step(model, 4, torch.device("cpu")), TransformerDecodeStep)
    drawn = []
    for faster in (True, False):
        settings = SamplingSettings(temperature=0.9, top_k=10)
        sampler = BatchSampler(model, [1, 2, 3], 4, settings, torch.Generator().manual_seed(7))
        if not faster:
            sampler.decoder = None
        drawn.append(sampler.take(40))
    assert torch.equal(drawn[0], drawn[1])


def test_a_prompt_read_in_windows_continues_exactly():
    model = tiny(5)
    x = torch.randint(0, 23, (1, 25), generator=torch.Generator().manual_seed(9))
    _, state = read_prompt(model, x[:, :13], window=4)
    assert_decodes_like_one_forward_pass(model, x, 13, state)
