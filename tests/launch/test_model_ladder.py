"""The model ladder's CI rung (benchmarks/model_ladder.py): the tiny student and teacher with
Qwen's 151,936 embedding / LM-head rows through the real loop (vLLM rollout, hf teacher,
DeepSpeed ZeRO-2 learners, weight sync), one step, with the benchmark's own configuration,
step runner and per-process memory probe."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

from launch.tiny_models.build import count_parameters

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LADDER_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "model_ladder.py"
VOCAB = 151_936


def _load_ladder():
    spec = importlib.util.spec_from_file_location("benchmarks_model_ladder", LADDER_PATH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_ci_rung_trains_with_qwens_vocabulary_size(
    tmp_path: Path, loop_data: Path, ray_session
) -> None:
    ladder = _load_ladder()
    # The tiny rung, with short prompts for CI: 16 frames of the 32-px videos, 2 prompts.
    rung = dataclasses.replace(
        ladder.RUNGS["tiny"], min_pixels=32 * 32, prompts_per_step=2, max_new_tokens=8
    )
    student, teacher = ladder.build_models(rung, tmp_path / "models")
    for model in (student, teacher):
        config = json.loads((model / "config.json").read_text())
        assert config["text_config"]["vocab_size"] == VOCAB
    # The learner re-scores the sampled tokens: vLLM and transformers agree on the padded model.
    run = ladder.rung_config(
        rung, student, teacher, loop_data, tmp_path / "run", "trainer.mismatch_every=1"
    )
    assert run.trainer.objective == "opd_full_rkl" and run.learner.num_ranks == 2

    records, peaks = ladder.run_steps(run, steps=1)

    (record,) = records
    assert record["step"] == 1 and not record["skipped_update"]
    assert math.isfinite(record["loss"]) and record["tokens_trained"] > 0
    assert record["sync_checksum"]  # every engine reported the learner's checksum
    assert record["tokens_generated"] > 0
    assert record["tokens_teacher_scored"] == record["tokens_generated"]
    assert record["teacher_bytes"] > 0
    assert record["logprob_mismatch_max"] < 1e-3  # float32 on both sides
    # One engine received every student weight in float32, padded tables included.
    assert record["sync_bytes"] == 4 * count_parameters(student)
    assert "val" not in record and "checkpoint" not in record  # the benchmark's steps only

    names = [row["process"] for row in peaks]
    assert names[0] == "driver" and peaks[0]["peak_rss_mb"] > 0
    assert sum("Learner" in name for name in names) == 2, names
    summary = ladder.summarise_rung("tiny", rung, records, peaks)
    assert summary["sync_checksum"] and summary["teacher_scored_every_token"]
    assert summary["sync_bytes_per_step"] == record["sync_bytes"]
    assert set(summary["seconds_median"]) == {"rollout", "teacher", "learner", "sync", "step"}
