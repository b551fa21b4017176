"""The teacher-signal benchmark's run settings and report: a wall-clock budget replaces the step
count, and the table compares each arm's mean final val mIoU with the exact co-located path."""

from __future__ import annotations

from pathlib import Path

from benchmarks.teacher_signals import arm_overrides, budget_label, report


def test_a_wallclock_budget_replaces_the_step_count() -> None:
    by_steps = arm_overrides("tail20_rkl", 0, 200, Path("out"), 1e-3)
    by_time = arm_overrides("tail20_rkl", 0, 200, Path("out"), 1e-3, budget_s=150.0)
    assert "trainer.steps=200" in by_steps and "trainer.budget_s=null" in by_steps
    assert "trainer.budget_s=150.0" in by_time and "trainer.steps=200" not in by_time
    assert "teacher.top_k=20" in by_time  # the arm's own overrides stay
    assert budget_label(150.0, 200) == "150 s" and budget_label(None, 200) == "200 steps"


def _run(arm: str, seed: int, final: float | None, budget: str = "150 s") -> dict:
    return {
        "arm": arm,
        "seed": seed,
        "budget": budget,
        "final_val_miou": final,
        "steps": 30,
        "teacher_bytes_per_position": 164.0,
        "teacher_s": 0.5,
        "learner_s": 2.0,
        "step_s": 3.0,
        "learner_peak_rss_mb": 2000.0,
    }


def test_report_compares_each_arm_with_the_exact_path_at_one_budget() -> None:
    runs = {
        "exact_colocated/s0": _run("exact_colocated", 0, 80.0),
        "exact_colocated/s1": _run("exact_colocated", 1, 90.0),
        "tail20_rkl/s0": _run("tail20_rkl", 0, 84.0),
        "tail20_rkl/s1": _run("tail20_rkl", 1, 88.0),
        "tail8_rkl/s0": _run("tail8_rkl", 0, 10.0, budget="200 steps"),  # another budget
        "exact_shipped/s0": _run("exact_shipped", 0, 40.0, budget="10 steps"),  # cost only
    }
    table = report({"runs": runs}, "150 s")
    rows = {line.split("|")[1].strip(): line for line in table.splitlines()[2:]}
    assert set(rows) == {"`exact_colocated`", "`tail20_rkl`", "`exact_shipped`"}
    assert "80.0 / 90.0 | 85.0 | +0.0" in rows["`exact_colocated`"]
    assert "84.0 / 88.0 | 86.0 | +1.0" in rows["`tail20_rkl`"]
    assert "cost only" in rows["`exact_shipped`"]
