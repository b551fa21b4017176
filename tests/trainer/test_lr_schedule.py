"""Learning-rate schedules: warm-up, cosine over steps or over a wall-clock budget."""

from __future__ import annotations

import pytest

from trainer.lr_schedule import budget_progress, lr_multiplier, run_progress


def test_lr_schedule_warmup_then_cosine() -> None:
    assert lr_multiplier(0, 4, 10) == pytest.approx(0.25)
    assert lr_multiplier(3, 4, 10) == pytest.approx(1.0)
    assert lr_multiplier(7, 4, 10, "constant") == 1.0
    assert lr_multiplier(4, 4, 10, "cosine") == pytest.approx(1.0)
    assert lr_multiplier(7, 4, 10, "cosine") == pytest.approx(0.5)
    assert lr_multiplier(10, 4, 10, "cosine") == pytest.approx(0.0)
    with pytest.raises(ValueError, match="unknown lr schedule"):
        lr_multiplier(0, 0, 1, "linear")


def test_cosine_floor_is_min_ratio() -> None:
    assert lr_multiplier(10, 0, 10, "cosine", min_ratio=0.1) == pytest.approx(0.1)
    assert lr_multiplier(5, 0, 10, "cosine", min_ratio=0.1) == pytest.approx(0.55)
    with pytest.raises(ValueError, match="min_ratio"):
        lr_multiplier(5, 0, 10, "cosine", min_ratio=1.5)


def test_cosine_ends_with_the_budget_when_it_comes_first() -> None:
    # Step 2 of 1000 but half the budget spent: the decay is half done.
    assert lr_multiplier(2, 0, 1000, "cosine", time_progress=0.5) == pytest.approx(0.5)
    assert lr_multiplier(2, 0, 1000, "cosine", time_progress=1.0) == pytest.approx(0.0)
    # The step count still ends it when it comes first.
    assert lr_multiplier(1000, 0, 1000, "cosine", time_progress=0.1) == pytest.approx(0.0)
    # Warm-up and the constant schedule ignore the budget.
    assert lr_multiplier(0, 4, 1000, "cosine", time_progress=0.9) == pytest.approx(0.25)
    assert lr_multiplier(50, 0, 1000, "constant", time_progress=0.9) == 1.0


def test_budget_progress() -> None:
    assert budget_progress(120.0, None) == 0.0
    assert budget_progress(120.0, 480.0) == pytest.approx(0.25)
    assert budget_progress(600.0, 480.0) == 1.0


def test_run_progress_follows_the_budget_that_runs_out_first() -> None:
    assert run_progress(120.0, None) == 0.0
    assert run_progress(120.0, None, 3e12, 6e12) == pytest.approx(0.5)  # FLOPs only
    assert run_progress(120.0, 480.0, 3e12, 6e12) == pytest.approx(0.5)  # FLOPs ahead
    assert run_progress(360.0, 480.0, 3e12, 6e12) == pytest.approx(0.75)  # seconds ahead
    assert run_progress(0.0, None, 9e12, 6e12) == 1.0
