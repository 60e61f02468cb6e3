"""Tunes drawn through the ABC grammar under random logits, which reach every corner of it:
the tests' strongest probe of the constraint (shared by the grammar and form tests)."""

from __future__ import annotations

import torch

from genseq.music.abc_constraint import AbcConstraint, PartForm


def random_walk(
    tokenizer,
    seed: int,
    batch: int = 8,
    max_tokens: int = 200,
    scale: float = 3.0,
    form: PartForm | None = None,
    prompt: tuple[str, ...] = (),
) -> tuple[list[list[str]], list[bool]]:
    """``batch`` tunes (tokens without the final ``<eos>``, from ``prompt`` on) and whether
    each one ended."""
    gen = torch.Generator().manual_seed(seed)
    ids = [tokenizer.eos_id, *(tokenizer.ids[t] for t in prompt)]
    constraint = AbcConstraint(tokenizer, ids, max_tokens=max_tokens, form=form)
    constraint.start(batch, torch.device("cpu"))
    out: list[list[str]] = [list(prompt) for _ in range(batch)]
    done = [False] * batch
    for _ in range(max_tokens + 1):
        mask = constraint.allowed()
        assert mask.any(dim=1).all()
        logits = torch.randn(batch, tokenizer.vocab_size, generator=gen) * scale
        logits[~mask] = float("-inf")
        tokens = torch.multinomial(torch.softmax(logits, -1), 1, generator=gen).squeeze(-1)
        constraint.advance(tokens)
        for i, t in enumerate(tokens.tolist()):
            if not done[i]:
                done[i] = t == tokenizer.eos_id
                if not done[i]:
                    out[i].append(tokenizer.id_to_token(t))
        if all(done):
            break
    return out, done
