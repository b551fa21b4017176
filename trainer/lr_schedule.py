"""Learning-rate schedules: linear warm-up, then constant or cosine decay (pure functions)."""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine")


def lr_multiplier(
    step: int,
    warmup_steps: int,
    total_steps: int,
    schedule: str = "constant",
    min_ratio: float = 0.0,
    time_progress: float = 0.0,
) -> float:
    """Multiplier of the base lr at optimizer step `step` (0-based).

    Warm-up: (step + 1) / warmup_steps for the first warmup_steps steps. Then "constant": 1.0;
    "cosine": min_ratio + (1 - min_ratio) * 0.5 * (1 + cos(pi * progress)), progress going from 0
    after warm-up to 1 at total_steps, or sooner when `time_progress` (the share of a wall-clock
    or learner-FLOPs budget already spent, `run_progress`; 0 without one) is further along: the
    decay ends with whichever of the step count and the budget ends the run first.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown lr schedule {schedule!r}; expected 'constant' or 'cosine'")
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"min_ratio must be in [0, 1], got {min_ratio}")
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = max((step - warmup_steps) / span, time_progress)
    progress = min(1.0, max(0.0, progress))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def budget_progress(spent: float, budget: float | None) -> float:
    """Share of a training budget spent (wall-clock seconds or learner FLOPs; 0 without a
    budget, capped at 1)."""
    if not budget:
        return 0.0
    return min(1.0, max(0.0, spent / budget))


def run_progress(
    train_seconds: float,
    budget_s: float | None,
    learner_flops: float = 0.0,
    budget_flops: float | None = None,
) -> float:
    """How far a run is through its budgets: the larger of the wall-clock share and the learner
    FLOPs share (0 without either budget). The cosine decay (`lr_multiplier`'s time_progress)
    and the run's end follow whichever budget runs out first."""
    return max(
        budget_progress(train_seconds, budget_s), budget_progress(learner_flops, budget_flops)
    )
