"""Every model-ladder rung's run configuration validates, and a rung's own overrides take effect
(the ~0.5 B rung trains on one learner rank without ZeRO partitioning)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.model_ladder import RUNGS, rung_config


@pytest.mark.parametrize("name", sorted(RUNGS))
def test_every_rung_config_validates(name: str, tmp_path: Path) -> None:
    rung = RUNGS[name]
    config = rung_config(rung, tmp_path / "s", tmp_path / "t", tmp_path / "data", tmp_path / "run")
    assert config.trainer.prompts_per_step == rung.prompts_per_step
    assert config.rollout.max_model_len == rung.max_model_len
    assert config.data.min_pixels == rung.min_pixels


def test_the_0_5b_rung_runs_one_unpartitioned_learner_rank(tmp_path: Path) -> None:
    rung = RUNGS["ladder_0_5b"]
    config = rung_config(rung, tmp_path / "s", tmp_path / "t", tmp_path / "data", tmp_path / "run")
    learner = config.learner
    assert (learner.num_ranks, learner.zero_stage, learner.threads) == (1, 0, 2)
    assert learner.gradient_checkpointing and learner.micro_batch_size == 1
    assert config.rollout.cpu_linear == "vllm"  # no second copy of the linear weights
    small = rung_config(
        RUNGS["ladder_10m"], tmp_path / "s", tmp_path / "t", tmp_path / "data", tmp_path / "run"
    )
    assert small.learner.num_ranks == 2  # the demo's two ranks elsewhere
    assert small.rollout.cpu_linear == "onednn"
