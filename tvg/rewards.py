"""Rewards for temporal grounding: IoU, format, Time-R1's distance weighting, TempSamp-R1 shaping.

All are pure functions of floats and strings (no torch / numpy), one formula each.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from tvg.parsing import parse_span
from tvg.prompts import PromptStyle, get_prompt_style

Span = tuple[float, float]


def _valid(span: Span) -> bool:
    """A span scores only when both ends are finite and start < end."""
    start, end = span
    return math.isfinite(start) and math.isfinite(end) and start < end


def temporal_iou(pred: Span | None, gt: Span) -> float:
    """Temporal IoU of two spans, as TimeLens computes it (docs/DATASETS.md §5):

        IoU(a, b) = max(min(a1, b1) - max(a0, b0), 0) / (max(a1, b1) - min(a0, b0))

    0 when `pred` is None or either span has start >= end (a reversed prediction is not swapped)
    or a non-finite end.
    """
    if pred is None or not _valid(pred) or not _valid(gt):
        return 0.0
    (a0, a1), (b0, b1) = pred, gt
    inter = max(min(a1, b1) - max(a0, b0), 0.0)
    union = max(a1, b1) - min(a0, b0)
    return inter / union if union > 0 else 0.0


def max_iou(pred: Span | None, gts: Sequence[Span]) -> float:
    """The best IoU of `pred` against any ground-truth span (0 with no prediction or no spans)."""
    return max((temporal_iou(pred, gt) for gt in gts), default=0.0)


def distance_weighted_iou(pred: Span | None, gt: Span, duration: float) -> float:
    """Time-R1's timestamp-aware IoU reward (Wang et al., 2025, "Time-R1"; docs/OBJECTIVES.md §2):

        r = IoU(p, g) * (1 - |g_s - p_s| / D) * (1 - |g_e - p_e| / D)

    with D the video duration. Each distance factor is clamped to [0, 1], so a prediction far
    outside the video cannot turn two negative factors into a positive reward.
    """
    if duration <= 0 or not math.isfinite(duration):
        raise ValueError(f"duration must be a finite number > 0, got {duration!r}")
    iou = temporal_iou(pred, gt)
    if iou == 0.0 or pred is None:
        return 0.0
    start_factor = min(max(1.0 - abs(gt[0] - pred[0]) / duration, 0.0), 1.0)
    end_factor = min(max(1.0 - abs(gt[1] - pred[1]) / duration, 0.0), 1.0)
    return iou * start_factor * end_factor


def tempsamp_soft_reward(
    r: float, tau: float = 0.8, alpha1: float = 0.01, alpha2: float = 1.0
) -> float:
    """TempSamp-R1's non-linear soft reward shaping of an IoU reward r in [0, 1] (see
    docs/OBJECTIVES.md §3; Li et al., 2025):

        r' = tau + alpha1 * ln(r - tau + 1)                              if r >= tau
        r' = tau - (exp(alpha2 * (tau - r)) - 1) / (exp(alpha2) - 1)     otherwise

    Defaults tau = 0.8, alpha1 = 0.01, alpha2 = 1 give f(0) = 0.087, f(0.5) = 0.596, f(0.8) = 0.8,
    f(1) = 0.8018: rewards above tau are compressed, rewards below it are spread out.
    """
    if r >= tau:
        return tau + alpha1 * math.log(r - tau + 1.0)
    return tau - (math.exp(alpha2 * (tau - r)) - 1.0) / (math.exp(alpha2) - 1.0)


def format_reward(answer: str, style: str | PromptStyle = "timelens") -> float:
    """1.0 when `answer` fully matches the prompt style's answer format, else 0.0."""
    return 1.0 if get_prompt_style(style).is_well_formatted(answer) else 0.0


def iou_reward(answer: str, gts: Sequence[Span]) -> float:
    """IoU of the span parsed from `answer` with the best-matching GT span (0 if unparseable)."""
    return max_iou(parse_span(answer), gts)


def answer_reward(
    answer: str,
    gts: Sequence[Span],
    style: str | PromptStyle = "timelens",
    *,
    duration: float | None = None,
    distance_weighted: bool = False,
    soft: bool = False,
    format_weight: float = 0.0,
) -> float:
    """The grounding reward of one completion:

        accuracy + format_weight * format_reward(answer, style)

    accuracy = max over ground-truth spans of the IoU of the parsed span (Time-R1's
    distance-weighted IoU when `distance_weighted`, which needs `duration`), then passed through
    `tempsamp_soft_reward` when `soft`. An unparseable answer has IoU 0 (so 0.087 after soft
    shaping, as TempSamp-R1 shapes the IoU term whatever produced it). TempSamp-R1's reward is
    soft=True, format_weight=0.1; plain GRPO's is the IoU alone.
    """
    pred = parse_span(answer)
    if distance_weighted:
        if duration is None:
            raise ValueError("distance_weighted needs the video duration")
        accuracy = max((distance_weighted_iou(pred, gt, duration) for gt in gts), default=0.0)
    else:
        accuracy = max_iou(pred, gts)
    if soft:
        accuracy = tempsamp_soft_reward(accuracy)
    if format_weight:
        accuracy += format_weight * format_reward(answer, style)
    return accuracy
