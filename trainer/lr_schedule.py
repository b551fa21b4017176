"""Learning-rate schedules: linear warm-up, then constant or cosine decay (pure functions)."""

from __future__ import annotations

import math


def lr_multiplier(
    step: int,
    warmup_steps: int,
    total_steps: int,
    schedule: str = "constant",
    min_ratio: float = 0.0,
) -> float:
    """Multiplier of the base lr at optimizer step `step` (0-based).

    Warm-up: (step + 1) / warmup_steps for the first warmup_steps steps. Then "constant": 1.0;
    "cosine": min_ratio + (1 - min_ratio) * 0.5 * (1 + cos(pi * progress)), progress going from 0
    after warm-up to 1 at total_steps.
    """
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown lr schedule {schedule!r}; expected 'constant' or 'cosine'")
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
