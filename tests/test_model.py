"""RecurrentLM: shapes, incremental stepping, weight tying and the config."""

from __future__ import annotations

import pytest
import torch

from genseq.model import CELLS, ModelConfig, RecurrentLM, detach_state, expand_state

VOCAB = 19
HIDDEN = 12
EMBED = 8


def make_model(cell: str, layers: int, seed: int = 0, **overrides) -> RecurrentLM:
    torch.manual_seed(seed)
    options = {
        "vocab_size": VOCAB,
        "cell": cell,
        "num_layers": layers,
        "hidden_size": HIDDEN,
        "embed_size": EMBED,
    }
    options.update(overrides)
    model = RecurrentLM(ModelConfig(**options))
    model.eval()
    return model


def state_shapes(state) -> list[tuple[int, ...]]:
    parts = state if isinstance(state, tuple) else (state,)
    return [tuple(p.shape) for p in parts]


def expected_state_shapes(cell: str, layers: int, batch: int) -> list[tuple[int, ...]]:
    one = (layers, batch, HIDDEN)
    return [one, one] if cell == "lstm" else [one]


ALL = [(cell, layers) for cell in CELLS for layers in (1, 2)]


@pytest.mark.parametrize(("cell", "layers"), ALL)
def test_forward_shapes(cell, layers):
    model = make_model(cell, layers)
    idx = torch.randint(0, VOCAB, (3, 7), generator=torch.Generator().manual_seed(1))
    logits, state = model(idx)
    assert logits.shape == (3, 7, VOCAB)
    assert logits.dtype == torch.float32
    assert state_shapes(state) == expected_state_shapes(cell, layers, 3)
    assert isinstance(state, tuple) == (cell == "lstm")
    init = model.init_state(3)
    assert state_shapes(init) == expected_state_shapes(cell, layers, 3)
    # init_state is the zero state, i.e. the same as passing no state at all.
    logits_init, _ = model(idx, init)
    torch.testing.assert_close(logits_init, logits, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("cell", "layers"), ALL)
def test_step_matches_forward(cell, layers):
    model = make_model(cell, layers, seed=3)
    torch.manual_seed(4)
    idx = torch.randint(0, VOCAB, (2, 9))
    full, full_state = model(idx)
    state = None
    steps = []
    for t in range(idx.size(1)):
        logits, state = model.step(idx[:, t], state)
        assert logits.shape == (2, VOCAB)
        steps.append(logits)
    stepped = torch.stack(steps, dim=1)
    torch.testing.assert_close(stepped, full, rtol=0, atol=1e-5)
    for a, b in zip(
        state if isinstance(state, tuple) else (state,),
        full_state if isinstance(full_state, tuple) else (full_state,),
        strict=True,
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)


@pytest.mark.parametrize(("cell", "layers"), ALL)
def test_forward_in_two_windows_matches_one(cell, layers):
    model = make_model(cell, layers, seed=5)
    torch.manual_seed(6)
    idx = torch.randint(0, VOCAB, (2, 10))
    full, _ = model(idx)
    first, state = model(idx[:, :4])
    second, _ = model(idx[:, 4:], detach_state(state))
    torch.testing.assert_close(torch.cat([first, second], dim=1), full, rtol=0, atol=1e-5)


def test_step_has_no_grad():
    model = make_model("lstm", 1)
    model.train()
    logits, _ = model.step(torch.tensor([1, 2]), None)
    assert not logits.requires_grad
    out, _ = model(torch.tensor([[1, 2]]))
    assert out.requires_grad


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("hidden", [EMBED, HIDDEN])
def test_tie_weights_shares_the_tensor(cell, hidden):
    model = make_model(cell, 2, hidden_size=hidden, tie_weights=True)
    assert model.head.weight is model.embed.weight
    if hidden == EMBED:
        assert isinstance(model.bridge, torch.nn.Identity)
    else:
        assert isinstance(model.bridge, torch.nn.Linear)
        assert model.bridge.in_features == hidden
        assert model.bridge.out_features == EMBED
    # Shared, not copied: one parameter, and an update of one is an update of the other.
    names = [name for name, _ in model.named_parameters()]
    assert "embed.weight" in names and "head.weight" not in names
    with torch.no_grad():
        model.embed.weight[3, 0] = 0.5
    assert model.head.weight[3, 0].item() == 0.5
    logits, _ = model(torch.tensor([[1, 2, 3]]))
    assert logits.shape == (1, 3, VOCAB)
    # Gradients from the head and the embedding both land on the single tensor.
    logits.sum().backward()
    assert model.embed.weight.grad is not None
    assert model.head.weight.grad is model.embed.weight.grad


