"""Small training-loop runs for the end-to-end tests: one config shape on the session's tiny
models and loop data, and a run that returns its ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from launch.config import RunConfig, load_config
from launch.ledger import read_ledger


def loop_overrides(out: Path, data: Path, models: Path, steps: int, **extra: str) -> list[str]:
    """The loop tests' run as key=value overrides: the tiny student / teacher and the loop data,
    3 prompts x 2 samples per step, 12-token answers, an evaluation and a checkpoint every 2
    steps; `extra` overrides by key."""
    overrides = {
        "out_dir": str(out),
        "model.student": str(models / "qwen3_vl-student"),
        "model.teacher": str(models / "qwen3_vl-teacher"),
        "data.train": str(data / "train.json"),
        "data.val": str(data / "val.json"),
        "data.video_root": str(data / "videos"),
        "trainer.steps": str(steps),
        "trainer.prompts_per_step": "3",
        "rollout.n": "2",
        "rollout.max_new_tokens": "12",
        "eval.every_steps": "2",
        "eval.max_new_tokens": "12",
        "checkpoint.every_steps": "2",
        "learner.micro_batch_size": "2",
        **extra,
    }
    return [f"{k}={v}" for k, v in overrides.items()]


def loop_config(
    preset: str, out: Path, data: Path, models: Path, steps: int, **extra: str
) -> RunConfig:
    """`preset` with `loop_overrides`."""
    return load_config(preset, loop_overrides(out, data, models, steps, **extra))


def run_loop(config: RunConfig, resume: bool = False) -> list[dict[str, Any]]:
    """Run `config` to its end (resuming if asked) and return its ledger records."""
    from launch.driver import Driver

    driver = Driver(config, resume=resume)
    try:
        driver.run()
    finally:
        driver.shutdown()
    return read_ledger(Path(config.out_dir) / "metrics.jsonl")
