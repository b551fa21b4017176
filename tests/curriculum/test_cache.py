"""Offline predictions and their cache: IoUs per prediction, keys, hits and misses, atomic files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from curriculum.cache import (
    PredictionCache,
    cache_key,
    dataset_key,
    prompts_digest,
    weights_checksum,
)
from curriculum.predictions import PredictionSettings, cached_ious, predict
from curriculum.scoring import OfflineScorer

# Ground truth (0, 10): "0 to 10" -> 1.0, "0 to 5" -> 0.5, "5 to 15" -> 1/3, "no idea" -> 0.
ANSWERS = {"s0": ["0 to 10", "0 to 5"], "s1": ["5 to 15"], "s2": ["no idea", "0 to 10"]}


def test_predict_scores_each_of_k_predictions(make_prompts, scripted_predictor, capsys) -> None:
    prompts = make_prompts(3)
    predictor = scripted_predictor(ANSWERS)
    predictor.skip = {"s1"}
    settings = PredictionSettings(k=2, temperature=0.7, batch_size=2, seed=3)
    rows = predict(predictor, prompts, settings, desc="teacher predictions")
    assert [r["id"] for r in rows] == ["s0", "s1", "s2"]
    assert rows[0]["ious"] == pytest.approx([1.0, 0.5])
    assert rows[1]["ious"] == [0.0, 0.0] and rows[1]["skipped"] == "missing video"
    assert rows[2]["ious"] == pytest.approx([0.0, 1.0]) and rows[2]["spans"][0] is None
    assert predictor.calls == 2  # batches of 2 prompts
    assert [s.temperature for s in predictor.samplings] == [0.7, 0.7]
    assert len({s.seed for s in predictor.samplings}) == 2  # each batch has its own seed
    err = capsys.readouterr().err
    assert "teacher predictions: 100%" in err and "1 prompts could not be run" in err
    greedy = PredictionSettings(k=1, temperature=0.7)
    assert greedy.sampling(0).temperature == 0.0 and greedy.to_dict()["temperature"] == 0.0
    with pytest.raises(ValueError, match="temperature"):
        PredictionSettings(k=3, temperature=0.0)


def test_cache_hit_miss_and_keys(tmp_path: Path, make_prompts, scripted_predictor) -> None:
    prompts = make_prompts(3)
    cache = PredictionCache(tmp_path / "cache")
    settings = PredictionSettings(k=2, temperature=1.0)
    made: list[object] = []

    def make():
        made.append(scripted_predictor(ANSWERS))
        return made[-1]

    first = cached_ious(cache, "teacher", "w0", "d0", prompts, settings, make)
    assert first.shape == (3, 2) and first[0].tolist() == pytest.approx([1.0, 0.5])
    assert (cache.hits, cache.misses, len(made)) == (0, 1, 1)
    again = cached_ious(cache, "teacher", "w0", "d0", prompts, settings, make)
    assert np.array_equal(first, again)
    assert (cache.hits, cache.misses, len(made)) == (1, 1, 1)  # hit: no predictor was made
    # Any part of the key changing is a miss: weights, dataset, settings, role.
    for args in (
        ("teacher", "w1", "d0", settings),
        ("teacher", "w0", "d1", settings),
        ("teacher", "w0", "d0", PredictionSettings(k=2, temperature=1.0, max_tokens=16)),
        ("student", "w0", "d0", settings),
    ):
        role, weights, dataset, s = args
        cached_ious(cache, role, weights, dataset, prompts, s, make)
    assert (cache.hits, cache.misses, len(made)) == (1, 5, 5)
    files = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(files) == 5 and not [f for f in files if f.endswith(".tmp")]  # atomic writes
    # The entry: a meta line (what was hashed) then one row per prompt.
    key = cache_key("w0", "d0", settings.to_dict())
    lines = cache.path("teacher", key).read_text().splitlines()
    meta = json.loads(lines[0])["meta"]
    assert meta["key"] == key and meta["weights"] == "w0" and meta["settings"]["k"] == 2
    assert [json.loads(line)["id"] for line in lines[1:]] == ["s0", "s1", "s2"]
    # A damaged entry, or one for other ids, is a miss and gets rewritten.
    cache.path("teacher", key).write_text("{not json")
    cached_ious(cache, "teacher", "w0", "d0", prompts, settings, make)
    assert cache.misses == 6 and len(made) == 6
    cached_ious(cache, "teacher", "w0", "d0", prompts[:2], settings, make)
    assert cache.misses == 7
    # No weights checksum (an engine that does not track it): never cached.
    cached_ious(cache, "student", "", "d0", prompts, settings, make)
    cached_ious(cache, "student", "", "d0", prompts, settings, make)
    assert len(made) == 9


def test_dataset_key_follows_file_content_and_prompts(tmp_path: Path, make_prompts) -> None:
    prompts = make_prompts(3)
    path = tmp_path / "train.json"
    path.write_text('{"a": 1}')
    key = dataset_key(path, prompts)
    assert dataset_key(path, prompts) == key
    assert dataset_key(path, prompts[:2]) != key
    path.write_text('{"a": 2}')
    assert dataset_key(path, prompts) != key
    assert prompts_digest(make_prompts(3)) == prompts_digest(prompts)


def test_weights_checksum_is_what_an_engine_reports(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from rollout.weight_sync import WeightTracker

    save_file({"a": torch.arange(4.0), "b": torch.ones(2, 2)}, str(tmp_path / "model.safetensors"))
    checksum = weights_checksum(tmp_path)
    assert checksum == WeightTracker(tmp_path).checksum()  # an engine built from this directory
    save_file({"a": torch.arange(4.0), "b": torch.zeros(2, 2)}, str(tmp_path / "model.safetensors"))
    assert weights_checksum(tmp_path) != checksum
    with pytest.raises(FileNotFoundError):
        weights_checksum(tmp_path / "missing")


def test_scorer_caches_student_predictions_per_weights_version(
    tmp_path: Path, make_prompts, scripted_predictor
) -> None:
    prompts = make_prompts(3)
    scorer = OfflineScorer(
        prompts,
        "d0",
        PredictionCache(tmp_path),
        teacher=PredictionSettings(k=2),
        student=PredictionSettings(k=1),
    )
    group = scripted_predictor(ANSWERS, checksum="v1")
    assert scorer.student_ious(group).tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    scorer.student_ious(group)
    assert group.calls == 1  # the same weights: a cache hit
    group.checksum = "v2"  # the student trained: new weights, new predictions
    scorer.student_ious(group)
    assert group.calls == 2
    with pytest.raises(ValueError, match="teacher"):
        scorer.teacher_ious()
