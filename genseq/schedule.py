"""Learning-rate schedules driven by training progress in [0, 1].

Progress is the larger of steps done over planned steps and seconds spent over the time
budget, so a ``--time-budget`` run anneals to its floor exactly when its time runs out, as a
step-planned run does at its last step.
"""

from __future__ import annotations

import math

SCHEDULES = ("cosine", "plateau", "constant")


class Schedule:
    def __init__(
        self,
        kind: str,
        base_lr: float,
        warmup_steps: int,
        min_lr_ratio: float = 0.1,
        plateau_factor: float = 0.5,
    ) -> None:
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}")
        self.kind = kind
        self.base_lr = base_lr
        self.warmup_steps = warmup_steps
        self.min_lr_ratio = min_lr_ratio
        self.plateau_factor = plateau_factor
        self.factor = 1.0  # plateau: multiplied by plateau_factor at each non-improving eval
        self.scale = 1.0  # every schedule: halved for each step skipped with --on-nan skip

    def lr(self, step: int, progress: float) -> float:
        return self.scale * self._lr(step, progress)

    def _lr(self, step: int, progress: float) -> float:
        if self.warmup_steps and step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        if self.kind == "cosine":
            p = min(max(progress, 0.0), 1.0)
            ratio = self.min_lr_ratio + (1 - self.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p))
            return self.base_lr * ratio
        if self.kind == "plateau":
            return self.base_lr * self.factor
        return self.base_lr

    def on_eval(self, improved: bool) -> None:
        if self.kind == "plateau" and not improved:
            self.factor *= self.plateau_factor

    def state_dict(self) -> dict:
        return {"factor": self.factor, "scale": self.scale}

    def load_state_dict(self, state: dict) -> None:
        self.factor = float(state.get("factor", 1.0))
        self.scale = float(state.get("scale", 1.0))
