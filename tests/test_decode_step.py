"""The faster LSTM sampling step must follow ``RecurrentLM.step``: exactly (fp32 joined
weights) or within fp16 rounding (packed half weights), carrying the state the same way."""

import pytest
import torch

from genseq.decode_step import LstmDecodeStep, _fp16_linear_available
from genseq.model import ModelConfig, RecurrentLM
from genseq.sample import BatchSampler, SamplingSettings


def lstm(hidden: int = 256, layers: int = 2, tie: bool = False, cutoffs: tuple = ()) -> RecurrentLM:
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=40,
        hidden_size=hidden,
        embed_size=32,
        num_layers=layers,
        tie_weights=tie,
        adaptive_cutoffs=list(cutoffs),
    )
    return RecurrentLM(config).eval()


def max_logit_error(model: RecurrentLM, step: LstmDecodeStep) -> float:
    plain = fast = None
    error = 0.0
    gen = torch.Generator().manual_seed(1)
    for _ in range(40):
        tokens = torch.randint(0, 40, (3,), generator=gen)
        a, plain = model.step(tokens, plain)
        b, fast = step(tokens, fast)
        error = max(error, (a - b).abs().max().item())
    for s_plain, s_fast in zip(plain, fast, strict=True):
        assert s_plain.shape == s_fast.shape
    return error


@pytest.mark.parametrize(
    ("layers", "tie", "cutoffs"),
    [(1, False, ()), (2, False, ()), (2, True, ()), (2, False, (8, 20))],  # (8, 20): adaptive
)
def test_joined_fp32_weights_give_the_plain_step(layers, tie, cutoffs):
    model = lstm(layers=layers, tie=tie, cutoffs=cutoffs)
    assert max_logit_error(model, LstmDecodeStep(model, half=False)) < 1e-5


@pytest.mark.skipif(not _fp16_linear_available(), reason="PyTorch built without fbgemm")
def test_half_weights_stay_within_fp16_rounding():
    model = lstm()
    error = max_logit_error(model, LstmDecodeStep(model, half=True))
    assert 0 < error < 5e-3  # rounded, not identical, and small


def test_the_sampler_uses_it_only_where_it_pays():
    cpu = torch.device("cpu")
    assert LstmDecodeStep.suits(lstm(), 1, cpu)
    assert not LstmDecodeStep.suits(lstm(), 64, cpu)  # arithmetic-bound batches
    assert not LstmDecodeStep.suits(lstm(hidden=64), 1, cpu)  # fits in cache anyway
    gen = torch.Generator().manual_seed(0)
    sampler = BatchSampler(lstm(), [1, 2], 2, SamplingSettings(), gen)
    assert sampler.decoder is not None
    tokens = torch.stack([sampler.next() for _ in range(20)])
    assert tokens.shape == (20, 2) and torch.all((tokens >= 0) & (tokens < 40))
