"""Grounding metrics (R1@m, mIoU, parse rate) per dataset, with hand-worked numbers."""

from __future__ import annotations

import pytest

from tvg.metrics import METRIC_KEYS, grounding_metrics, is_qvhighlights, score_samples
from tvg.predictions import Prediction
from tvg.sample import Sample


def test_grounding_metrics_hand_worked() -> None:
    ious = [1.0, 0.6, 0.4, 0.0]
    parsed = [True, True, True, False]
    metrics = grounding_metrics(ious, parsed)
    assert metrics == {
        "R1@0.3": 75.0,
        "R1@0.5": 50.0,
        "R1@0.7": 25.0,
        "mIoU": 50.0,
        "parse_rate": 75.0,
        "n": 4,
    }
    assert tuple(metrics) == METRIC_KEYS


def test_threshold_is_inclusive_and_empty_input() -> None:
    assert grounding_metrics([0.5], [True])["R1@0.5"] == 100.0
    assert grounding_metrics([], [])["n"] == 0
    with pytest.raises(ValueError):
        grounding_metrics([0.1], [])


def _sample(sid: str, source: str, *spans: tuple[float, float]) -> Sample:
    return Sample(id=sid, video=f"{sid}.mp4", duration=100.0, query=sid, spans=spans, source=source)


def test_score_samples_per_dataset_with_missing() -> None:
    samples = [
        _sample("c1", "charades", (0.0, 10.0)),
        _sample("c2", "charades", (0.0, 10.0)),
        _sample("c3", "charades", (0.0, 10.0)),
        _sample("q1", "qvhighlights", (0.0, 10.0), (20.0, 30.0)),
    ]
    predictions = {
        "c1": Prediction(span=(0.0, 5.0)),  # IoU 0.5
        "c2": Prediction(span=None, answer="no idea"),  # unparseable
        # c3 missing
        "q1": Prediction(span=(20.0, 28.0), windows=((20.0, 28.0, 0.9), (0.0, 10.0, 0.5))),
    }
    scores = score_samples(samples, predictions)
    charades = scores["charades"]
    assert charades.missing == 1
    assert charades.metrics["n"] == 3
    assert charades.metrics["R1@0.5"] == pytest.approx(100 / 3)
    assert charades.metrics["mIoU"] == pytest.approx(50 / 3)
    assert charades.metrics["parse_rate"] == pytest.approx(100 / 3)
    assert "mAP" not in charades.metrics
    qvh = scores["qvhighlights"]
    assert qvh.metrics["R1@0.7"] == 100.0  # top-1 IoU 0.8 with the second GT window
    assert qvh.metrics["mIoU"] == pytest.approx(80.0)
    # ranked: (20, 28) IoU 0.8 with GT 1, then (0, 10) IoU 1 with GT 0. For t <= 0.8 (7
    # thresholds) both hit: AP 1. For t >= 0.85 the first misses, the second hits: precision 0
    # then 1/2 at recall 0 then 1/2, so AP = 1/2 * 1/2 = 0.25.
    assert qvh.metrics["mAP@0.5"] == 100.0
    assert qvh.metrics["mAP"] == pytest.approx(100 * (7 * 1.0 + 3 * 0.25) / 10)


def test_unlabelled_samples_cannot_be_scored() -> None:
    with pytest.raises(ValueError, match="no ground-truth"):
        score_samples([_sample("x", "d")], {})


def test_is_qvhighlights() -> None:
    assert is_qvhighlights("QVHighlights-TimeLens")
    assert is_qvhighlights("qv_highlights")
    assert not is_qvhighlights("charades")
