"""The training loop's budgets (`Driver._train`): a learner-FLOPs or wall-clock budget ends the run
with the step that spends it, that step is the evaluated final one, and the cosine decay follows
the budget.
The loop runs for real; only the step itself is replaced by one that books fixed costs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from launch.config import load_config
from launch.driver import Driver


class _BookingDriver(Driver):
    """A Driver whose step only books `flops` learner FLOPs and `seconds` of training."""

    def __init__(self, out: Path, flops: float, seconds: float, **budget: Any) -> None:
        overrides = [f"out_dir={out}", "trainer.steps=50"]
        overrides += [f"trainer.{key}={value}" for key, value in budget.items()]
        self.config = load_config("demo_opd", overrides)
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.step, self.train_seconds, self.learner_flops_total = 0, 0.0, 0.0
        self.flops, self.seconds = flops, seconds
        self.finals: list[bool] = []
        self.progress: list[float] = []  # the budget share each step's update saw

    def train_step(self, final: bool = False) -> dict[str, Any]:
        self.progress.append(self._budget_progress())
        self.finals.append(final)
        self.step += 1
        self.learner_flops_total += self.flops
        self.train_seconds += self.seconds
        return {"step": self.step, "loss": 0.0, "learner_flops": self.flops, "time": {}}


def _training_seconds(record: dict[str, Any]) -> float:
    return 1.0


@pytest.fixture(autouse=True)
def _one_second_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("launch.driver.training_seconds", _training_seconds)


def test_a_flops_budget_ends_the_run_with_the_step_that_spends_it(tmp_path: Path) -> None:
    driver = _BookingDriver(tmp_path, flops=1e12, seconds=1.0, budget_s="null", budget_flops=3.5e12)
    summary = driver._train()
    # Steps 1-3 spend 3e12; step 4 is expected to cross 3.5e12: it is the last, evaluated one.
    assert summary["steps"] == 4 and driver.finals == [False, False, False, True]
    assert driver.progress == pytest.approx([0.0, 1 / 3.5, 2 / 3.5, 3 / 3.5])
    assert (tmp_path / "summary.json").is_file()


def test_without_budgets_the_step_count_ends_the_run(tmp_path: Path) -> None:
    driver = _BookingDriver(tmp_path, flops=1e12, seconds=1.0, budget_s="null")
    assert driver._train()["steps"] == 50 and not any(driver.finals)
    assert set(driver.progress) == {0.0}


def test_the_budget_that_runs_out_first_ends_the_run(tmp_path: Path) -> None:
    # 10 s of training against 1e15 FLOPs: the wall-clock budget ends it after 10 steps.
    driver = _BookingDriver(tmp_path, flops=1e12, seconds=1.0, budget_s=10, budget_flops=1e15)
    assert driver._train()["steps"] == 10 and driver.finals[-1]
    assert driver.progress[-1] == pytest.approx(0.9)


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("budget", ["trainer.budget_flops=1", "trainer.budget_s=0.001"])
def test_the_step_that_crosses_a_budget_is_evaluated_and_checkpointed(
    budget: str, tmp_path: Path, loop_data: Path, tiny_models_dir: Path, ray_session
) -> None:
    """On the real stack: a FLOPs or wall-clock budget the first step already spends ends the run
    there, with that step evaluated and checkpointed although the loop could not predict it."""
    from loop_runs import loop_config, run_loop

    key, value = budget.split("=")
    config = loop_config(
        "sft",
        tmp_path / "run",
        loop_data,
        tiny_models_dir,
        steps=4,
        **{key: value, "eval.every_steps": "10", "checkpoint.every_steps": "10"},
    )
    records = run_loop(config)
    assert [r["step"] for r in records] == [1]
    assert "val" in records[0] and records[0]["checkpoint"]
