"""Where a step's learner and rollout phases went, as the ledger records them (pure functions)."""

from __future__ import annotations

import pytest

from launch.driver import rollout_parts, update_summary
from trainer.learner import StepResult


def _result(seconds: float, **parts: float) -> StepResult:
    return StepResult(0.1, 4, 40, 1.0, False, seconds, {}, parts=parts)


def test_update_summary_reports_the_slowest_ranks_parts_summed_over_updates() -> None:
    updates = [
        [_result(0.30, inputs=0.05, backward=0.20), _result(0.40, inputs=0.10, backward=0.25)],
        [_result(0.50, inputs=0.20, backward=0.10), _result(0.20, inputs=0.01, backward=0.01)],
    ]
    out = update_summary(updates)
    assert out["learner_rank_s"] == pytest.approx(0.40 + 0.50)
    assert out["learner_parts"] == pytest.approx({"inputs": 0.30, "backward": 0.35})
    assert "learner_parts" not in update_summary([])


def test_rollout_parts_come_from_the_slowest_worker() -> None:
    timings = {
        "rollout_s": 0.3,
        "worker0_sample_s": 0.2,
        "worker0_prepare_s": 0.05,
        "worker0_generate_s": 0.15,
        "worker0_round_trip_s": 0.21,
        "worker1_sample_s": 0.25,
        "worker1_prepare_s": 0.02,
        "worker1_generate_s": 0.22,
        "worker1_round_trip_s": 0.27,
        "worker1_tokens": 100.0,
    }
    assert rollout_parts(timings) == {
        "rollout_parts": {"prepare": 0.02, "generate": 0.22, "engine": 0.25, "round_trip": 0.27}
    }
    assert rollout_parts({"rollout_s": 0.3}) == {}
