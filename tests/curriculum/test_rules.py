"""Each selection rule on hand-made score tables, checked against hand-worked answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from curriculum.rules import (
    TVDFRule,
    balanced_quotas,
    bucket_of,
    difficulty_weights,
    disagreement,
    select_bucket_balanced,
    select_gaussian,
    select_top_k,
    select_tvdf,
    select_uniform,
    teacher_reliable,
)

# Six samples, teacher k = 2 predictions each.
TEACHER = np.array([[0.9, 0.7], [0.2, 0.4], [1.0, 1.0], [0.6, 0.4], [0.8, 0.8], [0.5, 0.5]])
STUDENT = np.array([0.1, 0.0, 0.9, 0.5, 0.2, 0.1])
# teacher mean = [0.8, 0.3, 1.0, 0.5, 0.8, 0.5]; delta = [0.7, 0.3, 0.1, 0.0, 0.6, 0.4]


def test_reliability_filter_uses_the_mean_of_k_predictions() -> None:
    assert teacher_reliable(TEACHER, 0.5).tolist() == [True, False, True, True, True, True]
    assert teacher_reliable(TEACHER, 0.8).tolist() == [True, False, True, False, True, False]
    assert teacher_reliable(TEACHER, 0.0).all()  # tau 0: the "disagreement only" ablation
    with pytest.raises(ValueError, match="shape"):
        teacher_reliable(np.zeros(3), 0.5)


def test_disagreement_is_teacher_minus_student() -> None:
    delta = disagreement(TEACHER.mean(axis=1), STUDENT)
    assert delta == pytest.approx([0.7, 0.3, 0.1, 0.0, 0.6, 0.4])


def test_top_k_keeps_the_largest_delta_among_reliable_samples() -> None:
    selection = select_tvdf(TEACHER, STUDENT, TVDFRule(rule="top_k", size=3, tau=0.5), seed=0)
    assert selection.indices.tolist() == [0, 4, 5]  # 0.7, 0.6, 0.4; sample 1 (0.3) is unreliable
    assert selection.reliable.sum() == 5
    # size <= 0 keeps every reliable sample, in descending delta; ties go to the lower index.
    everything = select_tvdf(TEACHER, STUDENT, TVDFRule(size=0, tau=0.5), seed=0)
    assert everything.indices.tolist() == [0, 4, 5, 2, 3]
    assert select_top_k(np.array([0.5, 0.5, 0.9]), np.arange(3), 2).tolist() == [2, 0]
    # A subset larger than the pool keeps the pool.
    assert len(select_tvdf(TEACHER, STUDENT, TVDFRule(size=100), seed=0).indices) == 5


def test_uniform_by_delta_draws_reliable_samples_equally_often() -> None:
    pool = np.array([0, 2, 3, 4, 5])
    first = select_uniform(pool, 3, seed=7)
    assert len(set(first.tolist())) == 3 and set(first.tolist()) <= set(pool.tolist())
    assert select_uniform(pool, 3, seed=7).tolist() == first.tolist()
    counts = np.zeros(6)
    for seed in range(3000):
        counts[select_uniform(pool, 2, seed)] += 1
    assert counts[1] == 0
    assert counts[pool] / 3000 == pytest.approx([0.4] * 5, abs=0.04)  # 2 of 5 each time


def test_bucket_quotas_are_balanced_and_pass_on_what_a_bucket_cannot_take() -> None:
    assert balanced_quotas([3, 0, 1, 0, 4], 5) == [2, 0, 1, 0, 2]
    assert balanced_quotas([10] * 5, 7) == [1, 1, 1, 2, 2]  # extras go to the highest deltas
    assert balanced_quotas([1, 1], 5) == [1, 1]
    assert balanced_quotas([2, 2, 2], 0) == [0, 0, 0]


def test_bucket_balanced_takes_equal_counts_per_delta_bucket() -> None:
    delta = np.array([0.0, 0.05, 0.1, 0.5, 0.9, 0.95, 1.0, 0.98])
    assert bucket_of(delta, 5).tolist() == [0, 0, 0, 2, 4, 4, 4, 4]
    chosen = select_bucket_balanced(delta, np.arange(8), 5, seed=3, buckets=5)
    per_bucket = np.bincount(bucket_of(delta, 5)[chosen], minlength=5)
    assert per_bucket.tolist() == [2, 0, 1, 0, 2]
    assert len(set(chosen.tolist())) == 5
    again = select_bucket_balanced(delta, np.arange(8), 5, seed=3, buckets=5)
    assert again.tolist() == chosen.tolist()
    # The rule through select_tvdf (B = 5 on the reliable pool's delta range 0.0 .. 0.7).
    rule = TVDFRule(rule="bucket", size=3, tau=0.5, buckets=5)
    picked = select_tvdf(TEACHER, STUDENT, rule, seed=1).indices.tolist()
    # buckets of [0.7, 0.1, 0.0, 0.6, 0.4] (samples 0, 2, 3, 4, 5): {3, 2}, {}, {5}, {}, {0, 4}
    assert 5 in picked and len({0, 4} & set(picked)) == 1 and len({2, 3} & set(picked)) == 1


def test_gaussian_prefers_delta_near_the_centre_with_the_stated_weights() -> None:
    delta = np.array([0.9, 0.7, 0.5])
    weights = np.exp(-((delta - 0.9) ** 2) / (2 * 0.2**2))  # 1, e^-0.5, e^-2
    counts = np.zeros(3)
    for seed in range(4000):
        counts[select_gaussian(delta, np.arange(3), 1, seed, 0.9, 0.2)] += 1
    assert counts / 4000 == pytest.approx(weights / weights.sum(), abs=0.03)
    far = np.array([0.9, -0.5, 0.88, -0.6])
    assert sorted(select_gaussian(far, np.arange(4), 2, 0, 0.9, 0.2).tolist()) == [0, 2]
    rule = TVDFRule(rule="gaussian", size=2, tau=0.5, center=0.9, sigma=0.2)
    assert select_tvdf(TEACHER, STUDENT, rule, seed=5).reliable.sum() == 5


def test_difficulty_weights_are_gaussian_over_iou_divided_by_bin_density() -> None:
    ious = np.array([0.0, 0.0, 0.0, 0.5])
    g0, g5 = math.exp(-(0.05**2) / 0.08), math.exp(-(0.45**2) / 0.08)
    raw = np.array([g0 / 0.75] * 3 + [g5 / 0.25])
    assert difficulty_weights(ious) == pytest.approx(raw / raw.sum())
    # Dividing by the density makes a bin's total mass independent of how many samples it holds.
    for crowd in (1, 9, 40):
        probs = difficulty_weights(np.array([0.05] * crowd + [0.5]))
        assert probs[-1] / probs[:-1].sum() == pytest.approx(g5 / 1.0, rel=1e-9)
    assert difficulty_weights(np.array([1.0, 0.95])).sum() == pytest.approx(1.0)  # IoU 1: last bin
    with pytest.raises(ValueError):
        difficulty_weights(np.array([]))


def test_unknown_rule_is_rejected() -> None:
    with pytest.raises(ValueError, match="TVDF rule"):
        TVDFRule(rule="best")
