"""Token files, training batches (StreamBatches), evaluation windows and evaluate_tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn import functional as F

from genseq.data import StreamBatches, TokenFileWriter, dtype_for_vocab, eval_windows, read_tokens
from genseq.errors import UsageError
from genseq.evaluate import evaluate_tokens
from genseq.model import ModelConfig, RecurrentLM

FAST = settings(max_examples=60, deadline=None)


# ---------------------------------------------------------------------------------------------
# StreamBatches


def all_batches(sb: StreamBatches, epoch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [sb.get(epoch, i) for i in range(sb.batches_in_epoch(epoch))]


@pytest.mark.parametrize(("n", "batch", "seq"), [(100, 4, 5), (1000, 3, 7), (57, 2, 1)])
def test_stream_batches_shapes_and_targets(n, batch, seq):
    sb = StreamBatches(np.arange(n), batch, seq, seed=3)
    assert sb.stream_len == (n - 1) // batch
    for epoch in range(4):
        batches = all_batches(sb, epoch)
        assert len(batches) >= 1
        for x, y in batches:
            assert x.shape == (batch, seq) and y.shape == (batch, seq)
            assert x.dtype == np.int64 and y.dtype == np.int64
            assert np.array_equal(y, x + 1)  # targets are the next tokens
            assert x.min() >= 0 and y.max() <= n - 1


@given(
    n=st.integers(20, 600),
    batch=st.integers(1, 6),
    seq=st.integers(1, 9),
    seed=st.integers(0, 2**32 - 1),
)
@FAST
def test_stream_batches_properties(n, batch, seq, seed):
    stream_len = (n - 1) // batch
    if stream_len < seq + 1:
        with pytest.raises(UsageError):
            StreamBatches(np.arange(n), batch, seq, seed=seed)
        return
    tokens = np.arange(n)
    sb = StreamBatches(tokens, batch, seq, seed=seed)
    again = StreamBatches(tokens, batch, seq, seed=seed)
    assert sb.offset(0) == 0
    for epoch in range(5):
        off = sb.offset(epoch)
        assert 0 <= off < seq
        assert off == again.offset(epoch)  # deterministic for a seed
        assert sb.batches_in_epoch(epoch) == again.batches_in_epoch(epoch)
        assert sb.batches_in_epoch(epoch) == (stream_len - off) // seq
    assert sb.batches_in_epoch(0) == stream_len // seq >= 1
    assert sb.tokens_per_epoch == sb.batches_in_epoch(0) * seq * batch

    for epoch in (0, 1, 2):
        batches = all_batches(sb, epoch)
        if not batches:  # possible for epoch > 0: see test_every_epoch_has_a_batch
            continue
        xs = np.concatenate([x for x, _ in batches], axis=1)  # (B, batches * T)
        off = sb.offset(epoch)
        for b in range(batch):
            # Each stream is contiguous from window to window ...
            assert np.array_equal(np.diff(xs[b]), np.ones(xs.shape[1] - 1))
            # ... and starts at its own slice of the token array.
            assert xs[b, 0] == b * stream_len + off
            # Nothing is read beyond the stream (its last target is the one extra token).
            assert batches[-1][1][b, -1] <= (b + 1) * stream_len
        # Continuity across windows: next window's first input follows the last one.
        for (x0, _), (x1, _) in zip(batches, batches[1:], strict=False):
            assert np.array_equal(x1[:, 0], x0[:, -1] + 1)
        # Streams are disjoint.
        seen = xs.reshape(-1)
        assert len(np.unique(seen)) == seen.size


def test_every_epoch_has_a_batch():
    # Accepted by the constructor (each stream holds seq_len + 1 = 16 tokens and more), and the
    # shape plan() picks for tiny data (seq_len = stream_len - 1).
    sb = StreamBatches(np.arange(20), 1, 15, seed=1)
    assert sb.batches_in_epoch(0) == 1
    for epoch in range(1, 6):
        assert sb.batches_in_epoch(epoch) >= 1, f"epoch {epoch} (offset {sb.offset(epoch)})"
        x, y = sb.get(epoch, 0)
        assert np.array_equal(y, x + 1)


def test_stream_batches_offsets_vary_with_seed_and_epoch():
    tokens = np.arange(5000)
    sb = StreamBatches(tokens, 2, 50, seed=0)
    offsets = {sb.offset(e) for e in range(1, 30)}
    assert len(offsets) > 1  # the windows move between epochs
    other = StreamBatches(tokens, 2, 50, seed=1)
    assert [sb.offset(e) for e in range(1, 30)] != [other.offset(e) for e in range(1, 30)]


@pytest.mark.parametrize("world", [1, 2])
def test_stream_batches_read_the_token_values(world):
    # Positions come from a run over arange; the same run over other values must read exactly
    # those positions (inputs and targets alike).
    n = 503
    values = np.random.default_rng(0).integers(0, 60000, size=n).astype(np.uint16)
    for rank in range(world):
        where = StreamBatches(np.arange(n), 5, 7, seed=2, rank=rank, world_size=world)
        real = StreamBatches(values, 5, 7, seed=2, rank=rank, world_size=world)
        for epoch in range(3):
            for i in range(real.batches_in_epoch(epoch)):
                px, py = where.get(epoch, i)
                x, y = real.get(epoch, i)
                assert x.dtype == np.int64 and y.dtype == np.int64
                assert np.array_equal(x, values[px].astype(np.int64))
                assert np.array_equal(y, values[py].astype(np.int64))


def test_stream_batches_read_memmap_dtype(tmp_path):
    path = tmp_path / "t.bin"
    writer = TokenFileWriter(path, "uint16")
    writer.write(np.arange(300) % 65536)
    writer.close()
    sb = StreamBatches(read_tokens(path, "uint16"), 3, 8)
    x, y = sb.get(0, 2)
    assert x.dtype == np.int64 and np.array_equal(y, x + 1)
    assert x[1, 0] == 99 + 16  # stream 1 starts at (300 - 1) // 3 = 99, window 2 at 16


@pytest.mark.parametrize("world", [1, 2, 4])
@pytest.mark.parametrize("batch", [4, 8, 6])
def test_stream_batches_rank_slicing(world, batch):
    tokens = np.arange(2000)
    whole = StreamBatches(tokens, batch, 6, seed=11)
    parts = [
        StreamBatches(tokens, batch, 6, seed=11, rank=r, world_size=world) for r in range(world)
    ]
    for part in parts:
        assert part.stream_len == whole.stream_len
    for epoch in range(3):
        n = whole.batches_in_epoch(epoch)
        assert all(p.batches_in_epoch(epoch) == n for p in parts)
        for i in range(n):
            x, y = whole.get(epoch, i)
            rows_x = np.zeros_like(x) - 1
            rows_y = np.zeros_like(y) - 1
            total = 0
            for part in parts:
                px, py = part.get(epoch, i)
                assert px.shape[0] == len(part.streams)
                rows_x[part.streams] = px
                rows_y[part.streams] = py
                total += px.shape[0]
            assert total == batch  # every row exactly once
            assert np.array_equal(rows_x, x)
            assert np.array_equal(rows_y, y)


def test_stream_batches_errors():
    with pytest.raises(UsageError):
        StreamBatches(np.arange(10), 2, 5)  # streams of 4 tokens, need 6
    with pytest.raises(UsageError):
        StreamBatches(np.arange(0), 1, 1)
    with pytest.raises(UsageError):
        StreamBatches(np.arange(100), 2, 0)
    with pytest.raises(UsageError):
        StreamBatches(np.arange(100), 2, -3)
    with pytest.raises(UsageError):
        StreamBatches(np.arange(100), 0, 4)
    # The smallest that works: every stream holds seq_len + 1 tokens.
    sb = StreamBatches(np.arange(2 * 6 + 1), 2, 5)
    assert sb.batches_in_epoch(0) == 1


# ---------------------------------------------------------------------------------------------
# eval_windows


@given(n=st.integers(0, 300), streams=st.integers(1, 40), seq=st.integers(1, 50))
@FAST
def test_eval_windows_cover_every_target_once(n, streams, seq):
    tokens = np.arange(n)
    windows = list(eval_windows(tokens, streams, seq))
    if n < 2:
        assert windows == []
        return
    targets = []
    for x, y in windows:
        assert x.shape == y.shape
        assert x.ndim == 2 and 1 <= x.shape[1] <= seq
        assert x.shape[0] == min(streams, n - 1)
        assert x.min() >= 0  # padding inputs are a valid id
        real = y >= 0
        assert np.all(y[~real] == -1)
        assert np.array_equal(y[real], x[real] + 1)  # each target's input is its predecessor
        targets.extend(y[real].tolist())
    assert sorted(targets) == list(range(1, n))
    # Streams are contiguous across windows: a stream's next window continues it.
    for (_x0, y0), (x1, _) in zip(windows, windows[1:], strict=False):
        cont = y0[:, -1] >= 0
        assert np.array_equal(x1[cont, 0], y0[cont, -1])


def test_eval_windows_with_uint16_memmap(tmp_path):
    path = tmp_path / "v.bin"
    writer = TokenFileWriter(path, "uint16")
    data = np.array([65535, 3, 0, 65534, 7], dtype=np.int64)
    writer.write(data)
    writer.close()
    tokens = read_tokens(path, "uint16")
    ((x, y),) = list(eval_windows(tokens, 1, 10))
    assert x.tolist() == [[65535, 3, 0, 65534]]
    assert y.tolist() == [[3, 0, 65534, 7]]


# ---------------------------------------------------------------------------------------------
# Token files


def test_dtype_for_vocab():
    assert dtype_for_vocab(2) == "uint16"
    assert dtype_for_vocab(65536) == "uint16"
    assert dtype_for_vocab(65537) == "uint32"
    assert dtype_for_vocab(1_000_000, "auto") == "uint32"
    assert dtype_for_vocab(100, "uint32") == "uint32"
    assert dtype_for_vocab(65536, "uint16") == "uint16"
    with pytest.raises(UsageError):
        dtype_for_vocab(70000, "uint16")
    with pytest.raises(UsageError):
        dtype_for_vocab(100, "int8")


@pytest.mark.parametrize("dtype", ["uint16", "uint32"])
def test_token_file_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(0)
    high = 2**16 if dtype == "uint16" else 2**32
    chunks = [rng.integers(0, high, size=s, dtype=np.int64) for s in (0, 1, 1000, 37, 0, 5)]
    chunks.append(np.array([high - 1, 0], dtype=np.int64))
    path = tmp_path / "train.bin"
    writer = TokenFileWriter(path, dtype)
    for chunk in chunks:
        writer.write(chunk)
    writer.close()
    expected = np.concatenate(chunks)
    assert writer.count == expected.size
    assert path.stat().st_size == expected.size * np.dtype(dtype).itemsize
    back = read_tokens(path, dtype)
    assert back.dtype == np.dtype(dtype)
    assert np.array_equal(back.astype(np.int64), expected)


def test_empty_token_file(tmp_path):
    path = tmp_path / "empty.bin"
    writer = TokenFileWriter(path, "uint32")
    writer.write(np.zeros(0, dtype=np.int64))
    writer.close()
    assert writer.count == 0
    assert path.stat().st_size == 0
    back = read_tokens(path, "uint32")
    assert back.shape == (0,)
    assert back.dtype == np.uint32


# ---------------------------------------------------------------------------------------------
# evaluate_tokens


def tiny_model(seed: int, cell: str = "lstm", vocab: int = 23) -> RecurrentLM:
    torch.manual_seed(seed)
    model = RecurrentLM(
        ModelConfig(vocab_size=vocab, cell=cell, num_layers=2, hidden_size=12, embed_size=8)
    )
    with torch.no_grad():  # larger weights so the logits are far from uniform
        for p in model.parameters():
            p.mul_(4.0)
    return model


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_evaluate_tokens_matches_direct_loss(cell):
    model = tiny_model(1, cell)
    rng = np.random.default_rng(2)
    tokens = rng.integers(0, 23, size=61)
    result = evaluate_tokens(model, tokens, streams=1, seq_len=1000)
    assert result.tokens == len(tokens) - 1
    x = torch.from_numpy(tokens[:-1])[None]
    y = torch.from_numpy(tokens[1:])
    with torch.no_grad():
        expected = F.cross_entropy(model(x)[0][0], y).item()
    assert result.loss == pytest.approx(expected, abs=1e-5)
    assert result.nats == pytest.approx(expected * (len(tokens) - 1), rel=1e-5)
    assert result.perplexity == pytest.approx(np.exp(expected), rel=1e-5)
    uniform = np.log(23)
    assert abs(result.loss - uniform) > 1e-3  # the check above is not trivially uniform
    # State carried across windows: small windows give the same loss as one big one.
    for seq in (1, 3, 7, 60):
        windowed = evaluate_tokens(model, tokens, streams=1, seq_len=seq)
        assert windowed.tokens == len(tokens) - 1
        assert windowed.loss == pytest.approx(expected, abs=1e-5)


def test_evaluate_tokens_counts_every_prediction_with_streams():
    model = tiny_model(3)
    tokens = np.random.default_rng(4).integers(0, 23, size=50)
    for streams in (1, 2, 5, 49, 200):
        for seq in (1, 4, 100):
            result = evaluate_tokens(model, tokens, streams=streams, seq_len=seq)
            assert result.tokens == 49
            assert np.isfinite(result.nats) and result.nats > 0
    # With several streams, windowing still does not change the result.
    a = evaluate_tokens(model, tokens, streams=4, seq_len=3)
    b = evaluate_tokens(model, tokens, streams=4, seq_len=100)
    assert a.loss == pytest.approx(b.loss, abs=1e-5)


def test_evaluate_tokens_restores_training_mode_and_handles_tiny_input():
    model = tiny_model(5)
    model.train()
    evaluate_tokens(model, np.arange(10), streams=2, seq_len=3)
    assert model.training
    model.eval()
    evaluate_tokens(model, np.arange(10), streams=2, seq_len=3)
    assert not model.training
    empty = evaluate_tokens(model, np.arange(1))
    assert empty.tokens == 0 and empty.nats == 0.0 and empty.loss == 0.0
