"""Turn a micro-batch's trajectories and recomputed log-probs into the objective's loss.

The objectives (trainer.objectives) aggregate over the batch they are given. A step is split over
ranks and micro-batches, so each micro-batch's loss is weighted by its share of the step-global
count that its aggregation averages over (tokens for "token_mean", sequences for the
"seq_mean_*" modes, nothing for "sum"): the summed gradient then equals the single-batch one,
whatever the number of ranks and micro-batches.

GRPO and TempSamp-R1 advantages are group statistics: the driver computes them over the whole step
(`Trajectory.rewards["advantage"]`) before the batch is split, and the loss here only applies them.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rollout.batch import Trajectory
from trainer.objectives import grpo_loss
from trainer.objectives._common import resolve_aggregation
from trainer.objectives.registry import ObjectiveInputs, get_objective_spec

# Objectives whose per-token inputs need full log-prob rows of the student (B, T, V).
NEEDS_ROWS = ("opd_full_rkl", "opd_topk_fkl", "opd_topk_rkl")
ADVANTAGE_OBJECTIVES = ("grpo", "tempsamp")


@dataclass(frozen=True)
class StepTotals:
    """Step-global counts over all ranks: completions with trained tokens, and trained tokens."""

    sequences: int
    tokens: int

    @classmethod
    def of(cls, trajectories: Sequence[Trajectory]) -> StepTotals:
        """Counts of a step's trajectories (a completion with no token counts for nothing)."""
        lengths = [t.num_completion_tokens for t in trajectories]
        return cls(sequences=sum(1 for n in lengths if n > 0), tokens=sum(lengths))


def aggregation_of(objective: str, options: dict[str, Any]) -> str:
    """The aggregation mode an objective will use: the option if given, else its default."""
    if "aggregation" in options:
        return resolve_aggregation(str(options["aggregation"]))
    function = grpo_loss if objective in ADVANTAGE_OBJECTIVES else None
    if function is None:
        function = get_objective_spec(objective).functions[0]
    default = inspect.signature(function).parameters["aggregation"].default
    return resolve_aggregation(default)


def micro_batch_weight(mode: str, trajectories: Sequence[Trajectory], totals: StepTotals) -> float:
    """Share of the step-global count that this micro-batch's aggregation averaged over."""
    part = StepTotals.of(trajectories)
    if mode == "sum":
        return 1.0
    if mode == "token_mean":
        return part.tokens / max(totals.tokens, 1)
    return part.sequences / max(totals.sequences, 1)


def _pad(rows: Sequence[torch.Tensor], width: int, fill: float = 0.0) -> torch.Tensor:
    """Stack 1-D or 2-D per-sequence tensors into (B, width, ...), padding with `fill`."""
    shape = (len(rows), width, *rows[0].shape[1:])
    out = torch.full(shape, fill, dtype=rows[0].dtype)
    for i, row in enumerate(rows):
        out[i, : row.shape[0]] = row
    return out


def _stack_padded(rows: Sequence[torch.Tensor], width: int, fill: float = 0.0) -> torch.Tensor:
    """Like _pad but keeps autograd (rows may require grad)."""
    padded = []
    for row in rows:
        missing = width - row.shape[0]
        if missing:
            pad = torch.full((missing, *row.shape[1:]), fill, dtype=row.dtype)
            row = torch.cat([row, pad], dim=0)
        padded.append(row)
    return torch.stack(padded)


def objective_inputs(
    trajectories: Sequence[Trajectory], scores: Sequence[dict[str, torch.Tensor]]
) -> ObjectiveInputs:
    """Padded (B, T) inputs of the objectives from trajectories and the learner's log-probs."""
    width = max(1, max(t.num_completion_tokens for t in trajectories))
    lengths = torch.tensor([t.num_completion_tokens for t in trajectories])
    mask = (torch.arange(width)[None, :] < lengths[:, None]).float()

    def optional(name: str, fill: float = 0.0) -> torch.Tensor | None:
        values = [getattr(t, name) for t in trajectories]
        if any(v is None for v in values):
            return None
        return _pad([torch.as_tensor(v) for v in values], width, fill)

    rows = None
    if "rows" in scores[0]:
        rows = _stack_padded([s["rows"] for s in scores], width)
    inputs = ObjectiveInputs(
        logprobs=_stack_padded([s["logprobs"] for s in scores], width),
        mask=mask,
        old_logprobs=_pad([torch.as_tensor(t.logprobs) for t in trajectories], width),
        teacher_logprobs=optional("teacher_logprobs"),
        rewards=torch.tensor([t.rewards.get("total", 0.0) for t in trajectories]),
        group_ids=torch.tensor([t.prompt_index for t in trajectories]),
        is_ground_truth=torch.tensor([t.is_ground_truth for t in trajectories]),
        student_logprob_rows=rows,
        teacher_topk_ids=optional("teacher_topk_ids"),
        teacher_topk_logprobs=optional("teacher_topk_logprobs", fill=float("-inf")),
        ref_logprobs=optional("ref_logprobs"),
    )
    return _on_device(inputs, inputs.logprobs.device)


def _on_device(inputs: ObjectiveInputs, device: torch.device) -> ObjectiveInputs:
    """The inputs with every tensor on `device` (the learner's: a GPU when it has one)."""
    if device.type == "cpu":
        return inputs
    moved = {
        f.name: getattr(inputs, f.name).to(device)
        for f in dataclasses.fields(inputs)
        if isinstance(getattr(inputs, f.name), torch.Tensor)
    }
    return dataclasses.replace(inputs, **moved)


def step_loss(
    objective: str,
    trajectories: Sequence[Trajectory],
    scores: Sequence[dict[str, torch.Tensor]],
    options: dict[str, Any],
    totals: StepTotals,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted loss of one micro-batch and its detached metrics (floats)."""
    inputs = objective_inputs(trajectories, scores)
    mode = aggregation_of(objective, options)
    if objective in ADVANTAGE_OBJECTIVES:
        missing = [i for i, t in enumerate(trajectories) if "advantage" not in t.rewards]
        if missing:
            raise ValueError(
                f"objective {objective!r}: trajectory {missing[0]} has no 'advantage' reward "
                "(the driver computes group advantages over the whole step)"
            )
        advantages = torch.tensor([t.rewards["advantage"] for t in trajectories]).to(
            inputs.logprobs.device
        )
        # TempSamp-R1: the injected ground-truth row was not sampled; its ratio is exactly 1.
        old = torch.where(
            inputs.is_ground_truth[:, None], inputs.logprobs.detach(), inputs.old_logprobs
        )
        grpo_options = {k: v for k, v in options.items() if k in _GRPO_OPTIONS}
        output = grpo_loss(
            inputs.logprobs,
            advantages,
            inputs.mask,
            old,
            ref_logprobs=inputs.ref_logprobs,
            **grpo_options,
        )
    else:
        spec = get_objective_spec(objective)
        output = spec.run(inputs, **options)
    weight = micro_batch_weight(mode, trajectories, totals)
    metrics = {k: float(v) * weight for k, v in output.metrics.items()}
    return output.loss * weight, metrics


_GRPO_OPTIONS = tuple(
    name
    for name, p in inspect.signature(grpo_loss).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "ref_logprobs"
)
