"""Turn a micro-batch's trajectories and recomputed log-probs into the objective's loss.

The objectives (trainer.objectives) aggregate over the batch they are given. A step is split over
ranks and micro-batches, so each micro-batch's loss is weighted by its share of the step-global
count that its aggregation averages over (tokens for "token_mean", sequences for the
"seq_mean_*" modes, nothing for "sum"): the summed gradient then equals the single-batch one,
whatever the number of ranks and micro-batches.

GRPO and TempSamp-R1 advantages are group statistics: the driver computes them over the whole step
(`Trajectory.rewards["advantage"]`) before the batch is split, and the loss here only applies them.
What each objective reads and which of its options act here (the loss options) comes from its
`ObjectiveSpec` (trainer.objectives.registry).
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from rollout.batch import Trajectory
from trainer.objectives._common import resolve_aggregation
from trainer.objectives.registry import ObjectiveInputs, get_objective_spec


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
    out = torch.full(shape, fill, dtype=rows[0].dtype, device=rows[0].device)
    for i, row in enumerate(rows):
        out[i, : row.shape[0]] = row
    return out


def _stack_padded(rows: Sequence[torch.Tensor], width: int, fill: float = 0.0) -> torch.Tensor:
    """Like _pad but keeps autograd (rows may require grad)."""
    padded = []
    for row in rows:
        missing = width - row.shape[0]
        if missing:
            pad = torch.full((missing, *row.shape[1:]), fill, dtype=row.dtype, device=row.device)
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
        # torch.tensor copies: arrays that come through Ray are read-only, and torch.as_tensor
        # warns on those ("The given NumPy array is not writable"); _pad copies them anyway.
        return _pad([torch.tensor(v) for v in values], width, fill)

    rows = None
    if "rows" in scores[0]:
        rows = _stack_padded([s["rows"] for s in scores], width)
    # The frozen reference scores sampled rows only (not TempSamp-R1's injected ones).
    scored_by_ref = torch.tensor([t.ref_logprobs is not None for t in trajectories])
    ref_logprobs = None
    if bool(scored_by_ref.any()):
        ref_logprobs = _pad(
            [
                torch.tensor(t.ref_logprobs)
                if t.ref_logprobs is not None
                else torch.zeros(t.num_completion_tokens, dtype=torch.float32)
                for t in trajectories
            ],
            width,
        )
    advantages = None
    if all("advantage" in t.rewards for t in trajectories):
        advantages = torch.tensor([t.rewards["advantage"] for t in trajectories])

    def teacher(name: str, wire_name: str, fill: float = 0.0) -> torch.Tensor | None:
        """A teacher value computed on this rank (a co-located teacher, in `scores`), else the
        one shipped with the trajectories."""
        if name in scores[0]:
            return _pad([s[name].detach() for s in scores], width, fill)
        return optional(wire_name, fill) if wire_name else None

    inputs = ObjectiveInputs(
        logprobs=_stack_padded([s["logprobs"] for s in scores], width),
        mask=mask,
        old_logprobs=_pad([torch.tensor(t.logprobs) for t in trajectories], width),
        teacher_logprobs=teacher("teacher_logprobs", "teacher_logprobs"),
        teacher_logprob_rows=teacher("teacher_rows", ""),
        rewards=torch.tensor([t.rewards.get("total", 0.0) for t in trajectories]),
        group_ids=torch.tensor([t.prompt_index for t in trajectories]),
        is_ground_truth=torch.tensor([t.is_ground_truth for t in trajectories]),
        student_logprob_rows=rows,
        teacher_topk_ids=teacher("teacher_topk_ids", "teacher_topk_ids"),
        teacher_topk_logprobs=teacher(
            "teacher_topk_logprobs", "teacher_topk_logprobs", fill=float("-inf")
        ),
        ref_logprobs=ref_logprobs,
        ref_mask=scored_by_ref if ref_logprobs is not None else None,
        advantages=advantages,
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
    spec = get_objective_spec(objective)
    inputs = objective_inputs(trajectories, scores)
    mode = aggregation_of(objective, options)
    if spec.advantage is not None and inputs.advantages is None:
        missing = next(i for i, t in enumerate(trajectories) if "advantage" not in t.rewards)
        raise ValueError(
            f"objective {objective!r}: trajectory {missing} has no 'advantage' reward "
            "(the driver computes group advantages over the whole step)"
        )
    output = spec.run(inputs, **spec.split_options(options).loss)
    weight = micro_batch_weight(mode, trajectories, totals)
    metrics = {k: float(v) * weight for k, v in output.metrics.items()}
    return output.loss * weight, metrics
