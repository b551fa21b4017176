"""QVHighlights moment-retrieval metrics over ranked windows [[start, end, score], ...].

Mirrors QVHighlights' standalone_eval (eval.py) for the "full" length range:
- R1@t: the first window of each query's list (the submission's top-ranked one, not re-sorted)
  against the ground-truth window it overlaps most; percentage with IoU >= t.
- mAP@t: per query, ActivityNet's `compute_average_precision_detection` (the first
  `max_pred_windows` = 10 windows, sorted by descending score with a stable sort; greedy matching
  where each GT window is taken at most once; AP = area under the precision envelope, with no
  fixed-point interpolation), averaged over queries; "mAP" averages the thresholds 0.5:0.05:0.95.
A query with no windows scores AP 0 (the official script refuses submissions that miss queries;
here a missing prediction counts as an empty one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tvg.rewards import temporal_iou

Span = tuple[float, float]
Window = tuple[float, float, float]

MAP_THRESHOLDS: tuple[float, ...] = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
MAX_PRED_WINDOWS = 10


def interpolated_precision_recall(precision: Sequence[float], recall: Sequence[float]) -> float:
    """Average precision as ActivityNet computes it: the area under the precision envelope.

    Pads precision with 0 at both ends and recall with 0 / 1, makes precision non-increasing from
    the right, and sums (recall step) * precision over the points where recall changes.
    """
    mprec = [0.0, *precision, 0.0]
    mrec = [0.0, *recall, 1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    return sum(
        (mrec[i] - mrec[i - 1]) * mprec[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1]
    )


def average_precision_detection(
    gts: Sequence[Span],
    windows: Sequence[Window],
    thresholds: Sequence[float] = MAP_THRESHOLDS,
) -> list[float]:
    """AP of one query's scored windows against its GT windows, at each IoU threshold.

    Windows are matched in descending score (stable for ties): a window is a true positive at
    threshold t when, scanning GT windows by descending IoU, it meets one with IoU >= t not yet
    taken at t; otherwise it is a false positive. No windows (or no GT windows): AP 0.
    """
    aps = [0.0] * len(thresholds)
    if not windows or not gts:
        return aps
    ranked = sorted(windows, key=lambda w: -w[2])
    for t_idx, threshold in enumerate(thresholds):
        taken = [False] * len(gts)
        tp_cum = fp_cum = 0
        precision: list[float] = []
        recall: list[float] = []
        for start, end, _score in ranked:
            ious = [temporal_iou((start, end), gt) for gt in gts]
            # Descending IoU, ties by descending index: numpy's argsort()[::-1] in the original.
            order = sorted(range(len(gts)), key=lambda j: (ious[j], j), reverse=True)
            hit = False
            for j in order:
                if ious[j] < threshold:
                    break
                if taken[j]:
                    continue
                taken[j] = True
                hit = True
                break
            tp_cum += hit
            fp_cum += not hit
            precision.append(tp_cum / (tp_cum + fp_cum))
            recall.append(tp_cum / len(gts))
        aps[t_idx] = interpolated_precision_recall(precision, recall)
    return aps


def recall_at_one(gts: Sequence[Span], windows: Sequence[Window]) -> float:
    """IoU of the top-ranked (first) window with the GT window it overlaps most (0 if none)."""
    if not windows:
        return 0.0
    top = (windows[0][0], windows[0][1])
    return max((temporal_iou(top, gt) for gt in gts), default=0.0)


def moment_retrieval_map(
    gts: Mapping[str, Sequence[Span]],
    windows: Mapping[str, Sequence[Window]],
    thresholds: Sequence[float] = MAP_THRESHOLDS,
    max_pred_windows: int | None = MAX_PRED_WINDOWS,
) -> dict[str, float]:
    """mAP in percent over the queries of `gts`: {"mAP@0.5", "mAP@0.75", "mAP"} (and every
    threshold as "mAP@<t>"). Windows per query are cut to the first `max_pred_windows` (as given,
    before sorting by score, as the official script does)."""
    if not gts:
        return {"mAP": 0.0, **{f"mAP@{t:g}": 0.0 for t in thresholds}}
    sums = [0.0] * len(thresholds)
    for qid, gt in gts.items():
        preds = list(windows.get(qid, ()))
        if max_pred_windows is not None:
            preds = preds[:max_pred_windows]
        for i, ap in enumerate(average_precision_detection(gt, preds, thresholds)):
            sums[i] += ap
    means = [100.0 * s / len(gts) for s in sums]
    out = {f"mAP@{t:g}": m for t, m in zip(thresholds, means, strict=True)}
    out["mAP"] = sum(means) / len(means)
    return out
