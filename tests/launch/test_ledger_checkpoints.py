"""Ledger records survive as JSONL; checkpoints are atomic and pruned to the last K."""

from __future__ import annotations

from pathlib import Path

from launch.checkpoints import (
    commit_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    read_state,
    staging_dir,
)
from launch.ledger import Ledger, read_ledger
from runtime.timing import PhaseTimer


def test_ledger_appends_and_truncates(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path, tensorboard=False)
    for step in range(1, 5):
        ledger.log(
            {"step": step, "loss": 1.0 / step, "time": {"rollout": 0.5}, "nan": float("nan")}
        )
    records = read_ledger(ledger.path)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert records[0]["time"]["rollout"] == 0.5 and records[0]["nan"] is None
    ledger.truncate_after(2)
    assert [r["step"] for r in read_ledger(ledger.path)] == [1, 2]


def test_phase_timer_accumulates() -> None:
    timer = PhaseTimer()
    with timer.phase("a"):
        pass
    with timer.phase("a"):
        pass
    seconds = timer.reset()
    assert set(seconds) == {"a"} and seconds["a"] >= 0
    assert timer.reset() == {}


def test_checkpoints_atomic_and_pruned(tmp_path: Path) -> None:
    for step in (10, 20, 30):
        staging = staging_dir(tmp_path, step)
        (staging / "weights.bin").write_bytes(b"x" * step)
        commit_checkpoint(tmp_path, staging, step, {"step": step}, keep_last=2)
    # A checkpoint killed mid-write: staging exists without state.json -> ignored.
    (staging_dir(tmp_path, 40) / "weights.bin").write_bytes(b"partial")
    names = [p.name for p in list_checkpoints(tmp_path)]
    assert names == ["step_00000020", "step_00000030"]
    latest = latest_checkpoint(tmp_path)
    assert latest is not None and read_state(latest) == {"step": 30}
