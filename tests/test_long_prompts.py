"""Long prompts: read into the model a window at a time, with the continuation a single pass
over the whole prompt would give, and memory that does not grow with the prompt's length."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from testkit import genseq_env

import genseq.sample as sample_module
from genseq.checkpoint import Checkpoint
from genseq.generate import encode_prompt, generate
from genseq.model import ModelConfig, RecurrentLM
from genseq.sample import BatchSampler, SamplingSettings, prompt_spans, read_prompt
from genseq.tokenization.char import CharTokenizer

TEXT = "hello world, the quick brown fox jumps over the lazy dog.\n"


def tiny(cell: str = "lstm", vocab: int = 40, layers: int = 2, seed: int = 0) -> RecurrentLM:
    torch.manual_seed(seed)
    config = ModelConfig(vocab, cell=cell, num_layers=layers, hidden_size=16, embed_size=8)
    return RecurrentLM(config).eval()


def states(state) -> tuple[torch.Tensor, ...]:
    return state if isinstance(state, tuple) else (state,)


@pytest.mark.parametrize("length", [1, 2, 5, 6, 7, 8, 13, 14, 100])
@pytest.mark.parametrize("window", [1, 3, 7])
def test_prompt_spans_cover_the_prompt_in_order_with_only_the_first_short(length, window):
    spans = prompt_spans(length, window)
    covered = [i for span in spans for i in range(length)[span]]
    assert covered == list(range(length))
    sizes = [span.stop - span.start for span in spans]
    assert all(size == window for size in sizes[1:])
    assert 1 <= sizes[0] <= window


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn-tanh"])
@pytest.mark.parametrize("length", [1, 2, 3, 4, 9, 16])
def test_a_prompt_within_a_window_is_read_exactly_as_one_pass(cell, length):
    """Bit for bit: the logits of one row alone round differently from the same row of a
    whole prompt's product, so reading a short prompt must not take that shortcut."""
    model = tiny(cell)
    prompt = torch.randint(0, 40, (1, length), generator=torch.Generator().manual_seed(length))
    with torch.no_grad():
        whole_logits, whole_state = model(prompt)
    logits, state = read_prompt(model, prompt, window=16)
    assert torch.equal(logits, whole_logits[:, -1])
    assert all(map(torch.equal, states(state), states(whole_state)))


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn-relu"])
@pytest.mark.parametrize("window", [1, 4, 7, 64])
def test_a_long_prompt_read_in_windows_ends_where_one_pass_ends(cell, window):
    model = tiny(cell)
    prompt = torch.randint(0, 40, (1, 301), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole_logits, whole_state = model(prompt)
    logits, state = read_prompt(model, prompt, window)
    torch.testing.assert_close(logits, whole_logits[:, -1], rtol=0, atol=1e-5)
    for a, b in zip(states(state), states(whole_state), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.fixture
def char_ckpt() -> Checkpoint:
    tok = CharTokenizer()
    tok.fit([TEXT])
    model = tiny(vocab=tok.vocab_size, seed=3)
    return Checkpoint(Path("."), {}, model, tok)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "settings",
    [SamplingSettings(), SamplingSettings(greedy=True), SamplingSettings(top_k=5, top_p=0.9)],
    ids=["temperature", "greedy", "filtered"],
)
def test_a_long_prompt_is_continued_as_when_read_whole(char_ckpt, monkeypatch, settings):
    prompt = TEXT * 12  # 696 characters: 88 windows of 8 tokens

    def continuations(window: int) -> list[str]:
        monkeypatch.setattr(sample_module, "PROMPT_WINDOW", window)
        samples = generate(char_ckpt, prompt, settings, max_new_tokens=60, num_samples=3, seed=5)
        return [s.text for s in samples]

    whole = continuations(10_000)
    assert continuations(8) == whole
    assert continuations(3) == whole


def test_reading_a_prompt_never_shows_the_model_more_than_a_window(monkeypatch):
    """The recurrent layers and the output layer each see at most one window of the prompt;
    every prompt token is read once."""
    model = tiny()
    seen: dict[str, list[int]] = {"rnn": [], "forward": []}
    model.rnn.register_forward_pre_hook(lambda _, args: seen["rnn"].append(args[0].size(1)))
    model.register_forward_pre_hook(lambda _, args: seen["forward"].append(args[0].size(1)))
    monkeypatch.setattr(sample_module, "PROMPT_WINDOW", 32)
    BatchSampler(model, list(range(40)) * 100, 2, SamplingSettings(), torch.Generator())
    assert max(seen["rnn"]) <= 32
    assert seen["forward"] == [32]  # the output layer runs on the last window only
    assert sum(seen["rnn"]) == 4000


MEASURE = """
import resource, torch
from genseq.model import ModelConfig, RecurrentLM
from genseq.sample import read_prompt
torch.manual_seed(0)
model = RecurrentLM(ModelConfig(40, num_layers=2, hidden_size=16, embed_size=8)).eval()
prompt = torch.randint(0, 40, (1, {length}))
read_prompt(model, prompt[:, :1000])  # thread pools and kernels set up outside the measure
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
read_prompt(model, prompt)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_the_peak_memory_of_reading_a_prompt_does_not_grow_with_its_length():
    """Measured in a process of its own: 200,000 tokens read in one pass take about 90 MB
    more at their peak for this model (its activations at every position); in windows,
    about as much as 1,000 tokens."""
    grown_mb = []
    for length in (1_000, 200_000):
        script = MEASURE.format(length=length)
        out = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, env=genseq_env()
        )
        assert out.returncode == 0, out.stderr
        grown_mb.append(int(out.stdout))
    assert grown_mb[1] <= grown_mb[0] + 16, grown_mb


def test_encoding_a_long_prompt_looks_up_each_unknown_character_once(monkeypatch):
    tok = CharTokenizer()
    tok.fit([TEXT])
    calls: list[int] = []
    encode = tok.encode
    monkeypatch.setattr(tok, "encode", lambda text: calls.append(len(text)) or encode(text))
    prompt = (TEXT + "Z") * 20_000 + "Q"
    info = encode_prompt(tok, prompt)
    assert info.unknown == ["Q", "Z"]
    assert len(calls) <= 1 + len(set(prompt))  # the prompt, then one call per distinct character
    assert len(info.ids) == len(prompt) + 1 and info.ids[0] == tok.eos_id
    assert info.ids[1 : len(TEXT) + 2] == [*encode(TEXT).tolist(), tok.unk_id]