def test_untied_weights_are_separate():
    model = make_model("gru", 1, tie_weights=False)
    assert model.head.weight is not model.embed.weight
    assert isinstance(model.bridge, torch.nn.Identity)
    assert model.head.weight.shape == (VOCAB, HIDDEN)
    assert torch.count_nonzero(model.head.bias) == 0


def test_parameter_count_with_tying():
    untied = make_model("lstm", 1, hidden_size=EMBED)
    tied = make_model("lstm", 1, hidden_size=EMBED, tie_weights=True)
    assert untied.num_parameters() - tied.num_parameters() == VOCAB * EMBED


def test_lstm_forget_gate_bias_is_one():
    model = make_model("lstm", 2)
    for name, param in model.rnn.named_parameters():
        if name.startswith("bias_ih"):
            assert torch.all(param[HIDDEN : 2 * HIDDEN] == 1.0)


def test_config_rejects_unknown_cell():
    with pytest.raises(ValueError, match="cell"):
        ModelConfig(vocab_size=10, cell="transformer")
    for cell in CELLS:
        assert ModelConfig(vocab_size=10, cell=cell).cell == cell


def test_config_from_dict_ignores_unknown_keys():
    config = ModelConfig(vocab_size=33, cell="gru", num_layers=2, hidden_size=9, embed_size=5)
    data = config.to_dict()
    assert ModelConfig.from_dict(data) == config
    data_extra = {**data, "memory_slots": True, "future_option": [1, 2]}
    assert ModelConfig.from_dict(data_extra) == config
    # Missing keys take the defaults.
    minimal = ModelConfig.from_dict({"vocab_size": 7, "unused": 1})
    assert minimal == ModelConfig(vocab_size=7)
    with pytest.raises(ValueError):
        ModelConfig.from_dict({"vocab_size": 7, "cell": "bogus"})


@pytest.mark.parametrize("cell", CELLS)
def test_detach_and_expand_state(cell):
    model = make_model(cell, 2)
    model.train()
    _, state = model(torch.tensor([[1, 2, 3]]))
    parts = state if isinstance(state, tuple) else (state,)
    assert all(p.requires_grad for p in parts)

    detached = detach_state(state)
    assert type(detached) is type(state)
    d_parts = detached if isinstance(detached, tuple) else (detached,)
    for d, p in zip(d_parts, parts, strict=True):
        assert not d.requires_grad
        assert d.shape == p.shape
        assert torch.equal(d, p)

    expanded = expand_state(detached, 5)
    assert type(expanded) is type(state)
    assert state_shapes(expanded) == expected_state_shapes(cell, 2, 5)
    e_parts = expanded if isinstance(expanded, tuple) else (expanded,)
    for e, d in zip(e_parts, d_parts, strict=True):
        assert e.is_contiguous()
        for b in range(5):
            assert torch.equal(e[:, b], d[:, 0])
        # A real copy: writing one sample's state leaves the others alone.
        e[:, 0] += 1.0
        assert torch.equal(e[:, 1], d[:, 0])

    # Expanded state continues every sample exactly like the batch-1 state.
    model.eval()
    nxt = torch.tensor([4] * 5)
    many, _ = model.step(nxt, expand_state(detached, 5))
    one, _ = model.step(nxt[:1], detached)
    torch.testing.assert_close(many, one.expand(5, -1), rtol=0, atol=1e-6)


