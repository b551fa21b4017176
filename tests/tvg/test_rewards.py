"""Rewards: IoU, Time-R1 distance weighting, TempSamp-R1 soft shaping, format, combined."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tvg.rewards import (
    answer_reward,
    distance_weighted_iou,
    format_reward,
    iou_reward,
    max_iou,
    temporal_iou,
    tempsamp_soft_reward,
)


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        ((0.0, 10.0), (0.0, 10.0), 1.0),
        ((0.0, 10.0), (5.0, 15.0), 5 / 15),
        ((2.0, 4.0), (0.0, 10.0), 0.2),
        ((0.0, 1.0), (2.0, 3.0), 0.0),
        ((0.0, 2.0), (2.0, 3.0), 0.0),
        ((10.0, 0.0), (0.0, 10.0), 0.0),  # reversed prediction: not swapped, IoU 0
        ((5.0, 5.0), (0.0, 10.0), 0.0),
        (None, (0.0, 10.0), 0.0),
        ((0.0, math.inf), (0.0, 10.0), 0.0),
    ],
)
def test_temporal_iou(pred, gt, expected: float) -> None:
    assert temporal_iou(pred, gt) == pytest.approx(expected)


spans = st.tuples(st.floats(0, 1000, allow_nan=False), st.floats(0, 1000, allow_nan=False)).filter(
    lambda p: p[1] - p[0] > 1e-6
)


@given(a=spans, b=spans)
def test_iou_is_symmetric_and_bounded(a, b) -> None:
    value = temporal_iou(a, b)
    assert 0.0 <= value <= 1.0
    assert value == pytest.approx(temporal_iou(b, a))
    assert temporal_iou(a, a) == pytest.approx(1.0)


def test_max_iou_over_several_gt_spans() -> None:
    assert max_iou((20.0, 30.0), [(0.0, 10.0), (20.0, 25.0)]) == pytest.approx(0.5)
    assert max_iou((20.0, 30.0), []) == 0.0


def test_distance_weighted_iou_hand_worked() -> None:
    # IoU 0.6, both ends 2 s off in a 20 s video: 0.6 * 0.9 * 0.9
    assert distance_weighted_iou((2.0, 8.0), (0.0, 10.0), 20.0) == pytest.approx(0.486)
    assert distance_weighted_iou((0.0, 10.0), (0.0, 10.0), 20.0) == pytest.approx(1.0)
    # far outside the video: the end factor clamps to 0 instead of going negative
    assert distance_weighted_iou((0.0, 50.0), (0.0, 10.0), 10.0) == 0.0
    assert distance_weighted_iou(None, (0.0, 10.0), 10.0) == 0.0
    with pytest.raises(ValueError):
        distance_weighted_iou((0.0, 1.0), (0.0, 1.0), 0.0)


@pytest.mark.parametrize(("r", "expected"), [(0.0, 0.087), (0.5, 0.596), (0.8, 0.8), (1.0, 0.8018)])
def test_tempsamp_soft_reward_published_values(r: float, expected: float) -> None:
    assert tempsamp_soft_reward(r) == pytest.approx(expected, abs=1e-3)


@given(a=st.floats(0, 1), b=st.floats(0, 1))
def test_tempsamp_soft_reward_is_monotonic(a: float, b: float) -> None:
    lo, hi = sorted((a, b))
    assert tempsamp_soft_reward(lo) <= tempsamp_soft_reward(hi)


def test_tempsamp_soft_reward_is_continuous_at_tau() -> None:
    assert tempsamp_soft_reward(0.8 - 1e-9) == pytest.approx(tempsamp_soft_reward(0.8), abs=1e-8)


def test_format_reward_per_style() -> None:
    assert format_reward("The event happens in 1.0 - 2.0 seconds.") == 1.0
    assert format_reward("The event happens in 1.0 - 2.0 seconds.", "tempsamp") == 0.0
    assert format_reward("<answer>1.00 to 2.00</answer>", "tempsamp") == 1.0
    assert format_reward("<think>x</think><answer>1.00 to 2.00</answer>", "tempsamp_cot") == 1.0
    with pytest.raises(ValueError):
        format_reward("x", "nope")


def test_iou_and_answer_rewards() -> None:
    gts = [(0.0, 10.0)]
    assert iou_reward("The event happens in 5.0 - 15.0 seconds.", gts) == pytest.approx(1 / 3)
    assert iou_reward("no idea", gts) == 0.0
    # TempSamp-R1: soft-shaped IoU + 0.1 * format
    tempsamp = dict(style="tempsamp", soft=True, format_weight=0.1)
    perfect = answer_reward("<answer>0.00 to 10.00</answer>", gts, **tempsamp)
    assert perfect == pytest.approx(0.8018 + 0.1, abs=1e-4)
    assert answer_reward("no idea", gts, **tempsamp) == pytest.approx(0.0868, abs=1e-4)
    assert answer_reward("0 to 10", gts, **tempsamp) == pytest.approx(0.8018, abs=1e-4)  # no tags
    # plain GRPO reward
    assert answer_reward("The event happens in 0.0 - 5.0 seconds.", gts) == pytest.approx(0.5)
    distance = answer_reward(
        "The event happens in 2.0 - 8.0 seconds.", gts, duration=20.0, distance_weighted=True
    )
    assert distance == pytest.approx(0.486)
    with pytest.raises(ValueError):
        answer_reward("1 - 2", gts, distance_weighted=True)
