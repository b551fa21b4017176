"""Reward composition for GRPO / TempSamp-R1, and the TempSamp-R1 ground-truth completion text.

The task-side glue between the completions' text and the pure tensor objectives: every formula
lives in tvg.rewards (IoU, Time-R1's distance-weighted IoU, TempSamp-R1's soft shaping, format);
this module only composes them per completion and turns the totals into a tensor. It is the one
module of trainer.objectives that imports tvg.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from tvg.parsing import parse_span
from tvg.prompts import PromptStyle, get_prompt_style
from tvg.rewards import (
    distance_weighted_iou,
    format_reward,
    max_iou,
    tempsamp_soft_reward,
)

Span = tuple[float, float]


def grounding_reward(
    answer: str,
    gts: Sequence[Span],
    style: str | PromptStyle = "timelens",
    *,
    finish_reason: str | None = None,
    duration: float | None = None,
    distance_weighted: bool = False,
    soft: bool = False,
    format_weight: float = 0.0,
    eos_weight: float = 0.0,
) -> dict[str, float]:
    """The reward of one completion, with its components (docs/OBJECTIVES.md §2, §3):

        total = accuracy + format_weight * format + eos_weight * eos

    - iou: IoU of the parsed span with the best ground-truth span (0 when unparseable), always
      reported for logging;
    - accuracy: that IoU, or Time-R1's distance-weighted IoU (`distance_weighted`, needs
      `duration`), then TempSamp-R1's soft shaping when `soft` (tvg.rewards.tempsamp_soft_reward);
    - format: tvg.rewards.format_reward for `style` (1 on a full match of the answer format);
    - eos: 1 when the completion ended on its own (`finish_reason == "stop"`), 0 when cut by the
      token limit: an end-of-sequence reward (not published; the prototype saw GRPO drop
      the end token, docs/GENERATED_DATA.md). `eos_weight` > 0 needs `finish_reason`.

    `total` equals tvg.rewards.answer_reward(...) plus the eos term (tests check it).
    """
    if eos_weight and finish_reason is None:
        raise ValueError("eos_weight > 0 needs the completion's finish_reason")
    pred = parse_span(answer)
    iou = max_iou(pred, gts)
    if distance_weighted:
        if duration is None:
            raise ValueError("distance_weighted needs the video duration")
        accuracy = max((distance_weighted_iou(pred, gt, duration) for gt in gts), default=0.0)
    else:
        accuracy = iou
    if soft:
        accuracy = tempsamp_soft_reward(accuracy)
    fmt = format_reward(answer, style)
    eos = 1.0 if finish_reason == "stop" else 0.0
    total = accuracy + format_weight * fmt + eos_weight * eos
    return {"iou": iou, "accuracy": accuracy, "format": fmt, "eos": eos, "total": total}


def grpo_reward(
    answer: str,
    gts: Sequence[Span],
    style: str | PromptStyle = "timelens",
    *,
    finish_reason: str | None = None,
    duration: float | None = None,
    distance_weighted: bool = False,
    format_weight: float = 0.0,
    eos_weight: float = 0.0,
) -> dict[str, float]:
    """GRPO's grounding reward (docs/OBJECTIVES.md §2): IoU (optionally Time-R1's distance
    weighting) + optional format and end-of-sequence terms; defaults = the IoU alone (TimeLens)."""
    return grounding_reward(
        answer,
        gts,
        style,
        finish_reason=finish_reason,
        duration=duration,
        distance_weighted=distance_weighted,
        format_weight=format_weight,
        eos_weight=eos_weight,
    )


def tempsamp_reward(
    answer: str,
    gts: Sequence[Span],
    style: str | PromptStyle = "tempsamp",
    *,
    format_weight: float = 0.1,
    finish_reason: str | None = None,
    eos_weight: float = 0.0,
) -> dict[str, float]:
    """TempSamp-R1's reward (docs/OBJECTIVES.md §3): soft-shaped IoU + 0.1 * format reward, with
    tau = 0.8, alpha1 = 0.01, alpha2 = 1 (tvg.rewards.tempsamp_soft_reward's defaults). Under the
    hybrid CoT schedule pass the phase's style and format weight (`tempsamp.hybrid_cot_phase`)."""
    return grounding_reward(
        answer,
        gts,
        style,
        finish_reason=finish_reason,
        soft=True,
        format_weight=format_weight,
        eos_weight=eos_weight,
    )


def reward_tensor(
    rewards: Sequence[dict[str, float]],
    key: str = "total",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The `key` component of each completion's reward dict as an (N,) tensor."""
    try:
        return torch.tensor([r[key] for r in rewards], dtype=dtype)
    except KeyError:
        raise ValueError(f"a reward dict has no {key!r} component") from None


def ground_truth_completion(
    span: Span, style: str | PromptStyle = "tempsamp", reasoning: str = ""
) -> str:
    """The TempSamp-R1 off-policy completion for ground-truth `span`, from the prompt style's answer
    template (docs/OBJECTIVES.md §3), e.g. "<answer>12.54 to 17.83</answer>" for "tempsamp"
    (times to two decimals). CoT styles get `reasoning` inside <think></think> (empty by default:
    what the GT row should reason was not published). Tokenisation is the caller's.
    """
    start, end = span
    return get_prompt_style(style).target_answer(start, end, reasoning=reasoning)


__all__ = [
    "ground_truth_completion",
    "grounding_reward",
    "grpo_reward",
    "reward_tensor",
    "tempsamp_reward",
]
