"""The layouts benchmark's summary: per-run medians after warm-up, and the run-to-run spread."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.layout_report import layout_steps, part_medians, spread, step_summary


def _record(step: int, seconds: float, load: float = 1.0) -> dict:
    return {
        "step": step,
        "time": {"rollout": seconds / 2, "learner": seconds / 2, "eval": 9.0, "step": seconds},
        "load_avg_1m": load,
        "threads": {"learner": [1, 2], "total": 2, "cores": 2},
    }


def test_step_summary_leaves_out_warm_up_and_evaluation() -> None:
    records = [_record(1, 5.0), _record(2, 5.0), _record(3, 1.0), _record(4, 1.2), _record(5, 1.4)]
    summary = step_summary(records, warmup=2)
    assert summary["steps"] == 3 and summary["median_step_s"] == pytest.approx(1.2)
    assert set(summary["phases"]) == {"rollout", "learner"}  # eval is not a step phase
    assert summary["threads"]["total"] == 2


def test_part_medians_split_the_learner_and_rollout_phases() -> None:
    records = [
        {
            "step": step,
            "learner_parts": {"inputs": 0.01 * step, "backward": 0.1},
            "learner_rank_s": 0.2 + 0.01 * step,
            "rollout_parts": {"generate": 0.1, "round_trip": 0.12},
        }
        for step in range(1, 6)
    ]
    parts = part_medians(records, warmup=2)  # steps 3-5
    assert parts["learner_parts"] == pytest.approx(
        {"inputs": 0.04, "backward": 0.1, "rank_total": 0.24}
    )
    assert parts["rollout_parts"] == pytest.approx({"generate": 0.1, "round_trip": 0.12})
    assert part_medians([_record(step, 1.0) for step in range(1, 6)]) == {}  # the peer's ledger


def test_spread_is_range_over_mean() -> None:
    assert spread([1.0]) is None
    assert spread([0.9, 1.0, 1.1]) == pytest.approx(0.2)


def test_layout_steps_groups_repeats_by_layout(tmp_path: Path) -> None:
    for name, seconds in (("steps_colo2_r1", 1.0), ("steps_colo2_r2", 1.1), ("other", 3.0)):
        run = tmp_path / name
        run.mkdir()
        lines = [json.dumps(_record(step, seconds)) for step in range(1, 8)]
        (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    layouts = layout_steps(tmp_path)
    assert set(layouts) == {"colo2"}
    assert layouts["colo2"]["median_step_s"] == pytest.approx(1.05)
    assert layouts["colo2"]["spread"] == pytest.approx(0.1 / 1.05, abs=1e-3)


def test_the_starting_student_comes_from_the_assets() -> None:
    from benchmarks.compare_peer import starting_student

    assets = {
        "student": "artifacts/demo/student",
        "metrics": {"student": {"val": {"mIoU": 12.9}}},
        "student_competent": {"model": "artifacts/demo/student_competent", "val": {"mIoU": 60.6}},
    }
    assert starting_student(assets) == ("artifacts/demo/student", 12.9)
    assert starting_student(assets, "competent") == ("artifacts/demo/student_competent", 60.6)
    with pytest.raises(ValueError, match="choose one of floor, competent"):
        starting_student(assets, "best")
    del assets["student_competent"]
    with pytest.raises(ValueError, match="no competent student"):
        starting_student(assets, "competent")
