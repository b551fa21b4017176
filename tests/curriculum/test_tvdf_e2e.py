"""TVDF end to end on the real stack (vLLM CPU engines, Ray, DeepSpeed, tiny models):
`vopd curriculum build` predicts with teacher and student and writes the subset; a training run
with the same config selects that same subset from the warm cache, trains only on it, re-scores
the updated student online after step 1 (a cache miss: new weights) and trains on the new subset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from curriculum.rules import TVDFRule, select_tvdf
from launch.config import load_config
from launch.ledger import read_ledger

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _overrides(tmp: Path, data: Path, models: Path) -> list[str]:
    values = {
        "out_dir": str(tmp / "run"),
        "model.student": str(models / "qwen3_vl-student"),
        "model.teacher": str(models / "qwen3_vl-teacher"),
        "data.train": str(data / "train.json"),
        "data.val": str(data / "val.json"),
        "data.video_root": str(data / "videos"),
        "curriculum.kind": "tvdf",
        "curriculum.rule": "top_k",
        "curriculum.subset_size": "4",
        # The tiny teacher is untrained: with tau_T > 0 it would be reliable on nothing.
        "curriculum.tau_teacher": "0.0",
        "curriculum.teacher_k": "2",
        "curriculum.max_new_tokens": "12",
        "curriculum.batch_size": "4",
        "curriculum.cache_dir": str(tmp / "cache"),
        "curriculum.refresh": "online",
        "curriculum.refresh_every": "1",
        "trainer.steps": "2",
        "trainer.prompts_per_step": "3",
        "rollout.n": "1",
        "rollout.max_new_tokens": "12",
        "eval.every_steps": "2",
        "eval.max_new_tokens": "8",
        "learner.micro_batch_size": "2",
    }
    return [f"{k}={v}" for k, v in values.items()]


def test_tvdf_build_then_train_on_the_selected_subset(
    tmp_path: Path, tiny_models_dir: Path, ray_session
) -> None:
    from launch.cli import main
    from launch.driver import Driver
    from tvg.synth import write_dataset

    data = tmp_path / "data"
    write_dataset(data, n_train=8, n_val=2, n_test=0, seed=5)
    overrides = _overrides(tmp_path, data, tiny_models_dir)

    # 1. Offline: teacher (k = 2 sampled) and student (greedy) predictions, selection, files.
    out = tmp_path / "curriculum"
    assert main(["curriculum", "build", "--config", "opd", "--out", str(out), *overrides]) == 0
    scores = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    subset = [json.loads(line) for line in (out / "subset.jsonl").read_text().splitlines()]
    assert len(scores) == 8 and len(subset) == 4
    assert all(len(r["teacher_ious"]) == 2 for r in scores)
    assert (out / "histogram.png").read_bytes()[:4] == b"\x89PNG"
    # The subset is the rule applied to the recorded scores.
    expected = select_tvdf(
        np.array([r["teacher_ious"] for r in scores]),
        np.array([r["student_iou"] for r in scores]),
        TVDFRule(rule="top_k", size=4, tau=0.0),
        seed=0,
    )
    built = [r["index"] for r in subset]
    assert built == expected.indices.tolist()
    assert len(list((tmp_path / "cache").glob("*.jsonl"))) == 2  # teacher + student entries

    # 2. Training with the same config: the same subset, from the cache, then an online refresh.
    driver = Driver(load_config("opd", overrides))
    drawn: list[tuple[list[int], list[int]]] = []
    next_indices = driver.sampler.next_indices

    def record(count: int) -> list[int]:
        indices = next_indices(count)
        drawn.append((list(driver.sampler.subset), indices))
        return indices

    driver.sampler.next_indices = record
    try:
        driver.run()
    finally:
        driver.shutdown()
    records = read_ledger(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in records] == [1, 2]
    assert drawn[0][0] == built  # round 0 = the subset `vopd curriculum build` wrote
    for subset_then, indices in drawn:
        assert len(indices) == 3 and set(indices) <= set(subset_then)
    cache = driver.sampler.scorer.cache
    assert (cache.hits, cache.misses) == (2, 1)  # round 0 from the cache; round 1: new weights
    assert [r["round"] for r in driver.sampler.rounds] == [0, 1]
    entries = [json.loads(p.read_text().splitlines()[0])["meta"] for p in cache.directory.iterdir()]
    student_weights = {m["weights"] for m in entries if m["role"] == "student"}
    assert records[0]["sync_checksum"] in student_weights  # scored with the step-1 weights
    state = json.loads(
        next((tmp_path / "run" / "checkpoints").glob("step_*/state.json")).read_text()
    )
    assert state["sampler"]["kind"] == "tvdf" and state["sampler"]["round"] == 1
    assert state["sampler"]["subset"] == drawn[1][0]