def test_adaptive_softmax_gives_log_probabilities_and_its_own_loss():
    """Logits of an adaptive head are log-probabilities; the loss forward computes from the
    features (never the full logits) is the cross-entropy of those logits."""
    model = make_model("lstm", 2, seed=7, adaptive_cutoffs=[4, 10])
    torch.manual_seed(8)
    idx = torch.randint(0, VOCAB, (3, 6))
    targets = torch.randint(0, VOCAB, (3, 6))
    targets[0, :2] = -1  # padding is skipped
    logits, _ = model(idx)
    torch.testing.assert_close(torch.logsumexp(logits, -1), torch.zeros(3, 6), atol=1e-5, rtol=0)
    loss, _ = model(idx, None, targets)
    expected = torch.nn.functional.cross_entropy(
        logits.reshape(-1, VOCAB), targets.reshape(-1), ignore_index=-1
    )
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=0)
    state = None
    for t in range(idx.size(1)):
        stepped, state = model.step(idx[:, t], state)
        torch.testing.assert_close(stepped, logits[:, t], atol=1e-5, rtol=0)


def test_adaptive_softmax_config_is_checked():
    with pytest.raises(ValueError, match="cutoffs"):
        ModelConfig(vocab_size=VOCAB, adaptive_cutoffs=[10, 4])
    with pytest.raises(ValueError, match="cutoffs"):
        ModelConfig(vocab_size=VOCAB, adaptive_cutoffs=[VOCAB])
    with pytest.raises(ValueError, match="share weights"):
        ModelConfig(vocab_size=VOCAB, adaptive_cutoffs=[4], tie_weights=True)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.65])
def test_cheap_dropout_drops_a_share_p_and_keeps_the_mean(p):
    from genseq.model import CheapDropout

    torch.manual_seed(0)
    drop = CheapDropout(p)
    x = torch.ones(400, 1000, requires_grad=True)
    y = drop(x)
    dropped = (y == 0).float().mean().item()
    assert abs(dropped - p) < 0.005 and abs(y.mean().item() - 1.0) < 0.01
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)), rtol=1e-4)
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # the gradient passes through the kept values only
    assert not torch.equal(drop(x), y)  # a fresh mask each call
    drop.eval()
    assert torch.equal(drop(x), x)


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn-tanh"])  # a ReLU's dead units get no
def test_weight_drop_masks_the_recurrent_weights_in_training_only(cell):  # gradient either
    torch.manual_seed(0)
    model = make_model(cell, 2, weight_drop=0.5, hidden_size=64)
    rnn = model.rnn
    idx = torch.randint(0, VOCAB, (3, 7))
    model.eval()
    whole = model(idx)[0]
    model.train()
    loss, _ = model(idx, targets=idx)
    loss.backward()
    # The kernel's weight list holds the parameters again after the call.
    names = rnn._flat_weights_names
    assert all(w is getattr(rnn, n) for w, n in zip(rnn._flat_weights, names, strict=True))
    for name, param in rnn.named_parameters():
        zeros = (param.grad == 0).float().mean().item()
        if name.startswith("weight_hh"):  # one mask for the window: masked weights get nothing
            assert 0.4 < zeros < 0.6, name
        else:
            assert zeros < 0.1, name
    assert not torch.equal(model(idx)[0], model(idx)[0])  # a fresh mask each window
    model.eval()  # evaluation and stepping use the whole weights
    assert torch.equal(model(idx)[0], whole)
    logits, _ = model.step(idx[:, 0], None)
    assert torch.allclose(logits, whole[:, 0], atol=1e-5)


def test_weight_drop_is_checked_and_saved_in_the_config():
    with pytest.raises(ValueError, match="weight_drop"):
        ModelConfig(vocab_size=VOCAB, weight_drop=1.0)
    config = ModelConfig(vocab_size=VOCAB, weight_drop=0.25)
    assert ModelConfig.from_dict(config.to_dict()).weight_drop == 0.25
    assert ModelConfig.from_dict({"vocab_size": VOCAB}).weight_drop == 0.0  # older checkpoints
