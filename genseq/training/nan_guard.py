"""--on-nan: what a non-finite loss or gradient does to the run.

Checked before every update, so no saved checkpoint ever holds non-finite weights. ``stop``
ends the run with the last good checkpoint kept; ``skip`` skips the update, and the trainer
halves the learning rate and restarts the streams' state, unless the loss stays non-finite for
so many batches in a row that the run is diverging rather than unlucky.
"""

from __future__ import annotations

import math

from genseq.errors import GenseqError

MAX_SKIPS_IN_A_ROW = 10


class NanGuard:
    def __init__(self, policy: str) -> None:
        self.policy = policy
        self.in_a_row = 0

    def updated(self) -> None:
        """An update went through."""
        self.in_a_row = 0

    def skip(self, step: int) -> None:
        """A batch gave a non-finite loss or gradient: raise under ``stop``, or when skipping
        has gone on too long; otherwise the caller skips the update."""
        if self.policy == "stop":
            raise GenseqError(
                f"the training loss or its gradients became non-finite at step {step + 1}; "
                "lower --lr, set --clip-norm or use --on-nan skip (the last good checkpoint "
                "is kept)"
            )
        self.in_a_row += 1
        if self.in_a_row > MAX_SKIPS_IN_A_ROW:
            raise GenseqError(
                f"the loss stayed non-finite for {self.in_a_row} batches in a row at step "
                f"{step}; lower --lr (the last good checkpoint is kept)"
            )

    @staticmethod
    def check_mean(train_loss: float, step: int) -> None:
        """The logged mean loss: a non-finite one means an update slipped through."""
        if not math.isfinite(train_loss):
            raise GenseqError(
                f"the training loss became {train_loss} at step {step}; lower --lr, set "
                "--clip-norm or use --on-nan skip (the last good checkpoint is kept)"
            )
