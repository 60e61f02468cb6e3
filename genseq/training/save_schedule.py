"""--save-every: besides each evaluation, save last/ every N steps or every N seconds."""

from __future__ import annotations

import time

import torch

from genseq import distributed
from genseq.distributed import DistContext
from genseq.plan import parse_save_every


class SaveSchedule:
    def __init__(self, save_every: str | None) -> None:
        self.steps, self.seconds = parse_save_every(save_every)
        self.last_save = time.perf_counter()

    def saved(self) -> None:
        self.last_save = time.perf_counter()

    def due(self, step: int, ctx: DistContext, device: torch.device) -> bool:
        """Whether to save after ``step``; by seconds, rank 0's clock decides for every rank."""
        if self.steps:
            return step % self.steps == 0
        if not self.seconds:
            return False
        waited = time.perf_counter() - self.last_save >= self.seconds
        return distributed.any_rank(ctx, ctx.is_main and waited, device)
