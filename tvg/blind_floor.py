"""The blind floor: the best mIoU reachable WITHOUT looking at the video.

A blind answer uses only the video's duration D: the span [a * D, b * D]. The floor is found by a
grid search: a and b range over {0, step, 2 * step, ..., 1} (default step 0.02) with a < b; the pair
with the highest mean IoU on the reference split (train) is chosen (ties: the smallest a, then the
smallest b), and its mIoU is then reported on every split. A model whose mIoU is not clearly above
this floor has learned the answer format and the span statistics, not the task.

Works for any dataset: give (duration, [start, end]) pairs (for multi-span queries pass the span
the metric scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tvg.rewards import temporal_iou

DEFAULT_GRID_STEP = 0.02


@dataclass(frozen=True)
class BlindAnswer:
    """The chosen blind answer [a * D, b * D] and its mIoU (x 100) on the split it was chosen on."""

    a: float
    b: float
    miou: float


def _iou_matrix(durations: np.ndarray, spans: np.ndarray, a: float, bs: np.ndarray) -> np.ndarray:
    """Return IoU of [a*D, b*D] for every b in bs (rows) and every sample (columns)."""
    p0 = a * durations[None, :]
    p1 = bs[:, None] * durations[None, :]
    g0, g1 = spans[None, :, 0], spans[None, :, 1]
    inter = np.clip(np.minimum(p1, g1) - np.maximum(p0, g0), 0.0, None)
    union = np.maximum(p1, g1) - np.minimum(p0, g0)
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def fit_blind_answer(
    durations: Sequence[float],
    spans: Sequence[Sequence[float]],
    grid_step: float = DEFAULT_GRID_STEP,
) -> BlindAnswer:
    """Return the grid answer [a*D, b*D] (a < b) with the best mIoU on these samples."""
    if len(durations) == 0 or len(durations) != len(spans):
        raise ValueError("need the same, non-zero number of durations and spans")
    n_steps = round(1.0 / grid_step)
    if abs(n_steps * grid_step - 1.0) > 1e-9:
        raise ValueError(f"grid_step must divide 1, got {grid_step}")
    grid = np.arange(n_steps + 1) / n_steps
    dur = np.asarray(durations, dtype=np.float64)
    gt = np.asarray(spans, dtype=np.float64).reshape(-1, 2)
    best = BlindAnswer(0.0, 1.0, -1.0)
    for i, a in enumerate(grid[:-1]):
        bs = grid[i + 1 :]
        means = _iou_matrix(dur, gt, float(a), bs).mean(axis=1)
        j = int(np.argmax(means))
        if means[j] > best.miou / 100.0 + 1e-12:
            best = BlindAnswer(float(a), float(bs[j]), float(means[j]) * 100.0)
    return best


def blind_miou(
    durations: Sequence[float], spans: Sequence[Sequence[float]], a: float, b: float
) -> float:
    """Return the mIoU (x 100) of the blind answer [a*D, b*D] (IoU by tvg.rewards.temporal_iou)."""
    if len(durations) == 0:
        return float("nan")
    ious = [
        temporal_iou((a * d, b * d), (float(s[0]), float(s[1])))
        for d, s in zip(durations, spans, strict=True)
    ]
    return 100.0 * float(np.mean(ious))
