"""QVHighlights moment-retrieval metrics: hand-worked AP and a port of the official algorithm."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tvg.moment_retrieval import (
    MAP_THRESHOLDS,
    average_precision_detection,
    interpolated_precision_recall,
    moment_retrieval_map,
    recall_at_one,
)


def test_thresholds() -> None:
    assert MAP_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


def test_interpolated_precision_recall_hand_worked() -> None:
    # precision 1, 0.5, 2/3 at recall 0.5, 0.5, 1: envelope 1 up to recall 0.5, then 2/3
    ap = interpolated_precision_recall([1.0, 0.5, 2 / 3], [0.5, 0.5, 1.0])
    assert ap == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    assert interpolated_precision_recall([], []) == 0.0


def test_average_precision_hand_worked() -> None:
    gts = [(0.0, 10.0), (20.0, 30.0)]
    windows = [(0.0, 10.0, 0.9), (1.0, 11.0, 0.8), (20.0, 26.0, 0.7)]
    # window 1: IoU 1 with GT 0 -> TP at every threshold.
    # window 2: IoU 9/11 = 0.818 with GT 0, already taken; GT 1 IoU 0 -> FP.
    # window 3: IoU 0.6 with GT 1 -> TP for t <= 0.6, FP above.
    # t <= 0.6: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> AP = 0.5 + 0.5 * 2/3 = 0.8333
    # t >= 0.65: precision 1, 1/2, 1/3 at recall 1/2 -> AP = 0.5
    aps = average_precision_detection(gts, windows)
    assert aps == pytest.approx([5 / 6] * 3 + [0.5] * 7)
    result = moment_retrieval_map({"q": gts}, {"q": windows})
    assert result["mAP@0.5"] == pytest.approx(100 * 5 / 6)
    assert result["mAP@0.75"] == pytest.approx(50.0)
    assert result["mAP"] == pytest.approx(60.0)


def test_windows_are_ranked_by_score() -> None:
    gts = [(0.0, 10.0)]
    # the right window listed last but scored highest: AP 1
    assert average_precision_detection(gts, [(50.0, 60.0, 0.1), (0.0, 10.0, 0.9)])[0] == 1.0
    # scored lowest: precision 1/2 at recall 1
    assert average_precision_detection(gts, [(50.0, 60.0, 0.9), (0.0, 10.0, 0.1)])[0] == 0.5


def test_missing_and_empty_predictions_score_zero() -> None:
    gts = {"a": [(0.0, 10.0)], "b": [(5.0, 6.0)]}
    result = moment_retrieval_map(gts, {"a": [(0.0, 10.0, 1.0)], "b": []})
    assert result["mAP"] == pytest.approx(50.0)
    assert moment_retrieval_map(gts, {"a": [(0.0, 10.0, 1.0)]})["mAP"] == pytest.approx(50.0)


def test_only_the_first_ten_windows_count() -> None:
    gts = {"q": [(0.0, 10.0)]}
    windows = [(50.0 + i, 51.0 + i, 0.5) for i in range(10)] + [(0.0, 10.0, 1.0)]
    assert moment_retrieval_map(gts, {"q": windows})["mAP"] == 0.0
    assert moment_retrieval_map(gts, {"q": windows}, max_pred_windows=None)["mAP"] == 100.0


def test_recall_at_one_takes_the_first_window_against_the_best_gt() -> None:
    gts = [(0.0, 10.0), (20.0, 30.0)]
    assert recall_at_one(gts, [(20.0, 25.0, 0.1), (0.0, 10.0, 0.9)]) == pytest.approx(0.5)
    assert recall_at_one(gts, []) == 0.0


# --- a NumPy port of QVHighlights standalone_eval's compute_average_precision_detection --------


def _official_iou_cross(pred: np.ndarray, gts: np.ndarray) -> np.ndarray:
    areas1 = pred[:, 1] - pred[:, 0]
    areas2 = gts[:, 1] - gts[:, 0]
    left = np.maximum(pred[:, None, 0], gts[None, :, 0])
    right = np.minimum(pred[:, None, 1], gts[None, :, 1])
    inter = np.clip(right - left, 0, None)
    union = areas1[:, None] + areas2[None, :] - inter
    return inter / union


def _official_interpolated(precision: np.ndarray, recall: np.ndarray) -> float:
    mprecision = np.hstack([[0], precision, [0]])
    mrecall = np.hstack([[0], recall, [1]])
    for i in range(len(mprecision) - 1)[::-1]:
        mprecision[i] = max(mprecision[i], mprecision[i + 1])
    idx = np.where(mrecall[1::] != mrecall[0:-1])[0] + 1
    return float(np.sum((mrecall[idx] - mrecall[idx - 1]) * mprecision[idx]))


def _official_ap(gts: list, preds: list, thresholds: tuple) -> np.ndarray:
    ap = np.zeros(len(thresholds))
    if not preds:
        return ap
    lock_gt = np.ones((len(thresholds), len(gts))) * -1
    preds = sorted(preds, key=lambda x: -x[2])
    tp = np.zeros((len(thresholds), len(preds)))
    fp = np.zeros((len(thresholds), len(preds)))
    gt_arr = np.array(gts, dtype=float)
    for idx, (s, e, _) in enumerate(preds):
        tiou_arr = _official_iou_cross(np.array([[s, e]], dtype=float), gt_arr)[0]
        tiou_sorted_idx = tiou_arr.argsort()[::-1]
        for t_idx, thr in enumerate(thresholds):
            for j_idx in tiou_sorted_idx:
                if tiou_arr[j_idx] < thr:
                    fp[t_idx, idx] = 1
                    break
                if lock_gt[t_idx, j_idx] >= 0:
                    continue
                tp[t_idx, idx] = 1
                lock_gt[t_idx, j_idx] = idx
                break
            if fp[t_idx, idx] == 0 and tp[t_idx, idx] == 0:
                fp[t_idx, idx] = 1
    tp_cum = np.cumsum(tp, axis=1).astype(float)
    fp_cum = np.cumsum(fp, axis=1).astype(float)
    recall = tp_cum / len(gts)
    precision = tp_cum / (tp_cum + fp_cum)
    for t_idx in range(len(thresholds)):
        ap[t_idx] = _official_interpolated(precision[t_idx], recall[t_idx])
    return ap


integer_span = st.tuples(st.integers(0, 60), st.integers(1, 30)).map(
    lambda p: (float(p[0]), float(p[0] + p[1]))
)


@settings(max_examples=300, deadline=None)
@given(
    gts=st.lists(integer_span, min_size=1, max_size=3),
    preds=st.lists(
        st.tuples(integer_span, st.integers(0, 5)).map(lambda p: (*p[0], p[1] / 5)),
        max_size=8,
    ),
)
def test_matches_the_official_algorithm(gts: list, preds: list) -> None:
    expected = _official_ap(gts, preds, MAP_THRESHOLDS)
    assert average_precision_detection(gts, preds) == pytest.approx(list(expected), abs=1e-12)
