"""Turn a micro-batch's trajectories and recomputed log-probs into the objective's loss."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from rollout.batch import Trajectory


def step_loss(
    objective: str,
    trajectories: Sequence[Trajectory],
    scores: Sequence[dict[str, torch.Tensor]],
    objective_kwargs: dict[str, Any],
    normaliser: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The loss of one micro-batch (already divided by the step-global `normaliser`) and metrics."""
    if objective == "sft":
        token_sum = sum(-s["logprobs"].sum() for s in scores)
        tokens = sum(int(s["logprobs"].numel()) for s in scores)
        return token_sum / normaliser, {"nll_sum": float(token_sum.detach()), "tokens": tokens}
    raise ValueError(f"unknown objective {objective!r}")
