"""Grounding metrics as TimeLens reports them, per dataset (docs/DATASETS.md §5, "Metrics").

- R1@m: percentage of queries whose top-1 span has IoU >= m with the ground truth (the best of
  its GT spans when there are several), m in {0.3, 0.5, 0.7};
- mIoU: mean IoU x 100;
- parse_rate: percentage of queries with a parsed prediction.
An unparseable answer and a missing prediction both count as IoU 0 and as not parsed.
For QVHighlights datasets `tvg.moment_retrieval` adds mAP@0.5, mAP@0.75 and the average mAP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from tvg.moment_retrieval import moment_retrieval_map
from tvg.predictions import Prediction
from tvg.rewards import max_iou
from tvg.sample import Sample

THRESHOLDS: tuple[float, ...] = (0.3, 0.5, 0.7)
METRIC_KEYS: tuple[str, ...] = ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "parse_rate", "n")
MAP_KEYS: tuple[str, ...] = ("mAP@0.5", "mAP@0.75", "mAP")


def grounding_metrics(
    ious: Sequence[float], parsed: Sequence[bool], thresholds: Sequence[float] = THRESHOLDS
) -> dict[str, float]:
    """R1@t for each threshold, mIoU and parse_rate (all in percent) and n, from per-query IoUs."""
    if len(ious) != len(parsed):
        raise ValueError(f"{len(ious)} IoUs but {len(parsed)} parse flags")
    n = len(ious)
    out: dict[str, float] = {}
    for t in thresholds:
        out[f"R1@{t:g}"] = 100.0 * sum(iou >= t for iou in ious) / n if n else 0.0
    out["mIoU"] = 100.0 * sum(ious) / n if n else 0.0
    out["parse_rate"] = 100.0 * sum(map(bool, parsed)) / n if n else 0.0
    out["n"] = n
    return out


def is_qvhighlights(source: str) -> bool:
    """Whether a dataset name denotes QVHighlights (its metrics then include mAP)."""
    return "qvhighlights" in source.lower().replace("-", "").replace("_", "")


@dataclass
class DatasetScore:
    """One dataset's metrics and how many of its queries had no prediction at all."""

    name: str
    metrics: dict[str, float]
    missing: int


def score_samples(
    samples: Iterable[Sample],
    predictions: Mapping[str, Prediction],
    with_map: Callable[[str], bool] = is_qvhighlights,
) -> dict[str, DatasetScore]:
    """Score predictions (sample id -> Prediction) per dataset (`Sample.source`), in the order the
    datasets first appear. Datasets for which `with_map(name)` holds also get mAP@0.5, mAP@0.75
    and mAP (QVHighlights' moment-retrieval protocol)."""
    groups: dict[str, list[Sample]] = {}
    for sample in samples:
        if not sample.spans:
            raise ValueError(f"sample {sample.id!r} has no ground-truth span and cannot be scored")
        groups.setdefault(sample.source, []).append(sample)
    scores: dict[str, DatasetScore] = {}
    for name, group in groups.items():
        ious: list[float] = []
        parsed: list[bool] = []
        missing = 0
        for sample in group:
            prediction = predictions.get(sample.id)
            if prediction is None:
                missing += 1
            span = prediction.span if prediction is not None else None
            ious.append(max_iou(span, sample.spans))
            parsed.append(span is not None)
        metrics = grounding_metrics(ious, parsed)
        if with_map(name):
            gts = {s.id: s.spans for s in group}
            windows = {sid: p.ranked_windows() for sid, p in predictions.items() if sid in gts}
            retrieval = moment_retrieval_map(gts, windows)
            metrics.update({k: retrieval[k] for k in MAP_KEYS})
        scores[name] = DatasetScore(name=name, metrics=metrics, missing=missing)
    return scores
